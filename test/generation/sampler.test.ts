import { test } from "node:test";
import assert from "node:assert/strict";
import { Sampler, argmax } from "../../src/generation/sampler.js";
import { Rng } from "../../src/generation/rng.js";
import type { SamplingOptions } from "../../src/generation/types.js";

/** Logits whose softmax at temperature 1 is exactly `probs` (zeros become -Infinity). */
function logitsOf(probs: number[], padTo = probs.length): Float32Array {
  const l = new Float32Array(padTo).fill(-Infinity);
  probs.forEach((p, i) => (l[i] = p > 0 ? Math.log(p) : -Infinity));
  return l;
}

/** Counts of each id over `draws` samples. */
function histogram(sampler: Sampler, logits: Float32Array, draws: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < draws; i++) {
    const { id } = sampler.sample(logits, []);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

function support(counts: Map<number, number>): number[] {
  return [...counts.keys()].sort((a, b) => a - b);
}

const PROBS = [0.5, 0.3, 0.15, 0.05];

test("temperature 0 is argmax, lowest id on ties", () => {
  const s = new Sampler({ temperature: 0 }, 5);
  assert.equal(s.sample(new Float32Array([0.1, 3, -2, 2.9, 1]), []).id, 1);
  assert.equal(s.sample(new Float32Array([1, 5, 5, 0, 0]), []).id, 1);
  assert.equal(argmax(new Float32Array([NaN, -1, NaN])), 1);
});

test("ids at or past vocabLimit are never chosen", () => {
  const logits = new Float32Array([0, 1, 2, 100, 100]); // 3 and 4 stand for lm_head's padding rows
  assert.equal(new Sampler({ temperature: 0 }, 3).sample(logits, []).id, 2);
  const hot = new Sampler({ temperature: 5, seed: 1 }, 3);
  const counts = histogram(hot, logits, 2000);
  assert.deepEqual(support(counts), [0, 1, 2]);
  const biased = new Sampler({ temperature: 0, logitBias: { 4: 1000 } }, 3);
  assert.equal(biased.sample(logits, []).id, 2);
});

test("plain sampling follows softmax(logits / T)", () => {
  const draws = 20000;
  for (const temperature of [1, 2]) {
    const counts = histogram(new Sampler({ temperature, seed: 7 }, 4), logitsOf(PROBS), draws);
    const weights = PROBS.map((p) => Math.pow(p, 1 / temperature));
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => {
      const observed = (counts.get(i) ?? 0) / draws;
      assert.ok(Math.abs(observed - w / total) < 0.015, `T=${temperature} id ${i}: ${observed} vs ${w / total}`);
    });
  }
});

test("top-k keeps the k most likely", () => {
  const counts = histogram(new Sampler({ temperature: 1, topK: 2, seed: 3 }, 4), logitsOf(PROBS), 5000);
  assert.deepEqual(support(counts), [0, 1]);
  const share0 = (counts.get(0) ?? 0) / 5000;
  assert.ok(Math.abs(share0 - 0.5 / 0.8) < 0.03, `renormalised over the k: ${share0}`);
  assert.deepEqual(support(histogram(new Sampler({ temperature: 1, topK: 1, seed: 3 }, 4), logitsOf(PROBS), 200)), [0]);
  assert.deepEqual(support(histogram(new Sampler({ temperature: 1, topK: 10, seed: 3 }, 4), logitsOf(PROBS), 2000)), [0, 1, 2, 3]);
  // top-k then top-p: the nucleus is measured within the k survivors (0.5 / 0.8 >= 0.6).
  assert.deepEqual(support(histogram(new Sampler({ temperature: 1, topK: 2, topP: 0.6, seed: 3 }, 4), logitsOf(PROBS), 500)), [0]);
});

test("top-p keeps the smallest set reaching p", () => {
  const s = (topP: number) => support(histogram(new Sampler({ temperature: 1, topP, seed: 11 }, 4), logitsOf(PROBS), 4000));
  assert.deepEqual(s(0.5), [0]); // 0.5 alone reaches 0.5
  assert.deepEqual(s(0.79), [0, 1]); // 0.8
  assert.deepEqual(s(0.9), [0, 1, 2]); // 0.95
  assert.deepEqual(s(0.99), [0, 1, 2, 3]);
});

