// linear_q8_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q8_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; i8 q[32] } (34 bytes), value = q · d. Activations are quantized
// to int8 per 32 values into `scratch` (see _linear-quant.ts; quantScratchBytes(T, K)).
// Signed 8-bit weights do not fit the 7-bit operand of the relaxed 8-bit dot, so both builds use
// int16 dots (pmaddwd) here.
//
// Kernel layout (repack_q8_0, done once at load, in place, same size): every full group of 4 rows is
// interleaved per block as { f16 d[4]; i8 q[8][16] } (136 bytes): vector v (v = 0..7) holds the column
// pairs 2v and 2v + 1 of the 4 rows, [r0 r1 r2 r3 of pair 2v, r0 r1 r2 r3 of pair 2v + 1], 2 bytes each.
// Sign-extending its low / high half gives the int16 panel vector of pair 2v / 2v + 1 (i32 lane r = row
// r's pair) as it is: decode reads one stream per group and multiplies 4 rows per dot, and the panels
// are filled by widening alone (before: a 4 × 4 transpose per vector, a quarter of a batch of 8's time).
// Rows past the last full group stay in ggml's layout.

import { f16Scalar, f16x4, f16x4Gather, hsum } from "./_simd";
import {
  IPANEL, PSCALE, QK, QPANEL_K, accumulateBlock, broadcast, chunkRunning, chunkRunning4, chunkSum, dot32, fence,
  laneRow, linearQuantPanels, pairs32, quantizeActivations, storeTransposed, totals32, xdBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 34;
/** One block of a 4-row group in kernel layout: 4 f16 scales, then 8 vectors of 4 rows' column pairs. */
const GROUP_BLOCK_BYTES: usize = 136;

/** Pointers are byte offsets; bias = 0 means none; K % 32 == 0; scratch: quantScratchBytes(T, K). */
export function linear_q8_0(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, false);
  if (T < SMALL_BATCH) smallBatchQ8_0(out, w, bias, T, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q8_0Panel, false, false, <usize>(K >> 5) * BLOCK_BYTES);
}

/**
 * Below this many tokens the weights stream once, a 4-row group at a time, each token in turn against
 * it (the group stays in L1 for the tokens after the first); from it on they go through the panels,
 * whose widening costs about a token's worth of work. Measured on fc1 (K 2560, N 10240), ms per token:
 * this way 1.36 at T = 1, 1.5 at 4, 1.4 at 7; the panels 1.9 at T = 4, 1.6 at 7, 1.38 at 8, 1.2 at 16.
 */
const SMALL_BATCH: i32 = 8;

/** The i32 partial sums of one block of a row against the token's int16 activations at xp. */
// @ts-ignore: decorator
@inline function blockPartial(blk: usize, xp: usize): v128 {
  const v0 = v128.load(blk, 2), v1 = v128.load(blk, 18);
  return dot32(
    i16x8.extend_low_i8x16_s(v0), i16x8.extend_high_i8x16_s(v0),
    i16x8.extend_low_i8x16_s(v1), i16x8.extend_high_i8x16_s(v1), xp,
  );
}

/** Staging for the scales of a chunk's last, partial group of 4 blocks. */
const TAIL: usize = memory.data(32, 16);

/**
 * Blocks b..b+3 of row r against one token: lane j of acc += f32(t_{b+j}) · (d_w · d_x), lane j being
 * A_j of the summation order (b ≡ 0 mod 4 within the chunk).
 */
// @ts-ignore: decorator
@inline function rowQuad(acc: v128, r: usize, b: i32, xq: usize, xd: usize): v128 {
  const o = <usize>b * BLOCK_BYTES;
  const xp = xq + (<usize>b << 6);
  const p01 = fence(pairs32(fence(blockPartial(r + o, xp)), blockPartial(r + o + BLOCK_BYTES, xp + 64)));
  const p23 = pairs32(fence(blockPartial(r + o + 2 * BLOCK_BYTES, xp + 128)), blockPartial(r + o + 3 * BLOCK_BYTES, xp + 192));
  const scale = f32x4.mul(f16x4Gather(r + o, r + o + BLOCK_BYTES, r + o + 2 * BLOCK_BYTES, r + o + 3 * BLOCK_BYTES), v128.load(xd + (<usize>b << 2)));
  return accumulateBlock(acc, totals32(p01, p23), scale);
}

