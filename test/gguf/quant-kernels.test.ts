// linear_q8_0 / linear_q4_0 / linear_q4_k / linear_q5_k / linear_q6_k against (1) their TypeScript twin
// (same activation quantization; only f32 rounding differs) and (2) the exact product of the dequantized
// weights with the unquantized activations, within the error bound of int8 activation quantization: each
// activation is off by at most half its block's step d/2 plus the f16 rounding of d (2^-11 relative), so
// |error| <= Σ_i |w_i| · (d(block of i) / 2 + |x_i| · 2^-11).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createKernelMemory, instantiateKernels, kernelModule, type KernelVariant } from "../../src/kernels/wasm.js";
import { layoutScratchBytes, linearQuantRef, quantKernels, quantScratchBytes, type QuantDType } from "../../src/kernels/quant-kernels.js";
import { dequantizeRow, quantizeRow, rowBytes } from "../../src/formats/ggml-quants.js";

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * quantizeRow; for Q5_K (we have no quantizer for it) the row's Q4_K blocks (realistic scales and
 * minimums) with fifth bits from a fixed pseudo-random sequence, so valid blocks whose values are not
 * those of x (the tests compare with the dequantized weights).
 */
function quantize(dtype: QuantDType, x: Float32Array, xo: number, n: number, out: Uint8Array, oo: number): void {
  if (dtype === "Q5_K") {
    const q4 = new Uint8Array(rowBytes("Q4_K", n));
    quantizeRow("Q4_K", x, xo, n, q4, 0);
    let bits = (xo * 2654435761) >>> 0;
    for (let sb = 0; sb < n / 256; sb++) {
      const p = oo + sb * 176;
      out.set(q4.subarray(sb * 144, sb * 144 + 16), p);
      for (let i = 0; i < 32; i++) out[p + 16 + i] = (bits = (Math.imul(bits, 1103515245) + 12345) >>> 0) >>> 24;
      out.set(q4.subarray(sb * 144 + 16, sb * 144 + 144), p + 48);
    }
  } else quantizeRow(dtype, x, xo, n, out, oo);
}

class Arena {
  readonly memory = createKernelMemory(1 << 20);
  readonly base: ReturnType<typeof instantiateKernels>;
  readonly q: ReturnType<typeof quantKernels>;
  private top: number;
  constructor(variant?: KernelVariant) {
    this.base = instantiateKernels(this.memory, variant ? kernelModule(variant) : undefined);
    this.q = quantKernels(this.base.raw, this.memory, this.base.reservedBytes);
    this.top = this.base.reservedBytes;
  }
  alloc(bytes: number): number {
    const p = this.top;
    this.top = p + Math.ceil(bytes / 16) * 16 + 16;
    if (this.top > this.memory.buffer.byteLength) this.memory.grow(Math.ceil((this.top - this.memory.buffer.byteLength) / 65536));
    return p;
  }
  put(a: Float32Array | Uint8Array): number {
    const p = this.alloc(a.byteLength);
    new Uint8Array(this.memory.buffer, p, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return p;
  }
  f32(p: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, p, n).slice();
  }
}

interface Case { T: number; K: number; N: number; accumulate: boolean; bias: boolean }

