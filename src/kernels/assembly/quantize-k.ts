// quantize_row_q{4,5,6}_k: ggml's reference K-quant quantizers (ggml-quants.c quantize_row_q4_K_ref,
// quantize_row_q5_K_ref, quantize_row_q6_K_ref: what llama-quantize runs without an importance matrix)
// in native f32, for writing GGUF files. Bit-exact with ggml and with their TypeScript twins in
// formats/ggml-quants-k.ts: the same f32 operations in C's order (wasm has no fused multiply-add to
// change them), ggml's nearest_int and fp32 → fp16 rounding. Faster than the TypeScript, which must
// emulate f32 with Math.fround after every operation, and faster still where independent work runs in
// SIMD lanes, each lane doing one scalar computation's f32 operations: Q4_K/Q5_K's 8 sub-blocks go through
// make_qkx2_quants four at a time, Q6_K's 18 candidate scales are summed four at a time (measured on a
// 10240 × 2560 matrix, M values/s: Q4_K 67 vs 3.6, Q5_K 83 vs 4.8, Q6_K 58 vs 8.6).
//
// Each takes n floats at src (n % 256 == 0) and writes n/256 blocks at dst, in ggml's layout
// (ggml-common.h; d and dmin are f16):
//   Q4_K (144 B): d, dmin, scales[12] (8 × 6-bit scale, 8 × 6-bit min), qs[128] (4 bits)
//   Q5_K (176 B): d, dmin, scales[12], qh[32] (5th bits), qs[128]
//   Q6_K (210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d

import { f16Scalar } from "./_simd";

const Q4_K_BYTES: usize = 144;
const Q5_K_BYTES: usize = 176;
const Q6_K_BYTES: usize = 210;

const QL: usize = memory.data(256);            // L[256]: the chosen levels of one super-block
const QW: usize = memory.data(16 * 4, 16);     // w = x² of make_qx_quants
const QWX: usize = memory.data(16 * 4, 16);    // w·x of make_qx_quants
const QSCALES: usize = memory.data(16 * 4, 16); // sub-block scales (8 for Q4_K/Q5_K, 16 for Q6_K)
const QMINS: usize = memory.data(8 * 4, 16);
const QCAND: usize = memory.data(20 * 4, 16);  // make_qx_quants' 18 candidate iscales (+ 2 padding lanes)
const QSUMLX: usize = memory.data(20 * 4, 16); // their sums of w·x·l
const QSUML2: usize = memory.data(20 * 4, 16); // and of w·l·l

/** ggml's threshold below which a group's values count as all zero. */
const GROUP_MAX_EPS: f32 = 1e-15;

/** ggml's nearest_int: round to nearest even through the 1.5·2^23 trick (any f32 in, as ggml's bits). */
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

/**
 * An f16 scale as f32, ±inf and NaN included (f16Scalar maps exponent 31 to finite values: scales beyond
 * 65504, from weights beyond ~4e6, are inf in ggml's files, and then 0 · inf = NaN must not skip a group
 * as a zero scale does).
 */
