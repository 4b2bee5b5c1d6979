// Generation for one caller (CLI, library): steps a GenerationSequence against an Engine and yields
// text as it becomes printable. The server batches many sequences itself and does not use this loop.
import type { Engine } from "../model/engine.js";
import type { FinishReason, GeneratedPiece } from "./types.js";
import { GenerationSequence, type SequenceOptions, type SequenceTokenizer } from "./sequence.js";

export interface GenerateTokenizer extends SequenceTokenizer {
  encode(text: string): number[];
}

export interface GenerateOptions extends SequenceOptions {
  /** Aborting ends generation after the current forward pass, with finish reason "abort". */
  signal?: AbortSignal;
  /** KV-cache slot to use (default 0). */
  slot?: number;
}

export interface GenerationTimings {
  /** Time of the prompt's forward pass (prefill), which also yields the first token's logits. */
  promptMs: number;
  /** Time of the forward passes that fed generated tokens back (decode). */
  genMs: number;
  /** Prompt tokens actually fed (reused prefix excluded) per second of prefill. */
  promptTokensPerSec: number;
  /** Decode forward passes per second: each yields one new token. */
  genTokensPerSec: number;
}

export interface GenerationResult {
  text: string;
  /** Generated ids (a final EOS included). */
  ids: number[];
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the slot's cache (see SequenceOptions.cachedTokens). */
  reusedTokens: number;
  /** Ids now in the slot's KV cache: pass as cachedTokens to continue a conversation cheaply. */
  tokens: number[];
  seed: number;
  timings: GenerationTimings;
}

/**
 * Yields a piece for every token that made text printable (every token when logprobs are asked for)
 * and returns the final result. `prompt` is text (encoded without BOS) or token ids.
 */
export async function* generate(
  engine: Engine,
  tokenizer: GenerateTokenizer,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedPiece, GenerationResult, void> {
  const slot = options.slot ?? 0;
  if (!Number.isInteger(slot) || slot < 0 || slot >= engine.slots) {
    throw new RangeError(`slot must be an integer in [0, ${engine.slots - 1}], got ${slot}`);
  }
  const ids = typeof prompt === "string" ? tokenizer.encode(prompt) : prompt;
  const seq = new GenerationSequence(tokenizer, ids, options, engine.contextLength);
  const everyToken = !!options.logprobs || (options.topLogprobs ?? 0) > 0;
  let promptMs = 0;
  let genMs = 0;
  let promptFed = 0;
  let decodeSteps = 0;

  while (!seq.done) {
    if (options.signal?.aborted) {
      seq.abort();
      break;
    }
    const input = seq.nextInput();
    const started = performance.now();
    const [logits] = await engine.forward([{ slot, tokens: input.tokens, startPos: input.startPos }]);
    const elapsed = performance.now() - started;
    if (input.startPos < seq.promptTokens) {
      promptMs += elapsed;
      promptFed += input.tokens.length;
    } else {
      genMs += elapsed;
      decodeSteps++;
    }
    const step = seq.accept(logits);
    if (step.piece && (step.piece.text.length > 0 || everyToken)) yield step.piece;
  }

  return {
    text: seq.text,
    ids: seq.generatedIds,
    finishReason: seq.finishReason ?? "abort",
    promptTokens: seq.promptTokens,
    completionTokens: seq.completionTokens,
    reusedTokens: seq.reusedTokens,
    tokens: seq.tokens,
    seed: seq.seed,
    timings: {
      promptMs,
      genMs,
      promptTokensPerSec: promptMs > 0 ? (promptFed * 1000) / promptMs : 0,
      genTokensPerSec: genMs > 0 ? (decodeSteps * 1000) / genMs : 0,
    },
  };
}

/** Runs generate() to the end and returns the result (pieces are passed to `onPiece` if given). */
export async function generateText(
  engine: Engine,
  tokenizer: GenerateTokenizer,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
  onPiece?: (piece: GeneratedPiece) => void,
): Promise<GenerationResult> {
  const it = generate(engine, tokenizer, prompt, options);
  for (;;) {
    const next = await it.next();
    if (next.done) return next.value;
    onPiece?.(next.value);
  }
}
