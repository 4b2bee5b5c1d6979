// linear_f32: out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias (N)], all f32.

import { PANEL, PANEL_STRIDE, linearPanels, store1, store4, dotF32 } from "./_linear";
import { hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1.
 */
export function linear_f32(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T == 1) matvecF32(out, x, w, bias, K, N, accumulate != 0);
  else linearPanels(out, x, w, bias, T, K, N, accumulate != 0, f32Panel);
}

/** f32 rows → panel: a copy, so the rows being multiplied sit together in L1. */
function f32Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  for (let r = 0; r < rows; r++) {
    const src = w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 2);
    memory.copy(PANEL + <usize>r * PANEL_STRIDE, src, <usize>kc << 2);
  }
}

/** Decode: 4 rows at a time sharing the x loads, two accumulators per row. */
function matvecF32(out: usize, x: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool): void {
  const rowBytes = <usize>K << 2;
  const vecBytes = <usize>(K & ~7) << 2;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rowBytes;
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
    if (K & 7) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      for (let k = K & ~7; k < K; k++) {
        const off = <usize>k << 2;
        const xv = load<f32>(x + off);
        s0 += load<f32>(r0 + off) * xv;
        s1 += load<f32>(r1 + off) * xv;
        s2 += load<f32>(r2 + off) * xv;
        s3 += load<f32>(r3 + off) * xv;
      }
      sums = f32x4.add(sums, f32x4(s0, s1, s2, s3));
    }
    store4(out + (<usize>n << 2), sums, bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
  for (; n < N; n++) {
    store1(out + (<usize>n << 2), dotF32(w + <usize>n * rowBytes, x, K), bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
}