function f16ScaleFull(h: u32): f32 {
  if ((h & 0x7c00) == 0x7c00) return reinterpret<f32>(((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13));
  return f16Scalar(<i32><i16>h);
}

// Buffers of makeQkx2x4: four sub-blocks of 32 side by side, value i of sub-block k in lane k of vector i.
const XT: usize = memory.data(32 * 16, 16);    // the values
const WT: usize = memory.data(32 * 16, 16);    // their weights av_x + |x|
const LT: usize = memory.data(32 * 16, 16);    // the candidate levels of the current step, as f32
// Per sub-block (8), what makeQkx2x4 leaves besides QSCALES and QMINS: the iscale and min from which its
// levels come (they are recomputed only where the rounded scale is 0 and ggml keeps them), and whether it
// was flat (max == min: levels all 0).
const QBISCALE: usize = memory.data(8 * 4, 16);
const QBLO: usize = memory.data(8 * 4, 16);
const QFLAT: usize = memory.data(8 * 4, 16);

/** Lanes of nearest_int(v), as nearestIntGgml: the same bits from the same f32 sum. */
// @ts-ignore: decorator
@inline function nearestIntX4(v: v128): v128 {
  return i32x4.sub(v128.and(f32x4.add(v, f32x4.splat(12582912)), i32x4.splat(0x7fffff)), i32x4.splat(0x400000));
}

/**
 * make_qkx2_quants(32, nmax, x, weights, L, &the_min, Laux, rmin, 0.1f, nstep, false) on four sub-blocks
 * at once (XT, WT: sub-block k in lane k), their scales to QSCALES + 4·j0.., mins (the_min) to QMINS + 4·j0...
 *
 * Bit-exact with ggml per lane: each lane does the scalar f32 operations of make_qkx2_quants in C's order
 * (wasm has no fused multiply-add, and f32x4 add/mul/div/sqrt round exactly as f32 ones), so it computes
 * the same numbers. Where ggml branches on data, every lane computes both ways and keeps its own with a
 * mask (v128.bitselect): `if (x < min) min = x` (a compare and select, not f32x4.min, which differs on
 * NaN and ±0), `if (min > 0)`, the flat sub-block `max == min` (its lanes' other results, from an infinite
 * iscale, are ignored; nothing in a lane can trap), `if (D > 0)`, `if (this_min > 0)`,
 * `if (cur_error < best_error)`. ggml copies the candidate levels Laux into L on acceptance; here each lane
 * keeps the iscale and min those levels came from (QBISCALE, QBLO), enough to recompute them exactly.
 */
function makeQkx2x4(j0: usize, nmax: i32, rmin: f32, nstep: i32): void {
  const zero = f32x4.splat(0);
  const nmaxI = i32x4.splat(nmax), zeroI = i32x4.splat(0);
  let lo = v128.load(XT), hi = lo;
  let sumW = v128.load(WT);
  let sumX = f32x4.mul(sumW, lo);
  for (let i: usize = 16; i < 512; i += 16) {
    const v = v128.load(XT + i);
    lo = v128.bitselect(v, lo, f32x4.lt(v, lo));
    hi = v128.bitselect(v, hi, f32x4.gt(v, hi));
    const w = v128.load(WT + i);
    sumW = f32x4.add(sumW, w);
    sumX = f32x4.add(sumX, f32x4.mul(w, v));
  }
  lo = v128.bitselect(zero, lo, f32x4.gt(lo, zero));
  const flat = f32x4.eq(hi, lo);
  const flatLo = lo;
  let iscale = f32x4.div(f32x4.splat(<f32>nmax), f32x4.sub(hi, lo));
  let scale = f32x4.div(f32x4.splat(1), iscale);
  let bestError = zero;
  for (let i: usize = 0; i < 512; i += 16) {
    const xi = v128.load(XT + i);
    const l = f32x4.convert_i32x4_s(i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.mul(iscale, f32x4.sub(xi, lo))))));
    let diff = f32x4.sub(f32x4.add(f32x4.mul(scale, l), lo), xi);
    diff = f32x4.mul(diff, diff);
    bestError = f32x4.add(bestError, f32x4.mul(v128.load(WT + i), diff));
  }
  let bestIscale = iscale, bestLo = lo;
  for (let is = 0; is <= nstep; is++) {
    // (hi - lo) is recomputed on purpose: ggml moves `min` to the best fit found so far.
    iscale = f32x4.div(f32x4.splat(rmin + <f32>0.1 * <f32>is + <f32>nmax), f32x4.sub(hi, lo));
    let sumL = zero, sumL2 = zero, sumXL = zero;
    for (let i: usize = 0; i < 512; i += 16) {
      const xi = v128.load(XT + i);
      const l = f32x4.convert_i32x4_s(i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.mul(iscale, f32x4.sub(xi, lo))))));
      v128.store(LT + i, l);
      const wl = f32x4.mul(v128.load(WT + i), l);
      sumL = f32x4.add(sumL, wl);
      sumL2 = f32x4.add(sumL2, f32x4.mul(wl, l));
      sumXL = f32x4.add(sumXL, f32x4.mul(wl, xi));
    }
    const D = f32x4.sub(f32x4.mul(sumW, sumL2), f32x4.mul(sumL, sumL));
    let thisScale = f32x4.div(f32x4.sub(f32x4.mul(sumW, sumXL), f32x4.mul(sumX, sumL)), D);
    let thisMin = f32x4.div(f32x4.sub(f32x4.mul(sumL2, sumX), f32x4.mul(sumL, sumXL)), D);
    const minPos = f32x4.gt(thisMin, zero);
    thisMin = v128.bitselect(zero, thisMin, minPos);
    thisScale = v128.bitselect(f32x4.div(sumXL, sumL2), thisScale, minPos);
    let curError = zero;
    for (let i: usize = 0; i < 512; i += 16) {
      let diff = f32x4.sub(f32x4.add(f32x4.mul(thisScale, v128.load(LT + i)), thisMin), v128.load(XT + i));
      diff = f32x4.mul(diff, diff);
      curError = f32x4.add(curError, f32x4.mul(v128.load(WT + i), diff));
    }
    const accept = v128.and(f32x4.gt(D, zero), f32x4.lt(curError, bestError));
    bestIscale = v128.bitselect(iscale, bestIscale, accept);
    bestLo = v128.bitselect(lo, bestLo, accept);
    bestError = v128.bitselect(curError, bestError, accept);
    scale = v128.bitselect(thisScale, scale, accept);
    lo = v128.bitselect(thisMin, lo, accept);
  }
  // Flat lanes return 0 and -min of before the steps (which they, in ggml, never ran).
  v128.store(QSCALES + (j0 << 2), v128.bitselect(zero, scale, flat));
  v128.store(QMINS + (j0 << 2), f32x4.neg(v128.bitselect(flatLo, lo, flat)));
  v128.store(QBISCALE + (j0 << 2), bestIscale);
  v128.store(QBLO + (j0 << 2), bestLo);
  v128.store(QFLAT + (j0 << 2), flat);
}

