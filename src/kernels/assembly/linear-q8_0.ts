// linear_q8_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q8_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; i8 q[32] } (34 bytes), value = q · d. Activations are quantized
// to int8 per 32 values into `scratch` (see _linear-quant.ts; quantScratchBytes(T, K)).
// Signed 8-bit weights do not fit the 7-bit operand of the relaxed 8-bit dot, so both builds use
// int16 dots (pmaddwd) here.

import { f16Scalar, hsum } from "./_simd";
import { IPANEL, PSCALE, QK, QPANEL_K, dot32, laneRow, linearQuantPanels, quantizeActivations, scatterLanes, xdBase } from "./_linear-quant";

const BLOCK_BYTES: usize = 34;

/** Pointers are byte offsets; bias = 0 means none; K % 32 == 0; scratch: quantScratchBytes(T, K). */
export function linear_q8_0(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, false);
  if (T == 1) matvecQ8_0(out, w, bias, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q8_0Panel, false, false);
}

/** Σ of one Q8_0 block against 32 int16 activations: the block's i8 quants sign-extended to i16. */
// @ts-ignore: decorator
@inline function blockDot(blk: usize, xp: usize): v128 {
  const v0 = v128.load(blk, 2);
  const v1 = v128.load(blk, 18);
  return dot32(
    i16x8.extend_low_i8x16_s(v0), i16x8.extend_high_i8x16_s(v0),
    i16x8.extend_low_i8x16_s(v1), i16x8.extend_high_i8x16_s(v1), xp,
  );
}

// @ts-ignore: decorator
@inline function blockScale(blk: usize): f32 {
  return f16Scalar(<i32>load<i16>(blk));
}

/**
 * Decode: streams the weights once, one row at a time (measured faster than sharing x loads across
 * 4 rows: x is in L1 anyway and 4 rows' accumulators spill registers). Each output follows the
 * canonical order of _linear-quant.ts (chunks of QPANEL_K columns), as the panels do.
 */
function matvecQ8_0(out: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const xd = xdBase(scratch, 1, K);
  const chunkBlocks = QPANEL_K / QK;
  for (let n = 0; n < N; n++) {
    let r = w + <usize>n * rowBytes;
    let xp = scratch;
    let dp = xd;
    let res: f32 = 0;
    for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
      const c1 = min(nb, c0 + chunkBlocks);
      let acc = f32x4.splat(0);
      for (let b = c0; b < c1; b++) {
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(blockDot(r, xp)), f32x4.splat(blockScale(r) * load<f32>(dp))));
        r += BLOCK_BYTES;
        xp += 64;
        dp += 4;
      }
      const s = hsum(acc);
      res = c0 == 0 ? (addOut ? s + load<f32>(out + (<usize>n << 2)) : s) : s + res;
    }
    if (bias != 0) res += load<f32>(bias + (<usize>n << 2));
    store<f32>(out + (<usize>n << 2), res);
  }
}

/** Q8_0 rows → the int16 row-interleaved panel (xq natural order: pair k = values 2k, 2k+1). */
function q8_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  for (let r = 0; r < 4; r++) {
    let blk = laneRow(w, rowBytes, n0, r, rows) + <usize>(k0 >> 5) * BLOCK_BYTES;
    let dst = IPANEL;
    let sp = PSCALE + (<usize>r << 2);
    for (let b = 0; b < nbc; b++) {
      const v0 = v128.load(blk, 2);
      const v1 = v128.load(blk, 18);
      scatterLanes(dst, i16x8.extend_low_i8x16_s(v0), r);
      scatterLanes(dst + 64, i16x8.extend_high_i8x16_s(v0), r);
      scatterLanes(dst + 128, i16x8.extend_low_i8x16_s(v1), r);
      scatterLanes(dst + 192, i16x8.extend_high_i8x16_s(v1), r);
      store<f32>(sp, blockScale(blk));
      blk += BLOCK_BYTES;
      dst += 256;
      sp += 16;
    }
  }
}
