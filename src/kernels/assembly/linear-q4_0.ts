// linear_q4_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; u8 qs[16] } (18 bytes): value j (j < 16) is the low nibble of
// qs[j], value 16 + j its high nibble, value = (nibble − 8) · d. Activations are quantized to int8 per
// 32 values into `scratch` (see _linear-quant.ts; quantScratchBytes(T, K)).
// The −8 is a per-block minimum 8·d applied through the activation sums: Σ (q − 8)·x = Σ q·x − 8·Σ x.
// The nibbles (0..15) fit the 7-bit operand of the relaxed 8-bit dot; the baseline build uses int16 dots.
//
// Kernel layout (repack_q4_0, done once at load, in place, same size): every full group of 4 rows is
// interleaved per block as { f16 d[4]; u8 qs[4][16] } (72 bytes), as llama.cpp's repacked Q4_0_4x4
// does: decode then reads one stream per group and the 4 scales with one 8-byte load. Rows past the
// last full group stay in ggml's layout.

import { f16Scalar, f16x4, f16x4Gather, hsum } from "./_simd";
import {
  IPANEL, IPANEL8, PMIN, PSCALE, QK, QPANEL_K, accumulateBlock, chunkRunning, chunkRunning4, chunkSum, fence,
  highNibbles, laneRow, linearQuantPanels, lowNibbles, nibble0, nibble1, nibble2, nibble3, nibblePairs,
  nibblePartial, nibbleTotals, quantizeActivations, storeTransposed, x8Base, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 18;
/** One block of a 4-row group in kernel layout: 4 f16 scales, then 4 × 16 quant bytes. */
const GROUP_BLOCK_BYTES: usize = 72;

/**
 * Below this many tokens each token runs the decode loop against every 4-row group while the group is
 * in L1; from it on the panels. Measured on fc1 (K 2560, N 10240), ms per token: the decode loop
 * 1.0; the panels 1.03 at T = 2, 0.92 at 3, 0.91 at 4, 0.86 at 16 (their repacking is shared).
 */
const SMALL_BATCH: i32 = 3;

/** Pointers are byte offsets; bias = 0 means none; K % 32 == 0; scratch: quantScratchBytes(T, K). */
export function linear_q4_0(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, true);
  if (T < SMALL_BATCH) matvecQ4_0(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4_0Panel, true, ASC_FEATURE_RELAXED_SIMD, <usize>(K >> 5) * BLOCK_BYTES);
}

// @ts-ignore: decorator
@inline function blockScale(blk: usize): f32 {
  return f16Scalar(<i32>load<i16>(blk));
}

/** Scales of 4 blocks of one row (row1). */
const SCALES4: usize = memory.data(16, 16);

/**
 * Decode and small batches: streams the weights once, 4 rows at a time. The 4 rows' f16 scales are converted together
 * (one vector per block instead of four scalar conversions: the scale work, not the memory, bounded
 * the one-row loop) and the 8-bit activations of a block are loaded once for the 4 rows. Each output
 * follows the canonical order of _linear-quant.ts (chunks of QPANEL_K columns), as the panels do.
 */
function matvecQ4_0(out0: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  for (let n = 0; n < N; n += 4) {
    const rows = min(4, N - n);
    // the tokens one after the other: the group's blocks (a few KiB) stay in L1 after the first
    for (let t = 0; t < T; t++) {
      const out = out0 + ((<usize>t * <usize>N + <usize>n) << 2);
      const xq = scratch + ((<usize>t * <usize>K) << 1);
      const xd = xdBase(scratch, T, K) + ((<usize>t * <usize>nb) << 2);
      const xs = xsBase(scratch, T, K) + ((<usize>t * <usize>nb) << 2);
      const x8 = x8Base(scratch, T, K) + <usize>t * <usize>K;
      const b = bias != 0 ? bias + (<usize>n << 2) : 0;
      if (rows == 4) group4(out, w + <usize>n * rowBytes, nb, xq, xd, xs, x8, b, addOut);
      else for (let r = 0; r < rows; r++) row1(out + (<usize>r << 2), w + <usize>(n + r) * rowBytes, nb, xq, xd, xs, x8, b != 0 ? b + (<usize>r << 2) : 0, addOut);
    }
  }
}