/** Sub-blocks j0..j0 + 3 of the super-block at x (4 × 32 values, 128 bytes apart) into XT, transposed. */
function transposeX4(x: usize): void {
  for (let i: usize = 0; i < 128; i += 16) {
    const r0 = v128.load(x + i), r1 = v128.load(x + 128 + i), r2 = v128.load(x + 256 + i), r3 = v128.load(x + 384 + i);
    const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
    const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
    const o = XT + (i << 2);
    v128.store(o, v128.shuffle<u64>(t0, t1, 0, 2));
    v128.store(o + 16, v128.shuffle<u64>(t0, t1, 1, 3));
    v128.store(o + 32, v128.shuffle<u64>(t2, t3, 0, 2));
    v128.store(o + 48, v128.shuffle<u64>(t2, t3, 1, 3));
  }
}

/**
 * What quantize_row_q4_K_ref and quantize_row_q5_K_ref share: per sub-block of 32 a scale and a min
 * from make_qkx2_quants (weights av_x + |x|), both rounded to 6 bits of the largest, d and dmin as f16
 * and the 12 packed scale bytes at y, then the levels 0..nmax recomputed from the rounded scales into QL.
 * The sub-blocks are independent until their scales are rounded: they go through make_qkx2_quants four
 * at a time (makeQkx2x4), each in its own lane.
 */
