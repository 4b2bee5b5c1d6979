// ggml's K-quants: super-blocks of 256 values with 6- or 8-bit sub-block scales (ggml-quants.c,
// dequantize_row_q2_K ... q6_K, quantize_row_q4_K_ref, q5_K_ref, q6_K_ref, quantize_row_q8_K_ref),
// transcribed with f32 arithmetic emulated by Math.fround after every operation in C's order.
//
// Byte layouts (ggml-common.h, QK_K = 256); d/dmin are f16:
//   Q2_K (84 B):  scales[16] (low nibble scale, high nibble min, per 16 values), qs[64] (2 bits), d, dmin
//   Q3_K (110 B): hmask[32] (3rd bit), qs[64] (low 2 bits), scales[12] (16 x 6 bits), d
//   Q4_K (144 B): d, dmin, scales[12] (8 x 6-bit scale + 8 x 6-bit min), qs[128] (4 bits)
//   Q5_K (176 B): d, dmin, scales[12], qh[32] (5th bit), qs[128]
//   Q6_K (210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d
//   Q8_K (292 B, activations only): d (f32), qs[256] (int8), bsums[16] (int16 sums of 16 quants)
import { FP16_TABLE, fp32ToFp16, nearestInt } from "./ggml-quants-half.js";

const fr = Math.fround;

function f16At(b: Uint8Array, p: number): number {
  return FP16_TABLE[b[p] | (b[p + 1] << 8)];
}

/** get_scale_min_k4: the j-th 6-bit scale and min of a Q4_K/Q5_K block's 12 scale bytes at b[p]. */
export function scaleMinK4(j: number, b: Uint8Array, p: number): [number, number] {
  if (j < 4) return [b[p + j] & 63, b[p + j + 4] & 63];
  return [
    (b[p + j + 4] & 0xf) | ((b[p + j - 4] >> 6) << 4),
    (b[p + j + 4] >> 4) | ((b[p + j] >> 6) << 4),
  ];
}

export function dequantizeQ2K(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 256; i++) {
    const p = off + i * 84;
    const d = f16At(b, p + 80);
    const min = f16At(b, p + 82);
    let q = p + 16;
    let is = 0;
    let o = yo + i * 256;
    for (let nn = 0; nn < 256; nn += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = b[p + is++];
          const dl = d * (sc & 0xf);
          const ml = min * (sc >> 4);
          for (let l = 0; l < 16; l++) y[o++] = dl * ((b[q + half * 16 + l] >> shift) & 3) - ml;
        }
      }
      q += 32;
    }
  }
}

export function dequantizeQ3K(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  const scales = new Int8Array(16);
  for (let i = 0; i < n / 256; i++) {
    const p = off + i * 110;
    const dAll = f16At(b, p + 108);
    decodeQ3KScales(b, p + 96, scales);
    let q = p + 32;
    const hm = p;
    let m = 1;
    let is = 0;
    let o = yo + i * 256;
    for (let nn = 0; nn < 256; nn += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = dAll * (scales[is++] - 32);
          for (let l = 0; l < 16; l++) {
            const k = half * 16 + l;
            y[o++] = dl * (((b[q + k] >> shift) & 3) - (b[hm + k] & m ? 0 : 4));
          }
        }
        m <<= 1;
      }
      q += 32;
    }
  }
}