/** One block of group4 (p: the block in kernel layout): acc + f32(t_b) · (d_w · d_x) for the 4 rows. */
// @ts-ignore: decorator
@inline function group4Step(acc: v128, p: usize, b: i32, xq: usize, xd: usize, x8: usize): v128 {
  const d = f16x4(i32x4.extend_low_i16x8_s(v128.load64_zero(p)));
  const scale = f32x4.mul(d, f32x4.splat(load<f32>(xd + (<usize>b << 2))));
  const xp = xq + (<usize>b << 6);
  const x0 = v128.load(x8 + (<usize>b << 5)), x1 = v128.load(x8 + (<usize>b << 5), 16);
  const p01 = fence(nibblePairs(fence(nibblePartial(v128.load(p, 8), xp, x0, x1)), nibblePartial(v128.load(p, 24), xp, x0, x1)));
  const p23 = nibblePairs(fence(nibblePartial(v128.load(p, 40), xp, x0, x1)), nibblePartial(v128.load(p, 56), xp, x0, x1));
  return accumulateBlock(acc, nibbleTotals(p01, p23), scale);
}

/** One token against a 4-row group in kernel layout: out[0..4]. */
// @ts-ignore: decorator
@inline function group4(out: usize, group: usize, nb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  const chunkBlocks = QPANEL_K / QK;
  let res = f32x4.splat(0);
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b = c0;
    let p = group + <usize>c0 * GROUP_BLOCK_BYTES;
    for (; b + 4 <= c1; b += 4) {
      a0 = group4Step(a0, p, b, xq, xd, x8);
      a1 = group4Step(a1, p + GROUP_BLOCK_BYTES, b + 1, xq, xd, x8);
      a2 = group4Step(a2, p + 2 * GROUP_BLOCK_BYTES, b + 2, xq, xd, x8);
      a3 = group4Step(a3, p + 3 * GROUP_BLOCK_BYTES, b + 3, xq, xd, x8);
      p += 4 * GROUP_BLOCK_BYTES;
    }
    if (b < c1) a0 = group4Step(a0, p, b, xq, xd, x8);
    if (b + 1 < c1) a1 = group4Step(a1, p + GROUP_BLOCK_BYTES, b + 1, xq, xd, x8);
    if (b + 2 < c1) a2 = group4Step(a2, p + 2 * GROUP_BLOCK_BYTES, b + 2, xq, xd, x8);
    // the minimums 8·d_w · (d_x Σq_x) in their own pass, in order
    let mins = f32x4.splat(0);
    p = group + <usize>c0 * GROUP_BLOCK_BYTES;
    for (let i = c0; i < c1; i++) {
      const d = f16x4(i32x4.extend_low_i16x8_s(v128.load64_zero(p)));
      mins = f32x4.add(mins, f32x4.mul(f32x4.mul(d, f32x4.splat(8)), f32x4.splat(load<f32>(xs + (<usize>i << 2)))));
      p += GROUP_BLOCK_BYTES;
    }
    const s = chunkSum(a0, a1, a2, a3, mins);
    res = chunkRunning4(s, res, c0 == 0, out, 4, addOut);
  }
  if (bias != 0) res = f32x4.add(res, v128.load(bias));
  v128.store(out, res);
}

/** The partial sums of block b of a row in ggml's layout (zero past the chunk's end c1). */
// @ts-ignore: decorator
@inline function rowPartial(r: usize, b: i32, c1: i32, xq: usize, x8: usize): v128 {
  if (b >= c1) return i32x4.splat(0);
  const x0 = v128.load(x8 + (<usize>b << 5)), x1 = v128.load(x8 + (<usize>b << 5), 16);
  return nibblePartial(v128.load(r + <usize>b * BLOCK_BYTES, 2), xq + (<usize>b << 6), x0, x1);
}

/**
 * One token against one row in ggml's layout (the rows after the last full group): out[0]. Lane j of
 * the accumulator holds A_j: 4 blocks per step, the missing ones of the chunk's last step as 0.
 */
