// Shared machinery of the ggml-quantized linear kernels (linear-q8_0.ts, linear-q4_0.ts, linear-q4_k.ts):
// out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias], w in ggml's block layout, integer dot products.
//
// As ggml does (vec_dot_q8_0_q8_0 / q4_0_q8_0), the activations are first quantized to int8 per block
// of 32 values exactly as ggml's x86 quantize_row_q8_0 does (d = amax / 127 rounded to f16,
// q = round-half-even(x · 127 / amax)), here into the caller's scratch, kept as int16 so the
// inner loop can feed i32x4.dot_i16x8_s (x86 pmaddwd) without re-extending x for every weight row:
//
//   scratch layout for T tokens of K values (K % 32 == 0), quantScratchBytes(T, K) = T·K·3 + T·(K/32)·8:
//     xq (T, K)    i16  quantized activations, values in [-127, 127] (4-bit kernels: in nibble order)
//     xd (T, K/32) f32  per-block scale d
//     xs (T, K/32) f32  d · Σ q over the block (for formats with a per-block minimum, q4_k)
//     x8 (T, K)    i8   the same quantized activations as bytes, natural order (relaxed-SIMD 8-bit dots)
//
// Per block of 32: Σ_i w_i x_i ≈ wscale · d · Σ_i q_w,i q_x,i  (− wmin · d · Σ_i q_x,i for q4_k).
//
// Batch invariance: every path (decode T = 1, panels T > 1) computes each (token, row) output in one
// canonical order, so a token's outputs are bit-identical whatever T and its place in the batch:
//   per chunk c of QPANEL_K columns: acc (f32x4) = Σ over its blocks, in order, of
//     convert(integer block sum, 4 lanes) · (wscale · d), then s_c = hsum(acc) − Σ_blocks wmin · (d·Σq);
//   r = s_0 [+ out], r = s_c + r for the later chunks, then r + bias.
// The 4 integer lanes of a block sum always hold the same 8 products (see nibble0..3 and dot32), so
// the 8-bit relaxed-SIMD dots and the int16 dots give the same lanes.
// Decode (T = 1) streams the weights once, 4 rows at a time sharing the x loads. Prefill (T > 1) widens
// 4 weight rows × PANEL_K columns to an int16 panel (+ f32 block scales/mins) once, then runs every token
// against it: the unpacking is paid once per row group, not once per token.

import { hsum4 } from "./_simd";

export const QK: i32 = 32;
/** Columns per prefill panel chunk (a multiple of 256, so Q4_K super-blocks are never split). */
export const QPANEL_K: i32 = 2048;
export const QPANEL_ROWS: i32 = 4;
/** (QPANEL_ROWS, QPANEL_K) i16 weights. */
export const QPANEL: usize = memory.data(QPANEL_ROWS * QPANEL_K * 2, 64);
/** (QPANEL_ROWS, QPANEL_K / 32) f32 block scales. */
export const QPANEL_SCALE: usize = memory.data(QPANEL_ROWS * (QPANEL_K / QK) * 4, 16);
/** (QPANEL_ROWS, QPANEL_K / 32) f32 block minimums (q4_k; zero for the others). */
export const QPANEL_MIN: usize = memory.data(QPANEL_ROWS * (QPANEL_K / QK) * 4, 16);

/** Pointers into the scratch area for T tokens of K values. */
// @ts-ignore: decorator
@inline export function xdBase(scratch: usize, T: i32, K: i32): usize {
  return scratch + ((<usize>T * <usize>K) << 1);
}
// @ts-ignore: decorator
@inline export function xsBase(scratch: usize, T: i32, K: i32): usize {
  return xdBase(scratch, T, K) + ((<usize>T * <usize>(K >> 5)) << 2);
}
// @ts-ignore: decorator
@inline export function x8Base(scratch: usize, T: i32, K: i32): usize {
  return xsBase(scratch, T, K) + ((<usize>T * <usize>(K >> 5)) << 2);
}

/**
 * Fills scratch with the int16 quantization of x (T, K); K % 32 == 0. With nibbleOrder, each group of
 * 16 values is stored as its 8 even-indexed values then its 8 odd ones: the order in which 4-bit
 * weights come out of a v128 read as i16 lanes (see nibble0..3), so they need no byte widening.
 */
