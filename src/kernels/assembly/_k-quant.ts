// Shared by the Q4_K and Q5_K kernels (linear-q4_k.ts, linear-q5_k.ts): the scale header and the decode
// paths. Their super-blocks start with the same header { f16 d; f16 dmin; u8 scales[12] } (8 sub-blocks
// of 32, 6-bit scale sc_j and min m_j each, value = d·sc_j·q − dmin·m_j), then Q5_K's qh[32] (bit j of
// qh[l]: the fifth bit of value l of sub-block j), then qs[128] (chunk c of 32 bytes: low nibbles =
// sub-block 2c, high = 2c + 1). Their 4-row groups in kernel layout (repack_q4_k / repack_q5_k) are
//   Q4_K: { f16 d[4]; f16 dmin[4]; u8 scales[12][4]; u8 qs[4 chunks][4 rows][32] }
//   Q5_K: { f16 d[4]; f16 dmin[4]; u8 scales[12][4]; u8 V[5][4 rows][32] }
// (scale byte j of row r at 16 + 4j + r), so that the 4 rows' scales unpack together with a few vector
// operations. Q5_K's V0..V4 hold its 5-bit values regrouped whole into bytes (see packed5). `five` (a
// constant at every call) picks Q5_K.
//
// Values: Q4_K's nibbles are the 7-bit operand of the relaxed 8-bit dot directly, and in the baseline
// build int16 lanes against activations in nibble order (see nibble0..3); Q5_K's 5-bit values (0..31)
// are built as bytes, the relaxed dot's operand too, and widened to int16 in the baseline build against
// activations in natural order. Relaxed i16 sums over a sub-block: Q4_K <= 4·2·15·127 per lane, so
// totals16 adds them in i16; Q5_K <= 4·2·31·127 = 31496, so its last add is in i32 (see totals).

import { f16ExactAt, f16x4Exact, hsum } from "./_simd";
import {
  PMIN, PSCALE, QPANEL_K, accumulateBlock, chunkRunning, chunkRunning4, chunkSum, dot32, fence, highNibbles,
  lowNibbles, nibble0, nibble1, nibble2, nibble3, nibblePartial8, nibblePairs, nibbleTotals, pairs16, pairs32,
  storeTransposed, totals32, x8Base, xdBase, xsBase,
} from "./_linear-quant";

/**
 * get_scale_min_k4 for all 8 sub-blocks at once, from the 12 scale bytes at s: d·sc_j to scalesDst
 * and dmin·m_j to minsDst (j = 0..7).
 *   j < 4:  sc = s[j] & 63,                          m = s[j+4] & 63
 *   j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4, m = (s[j+4] >> 4) | (s[j] >> 6) << 4
 */
// @ts-ignore: decorator
@inline export function unpackScales(s: usize, d: f32, dmin: f32, scalesDst: usize, minsDst: usize): void {
  const raw = v128.load(s); // 12 scale bytes + 4 bytes of qs (unused)
  const lo16 = i16x8.extend_low_i8x16_u(raw);
  const u0 = i32x4.extend_low_i16x8_u(lo16); // bytes 0..3
  const u4 = i32x4.extend_high_i16x8_u(lo16); // bytes 4..7
  const u8v = i32x4.extend_low_i16x8_u(i16x8.extend_high_i8x16_u(raw)); // bytes 8..11
  const m63 = i32x4.splat(63);
  const scLo = v128.and(u0, m63);
  const mLo = v128.and(u4, m63);
  const scHi = v128.or(v128.and(u8v, i32x4.splat(15)), i32x4.shl(i32x4.shr_u(u0, 6), 4));
  const mHi = v128.or(i32x4.shr_u(u8v, 4), i32x4.shl(i32x4.shr_u(u4, 6), 4));
  const dv = f32x4.splat(d);
  const dmv = f32x4.splat(dmin);
  v128.store(scalesDst, f32x4.mul(f32x4.convert_i32x4_s(scLo), dv));
  v128.store(scalesDst, f32x4.mul(f32x4.convert_i32x4_s(scHi), dv), 16);
  v128.store(minsDst, f32x4.mul(f32x4.convert_i32x4_s(mLo), dmv));
  v128.store(minsDst, f32x4.mul(f32x4.convert_i32x4_s(mHi), dmv), 16);
}

