// linear_f32: out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias (N)], all f32.
// Summation order: the canonical one of _linear.ts (results do not depend on T or batch position).

import {
  PANEL, PANEL_K, PANEL_STRIDE, SMALL_BATCH, chunkDotF32, combine1, linearPanels, linearSmallBatch, rows4, rows4x2,
} from "./_linear";

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

/** One leftover row against one token. */
function rows1F32(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  let v: f32 = 0;
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const s = chunkDotF32(row + (<usize>k0 << 2), x + (<usize>k0 << 2), min(PANEL_K, K - k0));
    v = combine1(s, v, k0 == 0, out, bias, addOut);
  }
  store<f32>(out, v);
}

/** One token, see rows4 in _linear.ts. */
function rows4F32(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4<f32>(out, x, r0, rowBytes, K, bias, addOut);
}

/** Two tokens, see rows4x2 in _linear.ts. */
function rows4x2F32(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4x2<f32>(out, os, x, xs, r0, rowBytes, K, bias, addOut);
}