/** Unpacks Q3_K's 16 six-bit scales (12 bytes at b[p]) as ggml's kmask shuffle does; values 0..63. */
function decodeQ3KScales(b: Uint8Array, p: number, scales: Int8Array): void {
  const u32 = (k: number): number => (b[k] | (b[k + 1] << 8) | (b[k + 2] << 16) | (b[k + 3] << 24)) >>> 0;
  const kmask1 = 0x03030303;
  const kmask2 = 0x0f0f0f0f;
  const a0 = u32(p);
  const a1 = u32(p + 4);
  const tmp = u32(p + 8);
  const aux = [
    (a0 & kmask2) | (((tmp >>> 0) & kmask1) << 4),
    (a1 & kmask2) | (((tmp >>> 2) & kmask1) << 4),
    ((a0 >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4),
    ((a1 >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4),
  ];
  for (let w = 0; w < 4; w++) for (let k = 0; k < 4; k++) scales[w * 4 + k] = (aux[w] >>> (8 * k)) & 0xff;
}

export function dequantizeQ4K(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 256; i++) {
    const p = off + i * 144;
    const d = f16At(b, p);
    const min = f16At(b, p + 2);
    let q = p + 16;
    let o = yo + i * 256;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1s] = scaleMinK4(is, b, p + 4);
      const [sc2, m2s] = scaleMinK4(is + 1, b, p + 4);
      const d1 = d * sc1, m1 = min * m1s;
      const d2 = d * sc2, m2 = min * m2s;
      for (let l = 0; l < 32; l++) y[o++] = d1 * (b[q + l] & 0xf) - m1;
      for (let l = 0; l < 32; l++) y[o++] = d2 * (b[q + l] >> 4) - m2;
      q += 32;
    }
  }
}

export function dequantizeQ5K(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 256; i++) {
    const p = off + i * 176;
    const d = f16At(b, p);
    const min = f16At(b, p + 2);
    const qh = p + 16;
    let ql = p + 48;
    let u1 = 1, u2 = 2;
    let o = yo + i * 256;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1s] = scaleMinK4(is, b, p + 4);
      const [sc2, m2s] = scaleMinK4(is + 1, b, p + 4);
      const d1 = d * sc1, m1 = min * m1s;
      const d2 = d * sc2, m2 = min * m2s;
      for (let l = 0; l < 32; l++) y[o++] = d1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0)) - m1;
      for (let l = 0; l < 32; l++) y[o++] = d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

