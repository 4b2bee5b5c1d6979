// linear_q4_k: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_Kᵀ [+ bias (N) f32], K % 256 == 0.
// w: N rows of K/256 ggml super-blocks { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] } (144 bytes):
// 8 sub-blocks of 32 with 6-bit scale sc_j and min m_j, value = d·sc_j·q − dmin·m_j; qs holds 4 chunks
// of 32 bytes, low nibbles = sub-block 2c, high nibbles = sub-block 2c+1.
// Activations: int8 per 32 values (not ggml's Q8_K with one scale per 256: per-32 scales are more
// accurate and share the scratch layout of the other kernels), so per sub-block
//   Σ_i w_i x_i ≈ d·sc_j·dx_j · Σ_i q_i qx_i − dmin·m_j · (dx_j · Σ_i qx_i),
// each sub-block being one block of the summation order in _linear-quant.ts.

import { f16ExactAt, f16Scalar, hsum } from "./_simd";
import {
  IPANEL, IPANEL8, PMIN, PSCALE, QPANEL_K, accumulateBlock, chunkRunning, dot32, fence, highNibbles, laneRow,
  linearQuantPanels, lowNibbles, nibble0, nibble1, nibble2, nibble3, nibblePairs, nibblePartial8,
  nibbleTotals, quantizeActivations, storeTransposed, x8Base, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 144;
/** The 8 sub-block scales d·sc_j of the current super-block of one row. */
const SCALES: usize = memory.data(32, 16);
/** The 8 sub-block minimums dmin·m_j of the current super-block of one row. */
const MINS: usize = memory.data(32, 16);

/**
 * Below this many tokens each token streams the weights in the decode loop; from it on the panels.
 * Measured on fc1 (K 2560, N 10240), ms per token: decode 1.51; panels 1.60 at T = 2, 1.40 at 4,
 * 1.04 at 8.
 */
const SMALL_BATCH: i32 = 4;

export function linear_q4_k(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, true);
  if (T < SMALL_BATCH) {
    const nb = K >> 5;
    for (let t = 0; t < T; t++) {
      matvecQ4K(
        out + ((<usize>t * <usize>N) << 2), w, bias, K, N, accumulate != 0, scratch + ((<usize>t * <usize>K) << 1),
        xdBase(scratch, T, K) + ((<usize>t * <usize>nb) << 2), xsBase(scratch, T, K) + ((<usize>t * <usize>nb) << 2),
        x8Base(scratch, T, K) + <usize>t * <usize>K,
      );
    }
  }
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4kPanel, true, ASC_FEATURE_RELAXED_SIMD, <usize>(K >> 8) * BLOCK_BYTES);
}

/**
 * get_scale_min_k4 for all 8 sub-blocks at once, from the 12 scale bytes at s: d·sc_j to scalesDst
 * and dmin·m_j to minsDst (j = 0..7; default SCALES, MINS).
 *   j < 4:  sc = s[j] & 63,                          m = s[j+4] & 63
 *   j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4, m = (s[j+4] >> 4) | (s[j] >> 6) << 4
 */