// @ts-ignore: decorator
@inline function row1(out: usize, r: usize, nb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  const chunkBlocks = QPANEL_K / QK;
  let res: f32 = 0;
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let acc = f32x4.splat(0);
    let mins: f32 = 0;
    for (let b = c0; b < c1; b += 4) {
      for (let i = 0; i < 4; i++) {
        const d = b + i < c1 ? blockScale(r + <usize>(b + i) * BLOCK_BYTES) : 0;
        store<f32>(SCALES4 + (<usize>i << 2), b + i < c1 ? d * load<f32>(xd + (<usize>(b + i) << 2)) : 0);
        if (b + i < c1) mins += (d * 8) * load<f32>(xs + (<usize>(b + i) << 2));
      }
      const t = nibbleTotals(
        nibblePairs(rowPartial(r, b, c1, xq, x8), rowPartial(r, b + 1, c1, xq, x8)),
        nibblePairs(rowPartial(r, b + 2, c1, xq, x8), rowPartial(r, b + 3, c1, xq, x8)),
      );
      acc = accumulateBlock(acc, t, v128.load(SCALES4));
    }
    const s = hsum(acc) - mins;
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/** The 16 quant bytes of block b of 4 rows → 8-bit (relaxed build) or int16 panel vectors of block b. */
// @ts-ignore: decorator
@inline function panelBlock(b: i32, v0: v128, v1: v128, v2: v128, v3: v128): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const dst = IPANEL8 + (<usize>b << 7);
    storeTransposed(dst, lowNibbles(v0), lowNibbles(v1), lowNibbles(v2), lowNibbles(v3));
    storeTransposed(dst + 64, highNibbles(v0), highNibbles(v1), highNibbles(v2), highNibbles(v3));
  } else {
    const dst = IPANEL + (<usize>b << 8);
    storeTransposed(dst, nibble0(v0), nibble0(v1), nibble0(v2), nibble0(v3));
    storeTransposed(dst + 64, nibble1(v0), nibble1(v1), nibble1(v2), nibble1(v3));
    storeTransposed(dst + 128, nibble2(v0), nibble2(v1), nibble2(v2), nibble2(v3));
    storeTransposed(dst + 192, nibble3(v0), nibble3(v1), nibble3(v2), nibble3(v3));
  }
}

/**
 * Q4_0 rows → the row-interleaved panel: 8-bit nibbles in natural order (relaxed build) or int16
 * nibbles in nibble order (baseline), with scale d and minimum 8·d; 4 rows at once.
 */
function q4_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const b0 = <usize>(k0 >> 5);
  if (rows == 4) {
    // a full group: kernel layout { f16 d[4]; u8 qs[4][16] } per block
    let p = w + <usize>n0 * rowBytes + b0 * GROUP_BLOCK_BYTES;
    for (let b = 0; b < nbc; b++) {
      panelBlock(b, v128.load(p, 8), v128.load(p, 24), v128.load(p, 40), v128.load(p, 56));
      const d = f16x4(i32x4.extend_low_i16x8_s(v128.load64_zero(p)));
      v128.store(PSCALE + (<usize>b << 4), d);
      v128.store(PMIN + (<usize>b << 4), f32x4.mul(d, f32x4.splat(8)));
      p += GROUP_BLOCK_BYTES;
    }
    return;
  }
  // the rows after the last full group: ggml's layout, missing lanes repeating the last row
  const r0 = laneRow(w, rowBytes, n0, 0, rows) + b0 * BLOCK_BYTES, r1 = laneRow(w, rowBytes, n0, 1, rows) + b0 * BLOCK_BYTES;
  const r2 = laneRow(w, rowBytes, n0, 2, rows) + b0 * BLOCK_BYTES, r3 = laneRow(w, rowBytes, n0, 3, rows) + b0 * BLOCK_BYTES;
  for (let b = 0; b < nbc; b++) {
    const o = <usize>b * BLOCK_BYTES;
    panelBlock(b, v128.load(r0 + o, 2), v128.load(r1 + o, 2), v128.load(r2 + o, 2), v128.load(r3 + o, 2));
    const d = f16x4Gather(r0 + o, r1 + o, r2 + o, r3 + o);
    v128.store(PSCALE + (<usize>b << 4), d);
    v128.store(PMIN + (<usize>b << 4), f32x4.mul(d, f32x4.splat(8)));
  }
}

/**
 * Rewrites N rows of K values of ggml Q4_0 at w into the kernel layout, in place (the same bytes);
 * tmp: 4·(K/32)·18 bytes of scratch.
 */
export function repack_q4_0(w: usize, N: i32, K: i32, tmp: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  for (let n0 = 0; n0 + 4 <= N; n0 += 4) {
    const group = w + <usize>n0 * rowBytes;
    memory.copy(tmp, group, rowBytes << 2);
    for (let b = 0; b < nb; b++) {
      const dst = group + <usize>b * GROUP_BLOCK_BYTES;
      for (let r = 0; r < 4; r++) {
        const src = tmp + <usize>r * rowBytes + <usize>b * BLOCK_BYTES;
        store<u16>(dst + (<usize>r << 1), load<u16>(src));
        v128.store(dst + 8 + (<usize>r << 4), v128.load(src, 2));
      }
    }
  }
}
