// linear_bf16: out (T, N) [+]= x (T, K) f32 · w (N, K) bf16ᵀ [+ bias (N) f32], f32 accumulation.

import { PANEL, PANEL_STRIDE, linearPanels, store1, store4 } from "./_linear";
import { bf16Scalar, hsum4, madd } from "./_simd";

/**
 * out[t*N+n] = (accumulate ? out[t*N+n] : 0) + (bias ? bias[n] : 0) + Σ_k w[n*K+k] * x[t*K+k].
 * Pointers are byte offsets; bias = 0 means no bias; any T, K, N ≥ 1.
 */
export function linear_bf16(out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32): void {
  if (T == 1) matvecBf16(out, x, w, bias, K, N, accumulate != 0);
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

/**
 * Decode: streams the weights once, 4 rows at a time sharing the x loads. A v128 of 8 bf16 read
 * as i32 lanes holds element 2i in the low half and 2i+1 in the high half of lane i, so `<< 16`
 * gives the even elements as f32 and `& 0xffff0000` the odd ones: x is split into even/odd lanes
 * once per 8 columns and shared by the 4 rows.
 */
function matvecBf16(out: usize, x: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool): void {
  const rowBytes = <usize>K << 1;
  const vecBytes = <usize>(K & ~7) << 1; // bf16 bytes covered by the 8-wide loop
  const high = i32x4.splat(0xffff0000);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rowBytes;
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
    if (K & 7) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      for (let k = K & ~7; k < K; k++) {
        const xv = load<f32>(x + (<usize>k << 2));
        const off = <usize>k << 1;
        s0 += bf16Scalar(load<u16>(r0 + off)) * xv;
        s1 += bf16Scalar(load<u16>(r1 + off)) * xv;
        s2 += bf16Scalar(load<u16>(r2 + off)) * xv;
        s3 += bf16Scalar(load<u16>(r3 + off)) * xv;
      }
      sums = f32x4.add(sums, f32x4(s0, s1, s2, s3));
    }
    store4(out + (<usize>n << 2), sums, bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
  for (; n < N; n++) {
    const row = w + <usize>n * rowBytes;
    let s: f32 = 0;
    for (let k = 0; k < K; k++) s += bf16Scalar(load<u16>(row + (<usize>k << 1))) * load<f32>(x + (<usize>k << 2));
    store1(out + (<usize>n << 2), s, bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
}