function runCase(dtype: QuantDType, c: Case, seed: number): void {
  const rand = rng(seed);
  const { T, K, N } = c;
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const x = new Float32Array(T * K).map(() => gauss());
  const wf = new Float32Array(N * K).map(() => 0.05 * gauss());
  const rb = rowBytes(dtype, K);
  const w = new Uint8Array(N * rb);
  for (let n = 0; n < N; n++) quantize(dtype, wf, n * K, K, w, n * rb);
  const bias = c.bias ? new Float32Array(N).map(() => gauss()) : null;
  const before = new Float32Array(T * N).map(() => gauss());

  const a = new Arena();
  const out = a.put(before);
  const px = a.put(x);
  const pw = a.put(w);
  const pb = bias ? a.put(bias) : 0;
  const scratch = a.alloc(Math.max(quantScratchBytes(T, K), layoutScratchBytes(dtype, K)));
  a.q.toKernelLayout(dtype, pw, N, K, scratch);
  a.q.forType(dtype)(out, px, pw, pb, T, K, N, c.accumulate, scratch);
  const got = a.f32(out, T * N);

  // (1) the TypeScript twin
  const twin = before.slice();
  linearQuantRef(dtype, twin, x, w, bias, T, K, N, c.accumulate);
  // (2) exact: dequantized weights · unquantized x, in f64
  const deq = new Float32Array(N * K);
  for (let n = 0; n < N; n++) dequantizeRow(dtype, w, n * rb, K, deq, n * K);
  const label = `${dtype} T=${T} K=${K} N=${N} acc=${c.accumulate} bias=${c.bias}`;
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let exact = (c.accumulate ? before[t * N + n] : 0) + (bias ? bias[n] : 0);
      let bound = 0, mag = Math.abs(exact);
      for (let b = 0; b < K / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[t * K + b * 32 + j]));
        const step = amax / 127;
        for (let j = 0; j < 32; j++) {
          const i = b * 32 + j;
          exact += deq[n * K + i] * x[t * K + i];
          // half a step, plus the f16 rounding of the block scale (as ggml) applied to the value
          bound += Math.abs(deq[n * K + i]) * (step / 2 + Math.abs(x[t * K + i]) * 2 ** -11);
          mag += Math.abs(deq[n * K + i] * x[t * K + i]);
        }
      }
      const o = t * N + n;
      const f32tol = 1e-5 * (mag + bound) + 1e-6;
      assert.ok(Math.abs(got[o] - twin[o]) <= f32tol, `${label} [${t},${n}]: kernel ${got[o]} vs twin ${twin[o]}`);
      assert.ok(Math.abs(got[o] - exact) <= bound + f32tol, `${label} [${t},${n}]: kernel ${got[o]} vs exact ${exact}, bound ${bound}`);
    }
  }
}

const CASES: Case[] = [
  { T: 1, K: 256, N: 7, accumulate: false, bias: true },
  { T: 1, K: 512, N: 16, accumulate: true, bias: false },
  { T: 1, K: 2560, N: 5, accumulate: false, bias: false },
  { T: 3, K: 256, N: 9, accumulate: false, bias: true },
  { T: 5, K: 2304, N: 6, accumulate: true, bias: true }, // 2 panel chunks (2048 + 256), a 2-row tail
  { T: 2, K: 4608, N: 4, accumulate: false, bias: false }, // 3 chunks
];

for (const dtype of ["Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"] as const) {
  test(`linear_${dtype.toLowerCase()} matches its twin and the exact product within the activation-quantization bound`, () => {
    CASES.forEach((c, i) => runCase(dtype, c, 100 + i));
  });
}

test("32-block kernels take K that is a multiple of 32 only; q4_k, q5_k and q6_k need 256", () => {
  runCase("Q8_0", { T: 1, K: 96, N: 5, accumulate: false, bias: true }, 1);
  runCase("Q4_0", { T: 4, K: 160, N: 5, accumulate: true, bias: false }, 2);
  const a = new Arena();
  const p = a.alloc(1 << 16);
  assert.throws(() => a.q.linear_q8_0(p, p, p, 0, 1, 48, 1, false, p), /K = 48 must be a multiple of 32/);
  assert.throws(() => a.q.linear_q4_k(p, p, p, 0, 1, 160, 1, false, p), /K = 160 must be a multiple of 256/);
  assert.throws(() => a.q.linear_q5_k(p, p, p, 0, 1, 288, 1, false, p), /K = 288 must be a multiple of 256/);
  assert.throws(() => a.q.linear_q6_k(p, p, p, 0, 1, 2304 + 32, 1, false, p), /K = 2336 must be a multiple of 256/);
  assert.throws(() => a.q.linear_q4_0(p, p, p, 0, 1, 64, 1, false, a.memory.buffer.byteLength), /scratch/);
});

