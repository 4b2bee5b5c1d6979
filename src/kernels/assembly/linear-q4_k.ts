// linear_q4_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] } (144 bytes):
// 8 sub-blocks of 32 with 6-bit scale sc_j and min m_j, value = d·sc_j·q − dmin·m_j; qs holds 4 chunks
// of 32 bytes, low nibbles = sub-block 2c, high nibbles = sub-block 2c+1.
// Activations: int16-held int8 per 32 values (not ggml's Q8_K with one scale per 256: per-32 scales are
// more accurate and share the scratch layout of the other kernels), so per sub-block
//   Σ_i w_i x_i ≈ d·sc_j·dx_j · Σ_i q_i qx_i − dmin·m_j · (dx_j · Σ_i qx_i).

import { f16Scalar } from "./_simd";
import {
  QK, QPANEL, QPANEL_K, QPANEL_MIN, QPANEL_SCALE, dot32, linearQuantPanels, qstore1,
  quantizeActivations, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 144;

export function linear_q4_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch);
  if (T == 1) matvecQ4K(out, w, bias, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4kPanel, true);
}

/** get_scale_min_k4: 6-bit scale (low 8 bits of the result) and min (next 8 bits) of sub-block j. */
// @ts-ignore: decorator
@inline function scaleMin(s: usize, j: i32): u32 {
  let sc: u32, m: u32;
  if (j < 4) {
    sc = <u32>load<u8>(s + j) & 63;
    m = <u32>load<u8>(s + j + 4) & 63;
  } else {
    sc = (<u32>load<u8>(s + j + 4) & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
    m = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  }
  return sc | (m << 8);
}

function matvecQ4K(out: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  const xd = xdBase(scratch, 1, K);
  const xs = xsBase(scratch, 1, K);
  const mask = i8x16.splat(0x0f);
  for (let n = 0; n < N; n++) {
    let blk = w + <usize>n * rowBytes;
    let acc = f32x4.splat(0);
    let minAcc: f32 = 0;
    let xp = scratch;
    let j0 = 0; // index of the first 32-block of this super-block
    for (let sb = 0; sb < nsb; sb++) {
      const d = f16Scalar(<i32>load<i16>(blk));
      const dmin = f16Scalar(<i32>load<i16>(blk, 2));
      const sp = blk + 4;
      for (let c = 0; c < 4; c++) {
        const q = blk + 16 + (<usize>c << 5);
        const v0 = v128.load(q);
        const v1 = v128.load(q, 16);
        const lo0 = v128.and(v0, mask), lo1 = v128.and(v1, mask);
        const hi0 = i8x16.shr_u(v0, 4), hi1 = i8x16.shr_u(v1, 4);
        const sLo = dot32(
          i16x8.extend_low_i8x16_u(lo0), i16x8.extend_high_i8x16_u(lo0),
          i16x8.extend_low_i8x16_u(lo1), i16x8.extend_high_i8x16_u(lo1), xp);
        const sHi = dot32(
          i16x8.extend_low_i8x16_u(hi0), i16x8.extend_high_i8x16_u(hi0),
          i16x8.extend_low_i8x16_u(hi1), i16x8.extend_high_i8x16_u(hi1), xp + 64);
        const smA = scaleMin(sp, 2 * c);
        const smB = scaleMin(sp, 2 * c + 1);
        const ja = <usize>(j0 + 2 * c) << 2;
        const dxA = load<f32>(xd + ja), dxB = load<f32>(xd + ja, 4);
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sLo), f32x4.splat(d * <f32>(smA & 0xff) * dxA)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sHi), f32x4.splat(d * <f32>(smB & 0xff) * dxB)));
        minAcc += dmin * (<f32>(smA >> 8) * load<f32>(xs + ja) + <f32>(smB >> 8) * load<f32>(xs + ja, 4));
        xp += 128;
      }
      blk += BLOCK_BYTES;
      j0 += 8;
    }
    const pairs = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
    const sum = f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1) - minAcc;
    qstore1(out + (<usize>n << 2), sum, bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
}

/** Q4_K rows → int16 panel of 0..15 + per-32 scale d·sc_j and minimum dmin·m_j. */
function q4kPanel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nsb = K >> 8;
  const mask = i8x16.splat(0x0f);
  for (let r = 0; r < rows; r++) {
    let blk = w + (<usize>(n0 + r) * <usize>nsb + <usize>(k0 >> 8)) * BLOCK_BYTES;
    let dst = QPANEL + <usize>r * <usize>(QPANEL_K << 1);
    let sp = QPANEL_SCALE + <usize>r * <usize>((QPANEL_K / QK) << 2);
    let mp = QPANEL_MIN + <usize>r * <usize>((QPANEL_K / QK) << 2);
    for (let sb = 0; sb < kc >> 8; sb++) {
      const d = f16Scalar(<i32>load<i16>(blk));
      const dmin = f16Scalar(<i32>load<i16>(blk, 2));
      for (let c = 0; c < 4; c++) {
        const q = blk + 16 + (<usize>c << 5);
        const v0 = v128.load(q);
        const v1 = v128.load(q, 16);
        const lo0 = v128.and(v0, mask), lo1 = v128.and(v1, mask);
        const hi0 = i8x16.shr_u(v0, 4), hi1 = i8x16.shr_u(v1, 4);
        v128.store(dst, i16x8.extend_low_i8x16_u(lo0));
        v128.store(dst, i16x8.extend_high_i8x16_u(lo0), 16);
        v128.store(dst, i16x8.extend_low_i8x16_u(lo1), 32);
        v128.store(dst, i16x8.extend_high_i8x16_u(lo1), 48);
        v128.store(dst, i16x8.extend_low_i8x16_u(hi0), 64);
        v128.store(dst, i16x8.extend_high_i8x16_u(hi0), 80);
        v128.store(dst, i16x8.extend_low_i8x16_u(hi1), 96);
        v128.store(dst, i16x8.extend_high_i8x16_u(hi1), 112);
        const smA = scaleMin(blk + 4, 2 * c);
        const smB = scaleMin(blk + 4, 2 * c + 1);
        store<f32>(sp, d * <f32>(smA & 0xff));
        store<f32>(sp, d * <f32>(smB & 0xff), 4);
        store<f32>(mp, dmin * <f32>(smA >> 8));
        store<f32>(mp, dmin * <f32>(smB >> 8), 4);
        dst += 128;
        sp += 8;
        mp += 8;
      }
      blk += BLOCK_BYTES;
    }
  }
}
