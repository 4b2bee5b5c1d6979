// linear_f32 / linear_bf16 / linear_f16 against the f64 reference: odd sizes (tails of every loop),
// Phi-2-like sizes, both accumulate modes, bias on/off, several k chunks and token blocks; 16-bit
// weights in the grouped layout the model loads them into (K % 8 == 0) and row-major (otherwise).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena, EPS32, VARIANTS, assertClose, randomF32, rng } from "./harness.js";
import { bf16ToF32, f16ToF32, f32ToBf16Array, f32ToF16Array, linear } from "../../src/kernels/reference.js";
import { groupScratchBytes, type LinearKernel } from "../../src/kernels/wasm.js";

type WeightType = "f32" | "bf16" | "f16";

interface Case { T: number; K: number; N: number; accumulate: boolean; bias: boolean }

/** Weights as stored (bytes for the kernel) and as exact f32 values (for the reference). */
function makeWeights(type: WeightType, rand: () => number, n: number): { stored: Float32Array | Uint16Array; values: Float32Array } {
  const values = randomF32(rand, n);
  if (type === "f32") return { stored: values, values };
  const bits = new Uint16Array(n);
  if (type === "bf16") f32ToBf16Array(values, bits);
  else f32ToF16Array(values, bits);
  const exact = new Float32Array(n);
  for (let i = 0; i < n; i++) exact[i] = type === "bf16" ? bf16ToF32(bits[i]!) : f16ToF32(bits[i]!);
  return { stored: bits, values: exact };
}

/**
 * The weights written into the arena as the model holds them: row-major, then (16-bit types) put in
 * the kernels' grouped layout by group_rows_16bit, as loading a model does.
 */
function putWeights(arena: Arena, type: WeightType, stored: Float32Array | Uint16Array, N: number, K: number): number {
  const ptr = arena.put(stored);
  if (type !== "f32") arena.k.group_rows_16bit(ptr, N, K, arena.alloc(groupScratchBytes(K)));
  return ptr;
}

function kernelOf(arena: Arena, type: WeightType): LinearKernel {
  return type === "f32" ? arena.k.linear_f32 : type === "bf16" ? arena.k.linear_bf16 : arena.k.linear_f16;
}

function check(arena: Arena, type: WeightType, c: Case, seed: number): void {
  const rand = rng(seed);
  const { T, K, N } = c;
  const x = randomF32(rand, T * K);
  const w = makeWeights(type, rand, N * K);
  const bias = c.bias ? randomF32(rand, N) : null;
  const before = randomF32(rand, T * N, -2, 2);

  const want = before.slice();
  linear(want, x, w.values, bias, T, K, N, c.accumulate);
  // tolerance: f32 rounding of a blocked sum, relative to the sum of magnitudes
  const tol = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let mag = Math.abs(bias ? bias[n]! : 0) + (c.accumulate ? Math.abs(before[t * N + n]!) : 0);
      for (let k = 0; k < K; k++) mag += Math.abs(w.values[n * K + k]! * x[t * K + k]!);
      tol[t * N + n] = 4 * EPS32 * (Math.sqrt(K) + 2) * mag;
    }
  }

  const outPtr = arena.put(before);
  kernelOf(arena, type)(outPtr, arena.put(x), putWeights(arena, type, w.stored, N, K), bias ? arena.put(bias) : 0, T, K, N, c.accumulate ? 1 : 0);
  assertClose(arena.f32(outPtr, T * N), want, tol, `linear_${type} ${JSON.stringify(c)}`);
}

for (const variant of VARIANTS) for (const type of ["f32", "bf16", "f16"] as const) {
  test(`linear_${type} (${variant}): odd sizes, all modes`, () => {
    const arena = new Arena(16 << 20, variant);
    let seed = 1;
    for (const K of [1, 3, 8, 17, 33, 65, 161]) {
      for (const N of [1, 4, 5, 7]) {
        for (const T of [1, 2, 3, 5, 8, 13]) {
          const accumulate = (seed & 1) === 1;
          const bias = (seed & 2) === 2;
          check(arena, type, { T, K, N, accumulate, bias }, seed++);
        }
      }
    }
  });

  test(`linear_${type} (${variant}): every accumulate/bias combination`, () => {
    const arena = new Arena(16 << 20, variant);
    let seed = 100;
    for (const accumulate of [false, true]) {
      for (const bias of [false, true]) {
        for (const T of [1, 3]) check(arena, type, { T, K: 37, N: 9, accumulate, bias }, seed++);
      }
    }
  });

  test(`linear_${type} (${variant}): Phi-2-like head sizes`, () => {
    const arena = new Arena(16 << 20, variant);
    for (const T of [1, 2, 5]) check(arena, type, { T, K: 160, N: 480, accumulate: false, bias: true }, 200 + T);
    check(arena, type, { T: 3, K: 480, N: 160, accumulate: true, bias: false }, 210);
  });

  test(`linear_${type} (${variant}): several k chunks and token blocks`, () => {
    const arena = new Arena(64 << 20, variant);
    check(arena, type, { T: 3, K: 2048 + 2048 + 37, N: 6, accumulate: true, bias: true }, 300);
    check(arena, type, { T: 1, K: 4133, N: 5, accumulate: false, bias: true }, 301);
    check(arena, type, { T: 70, K: 33, N: 9, accumulate: true, bias: true }, 302);
    check(arena, type, { T: 130, K: 2049, N: 4, accumulate: false, bias: false }, 303);
    // K % 8 == 0: 16-bit weights grouped by 4 rows, over several chunks, with leftover rows
    check(arena, type, { T: 3, K: 2048 + 2048 + 40, N: 6, accumulate: true, bias: true }, 304);
    check(arena, type, { T: 1, K: 2048 + 8, N: 11, accumulate: false, bias: true }, 305);
    check(arena, type, { T: 70, K: 2048 + 24, N: 9, accumulate: true, bias: false }, 306);
  });
}