/**
 * The 6-bit scales or minimums of a group super-block at p (kernel layout) as 16 bytes, i32 lane j
 * holding the 4 rows' value: part 0 = sc_0..3, 1 = sc_4..7, 2 = m_0..3, 3 = m_4..7. The formulas of
 * unpackScales, on bytes: (s >> 6) << 4 is (s >> 2) & 0x30, and an i16 shift moves bits across the
 * byte boundary only into bits the masks clear.
 */
// @ts-ignore: decorator
@inline export function sixBit(p: usize, part: i32): v128 {
  // scale bytes 0-3 at p + 16, 4-7 at p + 32, 8-11 at p + 48; each part loads only those it uses (V8
  // keeps unused loads)
  if (part == 0) return v128.and(v128.load(p, 16), i8x16.splat(63));
  if (part == 1) return v128.or(v128.and(v128.load(p, 48), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(v128.load(p, 16), 2), i8x16.splat(0x30)));
  if (part == 2) return v128.and(v128.load(p, 32), i8x16.splat(63));
  return v128.or(v128.and(i16x8.shr_u(v128.load(p, 48), 4), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(v128.load(p, 32), 2), i8x16.splat(0x30)));
}

/** The super-block scales d (dmin: false) or dmin of the 4 rows of a group super-block at p, as f32 lanes. */
// @ts-ignore: decorator
@inline export function groupD(p: usize, dmin: bool): v128 {
  const h = v128.load(p); // d of rows 0..3, then dmin
  return f16x4Exact(dmin ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h));
}

/** Lane j (4 rows) of 16 bytes of 6-bit values as f32, times scale (4 rows): unpackScales' products. */
// @ts-ignore: decorator
@inline export function scaled(bytes: v128, j: i32, scale: v128): v128 {
  const half = j < 2 ? i16x8.extend_low_i8x16_u(bytes) : i16x8.extend_high_i8x16_u(bytes);
  const lanes = (j & 1) == 0 ? i32x4.extend_low_i16x8_u(half) : i32x4.extend_high_i16x8_u(half);
  return f32x4.mul(f32x4.convert_i32x4_s(lanes), scale);
}

/** The 4 products of scaled() for lanes j = 0..3 of bytes, to dst + 16j. */
// @ts-ignore: decorator
@inline export function storeScaled(dst: usize, bytes: v128, scale: v128): void {
  v128.store(dst, scaled(bytes, 0, scale));
  v128.store(dst, scaled(bytes, 1, scale), 16);
  v128.store(dst, scaled(bytes, 2, scale), 32);
  v128.store(dst, scaled(bytes, 3, scale), 48);
}

/**
 * unpackScales for the 4 rows of a group super-block at p: vector j at scalesDst + 16j = the rows'
 * d·sc_j, at minsDst + 16j their dmin·m_j (the same products, bit for bit).
 */
// @ts-ignore: decorator
@inline export function groupScales(p: usize, scalesDst: usize, minsDst: usize): void {
  const d = groupD(p, false), dmin = groupD(p, true);
  storeScaled(scalesDst, sixBit(p, 0), d);
  storeScaled(scalesDst + 64, sixBit(p, 1), d);
  storeScaled(minsDst, sixBit(p, 2), dmin);
  storeScaled(minsDst + 64, sixBit(p, 3), dmin);
}

/** mins + dmin·m_j · xs_j (multiply then add) for lane j of the 6-bit minimums m (see scaled). */
// @ts-ignore: decorator
@inline function minStep(mins: v128, m: v128, j: i32, dmin: v128, xs: usize): v128 {
  return f32x4.add(mins, f32x4.mul(scaled(m, j, dmin), v128.load32_splat(xs + (<usize>j << 2))));
}

/**
 * mins + the minimums term of a group super-block at p for the 4 rows, in order: + dmin·m_j · xs_j
 * (multiply then add) for j = 0..7, xs_j at sp + 4j. Straight from registers: no staging. Unrolled by
 * hand: Binaryen keeps a `for` over j as a loop, and V8 then branches on j inside scaled().
 */
