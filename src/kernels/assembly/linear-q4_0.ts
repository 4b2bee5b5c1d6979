// linear_q4_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; u8 qs[16] } (18 bytes): value j (j < 16) is the low nibble of
// qs[j], value 16 + j its high nibble, value = (nibble − 8) · d. Activations are quantized to int8 per
// 32 values into `scratch` (see _linear-quant.ts; quantScratchBytes(T, K)).
// The −8 is a per-block minimum 8·d applied through the activation sums: Σ (q − 8)·x = Σ q·x − 8·Σ x.
// The nibbles (0..15) fit the 7-bit operand of the relaxed 8-bit dot; the baseline build uses int16 dots.

import { f16Scalar, f16x4, hsum, hsum4 } from "./_simd";
import {
  IPANEL, IPANEL8, PMIN, PSCALE, QK, QPANEL_K, dot32, highNibbles, laneRow, linearQuantPanels, lowNibbles,
  nibble0, nibble1, nibble2, nibble3, nibbleDot8, quantizeActivations, scatterLanes, x8Base, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 18;

/** Pointers are byte offsets; bias = 0 means none; K % 32 == 0; scratch: quantScratchBytes(T, K). */
export function linear_q4_0(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, true);
  if (T == 1) matvecQ4_0(out, w, bias, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4_0Panel, true, ASC_FEATURE_RELAXED_SIMD);
}

/** Σ nibble·x over one block (nibbles 0..15, without the −8) against int16 nibble-order x, as 4 i32 lanes. */
// @ts-ignore: decorator
@inline function blockDot(blk: usize, xp: usize): v128 {
  const v = v128.load(blk, 2);
  return dot32(nibble0(v), nibble1(v), nibble2(v), nibble3(v), xp);
}

// @ts-ignore: decorator
@inline function blockScale(blk: usize): f32 {
  return f16Scalar(<i32>load<i16>(blk));
}

/** The Σ nibble·x lanes of one block (see nibbleDot8): 8-bit relaxed dots where the build has them. */
// @ts-ignore: decorator
@inline function rowBlockDot(blk: usize, xp: usize, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const v = v128.load(blk, 2);
    return nibbleDot8(lowNibbles(v), highNibbles(v), x0, x1);
  }
  return blockDot(blk, xp);
}

/**
 * Decode: streams the weights once, 4 rows at a time. The 4 rows' f16 scales are converted together
 * (one vector per block instead of four scalar conversions: the scale work, not the memory, bounded
 * the one-row loop) and the 8-bit activations of a block are loaded once for the 4 rows. Each output
 * follows the canonical order of _linear-quant.ts (chunks of QPANEL_K columns), as the panels do.
 */
function matvecQ4_0(out: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const xd = xdBase(scratch, 1, K);
  const xs = xsBase(scratch, 1, K);
  const x8 = x8Base(scratch, 1, K);
  const chunkBlocks = QPANEL_K / QK;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rowBytes;
    const r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
    let res = f32x4.splat(0);
    for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
      const c1 = min(nb, c0 + chunkBlocks);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let mins = f32x4.splat(0);
      for (let b = c0; b < c1; b++) {
        const o = <usize>b * BLOCK_BYTES;
        let h = v128.load16_splat(r0 + o);
        h = v128.load16_lane(r1 + o, h, 1);
        h = v128.load16_lane(r2 + o, h, 2);
        h = v128.load16_lane(r3 + o, h, 3);
        const d = f16x4(i32x4.extend_low_i16x8_s(h));
        const scale = f32x4.mul(d, f32x4.splat(load<f32>(xd + (<usize>b << 2))));
        mins = f32x4.add(mins, f32x4.mul(f32x4.mul(d, f32x4.splat(8)), f32x4.splat(load<f32>(xs + (<usize>b << 2)))));
        const xp = scratch + (<usize>b << 6);
        const x0 = v128.load(x8 + (<usize>b << 5)), x1 = v128.load(x8 + (<usize>b << 5), 16);
        a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(rowBlockDot(r0 + o, xp, x0, x1)), v128.shuffle<f32>(scale, scale, 0, 0, 0, 0)));
        a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(rowBlockDot(r1 + o, xp, x0, x1)), v128.shuffle<f32>(scale, scale, 1, 1, 1, 1)));
        a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(rowBlockDot(r2 + o, xp, x0, x1)), v128.shuffle<f32>(scale, scale, 2, 2, 2, 2)));
        a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(rowBlockDot(r3 + o, xp, x0, x1)), v128.shuffle<f32>(scale, scale, 3, 3, 3, 3)));
      }
      const s = f32x4.sub(hsum4(a0, a1, a2, a3), mins);
      res = c0 == 0 ? (addOut ? f32x4.add(s, v128.load(out + (<usize>n << 2))) : s) : f32x4.add(s, res);
    }
    if (bias != 0) res = f32x4.add(res, v128.load(bias + (<usize>n << 2)));
    v128.store(out + (<usize>n << 2), res);
  }
  for (; n < N; n++) {
    const r = w + <usize>n * rowBytes;
    let res: f32 = 0;
    for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
      const c1 = min(nb, c0 + chunkBlocks);
      let acc = f32x4.splat(0);
      let mins: f32 = 0;
      for (let b = c0; b < c1; b++) {
        const o = <usize>b * BLOCK_BYTES;
        const d = blockScale(r + o);
        const x0 = v128.load(x8 + (<usize>b << 5)), x1 = v128.load(x8 + (<usize>b << 5), 16);
        const s = rowBlockDot(r + o, scratch + (<usize>b << 6), x0, x1);
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(d * load<f32>(xd + (<usize>b << 2)))));
        mins += (d * 8) * load<f32>(xs + (<usize>b << 2));
      }
      const s = hsum(acc) - mins;
      res = c0 == 0 ? (addOut ? s + load<f32>(out + (<usize>n << 2)) : s) : s + res;
    }
    if (bias != 0) res += load<f32>(bias + (<usize>n << 2));
    store<f32>(out + (<usize>n << 2), res);
  }
}

/**
 * Q4_0 rows → the row-interleaved panel: 8-bit nibbles in natural order (relaxed build) or int16
 * nibbles in nibble order (baseline), with scale d and minimum 8·d.
 */
function q4_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  for (let r = 0; r < 4; r++) {
    let blk = laneRow(w, rowBytes, n0, r, rows) + <usize>(k0 >> 5) * BLOCK_BYTES;
    let sp = PSCALE + (<usize>r << 2);
    let mp = PMIN + (<usize>r << 2);
    for (let b = 0; b < nbc; b++) {
      const v = v128.load(blk, 2);
      if (ASC_FEATURE_RELAXED_SIMD) {
        const dst = IPANEL8 + (<usize>b << 7);
        scatterLanes(dst, lowNibbles(v), r);
        scatterLanes(dst + 64, highNibbles(v), r);
      } else {
        const dst = IPANEL + (<usize>b << 8);
        scatterLanes(dst, nibble0(v), r);
        scatterLanes(dst + 64, nibble1(v), r);
        scatterLanes(dst + 128, nibble2(v), r);
        scatterLanes(dst + 192, nibble3(v), r);
      }
      const d = blockScale(blk);
      store<f32>(sp, d);
      store<f32>(mp, 8 * d);
      blk += BLOCK_BYTES;
      sp += 16;
      mp += 16;
    }
  }
}
