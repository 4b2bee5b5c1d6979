// Float conversions (TS reference helpers and wasm bulk kernels) against independent exact decoders
// and nearest-even rounding computed in f64.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena, rng } from "./harness.js";
import {
  bf16ToF32, bf16ToF32Array, f16ToF32, f16ToF32Array, f32ToBf16, f32ToBf16Array, f32ToF16, f32ToF16Array,
} from "../../src/kernels/reference.js";

/** Half value from its fields, by the IEEE 754 definition (independent of the bit tricks). */
function exactHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * Math.pow(2, -24);
  return sign * (1 + mant / 1024) * Math.pow(2, exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (v: number): number => ((f32[0] = v), u32[0]!);
const valueOf = (bits: number): number => ((u32[0] = bits >>> 0), f32[0]!);

function sameValue(got: number, want: number): boolean {
  return Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
}

test("f16ToF32 and f16ToF32Array: all 65536 halves exact (signed zeros, subnormals, inf, nan payloads)", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bulk = new Float32Array(65536);
  f16ToF32Array(all, bulk);
  const bulkBits = new Uint32Array(bulk.buffer);
  for (let h = 0; h < 65536; h++) {
    const want = exactHalf(h);
    if (!sameValue(f16ToF32(h), want)) assert.fail(`f16ToF32(0x${h.toString(16)}) = ${f16ToF32(h)}, want ${want}`);
    if (!sameValue(bulk[h]!, want)) assert.fail(`f16ToF32Array[0x${h.toString(16)}] = ${bulk[h]}, want ${want}`);
    if (Number.isNaN(want)) {
      // payload kept: the half's 10 mantissa bits become the top f32 mantissa bits
      assert.equal(bulkBits[h], ((h & 0x8000) << 16 | 0x7f800000 | (h & 0x3ff) << 13) >>> 0);
    }
  }
});

test("convert_f16_to_f32 (wasm): all 65536 halves bit-identical to the exact decoding", () => {
  const arena = new Arena();
  const all = new Uint16Array(65536).map((_, i) => i);
  // odd count and offset so both the 8-wide loop and the scalar tail see every value class
  for (const [start, n] of [[0, 65536], [3, 65533 - 8], [65536 - 7, 7]] as const) {
    const src = arena.put(all.subarray(start, start + n));
    const dst = arena.alloc(n * 4);
    arena.k.convert_f16_to_f32(dst, src, n);
    const got = new Uint32Array(arena.memory.buffer, dst, n);
    for (let i = 0; i < n; i++) {
      const h = start + i;
      const want = exactHalf(h);
      const wantBits = Number.isNaN(want) ? ((h & 0x8000) << 16 | 0x7f800000 | (h & 0x3ff) << 13) >>> 0 : bitsOf(want);
      if (got[i] !== wantBits) assert.fail(`convert_f16_to_f32(0x${h.toString(16)}) bits 0x${got[i]!.toString(16)}, want 0x${wantBits.toString(16)}`);
    }
  }
});

test("f32ToF16: round trip of every half, nearest-even at every midpoint, overflow and underflow", () => {
  for (let h = 0; h < 65536; h++) {
    const v = exactHalf(h);
    if (Number.isNaN(v)) {
      const back = f32ToF16(v);
      assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, `nan stays nan (0x${back.toString(16)})`);
      continue;
    }
    assert.equal(f32ToF16(v), h, `round trip 0x${h.toString(16)}`);
  }
  // midpoints between consecutive positive finite halves (exact in f32): ties go to the even code;
  // one f32 ulp either side goes to the nearer one
  for (let h = 0; h < 0x7bff; h++) {
    const a = exactHalf(h);
    const b = exactHalf(h + 1);
    const mid = (a + b) / 2;
    assert.equal(bitsOf(mid) === bitsOf(Math.fround(mid)), true);
    const even = (h & 1) === 0 ? h : h + 1;
    assert.equal(f32ToF16(mid), even, `tie between 0x${h.toString(16)} and 0x${(h + 1).toString(16)}`);
    assert.equal(f32ToF16(-mid), even | 0x8000, `negative tie at 0x${h.toString(16)}`);
    assert.equal(f32ToF16(valueOf(bitsOf(mid) - 1)), h, `below midpoint at 0x${h.toString(16)}`);
    assert.equal(f32ToF16(valueOf(bitsOf(mid) + 1)), h + 1, `above midpoint at 0x${h.toString(16)}`);
  }
  assert.equal(f32ToF16(65519.996), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00);
  assert.equal(f32ToF16(1e9), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(2 ** -25), 0); // tie with zero goes to zero (even)
  assert.equal(f32ToF16(valueOf(bitsOf(2 ** -25) + 1)), 1);
  assert.equal(f32ToF16(1e-10), 0);
  assert.equal(f32ToF16(-0), 0x8000);
  const src = Float32Array.from([1, -2.5, 65504, 1e-7, NaN]);
  const dst = new Uint16Array(5);
  f32ToF16Array(src, dst);
  assert.deepEqual([...dst.subarray(0, 4)], [0x3c00, 0xc100, 0x7bff, f32ToF16(1e-7)]);
  assert.ok((dst[4]! & 0x7c00) === 0x7c00 && (dst[4]! & 0x3ff) !== 0);
});

