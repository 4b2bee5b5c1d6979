// linear_q5_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q5_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] } (176
// bytes): Q4_K's 8 sub-blocks of 32 with a fifth bit, value = d·sc_j·q − dmin·m_j with q = the nibble
// (qs chunk c of 32 bytes: low nibbles = sub-block 2c, high = 2c + 1) + 16 · bit j of qh[l] for value l
// of sub-block j. Q4_K_M files hold a fused attn_qkv in Q5_K, Q5_K_M / Q5_K_S files nearly everything:
// held as Q5_K they take 5.5 bits per weight instead of the 8.5 of a conversion to Q8_0.
//
// Activations: int8 per 32 values in natural order (see _linear-quant.ts); each sub-block is one block
// of the summation order, as in linear-q4_k.ts (same scales, same minimums term). The values (0..31) fit
// the 7-bit operand of the relaxed 8-bit dot, whose i16 pair sums (<= 2·31·127 = 7874) add up to at most
// 4·7874 = 31496 per i16 lane over a sub-block's 2 dots and a pairs16; the last step widens to i32 first
// (totals16Wide). The baseline build widens the values to int16 for int16 dots; the panels are int16
// in both builds (an 8-bit panel lane would hold 4 such sums: too much for i16).
//
// Kernel layout (repack_q5_k, at load, in place, same size): every full group of 4 rows is interleaved
// per super-block (704 bytes) as
//   { f16 d[4]; f16 dmin[4]; u8 scales[12][4]; u8 qh[4 rows][32]; u8 qs[4 chunks][4 rows][32] }
// (the header of _k-scales.ts): decode reads one stream per group and unpacks the 4 rows' scales at
// once. Rows past the last full group stay in ggml's layout.

import { f16ExactAt, hsum } from "./_simd";
import { groupD, groupMins, groupScales, panelScalesOfRows, sixBit, storeScaled, unpackScales } from "./_k-scales";
import {
  IPANEL, PMIN, PSCALE, QPANEL_K, accumulateBlock, chunkRunning, chunkRunning4, chunkSum, fence, highNibbles, laneRow,
  linearQuantPanels, lowNibbles, pairs16, pairs32, quantizeActivations, storeTransposed, totals32, x8Base, xdBase,
  xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 176;
/** Offsets in a ggml super-block. */
const QH: usize = 16;
const QS: usize = 48;
/** One super-block of a 4-row group in kernel layout, and where its qh and qs start. */
const GROUP_SUPER_BYTES: usize = 4 * BLOCK_BYTES;
const GROUP_QH: usize = 64;
const GROUP_QS: usize = 192;
/** One row's 8 sub-block scales d·sc_j and minimums dmin·m_j of the current super-block. */
const SCALES: usize = memory.data(32, 16);
const MINS: usize = memory.data(32, 16);
/** A 4-row group's: vector j = the 4 rows' d·sc_j. */
const GSCALES: usize = memory.data(128, 16);
/** Where groupChunk leaves the high sub-block's totals. */
const HIGH_TOTALS: usize = memory.data(16, 16);

/**
 * Below this many tokens the 4-row groups stream once, each token in turn against them (as in
 * linear-q4_k.ts); from it on the int16 panels. Measured on fc1 (K 2560, N 10240), one thread, ms per
 * token: this way 1.55 at T = 1, 1.7 at 2, 1.6 at 4 and 6, 1.47 at 8; the panels 2.0 at T = 4, 1.8 at 6,
 * 1.41 at 8, 1.2 at 12.
 */
const SMALL_BATCH: i32 = 8;

export function linear_q5_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, false);
  if (T < SMALL_BATCH) smallBatchQ5K(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q5kPanel, true, false, <usize>(K >> 8) * BLOCK_BYTES);
}

/**
 * The 16 values (0..31, bytes) of sub-block j (0..7) at 16 qs bytes v (low nibbles for even j, high for
 * odd) with their 16 qh bytes h. Bit j of each qh byte goes to bit 4: an i16 shift moves bits across
 * the byte boundary only into bits the mask clears.
 */
