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
  PANEL, PANEL_STRIDE, SMALL_BATCH, linearPanels, linearSmallBatch, rowVectors16, rows1, rows4, rows4x2, vectorStep16,
} from "./_linear";
import { HALF_RESCALE, scaledF16At, scaledF16x4 } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1; out must not overlap x or w.
 */
export function linear_f16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T < SMALL_BATCH) linearSmallBatch(out, x, w, bias, T, K, N, accumulate != 0, 2, rows4F16, rows4x2F16, rows1F16);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f16Panel, HALF_RESCALE);
}

/** half rows → f32 panel holding w·2^-56. */
function f16Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const vecBytes = <usize>(kc & ~7) << 1;
  const rescale = f32x4.splat(HALF_RESCALE);
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
    const vectors = rowVectors16(w, K, n0, rows, r, k0);
    const step = vectorStep16(K, rows); // see the grouped layout in _linear.ts
    let dst = PANEL + <usize>r * PANEL_STRIDE;
    for (let k: usize = 0, p = vectors; k < vecBytes; k += 16, p += step) {
      const v = v128.load(p);
      v128.store(dst + (k << 1), f32x4.mul(scaledF16x4(i32x4.extend_low_i16x8_s(v)), rescale));
      v128.store(dst + (k << 1), f32x4.mul(scaledF16x4(i32x4.extend_high_i16x8_s(v)), rescale), 16);
    }
    for (let k = kc & ~7; k < kc; k++) {
      store<f32>(dst + (<usize>k << 2), scaledF16At(src + (<usize>k << 1)) * HALF_RESCALE);
    }
  }
}

/** One token, see rows4 in _linear.ts. */
function rows4F16(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4<i16>(out, x, r0, rowBytes, K, bias, addOut);
}

/** Two tokens, see rows4x2 in _linear.ts. */
function rows4x2F16(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  rows4x2<i16>(out, os, x, xs, r0, rowBytes, K, bias, addOut);
}

/** One leftover row against one token, see rows1 in _linear.ts. */
function rows1F16(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  rows1<i16>(out, x, row, K, bias, addOut);
}