/** The chunk's last n < 4 blocks b.. of row r: as rowQuad with the missing blocks counting 0. */
// @ts-ignore: decorator
@inline function rowTail(acc: v128, r: usize, b: i32, n: i32, xq: usize, xd: usize): v128 {
  let p0 = i32x4.splat(0), p1 = i32x4.splat(0), p2 = i32x4.splat(0);
  v128.store(TAIL, f32x4.splat(0));
  for (let i = 0; i < n; i++) {
    const o = <usize>(b + i) * BLOCK_BYTES;
    store<f32>(TAIL + (<usize>i << 2), f16Scalar(<i32>load<i16>(r + o)) * load<f32>(xd + (<usize>(b + i) << 2)));
  }
  const xp = xq + (<usize>b << 6);
  const o = <usize>b * BLOCK_BYTES;
  p0 = blockPartial(r + o, xp);
  if (n > 1) p1 = blockPartial(r + o + BLOCK_BYTES, xp + 64);
  if (n > 2) p2 = blockPartial(r + o + 2 * BLOCK_BYTES, xp + 128);
  return accumulateBlock(acc, totals32(pairs32(p0, p1), pairs32(p2, i32x4.splat(0))), v128.load(TAIL));
}

/** One token (activations xq, scales xd) against row r: the value for out (summation order of _linear-quant.ts). */
// @ts-ignore: decorator
@inline function rowToken(out: usize, r: usize, nb: i32, xq: usize, xd: usize, bias: usize, addOut: bool): void {
  const chunkBlocks = QPANEL_K / QK;
  let res: f32 = 0;
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let acc = f32x4.splat(0);
    let b = c0;
    for (; b + 4 <= c1; b += 4) acc = rowQuad(acc, r, b, xq, xd);
    if (b < c1) acc = rowTail(acc, r, b, c1 - b, xq, xd);
    const s = hsum(acc);
    res = chunkRunning(s, res, c0 == 0, out, addOut);
  }
  if (bias != 0) res += load<f32>(bias);
  store<f32>(out, res);
}

/**
 * Pairs 4i .. 4i + 3 of a group block at p (kernel layout: vectors 2i and 2i + 1) against xv, the
 * token's xq vector i (those 4 pairs), as the 4 rows' i32 partial sums (lanes).
 */
// @ts-ignore: decorator
@inline function groupQuad(p: usize, xv: v128, i: i32): v128 {
  const w0 = v128.load(p + 8 + (<usize>i << 5)), w1 = v128.load(p + 24 + (<usize>i << 5));
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), broadcast(xv, 0)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), broadcast(xv, 1))),
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), broadcast(xv, 2)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), broadcast(xv, 3))));
}

/** One block of group4 (p: the block in kernel layout): acc + f32(t_b) · (d_w · d_x) for the 4 rows. */
// @ts-ignore: decorator
@inline function group4Step(acc: v128, p: usize, b: i32, xq: usize, xd: usize): v128 {
  const scale = f32x4.mul(f16x4(i32x4.extend_low_i16x8_s(v128.load64_zero(p))), f32x4.splat(load<f32>(xd + (<usize>b << 2))));
  const xp = xq + (<usize>b << 6);
  // a running sum fenced after each quarter, so that V8 loads each quarter's vectors next to their use
  let s = fence(groupQuad(p, v128.load(xp), 0));
  s = fence(i32x4.add(s, groupQuad(p, v128.load(xp, 16), 1)));
  s = fence(i32x4.add(s, groupQuad(p, v128.load(xp, 32), 2)));
  s = i32x4.add(s, groupQuad(p, v128.load(xp, 48), 3));
  return accumulateBlock(acc, s, scale);
}