// @ts-ignore: decorator
@inline export function groupMins(mins: v128, p: usize, sp: usize): v128 {
  const dmin = groupD(p, true);
  const lo = sixBit(p, 2), hi = sixBit(p, 3);
  mins = minStep(mins, lo, 0, dmin, sp);
  mins = minStep(mins, lo, 1, dmin, sp);
  mins = minStep(mins, lo, 2, dmin, sp);
  mins = minStep(mins, lo, 3, dmin, sp);
  mins = minStep(mins, hi, 0, dmin, sp + 16);
  mins = minStep(mins, hi, 1, dmin, sp + 16);
  mins = minStep(mins, hi, 2, dmin, sp + 16);
  mins = minStep(mins, hi, 3, dmin, sp + 16);
  return mins;
}

/** Per row of 4: a super-block's 8 scales then 8 minimums (panelScalesOfRows' staging). */
const STAGE: usize = memory.data(4 * 64, 16);

/**
 * The panel's scales (PSCALE) and minimums (PMIN) of sub-blocks b0 .. b0 + 7 from the super-blocks of
 * 4 rows in ggml's layout (headers at h0..h3): unpackScales per row, then transposed to row lanes.
 */
// @ts-ignore: decorator
@inline export function panelScalesOfRows(h0: usize, h1: usize, h2: usize, h3: usize, b0: usize): void {
  unpackScales(h0 + 4, f16ExactAt(h0), f16ExactAt(h0 + 2), STAGE, STAGE + 32);
  unpackScales(h1 + 4, f16ExactAt(h1), f16ExactAt(h1 + 2), STAGE + 64, STAGE + 96);
  unpackScales(h2 + 4, f16ExactAt(h2), f16ExactAt(h2 + 2), STAGE + 128, STAGE + 160);
  unpackScales(h3 + 4, f16ExactAt(h3), f16ExactAt(h3 + 2), STAGE + 192, STAGE + 224);
  for (let i: usize = 0; i < 4; i++) {
    // i: 0/1 = scales of sub-blocks 0..3 / 4..7, 2/3 = minimums
    const dst = (i < 2 ? PSCALE : PMIN) + (b0 << 4) + ((i & 1) << 6);
    const src = STAGE + (i << 4);
    storeTransposed(dst, v128.load(src), v128.load(src, 64), v128.load(src, 128), v128.load(src, 192));
  }
}

// ---- Decode and small batches ----

/** Bytes of one row's super-block, and where its qs start (ggml's layout). */
// @ts-ignore: decorator
@inline export function superBytes(five: bool): usize { return five ? 176 : 144; }
// @ts-ignore: decorator
@inline function qsOffset(five: bool): usize { return five ? 48 : 16; }
/** Where a group super-block's qs (Q4_K) or packed vectors V0..V4 (Q5_K) start (kernel layout). */
// @ts-ignore: decorator
@inline export function groupQsOffset(five: bool): usize { return 64; }
/** Bytes from one of a Q5_K group's packed vectors V_k to the next (4 rows of 32). */
export const GROUP_V_STRIDE: usize = 128;

/** One row's 8 sub-block scales d·sc_j and minimums dmin·m_j of the current super-block. */
const SCALES: usize = memory.data(32, 16);
const MINS: usize = memory.data(32, 16);
/** A 4-row group's: vector j = the 4 rows' d·sc_j. */
const GSCALES: usize = memory.data(128, 16);
/** Where groupChunk leaves the high sub-block's totals. */
const HIGH_TOTALS: usize = memory.data(16, 16);

/**
 * The 16 Q5_K values (0..31, bytes) of sub-block j (0..7) at 16 qs bytes v (low nibbles for even j, high
 * for odd) with their 16 qh bytes h. Bit j of each qh byte goes to bit 4: an i16 shift moves bits across
 * the byte boundary only into bits the mask clears.
 */
// @ts-ignore: decorator
@inline export function values5(v: v128, h: v128, j: i32): v128 {
  const nib = (j & 1) == 0 ? lowNibbles(v) : highNibbles(v);
  const bit = j <= 4 ? i16x8.shl(h, 4 - j) : i16x8.shr_u(h, j - 4);
  return v128.or(nib, v128.and(bit, i8x16.splat(0x10)));
}

