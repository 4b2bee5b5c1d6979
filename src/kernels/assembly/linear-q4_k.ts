// linear_q4_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] } (144 bytes):
// 8 sub-blocks of 32 with 6-bit scale sc_j and min m_j, value = d·sc_j·q − dmin·m_j; qs holds 4 chunks
// of 32 bytes, low nibbles = sub-block 2c, high nibbles = sub-block 2c+1.
// Activations: int8 per 32 values (not ggml's Q8_K with one scale per 256: per-32 scales are more
// accurate and share the scratch layout of the other kernels), so per sub-block
//   Σ_i w_i x_i ≈ d·sc_j·dx_j · Σ_i q_i qx_i − dmin·m_j · (dx_j · Σ_i qx_i),
// each sub-block being one block of the summation order in _linear-quant.ts.
//
// Kernel layout (repack_q4_k, done once at load, in place, same size): every full group of 4 rows is
// interleaved per super-block (576 bytes) as
//   { f16 d[4]; f16 dmin[4]; u8 scales[12][4]; u8 qs[4 chunks][4 rows][32] }
// (scale byte j of row r at 16 + 4j + r): decode reads one stream per group, unpacks the 4 rows'
// scales with a few vector operations instead of once per row (the scale work, not the memory, bounded
// the one-row loop: 7-11 GB/s per thread against Q8_0's 18-20), and the panels take the unpacked
// scales as they are. Rows past the last full group stay in ggml's layout.

import { f16ExactAt, f16Scalar, hsum } from "./_simd";
import { groupD, groupMins, groupScales, panelScalesOfRows, sixBit, storeScaled, unpackScales } from "./_k-scales";
import {
  IPANEL, IPANEL8, PMIN, PSCALE, QPANEL_K, accumulateBlock, chunkRunning, chunkRunning4, chunkSum, dot32, fence,
  highNibbles, laneRow, linearQuantPanels, lowNibbles, nibble0, nibble1, nibble2, nibble3, nibblePairs,
  nibblePartial8, nibbleTotals, quantizeActivations, storeTransposed, x8Base, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 144;
/** One super-block of a 4-row group in kernel layout. */
const GROUP_SUPER_BYTES: usize = 4 * BLOCK_BYTES;
/** Where the quants of a group super-block start (after the scales d, dmin and the 48 scale bytes). */
const GROUP_QS: usize = 64;
/** The 8 sub-block scales d·sc_j of the current super-block of one row. */
const SCALES: usize = memory.data(32, 16);
/** The 8 sub-block minimums dmin·m_j of the current super-block of one row. */
const MINS: usize = memory.data(32, 16);
/** The same for a 4-row group: vector j = the 4 rows' d·sc_j. */
const GSCALES: usize = memory.data(128, 16);

/**
 * Below this many tokens the weights stream once, a 4-row group at a time, each token in turn against
 * it (the group stays in L1 for the tokens after the first); from it on the panels. Measured on fc1
 * (K 2560, N 10240), one thread, ms per token: this way 1.0 at T = 1, 1.1 at 2 and 3; the panels 1.45
 * at T = 2, 1.25 at 3, 1.05 at 4, 0.8 at 8.
 */
const SMALL_BATCH: i32 = 4;

export function linear_q4_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, true);
  if (T < SMALL_BATCH) smallBatchQ4K(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4kPanel, true, ASC_FEATURE_RELAXED_SIMD, <usize>(K >> 8) * BLOCK_BYTES);
}

/**
 * The partial sums of one 32-value sub-block: the low (high) nibbles of the 32 bytes v0, v1 against
 * its activations; i16 partials of 8-bit relaxed dots where the build has them, else i32 partials of
 * int16 dots (see nibblePartial). Reduce 4 of them with nibbleTotals.
 */
// @ts-ignore: decorator
@inline function subBlockPartial(v0: v128, v1: v128, high: bool, xp: usize, x8p: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const x0 = v128.load(x8p), x1 = v128.load(x8p, 16);
    return high ? nibblePartial8(highNibbles(v0), highNibbles(v1), x0, x1) : nibblePartial8(lowNibbles(v0), lowNibbles(v1), x0, x1);
  }
  return high
    ? dot32(nibble2(v0), nibble3(v0), nibble2(v1), nibble3(v1), xp)
    : dot32(nibble0(v0), nibble1(v0), nibble0(v1), nibble1(v1), xp);
}

