// linear_bf16: out (T, N) [+]= x (T, K) f32 · w (N, K) bf16ᵀ [+ bias (N) f32], f32 accumulation.

import { PANEL, PANEL_STRIDE, SMALL_BATCH, linearPanels, linearSmallBatch, store1, store4 } from "./_linear";
import { bf16Scalar, hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_bf16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4Bf16, rows4x2Bf16, rows1Bf16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, bf16Panel);
}

/** bf16 rows → f32 panel: widen to 32 bits and shift into the high half. */
function bf16Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const vecBytes = <usize>(kc & ~7) << 1;
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
    let dst = PANEL + <usize>r * PANEL_STRIDE;
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const v = v128.load(src + k);
      v128.store(dst + (k << 1), i32x4.shl(i32x4.extend_low_i16x8_u(v), 16));
      v128.store(dst + (k << 1), i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), 16);
    }
    for (let k = kc & ~7; k < kc; k++) {
      store<f32>(dst + (<usize>k << 2), bf16Scalar(load<u16>(src + (<usize>k << 1))));
    }
  }
}

/** One leftover row against one token. */
function rows1Bf16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  let s: f32 = 0;
  for (let k = 0; k < K; k++) s += bf16Scalar(load<u16>(row + (<usize>k << 1))) * load<f32>(x + (<usize>k << 2));
  store1(out, s, bias, addOut);
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart) against x. A v128 of 8 bf16 read as i32 lanes holds element 2i in the low
 * half and 2i+1 in the high half of lane i, so `<< 16` gives the even elements as f32 and
 * `& 0xffff0000` the odd ones: x is split into even/odd lanes once per 8 columns and shared by the
 * 4 rows.
 */
function rows4Bf16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 1; // bf16 bytes covered by the 8-wide loop
  const high = i32x4.splat(0xffff0000);
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
  let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 16) {
    const xp = x + (k << 1);
    const xa = v128.load(xp);
    const xb = v128.load(xp, 16);
    const xe = v128.shuffle<f32>(xa, xb, 0, 2, 4, 6);
    const xo = v128.shuffle<f32>(xa, xb, 1, 3, 5, 7);
    let v = v128.load(r0 + k);
    e0 = madd(i32x4.shl(v, 16), xe, e0);
    o0 = madd(v128.and(v, high), xo, o0);
    v = v128.load(r1 + k);
    e1 = madd(i32x4.shl(v, 16), xe, e1);
    o1 = madd(v128.and(v, high), xo, o1);
    v = v128.load(r2 + k);
    e2 = madd(i32x4.shl(v, 16), xe, e2);
    o2 = madd(v128.and(v, high), xo, o2);
    v = v128.load(r3 + k);
    e3 = madd(i32x4.shl(v, 16), xe, e3);
    o3 = madd(v128.and(v, high), xo, o3);
  }
  let sums = hsum4(f32x4.add(e0, o0), f32x4.add(e1, o1), f32x4.add(e2, o2), f32x4.add(e3, o3));
  if (K & 7) sums = f32x4.add(sums, tail4(x, r0, rowBytes, K));
  store4(out, sums, bias, addOut);
}

/**
 * out[0..4] and out[os..os+4] (two tokens, x rows xs apart) from rows r0.. (rowBytes apart). Each
 * accumulator takes one add per step (even·x + odd·x summed off the dependency chain).
 */
function rows4x2Bf16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 1;
  const high = i32x4.splat(0xffff0000);
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
    const xe = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6);
    const xo = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
    lo = v128.load(yp);
    hi = v128.load(yp, 16);
    const ye = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6);
    const yo = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
    let v = v128.load(r0 + k);
    let we = i32x4.shl(v, 16);
    let wo = v128.and(v, high);
    a0 = f32x4.add(a0, madd(wo, xo, f32x4.mul(we, xe)));
    b0 = f32x4.add(b0, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r1 + k);
    we = i32x4.shl(v, 16);
    wo = v128.and(v, high);
    a1 = f32x4.add(a1, madd(wo, xo, f32x4.mul(we, xe)));
    b1 = f32x4.add(b1, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r2 + k);
    we = i32x4.shl(v, 16);
    wo = v128.and(v, high);
    a2 = f32x4.add(a2, madd(wo, xo, f32x4.mul(we, xe)));
    b2 = f32x4.add(b2, madd(wo, yo, f32x4.mul(we, ye)));
    v = v128.load(r3 + k);
    we = i32x4.shl(v, 16);
    wo = v128.and(v, high);
    a3 = f32x4.add(a3, madd(wo, xo, f32x4.mul(we, xe)));
    b3 = f32x4.add(b3, madd(wo, yo, f32x4.mul(we, ye)));
  }
  let sa = hsum4(a0, a1, a2, a3);
  let sb = hsum4(b0, b1, b2, b3);
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
    s0 += bf16Scalar(load<u16>(off)) * xv;
    s1 += bf16Scalar(load<u16>(off + rowBytes)) * xv;
    s2 += bf16Scalar(load<u16>(off + 2 * rowBytes)) * xv;
    s3 += bf16Scalar(load<u16>(off + 3 * rowBytes)) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
