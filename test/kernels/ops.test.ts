// layernorm, gelu_new, rope, add, add_bias, scale against the f64 reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena, EPS32, assertClose, randomF32, rng } from "./harness.js";
import * as ref from "../../src/kernels/reference.js";

test("layernorm: odd and Phi-2 widths, separate and in-place output", () => {
  const arena = new Arena();
  let seed = 1;
  for (const C of [1, 2, 3, 7, 8, 17, 80, 161, 2560]) {
    for (const T of [1, 3]) {
      for (const inPlace of [false, true]) {
        const rand = rng(seed++);
        const x = randomF32(rand, T * C, -3, 5); // nonzero mean: the subtraction matters
        const gamma = randomF32(rand, C, 0.5, 1.5);
        const beta = randomF32(rand, C, -0.5, 0.5);
        const want = new Float32Array(T * C);
        ref.layerNorm(want, x, gamma, beta, T, C, 1e-5);
        const xPtr = arena.put(x);
        const outPtr = inPlace ? xPtr : arena.alloc(T * C * 4);
        arena.k.layernorm(outPtr, xPtr, arena.put(gamma), arena.put(beta), T, C, 1e-5);
        // tolerance: f32 rounding of the normalized value (error grows slowly with C through mean/var)
        const tol = want.map((v, i) => 16 * EPS32 * (Math.abs(v - beta[i % C]!) * Math.sqrt(C) + Math.abs(beta[i % C]!) + 1e-3));
        assertClose(arena.f32(outPtr, T * C), want, tol, `layernorm C=${C} T=${T} inPlace=${inPlace}`);
      }
    }
  }
});

test("layernorm: constant rows normalize to beta (variance 0, eps keeps it finite)", () => {
  const arena = new Arena();
  const C = 19;
  const x = new Float32Array(C).fill(3.25);
  const beta = randomF32(rng(5), C);
  const out = arena.alloc(C * 4);
  arena.k.layernorm(out, arena.put(x), arena.put(new Float32Array(C).fill(2)), arena.put(beta), 1, C, 1e-5);
  assert.deepEqual([...arena.f32(out, C)], [...beta]);
});

test("gelu_new: within 5e-7 relative of the f64 formula over [-20, 20], odd lengths", () => {
  const arena = new Arena();
  const grid: number[] = [];
  for (let v = -20; v <= 20; v += 1 / 512) grid.push(v);
  grid.push(0, -0, 1e-30, -1e-30, 1e-8, 100, -100, 3e38, -3e38);
  for (const n of [grid.length, 1, 2, 3, 5]) {
    const x = Float32Array.from(grid.slice(0, n));
    const ptr = arena.put(x);
    arena.k.gelu_new(ptr, n);
    const got = arena.f32(ptr, n);
    const want = Array.from(x, ref.geluNewValue);
    // relative to the value; below 1e-36 (x < -9.9) the kernel may return -0
    const tol = want.map((v) => 5e-7 * Math.abs(v) + 1e-36);
    assertClose(got, want, tol, `gelu_new n=${n}`);
  }
});

test("gelu_new: reference equals the literal tanh formula where that formula is accurate", () => {
  const literal = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
  for (let v = -4; v <= 20; v += 1 / 64) {
    assert.ok(Math.abs(ref.geluNewValue(v) - literal(v)) <= 1e-14 * Math.max(1, Math.abs(v)), `v=${v}`);
  }
  assert.ok(Math.abs(ref.geluNewValue(1) - 0.8411919906082768) < 1e-15);
  assert.ok(Math.abs(ref.geluNewValue(-1) - -0.15880800939172324) < 1e-15);
  assert.equal(ref.geluNewValue(0), 0);
});

