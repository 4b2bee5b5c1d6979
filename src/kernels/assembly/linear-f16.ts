// linear_f16: out (T, N) [+]= x (T, K) f32 · w (N, K) IEEE halfᵀ [+ bias (N) f32], f32 accumulation.
// Weights must be finite (no inf/nan); subnormals and signed zeros are exact.

import { PANEL, PANEL_STRIDE, SMALL_BATCH, linearPanels, linearSmallBatch, store1, store4 } from "./_linear";
import { f16Scalar, f16x4, hsum4, madd } from "./_simd";

/** 2^56: half of the 2^112 that rebiases a half's exponent (see rows4F16). */
// @ts-ignore: decorator
@inline const HALF_RESCALE: f32 = reinterpret<f32>(0x5b800000);

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_f16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4F16, rows4x2F16, rows1F16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f16Panel);
}

/** half rows → f32 panel: sign-extend to 32 bits, then the shift/mask/rescale of f16x4. */
function f16Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const vecBytes = <usize>(kc & ~7) << 1;
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
    let dst = PANEL + <usize>r * PANEL_STRIDE;
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(src + k);
      v128.store(dst + (k << 1), f16x4(i32x4.extend_low_i16x8_s(v)));
      v128.store(dst + (k << 1), f16x4(i32x4.extend_high_i16x8_s(v)), 16);
    }
    for (let k = kc & ~7; k < kc; k++) {
      store<f32>(dst + (<usize>k << 2), f16Scalar(<i32>load<i16>(src + (<usize>k << 1))));
    }
  }
}

/** One leftover row against one token. */
function rows1F16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  let s: f32 = 0;
  for (let k = 0; k < K; k++) s += f16Scalar(<i32>load<i16>(row + (<usize>k << 1))) * load<f32>(x + (<usize>k << 2));
  store1(out, s, bias, addOut);
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart) against x. A v128 of 8 halves read as i32 lanes holds element 2i in the low
 * half and 2i+1 in the high half of lane i. An arithmetic shift right by 3 of a half sitting in the
 * top 16 bits moves its exponent and mantissa to their f32 positions and smears the sign over bits
 * 28..31; masking with 0x8fffe000 keeps the sign at bit 31 and drops the neighbour's bits. That f32
 * is the weight times 2^-112; the missing 2^112 is split as 2^56 on x (once per 8 columns, shared by
 * the 4 rows) and 2^56 on the final sums: both exact power-of-two scalings; no finite activation
 * below 2^72 overflows (products below 2^-70 may lose bits to f32 subnormals: far below the f32
 * rounding of any sum they join).
 */
function rows4F16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 1;
  const mask = i32x4.splat(0x8fffe000);
  const halfRescale = f32x4.splat(HALF_RESCALE);
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
  let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const xp = x + (k << 1);
    const xa = v128.load(xp);
    const xb = v128.load(xp, 16);
    const xe = f32x4.mul(v128.shuffle<f32>(xa, xb, 0, 2, 4, 6), halfRescale);
    const xo = f32x4.mul(v128.shuffle<f32>(xa, xb, 1, 3, 5, 7), halfRescale);
    let v = v128.load(r0 + k);
    e0 = madd(v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask), xe, e0);
    o0 = madd(v128.and(i32x4.shr_s(v, 3), mask), xo, o0);
    v = v128.load(r1 + k);
    e1 = madd(v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask), xe, e1);
    o1 = madd(v128.and(i32x4.shr_s(v, 3), mask), xo, o1);
    v = v128.load(r2 + k);
    e2 = madd(v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask), xe, e2);
    o2 = madd(v128.and(i32x4.shr_s(v, 3), mask), xo, o2);
    v = v128.load(r3 + k);
    e3 = madd(v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask), xe, e3);
    o3 = madd(v128.and(i32x4.shr_s(v, 3), mask), xo, o3);
  }
  let sums = f32x4.mul(hsum4(f32x4.add(e0, o0), f32x4.add(e1, o1), f32x4.add(e2, o2), f32x4.add(e3, o3)), halfRescale);
  if (K & 7) sums = f32x4.add(sums, tail4(x, r0, rowBytes, K));
  store4(out, sums, bias, addOut);
}

/**
 * out[0..4] and out[os..os+4] (two tokens, x rows xs apart) from rows r0.. (rowBytes apart): each
 * converted weight vector serves both tokens; each accumulator takes one add per step.
 */
function rows4x2F16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 1;
  const mask = i32x4.splat(0x8fffe000);
  const halfRescale = f32x4.splat(HALF_RESCALE);
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  const y = x + xs;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const xp = x + (k << 1);
    const yp = y + (k << 1);
    let lo = v128.load(xp);
    let hi = v128.load(xp, 16);
    const xe = f32x4.mul(v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), halfRescale);
    const xo = f32x4.mul(v128.shuffle<f32>(lo, hi, 1, 3, 5, 7), halfRescale);
    lo = v128.load(yp);
    hi = v128.load(yp, 16);
    const ye = f32x4.mul(v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), halfRescale);
    const yo = f32x4.mul(v128.shuffle<f32>(lo, hi, 1, 3, 5, 7), halfRescale);
    let v = v128.load(r0 + k);
    let we = v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask);
    let wo = v128.and(i32x4.shr_s(v, 3), mask);
    a0 = f32x4.add(a0, madd(wo, xo, f32x4.mul(we, xe)));
    b0 = f32x4.add(b0, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r1 + k);
    we = v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask);
    wo = v128.and(i32x4.shr_s(v, 3), mask);
    a1 = f32x4.add(a1, madd(wo, xo, f32x4.mul(we, xe)));
    b1 = f32x4.add(b1, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r2 + k);
    we = v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask);
    wo = v128.and(i32x4.shr_s(v, 3), mask);
    a2 = f32x4.add(a2, madd(wo, xo, f32x4.mul(we, xe)));
    b2 = f32x4.add(b2, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r3 + k);
    we = v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), mask);
    wo = v128.and(i32x4.shr_s(v, 3), mask);
    a3 = f32x4.add(a3, madd(wo, xo, f32x4.mul(we, xe)));
    b3 = f32x4.add(b3, madd(wo, yo, f32x4.mul(we, ye)));
  }
  let sa = f32x4.mul(hsum4(a0, a1, a2, a3), halfRescale);
  let sb = f32x4.mul(hsum4(b0, b1, b2, b3), halfRescale);
  if (K & 7) {
    sa = f32x4.add(sa, tail4(x, r0, rowBytes, K));
    sb = f32x4.add(sb, tail4(y, r0, rowBytes, K));
  }
  store4(out, sa, bias, addOut);
  store4(out + os, sb, bias, addOut);
}

/** Scalar sums of the last K % 8 columns of 4 rows against x, as a vector. */
function tail4(x: usize, r0: usize, rowBytes: usize, K: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = K & ~7; k < K; k++) {
    const xv = load<f32>(x + (<usize>k << 2));
    const off = r0 + (<usize>k << 1);
    s0 += f16Scalar(<i32>load<i16>(off)) * xv;
    s1 += f16Scalar(<i32>load<i16>(off + rowBytes)) * xv;
    s2 += f16Scalar(<i32>load<i16>(off + 2 * rowBytes)) * xv;
    s3 += f16Scalar(<i32>load<i16>(off + 3 * rowBytes)) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