/** Integer totals of the 4 sub-blocks in the 64 quant bytes at q (sub-blocks 2c, 2c + 1 per 32 bytes). */
// @ts-ignore: decorator
@inline function quadTotals(q: usize, xp: usize, x8p: usize): v128 {
  const v0 = v128.load(q), v1 = v128.load(q, 16);
  const p01 = fence(nibblePairs(fence(subBlockPartial(v0, v1, false, xp, x8p)), subBlockPartial(v0, v1, true, xp + 64, x8p + 32)));
  const v2 = v128.load(q, 32), v3 = v128.load(q, 48);
  const p23 = nibblePairs(fence(subBlockPartial(v2, v3, false, xp + 128, x8p + 64)), subBlockPartial(v2, v3, true, xp + 192, x8p + 96));
  return nibbleTotals(p01, p23);
}

/**
 * Decode and T < SMALL_BATCH: streams the weights once, a 4-row group at a time (rows past the last
 * full group: one at a time), the tokens one after the other against it (a group is 5.6 KiB for
 * K = 2560, 23 KiB for 10240: it stays in L1 for the tokens after the first).
 */
function smallBatchQ4K(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
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
 * One token against one row in ggml's layout (the rows after the last full group): out[0], in the
 * summation order of _linear-quant.ts (lane j of the accumulator is A_j: sub-blocks j and 4 + j of
 * every super-block).
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
      // scale_j · dx_j for the 8 sub-blocks
      v128.store(SCALES, f32x4.mul(v128.load(SCALES), v128.load(dp)));
      v128.store(SCALES, f32x4.mul(v128.load(SCALES, 16), v128.load(dp, 16)), 16);
      for (let j = 0; j < 8; j++) mins += load<f32>(MINS + (<usize>j << 2)) * load<f32>(sp + (<usize>j << 2));
      acc = accumulateBlock(acc, quadTotals(blk + 16, xp, x8p), v128.load(SCALES));
      acc = accumulateBlock(acc, quadTotals(blk + 80, xp + 256, x8p + 128), v128.load(SCALES, 16));
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
 * The partial sums of one row's sub-block from its 32 bytes v0, v1 (low or high nibbles) against the
 * sub-block's activations: x0, x1 its int8 values (relaxed build), else its int16 ones at xp.
 */
// @ts-ignore: decorator
@inline function rowPartial(v0: v128, v1: v128, high: bool, x0: v128, x1: v128, xp: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return high ? nibblePartial8(highNibbles(v0), highNibbles(v1), x0, x1) : nibblePartial8(lowNibbles(v0), lowNibbles(v1), x0, x1);
  }
  return high
    ? dot32(nibble2(v0), nibble3(v0), nibble2(v1), nibble3(v1), xp)
    : dot32(nibble0(v0), nibble1(v0), nibble0(v1), nibble1(v1), xp);
}

/** Where groupChunk leaves the high sub-block's totals. */
const HIGH_TOTALS: usize = memory.data(16, 16);

/**
 * groupTotals of both sub-blocks of chunk q (low nibbles: returned, high: at HIGH_TOTALS), each
 * weight vector loaded once for both.
 */
// @ts-ignore: decorator
@inline function groupChunk(q: usize, xp: usize, x8p: usize): v128 {
  const x0 = ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p) : i32x4.splat(0);
  const x1 = ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p, 16) : i32x4.splat(0);
  const y0 = ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p, 32) : i32x4.splat(0);
  const y1 = ASC_FEATURE_RELAXED_SIMD ? v128.load(x8p, 48) : i32x4.splat(0);
  let v0 = v128.load(q), v1 = v128.load(q, 16);
  let l0 = fence(rowPartial(v0, v1, false, x0, x1, xp)), h0 = fence(rowPartial(v0, v1, true, y0, y1, xp + 64));
  v0 = v128.load(q, 32); v1 = v128.load(q, 48);
  const l01 = fence(nibblePairs(l0, rowPartial(v0, v1, false, x0, x1, xp)));
  const h01 = fence(nibblePairs(h0, rowPartial(v0, v1, true, y0, y1, xp + 64)));
  v0 = v128.load(q, 64); v1 = v128.load(q, 80);
  l0 = fence(rowPartial(v0, v1, false, x0, x1, xp)); h0 = fence(rowPartial(v0, v1, true, y0, y1, xp + 64));
  v0 = v128.load(q, 96); v1 = v128.load(q, 112);
  const l23 = fence(nibblePairs(l0, rowPartial(v0, v1, false, x0, x1, xp)));
  const h23 = nibblePairs(h0, rowPartial(v0, v1, true, y0, y1, xp + 64));
  v128.store(HIGH_TOTALS, nibbleTotals(h01, h23));
  return nibbleTotals(l01, l23);
}

