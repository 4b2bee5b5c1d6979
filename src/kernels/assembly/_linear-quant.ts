// Shared machinery of the ggml-quantized linear kernels (linear-q8_0.ts, linear-q4_0.ts, linear-q4_k.ts,
// linear-q5_k.ts, linear-q6_k.ts):
// out (T, N) [+]= x (T, K) · w (N, K)ᵀ [+ bias], w in ggml's block layout, integer dot products.
//
// As ggml does (vec_dot_q8_0_q8_0 / q4_0_q8_0), the activations are first quantized to int8 per block
// of 32 values exactly as ggml's x86 quantize_row_q8_0 does (d = amax / 127 rounded to f16,
// q = round-half-even(x · 127 / amax)), here into the caller's scratch:
//
//   scratch layout for T tokens of K values (K % 32 == 0), quantScratchBytes(T, K) = T·K·3 + T·(K/32)·8:
//     xq (T, K)    i16  quantized activations, values in [-127, 127] (Q4_0 and Q4_K: in nibble order,
//                       see nibble0..3), for i32x4.dot_i16x8_s (x86 pmaddwd)
//     xd (T, K/32) f32  per-block scale d
//     xs (T, K/32) f32  d · Σ q over the block (for formats with a per-block minimum)
//     x8 (T, K)    i8   the same values as bytes in natural order, for the relaxed-SIMD 8-bit dots
//
// Per block of 32: Σ_i w_i x_i ≈ wscale · d · Σ_i q_w,i q_x,i − wmin · (d · Σ_i q_x,i).
//
// Summation order (the same in every path, so a token's outputs are bit-identical whatever T and its
// place in the batch): a block's integer dot product t_b = Σ_i q_w,i q_x,i is exact (any grouping of
// the integer adds gives it). Per (token, row), in f32, per chunk of QPANEL_K columns whose blocks are
// numbered b = 0, 1, ... from the chunk's start:
//   A_j = Σ over its blocks b ≡ j (mod 4), in order, of f32(t_b) · (wscale_b · d_b), each step one
//         madd (fused multiply-add in the relaxed build, multiply then add in the baseline build);
//   mins = Σ_b, in order, of wmin_b · (d_b · Σq_b) (multiply then add);  s = ((A_0 + A_2) + (A_1 + A_3)) − mins
//   r = s_0 [+ out], then r = s_c + r for the later chunks, then r + bias.
// Paths with the 4 rows in the lanes (panels, 4-row decode) keep A_0..A_3 as four vectors (loops
// unrolled by 4 blocks; the 8-row panel pass in memory, ACC8); one-row paths keep A as one vector whose lane j is A_j, 4 blocks at a time.
// Integer totals of 4 blocks or 4 rows come out of transposing adds (pairs16 / totals16 ...), so a
// block costs one int → float conversion and one madd per 4 rows, as in ggml's vec_dot loops.

// Decode and small batches (below each kernel's SMALL_BATCH) stream the weights once, 1 or 4 rows at
// a time. Larger batches and prefill repack 4 rows × QPANEL_K columns into a row-interleaved panel, as
// ggml's repacked gemm kernels do: each 16-byte vector holds the same few columns of the 4 rows, so one
// dot against those columns of a token broadcast to all lanes gives the 4 rows' partial sums in the 4
// lanes, and the f32 scaling of a block is shared by the 4 rows.

import { madd } from "./_simd";

/** Values per block. */
export const QK: i32 = 32;
/** Columns per panel chunk (a multiple of 256, so Q4_K super-blocks are never split). */
export const QPANEL_K: i32 = 2048;
const QPANEL_BLOCKS: i32 = QPANEL_K / QK;
/**
 * int16 panel: per block 16 vectors; vector k, i32 lane r = row r's weights at the block's xq
 * positions 2k, 2k+1 (the pair one i32 broadcast of xq multiplies). 256 bytes per block.
 */