export function quantizeActivations(x: usize, T: i32, K: i32, scratch: usize, nibbleOrder: bool): void {
  const nb = K >> 5;
  const xd = xdBase(scratch, T, K);
  const xs = xsBase(scratch, T, K);
  const x8 = x8Base(scratch, T, K);
  const total = T * nb;
  for (let i = 0; i < total; i++) {
    const src = x + (<usize>i << 7); // 32 f32 = 128 bytes
    const v0 = v128.load(src), v1 = v128.load(src, 16), v2 = v128.load(src, 32), v3 = v128.load(src, 48);
    const v4 = v128.load(src, 64), v5 = v128.load(src, 80), v6 = v128.load(src, 96), v7 = v128.load(src, 112);
    let m = f32x4.max(
      f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))),
    );
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
    const d = roundToHalf(amax / 127);
    const id = f32x4.splat(amax > 0 ? <f32>127 / amax : 0);
    const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, id)));
    const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, id)));
    const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, id)));
    const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, id)));
    const q4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, id)));
    const q5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, id)));
    const q6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, id)));
    const q7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, id)));
    const dst = scratch + (<usize>i << 6); // 32 i16 = 64 bytes
    const a = i16x8.narrow_i32x4_s(q0, q1), b = i16x8.narrow_i32x4_s(q2, q3);
    const c = i16x8.narrow_i32x4_s(q4, q5), e = i16x8.narrow_i32x4_s(q6, q7);
    if (nibbleOrder) {
      v128.store(dst, v128.shuffle<i16>(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(dst, v128.shuffle<i16>(a, b, 1, 3, 5, 7, 9, 11, 13, 15), 16);
      v128.store(dst, v128.shuffle<i16>(c, e, 0, 2, 4, 6, 8, 10, 12, 14), 32);
      v128.store(dst, v128.shuffle<i16>(c, e, 1, 3, 5, 7, 9, 11, 13, 15), 48);
    } else {
      v128.store(dst, a);
      v128.store(dst, b, 16);
      v128.store(dst, c, 32);
      v128.store(dst, e, 48);
    }
    v128.store(x8 + (<usize>i << 5), i8x16.narrow_i16x8_s(a, b));
    v128.store(x8 + (<usize>i << 5), i8x16.narrow_i16x8_s(c, e), 16);
    const s4 = i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7)));
    const sum = i32x4.extract_lane(s4, 0) + i32x4.extract_lane(s4, 1) + i32x4.extract_lane(s4, 2) + i32x4.extract_lane(s4, 3);
    store<f32>(xd + (<usize>i << 2), d);
    store<f32>(xs + (<usize>i << 2), d * <f32>sum);
  }
}

/**
 * 4-bit weights without widening: 16 bytes read as 8 u16 lanes hold, per lane i, bytes 2i and 2i+1.
 * nibble0 = low nibbles of the even bytes, nibble1 = low nibbles of the odd bytes, nibble2/3 = the
 * high nibbles of the even/odd bytes: i16 lanes ready for i32x4.dot_i16x8_s against activations
 * stored in nibbleOrder.
 */
// @ts-ignore: decorator
@inline export function nibble0(v: v128): v128 { return v128.and(v, i16x8.splat(0x000f)); }
// @ts-ignore: decorator
@inline export function nibble1(v: v128): v128 { return v128.and(i16x8.shr_u(v, 8), i16x8.splat(0x000f)); }
// @ts-ignore: decorator
@inline export function nibble2(v: v128): v128 { return v128.and(i16x8.shr_u(v, 4), i16x8.splat(0x000f)); }
// @ts-ignore: decorator
@inline export function nibble3(v: v128): v128 { return i16x8.shr_u(v, 12); }

/**
 * Σ nibble·x over one block of 32 4-bit values (the 16 bytes at q: value j < 16 = low nibble of byte j,
 * value 16 + j = its high nibble) against the block's 8-bit activations x0 (values 0..15) and x1
 * (16..31), as 4 i32 lanes: lane j holds values 4j..4j+3 and 16+4j..16+4j+3, exactly the lanes of
 * dot32(nibble0..3) against nibble-ordered int16 activations, so both give the same f32 results.
 * Relaxed SIMD: the nibbles (0..15) are the 7-bit operand; x86 pmaddubsw pairs stay below 2·127·15.
 */
