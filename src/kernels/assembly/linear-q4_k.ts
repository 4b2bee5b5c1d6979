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

import { f16Scalar } from "./_simd";
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

/** An f16 scale as f32, ±inf included (f16Scalar maps exponent 31 to finite values: scales beyond
 * 65504, from weights beyond ~4e6, are inf in ggml's files, and then 0 * inf = NaN must not skip a group). */
function f16ScaleFull(h: u32): f32 {
  if ((h & 0x7c00) == 0x7c00) return reinterpret<f32>(((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13));
  return f16Scalar(<i32><i16>h);
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
    const d0 = f16ScaleFull(dBits);
    const dmin0 = f16ScaleFull(dminBits);
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
      if (d == 0) continue; // keeps the levels makeQkx2 chose (a NaN d, 0 * inf, does not)
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
