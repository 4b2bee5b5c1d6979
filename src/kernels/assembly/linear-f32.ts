// linear_f32: out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias (N)], all f32.

import { PANEL, PANEL_STRIDE, SMALL_BATCH, dotF32, linearPanels, linearSmallBatch, store1, store4 } from "./_linear";
import { hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_f32(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 4, rows4F32, rows4x2F32, rows1F32);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f32Panel);
}

/** f32 rows → panel: a copy, so the rows being multiplied sit together in L1. */
function f32Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 2);
    memory.copy(PANEL + <usize>r * PANEL_STRIDE, src, <usize>kc << 2);
  }
}

/** One leftover row against one token. */
function rows1F32(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  store1(out, dotF32(row, x, K), bias, addOut);
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch): out[0..4] (one token) from rows
 * r0.. (rowBytes apart), sharing the x loads, two accumulators per row.
 */
function rows4F32(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 2;
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 32) {
    const xa = v128.load(x + k);
    const xb = v128.load(x + k, 16);
    a0 = madd(v128.load(r0 + k), xa, a0);
    b0 = madd(v128.load(r0 + k, 16), xb, b0);
    a1 = madd(v128.load(r1 + k), xa, a1);
    b1 = madd(v128.load(r1 + k, 16), xb, b1);
    a2 = madd(v128.load(r2 + k), xa, a2);
    b2 = madd(v128.load(r2 + k, 16), xb, b2);
    a3 = madd(v128.load(r3 + k), xa, a3);
    b3 = madd(v128.load(r3 + k, 16), xb, b3);
  }
  let sums = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
  if (K & 7) sums = f32x4.add(sums, tail4(x, r0, rowBytes, K));
  store4(out, sums, bias, addOut);
}

/**
 * out[0..4] and out[os..os+4] (two tokens, x rows xs apart) from rows r0.. (rowBytes apart): each
 * weight vector serves both tokens; 8 columns per step, one add per accumulator per step.
 */
function rows4x2F32(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const vecBytes = <usize>(K & ~7) << 2;
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  const y = x + xs;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let k: usize = 0; k < vecBytes; k += 32) {
    const x0 = v128.load(x + k);
    const x1 = v128.load(x + k, 16);
    const y0 = v128.load(y + k);
    const y1 = v128.load(y + k, 16);
    let w0 = v128.load(r0 + k);
    let w1 = v128.load(r0 + k, 16);
    a0 = f32x4.add(a0, madd(w1, x1, f32x4.mul(w0, x0)));
    b0 = f32x4.add(b0, madd(w1, y1, f32x4.mul(w0, y0)));
    w0 = v128.load(r1 + k);
    w1 = v128.load(r1 + k, 16);
    a1 = f32x4.add(a1, madd(w1, x1, f32x4.mul(w0, x0)));
    b1 = f32x4.add(b1, madd(w1, y1, f32x4.mul(w0, y0)));
    w0 = v128.load(r2 + k);
    w1 = v128.load(r2 + k, 16);
    a2 = f32x4.add(a2, madd(w1, x1, f32x4.mul(w0, x0)));
    b2 = f32x4.add(b2, madd(w1, y1, f32x4.mul(w0, y0)));
    w0 = v128.load(r3 + k);
    w1 = v128.load(r3 + k, 16);
    a3 = f32x4.add(a3, madd(w1, x1, f32x4.mul(w0, x0)));
    b3 = f32x4.add(b3, madd(w1, y1, f32x4.mul(w0, y0)));
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
    const off = r0 + (<usize>k << 2);
    s0 += load<f32>(off) * xv;
    s1 += load<f32>(off + rowBytes) * xv;
    s2 += load<f32>(off + 2 * rowBytes) * xv;
    s3 += load<f32>(off + 3 * rowBytes) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}