// @ts-ignore: decorator
@inline export function nibbleDot8(q: usize, x0: v128, x1: v128): v128 {
  const v = v128.load(q);
  const lo = v128.and(v, i8x16.splat(0x0f));
  const hi = v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
  return i32x4.extadd_pairwise_i16x8_s(
    i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)));
}

/**
 * f32 → nearest IEEE half (ties to even) → f32, for the positive finite scales of activation blocks.
 * ggml stores its activation scales as f16 (block_q8_0.d); rounding ours the same way makes our
 * integer sums and scales those of llama.cpp, so quantized models agree with it to f32 rounding.
 */
// @ts-ignore: decorator
@inline export function roundToHalf(v: f32): f32 {
  if (v < <f32>6.103515625e-5) return nearest(v * <f32>16777216) * <f32>5.9604644775390625e-8; // half subnormals: multiples of 2^-24
  const bits = reinterpret<u32>(v);
  return reinterpret<f32>((bits + 0xfff + ((bits >> 13) & 1)) & 0xffffe000);
}

/** Σ over 32 values of int16 weights (4 vectors) times the int16 activations at xp, as 4 i32 lanes. */
// @ts-ignore: decorator
@inline export function dot32(w0: v128, w1: v128, w2: v128, w3: v128, xp: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xp)), i32x4.dot_i16x8_s(w1, v128.load(xp, 16))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xp, 32)), i32x4.dot_i16x8_s(w3, v128.load(xp, 48))),
  );
}

/** Final store of 4 outputs of one token: out[0..4] = sums [+ out] [+ bias]. */
// @ts-ignore: decorator
@inline export function qstore4(out: usize, sums: v128, bias: usize, addOut: bool): void {
  if (addOut) sums = f32x4.add(sums, v128.load(out));
  if (bias != 0) sums = f32x4.add(sums, v128.load(bias));
  v128.store(out, sums);
}

// @ts-ignore: decorator
@inline export function qstore1(out: usize, sum: f32, bias: usize, addOut: bool): void {
  if (addOut) sum += load<f32>(out);
  if (bias != 0) sum += load<f32>(bias);
  store<f32>(out, sum);
}

/**
 * Widens weight rows [n0, n0 + rows) × columns [k0, k0 + kc) into QPANEL (int16, row r at
 * QPANEL + r·QPANEL_K·2) with block scales and minimums (value = scale · q − min).
 */
export type QuantPanelConverter = (w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32) => void;

/** Σ over kc columns of panel row r against token t's activations (pointers at column k0). */
// @ts-ignore: decorator
@inline function panelRowDot(r: i32, xq: usize, xd: usize, xs: usize, nbc: i32, hasMin: bool): f32 {
  const wp = QPANEL + <usize>r * <usize>(QPANEL_K << 1);
  const sp = QPANEL_SCALE + <usize>r * <usize>((QPANEL_K / QK) << 2);
  const mp = QPANEL_MIN + <usize>r * <usize>((QPANEL_K / QK) << 2);
  let acc = f32x4.splat(0);
  let minAcc: f32 = 0;
  for (let b = 0; b < nbc; b++) {
    const wb = wp + (<usize>b << 6);
    const s = dot32(v128.load(wb), v128.load(wb, 16), v128.load(wb, 32), v128.load(wb, 48), xq + (<usize>b << 6));
    const scale = load<f32>(sp + (<usize>b << 2)) * load<f32>(xd + (<usize>b << 2));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(scale)));
    if (hasMin) minAcc += load<f32>(mp + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2));
  }
  const pairs = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
  return f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1) - minAcc;
}