test("scratch size formula: int16 and int8 activations plus two floats per block", () => {
  assert.equal(quantScratchBytes(1, 2560), 2560 * 3 + 80 * 8);
  assert.equal(quantScratchBytes(512, 10240), 512 * (10240 * 3 + 320 * 8));
});

/**
 * Runs one kernel call on T tokens and returns the outputs' bit patterns. Same weights, activations,
 * previous outputs and bias for every call (seeded), so calls with different T can be compared row by row.
 */
function outputBits(dtype: QuantDType, variant: KernelVariant, tokens: number[], K: number, N: number): Uint32Array[] {
  const rand = rng(7);
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const allX = Array.from({ length: 12 }, () => new Float32Array(K).map(() => gauss()));
  const allBefore = Array.from({ length: 12 }, () => new Float32Array(N).map(() => gauss()));
  const wf = new Float32Array(N * K).map(() => 0.05 * gauss());
  const rb = rowBytes(dtype, K);
  const w = new Uint8Array(N * rb);
  for (let n = 0; n < N; n++) quantize(dtype, wf, n * K, K, w, n * rb);
  const bias = new Float32Array(N).map(() => gauss());
  const T = tokens.length;
  const x = new Float32Array(T * K);
  const before = new Float32Array(T * N);
  tokens.forEach((tok, t) => { x.set(allX[tok]!, t * K); before.set(allBefore[tok]!, t * N); });
  const a = new Arena(variant);
  const out = a.put(before);
  const pw = a.put(w);
  const scratch = a.alloc(Math.max(quantScratchBytes(T, K), layoutScratchBytes(dtype, K)));
  a.q.toKernelLayout(dtype, pw, N, K, scratch);
  a.q.forType(dtype)(out, a.put(x), pw, a.put(bias), T, K, N, true, scratch);
  const got = a.f32(out, T * N);
  return tokens.map((_, t) => new Uint32Array(got.buffer, t * N * 4, N).slice());
}

// A token's outputs must not depend on the batch it is computed in (the server batches requests and
// promises identical greedy results): decode (T = 1) and the panel path (T > 1) follow one summation
// order, across the K chunks of the panels too (K = 2560 > QPANEL_K), with bias and accumulate.
// The 8-bit (relaxed SIMD) and int16 (baseline) dot products give the same integer lanes, so both
// builds give the very same bits.
for (const dtype of ["Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"] as const) {
  test(`linear_${dtype.toLowerCase()}: batch invariant bit for bit (T = 1, 2, 3, 6, 9, 17; N = 3, 11, 13; K in 2 chunks) in each build`, () => {
    // 81 blocks for the 32-block types: a second chunk whose block count is not a multiple of 4
    const K = dtype === "Q4_K" || dtype === "Q5_K" || dtype === "Q6_K" ? 2560 : 2592, N = 11;
    const variants: KernelVariant[] = kernelModuleAvailable("relaxed") ? ["baseline", "relaxed"] : ["baseline"];
    const alonePerVariant: Uint32Array[][] = [];
    for (const variant of variants) {
      const alone = Array.from({ length: 9 }, (_, tok) => outputBits(dtype, variant, [tok], K, N)[0]!);
      alonePerVariant.push(alone);
      // small batches and panels for every type (q8_0, q5_k and q6_k switch at 8 tokens, q4_0 at 3, q4_k at 4)
      for (const batch of [[5, 3], [4, 1, 7], [2, 6, 0, 7, 1, 5], [0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 8, 2], Array.from({ length: 17 }, (_, i) => (i * 5) % 9)]) {
        const got = outputBits(dtype, variant, batch, K, N);
        batch.forEach((tok, t) => assert.deepEqual(got[t], alone[tok], `${dtype} ${variant}: token ${tok} at ${t} of a batch of ${batch.length}`));
      }
      // Other row counts: fewer rows than one 4-row group (all in ggml's layout), and 13 = a panel of 8,
      // one more full group, one row left.
      for (const rows of [3, 13]) {
        const one = Array.from({ length: 9 }, (_, tok) => outputBits(dtype, variant, [tok], K, rows)[0]!);
        for (const batch of [[4, 1, 7], [2, 6, 0, 7, 1, 5], [0, 1, 2, 3, 4, 5, 6, 7, 8]]) {
          const got = outputBits(dtype, variant, batch, K, rows);
          batch.forEach((tok, t) => assert.deepEqual(got[t], one[tok], `${dtype} ${variant} N = ${rows}: token ${tok} at ${t} of a batch of ${batch.length}`));
        }
      }
    }
    // The relaxed build fuses each block's multiply-add (one rounding instead of two): the builds agree
    // to f32 rounding of the block sums, not bit for bit.
    if (alonePerVariant.length === 2) {
      const [base, relaxed] = alonePerVariant as [Uint32Array[], Uint32Array[]];
      for (let tok = 0; tok < 9; tok++) {
        const a = new Float32Array(base[tok]!.buffer), b = new Float32Array(relaxed[tok]!.buffer);
        const scale = Math.max(...Array.from(a, Math.abs));
        for (let n = 0; n < N; n++) {
          assert.ok(Math.abs(a[n]! - b[n]!) <= 1e-5 * scale, `${dtype} token ${tok} row ${n}: baseline ${a[n]} vs relaxed ${b[n]}`);
        }
      }
    }
  });
}

