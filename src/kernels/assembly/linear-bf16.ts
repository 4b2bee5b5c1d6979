// linear_bf16: out (T, N) [+]= x (T, K) f32 · w (N, K) bf16ᵀ [+ bias (N) f32], f32 accumulation.
// Summation order: the canonical one of _linear.ts (results do not depend on T or batch position).

import {
  PANEL, PANEL_K, PANEL_STRIDE, SMALL_BATCH, combine1, combine4, linearPanels, linearSmallBatch,
} from "./_linear";
import { bf16Scalar, hsum, hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_bf16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4Bf16, rows4x2Bf16, rows1Bf16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, bf16Panel, 1);
}

/** 4 bf16 at p → 4 f32: zero-extend to 32 bits, shift into the high half. */
// @ts-ignore: decorator
@inline function bf16x4At(p: usize): v128 {
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/** bf16 rows → f32 panel. */
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

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart) against x, 4 columns per step: each row's 4 bf16 are loaded zero-extended
 * to i32 lanes and shifted into f32 position, x is loaded once for the 4 rows.
 */
function rows4Bf16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  let v = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + (<usize>k0 << 1);
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 1; // bf16 bytes of whole 4-column vectors
    const pairBytes = <usize>(kc & ~7) << 1; // ... of whole 8-column steps
    // 8 columns per step with one 16-byte load per row (half the loads of 4-column steps); the two
    // halves go into the same accumulator in column order, so the sum is the canonical one.
    let k: usize = 0;
    for (; k < pairBytes; k += 16) {
      const xa = v128.load(xk + (k << 1));
      const xb = v128.load(xk + (k << 1), 16);
      let v = v128.load(w0 + k);
      a0 = madd(i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), xb, madd(i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), xa, a0));
      v = v128.load(w1 + k);
      a1 = madd(i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), xb, madd(i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), xa, a1));
      v = v128.load(w2 + k);
      a2 = madd(i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), xb, madd(i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), xa, a2));
      v = v128.load(w3 + k);
      a3 = madd(i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), xb, madd(i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), xa, a3));
    }
    for (; k < vecBytes; k += 8) {
      const xv = v128.load(xk + (k << 1));
      a0 = madd(bf16x4At(w0 + k), xv, a0);
      a1 = madd(bf16x4At(w1 + k), xv, a1);
      a2 = madd(bf16x4At(w2 + k), xv, a2);
      a3 = madd(bf16x4At(w3 + k), xv, a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (kc & 3) s = f32x4.add(s, tail4(xk, w0, rowBytes, kc));
    v = combine4(s, v, k0 == 0, out, bias, addOut);
  }
  v128.store(out, v);
}

/** out[0..4] and out[os..os+4] (two tokens, x rows xs apart): each converted vector serves both. */
function rows4x2Bf16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
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
      const xv = v128.load(xk + (k << 1));
      const yv = v128.load(yk + (k << 1));
      let wv = bf16x4At(w0 + k);
      a0 = madd(wv, xv, a0);
      b0 = madd(wv, yv, b0);
      wv = bf16x4At(w1 + k);
      a1 = madd(wv, xv, a1);
      b1 = madd(wv, yv, b1);
      wv = bf16x4At(w2 + k);
      a2 = madd(wv, xv, a2);
      b2 = madd(wv, yv, b2);
      wv = bf16x4At(w3 + k);
      a3 = madd(wv, xv, a3);
      b3 = madd(wv, yv, b3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    let sb = hsum4(b0, b1, b2, b3);
    if (kc & 3) {
      sa = f32x4.add(sa, tail4(xk, w0, rowBytes, kc));
      sb = f32x4.add(sb, tail4(yk, w0, rowBytes, kc));
    }
    va = combine4(sa, va, k0 == 0, out, bias, addOut);
    vb = combine4(sb, vb, k0 == 0, out + os, bias, addOut);
  }
  v128.store(out, va);
  v128.store(out + os, vb);
}

/** One leftover row against one token. */
function rows1Bf16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  let v: f32 = 0;
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const wk = row + (<usize>k0 << 1);
    const xk = x + (<usize>k0 << 2);
    let acc = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 1;
    for (let k: usize = 0; k < vecBytes; k += 8) acc = madd(bf16x4At(wk + k), v128.load(xk + (k << 1)), acc);
    let s = hsum(acc);
    if (kc & 3) {
      let tail: f32 = 0;
      for (let k = kc & ~3; k < kc; k++) tail += bf16Scalar(load<u16>(wk + (<usize>k << 1))) * load<f32>(xk + (<usize>k << 2));
      s += tail;
    }
    v = combine1(s, v, k0 == 0, out, bias, addOut);
  }
  store<f32>(out, v);
}

/** Scalar sums of the last kc % 4 columns of 4 rows (w0.., rowBytes apart) against x, as a vector. */
function tail4(x: usize, w0: usize, rowBytes: usize, kc: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = kc & ~3; k < kc; k++) {
    const xv = load<f32>(x + (<usize>k << 2));
    const off = w0 + (<usize>k << 1);
    s0 += bf16Scalar(load<u16>(off)) * xv;
    s1 += bf16Scalar(load<u16>(off + rowBytes)) * xv;
    s2 += bf16Scalar(load<u16>(off + 2 * rowBytes)) * xv;
    s3 += bf16Scalar(load<u16>(off + 3 * rowBytes)) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
