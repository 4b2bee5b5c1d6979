// linear_f16: out (T, N) [+]= x (T, K) f32 · w (N, K) IEEE halfᵀ [+ bias (N) f32], f32 accumulation.
// Weights must be finite (no inf/nan); subnormals and signed zeros are exact.
// Summation order: the canonical one of _linear.ts (results do not depend on T or batch position).
//
// Half → f32 without a table: a half sign-extended to 32 bits and shifted left by 13 has its
// exponent and mantissa at their f32 positions; masking with 0x8fffe000 keeps the sign at bit 31
// and drops the smeared sign bits. Read as f32 that is w·2^-112 (exact, half subnormals landing on
// f32 subnormals). The missing 2^112 is applied as powers of two that keep every product exact and
// identical in both paths: decode multiplies x by 2^56 (once per vector, shared by 4 rows), the
// panels hold w·2^-56, and both multiply the chunk sums by 2^56. (x beyond ±2^72 would overflow.)

import {
  PANEL, PANEL_K, PANEL_STRIDE, SMALL_BATCH, combine1, combine4, linearPanels, linearSmallBatch,
} from "./_linear";
import { hsum, hsum4, madd } from "./_simd";

/** 2^56. */
// @ts-ignore: decorator
@inline const HALF_RESCALE: f32 = reinterpret<f32>(0x5b800000);

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_f16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4F16, rows4x2F16, rows1F16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f16Panel, HALF_RESCALE);
}

/** Four halves (sign-extended i32 lanes) → w·2^-112 as f32. */
// @ts-ignore: decorator
@inline function scaledF16x4(signExtended: v128): v128 {
  return v128.and(i32x4.shl(signExtended, 13), i32x4.splat(0x8fffe000));
}

/** 4 halves at p → w·2^-112. */
// @ts-ignore: decorator
@inline function scaledF16x4At(p: usize): v128 {
  return scaledF16x4(v128.load16x4_s(p));
}

/** One half at p → w·2^-112. */
// @ts-ignore: decorator
@inline function scaledF16At(p: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(p) << 13) & 0x8fffe000);
}

/** half rows → f32 panel holding w·2^-56. */
function f16Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const vecBytes = <usize>(kc & ~7) << 1;
  const rescale = f32x4.splat(HALF_RESCALE);
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
    let dst = PANEL + <usize>r * PANEL_STRIDE;
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(src + k);
      v128.store(dst + (k << 1), f32x4.mul(scaledF16x4(i32x4.extend_low_i16x8_s(v)), rescale));
      v128.store(dst + (k << 1), f32x4.mul(scaledF16x4(i32x4.extend_high_i16x8_s(v)), rescale), 16);
    }
    for (let k = kc & ~7; k < kc; k++) {
      store<f32>(dst + (<usize>k << 2), scaledF16At(src + (<usize>k << 1)) * HALF_RESCALE);
    }
  }
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart) against x, 4 columns per step, x loaded (and scaled) once for the 4 rows.
 */
function rows4F16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const rescale = f32x4.splat(HALF_RESCALE);
  let v = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + (<usize>k0 << 1);
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 1;
    const pairBytes = <usize>(kc & ~7) << 1;
    // 8 columns per step with one 16-byte load per row; both halves go into the same accumulator in
    // column order, so the sum is the canonical one (as the 4-column loop below).
    let k: usize = 0;
    for (; k < pairBytes; k += 16) {
      const xa = f32x4.mul(v128.load(xk + (k << 1)), rescale);
      const xb = f32x4.mul(v128.load(xk + (k << 1), 16), rescale);
      let v = v128.load(w0 + k);
      a0 = madd(scaledF16x4(i32x4.extend_high_i16x8_s(v)), xb, madd(scaledF16x4(i32x4.extend_low_i16x8_s(v)), xa, a0));
      v = v128.load(w1 + k);
      a1 = madd(scaledF16x4(i32x4.extend_high_i16x8_s(v)), xb, madd(scaledF16x4(i32x4.extend_low_i16x8_s(v)), xa, a1));
      v = v128.load(w2 + k);
      a2 = madd(scaledF16x4(i32x4.extend_high_i16x8_s(v)), xb, madd(scaledF16x4(i32x4.extend_low_i16x8_s(v)), xa, a2));
      v = v128.load(w3 + k);
      a3 = madd(scaledF16x4(i32x4.extend_high_i16x8_s(v)), xb, madd(scaledF16x4(i32x4.extend_low_i16x8_s(v)), xa, a3));
    }
    for (; k < vecBytes; k += 8) {
      const xv = f32x4.mul(v128.load(xk + (k << 1)), rescale);
      a0 = madd(scaledF16x4At(w0 + k), xv, a0);
      a1 = madd(scaledF16x4At(w1 + k), xv, a1);
      a2 = madd(scaledF16x4At(w2 + k), xv, a2);
      a3 = madd(scaledF16x4At(w3 + k), xv, a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (kc & 3) s = f32x4.add(s, tail4(xk, w0, rowBytes, kc));
    v = combine4(f32x4.mul(s, rescale), v, k0 == 0, out, bias, addOut);
  }
  v128.store(out, v);
}