// @ts-ignore: decorator
@inline function values5(v: v128, h: v128, j: i32): v128 {
  const nib = (j & 1) == 0 ? lowNibbles(v) : highNibbles(v);
  const bit = j <= 4 ? i16x8.shl(h, 4 - j) : i16x8.shr_u(h, j - 4);
  return v128.or(nib, v128.and(bit, i8x16.splat(0x10)));
}

/**
 * The partial sums of one row's sub-block j from its 32 qs bytes v0, v1 and 32 qh bytes h0, h1 against
 * the sub-block's activations: x0, x1 its int8 values (relaxed build: i16 partials), else its int16
 * ones at xp (i32 partials).
 */
// @ts-ignore: decorator
@inline function rowPartial(v0: v128, v1: v128, h0: v128, h1: v128, j: i32, x0: v128, x1: v128, xp: usize): v128 {
  const q0 = values5(v0, h0, j), q1 = values5(v1, h1, j);
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, q0), i16x8.relaxed_dot_i8x16_i7x16_s(x1, q1));
  }
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(q0), v128.load(xp)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(q0), v128.load(xp, 16))),
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(q1), v128.load(xp, 32)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(q1), v128.load(xp, 48))));
}

/** pairs16 (relaxed: i16 partials) or pairs32 (baseline: i32 partials). */
// @ts-ignore: decorator
@inline function pairs5(a: v128, b: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? pairs16(a, b) : pairs32(a, b);
}

/**
 * totals16 with the last add in i32 (relaxed build; its i16 lanes hold up to 31496, two of them would
 * overflow), or totals32 (baseline).
 */
// @ts-ignore: decorator
@inline function totals5(ab: v128, cd: v128): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return totals32(ab, cd);
  return i32x4.add(
    i32x4.extadd_pairwise_i16x8_s(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5)),
    i32x4.extadd_pairwise_i16x8_s(v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}

/** The int8 activations of a sub-block (relaxed build; zeros otherwise, unused). */
// @ts-ignore: decorator
@inline function x8Half(x8p: usize, offset: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p + offset) : i32x4.splat(0);
}

/**
 * Integer totals of the 4 sub-blocks of chunks c, c + 1 (c even) of one row in ggml's layout (blk: its
 * super-block), as lanes: sub-blocks 2c, 2c + 1, 2c + 2, 2c + 3.
 */
// @ts-ignore: decorator
@inline function quadTotals(blk: usize, c: i32, xp: usize, x8p: usize): v128 {
  const h0 = v128.load(blk + QH), h1 = v128.load(blk + QH, 16);
  const j = c << 1;
  let q = blk + QS + (<usize>c << 5);
  let v0 = v128.load(q), v1 = v128.load(q, 16);
  const p01 = fence(pairs5(
    fence(rowPartial(v0, v1, h0, h1, j, x8Half(x8p, 0), x8Half(x8p, 16), xp)),
    rowPartial(v0, v1, h0, h1, j + 1, x8Half(x8p, 32), x8Half(x8p, 48), xp + 64)));
  v0 = v128.load(q, 32); v1 = v128.load(q, 48);
  const p23 = pairs5(
    fence(rowPartial(v0, v1, h0, h1, j + 2, x8Half(x8p, 64), x8Half(x8p, 80), xp + 128)),
    rowPartial(v0, v1, h0, h1, j + 3, x8Half(x8p, 96), x8Half(x8p, 112), xp + 192));
  return totals5(p01, p23);
}

/**
 * One token against one row in ggml's layout (the rows after the last full group): out[0], lane j of
 * the accumulator being A_j (sub-blocks j and 4 + j of every super-block).
 */