export const IPANEL: usize = memory.data(QPANEL_BLOCKS * 256, 64);
/**
 * 8-bit panel (4-bit formats, relaxed build): per block 8 vectors; vector k, lane r = row r's weights
 * (0..15) at the block's x8 positions 4k..4k+3. 128 bytes per block.
 */
export const IPANEL8: usize = memory.data(QPANEL_BLOCKS * 128, 64);
/** Per block, f32 lane r: row r's block scale. */
export const PSCALE: usize = memory.data(QPANEL_BLOCKS * 16, 16);
/** Per block, f32 lane r: row r's block minimum (formats with a minimum). */
export const PMIN: usize = memory.data(QPANEL_BLOCKS * 16, 16);
/** Tokens per panel pass: their running results for the current 4 rows live in PACC between chunks. */
const TOKEN_BLOCK: i32 = 256;
const PACC: usize = memory.data(TOKEN_BLOCK * 32, 16);
const LANES: usize = memory.data(16, 16);
/** Write-only slot for `fence`. */
const FENCE: usize = memory.data(16, 16);

/**
 * Returns v after storing it to a scratch slot. The store orders V8's loads: TurboFan keeps memory
 * operations in program order but floats pure ones, and with nothing in between it issues every load
 * of an unrolled block first and then spills the values it cannot keep. A fence after each part of a
 * block makes the part's loads wait for the previous part's result (one store, no reload).
 */
// @ts-ignore: decorator
@inline export function fence(v: v128): v128 {
  v128.store(FENCE, v);
  return v;
}

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
 * Fills scratch with the quantization of x (T, K); K % 32 == 0. With nibbleOrder, each group of
 * 16 int16 values is stored as its 8 even-indexed values then its 8 odd ones: the order in which 4-bit
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

/** Low / high nibbles of 16 bytes as 16 bytes (values 0..15), natural order. */
// @ts-ignore: decorator
@inline export function lowNibbles(v: v128): v128 { return v128.and(v, i8x16.splat(0x0f)); }
// @ts-ignore: decorator
@inline export function highNibbles(v: v128): v128 { return v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f)); }

/**
 * Σ over 32 4-bit values (lo: values 0..15, hi: 16..31, as bytes 0..15) times the block's 8-bit
 * activations x0 (values 0..15) and x1 (16..31), as 8 i16 partial sums (relaxed build only; reduce
 * with totals16). The nibbles are the 7-bit operand; x86 pmaddubsw pair sums stay within 2·127·15, the
 * i16 add within twice that (7620), so 4 such vectors can still be added in i16.
 */
// @ts-ignore: decorator
@inline export function nibblePartial8(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
}

/**
 * Totals of 4 vectors of partial sums, [Σ a, Σ b, Σ c, Σ d] as i32 lanes, in two steps so that only
 * two of the four are ever live: pairs16(a, b) and pairs16(c, d), then totals16 of those. For i16
 * partials each within ±7620 (so sums of 4 lanes stay in i16); pairs32 / totals32 for i32 partials.
 */
