// Response and chunk objects exactly as OpenAI sends them, plus the per-choice bookkeeping both
// endpoints share (text so far, tokens, logprobs, finish reason).
import { randomBytes } from "node:crypto";
import type { FinishReason, GeneratedPiece, TokenLogprob } from "../index.js";

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

/** Everything one choice has produced so far. */
export class ChoiceState {
  text = "";
  completionTokens = 0;
  records: TokenRecord[] = [];
  finishReason: OpenAiFinishReason | null = null;
  /** Set when the sequence was aborted before it ever got a slot (timeout while queued). */
  neverStarted = false;

  constructor(readonly index: number, readonly promptTokens: number) {}

  /** Adds a step's piece; returns the text and the logprob records that are new. */
  add(piece: GeneratedPiece | undefined): { text: string; records: TokenRecord[] } {
    if (!piece) return { text: "", records: [] };
    this.completionTokens++;
    this.text += piece.text;
    const record = recordOf(piece);
    if (record) this.records.push(record);
    return { text: piece.text, records: record ? [record] : [] };
  }
}
