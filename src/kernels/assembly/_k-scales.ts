// Shared by the Q4_K and Q5_K kernels (linear-q4_k.ts, linear-q5_k.ts): their super-blocks start with the
// same header { f16 d; f16 dmin; u8 scales[12] } (8 sub-blocks of 32, 6-bit scale sc_j and min m_j each,
// value = d·sc_j·q − dmin·m_j), and their 4-row groups in kernel layout with the same 64 bytes:
//   { f16 d[4]; f16 dmin[4]; u8 scales[12][4] }   (scale byte j of row r at 16 + 4j + r)
// so that the 4 rows' scales unpack together with a few vector operations.

import { f16ExactAt, f16x4Exact } from "./_simd";
import { PMIN, PSCALE, storeTransposed } from "./_linear-quant";

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
  const s0 = v128.load(p, 16), s1 = v128.load(p, 32), s2 = v128.load(p, 48); // scale bytes 0-3, 4-7, 8-11
  if (part == 0) return v128.and(s0, i8x16.splat(63));
  if (part == 1) return v128.or(v128.and(s2, i8x16.splat(0x0f)), v128.and(i16x8.shr_u(s0, 2), i8x16.splat(0x30)));
  if (part == 2) return v128.and(s1, i8x16.splat(63));
  return v128.or(v128.and(i16x8.shr_u(s2, 4), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(s1, 2), i8x16.splat(0x30)));
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

/**
 * mins + the minimums term of a group super-block at p for the 4 rows, in order: + dmin·m_j · xs_j
 * (multiply then add) for j = 0..7, xs_j at sp + 4j. Straight from registers: no staging.
 */
// @ts-ignore: decorator
@inline export function groupMins(mins: v128, p: usize, sp: usize): v128 {
  const dmin = groupD(p, true);
  const lo = sixBit(p, 2), hi = sixBit(p, 3);
  for (let j = 0; j < 4; j++) mins = f32x4.add(mins, f32x4.mul(scaled(lo, j, dmin), f32x4.splat(load<f32>(sp + (<usize>j << 2)))));
  for (let j = 0; j < 4; j++) mins = f32x4.add(mins, f32x4.mul(scaled(hi, j, dmin), f32x4.splat(load<f32>(sp + (<usize>(4 + j) << 2)))));
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