// @ts-ignore: decorator
@inline export function pairs16(a: v128, b: v128): v128 {
  return i16x8.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
}
// @ts-ignore: decorator
@inline export function totals16(ab: v128, cd: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}
// @ts-ignore: decorator
@inline export function pairs32(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
}
// @ts-ignore: decorator
@inline export function totals32(ab: v128, cd: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/**
 * The partial sums of a 4-bit block (16 quant bytes v: value i low nibble of byte i, 16 + i the
 * high one) against its activations: i16 partials from 8-bit dots in the relaxed build, i32 from
 * int16 dots (xp: the block's nibble-order xq) otherwise. Reduce 4 of them with nibbleTotals.
 */
// @ts-ignore: decorator
@inline export function nibblePartial(v: v128, xp: usize, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return nibblePartial8(lowNibbles(v), highNibbles(v), x0, x1);
  return dot32(nibble0(v), nibble1(v), nibble2(v), nibble3(v), xp);
}

/** pairs16 / totals16 or pairs32 / totals32, whichever match the build's nibblePartial. */
// @ts-ignore: decorator
@inline export function nibblePairs(a: v128, b: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? pairs16(a, b) : pairs32(a, b);
}
// @ts-ignore: decorator
@inline export function nibbleTotals(ab: v128, cd: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? totals16(ab, cd) : totals32(ab, cd);
}

/**
 * One madd step of the summation order for 4 lanes: acc + f32(totals) · scale.
 */
// @ts-ignore: decorator
@inline export function accumulateBlock(acc: v128, totals: v128, scale: v128): v128 {
  return madd(f32x4.convert_i32x4_s(totals), scale, acc);
}

/**
 * A chunk's s joins an output's running value r (summation order): the first chunk gives s [+ out],
 * each later one s + r. chunkRunning4: the same for the `rows` outputs at out, as lanes.
 */
// @ts-ignore: decorator
@inline export function chunkRunning(s: f32, running: f32, first: bool, out: usize, addOut: bool): f32 {
  return first ? (addOut ? s + load<f32>(out) : s) : s + running;
}
// @ts-ignore: decorator
@inline export function chunkRunning4(s: v128, running: v128, first: bool, out: usize, rows: i32, addOut: bool): v128 {
  return first ? (addOut ? f32x4.add(s, loadRows(out, rows)) : s) : f32x4.add(s, running);
}

/** The chunk's s from the four rotated or lane-wise accumulators: ((A0 + A2) + (A1 + A3)) − mins. */
// @ts-ignore: decorator
@inline export function chunkSum(a0: v128, a1: v128, a2: v128, a3: v128, mins: v128): v128 {
  return f32x4.sub(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)), mins);
}

/** Σ over 32 values of int16 weights (4 vectors) times the int16 activations at xp, as 4 i32 lanes. */
// @ts-ignore: decorator
@inline export function dot32(w0: v128, w1: v128, w2: v128, w3: v128, xp: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xp)), i32x4.dot_i16x8_s(w1, v128.load(xp, 16))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xp, 32)), i32x4.dot_i16x8_s(w3, v128.load(xp, 48))),
  );
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

/** Row pointer for lane r of a 4-row group with `rows` real rows: missing lanes repeat the last row. */
// @ts-ignore: decorator
@inline export function laneRow(w: usize, rowBytes: usize, n0: i32, r: i32, rows: i32): usize {
  return w + <usize>(n0 + min(r, rows - 1)) * rowBytes;
}

/** `rows` (1..4) floats at p as f32 lanes (the rest 0), reading nothing past them. */
// @ts-ignore: decorator
@inline export function loadRows(p: usize, rows: i32): v128 {
  if (rows == 4) return v128.load(p);
  v128.store(LANES, f32x4.splat(0));
  for (let i = 0; i < rows; i++) store<f32>(LANES + (<usize>i << 2), load<f32>(p + (<usize>i << 2)));
  return v128.load(LANES);
}

/** Stores the first `rows` lanes of v at p. */
// @ts-ignore: decorator
@inline export function storeRows(p: usize, v: v128, rows: i32): void {
  if (rows == 4) {
    v128.store(p, v);
    return;
  }
  v128.store(LANES, v);
  for (let i = 0; i < rows; i++) store<f32>(p + (<usize>i << 2), load<f32>(LANES + (<usize>i << 2)));
}

/**
 * Repacks weight rows n0 .. n0 + rows (rows <= 4; missing lanes repeat the last row) × columns
 * [k0, k0 + kc) into IPANEL (or IPANEL8, for converters of 4-bit formats in the relaxed build), with
 * the block scales in PSCALE and minimums in PMIN.
 */
export type QuantPanelConverter = (w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32) => void;

/** Stores the 4 i32 lanes of v as lane r of 4 consecutive panel vectors (dst, dst + 16, ...). */
// @ts-ignore: decorator
@inline export function scatterLanes(dst: usize, v: v128, r: i32): void {
  const p = dst + (<usize>r << 2);
  v128.store32_lane(p, v, 0);
  v128.store32_lane(p, v, 1, 16);
  v128.store32_lane(p, v, 2, 32);
  v128.store32_lane(p, v, 3, 48);
}

