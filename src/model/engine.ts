// The contract between the model (which runs forward passes) and everything above it: generation,
// the server's continuous batching, the library API. The model knows nothing of text or HTTP.
import type { PhiConfig } from "./config.js";

/** One sequence's share of a batched forward pass. */
export interface ForwardItem {
  /** KV-cache slot of this sequence, 0 <= slot < engine.slots. */
  slot: number;
  /** New tokens to append at positions startPos .. startPos + tokens.length - 1. */
  tokens: number[];
  /** Position of tokens[0]; everything in the slot at positions >= startPos is overwritten/forgotten. */
  startPos: number;
  /** Return logits for every new token (prefill checks) instead of only the last one. */
  allLogits?: boolean;
}

export interface Engine {
  readonly config: PhiConfig;
  /** Number of independent KV-cache slots (sequences that can be in flight together). */
  readonly slots: number;
  /** Tokens each slot can hold (<= config.max_position_embeddings). */
  readonly contextLength: number;
  /** Number of worker threads doing the maths. */
  readonly threads: number;
  /**
   * The error that stopped the engine for good (a worker failed mid-pass or died), or undefined while it
   * works. Once set it stays set, and every later forward() rejects: the process must be restarted. Not
   * set by dispose(), nor by a call refused for its arguments.
   */
  readonly failure: Error | undefined;
  /**
   * Runs all items in one batched forward pass (weights are read once for the whole batch) and returns,
   * per item, the next-token logits: vocab_size floats, or tokens.length * vocab_size with allLogits.
   */
  forward(items: ForwardItem[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}
