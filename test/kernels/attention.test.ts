// attention against the f64 reference: prefill against a cache, decode at late positions, GQA,
// odd head sizes, out == q.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena, VARIANTS, assertClose, randomF32, rng } from "./harness.js";
import { attention, f16ToF32, f32ToF16 } from "../../src/kernels/reference.js";
import { attentionF16ScratchBytes, attentionScratchBytes } from "../../src/kernels/wasm.js";

interface Case { T: number; positions: number[]; nHeads: number; nKvHeads: number; headDim: number; inPlace?: boolean }

function check(arena: Arena, c: Case, seed: number): void {
  const rand = rng(seed);
  const { T, nHeads, nKvHeads, headDim } = c;
  const maxPos = Math.max(...c.positions);
  const ctx = maxPos + 1 + 3; // rows past the last visible position hold garbage that must be ignored
  const q = randomF32(rand, T * nHeads * headDim, -2, 2);
  const kCache = randomF32(rand, ctx * nKvHeads * headDim, -2, 2);
  const vCache = randomF32(rand, ctx * nKvHeads * headDim);
  for (let i = (maxPos + 1) * nKvHeads * headDim; i < kCache.length; i++) kCache[i] = vCache[i] = 1e30;
  const positions = Int32Array.from(c.positions);
  const scale = 1 / Math.sqrt(headDim);
  const want = new Float32Array(T * nHeads * headDim);
  attention(want, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, scale);

  const qPtr = arena.put(q);
  const outPtr = c.inPlace ? qPtr : arena.alloc(want.byteLength);
  arena.k.attention(outPtr, qPtr, T, arena.put(positions), arena.put(kCache), arena.put(vCache),
    nHeads, nKvHeads, headDim, scale, arena.alloc(attentionScratchBytes(maxPos)));
  // outputs are convex combinations of v (|v| <= 1): f32 rounding of scores, exp and sums
  assertClose(arena.f32(outPtr, want.length), want, 2e-6, `attention ${JSON.stringify(c)}`);
}

for (const variant of VARIANTS) {
  test(`attention (${variant}): prefill against a cache (positions not starting at 0), MHA and GQA`, () => {
    const arena = new Arena(32 << 20, variant);
    check(arena, { T: 5, positions: [7, 8, 9, 10, 11], nHeads: 4, nKvHeads: 4, headDim: 80 }, 1);
    check(arena, { T: 6, positions: [0, 1, 2, 3, 4, 5], nHeads: 8, nKvHeads: 2, headDim: 80 }, 2);
    check(arena, { T: 3, positions: [30, 31, 32], nHeads: 6, nKvHeads: 3, headDim: 17 }, 3);
    check(arena, { T: 2, positions: [4, 5], nHeads: 2, nKvHeads: 1, headDim: 3, inPlace: true }, 4);
    check(arena, { T: 4, positions: [13, 14, 15, 16], nHeads: 4, nKvHeads: 2, headDim: 80, inPlace: true }, 5);
  });

  test(`attention (${variant}): decode at late positions, odd counts of visible keys`, () => {
    const arena = new Arena(64 << 20, variant);
    for (const [i, pos] of [0, 1, 2, 3, 4, 6, 63, 64, 65, 130, 2047].entries()) {
      check(arena, { T: 1, positions: [pos], nHeads: 4, nKvHeads: i % 2 === 0 ? 4 : 1, headDim: i % 3 === 0 ? 80 : 5 }, 10 + i);
    }
  });

  test(`attention (${variant}): batch of unordered positions (each row attends to its own prefix)`, () => {
    const arena = new Arena(32 << 20, variant);
    check(arena, { T: 4, positions: [9, 0, 33, 2], nHeads: 2, nKvHeads: 2, headDim: 8 }, 30);
  });

  test(`attention (${variant}): a single visible key returns its value exactly`, () => {
    const arena = new Arena(16 << 20, variant);
    const headDim = 7;
    const v = randomF32(rng(9), headDim);
    const out = arena.alloc(headDim * 4);
    arena.k.attention(out, arena.put(randomF32(rng(8), headDim)), 1, arena.put(new Int32Array([0])),
      arena.put(randomF32(rng(7), headDim)), arena.put(v), 1, 1, headDim, 0.5, arena.alloc(4));
    assert.deepEqual([...arena.f32(out, headDim)], [...v]);
  });
}

