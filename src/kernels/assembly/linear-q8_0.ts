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
  if (T < SMALL_BATCH) smallBatchQ8_0(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q8_0Panel, false, false);
}

/**
 * Below this many tokens the weights stream once with each block widened in registers and shared by
 * the tokens (the decode loop with several accumulators); from it on they go through the panels.
 * Measured on fc1 (K 2560, N 10240), ms per token: 1.6 this way at any T; the panels 1.94 at T = 8,
 * 1.68 at 12, 1.60 at 16 (their repacking costs about two tokens' worth of work).
 */
const SMALL_BATCH: i32 = 16;

/**
 * One row against `count` (1, 2 or 4, a constant once inlined) tokens: per token the same operations
 * whatever `count` (so batching keeps the bits), the widened block shared. Token i's activations at scratch + i·K·2, its running
 * value at out + i·os.
 */
// @ts-ignore: decorator
@inline function rowTokens(
  count: i32, out: usize, os: usize, r0: usize, scratch: usize, xd: usize, K: i32, bias: usize, addOut: bool,
): void {
  const nb = K >> 5;
  const xs = <usize>K << 1;
  const ds = <usize>nb << 2;
  const chunkBlocks = QPANEL_K / QK;
  let res0: f32 = 0, res1: f32 = 0, res2: f32 = 0, res3: f32 = 0;
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let r = r0 + <usize>c0 * BLOCK_BYTES;
    for (let b = c0; b < c1; b++) {
      const v0 = v128.load(r, 2), v1 = v128.load(r, 18);
      const e0 = i16x8.extend_low_i8x16_s(v0), e1 = i16x8.extend_high_i8x16_s(v0);
      const e2 = i16x8.extend_low_i8x16_s(v1), e3 = i16x8.extend_high_i8x16_s(v1);
      const d = blockScale(r);
      const xp = scratch + (<usize>b << 6);
      const dp = xd + (<usize>b << 2);
      a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(dot32(e0, e1, e2, e3, xp)), f32x4.splat(d * load<f32>(dp))));
      if (count > 1) a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(dot32(e0, e1, e2, e3, xp + xs)), f32x4.splat(d * load<f32>(dp + ds))));
      if (count > 2) {
        a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(dot32(e0, e1, e2, e3, xp + 2 * xs)), f32x4.splat(d * load<f32>(dp + 2 * ds))));
        a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(dot32(e0, e1, e2, e3, xp + 3 * xs)), f32x4.splat(d * load<f32>(dp + 3 * ds))));
      }
      r += BLOCK_BYTES;
    }
    const first = c0 == 0;
    res0 = chunkValue(hsum(a0), res0, first, out, addOut);
    if (count > 1) res1 = chunkValue(hsum(a1), res1, first, out + os, addOut);
    if (count > 2) {
      res2 = chunkValue(hsum(a2), res2, first, out + 2 * os, addOut);
      res3 = chunkValue(hsum(a3), res3, first, out + 3 * os, addOut);
    }
  }
  store<f32>(out, bias != 0 ? res0 + load<f32>(bias) : res0);
  if (count > 1) store<f32>(out + os, bias != 0 ? res1 + load<f32>(bias) : res1);
  if (count > 2) {
    store<f32>(out + 2 * os, bias != 0 ? res2 + load<f32>(bias) : res2);
    store<f32>(out + 3 * os, bias != 0 ? res3 + load<f32>(bias) : res3);
  }
}

/** A chunk's sum s joins the running value (see _linear-quant.ts): s [+ out] first, then s + running. */
// @ts-ignore: decorator
@inline function chunkValue(s: f32, running: f32, first: bool, out: usize, addOut: bool): f32 {
  return first ? (addOut ? s + load<f32>(out) : s) : s + running;
}

/** Decode and T < SMALL_BATCH: every row streams once; its blocks stay in L1 for the token groups after the first. */
function smallBatchQ8_0(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const rowBytes = <usize>(K >> 5) * BLOCK_BYTES;
  const xd = xdBase(scratch, T, K);
  const os = <usize>N << 2;
  const xs = <usize>K << 1;
  const ds = <usize>(K >> 5) << 2;
  for (let n = 0; n < N; n++) {
    const r = w + <usize>n * rowBytes;
    const b = bias != 0 ? bias + (<usize>n << 2) : 0;
    let t = 0;
    for (; t + 4 <= T; t += 4) rowTokens(4, out + <usize>t * os + (<usize>n << 2), os, r, scratch + <usize>t * xs, xd + <usize>t * ds, K, b, addOut);
    for (; t + 2 <= T; t += 2) rowTokens(2, out + <usize>t * os + (<usize>n << 2), os, r, scratch + <usize>t * xs, xd + <usize>t * ds, K, b, addOut);
    if (t < T) rowTokens(1, out + <usize>t * os + (<usize>n << 2), os, r, scratch + <usize>t * xs, xd + <usize>t * ds, K, b, addOut);
  }
}

// @ts-ignore: decorator
@inline function blockScale(blk: usize): f32 {
  return f16Scalar(<i32>load<i16>(blk));
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