test("rope: Phi-2 layout (headDim 80, rotary 32), odd layouts, positions not starting at 0", () => {
  const arena = new Arena();
  const cases = [
    { T: 3, nHeads: 4, headDim: 80, rotaryDim: 32, rowStride: 4 * 80, start: 0 },
    { T: 5, nHeads: 3, headDim: 80, rotaryDim: 32, rowStride: 3 * 80 * 3, start: 1500 }, // a slice of a fused qkv row
    { T: 2, nHeads: 2, headDim: 6, rotaryDim: 4, rowStride: 13, start: 2040 },
    { T: 4, nHeads: 5, headDim: 8, rotaryDim: 8, rowStride: 40, start: 7 },
    { T: 1, nHeads: 2, headDim: 9, rotaryDim: 2, rowStride: 18, start: 1 },
  ];
  let seed = 10;
  for (const c of cases) {
    const rand = rng(seed++);
    const x = randomF32(rand, c.T * c.rowStride);
    const positions = Int32Array.from({ length: c.T }, (_, t) => c.start + t * (seed % 3 === 0 ? 2 : 1));
    const want = x.slice();
    ref.rope(want, c.T, c.rowStride, c.nHeads, c.headDim, c.rotaryDim, positions, 10000);
    const ptr = arena.put(x);
    arena.k.rope(ptr, c.T, c.rowStride, c.nHeads, c.headDim, c.rotaryDim, arena.put(positions), 10000);
    // each output mixes a and b: rounding of cos/sin to f32 and of the products
    const tol = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) tol[i] = 4 * EPS32 * 2; // |a|,|b| <= 1
    assertClose(arena.f32(ptr, x.length), want, tol, `rope ${JSON.stringify(c)}`);
    // everything outside the rotary dims is untouched, bit for bit
    const got = arena.f32(ptr, x.length);
    for (let t = 0; t < c.T; t++) {
      for (let i = 0; i < c.rowStride; i++) {
        const h = Math.floor(i / c.headDim);
        const d = i % c.headDim;
        if (h >= c.nHeads || d >= c.rotaryDim) assert.equal(got[t * c.rowStride + i], x[t * c.rowStride + i]);
      }
    }
  }
});

test("rope: position 0 is the identity; rotating by p then reading matches cos/sin of p·inv_freq", () => {
  const arena = new Arena();
  const x = randomF32(rng(3), 80);
  const ptr = arena.put(x);
  arena.k.rope(ptr, 1, 80, 1, 80, 32, arena.put(new Int32Array([0])), 10000);
  assert.deepEqual([...arena.f32(ptr, 80)], [...x]);
  // unit vector e_i rotated by position p lands at (cos, sin) of p / 10000^(2i/32)
  const e = new Float32Array(80);
  e[3] = 1;
  const p2 = arena.put(e);
  arena.k.rope(p2, 1, 80, 1, 80, 32, arena.put(new Int32Array([1234])), 10000);
  const angle = 1234 / Math.pow(10000, 6 / 32);
  const got = arena.f32(p2, 80);
  assert.ok(Math.abs(got[3]! - Math.cos(angle)) < 1e-7 && Math.abs(got[3 + 16]! - Math.sin(angle)) < 1e-7);
});

test("add, add_bias, scale: exact elementwise results, odd lengths", () => {
  const arena = new Arena();
  for (const n of [1, 3, 4, 5, 17, 2560]) {
    const rand = rng(n);
    const a = randomF32(rand, n);
    const b = randomF32(rand, n);
    const out = arena.put(a);
    arena.k.add(out, arena.put(b), n);
    const want = a.slice();
    ref.add(want, b, n);
    assert.deepEqual([...arena.f32(out, n)], [...want], `add n=${n}`);
    arena.k.scale(out, n, -0.75);
    ref.scale(want, n, -0.75);
    assert.deepEqual([...arena.f32(out, n)], [...want], `scale n=${n}`);
  }
  for (const [T, N] of [[1, 1], [3, 5], [2, 2560]] as const) {
    const rand = rng(T * 7 + N);
    const x = randomF32(rand, T * N);
    const bias = randomF32(rand, N);
    const ptr = arena.put(x);
    arena.k.add_bias(ptr, arena.put(bias), T, N);
    const want = x.slice();
    ref.addBias(want, bias, T, N);
    assert.deepEqual([...arena.f32(ptr, T * N)], [...want], `add_bias T=${T} N=${N}`);
  }
});
