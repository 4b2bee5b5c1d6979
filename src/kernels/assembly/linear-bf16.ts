// linear_bf16: out (T, N) [+]= x (T, K) f32 · w (N, K) bf16ᵀ [+ bias (N) f32], f32 accumulation.
// Summation order: the canonical one of _linear.ts (results do not depend on T or batch position).

import {
  PANEL, PANEL_STRIDE, SMALL_BATCH, linearPanels, linearSmallBatch, rowVectors16, rows1, rows4, rows4x2, vectorStep16,
} from "./_linear";
import { bf16Scalar } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_bf16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4Bf16, rows4x2Bf16, rows1Bf16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, bf16Panel, 1);
}

/** bf16 rows → f32 panel. */
function bf16Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const vecBytes = <usize>(kc & ~7) << 1;
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
    const vectors = rowVectors16(w, K, n0, rows, r, k0);
    const step = vectorStep16(K, rows); // see the grouped layout in _linear.ts
    let dst = PANEL + <usize>r * PANEL_STRIDE;
    for (let k: usize = 0, p = vectors; k < vecBytes; k += 16, p += step) {
      const v = v128.load(p);
      v128.store(dst + (k << 1), i32x4.shl(i32x4.extend_low_i16x8_u(v), 16));
      v128.store(dst + (k << 1), i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), 16);
    }
    for (let k = kc & ~7; k < kc; k++) {
      store<f32>(dst + (<usize>k << 2), bf16Scalar(load<u16>(src + (<usize>k << 1))));
    }
  }
}

/** One token, see rows4 in _linear.ts. */
function rows4Bf16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4<u16>(out, x, r0, rowBytes, K, bias, addOut);
}

/** Two tokens, see rows4x2 in _linear.ts. */
function rows4x2Bf16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4x2<u16>(out, os, x, xs, r0, rowBytes, K, bias, addOut);
}

/** One leftover row against one token, see rows1 in _linear.ts. */
function rows1Bf16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  rows1<u16>(out, x, row, K, bias, addOut);
}