/**
 * The 4×4 transpose of (a, b, c, d), one vector per weight row, stored as 4 consecutive panel vectors
 * at dst: vector i = [a_i, b_i, c_i, d_i] (i32 lanes). Converting 4 rows together this way costs 8
 * shuffles and 4 stores where scatterLanes costs 16 single-lane stores.
 */
// @ts-ignore: decorator
@inline export function storeTransposed(dst: usize, a: v128, b: v128, c: v128, d: v128): void {
  const ab0 = v128.shuffle<i32>(a, b, 0, 4, 1, 5), ab1 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd0 = v128.shuffle<i32>(c, d, 0, 4, 1, 5), cd1 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<i32>(ab0, cd0, 0, 1, 4, 5));
  v128.store(dst, v128.shuffle<i32>(ab0, cd0, 2, 3, 6, 7), 16);
  v128.store(dst, v128.shuffle<i32>(ab1, cd1, 0, 1, 4, 5), 32);
  v128.store(dst, v128.shuffle<i32>(ab1, cd1, 2, 3, 6, 7), 48);
}

/** i32 lane j of v in all 4 lanes (j a constant once inlined). */
// @ts-ignore: decorator
@inline export function broadcast(v: v128, j: i32): v128 {
  if (j == 0) return v128.shuffle<i32>(v, v, 0, 0, 0, 0);
  if (j == 1) return v128.shuffle<i32>(v, v, 1, 1, 1, 1);
  if (j == 2) return v128.shuffle<i32>(v, v, 2, 2, 2, 2);
  return v128.shuffle<i32>(v, v, 3, 3, 3, 3);
}

/**
 * Partial sum j of a block for the 4 rows of the 8-bit panel, as i16 pairs per row (lanes 2r, 2r+1):
 * vectors j and j + 4 (x8 positions 4j..4j+3 and 16+4j..16+4j+3, broadcast from xa / xb). Each i16
 * lane stays within 2·2·127·15, so the 4 partials of a block add up in i16.
 */
// @ts-ignore: decorator
@inline function lane8(wp: usize, xa: v128, xb: v128, j: i32): v128 {
  return i16x8.add(
    i16x8.relaxed_dot_i8x16_i7x16_s(broadcast(xa, j), v128.load(wp + (<usize>j << 4))),
    i16x8.relaxed_dot_i8x16_i7x16_s(broadcast(xb, j), v128.load(wp + (<usize>j << 4), 64)));
}

/** Partial sum j of a block for the 4 rows of the int16 panel: xq pairs j, j + 4, j + 8, j + 12. */
// @ts-ignore: decorator
@inline function lane16(wp: usize, x0: v128, x1: v128, x2: v128, x3: v128, j: i32): v128 {
  const w = wp + (<usize>j << 4);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w), broadcast(x0, j)), i32x4.dot_i16x8_s(v128.load(w, 64), broadcast(x1, j))),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w, 128), broadcast(x2, j)), i32x4.dot_i16x8_s(v128.load(w, 192), broadcast(x3, j))));
}