/** Sub-blocks j, j + 1 (j even) of a group super-block p: their madds into a (j) and b (j + 1). */
// @ts-ignore: decorator
@inline function groupPairStep(a: v128, p: usize, j: usize, xp: usize, x8p: usize, dp: usize): v128 {
  const t = groupChunk(p + GROUP_QS + ((j >> 1) << 7), xp + (j << 6), x8p + (j << 5));
  return accumulateBlock(a, t, f32x4.mul(v128.load(GSCALES + (j << 4)), f32x4.splat(load<f32>(dp + (j << 2)))));
}
// @ts-ignore: decorator
@inline function highStep(b: v128, j: usize, dp: usize): v128 {
  return accumulateBlock(b, v128.load(HIGH_TOTALS), f32x4.mul(v128.load(GSCALES + ((j + 1) << 4)), f32x4.splat(load<f32>(dp + ((j + 1) << 2)))));
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
      a0 = groupPairStep(a0, p, 0, xp, x8p, dp);
      a1 = highStep(a1, 0, dp);
      a2 = groupPairStep(a2, p, 2, xp, x8p, dp);
      a3 = highStep(a3, 2, dp);
      a0 = groupPairStep(a0, p, 4, xp, x8p, dp);
      a1 = highStep(a1, 4, dp);
      a2 = groupPairStep(a2, p, 6, xp, x8p, dp);
      a3 = highStep(a3, 6, dp);
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
 * The 32 quant bytes of chunk c of the 4 rows (at r0..r3) → panel vectors of sub-blocks b (low
 * nibbles) and b + 1 (high).
 */
// @ts-ignore: decorator
@inline function panelQuads(b: usize, r0: usize, r1: usize, r2: usize, r3: usize): void {
  const a0 = v128.load(r0), a1 = v128.load(r1), a2 = v128.load(r2), a3 = v128.load(r3);
  const c0 = v128.load(r0, 16), c1 = v128.load(r1, 16), c2 = v128.load(r2, 16), c3 = v128.load(r3, 16);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const dst = IPANEL8 + (b << 7);
    storeTransposed(dst, lowNibbles(a0), lowNibbles(a1), lowNibbles(a2), lowNibbles(a3));
    storeTransposed(dst + 64, lowNibbles(c0), lowNibbles(c1), lowNibbles(c2), lowNibbles(c3));
    storeTransposed(dst + 128, highNibbles(a0), highNibbles(a1), highNibbles(a2), highNibbles(a3));
    storeTransposed(dst + 192, highNibbles(c0), highNibbles(c1), highNibbles(c2), highNibbles(c3));
  } else {
    const dst = IPANEL + (b << 8);
    storeTransposed(dst, nibble0(a0), nibble0(a1), nibble0(a2), nibble0(a3));
    storeTransposed(dst + 64, nibble1(a0), nibble1(a1), nibble1(a2), nibble1(a3));
    storeTransposed(dst + 128, nibble0(c0), nibble0(c1), nibble0(c2), nibble0(c3));
    storeTransposed(dst + 192, nibble1(c0), nibble1(c1), nibble1(c2), nibble1(c3));
    storeTransposed(dst + 256, nibble2(a0), nibble2(a1), nibble2(a2), nibble2(a3));
    storeTransposed(dst + 320, nibble3(a0), nibble3(a1), nibble3(a2), nibble3(a3));
    storeTransposed(dst + 384, nibble2(c0), nibble2(c1), nibble2(c2), nibble2(c3));
    storeTransposed(dst + 448, nibble3(c0), nibble3(c1), nibble3(c2), nibble3(c3));
  }
}

/**
 * Q4_K rows → the row-interleaved panel (8-bit nibbles in natural order in the relaxed build, int16
 * nibbles in nibble order otherwise), scale d·sc_j and minimum dmin·m_j per sub-block; 4 rows at once:
 * a full group from its kernel layout (the scales come out unpacked as the panel keeps them), the rows
 * after the last one from ggml's.
 */
