// Shared machinery of the linear (matmul) kernels: out (T, N) = x (T, K) · w (N, K)ᵀ [+ bias] [+ out].
//
// Two drivers, chosen by each linear-*.ts on T:
// - T < SMALL_BATCH (decode, small batches) is memory bound: `linearSmallBatch` streams the weights
//   once, 4 rows at a time, converted in registers by the generic row loops at the end of this file
//   (rows4 / rows4x2 / rows1, one instance per weight type), one converted vector serving two tokens.
//   16-bit weights are held grouped by 4 rows (below), so those 4 rows are one stream.
// - T >= SMALL_BATCH (prefill) is compute bound: `linearPanels` converts 4 weight rows × PANEL_K
//   columns into an f32 panel in static memory (L1-resident), then runs every token of the current
//   token block against it, so the conversion is paid once per TOKEN_BLOCK tokens and the inner
//   loop (4 rows × 2 tokens, 8 accumulators: as many as 16 xmm registers allow) is pure f32 SIMD.
//
// Batch invariance: every path computes each output with the same operations in the same order,
// so a token's result does not depend on T, on its place in the batch or on the path taken (a
// sequence decoded alone or batched with others gives bit-identical logits). The canonical order,
// per output (t, n):
//   v = undefined
//   for each chunk of PANEL_K columns [k0, k0 + kc):
//     acc (4 lanes) = 0; for k = k0, k0+4, ... while a whole vector fits: acc = madd(w[k..k+4], x[k..k+4], acc)
//     s = (acc0 + acc2) + (acc1 + acc3)                                 (hsum / hsum4)
//     if kc % 4: tail = 0; for each leftover k: tail += w[k]·x[k]; s = s + tail
//     s = s · scale                                                     (1, or 2^56 for f16: see linear-f16.ts)
//     v = first chunk ? (s [+ out] [+ bias]) : s + v
//   out = v
// where madd is the build's multiply-add (fused in the relaxed build, mul then add otherwise).
// A new float-like weight type needs a PanelConverter and a case in the weight accessors below
// (weights4, weight1, weightsLow/High, and x4 / sums4 if it is held scaled).

import { HALF_RESCALE, bf16Scalar, bf16x4At, hsum, hsum4, madd, scaledF16At, scaledF16x4, scaledF16x4At } from "./_simd";

/**
 * Below this many tokens the weights are converted in registers and shared by the tokens of the
 * batch (decode, small batches: the server's batched decode of up to 16 sequences); from it on they
 * go through the f32 panels. Measured with bf16 on fc1 (K 2560, N 10240), ms per token: small batch
 * 1.49 at T = 8, 1.32 at 16; panels 2.43 at 8, 1.84 at 16, 1.30 at 64.
 */
export const SMALL_BATCH: i32 = 17;
/** Weight rows converted together (the micro-kernel computes 4 outputs per token). */
export const PANEL_ROWS: i32 = 4;
/** Columns (k) per chunk, for both paths (canonical order); a panel is 4 × 2048 f32 = 32 KiB, fits L1. */
export const PANEL_K: i32 = 2048;
/** Tokens run against one panel: x block (TOKEN_BLOCK, PANEL_K) f32 = 512 KiB stays in L2. */
export const TOKEN_BLOCK: i32 = 64;
/** Panel row stride in bytes. */
export const PANEL_STRIDE: usize = <usize>PANEL_K << 2;
/** The panel (PANEL_ROWS, PANEL_K) f32, static: linear kernels are not reentrant (wasm is single threaded). */
export const PANEL: usize = memory.data(PANEL_ROWS * PANEL_K * 4, 64);

/**
 * Converts weight rows [n0, n0 + rows) × columns [k0, k0 + kc) of w (N, K) into PANEL as f32
 * (row r at PANEL + r * PANEL_STRIDE). rows ≤ PANEL_ROWS, kc ≤ PANEL_K, k0 a multiple of PANEL_K.
 */
export type PanelConverter = (w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32) => void;