test("top-p on a long tail, with the prefilter, keeps exactly the nucleus", () => {
  // 1000 tokens: one with 0.6, one with 0.3, the rest share 0.1 evenly.
  const probs = new Array(1000).fill(0.1 / 998);
  probs[500] = 0.6;
  probs[20] = 0.3;
  const counts = histogram(new Sampler({ temperature: 1, topP: 0.85, seed: 5 }, 1000), logitsOf(probs), 3000);
  assert.deepEqual(support(counts), [20, 500]);
  const wide = histogram(new Sampler({ temperature: 1, topP: 0.95, seed: 5 }, 1000), logitsOf(probs), 3000);
  assert.ok(wide.size > 2, "0.95 needs tail tokens");
  // The nucleus is measured against the whole mass, tail included: 0.7 alone is below 0.75 of it.
  const probs2 = new Array(1000).fill(0.1 / 998);
  probs2[0] = 0.7;
  probs2[1] = 0.2;
  const two = histogram(new Sampler({ temperature: 1, topP: 0.75, seed: 5 }, 1000), logitsOf(probs2), 2000);
  assert.deepEqual(support(two), [0, 1]);
});

test("min-p drops tokens below minP times the best probability", () => {
  const s = (minP: number) => support(histogram(new Sampler({ temperature: 1, minP, seed: 13 }, 4), logitsOf(PROBS), 4000));
  assert.deepEqual(s(0.25), [0, 1, 2]); // threshold 0.125
  assert.deepEqual(s(0.5), [0, 1]); // threshold 0.25
  assert.deepEqual(s(1), [0]);
});

test("top-k, top-p and min-p combine (intersection in llama.cpp order)", () => {
  const counts = histogram(new Sampler({ temperature: 1, topK: 3, topP: 0.99, minP: 0.4, seed: 2 }, 4), logitsOf(PROBS), 3000);
  assert.deepEqual(support(counts), [0, 1]);
});

test("the cuts see temperature 1 and temperature only reweights the survivors (llama.cpp: temperature after min-p)", () => {
  // logits 2, 1, 0: probabilities 0.665, 0.245, 0.090 at temperature 1
  const logits = new Float32Array([2, 1, 0]);
  // min-p 0.3 cuts token 2 (0.090 < 0.3 · 0.665) at every temperature, even where T = 2 flattens it to 0.186 / 0.506
  for (const temperature of [0.5, 1, 2, 5]) {
    assert.deepEqual(support(histogram(new Sampler({ temperature, minP: 0.3, seed: 3 }, 3), logits, 4000)), [0, 1], `minP, T = ${temperature}`);
    // top-p 0.9: 0.665 + 0.245 reaches it at temperature 1, so {0, 1} whatever T
    assert.deepEqual(support(histogram(new Sampler({ temperature, topP: 0.9, seed: 4 }, 3), logits, 4000)), [0, 1], `topP, T = ${temperature}`);
  }
  // among the survivors, T = 2 draws 0 and 1 in the ratio e^((2 - 1) / 2) = 1.65
  const counts = histogram(new Sampler({ temperature: 2, minP: 0.3, seed: 5 }, 3), logits, 20000);
  const ratio = counts.get(0)! / counts.get(1)!;
  assert.ok(Math.abs(ratio - Math.exp(0.5)) < 0.1, `ratio ${ratio}`);
});

test("top-k at or beyond the vocabulary is top-k off, also for top-p's total", () => {
  // 2 tokens of weight 1 and 998 of weight 0.001: each heavy token holds 1/2.998 < 0.5 of the whole,
  // so top-p 0.5 over the whole distribution keeps both
  const probs = [1, 1, ...new Array(998).fill(0.001)];
  const logits = new Float32Array(probs.map(Math.log));
  for (const topK of [0, 999, 1000, 5000]) {
    const got = support(histogram(new Sampler({ temperature: 1, topK, topP: 0.5, seed: 6 }, 1000), logits, 3000));
    // top-k 999 drops one tail token: the nucleus is still {0, 1}
    assert.deepEqual(got, [0, 1], `topK ${topK}`);
  }
});

test("an infinite logit or a temperature too small to invert is greedy, not token 0", () => {
  const forced = new Sampler({ temperature: 1, seed: 7, logitBias: { 2: Infinity } }, 4);
  assert.equal(forced.sample(new Float32Array([0, 1, 0, 2]), []).id, 2);
  assert.equal(new Sampler({ temperature: 5e-324, seed: 8 }, 4).sample(new Float32Array([0, 1, 3, 2]), []).id, 2);
  assert.equal(new Sampler({ temperature: 5e-324, topK: 2, seed: 8 }, 4).sample(new Float32Array([0, 1, 3, 2]), []).id, 2);
  // nothing to choose from: refused, greedy or not
  for (const temperature of [0, 1]) {
    assert.throws(() => new Sampler({ temperature }, 3).sample(new Float32Array([NaN, NaN, NaN]), []), /every token is masked/);
    assert.throws(() => new Sampler({ temperature }, 2).sample(new Float32Array([-Infinity, -Infinity]), []), /every token is masked/);
  }
});