/** The integer totals t_b of panel block b for the 4 rows (lanes), one token. */
// @ts-ignore: decorator
@inline function panelTotals(b: i32, eightBit: bool, xq: usize, x8: usize): v128 {
  // x is loaded as whole vectors and broadcast by lane shuffles (pure ops, which V8 places next to
  // their use) rather than by broadcast loads, which it hoists with the weight loads and then spills.
  if (ASC_FEATURE_RELAXED_SIMD && eightBit) {
    const wp = IPANEL8 + (<usize>b << 7);
    const xa = v128.load(x8 + (<usize>b << 5)), xb = v128.load(x8 + (<usize>b << 5), 16);
    // a running i16 sum (any 4 partials of a block fit), fenced so that each part's loads wait for it
    let s = fence(lane8(wp, xa, xb, 0));
    s = fence(i16x8.add(s, lane8(wp, xa, xb, 1)));
    s = fence(i16x8.add(s, lane8(wp, xa, xb, 2)));
    s = i16x8.add(s, lane8(wp, xa, xb, 3));
    return i32x4.extadd_pairwise_i16x8_s(s);
  }
  const wp = IPANEL + (<usize>b << 8);
  const xp = xq + (<usize>b << 6);
  const x0 = v128.load(xp), x1 = v128.load(xp, 16), x2 = v128.load(xp, 32), x3 = v128.load(xp, 48);
  let s = fence(lane16(wp, x0, x1, x2, x3, 0));
  s = fence(i32x4.add(s, lane16(wp, x0, x1, x2, x3, 1)));
  s = fence(i32x4.add(s, lane16(wp, x0, x1, x2, x3, 2)));
  return i32x4.add(s, lane16(wp, x0, x1, x2, x3, 3));
}

/** One block of panelChunk: acc + f32(t_b) · (PSCALE_b · d_b). */
// @ts-ignore: decorator
@inline function panelStep(acc: v128, b: i32, eightBit: bool, xq: usize, x8: usize, xd: usize): v128 {
  const scale = f32x4.mul(v128.load(PSCALE + (<usize>b << 4)), f32x4.splat(load<f32>(xd + (<usize>b << 2))));
  return accumulateBlock(acc, panelTotals(b, eightBit, xq, x8), scale);
}

/**
 * One token against the panel's nbc blocks: the chunk's s for the 4 rows (lanes). xq/x8/xd/xs point
 * at the chunk's first column / block of the token. Unrolled by 4 blocks so that each A_j stays in
 * its register (a rotating loop made V8 keep them on the stack).
 */
// @ts-ignore: decorator
@inline function panelChunk(nbc: i32, hasMin: bool, eightBit: bool, xq: usize, x8: usize, xd: usize, xs: usize): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nbc; b += 4) {
    a0 = panelStep(a0, b, eightBit, xq, x8, xd);
    a1 = panelStep(a1, b + 1, eightBit, xq, x8, xd);
    a2 = panelStep(a2, b + 2, eightBit, xq, x8, xd);
    a3 = panelStep(a3, b + 3, eightBit, xq, x8, xd);
  }
  if (b < nbc) a0 = panelStep(a0, b, eightBit, xq, x8, xd);
  if (b + 1 < nbc) a1 = panelStep(a1, b + 1, eightBit, xq, x8, xd);
  if (b + 2 < nbc) a2 = panelStep(a2, b + 2, eightBit, xq, x8, xd);
  // the minimums in their own pass (same order): fewer live values in the dot loop above
  return chunkSum(a0, a1, a2, a3, hasMin ? panelMins(PMIN, nbc, xs) : f32x4.splat(0));
}

// ---- 8 rows per pass: each activation broadcast serves two 4-row panels ----

/** The first 4 rows' panel while the converter fills IPANEL / PSCALE / PMIN with the next 4. */
const IPANEL_A: usize = memory.data(QPANEL_BLOCKS * 256, 64);
const IPANEL8_A: usize = memory.data(QPANEL_BLOCKS * 128, 64);
const PSCALE_A: usize = memory.data(QPANEL_BLOCKS * 16, 16);
const PMIN_A: usize = memory.data(QPANEL_BLOCKS * 16, 16);
/** A_0..A_3 of rows 0-3 (first 64 bytes) and of rows 4-7 (next 64). */
const ACC8: usize = memory.data(128, 16);
/** Rows 4-7's block totals, handed from totals8 to step8. */
const SB8: usize = memory.data(16, 16);
/** Rows 4-7's chunk result, handed from panelChunk8 to the driver. */
const CHUNK_B: usize = memory.data(16, 16);