// ---- The grouped layout of 16-bit weights (bf16, f16) ----
// With K % 8 == 0, every full group of 4 rows (rows n0 .. n0 + 3, n0 % 4 == 0) is held as, per 8
// columns, the 4 rows' 16 bytes one after the other: column byte offset k of row r (k as in a row of
// K values, k % 16 == 0) is at group + 4·k + 16·r. The group keeps its bytes (4 rows × 2K); rows past
// the last full group, and weights with K % 8 != 0, stay row-major. Decode then reads the weights as
// one stream: on this VM one stream runs at ~21 GB/s per thread where 4 row streams (rowBytes apart)
// ran at ~13, and two threads at ~43 GB/s against ~25 (a /tmp probe, 2026-11-28; BENCHMARKS.md).

/** Do 16-bit weights of K columns use the grouped layout? */
// @ts-ignore: decorator
@inline export function grouped16(K: i32): bool {
  return (K & 7) == 0;
}

/**
 * Rewrites N rows of K 16-bit weights at w from row-major into the grouped layout, in place;
 * tmp: 8·K bytes of scratch. Does nothing when K % 8 != 0.
 */
export function groupRows16(w: usize, N: i32, K: i32, tmp: usize): void {
  if (!grouped16(K)) return;
  const rowBytes = <usize>K << 1;
  for (let n0 = 0; n0 + 4 <= N; n0 += 4) {
    const group = w + <usize>n0 * rowBytes;
    memory.copy(tmp, group, rowBytes << 2);
    for (let k: usize = 0; k < rowBytes; k += 16) {
      const dst = group + (k << 2);
      v128.store(dst, v128.load(tmp + k));
      v128.store(dst, v128.load(tmp + rowBytes + k), 16);
      v128.store(dst, v128.load(tmp + 2 * rowBytes + k), 32);
      v128.store(dst, v128.load(tmp + 3 * rowBytes + k), 48);
    }
  }
}

/**
 * Where row r (< rows) of a panel's rows n0 .. n0 + rows, from column k0 on, starts (its 16-byte
 * vectors lie vectorStep16 bytes apart): the grouped layout for a full group of 16-bit weights, else
 * row-major.
 */
// @ts-ignore: decorator
@inline export function rowVectors16(w: usize, K: i32, n0: i32, rows: i32, r: i32, k0: i32): usize {
  if (rows == 4 && grouped16(K)) return w + ((<usize>n0 * <usize>K + (<usize>k0 << 2)) << 1) + (<usize>r << 4);
  return w + ((<usize>(n0 + r) * <usize>K + <usize>k0) << 1);
}

/** The byte step between a panel row's 16-byte vectors from rowVectors16: 64 in a group, else 16. */
// @ts-ignore: decorator
@inline export function vectorStep16(K: i32, rows: i32): usize {
  return rows == 4 && grouped16(K) ? 64 : 16;
}

/**
 * Running value of 4 outputs after one chunk (see the canonical order): the first chunk adds the
 * previous out (accumulate) and the bias, later chunks add the running value.
 */
// @ts-ignore: decorator
@inline export function combine4(s: v128, running: v128, first: bool, out: usize, bias: usize, addOut: bool): v128 {
  if (!first) return f32x4.add(s, running);
  if (addOut) s = f32x4.add(s, v128.load(out));
  if (bias != 0) s = f32x4.add(s, v128.load(bias));
  return s;
}

/** combine4 for one output. */
// @ts-ignore: decorator
@inline export function combine1(s: f32, running: f32, first: bool, out: usize, bias: usize, addOut: bool): f32 {
  if (!first) return s + running;
  if (addOut) s += load<f32>(out);
  if (bias != 0) s += load<f32>(bias);
  return s;
}

/** Canonical chunk sum of one f32 row against x over kc columns (a and b point at the chunk start). */
export function chunkDotF32(a: usize, b: usize, kc: i32): f32 {
  let acc = f32x4.splat(0);
  const vecBytes = <usize>(kc & ~3) << 2;
  for (let k: usize = 0; k < vecBytes; k += 16) acc = madd(v128.load(a + k), v128.load(b + k), acc);
  let s = hsum(acc);
  if (kc & 3) {
    let tail: f32 = 0;
    for (let k = vecBytes; k < (<usize>kc << 2); k += 4) tail += load<f32>(a + k) * load<f32>(b + k);
    s += tail;
  }
  return s;
}