/** One token against a 4-row group in kernel layout: out[0..4] (summation order of _linear-quant.ts). */
// @ts-ignore: decorator
@inline function group4(out: usize, group: usize, nb: i32, xq: usize, xd: usize, bias: usize, addOut: bool): void {
  const chunkBlocks = QPANEL_K / QK;
  let res = f32x4.splat(0);
  for (let c0 = 0; c0 < nb; c0 += chunkBlocks) {
    const c1 = min(nb, c0 + chunkBlocks);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b = c0;
    let p = group + <usize>c0 * GROUP_BLOCK_BYTES;
    for (; b + 4 <= c1; b += 4) {
      a0 = group4Step(a0, p, b, xq, xd);
      a1 = group4Step(a1, p + GROUP_BLOCK_BYTES, b + 1, xq, xd);
      a2 = group4Step(a2, p + 2 * GROUP_BLOCK_BYTES, b + 2, xq, xd);
      a3 = group4Step(a3, p + 3 * GROUP_BLOCK_BYTES, b + 3, xq, xd);
      p += 4 * GROUP_BLOCK_BYTES;
    }
    if (b < c1) a0 = group4Step(a0, p, b, xq, xd);
    if (b + 1 < c1) a1 = group4Step(a1, p + GROUP_BLOCK_BYTES, b + 1, xq, xd);
    if (b + 2 < c1) a2 = group4Step(a2, p + 2 * GROUP_BLOCK_BYTES, b + 2, xq, xd);
    const s = chunkSum(a0, a1, a2, a3, f32x4.splat(0));
    res = chunkRunning4(s, res, c0 == 0, out, 4, addOut);
  }
  if (bias != 0) res = f32x4.add(res, v128.load(bias));
  v128.store(out, res);
}

/**
 * Decode and T < SMALL_BATCH: streams the weights once, a 4-row group at a time (rows past the last
 * full group: one at a time), the tokens one after the other against it (a group is 11 KiB for
 * K = 2560: it stays in L1 for the tokens after the first).
 */
function smallBatchQ8_0(out: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const xd0 = xdBase(scratch, T, K);
  for (let n = 0; n < N; n += 4) {
    const rows = min(4, N - n);
    for (let t = 0; t < T; t++) {
      const o = out + ((<usize>t * <usize>N + <usize>n) << 2);
      const xq = scratch + ((<usize>t * <usize>K) << 1);
      const xd = xd0 + ((<usize>t * <usize>nb) << 2);
      const b = bias != 0 ? bias + (<usize>n << 2) : 0;
      if (rows == 4) group4(o, w + <usize>n * rowBytes, nb, xq, xd, b, addOut);
      else for (let r = 0; r < rows; r++) rowToken(o + (<usize>r << 2), w + <usize>(n + r) * rowBytes, nb, xq, xd, b != 0 ? b + (<usize>r << 2) : 0, addOut);
    }
  }
}

/** Vector v of the group block at p, widened into int16 panel vectors 2v and 2v + 1 at dst. */
// @ts-ignore: decorator
@inline function widen(dst: usize, p: usize, v: usize): void {
  const q = v128.load(p + 8 + (v << 4));
  v128.store(dst + (v << 5), i16x8.extend_low_i8x16_s(q));
  v128.store(dst + (v << 5) + 16, i16x8.extend_high_i8x16_s(q));
}

/**
 * Q8_0 rows → the int16 row-interleaved panel (xq natural order: pair k = values 2k, 2k+1), 4 rows at
 * once: a full group by widening its kernel layout, the rows after the last one by transposing.
 */