/** out[0..4] and out[os..os+4] (two tokens, x rows xs apart): each converted vector serves both. */
function rows4x2F16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const rescale = f32x4.splat(HALF_RESCALE);
  let va = f32x4.splat(0), vb = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + (<usize>k0 << 1);
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    const yk = xk + xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 1;
    for (let k: usize = 0; k < vecBytes; k += 8) {
      const xv = f32x4.mul(v128.load(xk + (k << 1)), rescale);
      const yv = f32x4.mul(v128.load(yk + (k << 1)), rescale);
      let wv = scaledF16x4At(w0 + k);
      a0 = madd(wv, xv, a0);
      b0 = madd(wv, yv, b0);
      wv = scaledF16x4At(w1 + k);
      a1 = madd(wv, xv, a1);
      b1 = madd(wv, yv, b1);
      wv = scaledF16x4At(w2 + k);
      a2 = madd(wv, xv, a2);
      b2 = madd(wv, yv, b2);
      wv = scaledF16x4At(w3 + k);
      a3 = madd(wv, xv, a3);
      b3 = madd(wv, yv, b3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    let sb = hsum4(b0, b1, b2, b3);
    if (kc & 3) {
      sa = f32x4.add(sa, tail4(xk, w0, rowBytes, kc));
      sb = f32x4.add(sb, tail4(yk, w0, rowBytes, kc));
    }
    va = combine4(f32x4.mul(sa, rescale), va, k0 == 0, out, bias, addOut);
    vb = combine4(f32x4.mul(sb, rescale), vb, k0 == 0, out + os, bias, addOut);
  }
  v128.store(out, va);
  v128.store(out + os, vb);
}

/** One leftover row against one token. */
function rows1F16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  const rescale = f32x4.splat(HALF_RESCALE);
  let v: f32 = 0;
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const wk = row + (<usize>k0 << 1);
    const xk = x + (<usize>k0 << 2);
    let acc = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 1;
    for (let k: usize = 0; k < vecBytes; k += 8) {
      acc = madd(scaledF16x4At(wk + k), f32x4.mul(v128.load(xk + (k << 1)), rescale), acc);
    }
    let s = hsum(acc);
    if (kc & 3) {
      let tail: f32 = 0;
      for (let k = kc & ~3; k < kc; k++) tail += scaledF16At(wk + (<usize>k << 1)) * (load<f32>(xk + (<usize>k << 2)) * HALF_RESCALE);
      s += tail;
    }
    v = combine1(s * HALF_RESCALE, v, k0 == 0, out, bias, addOut);
  }
  store<f32>(out, v);
}

/** Scalar sums (scaled by 2^-56) of the last kc % 4 columns of 4 rows against x, as a vector. */
function tail4(x: usize, w0: usize, rowBytes: usize, kc: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = kc & ~3; k < kc; k++) {
    const xv = load<f32>(x + (<usize>k << 2)) * HALF_RESCALE;
    const off = w0 + (<usize>k << 1);
    s0 += scaledF16At(off) * xv;
    s1 += scaledF16At(off + rowBytes) * xv;
    s2 += scaledF16At(off + 2 * rowBytes) * xv;
    s3 += scaledF16At(off + 3 * rowBytes) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