// Q6_K at the ends of its integer ranges: 6-bit values all 0 (−32) or all 63 (+31) with scales −128 or
// 127, activations all ±127 (x = ±1 everywhere) or alternating: block totals up to 2·128·16·32·127 =
// 16 646 144, the bound argued in linear-q6_k.ts (pmaddubsw saturation or an i16 overflow would show
// here). Plus random bytes (every bit pattern is a valid Q6_K block) with f16 subnormal and negative
// d. Decode (T = 1) and panels (T = 9), each build, against the twin and bit for bit across T.
test("linear_q6_k: extreme and random-byte blocks match the twin in each build, decode and panels alike", () => {
  const K = 512, N = 7, T = 9; // T >= 8: the panels
  const rand = rng(99);
  const rb = rowBytes("Q6_K", K);
  const w = new Uint8Array(N * rb);
  for (let n = 0; n < N; n++) {
    for (let sb = 0; sb < K / 256; sb++) {
      const p = n * rb + sb * 210;
      if (n < 4) {
        const q = n & 1 ? 63 : 0, sc = n & 2 ? 127 : -128;
        w.fill((q & 0xf) * 0x11, p, p + 128);
        w.fill((q >> 4) * 0x55, p + 128, p + 192);
        w.fill(sc & 0xff, p + 192, p + 208);
      } else {
        for (let i = 0; i < 208; i++) w[p + i] = Math.floor(rand() * 256);
      }
      // d: normal, subnormal (row 5), negative (row 6)
      const dBits = n === 5 ? 0x0123 : (n === 6 ? 0x8000 : 0) | (0x1000 + Math.floor(rand() * 0x800));
      w[p + 208] = dBits & 0xff;
      w[p + 209] = dBits >> 8;
    }
  }
  const rand2 = rng(5);
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand2() + 1e-12)) * Math.cos(2 * Math.PI * rand2());
  const x = new Float32Array(T * K).map((_, i) => {
    const t = Math.floor(i / K);
    return t === 0 ? 1 : t === 1 ? -1 : t === 2 ? (i & 1 ? 1 : -1) : gauss();
  });
  const twin = new Float32Array(T * N);
  linearQuantRef("Q6_K", twin, x, w, null, T, K, N, false);
  const deq = new Float32Array(N * K);
  for (let n = 0; n < N; n++) dequantizeRow("Q6_K", w, n * rb, K, deq, n * K);
  const variants: KernelVariant[] = kernelModuleAvailable("relaxed") ? ["baseline", "relaxed"] : ["baseline"];
  for (const variant of variants) {
    const a = new Arena(variant);
    const pw = a.put(w);
    const scratch = a.alloc(quantScratchBytes(T, K));
    a.q.toKernelLayout("Q6_K", pw, N, K, scratch);
    const px = a.put(x);
    const out = a.alloc(T * N * 4);
    a.q.linear_q6_k(out, px, pw, 0, T, K, N, false, scratch);
    const batch = a.f32(out, T * N);
    for (let t = 0; t < T; t++) {
      const one = a.alloc(N * 4);
      a.q.linear_q6_k(one, px + t * K * 4, pw, 0, 1, K, N, false, scratch);
      const alone = a.f32(one, N);
      for (let n = 0; n < N; n++) {
        let mag = 0;
        for (let i = 0; i < K; i++) mag += Math.abs(deq[n * K + i]! * x[t * K + i]!);
        const label = `${variant} token ${t} row ${n}`;
        assert.ok(Math.abs(alone[n]! - twin[t * N + n]!) <= 1e-5 * mag + 1e-30, `${label}: kernel ${alone[n]} vs twin ${twin[t * N + n]}`);
        assert.ok(Object.is(alone[n], batch[t * N + n]), `${label}: T = 1 ${alone[n]} vs T = ${T} ${batch[t * N + n]}`);
      }
    }
  }
});