function scalesAndLevelsK(x: usize, y: usize, nmax: i32, rmin: f32, nstep: i32): void {
  for (let j0: usize = 0; j0 < 8; j0 += 4) {
    transposeX4(x + (j0 << 7));
    // ggml's weights: av_x = sqrt(Σx² / 32) per sub-block (summed in order, per lane), w = av_x + |x|.
    let sumX2 = f32x4.splat(0);
    for (let i: usize = 0; i < 512; i += 16) {
      const v = v128.load(XT + i);
      sumX2 = f32x4.add(sumX2, f32x4.mul(v, v));
    }
    const avX = f32x4.sqrt(f32x4.div(sumX2, f32x4.splat(32)));
    for (let i: usize = 0; i < 512; i += 16) v128.store(WT + i, f32x4.add(avX, f32x4.abs(v128.load(XT + i))));
    makeQkx2x4(j0, nmax, rmin, nstep);
  }
  let maxScale: f32 = 0, maxMin: f32 = 0;
  for (let j = 0; j < 8; j++) {
    const scale = load<f32>(QSCALES + (<usize>j << 2));
    const theMin = load<f32>(QMINS + (<usize>j << 2));
    if (scale > maxScale) maxScale = scale;
    if (theMin > maxMin) maxMin = theMin;
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
  const nmaxI = i32x4.splat(nmax), zeroI = i32x4.splat(0);
  for (let j = 0; j < 8; j++) {
    let sc: u32, m: u32; // get_scale_min_k4
    if (j < 4) {
      sc = <u32>load<u8>(s + j) & 63;
      m = <u32>load<u8>(s + j + 4) & 63;
    } else {
      sc = (<u32>load<u8>(s + j + 4) & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
      m = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
    }
    const d: f32 = d0 * <f32>sc;
    const xj = x + (<usize>j << 7);
    const Lj = QL + (<usize>j << 5);
    if (d == 0) {
      // ggml keeps make_qkx2_quants' levels (a NaN d, 0 · inf, does not): recomputed from the iscale and
      // min they came from, with the same f32 operations.
      const flat = load<i32>(QFLAT + (<usize>j << 2)) != 0;
      const iscale = load<f32>(QBISCALE + (<usize>j << 2)), lo = load<f32>(QBLO + (<usize>j << 2));
      for (let ii = 0; ii < 32; ii++) {
        const l = flat ? 0 : min(nmax, max(0, nearestIntGgml(iscale * (load<f32>(xj + (<usize>ii << 2)) - lo))));
        store<u8>(Lj + ii, <u8>l);
      }
      continue;
    }
    // l = nearest_int((x + dm) / d) clamped to 0..nmax, four values at a time (the same f32 operations).
    const dm = f32x4.splat(dmin0 * <f32>m), dv = f32x4.splat(d);
    for (let ii: usize = 0; ii < 128; ii += 64) {
      const q0 = i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.div(f32x4.add(v128.load(xj + ii), dm), dv))));
      const q1 = i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.div(f32x4.add(v128.load(xj + ii + 16), dm), dv))));
      const q2 = i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.div(f32x4.add(v128.load(xj + ii + 32), dm), dv))));
      const q3 = i32x4.min_s(nmaxI, i32x4.max_s(zeroI, nearestIntX4(f32x4.div(f32x4.add(v128.load(xj + ii + 48), dm), dv))));
      v128.store(Lj + (ii >> 2), i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
    }
  }
}

/** quantize_row_q4_K_ref: 4-bit levels, make_qkx2_quants(nmax 15, rmin -1, 21 steps). */
export function quantize_row_q4_k(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n >> 8; i++) {
    const x = src + (<usize>i << 10);
    const y = dst + <usize>i * Q4_K_BYTES;
    scalesAndLevelsK(x, y, 15, -1, 20);
    for (let j: usize = 0; j < 256; j += 64) {
      const q = y + 16 + (j >> 1);
      for (let l: usize = 0; l < 32; l += 16) {
        v128.store(q + l, v128.or(v128.load(QL + j + l), i8x16.shl(v128.load(QL + j + l + 32), 4)));
      }
    }
  }
}

/**
 * quantize_row_q5_K_ref: 5-bit levels, make_qkx2_quants(nmax 31, rmin -0.5, 16 steps); the low 4 bits
 * as Q4_K's nibbles, the 5th bit of value 64c + j in bit 2c of qh[j] (of value 64c + 32 + j in bit 2c + 1).
 */