/** xq pairs 4i .. 4i + 3 (the vector x) against both panels' vectors 4i .. 4i + 3 of block wp (offset). */
// @ts-ignore: decorator
@inline function quad8(wa: usize, wb: usize, x: v128, i: usize, s: v128, lo: bool): v128 {
  const o = i << 6;
  const w = lo ? wa + o : wb + o;
  return i32x4.add(s, i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w), broadcast(x, 0)), i32x4.dot_i16x8_s(v128.load(w, 16), broadcast(x, 1))),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w, 32), broadcast(x, 2)), i32x4.dot_i16x8_s(v128.load(w, 48), broadcast(x, 3)))));
}

/** The integer totals of block b of both panels (rows 0-3 returned, rows 4-7 in SB8), one token. */
// @ts-ignore: decorator
@inline function totals8(b: i32, eightBit: bool, xq: usize, x8: usize): v128 {
  // each part fenced on both sides, so that V8 keeps every part's loads next to their use
  if (ASC_FEATURE_RELAXED_SIMD && eightBit) {
    const wa = IPANEL8_A + (<usize>b << 7), wb = IPANEL8 + (<usize>b << 7);
    const xa = v128.load(x8 + (<usize>b << 5)), xb = v128.load(x8 + (<usize>b << 5), 16);
    let sa = fence(lane8(wa, xa, xb, 0)), sb = fence(lane8(wb, xa, xb, 0));
    sa = fence(i16x8.add(sa, lane8(wa, xa, xb, 1))); sb = fence(i16x8.add(sb, lane8(wb, xa, xb, 1)));
    sa = fence(i16x8.add(sa, lane8(wa, xa, xb, 2))); sb = fence(i16x8.add(sb, lane8(wb, xa, xb, 2)));
    sa = fence(i16x8.add(sa, lane8(wa, xa, xb, 3))); sb = i16x8.add(sb, lane8(wb, xa, xb, 3));
    v128.store(SB8, i32x4.extadd_pairwise_i16x8_s(sb));
    return i32x4.extadd_pairwise_i16x8_s(sa);
  }
  const wa = IPANEL_A + (<usize>b << 8), wb = IPANEL + (<usize>b << 8);
  const xp = xq + (<usize>b << 6);
  let sa = i32x4.splat(0), sb = i32x4.splat(0);
  let x = v128.load(xp);
  sa = fence(quad8(wa, wb, x, 0, sa, true)); sb = fence(quad8(wa, wb, x, 0, sb, false));
  x = v128.load(xp, 16);
  sa = fence(quad8(wa, wb, x, 1, sa, true)); sb = fence(quad8(wa, wb, x, 1, sb, false));
  x = v128.load(xp, 32);
  sa = fence(quad8(wa, wb, x, 2, sa, true)); sb = fence(quad8(wa, wb, x, 2, sb, false));
  x = v128.load(xp, 48);
  sa = fence(quad8(wa, wb, x, 3, sa, true)); sb = quad8(wa, wb, x, 3, sb, false);
  v128.store(SB8, sb);
  return sa;
}

/** One block of the 8-row pass: each panel's A_(b mod 4) in ACC8 gets its madd. */
// @ts-ignore: decorator
@inline function step8(b: i32, eightBit: bool, xq: usize, x8: usize, xd: usize): void {
  const sa = totals8(b, eightBit, xq, x8);
  const xdv = f32x4.splat(load<f32>(xd + (<usize>b << 2)));
  const j = <usize>(b & 3) << 4;
  v128.store(ACC8 + j, accumulateBlock(v128.load(ACC8 + j), sa, f32x4.mul(v128.load(PSCALE_A + (<usize>b << 4)), xdv)));
  v128.store(ACC8 + 64 + j, accumulateBlock(v128.load(ACC8 + 64 + j), v128.load(SB8), f32x4.mul(v128.load(PSCALE + (<usize>b << 4)), xdv)));
}

/** The minimums term of one panel (pmin: PMIN_A or PMIN), in order. */
// @ts-ignore: decorator
@inline function panelMins(pmin: usize, nbc: i32, xs: usize): v128 {
  let mins = f32x4.splat(0);
  for (let i = 0; i < nbc; i++) mins = f32x4.add(mins, f32x4.mul(v128.load(pmin + (<usize>i << 4)), f32x4.splat(load<f32>(xs + (<usize>i << 2)))));
  return mins;
}