/**
 * 4 panel rows × tokens [0, T) of x (row stride xs bytes, pointing at column k0): out rows are
 * strided by os bytes and point at column n0. bias points at bias[n0] (0 = none). Sums are
 * multiplied by `scale` before being combined (canonical order).
 */
function panelRows4(out: usize, os: usize, x: usize, xs: usize, T: i32, kc: i32, bias: usize, addOut: bool, first: bool, scale: f32): void {
  const vecBytes = <usize>(kc & ~3) << 2;
  const sv = f32x4.splat(scale);
  let t = 0;
  // two tokens at a time: 8 accumulators, each panel vector feeds two tokens; the panel sits at a
  // static address, so its loads use constant offsets from k
  for (; t + 2 <= T; t += 2) {
    const xa = x + <usize>t * xs;
    const xb = xa + xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const va = v128.load(xa + k);
      const vb = v128.load(xb + k);
      const w0 = v128.load(k, PANEL);
      a0 = madd(w0, va, a0);
      b0 = madd(w0, vb, b0);
      const w1 = v128.load(k, PANEL + PANEL_STRIDE);
      a1 = madd(w1, va, a1);
      b1 = madd(w1, vb, b1);
      const w2 = v128.load(k, PANEL + 2 * PANEL_STRIDE);
      a2 = madd(w2, va, a2);
      b2 = madd(w2, vb, b2);
      const w3 = v128.load(k, PANEL + 3 * PANEL_STRIDE);
      a3 = madd(w3, va, a3);
      b3 = madd(w3, vb, b3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    let sb = hsum4(b0, b1, b2, b3);
    if (kc & 3) {
      sa = f32x4.add(sa, rowsTail4<f32>(xa, PANEL, PANEL_STRIDE, kc));
      sb = f32x4.add(sb, rowsTail4<f32>(xb, PANEL, PANEL_STRIDE, kc));
    }
    const oa = out + <usize>t * os;
    const ob = oa + os;
    v128.store(oa, combine4(f32x4.mul(sa, sv), v128.load(oa), first, oa, bias, addOut));
    v128.store(ob, combine4(f32x4.mul(sb, sv), v128.load(ob), first, ob, bias, addOut));
  }
  for (; t < T; t++) {
    const xa = x + <usize>t * xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const va = v128.load(xa + k);
      a0 = madd(v128.load(k, PANEL), va, a0);
      a1 = madd(v128.load(k, PANEL + PANEL_STRIDE), va, a1);
      a2 = madd(v128.load(k, PANEL + 2 * PANEL_STRIDE), va, a2);
      a3 = madd(v128.load(k, PANEL + 3 * PANEL_STRIDE), va, a3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    if (kc & 3) sa = f32x4.add(sa, rowsTail4<f32>(xa, PANEL, PANEL_STRIDE, kc));
    const oa = out + <usize>t * os;
    v128.store(oa, combine4(f32x4.mul(sa, sv), v128.load(oa), first, oa, bias, addOut));
  }
}

/**
 * The prefill driver: out (T, N) [+]= x (T, K) · w (N, K)ᵀ + bias, weights converted by `convert`
 * (panel values are the weights times 1 / scale; sums are multiplied by scale).
 * Loops: token blocks ▸ k chunks ▸ 4-row panels ▸ tokens.
 */
export function linearPanels(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: bool, convert: PanelConverter, scale: f32,
): void {
  const xs = <usize>K << 2;
  const os = <usize>N << 2;
  for (let t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
    const tb = min(TOKEN_BLOCK, T - t0);
    for (let k0 = 0; k0 < K; k0 += PANEL_K) {
      const kc = min(PANEL_K, K - k0);
      const first = k0 == 0;
      const xBlock = x + <usize>t0 * xs + (<usize>k0 << 2);
      const outBlock = out + <usize>t0 * os;
      for (let n0 = 0; n0 < N; n0 += PANEL_ROWS) {
        const rows = min(PANEL_ROWS, N - n0);
        convert(w, K, n0, rows, k0, kc);
        const rowBias = bias != 0 ? bias + (<usize>n0 << 2) : 0;
        if (rows == PANEL_ROWS) {
          panelRows4(outBlock + (<usize>n0 << 2), os, xBlock, xs, tb, kc, rowBias, accumulate, first, scale);
        } else {
          for (let r = 0; r < rows; r++) {
            const panelRow = PANEL + <usize>r * PANEL_STRIDE;
            const o = outBlock + (<usize>(n0 + r) << 2);
            const b = rowBias != 0 ? rowBias + (<usize>r << 2) : 0;
            for (let t = 0; t < tb; t++) {
              const ot = o + <usize>t * os;
              const s = chunkDotF32(panelRow, xBlock + <usize>t * xs, kc) * scale;
              store<f32>(ot, combine1(s, load<f32>(ot), first, ot, b, accumulate));
            }
          }
        }
      }
    }
  }
}

/** out[0..4] (one token) = rows r0, r0 + rowBytes, ... (4 weight rows) · x (K), canonical order. */
export type Rows4Token1 = (out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool) => void;
/** Same for two tokens: x rows xs bytes apart, outputs os bytes apart. */
export type Rows4Tokens2 = (
  out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool,
) => void;
/** One weight row · one token (the N % 4 leftover rows), canonical order. */
export type Row1Token1 = (out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool) => void;

/**
 * The decode / small-batch driver (T < SMALL_BATCH): weights stream from memory once, 4 rows at a
 * time; the 4 rows (a few KiB) stay in L1/L2 while the tokens run against them two by two, each
 * weight type converting in registers (rows4Tokens2 shares every converted vector by two tokens).
 */
export function linearSmallBatch(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, weightBytes: i32,
  one: Rows4Token1, two: Rows4Tokens2, single: Row1Token1,
): void {
  const rowBytes = <usize>K * <usize>weightBytes;
  const xs = <usize>K << 2;
  const os = <usize>N << 2;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const rows = w + <usize>n * rowBytes;
    const b = bias != 0 ? bias + (<usize>n << 2) : 0;
    const o = out + (<usize>n << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) two(o + <usize>t * os, os, x + <usize>t * xs, xs, rows, rowBytes, K, b, addOut);
    if (t < T) one(o + <usize>t * os, x + <usize>t * xs, rows, rowBytes, K, b, addOut);
  }
  for (; n < N; n++) {
    const b = bias != 0 ? bias + (<usize>n << 2) : 0;
    for (let t = 0; t < T; t++) single(out + <usize>t * os + (<usize>n << 2), x + <usize>t * xs, w + <usize>n * rowBytes, K, b, addOut);
  }
}

// ---- The float weight types, as AssemblyScript types for the generic row loops below: W = f32,
// u16 (bf16) or i16 (IEEE half, held as w·2^-112 with x scaled by 2^56 and the sums by 2^56: see
// linear-f16.ts). Every branch on W is decided at compile time, so each instance is the loop written
// out for its type. rows4 / rows4x2 / rows1 are inlined into one named function per type (linear-*.ts), which
// linearSmallBatch takes (a generic instance cannot be passed as a value).

/** 4 weights at p as f32. */
// @ts-ignore: decorator
@inline function weights4<W>(p: usize): v128 {
  if (isFloat<W>()) return v128.load(p);
  if (isSigned<W>()) return scaledF16x4At(p);
  return bf16x4At(p);
}

/** 1 weight at p as f32. */
// @ts-ignore: decorator
@inline function weight1<W>(p: usize): f32 {
  if (isFloat<W>()) return load<f32>(p);
  if (isSigned<W>()) return scaledF16At(p);
  return bf16Scalar(load<u16>(p));
}

/** 4 activations at p, as the weights of W meet them. */
// @ts-ignore: decorator
@inline function x4<W>(p: usize): v128 {
  const v = v128.load(p);
  return isSigned<W>() ? f32x4.mul(v, f32x4.splat(HALF_RESCALE)) : v;
}

// @ts-ignore: decorator
@inline function x1<W>(p: usize): f32 {
  return isSigned<W>() ? load<f32>(p) * HALF_RESCALE : load<f32>(p);
}

/** A chunk's sums back to the true scale. */
// @ts-ignore: decorator
@inline function sums4<W>(s: v128): v128 {
  return isSigned<W>() ? f32x4.mul(s, f32x4.splat(HALF_RESCALE)) : s;
}

// @ts-ignore: decorator
@inline function sums1<W>(s: f32): f32 {
  return isSigned<W>() ? s * HALF_RESCALE : s;
}

/** Scalar sums of the last kc % 4 columns of 4 rows (w0.., rowBytes apart) against x, as a vector. */
export function rowsTail4<W>(x: usize, w0: usize, rowBytes: usize, kc: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = kc & ~3; k < kc; k++) {
    const xv = x1<W>(x + (<usize>k << 2));
    const off = w0 + <usize>k * sizeof<W>();
    s0 += weight1<W>(off) * xv;
    s1 += weight1<W>(off + rowBytes) * xv;
    s2 += weight1<W>(off + 2 * rowBytes) * xv;
    s3 += weight1<W>(off + 3 * rowBytes) * xv;
  }
  return f32x4(s0, s1, s2, s3);
}