/**
 * Q5_K's kernel layout regroups the values of a full 4-row group (repack_q5_k): position l (0..31) of a
 * super-block has 8 values q0..q7 (sub-blocks j = 0..7) of 5 bits, 40 bits in all, kept as byte l of 5
 * vectors V0..V4 of 32 bytes. V_k's bits 0-4 hold q_k whole, and the 15 spare bits 5-7 carry q5..q7:
 *   V0: q0 | (q5 & 7) << 5       V1: q1 | (q5 >> 3) << 5 | (q7 >> 3 & 1) << 7
 *   V2: q2 | (q6 & 7) << 5       V3: q3 | (q6 >> 3) << 5 | (q7 >> 4) << 7
 *   V4: q4 | (q7 & 7) << 5
 * Sub-blocks 0..4 then come out with one mask, 5 and 6 with 5 operations, 7 with 8: 23 per 128 values
 * where a nibble and a qh bit apiece (values5) take 35, the fifth bit alone a quarter of the kernel.
 *
 * packed5: the 16 values (0..31, bytes) of sub-block j at the 16 positions whose V0 bytes are at v, V_k
 * at v + k·stride. The i16 shifts move bits across the byte boundary only into bits the masks clear.
 */
// @ts-ignore: decorator
@inline export function packed5(v: usize, stride: usize, j: i32): v128 {
  const m5 = i8x16.splat(0x1f), m3 = i8x16.splat(0x07);
  if (j < 5) return v128.and(v128.load(v + <usize>j * stride), m5);
  if (j == 5) return v128.or(v128.and(i16x8.shr_u(v128.load(v), 5), m3), v128.and(i16x8.shr_u(v128.load(v + stride), 2), i8x16.splat(0x18)));
  if (j == 6) return v128.or(v128.and(i16x8.shr_u(v128.load(v + 2 * stride), 5), m3), v128.and(i16x8.shr_u(v128.load(v + 3 * stride), 2), i8x16.splat(0x18)));
  return v128.or(
    v128.and(i16x8.shr_u(v128.load(v + 4 * stride), 5), m3),
    v128.or(v128.and(i16x8.shr_u(v128.load(v + stride), 4), i8x16.splat(0x08)), v128.and(i16x8.shr_u(v128.load(v + 3 * stride), 3), i8x16.splat(0x10))),
  );
}

/** The inverse of packed5: 16 positions' values q0..q7 (bytes 0..31) as V0..V4 at dst + k·stride. */
// @ts-ignore: decorator
@inline function storePacked5(dst: usize, stride: usize, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128): void {
  // i16 shifts of masked bytes: no bit crosses into the next byte
  v128.store(dst, v128.or(q0, i16x8.shl(v128.and(q5, i8x16.splat(0x07)), 5)));
  v128.store(dst + stride, v128.or(q1, v128.or(i16x8.shl(v128.and(q5, i8x16.splat(0x18)), 2), i16x8.shl(v128.and(q7, i8x16.splat(0x08)), 4))));
  v128.store(dst + 2 * stride, v128.or(q2, i16x8.shl(v128.and(q6, i8x16.splat(0x07)), 5)));
  v128.store(dst + 3 * stride, v128.or(q3, v128.or(i16x8.shl(v128.and(q6, i8x16.splat(0x18)), 2), i16x8.shl(v128.and(q7, i8x16.splat(0x10)), 3))));
  v128.store(dst + 4 * stride, v128.or(q4, i16x8.shl(v128.and(q7, i8x16.splat(0x07)), 5)));
}

/**
 * The partial sums of one row's sub-block j from its 32 qs bytes v0, v1 (and Q5_K's 32 qh bytes h0, h1)
 * against the sub-block's activations: x0, x1 its int8 values (relaxed build: i16 partials), else its
 * int16 ones at xp (i32 partials).
 */