/**
 * One token against both panels' nbc blocks: the chunk's s of rows 0-3 (returned) and of rows 4-7
 * (stored at sB). The same summation order as panelChunk, with A_j kept in ACC8.
 */
// @ts-ignore: decorator
@inline function panelChunk8(nbc: i32, hasMin: bool, eightBit: bool, xq: usize, x8: usize, xd: usize, xs: usize, sB: usize): v128 {
  const zero = f32x4.splat(0);
  for (let i: usize = 0; i < 128; i += 16) v128.store(ACC8 + i, zero);
  for (let b = 0; b < nbc; b++) step8(b, eightBit, xq, x8, xd);
  const minsA = hasMin ? panelMins(PMIN_A, nbc, xs) : zero;
  const minsB = hasMin ? panelMins(PMIN, nbc, xs) : zero;
  v128.store(sB, chunkSum(v128.load(ACC8, 64), v128.load(ACC8, 80), v128.load(ACC8, 96), v128.load(ACC8, 112), minsB));
  return chunkSum(v128.load(ACC8), v128.load(ACC8, 16), v128.load(ACC8, 32), v128.load(ACC8, 48), minsA);
}

/** Write-only slot for `touchNext`'s loads. */
const SINK: usize = memory.data(16, 16);

/**
 * Loads one byte of each 64-byte line of [p, p + bytes), the part `part` of `parts` of it. A poor
 * man's prefetch (wasm has none): issued among the token loop's dot products, these misses overlap
 * with the work, where the next panel's repacking would otherwise wait for them one by one (measured
 * on fc1 at T = 8: the weights' first read from DRAM was ~15 % of the call).
 */
// @ts-ignore: decorator
@inline function touchNext(p: usize, bytes: usize, part: i32, parts: i32): void {
  const lines = (bytes + 63) >> 6;
  const per = (lines + <usize>parts - 1) / <usize>parts;
  const l0 = <usize>part * per;
  const l1 = min(lines, l0 + per);
  let sink: u32 = 0;
  for (let l = l0; l < l1; l++) sink |= <u32>load<u8>(p + (l << 6));
  store<u32>(SINK, sink);
}

/**
 * The T > 1 driver: activations already quantized in scratch. Loops: blocks of TOKEN_BLOCK tokens ▸
 * groups of 8 rows (two 4-row panels; the last 4..7 rows: 4 at a time) ▸ chunks of QPANEL_K columns
 * (repacked once) ▸ tokens; each token's running results for the rows wait in PACC between chunks.
 * Two panels per pass share each activation broadcast between 8 rows: fc1 prefill, one thread, Q8_0
 * 1.10 → 0.91 ms per token, Q4_0 0.75 → 0.66, Q4_K 0.75 → 0.66. `eightBit`: the converter fills
 * IPANEL8 (4-bit formats, relaxed build), else IPANEL. rowBytes: bytes per weight row; a group's rows
 * are the rows·rowBytes bytes at w + n0·rowBytes in every layout, and the next group's are touched
 * while this one computes.
 */