/** The low / high 4 of 8 16-bit weights (a 16-byte load) as f32 (W = u16 or i16). */
// @ts-ignore: decorator
@inline function weightsLow<W>(v: v128): v128 {
  return isSigned<W>() ? scaledF16x4(i32x4.extend_low_i16x8_s(v)) : i32x4.shl(i32x4.extend_low_i16x8_u(v), 16);
}
// @ts-ignore: decorator
@inline function weightsHigh<W>(v: v128): v128 {
  return isSigned<W>() ? scaledF16x4(i32x4.extend_high_i16x8_s(v)) : i32x4.shl(i32x4.extend_high_i16x8_u(v), 16);
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch), one token: out[0..4] from 4 rows
 * of W weights (rowBytes apart) against x, x loaded once for the 4 rows. 16-bit weights go 8 columns
 * per step with one 16-byte load per row (half the loads of 4-column steps; measured 2.58 → 3.79
 * tokens/s for bf16 decode); both halves go into the same accumulator in column order, so the sum is
 * the canonical one.
 */
// @ts-ignore: decorator
@inline export function rows4<W>(out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const xPerW = 4 / sizeof<W>();
  let v = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + <usize>k0 * sizeof<W>();
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) * sizeof<W>(); // weight bytes of whole 4-column vectors
    let k: usize = 0;
    if (sizeof<W>() == 2 && grouped16(K)) {
      // the grouped layout: the 4 rows' 8 columns are 64 consecutive bytes (kc % 8 == 0: no tails)
      const g = r0 + (<usize>k0 << 3);
      for (; k < vecBytes; k += 16) {
        const xa = x4<W>(xk + (k << 1));
        const xb = x4<W>(xk + (k << 1) + 16);
        const p = g + (k << 2);
        let v = v128.load(p);
        a0 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a0));
        v = v128.load(p, 16);
        a1 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a1));
        v = v128.load(p, 32);
        a2 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a2));
        v = v128.load(p, 48);
        a3 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a3));
      }
    } else if (sizeof<W>() == 2) {
      const pairBytes = <usize>(kc & ~7) << 1; // ... of whole 8-column steps
      for (; k < pairBytes; k += 16) {
        const xa = x4<W>(xk + (k << 1));
        const xb = x4<W>(xk + (k << 1) + 16);
        let v = v128.load(w0 + k);
        a0 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a0));
        v = v128.load(w1 + k);
        a1 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a1));
        v = v128.load(w2 + k);
        a2 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a2));
        v = v128.load(w3 + k);
        a3 = madd(weightsHigh<W>(v), xb, madd(weightsLow<W>(v), xa, a3));
      }
    }
    for (; k < vecBytes; k += 4 * sizeof<W>()) {
      const xv = x4<W>(xk + k * xPerW);
      a0 = madd(weights4<W>(w0 + k), xv, a0);
      a1 = madd(weights4<W>(w1 + k), xv, a1);
      a2 = madd(weights4<W>(w2 + k), xv, a2);
      a3 = madd(weights4<W>(w3 + k), xv, a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (kc & 3) s = f32x4.add(s, rowsTail4<W>(xk, w0, rowBytes, kc));
    v = combine4(sums4<W>(s), v, k0 == 0, out, bias, addOut);
  }
  v128.store(out, v);
}

