// linear_q6_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q6_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d } (210 bytes):
// 16 sub-blocks of 16 values, value = d · sc_s · (q − 32), q = 4 low bits from ql | 2 high bits from qh
// (0..63). The super-block is two halves of 128 values (ql 64 bytes, qh 32 bytes, 8 scales each);
// value l + 32j (l = 0..31, j = 0..3) of a half has its low bits in the low (j < 2) or high (j >= 2)
// nibble of ql[l + 32·(j & 1)], its high bits at bit 2j of qh[l], and scale sc[2j + (l >> 4)].
//
// Activations: int8 per 32 values (natural order; see _linear-quant.ts). Each 32 values (one half's
// j, two sub-blocks s = 2j, 2j + 1 of 16) is one block of the summation order with
//   t_b = Σ_s sc_s · Σ_{i in s} (q_i − 32) · x_i   (exact integer),   wscale_b = d,   no minimum,
// so Σ_i w_i x_i ≈ d · dx_b · t_b. Bounds: |q − 32| <= 32, |x| <= 127, |sc| <= 128:
//   |Σ_{i in s} (q_i − 32) x_i| <= 16·32·127 = 65024,  |t_b| <= 2·128·65024 = 16 646 144 < 2^24
// (so f32(t_b) is even exact). Every path forms the same integer t_b, by different exact means:
//   - relaxed build, decode: 8-bit dots x · q (q = 0..63 as the 7-bit operand; pmaddubsw pair sums
//     <= 2·63·127 = 16002, two of them added in i16 <= 32004, then widened to i32), then the offset
//     32·Σ_{i in s} x_i (per token, precomputed: subBlockCorrections) subtracted per sub-block, then
//     × sc_s in i32;
//   - baseline build, decode: (q − 32) as i8, widened to i16, int16 dots with x (pair sums <= 8128),
//     per-sub-block totals in i32 × sc_s;
//   - panels (both builds): int16 weights (q − 32) · sc_s (|·| <= 4096) in the int16 panel of
//     _linear-quant.ts (pair sums <= 2·4096·127 = 1 040 384; block <= 16 646 144), scale d.

import { f16ExactAt, hsum } from "./_simd";
import {
  IPANEL, PSCALE, QPANEL_K, accumulateBlock, chunkRunning, fence, highNibbles, laneRow, linearQuantPanels,
  lowNibbles, pairs16, pairs32, quantizeActivations, scatterLanes, totals32, x8Base, xdBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 210;

/**
 * Below this many tokens each token streams the weights in the decode loop (matvec per token, as
 * linear-q4_k.ts); from it on the panels. Measured on fc1 (K 2560, N 10240), relaxed build, one
 * thread, ms per token relative to decode alone: per-token matvecs 1.0 at any T; panels 1.09 at
 * T = 8, 0.95 at 12, 0.87 at 16, 0.75 at 32. (One row against the tokens in turn, as linear-q8_0.ts
 * does, measured 1.07 at T = 2, 1.12 at 4.) 8 rather than 10: the panels read the weights once, the
 * matvecs T times, which costs more where threads share the memory bandwidth.
 */
const SMALL_BATCH: i32 = 8;

export function linear_q6_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, false);
  if (T < SMALL_BATCH) smallBatchQ6K(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q6kPanel, false, false, <usize>(K >> 8) * BLOCK_BYTES);
}

/**
 * The 6-bit values (0..63, as bytes) of 16 values of block j (0..3) of a half: l = the ql vector
 * (bytes 0..15 / 16..31 of ql[32·(j & 1) ..]), h = the qh vector (bytes 0..15 / 16..31). The i16
 * shifts move bits across byte boundaries only into bits that the masks clear.
 */
// @ts-ignore: decorator
@inline function q6Values(l: v128, h: v128, j: i32): v128 {
  const lo = j < 2 ? lowNibbles(l) : highNibbles(l);
  let hb: v128;
  if (j == 0) hb = i16x8.shl(h, 4);
  else if (j == 1) hb = i16x8.shl(h, 2);
  else if (j == 2) hb = h;
  else hb = i16x8.shr_u(h, 2);
  return v128.or(lo, v128.and(hb, i8x16.splat(0x30)));
}

/**
 * The partial sums of one 16-value sub-block (6-bit values q) against its activations: in the relaxed
 * build i16 pair sums of x·q (<= 16002; the offset comes later), in the baseline build i32 sums of
 * (q − 32)·x (xp: the sub-block's int16 activations).
 */
// @ts-ignore: decorator
@inline function subPartial(q: v128, xp: usize, x8p: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x8p), q);
  const v = i8x16.sub(q, i8x16.splat(32));
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(xp)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(xp, 16)),
  );
}