function q4kPanel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  if (rows == 4) {
    let p = w + <usize>n0 * rowBytes + <usize>(k0 >> 8) * GROUP_SUPER_BYTES;
    for (let sb = 0; sb < kc >> 8; sb++) {
      const b0 = <usize>sb << 3; // first sub-block of this super-block in the chunk
      groupScales(p, PSCALE + (b0 << 4), PMIN + (b0 << 4));
      for (let c: usize = 0; c < 4; c++) {
        const q = p + GROUP_QS + (c << 7);
        panelQuads(b0 + (c << 1), q, q + 32, q + 64, q + 96);
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
    const b0 = <usize>sb << 3; // first sub-block of this super-block in the chunk
    panelScalesOfRows(r0 + o, r1 + o, r2 + o, r3 + o, b0);
    for (let c: usize = 0; c < 4; c++) {
      const q = o + 16 + (c << 5);
      panelQuads(b0 + (c << 1), r0 + q, r1 + q, r2 + q, r3 + q);
    }
  }
}

/**
 * Rewrites N rows of K values of ggml Q4_K at w into the kernel layout, in place (the same bytes);
 * tmp: 4·(K/256)·144 bytes of scratch.
 */
export function repack_q4_k(w: usize, N: i32, K: i32, tmp: usize): void {
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
        for (let c: usize = 0; c < 4; c++) {
          const q = dst + GROUP_QS + (c << 7) + (r << 5), s = src + 16 + (c << 5);
          v128.store(q, v128.load(s));
          v128.store(q, v128.load(s, 16), 16);
        }
      }
    }
  }
}

// ---- ggml's quantize_row_q4_K_ref in native f32 (bit-exact; ~10× the speed of the TypeScript twin in
// formats/ggml-quants-k.ts, for writing Q4_K GGUF files). ----

const QL: usize = memory.data(256);      // L[256]: the chosen 4-bit levels
const QLAUX: usize = memory.data(32);    // Laux[32]
const QW: usize = memory.data(32 * 4, 16);   // weights[32]
const QSCALES: usize = memory.data(8 * 4, 16);
const QMINS: usize = memory.data(8 * 4, 16);
let qkMin: f32 = 0; // second result of makeQkx2 (the_min)

// @ts-ignore: decorator
@inline function nearestIntGgml(v: f32): i32 {
  return (reinterpret<i32>(v + <f32>12582912) & 0x7fffff) - 0x400000;
}

/** ggml_compute_fp32_to_fp16 (round to nearest even, NaN → 0x7E00). */
function fp32ToFp16Ggml(f: f32): u32 {
  let base: f32 = (abs<f32>(f) * reinterpret<f32>(0x77800000)) * reinterpret<f32>(0x08800000);
  const w = reinterpret<u32>(f);
  const shl1w = w + w;
  const sign = w & 0x80000000;
  let bias = shl1w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits = reinterpret<u32>(base);
  const nonsign = ((bits >> 13) & 0x00007c00) + (bits & 0x00000fff);
  return ((sign >> 16) | (shl1w > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** make_qkx2_quants(32, 15, x, weights, L + lo, &the_min, Laux, -1, 0.1f, 20, false). */
function makeQkx2(x: usize, lo: usize): f32 {
  const n = 32;
  const nmax: i32 = 15;
  const rmin: f32 = -1;
  const rdelta: f32 = <f32>0.1;
  let lo_ = load<f32>(x);
  let hi_ = load<f32>(x);
  let sumW = load<f32>(QW);
  let sumX: f32 = sumW * load<f32>(x);
  for (let i = 1; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v < lo_) lo_ = v;
    if (v > hi_) hi_ = v;
    const w = load<f32>(QW + (<usize>i << 2));
    sumW += w;
    sumX += w * v;
  }
  if (lo_ > 0) lo_ = 0;
  if (hi_ == lo_) {
    for (let i = 0; i < n; i++) store<u8>(QL + lo + i, 0);
    qkMin = -lo_;
    return 0;
  }
  let iscale: f32 = <f32>nmax / (hi_ - lo_);
  let scale: f32 = 1 / iscale;
  let bestError: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = load<f32>(x + (<usize>i << 2));
    const l = min(nmax, max(0, nearestIntGgml(iscale * (xi - lo_))));
    store<u8>(QL + lo + i, <u8>l);
    let diff: f32 = scale * <f32>l + lo_ - xi;
    diff = diff * diff;
    bestError += load<f32>(QW + (<usize>i << 2)) * diff;
  }
  for (let is = 0; is <= 20; is++) {
    iscale = (rmin + rdelta * <f32>is + <f32>nmax) / (hi_ - lo_);
    let sumL: f32 = 0, sumL2: f32 = 0, sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const xi = load<f32>(x + (<usize>i << 2));
      const l = min(nmax, max(0, nearestIntGgml(iscale * (xi - lo_))));
      store<u8>(QLAUX + i, <u8>l);
      const w = load<f32>(QW + (<usize>i << 2));
      const wl: f32 = w * <f32>l;
      sumL += wl;
      sumL2 += wl * <f32>l;
      sumXL += wl * xi;
    }
    const D: f32 = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale: f32 = (sumW * sumXL - sumX * sumL) / D;
      let thisMin: f32 = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let curError: f32 = 0;
      for (let i = 0; i < n; i++) {
        let diff: f32 = thisScale * <f32>load<u8>(QLAUX + i) + thisMin - load<f32>(x + (<usize>i << 2));
        diff = diff * diff;
        curError += load<f32>(QW + (<usize>i << 2)) * diff;
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) store<u8>(QL + lo + i, load<u8>(QLAUX + i));
        bestError = curError;
        scale = thisScale;
        lo_ = thisMin;
      }
    }
  }
  qkMin = -lo_;
  return scale;
}

