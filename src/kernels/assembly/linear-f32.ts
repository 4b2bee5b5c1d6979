// linear_f32: out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias (N)], all f32.
// Summation order: the canonical one of _linear.ts (results do not depend on T or batch position).

import {
  PANEL, PANEL_K, PANEL_STRIDE, SMALL_BATCH, chunkDotF32, combine1, combine4, linearPanels, linearSmallBatch,
} from "./_linear";
import { hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_f32(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 4, rows4F32, rows4x2F32, rows1F32);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f32Panel, 1);
}

/** f32 rows → panel: a copy, so the rows being multiplied sit together in L1. */
function f32Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 2);
    memory.copy(PANEL + <usize>r * PANEL_STRIDE, src, <usize>kc << 2);
  }
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart) against x, 4 columns per step, x loaded once for the 4 rows.
 */
function rows4F32(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  let v = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + (<usize>k0 << 2);
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 2;
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const xv = v128.load(xk + k);
      a0 = madd(v128.load(w0 + k), xv, a0);
      a1 = madd(v128.load(w1 + k), xv, a1);
      a2 = madd(v128.load(w2 + k), xv, a2);
      a3 = madd(v128.load(w3 + k), xv, a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (kc & 3) s = f32x4.add(s, tail4(xk, w0, rowBytes, kc));
    v = combine4(s, v, k0 == 0, out, bias, addOut);
  }
  v128.store(out, v);
}

/** out[0..4] and out[os..os+4] (two tokens, x rows xs apart): each weight vector serves both. */
function rows4x2F32(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  let va = f32x4.splat(0), vb = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + (<usize>k0 << 2);
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    const yk = xk + xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) << 2;
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const xv = v128.load(xk + k);
      const yv = v128.load(yk + k);
      let wv = v128.load(w0 + k);
      a0 = madd(wv, xv, a0);
      b0 = madd(wv, yv, b0);
      wv = v128.load(w1 + k);
      a1 = madd(wv, xv, a1);
      b1 = madd(wv, yv, b1);
      wv = v128.load(w2 + k);
      a2 = madd(wv, xv, a2);
      b2 = madd(wv, yv, b2);
      wv = v128.load(w3 + k);
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
function rows1F32(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  let v: f32 = 0;
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const s = chunkDotF32(row + (<usize>k0 << 2), x + (<usize>k0 << 2), min(PANEL_K, K - k0));
    v = combine1(s, v, k0 == 0, out, bias, addOut);
  }
  store<f32>(out, v);
}

/** Scalar sums of the last kc % 4 columns of 4 rows (w0.., rowBytes apart) against x, as a vector. */
function tail4(x: usize, w0: usize, rowBytes: usize, kc: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = kc & ~3; k < kc; k++) {
    const off = <usize>k << 2;
    const xv = load<f32>(x + off);
    s0 += load<f32>(w0 + off) * xv;
    s1 += load<f32>(w0 + rowBytes + off) * xv;
    s2 += load<f32>(w0 + 2 * rowBytes + off) * xv;
    s3 += load<f32>(w0 + 3 * rowBytes + off) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