/**
 * attention_f16 on half caches: within 2e-6 of the f64 reference on the same (widened) values, and
 * bit-identical to the f32 kernel given the widened caches (the two cache types share one summation
 * order), for a lone query (widened as read) and several (widened into scratch first).
 */
function checkF16(arena: Arena, c: Case, seed: number): void {
  const rand = rng(seed);
  const { T, nHeads, nKvHeads, headDim } = c;
  const maxPos = Math.max(...c.positions);
  const ctx = maxPos + 1 + 3;
  const q = randomF32(rand, T * nHeads * headDim, -2, 2);
  const half = (lo: number, hi: number) => Uint16Array.from(randomF32(rand, ctx * nKvHeads * headDim, lo, hi), (x) => f32ToF16(x));
  const kHalf = half(-2, 2), vHalf = half(-1, 1);
  for (let i = (maxPos + 1) * nKvHeads * headDim; i < kHalf.length; i++) kHalf[i] = vHalf[i] = 0x7bff; // 65504: must stay unseen
  const kWide = Float32Array.from(kHalf, f16ToF32), vWide = Float32Array.from(vHalf, f16ToF32);
  const positions = Int32Array.from(c.positions);
  const scale = 1 / Math.sqrt(headDim);
  const want = new Float32Array(T * nHeads * headDim);
  attention(want, q, T, positions, kWide, vWide, nHeads, nKvHeads, headDim, scale);

  const posPtr = arena.put(positions);
  const f32Out = arena.alloc(want.byteLength);
  arena.k.attention(f32Out, arena.put(q), T, posPtr, arena.put(kWide), arena.put(vWide),
    nHeads, nKvHeads, headDim, scale, arena.alloc(attentionScratchBytes(maxPos)));
  const qPtr = arena.put(q);
  const outPtr = c.inPlace ? qPtr : arena.alloc(want.byteLength);
  arena.k.attention_f16(outPtr, qPtr, T, posPtr, arena.put(kHalf), arena.put(vHalf),
    nHeads, nKvHeads, headDim, scale, arena.alloc(attentionF16ScratchBytes(maxPos, headDim)));
  const got = arena.f32(outPtr, want.length);
  const label = `attention_f16 ${JSON.stringify(c)}`;
  assertClose(got, want, 2e-6, label);
  assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(arena.f32(f32Out, want.length).buffer), `${label}: same bits as attention on the widened cache`);
}

for (const variant of VARIANTS) {
  test(`attention_f16 (${variant}): half caches, decode and prefill, MHA and GQA, odd head sizes`, () => {
    const arena = new Arena(64 << 20, variant);
    for (const [i, pos] of [0, 1, 3, 4, 5, 64, 130, 2047].entries()) {
      checkF16(arena, { T: 1, positions: [pos], nHeads: 4, nKvHeads: i % 2 === 0 ? 4 : 2, headDim: i % 3 === 0 ? 80 : 7 }, 40 + i);
    }
    checkF16(arena, { T: 5, positions: [7, 8, 9, 10, 11], nHeads: 4, nKvHeads: 4, headDim: 80 }, 50);
    checkF16(arena, { T: 6, positions: [0, 1, 2, 3, 4, 5], nHeads: 8, nKvHeads: 2, headDim: 80, inPlace: true }, 51);
    checkF16(arena, { T: 3, positions: [30, 31, 32], nHeads: 6, nKvHeads: 3, headDim: 17 }, 52);
    checkF16(arena, { T: 4, positions: [9, 0, 33, 2], nHeads: 2, nKvHeads: 2, headDim: 8 }, 53);
  });
}
