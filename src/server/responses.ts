// Response and chunk objects exactly as OpenAI sends them, plus the per-choice bookkeeping both
// endpoints share (text so far, tokens, logprobs, finish reason).
import { randomBytes } from "node:crypto";
import { StreamDetokenizer, type FinishReason, type GeneratedPiece, type TokenLogprob } from "../index.js";

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
   * for echoed prompt tokens). The tokens that together make one multi-byte character all start where
   * that character starts.
   */
  offset?: number;
}

export function recordOf(piece: GeneratedPiece): TokenRecord | undefined {
  if (!piece.logprob) return undefined;
  return { id: piece.id, logprob: piece.logprob.logprob, top: piece.topLogprobs ?? [] };
}

/** /v1/completions `logprobs`: parallel arrays; text_offset counts characters from the start of the choice's text. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export function completionLogprobs(records: TokenRecord[], texts: TokenTexts, firstOffset: number, withTop: boolean): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = firstOffset;
  for (const r of records) {
    const text = texts.tokenText(r.id);
    out.tokens.push(text);
    out.token_logprobs.push(r.logprob);
    if (r.logprob === null) out.top_logprobs.push(null);
    else if (withTop) out.top_logprobs.push(Object.fromEntries(r.top.map((t) => [texts.tokenText(t.id), t.logprob])));
    else out.top_logprobs.push({});
    out.text_offset.push(offset);
    offset += text.length;
  }
  if (!withTop) delete (out as Partial<CompletionLogprobs>).top_logprobs;
  return out;
}

/** The text length the tokens of `records` span, for the next chunk's text_offset. */
export function textLength(records: TokenRecord[], texts: TokenTexts): number {
  return records.reduce((sum, r) => sum + texts.tokenText(r.id).length, 0);
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
export interface ChoiceTokenizer {
  decode(ids: readonly number[]): string;
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
  private readonly detok: StreamDetokenizer;
  /** Length of the text the tokens pushed to `detok` decode to so far (`text` is a prefix of it). */
  private decodedLength = 0;
  /** Records whose token the detokenizer still holds (bytes of a character not complete yet). */
  private undecoded: TokenRecord[] = [];
  /** Records with a known place in the decoded text whose text is not all in `text` yet. */
  private unsent: { record: TokenRecord; end: number }[] = [];

  constructor(
    readonly index: number,
    readonly promptTokens: number,
    private readonly tokenizer: ChoiceTokenizer,
    /** As the sequence's option: an EOS token ends it and has no text. */
    private readonly stopOnEos: boolean,
  ) {
    this.detok = new StreamDetokenizer(tokenizer);
  }

  /**
   * Adds a step's piece (`finishReason` set on the sequence's last step); returns the text and the
   * logprob records that are new.
   */
  add(piece: GeneratedPiece | undefined, finishReason?: FinishReason): { text: string; records: TokenRecord[] } {
    if (piece) {
      this.completionTokens++;
      this.text += piece.text;
      const record = recordOf(piece);
      if (record && !(this.stopOnEos && piece.id === this.tokenizer.eosId)) {
        this.undecoded.push(record);
        this.decoded(this.detok.push(piece.id));
      }
    }
    // At the end the sequence releases what its detokenizer held (an incomplete character as U+FFFD);
    // an aborted one drops it.
    if (finishReason && finishReason !== "abort" && this.undecoded.length > 0) this.decoded(this.detok.flush());
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

  /** The tokens waiting in `undecoded` decoded to `text`: they start where it starts. */
  private decoded(text: string): void {
    if (text === "") return;
    const start = this.decodedLength;
    this.decodedLength += text.length;
    for (const record of this.undecoded) {
      record.offset = start;
      this.unsent.push({ record, end: this.decodedLength });
    }
    this.undecoded = [];
  }
}