/** pairs16 then widened to i32 lanes (relaxed; the layout of pairs32), or pairs32 (baseline). */
// @ts-ignore: decorator
@inline function subPairs(a: v128, b: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? i32x4.extadd_pairwise_i16x8_s(pairs16(a, b)) : pairs32(a, b);
}

/**
 * Per-sub-block totals of one row of a half for the sub-blocks 2j + s, j = 0..3 (s fixed), as i32
 * lanes j: l0/l1 = the ql vectors of j = 0, 2 / j = 1, 3, h = the qh vector; xp / x8p at the
 * activations of the sub-block of j = 0.
 */
// @ts-ignore: decorator
@inline function sideTotals(l0: v128, l1: v128, h: v128, xp: usize, x8p: usize): v128 {
  const p01 = fence(subPairs(fence(subPartial(q6Values(l0, h, 0), xp, x8p)), subPartial(q6Values(l1, h, 1), xp + 64, x8p + 32)));
  const p23 = subPairs(fence(subPartial(q6Values(l0, h, 2), xp + 128, x8p + 64)), subPartial(q6Values(l1, h, 3), xp + 192, x8p + 96));
  return totals32(p01, p23);
}

/**
 * t_b of the 4 blocks of one row's half (lanes j = 0..3). ql: the half's 64 ql bytes, qh: its 32 qh
 * bytes, sc16: its 8 scales as i16; xp / x8p: the activations of its 128 values; corr (relaxed build):
 * 32·Σx of its sub-blocks, see subBlockCorrections.
 */
// @ts-ignore: decorator
@inline function halfTotals(ql: usize, qh: usize, sc16: v128, xp: usize, x8p: usize, corr: usize): v128 {
  // first sub-block of each block (s = 0): ql bytes 0..15 and 32..47, qh bytes 0..15
  let e = sideTotals(v128.load(ql), v128.load(ql, 32), v128.load(qh), xp, x8p);
  if (ASC_FEATURE_RELAXED_SIMD) e = i32x4.sub(e, v128.load(corr));
  e = fence(i32x4.mul(e, i32x4.shr_s(i32x4.shl(sc16, 16), 16))); // × sc_{2j}
  // second sub-block (s = 1): ql bytes 16..31 and 48..63, qh bytes 16..31
  let o = sideTotals(v128.load(ql, 16), v128.load(ql, 48), v128.load(qh, 16), xp + 32, x8p + 16);
  if (ASC_FEATURE_RELAXED_SIMD) o = i32x4.sub(o, v128.load(corr, 16));
  return i32x4.add(e, i32x4.mul(o, i32x4.shr_s(sc16, 16))); // × sc_{2j+1}
}

/**
 * Relaxed build: per 128 values of a token's int8 activations x8 (K values), 32·Σx of its 8 sub-blocks
 * of 16 as i32, in the order halfTotals reads them: sub-blocks 0, 2, 4, 6, then 1, 3, 5, 7. K/4 bytes
 * at dst. |32·Σx| <= 32·16·127.
 */
function subBlockCorrections(x8: usize, K: i32, dst: usize): void {
  for (let i = 0; i < K >> 7; i++) {
    const p = x8 + (<usize>i << 7);
    const v0 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p)));
    const v1 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 16)));
    const v2 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 32)));
    const v3 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 48)));
    const v4 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 64)));
    const v5 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 80)));
    const v6 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 96)));
    const v7 = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 112)));
    const o = dst + (<usize>i << 5);
    v128.store(o, i32x4.shl(totals32(pairs32(v0, v2), pairs32(v4, v6)), 5));
    v128.store(o, i32x4.shl(totals32(pairs32(v1, v3), pairs32(v5, v7)), 5), 16);
  }
}

/**
 * One token against row `row` (nsb super-blocks): the value for out, in the summation order of
 * _linear-quant.ts (lane j of the accumulator is A_j: a half's 4 blocks are b ≡ 0..3 mod 4).
 * xq / x8 / xd: the token's activations; corr: its subBlockCorrections (relaxed build).
 */