/** Nearest-even bf16 of an f32 bit pattern, decided by comparing distances in f64. */
function nearestBf16(bits: number): number {
  const v = valueOf(bits);
  const lo = bits >>> 16; // truncation: toward zero
  const hi = lo + 1; // next code away from zero
  const dLo = Math.abs(v - valueOf(lo << 16));
  const hiValue = (hi & 0x7fff) === 0x7f80 ? (v < 0 ? -1 : 1) * 2 ** 128 : valueOf(hi << 16); // rounding past max → inf
  const dHi = Math.abs(hiValue - v);
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi & 0xffff;
  return (lo & 1) === 0 ? lo : hi & 0xffff;
}

test("f32ToBf16 (TS) and convert_f32_to_bf16 (wasm): nearest even on random and edge bit patterns", () => {
  const rand = rng(7);
  const patterns: number[] = [0, 0x80000000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0x7f7f8000, 0x7f7f7fff, 0x3f808000, 0x3f818000, 0x00008000, 0x00018000, 1];
  for (let i = 0; i < 200_000; i++) patterns.push(Math.floor(rand() * 2 ** 32));
  // ties: low 16 bits exactly 0x8000
  for (let i = 0; i < 10_000; i++) patterns.push(((Math.floor(rand() * 2 ** 16) << 16) | 0x8000) >>> 0);
  const src = new Float32Array(new Uint32Array(patterns).buffer);
  const dst = new Uint16Array(src.length);
  f32ToBf16Array(src, dst);
  const arena = new Arena(8 << 20);
  const srcPtr = arena.put(src);
  const dstPtr = arena.alloc(src.length * 2);
  arena.k.convert_f32_to_bf16(dstPtr, srcPtr, src.length);
  const wasm = arena.u16(dstPtr, src.length);
  for (let i = 0; i < patterns.length; i++) {
    const bits = patterns[i]! >>> 0;
    const isNan = (bits & 0x7fffffff) > 0x7f800000;
    const want = isNan ? -1 : nearestBf16(bits);
    for (const [name, got] of [["f32ToBf16", f32ToBf16(src[i]!)], ["f32ToBf16Array", dst[i]!], ["convert_f32_to_bf16", wasm[i]!]] as const) {
      if (isNan) {
        assert.ok((got & 0x7f80) === 0x7f80 && (got & 0x7f) !== 0, `${name}: nan 0x${bits.toString(16)} → 0x${got.toString(16)}`);
      } else if (got !== want) {
        assert.fail(`${name}(0x${bits.toString(16)}) = 0x${got.toString(16)}, want 0x${want.toString(16)}`);
      }
    }
  }
});

test("bf16ToF32 (TS) and convert_bf16_to_f32 (wasm): all 65536 codes exact", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bulk = new Float32Array(65536);
  bf16ToF32Array(all, bulk);
  const arena = new Arena();
  const n = 65533; // not a multiple of 8: scalar tail too
  const dst = arena.alloc(n * 4);
  arena.k.convert_bf16_to_f32(dst, arena.put(all.subarray(0, n)), n);
  const wasm = new Uint32Array(arena.memory.buffer, dst, n);
  const bulkBits = new Uint32Array(bulk.buffer);
  for (let h = 0; h < 65536; h++) {
    const want = (h << 16) >>> 0;
    assert.equal(bitsOf(bf16ToF32(h)) === want || Number.isNaN(bf16ToF32(h)), true, `bf16ToF32(0x${h.toString(16)})`);
    assert.equal(bulkBits[h], want, `bf16ToF32Array(0x${h.toString(16)})`);
    if (h < n) assert.equal(wasm[h], want, `convert_bf16_to_f32(0x${h.toString(16)})`);
  }
});

test("convert_f32_to_f16 (wasm): f32ToF16's nearest even everywhere, saturating at ±65504 instead of inf", () => {
  const rand = rng(11);
  const patterns: number[] = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f7fffff, 1, 0x33000000, 0x33000001];
  for (let i = 0; i < 200_000; i++) patterns.push(Math.floor(rand() * 2 ** 32));
  // the half range densely: |x| in [2^-26, 2^17) with random low bits, plus exact ties (low 13 bits 0x1000)
  for (let i = 0; i < 100_000; i++) {
    const bits = ((0x32800000 + Math.floor(rand() * (0x48000000 - 0x32800000))) | (rand() < 0.5 ? 0x80000000 : 0)) >>> 0;
    patterns.push(bits, ((bits & ~0x1fff) | 0x1000) >>> 0);
  }
  const src = new Float32Array(new Uint32Array(patterns).buffer);
  const arena = new Arena(8 << 20);
  const dstPtr = arena.alloc(src.length * 2);
  arena.k.convert_f32_to_f16(dstPtr, arena.put(src), src.length);
  const got = arena.u16(dstPtr, src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (Number.isNaN(v)) {
      assert.ok((got[i]! & 0x7c00) === 0x7c00 && (got[i]! & 0x3ff) !== 0, `nan 0x${patterns[i]!.toString(16)} → 0x${got[i]!.toString(16)}`);
      continue;
    }
    const want = f32ToF16(Math.max(-65504, Math.min(65504, v)));
    if (got[i] !== want) assert.fail(`convert_f32_to_f16(0x${(patterns[i]! >>> 0).toString(16)} = ${v}) = 0x${got[i]!.toString(16)}, want 0x${want.toString(16)}`);
  }
});