// @ts-ignore: decorator
@inline export function linearQuantPanels(
  out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: bool, scratch: usize,
  convert: QuantPanelConverter, hasMin: bool, eightBit: bool, rowBytes: usize,
): void {
  const nb = K >> 5;
  const xd0 = xdBase(scratch, T, K);
  const xs0 = xsBase(scratch, T, K);
  const x80 = x8Base(scratch, T, K);
  const chunks = (K + QPANEL_K - 1) / QPANEL_K;
  for (let t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
    const tn = min(TOKEN_BLOCK, T - t0);
    let n0 = 0;
    for (; n0 + 8 <= N; n0 += 8) {
      const next = w + <usize>(n0 + 8) * rowBytes;
      const nextBytes = <usize>max(0, min(8, N - n0 - 8)) * rowBytes;
      for (let k0 = 0; k0 < K; k0 += QPANEL_K) {
        const kc = min(QPANEL_K, K - k0);
        const b0 = k0 >> 5;
        const nbc = kc >> 5;
        convert(w, K, n0, 4, k0, kc);
        if (ASC_FEATURE_RELAXED_SIMD && eightBit) memory.copy(IPANEL8_A, IPANEL8, <usize>nbc << 7);
        else memory.copy(IPANEL_A, IPANEL, <usize>nbc << 8);
        memory.copy(PSCALE_A, PSCALE, <usize>nbc << 4);
        if (hasMin) memory.copy(PMIN_A, PMIN, <usize>nbc << 4);
        convert(w, K, n0 + 4, 4, k0, kc);
        for (let i = 0; i < tn; i++) {
          const t = t0 + i;
          const slot = PACC + (<usize>i << 5);
          const sB = CHUNK_B;
          const sA = panelChunk8(
            nbc, hasMin, eightBit, scratch + ((<usize>t * <usize>K + <usize>k0) << 1), x80 + <usize>t * <usize>K + <usize>k0,
            xd0 + ((<usize>t * <usize>nb + <usize>b0) << 2), xs0 + ((<usize>t * <usize>nb + <usize>b0) << 2), sB,
          );
          const o = out + ((<usize>t * <usize>N + <usize>n0) << 2);
          v128.store(slot, chunkRunning4(sA, v128.load(slot), k0 == 0, o, 4, accumulate));
          v128.store(slot + 16, chunkRunning4(v128.load(sB), v128.load(slot, 16), k0 == 0, o + 16, 4, accumulate));
          if (nextBytes != 0) touchNext(next, nextBytes, (k0 / QPANEL_K) * tn + i, chunks * tn);
        }
      }
      for (let i = 0; i < tn; i++) {
        const o = out + ((<usize>(t0 + i) * <usize>N + <usize>n0) << 2);
        let ra = v128.load(PACC + (<usize>i << 5)), rb = v128.load(PACC + (<usize>i << 5), 16);
        if (bias != 0) {
          ra = f32x4.add(ra, v128.load(bias + (<usize>n0 << 2)));
          rb = f32x4.add(rb, v128.load(bias + (<usize>n0 << 2), 16));
        }
        v128.store(o, ra);
        v128.store(o, rb, 16);
      }
    }
    for (; n0 < N; n0 += 4) {
      const rows = min(4, N - n0);
      const next = w + <usize>(n0 + 4) * rowBytes;
      const nextBytes = <usize>max(0, min(4, N - n0 - 4)) * rowBytes;
      for (let k0 = 0; k0 < K; k0 += QPANEL_K) {
        const kc = min(QPANEL_K, K - k0);
        const b0 = k0 >> 5;
        convert(w, K, n0, rows, k0, kc);
        for (let i = 0; i < tn; i++) {
          const t = t0 + i;
          const s = panelChunk(
            kc >> 5, hasMin, eightBit,
            scratch + ((<usize>t * <usize>K + <usize>k0) << 1), x80 + <usize>t * <usize>K + <usize>k0,
            xd0 + ((<usize>t * <usize>nb + <usize>b0) << 2), xs0 + ((<usize>t * <usize>nb + <usize>b0) << 2),
          );
          const slot = PACC + (<usize>i << 4);
          const o = out + ((<usize>t * <usize>N + <usize>n0) << 2);
          v128.store(slot, chunkRunning4(s, v128.load(slot), k0 == 0, o, rows, accumulate));
          if (nextBytes != 0) touchNext(next, nextBytes, (k0 / QPANEL_K) * tn + i, chunks * tn);
        }
      }
      for (let i = 0; i < tn; i++) {
        const o = out + ((<usize>(t0 + i) * <usize>N + <usize>n0) << 2);
        let r = v128.load(PACC + (<usize>i << 4));
        if (bias != 0) r = f32x4.add(r, loadRows(bias + (<usize>n0 << 2), rows));
        storeRows(o, r, rows);
      }
    }
  }
}