// @ts-ignore: decorator
@inline function rowPartial(five: bool, v0: v128, v1: v128, h0: v128, h1: v128, j: i32, x0: v128, x1: v128, xp: usize): v128 {
  const high = (j & 1) != 0;
  if (!five) {
    if (ASC_FEATURE_RELAXED_SIMD) {
      return high ? nibblePartial8(highNibbles(v0), highNibbles(v1), x0, x1) : nibblePartial8(lowNibbles(v0), lowNibbles(v1), x0, x1);
    }
    return high
      ? dot32(nibble2(v0), nibble3(v0), nibble2(v1), nibble3(v1), xp)
      : dot32(nibble0(v0), nibble1(v0), nibble0(v1), nibble1(v1), xp);
  }
  const q0 = values5(v0, h0, j), q1 = values5(v1, h1, j);
  if (ASC_FEATURE_RELAXED_SIMD) return nibblePartial8(q0, q1, x0, x1);
  return dot32(
    i16x8.extend_low_i8x16_u(q0), i16x8.extend_high_i8x16_u(q0), i16x8.extend_low_i8x16_u(q1), i16x8.extend_high_i8x16_u(q1), xp,
  );
}

/** pairs16 / pairs32, whichever matches the build's partials. */
// @ts-ignore: decorator
@inline function pairs(five: bool, a: v128, b: v128): v128 {
  return five ? (ASC_FEATURE_RELAXED_SIMD ? pairs16(a, b) : pairs32(a, b)) : nibblePairs(a, b);
}

/** nibbleTotals; for Q5_K's relaxed i16 partials with the last add in i32 (see the header). */
// @ts-ignore: decorator
@inline function totals(five: bool, ab: v128, cd: v128): v128 {
  if (!five || !ASC_FEATURE_RELAXED_SIMD) return five ? totals32(ab, cd) : nibbleTotals(ab, cd);
  return i32x4.add(
    i32x4.extadd_pairwise_i16x8_s(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5)),
    i32x4.extadd_pairwise_i16x8_s(v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}

/** 16 int8 activations at x8p + offset (relaxed build; zeros otherwise, unused). */
// @ts-ignore: decorator
@inline function x8Vector(x8p: usize, offset: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p + offset) : i32x4.splat(0);
}

/** The 16 qh bytes at p + offset (Q5_K; zeros for Q4_K, unused). */
// @ts-ignore: decorator
@inline function qhVector(five: bool, p: usize, offset: usize): v128 {
  return five ? v128.load(p + offset) : i32x4.splat(0);
}

/**
 * Integer totals of the 4 sub-blocks of chunks c, c + 1 (c even) of one row in ggml's layout (blk: its
 * super-block; xp, x8p: the activations of chunk c), as lanes: sub-blocks 2c .. 2c + 3.
 */
// @ts-ignore: decorator
@inline function quadTotals(five: bool, blk: usize, c: i32, xp: usize, x8p: usize): v128 {
  const h0 = qhVector(five, blk, 16), h1 = qhVector(five, blk, 32);
  const j = c << 1;
  const q = blk + qsOffset(five) + (<usize>c << 5);
  let v0 = v128.load(q), v1 = v128.load(q, 16);
  const p01 = fence(pairs(five,
    fence(rowPartial(five, v0, v1, h0, h1, j, x8Vector(x8p, 0), x8Vector(x8p, 16), xp)),
    rowPartial(five, v0, v1, h0, h1, j + 1, x8Vector(x8p, 32), x8Vector(x8p, 48), xp + 64)));
  v0 = v128.load(q, 32); v1 = v128.load(q, 48);
  const p23 = pairs(five,
    fence(rowPartial(five, v0, v1, h0, h1, j + 2, x8Vector(x8p, 64), x8Vector(x8p, 80), xp + 128)),
    rowPartial(five, v0, v1, h0, h1, j + 3, x8Vector(x8p, 96), x8Vector(x8p, 112), xp + 192));
  return totals(five, p01, p23);
}

/**
 * One token against one row in ggml's layout (the rows after the last full group): out[0], in the
 * summation order of _linear-quant.ts (lane j of the accumulator is A_j: sub-blocks j and 4 + j of
 * every super-block).
 */