function q8_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const b0 = <usize>(k0 >> 5);
  if (rows == 4) {
    let p = w + <usize>n0 * rowBytes + b0 * GROUP_BLOCK_BYTES;
    for (let b = 0; b < nbc; b++) {
      const dst = IPANEL + (<usize>b << 8);
      widen(dst, p, 0); widen(dst, p, 1); widen(dst, p, 2); widen(dst, p, 3);
      widen(dst, p, 4); widen(dst, p, 5); widen(dst, p, 6); widen(dst, p, 7);
      v128.store(PSCALE + (<usize>b << 4), f16x4(i32x4.extend_low_i16x8_s(v128.load64_zero(p))));
      p += GROUP_BLOCK_BYTES;
    }
    return;
  }
  const first = b0 * BLOCK_BYTES;
  const r0 = laneRow(w, rowBytes, n0, 0, rows) + first, r1 = laneRow(w, rowBytes, n0, 1, rows) + first;
  const r2 = laneRow(w, rowBytes, n0, 2, rows) + first, r3 = laneRow(w, rowBytes, n0, 3, rows) + first;
  for (let b = 0; b < nbc; b++) {
    const o = <usize>b * BLOCK_BYTES;
    const dst = IPANEL + (<usize>b << 8);
    for (let h: usize = 0; h < 2; h++) {
      const v0 = v128.load(r0 + o + 2 + (h << 4)), v1 = v128.load(r1 + o + 2 + (h << 4));
      const v2 = v128.load(r2 + o + 2 + (h << 4)), v3 = v128.load(r3 + o + 2 + (h << 4));
      storeTransposed(dst + (h << 7),
        i16x8.extend_low_i8x16_s(v0), i16x8.extend_low_i8x16_s(v1), i16x8.extend_low_i8x16_s(v2), i16x8.extend_low_i8x16_s(v3));
      storeTransposed(dst + (h << 7) + 64,
        i16x8.extend_high_i8x16_s(v0), i16x8.extend_high_i8x16_s(v1), i16x8.extend_high_i8x16_s(v2), i16x8.extend_high_i8x16_s(v3));
    }
    v128.store(PSCALE + (<usize>b << 4), f16x4Gather(r0 + o, r1 + o, r2 + o, r3 + o));
  }
}

/**
 * Rewrites N rows of K values of ggml Q8_0 at w into the kernel layout, in place (the same bytes);
 * tmp: 4·(K/32)·34 bytes of scratch.
 */
export function repack_q8_0(w: usize, N: i32, K: i32, tmp: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  for (let n0 = 0; n0 + 4 <= N; n0 += 4) {
    const group = w + <usize>n0 * rowBytes;
    memory.copy(tmp, group, rowBytes << 2);
    for (let b = 0; b < nb; b++) {
      const dst = group + <usize>b * GROUP_BLOCK_BYTES;
      const s0 = tmp + <usize>b * BLOCK_BYTES, s1 = s0 + rowBytes, s2 = s1 + rowBytes, s3 = s2 + rowBytes;
      store<u16>(dst, load<u16>(s0));
      store<u16>(dst, load<u16>(s1), 2);
      store<u16>(dst, load<u16>(s2), 4);
      store<u16>(dst, load<u16>(s3), 6);
      for (let h: usize = 0; h < 2; h++) {
        // i16 lane k of a row's half h = its column pair 8h + k
        const a = v128.load(s0 + 2 + (h << 4)), c = v128.load(s1 + 2 + (h << 4));
        const e = v128.load(s2 + 2 + (h << 4)), g = v128.load(s3 + 2 + (h << 4));
        const ac0 = v128.shuffle<i16>(a, c, 0, 8, 1, 9, 2, 10, 3, 11), ac1 = v128.shuffle<i16>(a, c, 4, 12, 5, 13, 6, 14, 7, 15);
        const eg0 = v128.shuffle<i16>(e, g, 0, 8, 1, 9, 2, 10, 3, 11), eg1 = v128.shuffle<i16>(e, g, 4, 12, 5, 13, 6, 14, 7, 15);
        const q = dst + 8 + (h << 6);
        v128.store(q, v128.shuffle<i32>(ac0, eg0, 0, 4, 1, 5));
        v128.store(q, v128.shuffle<i32>(ac0, eg0, 2, 6, 3, 7), 16);
        v128.store(q, v128.shuffle<i32>(ac1, eg1, 0, 4, 1, 5), 32);
        v128.store(q, v128.shuffle<i32>(ac1, eg1, 2, 6, 3, 7), 48);
      }
    }
  }
}
