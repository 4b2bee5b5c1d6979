// Response and chunk objects exactly as OpenAI sends them, plus the per-choice bookkeeping both
// endpoints share (text so far, tokens, logprobs, finish reason).
import { randomBytes } from "node:crypto";
import { StreamDetokenizer, type FinishReason, type GeneratedPiece, type TokenLogprob } from "../index.js";
import type { Detokenizer } from "../tokenizer/stream.js";

export type OpenAiFinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** "cmpl-" / "chatcmpl-" + 24 random hex digits, as OpenAI's ids look. */
export function newId(prefix: "cmpl" | "chatcmpl"): string {
  return `${prefix}-${randomBytes(12).toString("hex")}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Our finish reasons -> OpenAI's: EOS and stop strings are "stop"; max_tokens, a full context and a
 * server-side time limit (abort) are "length", the budget that ran out.
 */
export function openAiFinishReason(reason: FinishReason): OpenAiFinishReason {
  return reason === "stop" || reason === "eos" ? "stop" : "length";
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** What the token reporting needs from the tokenizer. */
export interface TokenTexts {
  tokenText(id: number): string;
  tokenBytes(id: number): Uint8Array;
}

/** One generated (or echoed prompt) token's logprob record, before shaping for an endpoint. */
export interface TokenRecord {
  id: number;
  /** Chosen token's logprob; null for the first prompt token (nothing predicts it). */
  logprob: number | null;
  top: TokenLogprob[];
  /**
   * Where the token's text starts in the text it belongs to (the choice's generated text, or the prompt
   * for echoed prompt tokens). A token that continues a multi-byte character begun by the one before
   * starts where that character starts.
   */
  offset?: number;
}

export function recordOf(piece: GeneratedPiece): TokenRecord | undefined {
  if (!piece.logprob) return undefined;
  return { id: piece.id, logprob: piece.logprob.logprob, top: piece.topLogprobs ?? [] };
}

/** /v1/completions `logprobs`: parallel arrays; text_offset indexes the choice's returned text. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/**
 * `records` shaped as OpenAI's legacy logprobs: each position's top_logprobs holds the `logprobs` most
 * likely tokens and, always, the sampled one (so up to logprobs + 1 entries; with logprobs 0 just the
 * sampled token). text_offset is each record's `offset` (already relative to the returned text).
 */
export function completionLogprobs(records: TokenRecord[], texts: TokenTexts): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const r of records) {
    const text = texts.tokenText(r.id);
    out.tokens.push(text);
    out.token_logprobs.push(r.logprob);
    if (r.logprob === null) out.top_logprobs.push(null);
    else {
      const top: Record<string, number> = Object.fromEntries(r.top.map((t) => [texts.tokenText(t.id), t.logprob]));
      if (!r.top.some((t) => t.id === r.id) && !(text in top)) top[text] = r.logprob;
      out.top_logprobs.push(top);
    }
    out.text_offset.push(r.offset ?? 0);
  }
  return out;
}

const REPLACEMENT = "\uFFFD";

/**
 * Places tokens in the text a StreamDetokenizer makes of them, as it releases it: where each token's
 * text starts and where the released piece it belongs to ends. Tokens holding the bytes of one
 * multi-byte character each decode to U+FFFD alone: a token that continues a character starts where
 * that character starts.
 */
class TokenPlacer {
  private readonly detok: StreamDetokenizer;
  /** Length of the text released so far. */
  length = 0;
  /** Tokens pushed whose text has not been released yet. */
  private waiting: number[] = [];

  constructor(private readonly tokenizer: Detokenizer) {
    this.detok = new StreamDetokenizer(tokenizer);
  }

  get pending(): number {
    return this.waiting.length;
  }

  /** Adds a token; returns the places of the tokens whose text came out (none while a character is incomplete). */
  push(id: number): { offset: number; end: number }[] {
    this.waiting.push(id);
    return this.place(this.detok.push(id));
  }

  /** The places of the tokens still held (an incomplete character, released as U+FFFD). */
  flush(): { offset: number; end: number }[] {
    return this.place(this.detok.flush());
  }

  private place(text: string): { offset: number; end: number }[] {
    if (text === "") return [];
    const start = this.length;
    this.length += text.length;
    const ids = this.waiting;
    this.waiting = [];
    // each starts after the whole characters of the ones before it in this piece
    return ids.map((_, j) => {
      if (j === 0) return { offset: start, end: this.length };
      let before = this.tokenizer.decode(ids.slice(0, j));
      if (before.endsWith(REPLACEMENT)) before = before.slice(0, -1); // the incomplete character
      return { offset: start + Math.min(before.length, text.length), end: this.length };
    });
  }
}

/** Where each of `ids` starts in the text they decode to (see TokenPlacer). */
export function tokenOffsets(ids: readonly number[], tokenizer: Detokenizer): number[] {
  const placer = new TokenPlacer(tokenizer);
  const out = ids.flatMap((id) => placer.push(id).map((p) => p.offset));
  out.push(...placer.flush().map((p) => p.offset));
  while (out.length < ids.length) out.push(placer.length);
  return out;
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobs(records: TokenRecord[], texts: TokenTexts): { content: ChatTokenLogprob[]; refusal: null } {
  return {
    content: records.map((r) => ({
      token: texts.tokenText(r.id),
      logprob: r.logprob ?? 0,
      bytes: [...texts.tokenBytes(r.id)],
      top_logprobs: r.top.map((t) => ({ token: texts.tokenText(t.id), logprob: t.logprob, bytes: [...texts.tokenBytes(t.id)] })),
    })),
    refusal: null,
  };
}

/** What ChoiceState needs to place tokens in the text: the sequence's detokenization, mirrored. */
export interface ChoiceTokenizer extends Detokenizer {
  readonly eosId: number;
}

/**
 * Everything one choice has produced so far.
 *
 * A token's logprob record is reported together with its text, never before: the generation holds text
 * back (the bytes of an incomplete character, anything that could be the start of a stop string), and the
 * text held when a stop string or EOS ends the sequence is dropped. So the choice decodes the tokens the
 * way the sequence does (StreamDetokenizer, whose output the sequence's text is a prefix of), knows where
 * each token's text ends, and releases a record once the emitted text reaches that end. When the sequence
 * ends, a token whose text began in the final text (one a stop string cut in two) is released too; the
 * rest (the stop string's tokens, EOS, text held when aborted) are dropped. Records then list exactly the
 * tokens of the returned text, as OpenAI's do.
 */
export class ChoiceState {
  text = "";
  completionTokens = 0;
  /** Records of the tokens whose text is in `text`, in order. */
  records: TokenRecord[] = [];
  finishReason: OpenAiFinishReason | null = null;
  /** Set when the sequence was aborted before it ever got a slot (timeout while queued). */
  neverStarted = false;
  /** The generated tokens placed in the text they decode to (`text` is a prefix of it). */
  private readonly placer: TokenPlacer;
  /** Records whose token the placer still holds (bytes of a character not complete yet), in order. */
  private undecoded: TokenRecord[] = [];
  /** Records with a known place in the decoded text whose text is not all in `text` yet. */
  private unsent: { record: TokenRecord; end: number }[] = [];

  constructor(
    readonly index: number,
    readonly promptTokens: number,
    private readonly tokenizer: ChoiceTokenizer,
    /** As the sequence's option: an EOS token ends it and has no text. */
    private readonly stopOnEos: boolean,
    /**
     * max_tokens 0 (/v1/completions): the prompt is run (and scored, with echo and logprobs) but nothing
     * is generated. The sequence samples one token from the prompt's logits, which costs no model pass;
     * the choice drops it and finishes with "length".
     */
    readonly promptOnly = false,
  ) {
    this.placer = new TokenPlacer(tokenizer);
  }

  /**
   * Adds a step's piece (`finishReason` set on the sequence's last step); returns the text and the
   * logprob records that are new.
   */
  add(piece: GeneratedPiece | undefined, finishReason?: FinishReason): { text: string; records: TokenRecord[] } {
    if (this.promptOnly) return { text: "", records: [] };
    if (piece) {
      this.completionTokens++;
      this.text += piece.text;
      const record = recordOf(piece);
      if (record && !(this.stopOnEos && piece.id === this.tokenizer.eosId)) {
        this.undecoded.push(record);
        this.placed(this.placer.push(piece.id));
      }
    }
    // At the end the sequence releases what its detokenizer held (an incomplete character as U+FFFD);
    // an aborted one drops it.
    if (finishReason && finishReason !== "abort" && this.placer.pending > 0) this.placed(this.placer.flush());
    const sent = this.text.length;
    const released: TokenRecord[] = [];
    while (this.unsent.length > 0 && this.unsent[0].end <= sent) released.push(this.unsent.shift()!.record);
    if (finishReason) {
      while (this.unsent.length > 0 && this.unsent[0].record.offset! < sent) released.push(this.unsent.shift()!.record);
      this.unsent = [];
      this.undecoded = [];
    }
    this.records.push(...released);
    return { text: piece?.text ?? "", records: released };
  }

  /** The first records of `undecoded` got their places: they wait in `unsent` until their text is sent. */
  private placed(places: { offset: number; end: number }[]): void {
    for (const [i, place] of places.entries()) {
      const record = this.undecoded[i]!;
      record.offset = place.offset;
      this.unsent.push({ record, end: place.end });
    }
    this.undecoded = this.undecoded.slice(places.length);
  }
}