/** Penalised logits seen through logprobs: differences of logprobs are differences of logits. */
function effectiveLogits(options: SamplingOptions, logits: number[], history: number[]): number[] {
  const s = new Sampler({ ...options, temperature: 0, topLogprobs: logits.length }, logits.length);
  const { top } = s.sample(new Float32Array(logits), history);
  const byId = new Map(top!.map((t) => [t.id, t.logprob]));
  const ref = byId.get(logits.length - 1)! - logits[logits.length - 1]; // last id is never penalised
  return logits.map((_, i) => byId.get(i)! - ref);
}

function assertClose(actual: number[], expected: number[], eps = 1e-5): void {
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < eps, `[${i}] ${a} vs ${expected[i]}`));
}

test("repetition penalty divides positive logits and multiplies negative ones (CTRL)", () => {
  const logits = [2, -1, 0.5, 0];
  assertClose(effectiveLogits({ repetitionPenalty: 2 }, logits, [0, 1, 1]), [1, -2, 0.5, 0]);
});

test("presence and frequency penalties subtract per count (OpenAI)", () => {
  const logits = [2, -1, 0.5, 0];
  const got = effectiveLogits({ presencePenalty: 0.5, frequencyPenalty: 0.25 }, logits, [0, 1, 1, 1]);
  assertClose(got, [2 - 0.5 - 0.25, -1 - 0.5 - 0.75, 0.5, 0]);
});

test("penalties only look at the last penaltyLastN tokens", () => {
  const logits = [2, -1, 0.5, 0];
  assertClose(effectiveLogits({ presencePenalty: 1, penaltyLastN: 1 }, logits, [0, 1]), [2, -2, 0.5, 0]);
  assertClose(effectiveLogits({ presencePenalty: 1, penaltyLastN: 0 }, logits, [0, 1]), [2, -1, 0.5, 0]);
  const long = [0, ...new Array(100).fill(2)];
  assertClose(effectiveLogits({ presencePenalty: 1 }, logits, long), [2, -1, -0.5, 0]); // default 64
  assertClose(effectiveLogits({ presencePenalty: 1, penaltyLastN: -1 }, logits, long), [1, -1, -0.5, 0]);
});

test("logit bias is added before everything else", () => {
  const logits = new Float32Array([5, 1, 0]);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 0: -100 } }, 3).sample(logits, []).id, 1);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 2: 10 } }, 3).sample(logits, []).id, 2);
  const counts = histogram(new Sampler({ temperature: 1, seed: 4, logitBias: { 0: -100 } }, 3), logits, 2000);
  assert.ok(!counts.has(0));
});

test("logprobs are log-softmax at temperature 1, whatever the sampling temperature", () => {
  const logits = new Float32Array([1, 2, 3, 0.5]);
  const lse = Math.log([...logits].reduce((a, v) => a + Math.exp(v), 0));
  const out = new Sampler({ temperature: 0.3, seed: 9, logprobs: true, topLogprobs: 2 }, 4).sample(logits, []);
  assert.ok(Math.abs(out.logprob! - (logits[out.id] - lse)) < 1e-6);
  assert.deepEqual(out.top!.map((t) => t.id), [2, 1]);
  assert.ok(Math.abs(out.top![0].logprob - (3 - lse)) < 1e-6);
  const none = new Sampler({ temperature: 0 }, 4).sample(logits, []);
  assert.equal(none.logprob, undefined);
  assert.equal(none.top, undefined);
});

test("the same seed gives the same draws, another seed other draws", () => {
  const logits = logitsOf(new Array(50).fill(1 / 50));
  const run = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed }, 50);
    return Array.from({ length: 40 }, () => s.sample(logits, []).id);
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
  assert.equal(new Sampler({ seed: 42 }, 2).seed, 42);
  const random = new Sampler({}, 2);
  assert.ok(Number.isInteger(random.seed) && random.seed >= 0);
});

test("the PRNG is uniform enough", () => {
  const rng = new Rng(123);
  const buckets = new Array(10).fill(0);
  const n = 100000;
  for (let i = 0; i < n; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    buckets[Math.floor(x * 10)]++;
  }
  for (const b of buckets) assert.ok(Math.abs(b / n - 0.1) < 0.005, `bucket share ${b / n}`);
});

test("bad options are rejected with the option's name", () => {
  assert.throws(() => new Sampler({ topP: 1.5 }, 4), /topP must be a number in \[0, 1\]/);
  assert.throws(() => new Sampler({ temperature: -1 }, 4), /temperature/);
  assert.throws(() => new Sampler({ topK: 2.5 }, 4), /topK must be an integer/);
  assert.throws(() => new Sampler({ logitBias: { ["x" as unknown as number]: 1 } }, 4), /logitBias key/);
  assert.throws(() => new Sampler({}, 0), /vocabLimit/);
  assert.throws(
    () => new Sampler({ temperature: 1, logitBias: { 0: -Infinity, 1: -Infinity } }, 2).sample(new Float32Array(2), []),
    /every token is masked/,
  );
});
