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
// A new float-like weight type only needs its PanelConverter and rows4* functions.

import { hsum4, madd } from "./_simd";

/**
 * Below this many tokens the weights are converted in registers and shared by the tokens of the
 * batch (decode, small batches); from it on they go through the f32 panels.
 */
export const SMALL_BATCH: i32 = 8;
/** Weight rows converted together (the micro-kernel computes 4 outputs per token). */
export const PANEL_ROWS: i32 = 4;
/** Columns (k) per panel chunk: 4 rows × 2048 f32 = 32 KiB, fits L1. */
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

/** Final store of 4 outputs of one token: out[0..4] = sums [+ out] [+ bias]. */
// @ts-ignore: decorator
@inline export function store4(out: usize, sums: v128, bias: usize, addOut: bool): void {
  if (addOut) sums = f32x4.add(sums, v128.load(out));
  if (bias != 0) sums = f32x4.add(sums, v128.load(bias));
  v128.store(out, sums);
}

/** Final store of one output. */
// @ts-ignore: decorator
@inline export function store1(out: usize, sum: f32, bias: usize, addOut: bool): void {
  if (addOut) sum += load<f32>(out);
  if (bias != 0) sum += load<f32>(bias);
  store<f32>(out, sum);
}

/** Dot product of two f32 vectors of length n (f32 SIMD, 2 accumulators). */
export function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  const end8 = a + (<usize>(n & ~7) << 2);
  while (a < end8) {
    acc0 = madd(v128.load(a), v128.load(b), acc0);
    acc1 = madd(v128.load(a, 16), v128.load(b, 16), acc1);
    a += 32;
    b += 32;
  }
  let sum = f32x4.add(acc0, acc1);
  let s = f32x4.extract_lane(sum, 0) + f32x4.extract_lane(sum, 1) + f32x4.extract_lane(sum, 2) + f32x4.extract_lane(sum, 3);
  const end = end8 + (<usize>(n & 7) << 2);
  while (a < end) {
    s += load<f32>(a) * load<f32>(b);
    a += 4;
    b += 4;
  }
  return s;
}

/**
 * 4 panel rows × tokens [0, T) of x (row stride xs bytes, pointing at column k0): out rows are
 * strided by os bytes and point at column n0. bias points at bias[n0] (0 = none).
 */
function panelRows4(out: usize, os: usize, x: usize, xs: usize, T: i32, kc: i32, bias: usize, addOut: bool): void {
  const p0 = PANEL;
  const p1 = p0 + PANEL_STRIDE;
  const p2 = p1 + PANEL_STRIDE;
  const p3 = p2 + PANEL_STRIDE;
  const vecBytes = <usize>(kc & ~3) << 2;
  let t = 0;
  // two tokens at a time: 8 accumulators, each panel vector feeds two tokens
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
    store4(oa, sa, bias, addOut);
    store4(oa + os, sb, bias, addOut);
  }
  for (; t < T; t++) {
    const xa = x + <usize>t * xs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 16) {
      const va = v128.load(xa + k);
      a0 = madd(v128.load(p0 + k), va, a0);
      a1 = madd(v128.load(p1 + k), va, a1);
      a2 = madd(v128.load(p2 + k), va, a2);
      a3 = madd(v128.load(p3 + k), va, a3);
    }
    let sa = hsum4(a0, a1, a2, a3);
    if (kc & 3) sa = f32x4.add(sa, tail4(xa, kc));
    store4(out + <usize>t * os, sa, bias, addOut);
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

/** out[0..4] (one token) = rows r0, r0 + rowBytes, ... (4 weight rows) · x (K), via store4. */
export type Rows4Token1 = (out: usize, x: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool) => void;
/** Same for two tokens: x rows xs bytes apart, outputs os bytes apart. */
export type Rows4Tokens2 = (
  out: usize, os: usize, x: usize, xs: usize, r0: usize, rowBytes: usize, K: i32, bias: usize, addOut: bool,
) => void;
/** One weight row · one token, via store1 (the N % 4 leftover rows). */
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

/**
 * The prefill driver: out (T, N) [+]= x (T, K) · w (N, K)ᵀ + bias, weights converted by `convert`.
 * Loops: token blocks ▸ k chunks ▸ 4-row panels ▸ tokens. The first k chunk applies bias and the
 * caller's accumulate flag; later chunks add to out.
 */
export function linearPanels(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: bool, convert: PanelConverter,
): void {
  const xs = <usize>K << 2;
  const os = <usize>N << 2;
  for (let t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
    const tb = min(TOKEN_BLOCK, T - t0);
    for (let k0 = 0; k0 < K; k0 += PANEL_K) {
      const kc = min(PANEL_K, K - k0);
      const first = k0 == 0;
      const addOut = first ? accumulate : true;
      const xBlock = x + <usize>t0 * xs + (<usize>k0 << 2);
      const outBlock = out + <usize>t0 * os;
      for (let n0 = 0; n0 < N; n0 += PANEL_ROWS) {
        const rows = min(PANEL_ROWS, N - n0);
        convert(w, K, n0, rows, k0, kc);
        const rowBias = first && bias != 0 ? bias + (<usize>n0 << 2) : 0;
        if (rows == PANEL_ROWS) {
          panelRows4(outBlock + (<usize>n0 << 2), os, xBlock, xs, tb, kc, rowBias, addOut);
        } else {
          for (let r = 0; r < rows; r++) {
            const panelRow = PANEL + <usize>r * PANEL_STRIDE;
            const o = outBlock + (<usize>(n0 + r) << 2);
            const b = rowBias != 0 ? rowBias + (<usize>r << 2) : 0;
            for (let t = 0; t < tb; t++) {
              store1(o + <usize>t * os, dotF32(panelRow, xBlock + <usize>t * xs, kc), b, addOut);
            }
          }
        }
      }
    }
  }
}