function kernelModuleAvailable(variant: KernelVariant): boolean {
  try {
    kernelModule(variant);
    return true;
  } catch {
    return false;
  }
}

// Q4_K and Q5_K with every scale, quant and fifth-bit byte random (every bit pattern of them is a valid
// block) and the super-block scales d and dmin normal, f16 subnormal (rows 5, 6: common in real files, where the
// largest sub-block scale / 63 is tiny) or negative (row 7), plus rows of all-15 nibbles with all-63
// scales, minimums and fifth bits (Q5_K: values 31 everywhere, the relaxed build's largest i16 sums).
// N = 10: two 4-row groups of the kernel layout and two rows left in ggml's.
// Decode (T = 1), a small batch (T = 2) and the panels (T = 9), each build: against the twin, and bit
// for bit across T.
for (const [dtype, blockBytes] of [["Q4_K", 144], ["Q5_K", 176]] as const) test(`linear_${dtype.toLowerCase()}: random-byte blocks with subnormal and negative scales match the twin in each build, decode and panels alike`, () => {
  const K = 512, N = 10, T = 9;
  const rand = rng(42);
  const rb = rowBytes(dtype, K);
  const w = new Uint8Array(N * rb);
  const half = (n: number): number => {
    if (n === 5 || n === 6) return 1 + Math.floor(rand() * 0x3ff); // subnormal
    return (n === 7 ? 0x8000 : 0) | (0x0c00 + Math.floor(rand() * 0x800)); // 2^-12 .. 2^-10
  };
  for (let n = 0; n < N; n++) {
    for (let sb = 0; sb < K / 256; sb++) {
      const p = n * rb + sb * blockBytes;
      if (n === 0 || n === 9) w.fill(0xff, p + 4, p + blockBytes);
      else for (let i = 4; i < blockBytes; i++) w[p + i] = Math.floor(rand() * 256);
      const d = half(n), dmin = half(n);
      w[p] = d & 0xff;
      w[p + 1] = d >> 8;
      w[p + 2] = dmin & 0xff;
      w[p + 3] = dmin >> 8;
    }
  }
  const rand2 = rng(6);
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand2() + 1e-12)) * Math.cos(2 * Math.PI * rand2());
  const x = new Float32Array(T * K).map((_, i) => (Math.floor(i / K) === 0 ? 1 : gauss()));
  const twin = new Float32Array(T * N);
  linearQuantRef(dtype, twin, x, w, null, T, K, N, false);
  const deq = new Float32Array(N * K);
  for (let n = 0; n < N; n++) dequantizeRow(dtype, w, n * rb, K, deq, n * K);
  const variants: KernelVariant[] = kernelModuleAvailable("relaxed") ? ["baseline", "relaxed"] : ["baseline"];
  for (const variant of variants) {
    const a = new Arena(variant);
    const pw = a.put(w);
    const scratch = a.alloc(Math.max(quantScratchBytes(T, K), layoutScratchBytes(dtype, K)));
    a.q.toKernelLayout(dtype, pw, N, K, scratch);
    const px = a.put(x);
    const run = (t0: number, tn: number): Float32Array => {
      const out = a.alloc(tn * N * 4);
      a.q.forType(dtype)(out, px + t0 * K * 4, pw, 0, tn, K, N, false, scratch);
      return a.f32(out, tn * N);
    };
    const batch = run(0, T);
    const pair = run(3, 2);
    for (let t = 0; t < T; t++) {
      const alone = run(t, 1);
      for (let n = 0; n < N; n++) {
        let mag = 0;
        for (let i = 0; i < K; i++) mag += Math.abs(deq[n * K + i]! * x[t * K + i]!);
        const label = `${variant} token ${t} row ${n}`;
        assert.ok(mag > 0 && Math.abs(alone[n]! - twin[t * N + n]!) <= 1e-5 * mag, `${label}: kernel ${alone[n]} vs twin ${twin[t * N + n]}`);
        assert.ok(Object.is(alone[n], batch[t * N + n]), `${label}: T = 1 ${alone[n]} vs T = ${T} ${batch[t * N + n]}`);
        if (t === 3 || t === 4) assert.ok(Object.is(alone[n], pair[(t - 3) * N + n]), `${label}: T = 1 ${alone[n]} vs T = 2 ${pair[(t - 3) * N + n]}`);
      }
    }
  }
});