function row1(out: usize, row: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  const chunkSuper = QPANEL_K >> 8;
  let blk = row;
  let xp = xq;
  let x8p = x8;
  let dp = xd;
  let sp = xs;
  let res: f32 = 0;
  for (let c0 = 0; c0 < nsb; c0 += chunkSuper) {
    const c1 = min(nsb, c0 + chunkSuper);
    let acc = f32x4.splat(0);
    let mins: f32 = 0;
    for (let sb = c0; sb < c1; sb++) {
      unpackScales(blk + 4, f16ExactAt(blk), f16ExactAt(blk + 2), SCALES, MINS);
      v128.store(SCALES, f32x4.mul(v128.load(SCALES), v128.load(dp)));
      v128.store(SCALES, f32x4.mul(v128.load(SCALES, 16), v128.load(dp, 16)), 16);
      for (let j = 0; j < 8; j++) mins += load<f32>(MINS + (<usize>j << 2)) * load<f32>(sp + (<usize>j << 2));
      acc = accumulateBlock(acc, quadTotals(blk, 0, xp, x8p), v128.load(SCALES));
      acc = accumulateBlock(acc, quadTotals(blk, 2, xp + 256, x8p + 128), v128.load(SCALES, 16));
      xp += 512;
      x8p += 256;
      blk += BLOCK_BYTES;
      dp += 32;
      sp += 32;
    }
    const s = hsum(acc) - mins;
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/**
 * Both sub-blocks of chunk c of a group super-block p for its 4 rows (lanes): the low one's totals
 * returned, the high one's at HIGH_TOTALS; each row's qs and qh vectors loaded once for both.
 */
// @ts-ignore: decorator
@inline function groupChunk(p: usize, c: i32, xp: usize, x8p: usize): v128 {
  const j = c << 1;
  const x0 = x8Half(x8p, 0), x1 = x8Half(x8p, 16), y0 = x8Half(x8p, 32), y1 = x8Half(x8p, 48);
  const q = p + GROUP_QS + (<usize>c << 7);
  const h = p + GROUP_QH;
  let v0 = v128.load(q), v1 = v128.load(q, 16), h0 = v128.load(h), h1 = v128.load(h, 16);
  let l0 = fence(rowPartial(v0, v1, h0, h1, j, x0, x1, xp)), m0 = fence(rowPartial(v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v0 = v128.load(q, 32); v1 = v128.load(q, 48); h0 = v128.load(h, 32); h1 = v128.load(h, 48);
  const l01 = fence(pairs5(l0, rowPartial(v0, v1, h0, h1, j, x0, x1, xp)));
  const m01 = fence(pairs5(m0, rowPartial(v0, v1, h0, h1, j + 1, y0, y1, xp + 64)));
  v0 = v128.load(q, 64); v1 = v128.load(q, 80); h0 = v128.load(h, 64); h1 = v128.load(h, 80);
  l0 = fence(rowPartial(v0, v1, h0, h1, j, x0, x1, xp)); m0 = fence(rowPartial(v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v0 = v128.load(q, 96); v1 = v128.load(q, 112); h0 = v128.load(h, 96); h1 = v128.load(h, 112);
  const l23 = fence(pairs5(l0, rowPartial(v0, v1, h0, h1, j, x0, x1, xp)));
  const m23 = pairs5(m0, rowPartial(v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v128.store(HIGH_TOTALS, totals5(m01, m23));
  return totals5(l01, l23);
}

/** Sub-block 2c of a group super-block p: its madd into a (lowStep; groupChunk leaves 2c + 1's totals for highStep). */
// @ts-ignore: decorator
@inline function lowStep(a: v128, p: usize, c: i32, xp: usize, x8p: usize, dp: usize): v128 {
  const j = <usize>(c << 1);
  const t = groupChunk(p, c, xp + (j << 6), x8p + (j << 5));
  return accumulateBlock(a, t, f32x4.mul(v128.load(GSCALES + (j << 4)), f32x4.splat(load<f32>(dp + (j << 2)))));
}
// @ts-ignore: decorator
@inline function highStep(b: v128, c: i32, dp: usize): v128 {
  const j = <usize>((c << 1) + 1);
  return accumulateBlock(b, v128.load(HIGH_TOTALS), f32x4.mul(v128.load(GSCALES + (j << 4)), f32x4.splat(load<f32>(dp + (j << 2)))));
}

/**
 * One token against a 4-row group in kernel layout: out[0..4], in the summation order of the panels
 * (sub-block j of a super-block goes to A_(j mod 4); the minimums in their own sum).
 */
// @ts-ignore: decorator
@inline function group4(out: usize, group: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  const chunkSuper = QPANEL_K >> 8;
  let res = f32x4.splat(0);
  let p = group;
  let xp = xq;
  let x8p = x8;
  let dp = xd;
  let sp = xs;
  for (let c0 = 0; c0 < nsb; c0 += chunkSuper) {
    const c1 = min(nsb, c0 + chunkSuper);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0), mins = f32x4.splat(0);
    for (let sb = c0; sb < c1; sb++) {
      const d = groupD(p, false);
      storeScaled(GSCALES, sixBit(p, 0), d);
      storeScaled(GSCALES + 64, sixBit(p, 1), d);
      mins = groupMins(mins, p, sp);
      a0 = lowStep(a0, p, 0, xp, x8p, dp);
      a1 = highStep(a1, 0, dp);
      a2 = lowStep(a2, p, 1, xp, x8p, dp);
      a3 = highStep(a3, 1, dp);
      a0 = lowStep(a0, p, 2, xp, x8p, dp);
      a1 = highStep(a1, 2, dp);
      a2 = lowStep(a2, p, 3, xp, x8p, dp);
      a3 = highStep(a3, 3, dp);
      p += GROUP_SUPER_BYTES;
      xp += 512;
      x8p += 256;
      dp += 32;
      sp += 32;
    }
    const s = chunkSum(a0, a1, a2, a3, mins);
    res = chunkRunning4(s, res, c0 == 0, out, 4, addOut);
  }
  if (bias != 0) res = f32x4.add(res, v128.load(bias));
  v128.store(out, res);
}

/**
 * Decode and T < SMALL_BATCH: streams the weights once, a 4-row group at a time (rows past the last
 * full group: one at a time), the tokens one after the other against it (the group stays in L1).
 */
function smallBatchQ5K(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nsb = K >> 8;
  const nb = K >> 5;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  const xd0 = xdBase(scratch, T, K), xs0 = xsBase(scratch, T, K), x80 = x8Base(scratch, T, K);
  for (let n = 0; n < N; n += 4) {
    const rows = min(4, N - n);
    for (let t = 0; t < T; t++) {
      const o = out + ((<usize>t * <usize>N + <usize>n) << 2);
      const xq = scratch + ((<usize>t * <usize>K) << 1);
      const xd = xd0 + ((<usize>t * <usize>nb) << 2), xs = xs0 + ((<usize>t * <usize>nb) << 2);
      const x8 = x80 + <usize>t * <usize>K;
      const b = bias != 0 ? bias + (<usize>n << 2) : 0;
      if (rows == 4) group4(o, w + <usize>n * rowBytes, nsb, xq, xd, xs, x8, b, addOut);
      else {
        for (let r = 0; r < rows; r++) {
          row1(o + (<usize>r << 2), w + <usize>(n + r) * rowBytes, nsb, xq, xd, xs, x8, b != 0 ? b + (<usize>r << 2) : 0, addOut);
        }
      }
    }
  }
}

/**
 * Sub-block j (0..7) of 4 rows → int16 panel block b (natural xq order: vector k, lane r = row r's
 * values 2k, 2k + 1). q0..q3: each row's 32 qs bytes of the sub-block's chunk, h0..h3: its 32 qh bytes.
 */
// @ts-ignore: decorator
@inline function panelSubBlock(b: usize, j: i32, q0: usize, q1: usize, q2: usize, q3: usize, h0: usize, h1: usize, h2: usize, h3: usize): void {
  const dst = IPANEL + (b << 8);
  for (let half: usize = 0; half < 2; half++) {
    const o = half << 4;
    const a0 = values5(v128.load(q0 + o), v128.load(h0 + o), j), a1 = values5(v128.load(q1 + o), v128.load(h1 + o), j);
    const a2 = values5(v128.load(q2 + o), v128.load(h2 + o), j), a3 = values5(v128.load(q3 + o), v128.load(h3 + o), j);
    const d = dst + (half << 7);
    storeTransposed(d, i16x8.extend_low_i8x16_u(a0), i16x8.extend_low_i8x16_u(a1), i16x8.extend_low_i8x16_u(a2), i16x8.extend_low_i8x16_u(a3));
    storeTransposed(d + 64, i16x8.extend_high_i8x16_u(a0), i16x8.extend_high_i8x16_u(a1), i16x8.extend_high_i8x16_u(a2), i16x8.extend_high_i8x16_u(a3));
  }
}

/**
 * Q5_K rows → the int16 row-interleaved panel, scale d·sc_j and minimum dmin·m_j per sub-block; 4 rows
 * at once: a full group from its kernel layout, the rows after the last one from ggml's.
 */
function q5kPanel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  if (rows == 4) {
    let p = w + <usize>n0 * rowBytes + <usize>(k0 >> 8) * GROUP_SUPER_BYTES;
    for (let sb = 0; sb < kc >> 8; sb++) {
      const b0 = <usize>sb << 3; // first sub-block of this super-block in the chunk
      groupScales(p, PSCALE + (b0 << 4), PMIN + (b0 << 4));
      const h = p + GROUP_QH;
      for (let j = 0; j < 8; j++) {
        const q = p + GROUP_QS + (<usize>(j >> 1) << 7);
        panelSubBlock(b0 + <usize>j, j, q, q + 32, q + 64, q + 96, h, h + 32, h + 64, h + 96);
      }
      p += GROUP_SUPER_BYTES;
    }
    return;
  }
  const first = <usize>(k0 >> 8) * BLOCK_BYTES;
  const r0 = laneRow(w, rowBytes, n0, 0, rows) + first, r1 = laneRow(w, rowBytes, n0, 1, rows) + first;
  const r2 = laneRow(w, rowBytes, n0, 2, rows) + first, r3 = laneRow(w, rowBytes, n0, 3, rows) + first;
  for (let sb = 0; sb < kc >> 8; sb++) {
    const o = <usize>sb * BLOCK_BYTES;
    const b0 = <usize>sb << 3;
    panelScalesOfRows(r0 + o, r1 + o, r2 + o, r3 + o, b0);
    for (let j = 0; j < 8; j++) {
      const q = o + QS + (<usize>(j >> 1) << 5);
      panelSubBlock(b0 + <usize>j, j, r0 + q, r1 + q, r2 + q, r3 + q, r0 + o + QH, r1 + o + QH, r2 + o + QH, r3 + o + QH);
    }
  }
}

/**
 * Rewrites N rows of K values of ggml Q5_K at w into the kernel layout, in place (the same bytes);
 * tmp: 4·(K/256)·176 bytes of scratch.
 */
export function repack_q5_k(w: usize, N: i32, K: i32, tmp: usize): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  for (let n0 = 0; n0 + 4 <= N; n0 += 4) {
    const group = w + <usize>n0 * rowBytes;
    memory.copy(tmp, group, rowBytes << 2);
    for (let sb = 0; sb < nsb; sb++) {
      const dst = group + <usize>sb * GROUP_SUPER_BYTES;
      for (let r: usize = 0; r < 4; r++) {
        const src = tmp + r * rowBytes + <usize>sb * BLOCK_BYTES;
        store<u16>(dst + (r << 1), load<u16>(src));
        store<u16>(dst + 8 + (r << 1), load<u16>(src + 2));
        for (let j: usize = 0; j < 12; j++) store<u8>(dst + 16 + (j << 2) + r, load<u8>(src + 4 + j));
        const qh = dst + GROUP_QH + (r << 5);
        v128.store(qh, v128.load(src + QH));
        v128.store(qh, v128.load(src + QH, 16), 16);
        for (let c: usize = 0; c < 4; c++) {
          const q = dst + GROUP_QS + (c << 7) + (r << 5), s = src + QS + (c << 5);
          v128.store(q, v128.load(s));
          v128.store(q, v128.load(s, 16), 16);
        }
      }
    }
  }
}