// @ts-ignore: decorator
@inline function row1(five: bool, out: usize, row: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
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
      // scale_j · dx_j for the 8 sub-blocks
      v128.store(SCALES, f32x4.mul(v128.load(SCALES), v128.load(dp)));
      v128.store(SCALES, f32x4.mul(v128.load(SCALES, 16), v128.load(dp, 16)), 16);
      for (let j = 0; j < 8; j++) mins += load<f32>(MINS + (<usize>j << 2)) * load<f32>(sp + (<usize>j << 2));
      acc = accumulateBlock(acc, quadTotals(five, blk, 0, xp, x8p), v128.load(SCALES));
      acc = accumulateBlock(acc, quadTotals(five, blk, 2, xp + 256, x8p + 128), v128.load(SCALES, 16));
      xp += 512;
      x8p += 256;
      blk += superBytes(five);
      dp += 32;
      sp += 32;
    }
    const s = hsum(acc) - mins;
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/** row1 for each format, as functions (rare: the rows past the last full group). */
function row1Q4K(out: usize, row: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  row1(false, out, row, nsb, xq, xd, xs, x8, bias, addOut);
}
function row1Q5K(out: usize, row: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
  row1(true, out, row, nsb, xq, xd, xs, x8, bias, addOut);
}

/**
 * Q4_K: both sub-blocks of chunk c of a group super-block p for its 4 rows (lanes): the low one's
 * totals returned, the high one's at HIGH_TOTALS; each row's qs vectors loaded once for both, and the
 * activations once for the 4 rows.
 */
