// linear_q6_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q6_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d } (210 bytes):
// 16 sub-blocks of 16 values, value = d · sc_s · (q − 32), q = 4 low bits from ql | 2 high bits from qh
// (0..63). The super-block is two halves of 128 values (ql 64 bytes, qh 32 bytes, 8 scales each);
// value l + 32j (l = 0..31, j = 0..3) of a half has its low bits in the low (j < 2) or high (j >= 2)
// nibble of ql[l + 32·(j & 1)], its high bits at bit 2j of qh[l], and scale sc[2j + (l >> 4)].
//
// Kernel layout (repack_q6_k, once at load, in place, same 210 bytes): each half's ql and qh (96 bytes)
// become three vectors of 32 bytes, A, B, C: byte l of A = value l of block j = 0 (6 bits) | bits 0-1
// of value l of j = 3 at bits 6-7; B: j = 1 | bits 2-3 of j = 3; C: j = 2 | bits 4-5 of j = 3. Half 0 at
// bytes 0..95, half 1 at 96..191, then the scales and d as in ggml. Three masks give j = 0..2 and
// three shifts, masks and two ors j = 3: 11 operations per 64 values where ggml's layout takes 17
// (each value's nibble and its 2 high bits assembled apart), which made the high bits ~18 % of decode.
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
 * The 6-bit values (0..63, as bytes) of 16 values of block j (0..3) of a half in ggml's layout: l = the
 * ql vector (bytes 0..15 / 16..31 of ql[32·(j & 1) ..]), h = the qh vector (bytes 0..15 / 16..31). The
 * i16 shifts move bits across byte boundaries only into bits that the masks clear. (Only repack_q6_k
 * reads ggml's layout.)
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

/** The 6-bit values of block j = 0, 1 or 2 from its kernel-layout vector (A, B or C). */
// @ts-ignore: decorator
@inline function low6(v: v128): v128 {
  return v128.and(v, i8x16.splat(0x3f));
}

/** The 6-bit values of block j = 3 from the top 2 bits of A, B and C (i16 shifts: the masks clear what crosses bytes). */
// @ts-ignore: decorator
@inline function top6(a: v128, b: v128, c: v128): v128 {
  return v128.or(
    v128.or(v128.and(i16x8.shr_u(a, 6), i8x16.splat(0x03)), v128.and(i16x8.shr_u(b, 4), i8x16.splat(0x0c))),
    v128.and(i16x8.shr_u(c, 2), i8x16.splat(0x30)),
  );
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
 * lanes j: a, b, c = the half's kernel-layout vectors (bytes 16s..16s + 15 of A, B, C); xp / x8p at
 * the activations of the sub-block of j = 0.
 */
// @ts-ignore: decorator
@inline function sideTotals(a: v128, b: v128, c: v128, xp: usize, x8p: usize): v128 {
  const p01 = fence(subPairs(fence(subPartial(low6(a), xp, x8p)), subPartial(low6(b), xp + 64, x8p + 32)));
  const p23 = subPairs(fence(subPartial(low6(c), xp + 128, x8p + 64)), subPartial(top6(a, b, c), xp + 192, x8p + 96));
  return totals32(p01, p23);
}

/**
 * t_b of the 4 blocks of one row's half (lanes j = 0..3). p: the half's 96 kernel-layout bytes (A, B,
 * C), sc16: its 8 scales as i16; xp / x8p: the activations of its 128 values; corr (relaxed build):
 * 32·Σx of its sub-blocks, see subBlockCorrections.
 */
// @ts-ignore: decorator
@inline function halfTotals(p: usize, sc16: v128, xp: usize, x8p: usize, corr: usize): v128 {
  // first sub-block of each block (s = 0): bytes 0..15 of A, B, C
  let e = sideTotals(v128.load(p), v128.load(p, 32), v128.load(p, 64), xp, x8p);
  if (ASC_FEATURE_RELAXED_SIMD) e = i32x4.sub(e, v128.load(corr));
  e = fence(i32x4.mul(e, i32x4.shr_s(i32x4.shl(sc16, 16), 16))); // × sc_{2j}
  // second sub-block (s = 1): bytes 16..31
  let o = sideTotals(v128.load(p, 16), v128.load(p, 48), v128.load(p, 80), xp + 32, x8p + 16);
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
      acc = fence(accumulateBlock(acc, halfTotals(blk, i16x8.extend_low_i8x16_s(sc), xp, x8p, cp), f32x4.mul(d, v128.load(dp))));
      acc = accumulateBlock(
        acc, halfTotals(blk + 96, i16x8.extend_high_i8x16_s(sc), xp + 256, x8p + 128, cp + 32), f32x4.mul(d, v128.load(dp, 16)),
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

/** One row's half (p: its 96 kernel-layout bytes, its 8 scales at scp) into lane r of panel blocks b..b+3. */
// @ts-ignore: decorator
@inline function panelHalf(p: usize, scp: usize, b: usize, r: i32): void {
  for (let s = 0; s < 2; s++) {
    const o = <usize>s << 4;
    const va = v128.load(p + o), vb = v128.load(p + o, 32), vc = v128.load(p + o, 64);
    const dst = IPANEL + (b << 8) + (<usize>s << 7);
    panelSubBlock(low6(va), scp + s, dst, r);
    panelSubBlock(low6(vb), scp + 2 + s, dst + 256, r);
    panelSubBlock(low6(vc), scp + 4 + s, dst + 512, r);
    panelSubBlock(top6(va, vb, vc), scp + 6 + s, dst + 768, r);
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
      panelHalf(blk, blk + 192, b0, r);
      panelHalf(blk + 96, blk + 200, b0 + 4, r);
      blk += BLOCK_BYTES;
    }
  }
}

/**
 * Rewrites N rows of K values of ggml Q6_K at w into the kernel layout (see the top of this file), in
 * place: each super-block's 192 ql and qh bytes are all read before any is written.
 */
export function repack_q6_k(w: usize, N: i32, K: i32, tmp: usize): void {
  const blocks = <usize>N * <usize>(K >> 8);
  for (let i: usize = 0; i < blocks; i++) {
    const blk = w + i * BLOCK_BYTES;
    const l00 = v128.load(blk), l01 = v128.load(blk, 16), l02 = v128.load(blk, 32), l03 = v128.load(blk, 48);
    const l10 = v128.load(blk, 64), l11 = v128.load(blk, 80), l12 = v128.load(blk, 96), l13 = v128.load(blk, 112);
    const h00 = v128.load(blk, 128), h01 = v128.load(blk, 144), h10 = v128.load(blk, 160), h11 = v128.load(blk, 176);
    repackSide(blk, l00, l02, h00);
    repackSide(blk + 16, l01, l03, h01);
    repackSide(blk + 96, l10, l12, h10);
    repackSide(blk + 112, l11, l13, h11);
  }
}

/** 16 values of each block j of a half (ql vectors l0: j = 0, 2 and l1: j = 1, 3; qh vector h) as A, B, C at dst, +32, +64. */
// @ts-ignore: decorator
@inline function repackSide(dst: usize, l0: v128, l1: v128, h: v128): void {
  const q3 = q6Values(l1, h, 3);
  v128.store(dst, v128.or(q6Values(l0, h, 0), i16x8.shl(v128.and(q3, i8x16.splat(0x03)), 6)));
  v128.store(dst, v128.or(q6Values(l1, h, 1), i16x8.shl(v128.and(q3, i8x16.splat(0x0c)), 4)), 32);
  v128.store(dst, v128.or(q6Values(l0, h, 2), i16x8.shl(v128.and(q3, i8x16.splat(0x30)), 2)), 64);
}