export function quantize_row_q5_k(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n >> 8; i++) {
    const x = src + (<usize>i << 10);
    const y = dst + <usize>i * Q5_K_BYTES;
    scalesAndLevelsK(x, y, 31, <f32>-0.5, 15);
    // Levels are 0..31: the low nibbles as Q4_K's, the 5th bits gathered 16 bytes at a time.
    const low = i8x16.splat(0xf);
    for (let half: usize = 0; half < 32; half += 16) {
      let h = i8x16.splat(0);
      for (let c = 0; c < 4; c++) {
        const L = QL + (<usize>c << 6) + half;
        const l1 = v128.load(L), l2 = v128.load(L + 32);
        h = v128.or(h, v128.or(i8x16.shl(i8x16.shr_u(l1, 4), 2 * c), i8x16.shl(i8x16.shr_u(l2, 4), 2 * c + 1)));
        v128.store(y + 48 + (<usize>c << 5) + half, v128.or(v128.and(l1, low), i8x16.shl(v128.and(l2, low), 4)));
      }
      v128.store(y + 16 + half, h);
    }
  }
}

/** The level of x·iscale in make_qx_quants(nmax 32): clamped to -32..31. */
// @ts-ignore: decorator
@inline function levelQx(iscale: f32, xi: f32): i32 {
  return max(-32, min(31, nearestIntGgml(iscale * xi)));
}

/**
 * make_qx_quants(16, 32, x, L = QL + lo, rmse_type 1, NULL): x ≈ scale · (L − 32), the scale the best of
 * 19 candidate grids in the least-squares sense weighted by x². Returns the scale (0 for an all-zero group).
 */
