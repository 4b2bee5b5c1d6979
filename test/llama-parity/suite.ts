// Parity of our engine with llama.cpp (an implementation nobody here wrote) on the same GGUF file,
// written by our quantizer from a random "peaked" test model (a clear top-1, so greedy decoding is
// decided by the model and not by rounding). Both run on the CPU: ours with 2 threads, llama.cpp with
// one (see LLAMA_THREADS), its plain attention path (see test/helpers/llama.ts), and the same KV cache
// type on both sides: f32 by default, so the comparison measures the implementations without the
// rounding of keys and values; f16 (both engines' default) where a suite asks for it.
//
// Two checks per (preset, type):
// - greedy: our generate() at temperature 0 and llama.cpp's own greedy sampler produce the same 32
//   tokens after prompts given as token ids (no BOS on either side, no randomness anywhere).
// - probabilities: softmax of the next-token logits at several positions of one prompt, all 51200
//   entries; the largest absolute difference is reported (t.diagnostic) and bounded per type.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel, generateText, type KvCacheType, type LoadedModel } from "../../src/index.js";
import { quantizeModel, type QuantizeType } from "../../src/formats/gguf-quantize.js";
import type { PhiConfig } from "../../src/model/config.js";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";
import { LlamaCppModel } from "../helpers/llama.js";

const THREADS = 2;
/**
 * llama.cpp's threads. One: its threads meet at spinning barriers after every graph node, and when the
 * test runner runs two files at once on a 2-core machine a waiting thread spins while the one it waits
 * for is descheduled (measured here: tiny model decode 1.2 tokens/s with 2 threads vs 126 with 1).
 * The thread count does not change llama.cpp's results (each dot product is summed by one thread).
 */
const LLAMA_THREADS = 1;
const CONTEXT = 128;
const GREEDY_TOKENS = 32;
/** phi-2's real vocabulary; ids from here to vocab_size are padding rows nobody may sample. */
const REAL_VOCAB = 50295;

/** Deterministic token ids in [0, REAL_VOCAB): prompts that are not the tokenization of anything. */
function ids(count: number, seed: number): number[] {
  let x = seed >>> 0;
  return Array.from({ length: count }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % REAL_VOCAB;
  });
}

/**
 * Candidate prompts for the greedy check (1 to 40 tokens). Random weights make near ties between the
 * two best tokens common somewhere in 32 steps, and a near tie is decided by rounding, not by the
 * model. So a step counts as decided when llama.cpp's top-1 logit leads by at least the type's
 * `decidedMargin` (see ParityBound); the check compares every prompt up to its first undecided step,
 * and prompts with none in full.
 */
const GREEDY_PROMPTS: ReadonlyArray<readonly number[]> = Array.from({ length: 16 }, (_, k) => ids([1, 4, 9, 20, 40][(k + 1) % 5]!, k + 1));

/** Prompt and positions for the probability check. */
const PROB_PROMPT = ids(48, 11);
const PROB_POSITIONS = [0, 1, 6, 17, 31, 47];