// @ts-ignore: decorator
@inline function unpackScales(s: usize, d: f32, dmin: f32, scalesDst: usize = SCALES, minsDst: usize = MINS): void {
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
 * Decode (one token; xq/xd/xs/x8: its quantized activations in the scratch): streams the weights
 * once, one row at a time (x stays in L1). Each output follows the summation order of
 * _linear-quant.ts, as the panels do: lane j of the accumulator is A_j (sub-blocks j and 4 + j of
 * every super-block).
 */
function matvecQ4K(
  out: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool, xq: usize, xd: usize, xs: usize, x8: usize,
): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  const chunkSuper = QPANEL_K >> 8;
  for (let n = 0; n < N; n++) {
    let blk = w + <usize>n * rowBytes;
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
        unpackScales(blk + 4, f16ExactAt(blk), f16ExactAt(blk + 2));
        // scale_j · dx_j for the 8 sub-blocks
        v128.store(SCALES, f32x4.mul(v128.load(SCALES), v128.load(dp)));
        v128.store(SCALES, f32x4.mul(v128.load(SCALES, 16), v128.load(dp, 16)), 16);
        for (let j = 0; j < 8; j++) mins += load<f32>(MINS + (<usize>j << 2)) * load<f32>(sp + (<usize>j << 2));
        // lane j of acc: sub-blocks j and 4 + j (A_j of the summation order: 8 sub-blocks per super-block)
        acc = accumulateBlock(acc, quadTotals(blk + 16, xp, x8p), v128.load(SCALES));
        acc = accumulateBlock(acc, quadTotals(blk + 80, xp + 256, x8p + 128), v128.load(SCALES, 16));
        xp += 512;
        x8p += 256;
        blk += BLOCK_BYTES;
        dp += 32;
        sp += 32;
      }
      const s = hsum(acc) - mins;
      res = chunkRunning(s, res, c0 == 0, out + (<usize>n << 2), addOut);
    }
    if (bias != 0) res += load<f32>(bias + (<usize>n << 2));
    store<f32>(out + (<usize>n << 2), res);
  }
}

/** Per row of a 4-row group: the super-block's 8 scales then 8 minimums (q4kPanel's staging). */
const STAGE: usize = memory.data(4 * 64, 16);

/** The 32 quant bytes at offset q of the 4 rows → panel vectors of sub-blocks b (low nibbles) and b + 1 (high). */
// @ts-ignore: decorator
@inline function panelQuads(b: usize, r0: usize, r1: usize, r2: usize, r3: usize, q: usize): void {
  const a0 = v128.load(r0 + q), a1 = v128.load(r1 + q), a2 = v128.load(r2 + q), a3 = v128.load(r3 + q);
  const c0 = v128.load(r0 + q, 16), c1 = v128.load(r1 + q, 16), c2 = v128.load(r2 + q, 16), c3 = v128.load(r3 + q, 16);
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
 * nibbles in nibble order otherwise), scale d·sc_j and minimum dmin·m_j per sub-block; 4 rows at once.
 */
function q4kPanel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nsb = K >> 8;
  const rowBytes = <usize>nsb * BLOCK_BYTES;
  const first = <usize>(k0 >> 8) * BLOCK_BYTES;
  const r0 = laneRow(w, rowBytes, n0, 0, rows) + first, r1 = laneRow(w, rowBytes, n0, 1, rows) + first;
  const r2 = laneRow(w, rowBytes, n0, 2, rows) + first, r3 = laneRow(w, rowBytes, n0, 3, rows) + first;
  for (let sb = 0; sb < kc >> 8; sb++) {
    const o = <usize>sb * BLOCK_BYTES;
    const b0 = <usize>sb << 3; // first sub-block of this super-block in the chunk
    unpackScales(r0 + o + 4, f16ExactAt(r0 + o), f16ExactAt(r0 + o + 2), STAGE, STAGE + 32);
    unpackScales(r1 + o + 4, f16ExactAt(r1 + o), f16ExactAt(r1 + o + 2), STAGE + 64, STAGE + 96);
    unpackScales(r2 + o + 4, f16ExactAt(r2 + o), f16ExactAt(r2 + o + 2), STAGE + 128, STAGE + 160);
    unpackScales(r3 + o + 4, f16ExactAt(r3 + o), f16ExactAt(r3 + o + 2), STAGE + 192, STAGE + 224);
    for (let i: usize = 0; i < 4; i++) {
      // i: 0/1 = scales of sub-blocks 0..3 / 4..7, 2/3 = minimums
      const dst = (i < 2 ? PSCALE : PMIN) + (b0 << 4) + ((i & 1) << 6);
      const src = STAGE + (i << 4);
      storeTransposed(dst, v128.load(src), v128.load(src, 64), v128.load(src, 128), v128.load(src, 192));
    }
    for (let c: usize = 0; c < 4; c++) panelQuads(b0 + (c << 1), r0, r1, r2, r3, o + 16 + (c << 5));
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