function makeQx16(x: usize, lo: usize): f32 {
  let mx: f32 = 0, amax: f32 = 0;
  for (let i: usize = 0; i < 16; i++) {
    const v = load<f32>(x + (i << 2));
    const ax = abs<f32>(v);
    if (ax > amax) {
      amax = ax;
      mx = v; // signed: the largest magnitude sets the sign of the scale
    }
  }
  if (amax < GROUP_MAX_EPS) {
    memory.fill(QL + lo, 0, 16);
    return 0;
  }
  // ggml recomputes w = x·x and w·x per candidate; they do not change, so they are computed once.
  for (let i: usize = 0; i < 16; i++) {
    const v = load<f32>(x + (i << 2));
    const w: f32 = v * v;
    store<f32>(QW + (i << 2), w);
    store<f32>(QWX + (i << 2), w * v);
  }
  let iscale: f32 = <f32>-32 / mx;
  let sumlx: f32 = 0, suml2: f32 = 0;
  for (let i: usize = 0; i < 16; i++) {
    const l = levelQx(iscale, load<f32>(x + (i << 2)));
    store<u8>(QL + lo + i, <u8>(l + 32));
    const fl = <f32>l;
    sumlx += load<f32>(QWX + (i << 2)) * fl;
    suml2 += load<f32>(QW + (i << 2)) * fl * fl;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0; // C's `suml2 ? … : 0`: NaN counts as true
  let best: f32 = scale * sumlx;
  // The 18 other candidates (is = -9..9 but 0) do not depend on one another: their sums are computed four
  // at a time, one candidate per lane, each summed over i in ggml's order (the same f32 operations, so
  // the same sums); then they are tried in ggml's order, and the levels of the last accepted recomputed.
  for (let k = 0; k < 20; k++) {
    const is = min(k, 17) < 9 ? min(k, 17) - 9 : min(k, 17) - 8; // k 18, 19: padding lanes, copies of is = 9
    store<f32>(QCAND + (<usize>k << 2), -(<f32>32 + <f32>0.1 * <f32>is) / mx);
  }
  const magic = f32x4.splat(12582912), mant = i32x4.splat(0x7fffff), half = i32x4.splat(0x400000);
  const lo32 = i32x4.splat(-32), hi31 = i32x4.splat(31);
  for (let c: usize = 0; c < 80; c += 16) {
    const isc = v128.load(QCAND + c);
    let slx = f32x4.splat(0), sl2 = f32x4.splat(0);
    for (let i: usize = 0; i < 16; i++) {
      const p = f32x4.add(f32x4.mul(isc, f32x4.splat(load<f32>(x + (i << 2)))), magic);
      const l = i32x4.max_s(lo32, i32x4.min_s(hi31, i32x4.sub(v128.and(p, mant), half)));
      const fl = f32x4.convert_i32x4_s(l);
      slx = f32x4.add(slx, f32x4.mul(f32x4.splat(load<f32>(QWX + (i << 2))), fl));
      sl2 = f32x4.add(sl2, f32x4.mul(f32x4.mul(f32x4.splat(load<f32>(QW + (i << 2))), fl), fl));
    }
    v128.store(QSUMLX + c, slx);
    v128.store(QSUML2 + c, sl2);
  }
  let chosen = -1;
  for (let k = 0; k < 18; k++) {
    const slx = load<f32>(QSUMLX + (<usize>k << 2)), sl2 = load<f32>(QSUML2 + (<usize>k << 2));
    if (sl2 > 0 && slx * slx > best * sl2) {
      chosen = k;
      scale = slx / sl2;
      best = scale * slx;
    }
  }
  if (chosen >= 0) {
    iscale = load<f32>(QCAND + (<usize>chosen << 2));
    for (let i: usize = 0; i < 16; i++) store<u8>(QL + lo + i, <u8>(levelQx(iscale, load<f32>(x + (i << 2))) + 32));
  }
  return scale;
}

/**
 * quantize_row_q6_K_ref: per sub-block of 16 a signed scale from makeQx16, rounded to int8 of the
 * largest (d = that scale / -128 as f16), then the levels -32..31 recomputed from the rounded scales.
 */
export function quantize_row_q6_k(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n >> 8; i++) {
    const x = src + (<usize>i << 10);
    const y = dst + <usize>i * Q6_K_BYTES;
    let maxScale: f32 = 0, maxAbsScale: f32 = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQx16(x + (<usize>ib << 6), <usize>ib << 4);
      store<f32>(QSCALES + (<usize>ib << 2), scale);
      if (abs<f32>(scale) > maxAbsScale) {
        maxAbsScale = abs<f32>(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      memory.fill(y, 0, Q6_K_BYTES);
      continue;
    }
    const iscale: f32 = <f32>-128 / maxScale;
    const dBits = fp32ToFp16Ggml(1 / iscale);
    store<u16>(y + 208, <u16>dBits);
    const d0 = f16ScaleFull(dBits);
    for (let ib = 0; ib < 16; ib++) {
      store<u8>(y + 192 + ib, <u8>min(127, nearestIntGgml(iscale * load<f32>(QSCALES + (<usize>ib << 2)))));
    }
    for (let j = 0; j < 16; j++) {
      const d: f32 = d0 * <f32>load<i8>(y + 192 + j);
      if (d == 0) continue; // keeps makeQx16's levels (a NaN d, 0 · inf, does not)
      const xj = x + (<usize>j << 6);
      for (let ii: usize = 0; ii < 16; ii++) {
        const l = max(-32, min(31, nearestIntGgml(load<f32>(xj + (ii << 2)) / d)));
        store<u8>(QL + (<usize>j << 4) + ii, <u8>(l + 32));
      }
    }
    for (let j: usize = 0; j < 256; j += 128) {
      const ql = y + (j >> 1);
      const qh = y + 128 + (j >> 2);
      for (let l: usize = 0; l < 32; l++) {
        const a = <u32>load<u8>(QL + j + l), b = <u32>load<u8>(QL + j + l + 32);
        const c = <u32>load<u8>(QL + j + l + 64), e = <u32>load<u8>(QL + j + l + 96);
        store<u8>(ql + l, <u8>((a & 0xf) | ((c & 0xf) << 4)));
        store<u8>(ql + l + 32, <u8>((b & 0xf) | ((e & 0xf) << 4)));
        store<u8>(qh + l, <u8>((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)));
      }
    }
  }
}
