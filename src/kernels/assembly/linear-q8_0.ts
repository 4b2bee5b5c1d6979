// linear_q8_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q8_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; i8 q[32] } (34 bytes), value = q · d. Activations are quantized
// to int8 per 32 values into `scratch` (see _linear-quant.ts; quantScratchBytes(T, K)).
// Signed 8-bit weights do not fit the 7-bit operand of the relaxed 8-bit dot, so both builds use
// int16 dots (pmaddwd) here.

import { f16Scalar, f16x4Gather, hsum } from "./_simd";
import {
  IPANEL, PSCALE, QK, QPANEL_K, accumulateBlock, chunkRunning, dot32, fence, laneRow, linearQuantPanels,
  pairs32, quantizeActivations, storeTransposed, totals32, xdBase,
} from "./_linear-quant";

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
 * Below this many tokens the weights stream once, one row at a time, each token in turn against it
 * (the row stays in L1 for the tokens after the first); from it on they go through the panels, whose
 * repacking costs a few tokens' worth of work. Measured on fc1 (K 2560, N 10240), ms per token: this
 * way about 1.5 at any T; the panels 1.97 at T = 4, 1.47 at 8, 1.28 at 16.
 */
const SMALL_BATCH: i32 = 8;

/** The i32 partial sums of one block of a row against the token's int16 activations at xp. */
// @ts-ignore: decorator
@inline function blockPartial(blk: usize, xp: usize): v128 {
  const v0 = v128.load(blk, 2), v1 = v128.load(blk, 18);
  return dot32(
    i16x8.extend_low_i8x16_s(v0), i16x8.extend_high_i8x16_s(v0),
    i16x8.extend_low_i8x16_s(v1), i16x8.extend_high_i8x16_s(v1), xp,
  );
}

/** Staging for the scales of a chunk's last, partial group of 4 blocks. */
const TAIL: usize = memory.data(32, 16);

/**
 * Blocks b..b+3 of row r against one token: lane j of acc += f32(t_{b+j}) · (d_w · d_x), lane j being
 * A_j of the summation order (b ≡ 0 mod 4 within the chunk).
 */
// @ts-ignore: decorator
@inline function rowQuad(acc: v128, r: usize, b: i32, xq: usize, xd: usize): v128 {
  const o = <usize>b * BLOCK_BYTES;
  const xp = xq + (<usize>b << 6);
  const p01 = fence(pairs32(fence(blockPartial(r + o, xp)), blockPartial(r + o + BLOCK_BYTES, xp + 64)));
  const p23 = pairs32(fence(blockPartial(r + o + 2 * BLOCK_BYTES, xp + 128)), blockPartial(r + o + 3 * BLOCK_BYTES, xp + 192));
  const scale = f32x4.mul(f16x4Gather(r + o, r + o + BLOCK_BYTES, r + o + 2 * BLOCK_BYTES, r + o + 3 * BLOCK_BYTES), v128.load(xd + (<usize>b << 2)));
  return accumulateBlock(acc, totals32(p01, p23), scale);
}

/** The chunk's last n < 4 blocks b.. of row r: as rowQuad with the missing blocks counting 0. */
// @ts-ignore: decorator
@inline function rowTail(acc: v128, r: usize, b: i32, n: i32, xq: usize, xd: usize): v128 {
  let p0 = i32x4.splat(0), p1 = i32x4.splat(0), p2 = i32x4.splat(0);
  v128.store(TAIL, f32x4.splat(0));
  for (let i = 0; i < n; i++) {
    const o = <usize>(b + i) * BLOCK_BYTES;
    store<f32>(TAIL + (<usize>i << 2), f16Scalar(<i32>load<i16>(r + o)) * load<f32>(xd + (<usize>(b + i) << 2)));
  }
  const xp = xq + (<usize>b << 6);
  const o = <usize>b * BLOCK_BYTES;
  p0 = blockPartial(r + o, xp);
  if (n > 1) p1 = blockPartial(r + o + BLOCK_BYTES, xp + 64);
  if (n > 2) p2 = blockPartial(r + o + 2 * BLOCK_BYTES, xp + 128);
  return accumulateBlock(acc, totals32(pairs32(p0, p1), pairs32(p2, i32x4.splat(0))), v128.load(TAIL));
}

/** One token (activations xq, scales xd) against row r: the value for out (summation order of _linear-quant.ts). */
// @ts-ignore: decorator
@inline function rowToken(out: usize, r: usize, nb: i32, xq: usize, xd: usize, bias: usize, addOut: bool): void {
  const chunkBlocks = QPANEL_K / QK;
  let res: f32 = 0;
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let acc = f32x4.splat(0);
    let b = c0;
    for (; b + 4 <= c1; b += 4) acc = rowQuad(acc, r, b, xq, xd);
    if (b < c1) acc = rowTail(acc, r, b, c1 - b, xq, xd);
    const s = hsum(acc);
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/**
 * Decode and T < SMALL_BATCH: one row at a time, the tokens one after the other against it (a row is
 * at most a few KiB: it stays in L1 for the tokens after the first).
 */
function smallBatchQ8_0(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const xd = xdBase(scratch, T, K);
  for (let n = 0; n < N; n++) {
    const r = w + <usize>n * rowBytes;
    const b = bias != 0 ? bias + (<usize>n << 2) : 0;
    for (let t = 0; t < T; t++) {
      rowToken(
        out + ((<usize>t * <usize>N + <usize>n) << 2), r, nb,
        scratch + ((<usize>t * <usize>K) << 1), xd + ((<usize>t * <usize>nb) << 2), b, addOut,
      );
    }
  }
}

/** Q8_0 rows → the int16 row-interleaved panel (xq natural order: pair k = values 2k, 2k+1), 4 rows at once. */
function q8_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const first = <usize>(k0 >> 5) * BLOCK_BYTES;
  const r0 = laneRow(w, rowBytes, n0, 0, rows) + first, r1 = laneRow(w, rowBytes, n0, 1, rows) + first;
  const r2 = laneRow(w, rowBytes, n0, 2, rows) + first, r3 = laneRow(w, rowBytes, n0, 3, rows) + first;
  for (let b = 0; b < nbc; b++) {
    const o = <usize>b * BLOCK_BYTES;
    const dst = IPANEL + (<usize>b << 8);
    for (let h: usize = 0; h < 2; h++) {
      const v0 = v128.load(r0 + o + 2 + (h << 4)), v1 = v128.load(r1 + o + 2 + (h << 4));
      const v2 = v128.load(r2 + o + 2 + (h << 4)), v3 = v128.load(r3 + o + 2 + (h << 4));
      storeTransposed(dst + (h << 7),
        i16x8.extend_low_i8x16_s(v0), i16x8.extend_low_i8x16_s(v1), i16x8.extend_low_i8x16_s(v2), i16x8.extend_low_i8x16_s(v3));
      storeTransposed(dst + (h << 7) + 64,
        i16x8.extend_high_i8x16_s(v0), i16x8.extend_high_i8x16_s(v1), i16x8.extend_high_i8x16_s(v2), i16x8.extend_high_i8x16_s(v3));
    }
    v128.store(PSCALE + (<usize>b << 4), f16x4Gather(r0 + o, r1 + o, r2 + o, r3 + o));
  }
}
