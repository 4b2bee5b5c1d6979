// Shared machinery of the linear (matmul) kernels: out (T, N) = x (T, K) · w (N, K)ᵀ [+ bias] [+ out].
//
// Two drivers, chosen by each linear-*.ts on T:
// - T < SMALL_BATCH (decode, small batches) is memory bound: `linearSmallBatch` streams the weights
//   once, 4 rows at a time, and each weight type converts them in registers (rows4*, linear-*.ts),
//   one converted vector serving two tokens.
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
// A new float-like weight type needs a PanelConverter and rows4 / rows4x2 / rows1 functions that
// follow this order.

import { hsum, hsum4, madd } from "./_simd";

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
      sa = f32x4.add(sa, tail4(xa, kc));
      sb = f32x4.add(sb, tail4(xb, kc));
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
    if (kc & 3) sa = f32x4.add(sa, tail4(xa, kc));
    const oa = out + <usize>t * os;
    v128.store(oa, combine4(f32x4.mul(sa, sv), v128.load(oa), first, oa, bias, addOut));
  }
}

/** Scalar sums of the last kc % 4 columns of the 4 panel rows against x, as a vector. */
function tail4(x: usize, kc: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let k = kc & ~3; k < kc; k++) {
    const off = <usize>k << 2;
    const xv = load<f32>(x + off);
    s0 += load<f32>(PANEL + off) * xv;
    s1 += load<f32>(PANEL + PANEL_STRIDE + off) * xv;
    s2 += load<f32>(PANEL + 2 * PANEL_STRIDE + off) * xv;
    s3 += load<f32>(PANEL + 3 * PANEL_STRIDE + off) * xv;
  }
  return f32x4(s0, s1, s2, s3);
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