// @ts-ignore: decorator
@inline function groupChunk(five: bool, p: usize, c: i32, xp: usize, x8p: usize): v128 {
  const j = c << 1;
  const x0 = x8Vector(x8p, 0), x1 = x8Vector(x8p, 16), y0 = x8Vector(x8p, 32), y1 = x8Vector(x8p, 48);
  const q = p + groupQsOffset(five) + (<usize>c << 7);
  const h = p; // no qh (five is false)
  let v0 = v128.load(q), v1 = v128.load(q, 16), h0 = qhVector(five, h, 0), h1 = qhVector(five, h, 16);
  let l0 = fence(rowPartial(five, v0, v1, h0, h1, j, x0, x1, xp)), m0 = fence(rowPartial(five, v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v0 = v128.load(q, 32); v1 = v128.load(q, 48); h0 = qhVector(five, h, 32); h1 = qhVector(five, h, 48);
  const l01 = fence(pairs(five, l0, rowPartial(five, v0, v1, h0, h1, j, x0, x1, xp)));
  const m01 = fence(pairs(five, m0, rowPartial(five, v0, v1, h0, h1, j + 1, y0, y1, xp + 64)));
  v0 = v128.load(q, 64); v1 = v128.load(q, 80); h0 = qhVector(five, h, 64); h1 = qhVector(five, h, 80);
  l0 = fence(rowPartial(five, v0, v1, h0, h1, j, x0, x1, xp)); m0 = fence(rowPartial(five, v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v0 = v128.load(q, 96); v1 = v128.load(q, 112); h0 = qhVector(five, h, 96); h1 = qhVector(five, h, 112);
  const l23 = fence(pairs(five, l0, rowPartial(five, v0, v1, h0, h1, j, x0, x1, xp)));
  const m23 = pairs(five, m0, rowPartial(five, v0, v1, h0, h1, j + 1, y0, y1, xp + 64));
  v128.store(HIGH_TOTALS, totals(five, m01, m23));
  return totals(five, l01, l23);
}

/**
 * The scale of sub-block j of the current super-block for the 4 rows, times the token's dx_j (a
 * load32_splat: V8 broadcasts from memory in the load, where a splat of a loaded f32 takes a shuffle).
 */
// @ts-ignore: decorator
@inline function groupScale(j: usize, dp: usize): v128 {
  return f32x4.mul(v128.load(GSCALES + (j << 4)), v128.load32_splat(dp + (j << 2)));
}

/** Q4_K: sub-block 2c of a group super-block p, its madd into a (groupChunk leaves 2c + 1's totals for highStep). */
// @ts-ignore: decorator
@inline function lowStep(five: bool, a: v128, p: usize, c: i32, xp: usize, x8p: usize, dp: usize): v128 {
  const j = <usize>(c << 1);
  const t = groupChunk(five, p, c, xp + (j << 6), x8p + (j << 5));
  // fenced, as step5's madds
  return fence(accumulateBlock(a, t, groupScale(j, dp)));
}
// @ts-ignore: decorator
@inline function highStep(b: v128, c: i32, dp: usize): v128 {
  const j = <usize>((c << 1) + 1);
  return fence(accumulateBlock(b, v128.load(HIGH_TOTALS), groupScale(j, dp)));
}

/**
 * Q5_K: the partial sums of sub-block j of one row of a group from its packed vectors (v: the row's V0)
 * against the sub-block's activations, as rowPartial.
 */
// @ts-ignore: decorator
@inline function rowPartial5(v: usize, j: i32, x0: v128, x1: v128, xp: usize): v128 {
  const q0 = packed5(v, GROUP_V_STRIDE, j), q1 = packed5(v + 16, GROUP_V_STRIDE, j);
  if (ASC_FEATURE_RELAXED_SIMD) return nibblePartial8(q0, q1, x0, x1);
  return dot32(
    i16x8.extend_low_i8x16_u(q0), i16x8.extend_high_i8x16_u(q0), i16x8.extend_low_i8x16_u(q1), i16x8.extend_high_i8x16_u(q1), xp,
  );
}

/**
 * Q5_K: sub-block j of a group super-block p for its 4 rows, its madd into a (xp, x8p, dp: the
 * super-block's activations). One sub-block at a time: a split sub-block reloads the vectors that
 * whole ones read (from L1); loading them once for a whole and a split sub-block together (its totals
 * parked in memory until their turn in the summation order) measured no faster.
 */
// @ts-ignore: decorator
@inline function step5(a: v128, p: usize, j: i32, xp: usize, x8p: usize, dp: usize): v128 {
  const x0 = x8Vector(x8p, <usize>j << 5), x1 = x8Vector(x8p, (<usize>j << 5) + 16);
  const xj = xp + (<usize>j << 6);
  const v = p + groupQsOffset(true);
  const p01 = fence(pairs(true, fence(rowPartial5(v, j, x0, x1, xj)), rowPartial5(v + 32, j, x0, x1, xj)));
  const p23 = pairs(true, fence(rowPartial5(v + 64, j, x0, x1, xj)), rowPartial5(v + 96, j, x0, x1, xj));
  // fenced: V8 would otherwise leave each madd (pure) until the next step of its accumulator needs
  // it, keeping the partial sums of the steps between live and spilling them
  return fence(accumulateBlock(a, totals(true, p01, p23), groupScale(<usize>j, dp)));
}

/**
 * One token against a 4-row group in kernel layout: out[0..4], in the summation order of the panels
 * (sub-block j of a super-block goes to A_(j mod 4); the minimums in their own sum).
 */
// @ts-ignore: decorator
@inline function group4(five: bool, out: usize, group: usize, nsb: i32, xq: usize, xd: usize, xs: usize, x8: usize, bias: usize, addOut: bool): void {
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
      // fenced: the loop-carried sum is pure, so V8 would otherwise compute it at the end of the
      // iteration from header bytes and constants loaded at its start, spilling them meanwhile
      // (Q4_K decode -4 %)
      mins = fence(groupMins(mins, p, sp));
      if (five) {
        // sub-block j to A_(j mod 4), j ascending
        a0 = step5(a0, p, 0, xp, x8p, dp);
        a1 = step5(a1, p, 1, xp, x8p, dp);
        a2 = step5(a2, p, 2, xp, x8p, dp);
        a3 = step5(a3, p, 3, xp, x8p, dp);
        a0 = step5(a0, p, 4, xp, x8p, dp);
        a1 = step5(a1, p, 5, xp, x8p, dp);
        a2 = step5(a2, p, 6, xp, x8p, dp);
        a3 = step5(a3, p, 7, xp, x8p, dp);
      } else {
        a0 = lowStep(five, a0, p, 0, xp, x8p, dp);
        a1 = highStep(a1, 0, dp);
        a2 = lowStep(five, a2, p, 1, xp, x8p, dp);
        a3 = highStep(a3, 1, dp);
        a0 = lowStep(five, a0, p, 2, xp, x8p, dp);
        a1 = highStep(a1, 2, dp);
        a2 = lowStep(five, a2, p, 3, xp, x8p, dp);
        a3 = highStep(a3, 3, dp);
      }
      p += 4 * superBytes(five);
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
 * Decode and small batches: streams the weights once, a 4-row group at a time (rows past the last full
 * group: one at a time), the tokens one after the other against it (a Q4_K group is 5.6 KiB for
 * K = 2560, 23 KiB for 10240: it stays in L1 for the tokens after the first). Activations already
 * quantized in scratch.
 */
// @ts-ignore: decorator
@inline export function smallBatchK(five: bool, out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nsb = K >> 8;
  const nb = K >> 5;
  const rowBytes = <usize>nsb * superBytes(five);
  const xd0 = xdBase(scratch, T, K), xs0 = xsBase(scratch, T, K), x80 = x8Base(scratch, T, K);
  for (let n = 0; n < N; n += 4) {
    const rows = min(4, N - n);
    for (let t = 0; t < T; t++) {
      const o = out + ((<usize>t * <usize>N + <usize>n) << 2);
      const xq = scratch + ((<usize>t * <usize>K) << 1);
      const xd = xd0 + ((<usize>t * <usize>nb) << 2), xs = xs0 + ((<usize>t * <usize>nb) << 2);
      const x8 = x80 + <usize>t * <usize>K;
      const b = bias != 0 ? bias + (<usize>n << 2) : 0;
      if (rows == 4) group4(five, o, w + <usize>n * rowBytes, nsb, xq, xd, xs, x8, b, addOut);
      else {
        for (let r = 0; r < rows; r++) {
          const ro = o + (<usize>r << 2), row = w + <usize>(n + r) * rowBytes, rb = b != 0 ? b + (<usize>r << 2) : 0;
          if (five) row1Q5K(ro, row, nsb, xq, xd, xs, x8, rb, addOut);
          else row1Q4K(ro, row, nsb, xq, xd, xs, x8, rb, addOut);
        }
      }
    }
  }
}

/**
 * Rewrites N rows of K values of ggml Q4_K / Q5_K at w into the kernel layout (see the header), in
 * place (the same bytes); tmp: 4 rows of scratch.
 */
// @ts-ignore: decorator
@inline export function repackK(five: bool, w: usize, N: i32, K: i32, tmp: usize): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * superBytes(five);
  for (let n0 = 0; n0 + 4 <= N; n0 += 4) {
    const group = w + <usize>n0 * rowBytes;
    memory.copy(tmp, group, rowBytes << 2);
    for (let sb = 0; sb < nsb; sb++) {
      const dst = group + <usize>sb * 4 * superBytes(five);
      for (let r: usize = 0; r < 4; r++) {
        const src = tmp + r * rowBytes + <usize>sb * superBytes(five);
        store<u16>(dst + (r << 1), load<u16>(src));
        store<u16>(dst + 8 + (r << 1), load<u16>(src + 2));
        for (let j: usize = 0; j < 12; j++) store<u8>(dst + 16 + (j << 2) + r, load<u8>(src + 4 + j));
        if (five) {
          // 16 positions at a time: qh and the 4 qs chunks → the values of the 8 sub-blocks → V0..V4
          for (let o: usize = 0; o < 32; o += 16) {
            const h = v128.load(src + 16 + o);
            const c0 = v128.load(src + 48 + o), c1 = v128.load(src + 80 + o), c2 = v128.load(src + 112 + o), c3 = v128.load(src + 144 + o);
            storePacked5(
              dst + groupQsOffset(five) + (r << 5) + o, GROUP_V_STRIDE,
              values5(c0, h, 0), values5(c0, h, 1), values5(c1, h, 2), values5(c1, h, 3),
              values5(c2, h, 4), values5(c2, h, 5), values5(c3, h, 6), values5(c3, h, 7),
            );
          }
        } else {
          for (let c: usize = 0; c < 4; c++) {
            const q = dst + groupQsOffset(five) + (c << 7) + (r << 5), s = src + qsOffset(five) + (c << 5);
            v128.store(q, v128.load(s));
            v128.store(q, v128.load(s, 16), 16);
          }
        }
      }
    }
  }
}
