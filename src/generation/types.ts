// Shapes shared by generation, the library API and the server. A request's generation is a
// GenerationSequence: a small state machine the caller steps. One caller steps one sequence
// (generate.ts), the server's scheduler steps many in one batched engine.forward per token.

export interface SamplingOptions {
  /** 0 = greedy. Default 0.8 in the CLI, 1.0 in the OpenAI server (as OpenAI). */
  temperature?: number;
  topK?: number;            // 0 = off
  topP?: number;            // 1 = off
  minP?: number;            // 0 = off
  repetitionPenalty?: number; // 1 = off (CTRL-style, as llama.cpp / HF)
  presencePenalty?: number;   // 0 = off (OpenAI semantics)
  frequencyPenalty?: number;  // 0 = off (OpenAI semantics)
  /** Window of previous tokens the penalties look at; default 64 (as llama.cpp). -1 = whole context. */
  penaltyLastN?: number;
  /** Same seed, same text. Undefined = random. */
  seed?: number;
  /** Token id -> bias added to its logit (OpenAI logit_bias). */
  logitBias?: Record<number, number>;
}

export interface GenerationOptions extends SamplingOptions {
  /** Maximum new tokens; default: until EOS or the context is full. */
  maxTokens?: number;
  /** Stop strings (one string or a list, as in the OpenAI API); the matched stop string is not part of the output. */
  stop?: string | readonly string[];
  /** Stop on the EOS token (default true). */
  stopOnEos?: boolean;
  /** How many top alternatives to report per generated token (0 = none). */
  topLogprobs?: number;
  /** Report the chosen token's logprob even when topLogprobs is 0. */
  logprobs?: boolean;
}

export type FinishReason = "stop" | "length" | "eos" | "context" | "abort";

export interface TokenLogprob {
  id: number;
  text: string;
  logprob: number;
}

/** One step's outcome: the token chosen and the text it made printable (may be "" while held back). */
export interface GeneratedPiece {
  id: number;
  /** Text safe to show now (complete UTF-8, not part of a possible stop string). */
  text: string;
  logprob?: TokenLogprob;
  topLogprobs?: TokenLogprob[];
}

export interface StepResult {
  piece?: GeneratedPiece;
  /** Set when the sequence has ended; further text is in `piece.text` of this same step. */
  finishReason?: FinishReason;
}
