// Prompt-processing and generation speed of an engine, measured the way llama-bench does, so the two
// tools' tables read alike:
//   ppN: one forward pass of N prompt tokens into an empty cache (position 0), the whole batch at once;
//   tgN: N tokens generated one forward pass at a time, from an empty cache (positions 0 .. N-1).
// No sampling is timed: the fed token ids are fixed (speed does not depend on which tokens). Before the
// timed runs, one single-token pass warms the machine up: the first pass over freshly loaded weights
// also pays for mapping their memory on some systems, which is load time, not speed.
import type { Engine } from "./engine.js";

export interface ThroughputOptions {
  /** One pp test per entry, in order: its prompt tokens (0: skipped). */
  promptTokens: number[];
  /** One tg test per entry, in order: its generated tokens (0: skipped). */
  genTokens: number[];
  /** Timed runs of each test. */
  repetitions: number;
  /** Milliseconds clock (default performance.now); tests inject their own. */
  now?: () => number;
}

export interface ThroughputResult {
  /** llama-bench's name: "pp512", "tg128". */
  test: string;
  tokens: number;
  /** Tokens per second of each run, in run order. */
  tokPerS: number[];
  mean: number;
  /** Sample standard deviation over the runs (0 for one run). */
  stddev: number;
}

/** Deterministic, ordinary-text-like token ids, all below `vocab` and below 50000 (no special tokens). */
export function benchTokenIds(count: number, vocab: number): number[] {
  const span = Math.min(vocab, 50000);
  return Array.from({ length: count }, (_, i) => (i * 7919 + 13) % span);
}

function summarize(test: string, tokens: number, seconds: number[]): ThroughputResult {
  const tokPerS = seconds.map((s) => tokens / s);
  const mean = tokPerS.reduce((a, b) => a + b, 0) / tokPerS.length;
  const variance = tokPerS.length > 1 ? tokPerS.reduce((a, v) => a + (v - mean) ** 2, 0) / (tokPerS.length - 1) : 0;
  return { test, tokens, tokPerS, mean, stddev: Math.sqrt(variance) };
}

/** The context the tests need: their longest prompt or generation. */
export function throughputContext(o: Pick<ThroughputOptions, "promptTokens" | "genTokens">): number {
  return Math.max(0, ...o.promptTokens, ...o.genTokens);
}

/**
 * Runs the pp tests, then the tg tests, on slot 0 of `engine` (whose context must hold
 * throughputContext(o) tokens) and returns their results in that order; `onResult` hears each as it
 * completes.
 */
export async function measureThroughput(
  engine: Engine, o: ThroughputOptions, onResult?: (r: ThroughputResult) => void,
): Promise<ThroughputResult[]> {
  const now = o.now ?? (() => performance.now());
  const need = throughputContext(o);
  if (need > engine.contextLength) {
    throw new RangeError(`the tests need ${need} tokens of context, the engine has ${engine.contextLength}`);
  }
  if (!Number.isInteger(o.repetitions) || o.repetitions < 1) throw new RangeError(`repetitions must be a positive integer, got ${o.repetitions}`);
  const ids = benchTokenIds(Math.max(need, 1), engine.config.vocab_size);
  await engine.forward([{ slot: 0, tokens: ids.slice(0, 1), startPos: 0 }]);
  const results: ThroughputResult[] = [];
  const done = (r: ThroughputResult) => {
    results.push(r);
    onResult?.(r);
  };
  for (const p of o.promptTokens.filter((n) => n > 0)) {
    const prompt = ids.slice(0, p);
    const seconds: number[] = [];
    for (let r = 0; r < o.repetitions; r++) {
      const t0 = now();
      await engine.forward([{ slot: 0, tokens: prompt, startPos: 0 }]);
      seconds.push((now() - t0) / 1000);
    }
    done(summarize(`pp${p}`, p, seconds));
  }
  for (const n of o.genTokens.filter((n) => n > 0)) {
    const seconds: number[] = [];
    for (let r = 0; r < o.repetitions; r++) {
      const t0 = now();
      for (let i = 0; i < n; i++) await engine.forward([{ slot: 0, tokens: [ids[i]!], startPos: i }]);
      seconds.push((now() - t0) / 1000);
    }
    done(summarize(`tg${n}`, n, seconds));
  }
  return results;
}