export function dequantizeQ6K(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 256; i++) {
    const p = off + i * 210;
    const d = f16At(b, p + 208);
    let ql = p;
    let qh = p + 128;
    let sc = p + 192;
    let o = yo + i * 256;
    for (let nn = 0; nn < 256; nn += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
        // d * sc is exact in f32; the product with q rounds once, here when stored.
        y[o + l] = d * ((b[sc + is] << 24) >> 24) * q1;
        y[o + l + 32] = d * ((b[sc + is + 2] << 24) >> 24) * q2;
        y[o + l + 64] = d * ((b[sc + is + 4] << 24) >> 24) * q3;
        y[o + l + 96] = d * ((b[sc + is + 6] << 24) >> 24) * q4;
      }
      o += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

/**
 * make_qkx2_quants: fits x ≈ scale * L - min (L in 0..nmax) minimising the weighted squared error over
 * a small grid of candidate scales. Writes L[lo..lo+n), returns [scale, min] (min >= 0 is subtracted).
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array, L: Uint8Array, lo: number,
  Laux: Uint8Array, rmin: number, rdelta: number, nstep: number,
): [number, number] {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[xo + i] - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    let diff = fr(fr(fr(scale * L[lo + i]) + min) - x[xo + i]);
    diff = fr(diff * diff);
    bestError = fr(bestError + fr(weights[i] * diff));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    // (max - min) is recomputed on purpose: ggml updates `min` to the best fit found so far.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * fr(x[xo + i] - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const wl = fr(weights[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = fr(diff * diff);
        curError = fr(curError + fr(weights[i] * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

const RDELTA = fr(0.1);
const RMIN_Q5 = fr(-0.5);
const TENTH = fr(0.1);
/** ggml's threshold below which a group's values count as all zero. */
const GROUP_MAX_EPS = fr(1e-15);

/** Scratch of the Q4_K/Q5_K quantizers: the levels of one super-block and make_qkx2_quants' arrays. */
interface KScratch {
  L: Uint8Array;
  Laux: Uint8Array;
  weights: Float32Array;
  scales: Float32Array;
  mins: Float32Array;
}

function kScratch(): KScratch {
  return { L: new Uint8Array(256), Laux: new Uint8Array(32), weights: new Float32Array(32), scales: new Float32Array(8), mins: new Float32Array(8) };
}

/**
 * What quantize_row_q4_K_ref and quantize_row_q5_K_ref share, for the super-block at x[xb..xb+256):
 * per sub-block of 32 a scale and a min from make_qkx2_quants (weights av_x + |x|), both rounded to 6
 * bits of the largest; writes d, dmin and the 12 scale bytes at out[p..p+16), and the levels 0..nmax,
 * recomputed from the rounded scales, to t.L.
 */
function scalesAndLevelsK(
  x: Float32Array, xb: number, out: Uint8Array, p: number, nmax: number, rmin: number, nstep: number, t: KScratch,
): void {
  const { L, Laux, weights, scales, mins } = t;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xb + 32 * j + l] * x[xb + 32 * j + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xb + 32 * j + l]));
    const [scale, min] = makeQkx2Quants(32, nmax, x, xb + 32 * j, weights, L, 32 * j, Laux, rmin, RDELTA, nstep);
    scales[j] = scale;
    mins[j] = min;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const s = p + 4; // scales[12]
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      out[s + j] = ls;
      out[s + j + 4] = lm;
    } else {
      out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[s + j - 4] |= (ls >> 4) << 6;
      out[s + j] |= (lm >> 4) << 6;
    }
  }
  const dBits = fp32ToFp16(fr(maxScale / 63));
  const dminBits = fp32ToFp16(fr(maxMin / 63));
  out[p] = dBits & 0xff;
  out[p + 1] = dBits >> 8;
  out[p + 2] = dminBits & 0xff;
  out[p + 3] = dminBits >> 8;
  const d0 = FP16_TABLE[dBits];
  const dmin0 = FP16_TABLE[dminBits];
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, s);
    const d = fr(d0 * sc);
    if (d === 0) continue; // keeps the levels make_qkx2_quants chose (a NaN d, from an f16 inf, does not)
    const dm = fr(dmin0 * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[xb + 32 * j + ii] + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

/** ggml's quantize_row_q4_K_ref (what llama-quantize uses without an importance matrix). n % 256 == 0. */
export function quantizeRowQ4_K(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const t = kScratch();
  for (let i = 0; i < n / 256; i++) {
    const p = outOffset + i * 144;
    scalesAndLevelsK(x, xOffset + i * 256, out, p, 15, -1, 20, t);
    let q = p + 16;
    for (let j = 0; j < 256; j += 64) {
      for (let l = 0; l < 32; l++) out[q + l] = t.L[j + l] | (t.L[j + l + 32] << 4);
      q += 32;
    }
  }
}

/**
 * ggml's quantize_row_q5_K_ref (what llama-quantize uses without an importance matrix). n % 256 == 0.
 * Levels 0..31 from make_qkx2_quants(nmax 31, rmin -0.5, 16 steps); their low 4 bits packed as Q4_K's,
 * the 5th bit of value 64c + j in bit 2c of qh[j], of value 64c + 32 + j in bit 2c + 1.
 */
export function quantizeRowQ5_K(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const t = kScratch();
  for (let i = 0; i < n / 256; i++) {
    const p = outOffset + i * 176;
    scalesAndLevelsK(x, xOffset + i * 256, out, p, 31, RMIN_Q5, 15, t);
    const qh = p + 16;
    out.fill(0, qh, qh + 32);
    for (let c = 0; c < 4; c++) {
      const ql = p + 48 + 32 * c;
      for (let j = 0; j < 32; j++) {
        const l1 = t.L[64 * c + j], l2 = t.L[64 * c + 32 + j];
        out[qh + j] |= (l1 >> 4) << (2 * c) | (l2 >> 4) << (2 * c + 1);
        out[ql + j] = (l1 & 0xf) | ((l2 & 0xf) << 4);
      }
    }
  }
}

/**
 * make_qx_quants with rmse_type 1 and no importance weights (weights x²): symmetric levels L - nmax in
 * -nmax..nmax-1 for x ≈ scale * (L - nmax), the scale the best of 19 candidate grids in the weighted
 * least-squares sense. Writes L[lo..lo+n), returns the scale (0 for an all-zero group). `w` and `wx`
 * are scratch of n floats.
 */
function makeQxQuants(
  n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number, w: Float32Array, wx: Float32Array,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]; // signed: the largest magnitude sets the sign of the scale
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  // ggml recomputes w = x*x and w*x per candidate; they do not change, so they are computed once.
  for (let i = 0; i < n; i++) {
    w[i] = fr(x[xo + i] * x[xo + i]);
    wx[i] = fr(w[i] * x[xo + i]);
  }
  const level = (iscale: number, i: number): number => Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xo + i]))));
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = level(iscale, i);
    L[lo + i] = l + nmax;
    sumlx = fr(sumlx + fr(wx[i] * l));
    suml2 = fr(suml2 + fr(fr(w[i] * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0; // C's `suml2 ? … : 0`: a NaN sum counts as true
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(TENTH * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = level(iscale, i);
      sumlx = fr(sumlx + fr(wx[i] * l));
      suml2 = fr(suml2 + fr(fr(w[i] * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = level(iscale, i) + nmax;
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** ggml's quantize_row_q6_K_ref (what llama-quantize uses without an importance matrix). n % 256 == 0. */
export function quantizeRowQ6_K(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const L = new Uint8Array(256);
  const scales = new Float32Array(16);
  const w = new Float32Array(16);
  const wx = new Float32Array(16);
  for (let i = 0; i < n / 256; i++) {
    const xb = xOffset + i * 256;
    const p = outOffset + i * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, xb + 16 * ib, L, 16 * ib, w, wx);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, p, p + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dBits = fp32ToFp16(fr(1 / iscale));
    out[p + 208] = dBits & 0xff;
    out[p + 209] = dBits >> 8;
    const d0 = FP16_TABLE[dBits];
    for (let ib = 0; ib < 16; ib++) out[p + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const d = fr(d0 * ((out[p + 192 + j] << 24) >> 24));
      if (d === 0) continue; // keeps make_qx_quants' levels (a NaN d, from an f16 inf, does not)
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[xb + 16 * j + ii] / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let j = 0; j < 256; j += 128) {
      const ql = p + j / 2;
      const qh = p + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
        out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}

/** Bytes of one Q8_K block: f32 d, 256 int8 quants, 16 int16 sums of 16 quants. */
export const Q8_K_BYTES = 292;

/** ggml's quantize_row_q8_K_ref (activation format for K-quant dot products). n % 256 == 0. */
export function quantizeRowQ8_K(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const dv = new DataView(out.buffer, out.byteOffset);
  for (let i = 0; i < n / 256; i++) {
    const xb = xOffset + i * 256;
    const p = outOffset + i * Q8_K_BYTES;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < 256; j++) {
      const ax = Math.abs(x[xb + j]);
      if (ax > amax) {
        amax = ax;
        max = x[xb + j];
      }
    }
    if (!amax) {
      out.fill(0, p, p + Q8_K_BYTES);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = 0; j < 256; j++) {
      const v = nearestInt(fr(iscale * x[xb + j]));
      out[p + 4 + j] = Math.min(127, v) & 0xff;
    }
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let ii = 0; ii < 16; ii++) sum += (out[p + 4 + j * 16 + ii] << 24) >> 24;
      dv.setInt16(p + 260 + 2 * j, sum, true);
    }
    dv.setFloat32(p, fr(1 / iscale), true);
  }
}