// The 4-row groups of the kernel layout (Q4_K: interleaved; Q5_K: its values regrouped, see packed5 in
// _k-quant.ts) and the rows left in ggml's layout after them give a row the same bits: rows 4..6 copy
// rows 1..3 (random bytes, every bit pattern valid). Decode (T = 1), a small batch (T = 2) and the
// panels (T = 9), each build.
for (const [dtype, blockBytes] of [["Q4_K", 144], ["Q5_K", 176]] as const) test(`linear_${dtype.toLowerCase()}: a row gives the same bits in a 4-row group of the kernel layout and left in ggml's, in each build`, () => {
  const K = 768, N = 7;
  const rand = rng(7);
  const rb = rowBytes(dtype, K);
  const w = new Uint8Array(N * rb);
  for (let n = 0; n < 4; n++) {
    for (let sb = 0; sb < K / 256; sb++) {
      const p = n * rb + sb * blockBytes;
      for (let i = 4; i < blockBytes; i++) w[p + i] = Math.floor(rand() * 256);
      for (const o of [0, 2]) {
        const h = 0x0c00 + Math.floor(rand() * 0x800); // 2^-12 .. 2^-10
        w[p + o] = h & 0xff;
        w[p + o + 1] = h >> 8;
      }
    }
  }
  for (let n = 4; n < N; n++) w.copyWithin(n * rb, (n - 3) * rb, (n - 2) * rb);
  const rand2 = rng(8);
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand2() + 1e-12)) * Math.cos(2 * Math.PI * rand2());
  const variants: KernelVariant[] = kernelModuleAvailable("relaxed") ? ["baseline", "relaxed"] : ["baseline"];
  for (const variant of variants) {
    const a = new Arena(variant);
    const pw = a.put(w);
    for (const T of [1, 2, 9]) {
      const x = new Float32Array(T * K).map(() => gauss());
      const scratch = a.alloc(Math.max(quantScratchBytes(T, K), layoutScratchBytes(dtype, K)));
      if (T === 1) a.q.toKernelLayout(dtype, pw, N, K, scratch);
      const px = a.put(x);
      const out = a.alloc(T * N * 4);
      a.q.forType(dtype)(out, px, pw, 0, T, K, N, false, scratch);
      const got = a.f32(out, T * N);
      for (let t = 0; t < T; t++) {
        for (let n = 4; n < N; n++) {
          assert.ok(Object.is(got[t * N + n], got[t * N + n - 3]), `${variant} T = ${T} token ${t}: row ${n} (ggml's layout) ${got[t * N + n]} vs row ${n - 3} (a group) ${got[t * N + n - 3]}`);
        }
      }
    }
  }
});