/**
 * Decode and small batches (T < SMALL_BATCH, see linearSmallBatch), two tokens: out[0..4] and
 * out[os..os+4] (x rows xs bytes apart) from 4 rows of W weights; each converted vector serves both.
 */
// @ts-ignore: decorator
@inline export function rows4x2<W>(out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool): void {
  const xPerW = 4 / sizeof<W>(); // x bytes per weight byte
  let va = f32x4.splat(0), vb = f32x4.splat(0);
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const w0 = r0 + <usize>k0 * sizeof<W>();
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    const xk = x + (<usize>k0 << 2);
    const yk = xk + xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) * sizeof<W>();
    let k: usize = 0;
    if (sizeof<W>() == 2 && grouped16(K)) {
      // the grouped layout (kc % 8 == 0): the 4-column steps below, each row's 8 bytes read from its
      // place in the group's 64 bytes (one 16-byte load per row and 8 columns kept more values live
      // than the 16 registers hold: 2.34 against 1.45 ms per token at T = 8)
      const g = r0 + (<usize>k0 << 3);
      for (; k < vecBytes; k += 8) {
        const xv = x4<W>(xk + (k << 1));
        const yv = x4<W>(yk + (k << 1));
        const p = g + ((k & ~15) << 2) + (k & 15);
        let wv = weights4<W>(p);
        a0 = madd(wv, xv, a0);
        b0 = madd(wv, yv, b0);
        wv = weights4<W>(p + 16);
        a1 = madd(wv, xv, a1);
        b1 = madd(wv, yv, b1);
        wv = weights4<W>(p + 32);
        a2 = madd(wv, xv, a2);
        b2 = madd(wv, yv, b2);
        wv = weights4<W>(p + 48);
        a3 = madd(wv, xv, a3);
        b3 = madd(wv, yv, b3);
      }
    }
    for (; k < vecBytes; k += 4 * sizeof<W>()) {
      const xv = x4<W>(xk + k * xPerW);
      const yv = x4<W>(yk + k * xPerW);
      let wv = weights4<W>(w0 + k);
      a0 = madd(wv, xv, a0);
      b0 = madd(wv, yv, b0);
      wv = weights4<W>(w1 + k);
      a1 = madd(wv, xv, a1);
      b1 = madd(wv, yv, b1);
      wv = weights4<W>(w2 + k);
      a2 = madd(wv, xv, a2);
      b2 = madd(wv, yv, b2);
      wv = weights4<W>(w3 + k);
      a3 = madd(wv, xv, a3);
      b3 = madd(wv, yv, b3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    let sb = hsum4(b0, b1, b2, b3);
    if (kc & 3) {
      sa = f32x4.add(sa, rowsTail4<W>(xk, w0, rowBytes, kc));
      sb = f32x4.add(sb, rowsTail4<W>(yk, w0, rowBytes, kc));
    }
    va = combine4(sums4<W>(sa), va, k0 == 0, out, bias, addOut);
    vb = combine4(sums4<W>(sb), vb, k0 == 0, out + os, bias, addOut);
  }
  v128.store(out, va);
  v128.store(out + os, vb);
}

/** One leftover row of W weights against one token. */
// @ts-ignore: decorator
@inline export function rows1<W>(out: usize, x: usize, row: usize, K: i32, bias: usize, addOut: bool): void {
  const xPerW = 4 / sizeof<W>();
  let v: f32 = 0;
  for (let k0 = 0; k0 < K; k0 += PANEL_K) {
    const kc = min(PANEL_K, K - k0);
    const wk = row + <usize>k0 * sizeof<W>();
    const xk = x + (<usize>k0 << 2);
    let acc = f32x4.splat(0);
    const vecBytes = <usize>(kc & ~3) * sizeof<W>();
    for (let k: usize = 0; k < vecBytes; k += 4 * sizeof<W>()) acc = madd(weights4<W>(wk + k), x4<W>(xk + k * xPerW), acc);
    let s = hsum(acc);
    if (kc & 3) {
      let tail: f32 = 0;
      for (let k = kc & ~3; k < kc; k++) tail += weight1<W>(wk + <usize>k * sizeof<W>()) * x1<W>(xk + (<usize>k << 2));
      s += tail;
    }
    v = combine1(sums1<W>(s), v, k0 == 0, out, bias, addOut);
  }
  store<f32>(out, v);
}