/**
 * quantize_row_q4_K_ref: n floats at src (n % 256 == 0) → n/256 Q4_K blocks at dst. Bit-exact with
 * ggml (f32 arithmetic in C's order; wasm has no fused multiply-add to change it).
 */
export function quantize_row_q4_k(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n >> 8; i++) {
    const x = src + (<usize>i << 10);
    const y = dst + <usize>i * BLOCK_BYTES;
    let maxScale: f32 = 0, maxMin: f32 = 0;
    for (let j = 0; j < 8; j++) {
      const xj = x + (<usize>j << 7);
      let sumX2: f32 = 0;
      for (let l = 0; l < 32; l++) {
        const v = load<f32>(xj + (<usize>l << 2));
        sumX2 += v * v;
      }
      const avX: f32 = sqrt<f32>(sumX2 / 32);
      for (let l = 0; l < 32; l++) store<f32>(QW + (<usize>l << 2), avX + abs<f32>(load<f32>(xj + (<usize>l << 2))));
      const scale = makeQkx2(xj, <usize>j << 5);
      store<f32>(QSCALES + (<usize>j << 2), scale);
      store<f32>(QMINS + (<usize>j << 2), qkMin);
      if (scale > maxScale) maxScale = scale;
      if (qkMin > maxMin) maxMin = qkMin;
    }
    const invScale: f32 = maxScale > 0 ? <f32>63 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63 / maxMin : 0;
    const s = y + 4;
    for (let j = 0; j < 8; j++) {
      const ls = min<u32>(63, <u32>(<u8>nearestIntGgml(invScale * load<f32>(QSCALES + (<usize>j << 2)))));
      const lm = min<u32>(63, <u32>(<u8>nearestIntGgml(invMin * load<f32>(QMINS + (<usize>j << 2)))));
      if (j < 4) {
        store<u8>(s + j, <u8>ls);
        store<u8>(s + j + 4, <u8>lm);
      } else {
        store<u8>(s + j + 4, <u8>((ls & 0xf) | ((lm & 0xf) << 4)));
        store<u8>(s + j - 4, load<u8>(s + j - 4) | <u8>((ls >> 4) << 6));
        store<u8>(s + j, load<u8>(s + j) | <u8>((lm >> 4) << 6));
      }
    }
    const dBits = fp32ToFp16Ggml(maxScale / 63);
    const dminBits = fp32ToFp16Ggml(maxMin / 63);
    store<u16>(y, <u16>dBits);
    store<u16>(y + 2, <u16>dminBits);
    const d0 = f16Scalar(<i32><i16>dBits);
    const dmin0 = f16Scalar(<i32><i16>dminBits);
    for (let j = 0; j < 8; j++) {
      let sc: u32, m: u32;
      if (j < 4) {
        sc = <u32>load<u8>(s + j) & 63;
        m = <u32>load<u8>(s + j + 4) & 63;
      } else {
        sc = (<u32>load<u8>(s + j + 4) & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
        m = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
      }
      const d: f32 = d0 * <f32>sc;
      if (d == 0) continue; // keeps the levels makeQkx2 chose
      const dm: f32 = dmin0 * <f32>m;
      const xj = x + (<usize>j << 7);
      for (let ii = 0; ii < 32; ii++) {
        const l = min(15, max(0, nearestIntGgml((load<f32>(xj + (<usize>ii << 2)) + dm) / d)));
        store<u8>(QL + (<usize>(j << 5) + ii), <u8>l);
      }
    }
    for (let j = 0; j < 256; j += 64) {
      const q = y + 16 + (<usize>(j >> 1));
      for (let l = 0; l < 32; l++) store<u8>(q + l, load<u8>(QL + j + l) | (load<u8>(QL + j + l + 32) << 4));
    }
  }
}