// @ts-ignore: decorator
@inline function rowToken(
  out: usize, row: usize, nsb: i32, xq: usize, x8: usize, xd: usize, corr: usize, bias: usize, addOut: bool,
): void {
  const chunkSuper = QPANEL_K >> 8;
  let blk = row;
  let xp = xq;
  let x8p = x8;
  let dp = xd;
  let cp = corr;
  let res: f32 = 0;
  for (let c0 = 0; c0 < nsb; c0 += chunkSuper) {
    const c1 = min(nsb, c0 + chunkSuper);
    let acc = f32x4.splat(0);
    for (let sb = c0; sb < c1; sb++) {
      const d = f32x4.splat(f16ExactAt(blk + 208));
      const sc = v128.load(blk + 192);
      // fenced: the second half's loads wait for the first half's result
      acc = fence(accumulateBlock(acc, halfTotals(blk, blk + 128, i16x8.extend_low_i8x16_s(sc), xp, x8p, cp), f32x4.mul(d, v128.load(dp))));
      acc = accumulateBlock(
        acc, halfTotals(blk + 64, blk + 160, i16x8.extend_high_i8x16_s(sc), xp + 256, x8p + 128, cp + 32), f32x4.mul(d, v128.load(dp, 16)),
      );
      blk += BLOCK_BYTES;
      xp += 512;
      x8p += 256;
      dp += 32;
      cp += 64;
    }
    const s = hsum(acc);
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/**
 * Decode and T < SMALL_BATCH: the tokens one after the other, each against all rows. The relaxed
 * build reads the int8 activations only, so each token's int16 ones (2K bytes) are free to
 * hold its subBlockCorrections (K/4 bytes).
 */
function smallBatchQ6K(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nsb = K >> 8;
  const nb = K >> 5;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  const xd = xdBase(scratch, T, K);
  const x8 = x8Base(scratch, T, K);
  if (ASC_FEATURE_RELAXED_SIMD) {
    for (let t = 0; t < T; t++) subBlockCorrections(x8 + <usize>t * <usize>K, K, scratch + ((<usize>t * <usize>K) << 1));
  }
  for (let t = 0; t < T; t++) {
    const xq = scratch + ((<usize>t * <usize>K) << 1);
    for (let n = 0; n < N; n++) {
      rowToken(
        out + ((<usize>t * <usize>N + <usize>n) << 2), w + <usize>n * rowBytes, nsb, xq, x8 + <usize>t * <usize>K,
        xd + ((<usize>t * <usize>nb) << 2), xq, bias != 0 ? bias + (<usize>n << 2) : 0, addOut,
      );
    }
  }
}

/**
 * The 16 int16 weights (q − 32) · sc of one sub-block (6-bit values q, scale at scp) into lane r of
 * the int16 panel at dst (positions 0..7) and dst + 64 (8..15).
 */
// @ts-ignore: decorator
@inline function panelSubBlock(q: v128, scp: usize, dst: usize, r: i32): void {
  const v = i8x16.sub(q, i8x16.splat(32));
  const sc = i16x8.splat(<i16>load<i8>(scp));
  scatterLanes(dst, i16x8.mul(i16x8.extend_low_i8x16_s(v), sc), r);
  scatterLanes(dst + 64, i16x8.mul(i16x8.extend_high_i8x16_s(v), sc), r);
}

/** One row's half (ql, qh, its 8 scales at scp) into lane r of panel blocks b..b+3. */
// @ts-ignore: decorator
@inline function panelHalf(ql: usize, qh: usize, scp: usize, b: usize, r: i32): void {
  for (let s = 0; s < 2; s++) {
    const h = v128.load(qh + (<usize>s << 4));
    const l0 = v128.load(ql + (<usize>s << 4));
    const l1 = v128.load(ql + (<usize>s << 4), 32);
    const dst = IPANEL + (b << 8) + (<usize>s << 7);
    panelSubBlock(q6Values(l0, h, 0), scp + s, dst, r);
    panelSubBlock(q6Values(l1, h, 1), scp + 2 + s, dst + 256, r);
    panelSubBlock(q6Values(l0, h, 2), scp + 4 + s, dst + 512, r);
    panelSubBlock(q6Values(l1, h, 3), scp + 6 + s, dst + 768, r);
  }
}

/** Q6_K rows → the int16 row-interleaved panel (natural xq order), scale d per 32-value block. */
function q6kPanel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const rowBytes = <usize>(K >> 8) * BLOCK_BYTES;
  for (let r = 0; r < 4; r++) {
    let blk = laneRow(w, rowBytes, n0, r, rows) + <usize>(k0 >> 8) * BLOCK_BYTES;
    for (let sb = 0; sb < kc >> 8; sb++) {
      const b0 = <usize>sb << 3; // first block of this super-block in the chunk
      const d = f16ExactAt(blk + 208);
      for (let i: usize = 0; i < 8; i++) store<f32>(PSCALE + ((b0 + i) << 4) + (<usize>r << 2), d);
      panelHalf(blk, blk + 128, blk + 192, b0, r);
      panelHalf(blk + 64, blk + 160, blk + 200, b0 + 4, r);
      blk += BLOCK_BYTES;
    }
  }
}