export function softmax(logits: Float32Array, offset: number, n: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(logits[offset + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  return out;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function secondLargest(a: ArrayLike<number>, top: number): number {
  let best = -Infinity;
  for (let i = 0; i < a.length; i++) if (i !== top && a[i]! > best) best = a[i]!;
  return best;
}

export interface ParityBound {
  /** Largest |p_ours - p_llama.cpp| allowed over every token and position. */
  maxProbDiff: number;
  /**
   * A greedy step is decided by the model (not by rounding) when llama.cpp's top-1 logit leads the
   * second by at least this much: over twice the largest log-probability difference measured between
   * the two implementations for this type.
   */
  decidedMargin: number;
  /** Prompts (of 16) that must be decided at all 32 steps, i.e. compared in full. */
  minFullPrompts: number;
  /** Tokens that must be compared over all prompts (the check must not pass by comparing nothing). */
  minComparedTokens: number;
  /** Why these bounds (printed with the measurement). */
  why: string;
  /** The matrices' held types must match this (a file meant to exercise given kernels must hold them). */
  held?: RegExp;
}

/** A test model of its own shape (e.g. rows of whole K-quant super-blocks), instead of a plain preset. */
export interface ParityModel {
  label: string;
  preset: "tiny" | "small";
  seed: number;
  config?: Partial<PhiConfig>;
}

/**
 * Registers the parity tests of one GGUF type on the given test models (default tiny and small), both
 * engines holding their KV cache in `kv`.
 */
export function llamaParitySuite(
  type: QuantizeType, bound: ParityBound, kv: KvCacheType = "f32",
  models: ReadonlyArray<"tiny" | "small" | ParityModel> = ["tiny", "small"],
): void {
  const kvLabel = kv === "f32" ? "" : `, ${kv} KV cache`;
  for (const model of models) {
    const m: ParityModel = typeof model === "string" ? { label: model, preset: model, seed: 1 } : model;
    const preset = m.label;
    describe(`${preset} ${type}${kvLabel}`, () => {
      let ours: LoadedModel;
      let llama: LlamaCppModel;

      before(async () => {
        const source = testModel({ preset: m.preset, dtype: "f32", seed: m.seed, peaked: true, config: m.config });
        const file = join(tempDir("phi2-llama-parity-"), `${preset}-${type}.gguf`);
        await quantizeModel(source, type, file);
        ours = await loadModel(file, { threads: THREADS, contextLength: CONTEXT, kvType: kv });
        llama = await LlamaCppModel.open(file, { threads: LLAMA_THREADS, contextSize: CONTEXT, kvCache: kv });
      });
      after(async () => {
        await ours?.dispose();
        await llama?.dispose();
      });

      test(`${preset} ${type}${kvLabel}: greedy ${GREEDY_TOKENS}-token continuations equal llama.cpp's`, async (t) => {
        const padding = Array.from({ length: ours.config.vocab_size - REAL_VOCAB }, (_, i) => REAL_VOCAB + i);
        let full = 0;
        let compared = 0;
        for (const prompt of GREEDY_PROMPTS) {
          const expected = await llama.greedy(prompt, GREEDY_TOKENS, padding);
          const result = await generateText(ours.engine, ours.tokenizer, prompt, {
            temperature: 0, maxTokens: GREEDY_TOKENS, stopOnEos: false, repetitionPenalty: 1,
          });
          assert.equal(expected.tokens.length, GREEDY_TOKENS);
          assert.equal(result.ids.length, GREEDY_TOKENS);
          // Tokens before the first undecided step must agree (that step may go either way, and every
          // later step depends on its choice).
          const undecided = expected.margins.findIndex((m) => m < bound.decidedMargin);
          const n = undecided < 0 ? GREEDY_TOKENS : undecided;
          assert.deepEqual(result.ids.slice(0, n), expected.tokens.slice(0, n),
            `prompt ${JSON.stringify(prompt)}: llama.cpp's leads ${expected.margins.map((m) => m.toFixed(2)).join(" ")}`);
          if (undecided < 0) full++;
          compared += n;
        }
        t.diagnostic(`${preset} ${type}${kvLabel}: ${full}/${GREEDY_PROMPTS.length} prompts decided (llama.cpp's lead >= ${bound.decidedMargin}) at all ${GREEDY_TOKENS} steps and identical; ${compared} tokens compared in all`);
        assert.ok(full >= bound.minFullPrompts, `only ${full} prompts without a near tie (lead < ${bound.decidedMargin}); add candidates`);
        assert.ok(compared >= bound.minComparedTokens, `only ${compared} tokens compared before near ties; add candidates`);
      });

      test(`${preset} ${type}${kvLabel}: next-token probabilities within ${bound.maxProbDiff} of llama.cpp's`, async (t) => {
        const expected = await llama.nextTokenProbabilities(PROB_PROMPT, PROB_POSITIONS);
        const V = ours.config.vocab_size;
        const [logits] = await ours.engine.forward([{ slot: 0, tokens: PROB_PROMPT, startPos: 0, allLogits: true }]); // (T, V)
        let maxDiff = 0;
        let maxTop1Diff = 0;
        PROB_POSITIONS.forEach((pos, k) => {
          const want = expected[k]!;
          assert.equal(want.length, V, "llama.cpp's vocabulary size");
          const got = softmax(logits!, pos * V, V);
          for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
          const top = argmax(want);
          maxTop1Diff = Math.max(maxTop1Diff, Math.abs(got[top]! - want[top]!));
          const lead = Math.log(want[top]!) - Math.log(secondLargest(want, top));
          if (lead >= bound.decidedMargin) assert.equal(argmax(got), top, `top-1 token after position ${pos}`);
        });
        t.diagnostic(`${preset} ${type}${kvLabel} (${ours.weights.types}): max |Δp| = ${maxDiff.toExponential(2)} (top-1 token: ${maxTop1Diff.toExponential(2)}) over ${PROB_POSITIONS.length} positions x ${V} tokens; bound ${bound.maxProbDiff}: ${bound.why}`);
        assert.ok(maxDiff <= bound.maxProbDiff, `max |Δp| ${maxDiff} > ${bound.maxProbDiff}`);
        if (bound.held) assert.match(ours.weights.types, bound.held, "held types");
      });
    });
  }
}
