// linear_q5_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q5_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] } (176
// bytes): Q4_K's 8 sub-blocks of 32 with a fifth bit, value = d·sc_j·q − dmin·m_j with q = the nibble
// (qs chunk c of 32 bytes: low nibbles = sub-block 2c, high = 2c + 1) + 16 · bit j of qh[l] for value l
// of sub-block j. Q5_K_M / Q5_K_S files hold nearly everything in Q5_K, and Q4_K_M files made by earlier
// llama.cpp versions their fused attn_qkv (today's llama-quantize gives it attn_v's rule: Q6_K or Q4_K).
// Held as Q5_K they take 5.5 bits per weight instead of Q8_0's 8.5.
//
// Activations: int8 per 32 values in natural order (see _linear-quant.ts); each sub-block is one block
// of the summation order, as in linear-q4_k.ts (same scales, same minimums term). The values (0..31) fit
// the 7-bit operand of the relaxed 8-bit dot, whose i16 pair sums (<= 2·31·127 = 7874) add up to at most
// 4·7874 = 31496 per i16 lane over a sub-block's 2 dots and a pairs16; the last step widens to i32 first
// (see _k-quant.ts, whose decode paths Q5_K shares with Q4_K). The baseline build widens the values to
// int16 for int16 dots; the panels are int16 in both builds (an 8-bit panel lane would hold 4 such sums:
// too much for i16).
//
// Kernel layout (repack_q5_k, at load, in place, same size): every full group of 4 rows is interleaved
// per super-block (704 bytes) as
//   { f16 d[4]; f16 dmin[4]; u8 scales[12][4]; u8 V[5][4 rows][32] }
// (the header of _k-quant.ts): decode reads one stream per group and unpacks the 4 rows' scales at
// once. V0..V4 hold each position's 8 five-bit values regrouped: 5 whole in the low bits of the 5 bytes,
// 3 in their spare top bits (see packed5 in _k-quant.ts), so that most values come out with a single
// mask instead of a nibble and a qh bit. Rows past the last full group stay in ggml's layout.

import { GROUP_V_STRIDE, groupQsOffset, groupScales, packed5, panelScalesOfRows, repackK, smallBatchK, superBytes, values5 } from "./_k-quant";
import { IPANEL, PMIN, PSCALE, laneRow, linearQuantPanels, quantizeActivations, storeTransposed } from "./_linear-quant";

const BLOCK_BYTES = superBytes(true);
/** Offsets in a ggml super-block. */
const QH: usize = 16;
const QS: usize = 48;
/** One super-block of a 4-row group in kernel layout, and where its packed vectors V0..V4 start. */
const GROUP_SUPER_BYTES: usize = 4 * BLOCK_BYTES;
const GROUP_QS = groupQsOffset(true);
/**
 * Below this many tokens the 4-row groups stream once, each token in turn against them (as in
 * linear-q4_k.ts); from it on the int16 panels. Measured on fc1 (K 2560, N 10240), one thread, ms per
 * token: this way 1.55 at T = 1, 1.7 at 2, 1.6 at 4 and 6, 1.47 at 8; the panels 2.0 at T = 4, 1.8 at 6,
 * 1.41 at 8, 1.2 at 12. Rechecked after the regrouping made decode ~11 % faster (in-process A/B, p25):
 * at T = 8 the panels still win, 1.11 against 1.14, and at 12, 0.97 against 1.11.
 */
const SMALL_BATCH: i32 = 8;

export function linear_q5_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, false);
  if (T < SMALL_BATCH) smallBatchK(true, out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q5kPanel, true, false, <usize>(K >> 8) * BLOCK_BYTES);
}

/**
 * 16 values (bytes 0..31) of sub-block j of each of 4 rows (a0..a3) → int16 panel block b (natural xq
 * order: vector k, lane r = row r's values 2k, 2k + 1), positions 16·half .. 16·half + 15.
 */
// @ts-ignore: decorator
@inline function panelHalf(b: usize, half: usize, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const d = IPANEL + (b << 8) + (half << 7);
  storeTransposed(d, i16x8.extend_low_i8x16_u(a0), i16x8.extend_low_i8x16_u(a1), i16x8.extend_low_i8x16_u(a2), i16x8.extend_low_i8x16_u(a3));
  storeTransposed(d + 64, i16x8.extend_high_i8x16_u(a0), i16x8.extend_high_i8x16_u(a1), i16x8.extend_high_i8x16_u(a2), i16x8.extend_high_i8x16_u(a3));
}

/** Sub-block j of a group super-block p (kernel layout) → int16 panel block b0 + j. */
// @ts-ignore: decorator
@inline function panelPacked(b0: usize, j: i32, p: usize): void {
  for (let half: usize = 0; half < 2; half++) {
    const v = p + GROUP_QS + (half << 4); // row r's V0 at v + 32r
    panelHalf(b0 + <usize>j, half, packed5(v, GROUP_V_STRIDE, j), packed5(v + 32, GROUP_V_STRIDE, j),
      packed5(v + 64, GROUP_V_STRIDE, j), packed5(v + 96, GROUP_V_STRIDE, j));
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
      // j a constant in each (packed5 differs per sub-block)
      panelPacked(b0, 0, p); panelPacked(b0, 1, p); panelPacked(b0, 2, p); panelPacked(b0, 3, p);
      panelPacked(b0, 4, p); panelPacked(b0, 5, p); panelPacked(b0, 6, p); panelPacked(b0, 7, p);
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
      for (let half: usize = 0; half < 2; half++) {
        const q = o + QS + (<usize>(j >> 1) << 5) + (half << 4), h = o + QH + (half << 4); // this half's qs and qh
        panelHalf(b0 + <usize>j, half,
          values5(v128.load(r0 + q), v128.load(r0 + h), j), values5(v128.load(r1 + q), v128.load(r1 + h), j),
          values5(v128.load(r2 + q), v128.load(r2 + h), j), values5(v128.load(r3 + q), v128.load(r3 + h), j));
      }
    }
  }
}

/**
 * Rewrites N rows of K values of ggml Q5_K at w into the kernel layout, in place (the same bytes);
 * tmp: 4·(K/256)·176 bytes of scratch.
 */
export function repack_q5_k(w: usize, N: i32, K: i32, tmp: usize): void {
  repackK(true, w, N, K, tmp);
}
