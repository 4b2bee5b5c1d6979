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
// (scale byte j of row r at 16 + 4j + r): decode (_k-quant.ts, shared with Q5_K) reads one stream per
// group, unpacks the 4 rows' scales with a few vector operations instead of once per row (the scale
// work, not the memory, bounded the one-row loop: 7-11 GB/s per thread against Q8_0's 18-20), and the
// panels take the unpacked scales as they are. Rows past the last full group stay in ggml's layout.

import { groupQsOffset, groupScales, panelScalesOfRows, repackK, smallBatchK, superBytes } from "./_k-quant";
import {
  IPANEL, IPANEL8, PMIN, PSCALE, highNibbles, laneRow, linearQuantPanels, lowNibbles, nibble0, nibble1, nibble2,
  nibble3, quantizeActivations, storeTransposed,
} from "./_linear-quant";

const BLOCK_BYTES = superBytes(false);
/** One super-block of a 4-row group in kernel layout, and where its quants start (after 64 bytes of scales). */
const GROUP_SUPER_BYTES: usize = 4 * BLOCK_BYTES;
const GROUP_QS = groupQsOffset(false);

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
  if (T < SMALL_BATCH) smallBatchK(false, out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4kPanel, true, ASC_FEATURE_RELAXED_SIMD, <usize>(K >> 8) * BLOCK_BYTES);
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
  repackK(false, w, N, K, tmp);
}