/** 4 panel rows × one token: the x loads are shared by the 4 rows. */
// @ts-ignore: decorator
@inline function panelRows4Dot(xq: usize, xd: usize, xs: usize, nbc: i32, hasMin: bool): v128 {
  const rowStride = <usize>(QPANEL_K << 1);
  const sStride = <usize>((QPANEL_K / QK) << 2);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let m0: f32 = 0, m1: f32 = 0, m2: f32 = 0, m3: f32 = 0;
  for (let b = 0; b < nbc; b++) {
    const xp = xq + (<usize>b << 6);
    const x0 = v128.load(xp), x1 = v128.load(xp, 16), x2 = v128.load(xp, 32), x3 = v128.load(xp, 48);
    const dx = load<f32>(xd + (<usize>b << 2));
    const bo = <usize>b << 2;
    let wb = QPANEL + (<usize>b << 6);
    let s = i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb), x0), i32x4.dot_i16x8_s(v128.load(wb, 16), x1)),
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb, 32), x2), i32x4.dot_i16x8_s(v128.load(wb, 48), x3)));
    a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(QPANEL_SCALE + bo) * dx)));
    wb += rowStride;
    s = i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb), x0), i32x4.dot_i16x8_s(v128.load(wb, 16), x1)),
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb, 32), x2), i32x4.dot_i16x8_s(v128.load(wb, 48), x3)));
    a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(QPANEL_SCALE + sStride + bo) * dx)));
    wb += rowStride;
    s = i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb), x0), i32x4.dot_i16x8_s(v128.load(wb, 16), x1)),
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb, 32), x2), i32x4.dot_i16x8_s(v128.load(wb, 48), x3)));
    a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(QPANEL_SCALE + 2 * sStride + bo) * dx)));
    wb += rowStride;
    s = i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb), x0), i32x4.dot_i16x8_s(v128.load(wb, 16), x1)),
      i32x4.add(i32x4.dot_i16x8_s(v128.load(wb, 32), x2), i32x4.dot_i16x8_s(v128.load(wb, 48), x3)));
    a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(QPANEL_SCALE + 3 * sStride + bo) * dx)));
    if (hasMin) {
      const xsum = load<f32>(xs + bo);
      m0 += load<f32>(QPANEL_MIN + bo) * xsum;
      m1 += load<f32>(QPANEL_MIN + sStride + bo) * xsum;
      m2 += load<f32>(QPANEL_MIN + 2 * sStride + bo) * xsum;
      m3 += load<f32>(QPANEL_MIN + 3 * sStride + bo) * xsum;
    }
  }
  const sums = hsum4(a0, a1, a2, a3);
  return hasMin ? f32x4.sub(sums, f32x4(m0, m1, m2, m3)) : sums;
}

/**
 * The prefill driver: activations already quantized in scratch. Loops: k chunks ▸ 4-row panels ▸
 * tokens. The first chunk applies the caller's accumulate flag, later chunks add to out, the last
 * adds the bias (the canonical order above).
 */
export function linearQuantPanels(
  out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: bool, scratch: usize,
  convert: QuantPanelConverter, hasMin: bool,
): void {
  const nb = K >> 5;
  const xd0 = xdBase(scratch, T, K);
  const xs0 = xsBase(scratch, T, K);
  const os = <usize>N << 2;
  for (let k0 = 0; k0 < K; k0 += QPANEL_K) {
    const kc = min(QPANEL_K, K - k0);
    const nbc = kc >> 5;
    const b0 = k0 >> 5;
    const first = k0 == 0;
    const last = k0 + kc >= K;
    const addOut = first ? accumulate : true;
    for (let n0 = 0; n0 < N; n0 += QPANEL_ROWS) {
      const rows = min(QPANEL_ROWS, N - n0);
      convert(w, K, n0, rows, k0, kc);
      const rowBias = last && bias != 0 ? bias + (<usize>n0 << 2) : 0;
      for (let t = 0; t < T; t++) {
        const xq = scratch + ((<usize>t * <usize>K + <usize>k0) << 1);
        const xd = xd0 + ((<usize>t * <usize>nb + <usize>b0) << 2);
        const xs = xs0 + ((<usize>t * <usize>nb + <usize>b0) << 2);
        const o = out + <usize>t * os + (<usize>n0 << 2);
        if (rows == QPANEL_ROWS) {
          qstore4(o, panelRows4Dot(xq, xd, xs, nbc, hasMin), rowBias, addOut);
        } else {
          for (let r = 0; r < rows; r++) {
            qstore1(o + (<usize>r << 2), panelRowDot(r, xq, xd, xs, nbc, hasMin), rowBias != 0 ? rowBias + (<usize>r << 2) : 0, addOut);
          }
        }
      }
    }
  }
}