/**
 * Every finite weight value through every path (matvec, two-token small batch, panels) with one-hot x:
 * out[t, n] must equal w[n, t] exactly, which proves the conversion inside the kernel bit-exact.
 */
function exhaustive(type: "bf16" | "f16", variant: (typeof VARIANTS)[number]): void {
  const isFinite = (h: number) => (type === "f16" ? (h & 0x7c00) !== 0x7c00 : (h & 0x7f80) !== 0x7f80);
  const decode = type === "f16" ? f16ToF32 : bf16ToF32;
  const finite: number[] = [];
  for (let h = 0; h < 65536; h++) if (isFinite(h)) finite.push(h);
  const K = 16;
  const N = finite.length / K;
  assert.ok(Number.isInteger(N));
  const w = Uint16Array.from(finite);
  const arena = new Arena(8 << 20, variant);
  const kernel = kernelOf(arena, type);
  const wPtr = putWeights(arena, type, w, N, K);
  const want = new Float32Array(N * K);
  for (let i = 0; i < w.length; i++) want[i] = decode(w[i]!);

  // matvec: x = e_j gives column j
  const out = arena.alloc(N * 4);
  for (let j = 0; j < K; j++) {
    const x = new Float32Array(K);
    x[j] = 1;
    kernel(out, arena.put(x), wPtr, 0, 1, K, N, 0);
    const got = arena.f32(out, N);
    for (let n = 0; n < N; n++) {
      if (got[n] !== want[n * K + j]) assert.fail(`linear_${type} T=1: weight 0x${w[n * K + j]!.toString(16)} gave ${got[n]}, want ${want[n * K + j]}`);
    }
  }
  // small batch, two tokens sharing each converted weight vector: x = (e_j, e_j+1)
  const out2 = arena.alloc(2 * N * 4);
  for (let j = 0; j < K; j += 2) {
    const x = new Float32Array(2 * K);
    x[j] = 1;
    x[K + j + 1] = 1;
    kernel(out2, arena.put(x), wPtr, 0, 2, K, N, 0);
    const got = arena.f32(out2, 2 * N);
    for (let t = 0; t < 2; t++) {
      for (let n = 0; n < N; n++) {
        const want1 = want[n * K + j + t]!;
        if (got[t * N + n] !== want1) assert.fail(`linear_${type} T=2: weight 0x${w[n * K + j + t]!.toString(16)} gave ${got[t * N + n]}, want ${want1}`);
      }
    }
  }
  // panels: x = identity (K tokens) gives out[t, n] = w[n, t]; zero tokens after it make the batch
  // large enough for the panels (T >= SMALL_BATCH, 17)
  const T = 2 * K;
  const eye = new Float32Array(T * K);
  for (let j = 0; j < K; j++) eye[j * K + j] = 1;
  const outT = arena.alloc(T * N * 4);
  kernel(outT, arena.put(eye), wPtr, 0, T, K, N, 0);
  const got = arena.f32(outT, K * N);
  for (let t = 0; t < K; t++) {
    for (let n = 0; n < N; n++) {
      if (got[t * N + n] !== want[n * K + t]) assert.fail(`linear_${type} T=${K}: weight 0x${w[n * K + t]!.toString(16)} gave ${got[t * N + n]}, want ${want[n * K + t]}`);
    }
  }
}

for (const variant of VARIANTS) {
  test(`linear_f16 (${variant}): every finite half value converts exactly (matvec, two-token, panels)`, () => exhaustive("f16", variant));
  test(`linear_bf16 (${variant}): every finite bf16 value converts exactly (matvec, two-token, panels)`, () => exhaustive("bf16", variant));
}

/**
 * Batch invariance: a token's outputs are bit-identical whether it is computed alone (decode path),
 * in a small batch (two-token path), or in a large one (panels), at any place in the batch.
 */
for (const variant of VARIANTS) {
  test(`linear kernels (${variant}): results do not depend on T or the token's place in the batch`, () => {
    const arena = new Arena(64 << 20, variant);
    let seed = 500;
    for (const type of ["f32", "bf16", "f16"] as const) {
      for (const [K, N] of [[37, 7], [160, 9], [4133, 6], [4136, 6]] as const) {
        const rand = rng(seed++);
        const T = 19;
        const x = randomF32(rand, T * K, -3, 3);
        const w = makeWeights(type, rand, N * K);
        const bias = randomF32(rand, N);
        const before = randomF32(rand, T * N);
        const wPtr = putWeights(arena, type, w.stored, N, K);
        const bPtr = arena.put(bias);
        const kernel = kernelOf(arena, type);
        const run = (t0: number, count: number): Float32Array => {
          const out = arena.put(before.subarray(t0 * N, (t0 + count) * N));
          kernel(out, arena.put(x.subarray(t0 * K, (t0 + count) * K)), wPtr, bPtr, count, K, N, 1);
          return arena.f32(out, count * N);
        };
        const all = run(0, T);
        for (const [t0, count] of [[0, 1], [18, 1], [7, 1], [3, 2], [4, 3], [10, 7], [1, 8], [2, 17]] as const) {
          const part = run(t0, count);
          for (let i = 0; i < part.length; i++) {
            if (!Object.is(part[i], all[t0 * N + i])) {
              assert.fail(`linear_${type} K=${K} N=${N}: token ${t0 + Math.floor(i / N)} row ${i % N} gives ${part[i]} in a batch of ${count} but ${all[t0 * N + i]} in a batch of ${T}`);
            }
          }
        }
      }
    }
  });
}
