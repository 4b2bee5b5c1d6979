// Causal multi-head attention of T queries against one sequence's KV cache (GQA aware), the cache in
// f32 (`attention`) or IEEE half (`attention_f16`, llama.cpp's default cache type: half the memory and
// half the bytes each decode step reads).

import { exp4, f16Scalar, f16x4, hsum, hsum4, madd } from "./_simd";

// The cache's element type E: f32, or u16 holding halves (finite: convert_f32_to_f16 saturates).
// Halves are widened to f32 exactly as they are read, so both cache types share one summation order.

/** Four cache values at p as f32. */
// @ts-ignore: decorator
@inline function kv4<E>(p: usize): v128 {
  if (sizeof<E>() == 4) return v128.load(p);
  return f16x4(v128.load16x4_s(p));
}

/** One cache value at p as f32. */
// @ts-ignore: decorator
@inline function kv1<E>(p: usize): f32 {
  if (sizeof<E>() == 4) return load<f32>(p);
  return f16Scalar(<i32>load<i16>(p));
}

/**
 * out (T, nHeads*headDim) = softmax(q·kᵀ·scale) · v per query and head, where
 *   q (T, nHeads*headDim); kCache, vCache (ctx, nKvHeads*headDim), position-major, already holding
 *   this step's keys/values; query t sees cache positions 0..positions[t] inclusive; head h reads
 *   kv head h / (nHeads / nKvHeads).
 * Scores and softmax in f32 (max-subtracted). out may equal q (each head's query is fully read
 * before its output is written). scratch: (max_t positions[t] + 1) f32, i.e. 4·(maxPos+1) bytes.
 */
export function attention(
  out: usize, q: usize, T: i32, positions: usize, kCache: usize, vCache: usize,
  nHeads: i32, nKvHeads: i32, headDim: i32, scale: f32, scratch: usize,
): void {
  const kvRow = <usize>nKvHeads * <usize>headDim << 2;
  for (let g = 0; g < nKvHeads; g++) {
    const kvOffset = <usize>g * <usize>headDim << 2;
    attendGroup<f32>(out, q, T, positions, kCache + kvOffset, vCache + kvOffset, kvRow, g, nHeads, nKvHeads, headDim, scale, scratch);
  }
}

/**
 * As `attention`, the caches holding halves (ctx, nKvHeads*headDim) u16. A single query (decode)
 * widens the keys and values as it reads them; several queries first widen their kv head's visible
 * rows once into scratch, then run the f32 path on them. Same results either way (widening is exact).
 * scratch: attentionF16ScratchBytes(maxPos, headDim).
 */
export function attention_f16(
  out: usize, q: usize, T: i32, positions: usize, kCache: usize, vCache: usize,
  nHeads: i32, nKvHeads: i32, headDim: i32, scale: f32, scratch: usize,
): void {
  const kvRow = <usize>nKvHeads * <usize>headDim << 1;
  let n = 0;
  for (let t = 0; t < T; t++) n = max(n, load<i32>(positions + (<usize>t << 2)) + 1);
  const headBytes = <usize>headDim << 2;
  // scores first (n f32 rounded up to 16 bytes), then the widened keys and values (n rows each)
  const kWide = scratch + ((<usize>n + 3) & ~3) * 4;
  const vWide = kWide + <usize>n * headBytes;
  for (let g = 0; g < nKvHeads; g++) {
    const kvOffset = <usize>g * <usize>headDim << 1;
    if (T == 1) {
      attendGroup<u16>(out, q, T, positions, kCache + kvOffset, vCache + kvOffset, kvRow, g, nHeads, nKvHeads, headDim, scale, scratch);
      continue;
    }
    widenRows(kWide, kCache + kvOffset, kvRow, n, headDim);
    widenRows(vWide, vCache + kvOffset, kvRow, n, headDim);
    attendGroup<f32>(out, q, T, positions, kWide, vWide, headBytes, g, nHeads, nKvHeads, headDim, scale, scratch);
  }
}

/**
 * dst (n, headDim) f32 = the n rows of headDim halves at src, kvRow bytes apart. Widened by kv4/kv1,
 * the very conversion the single-query path applies as it reads, not by convert_f16_to_f32 (which
 * also maps inf/nan): the two paths must agree bit for bit on whatever the cache holds.
 */
function widenRows(dst: usize, src: usize, kvRow: usize, n: i32, headDim: i32): void {
  const rowBytes = <usize>headDim << 2;
  for (let j = 0; j < n; j++) {
    const s = src + <usize>j * kvRow;
    const d = dst + <usize>j * rowBytes;
    let i = 0;
    for (; i + 4 <= headDim; i += 4) v128.store(d + (<usize>i << 2), kv4<u16>(s + (<usize>i << 1)));
    for (; i < headDim; i++) store<f32>(d + (<usize>i << 2), kv1<u16>(s + (<usize>i << 1)));
  }
}

/**
 * The query heads of kv head g (heads g*group .. g*group + group - 1) for every query: k and v point
 * at kv head g's first value, rows kvRow bytes apart.
 */
// @ts-ignore: decorator
@inline function attendGroup<E>(
  out: usize, q: usize, T: i32, positions: usize, k: usize, v: usize, kvRow: usize, g: i32,
  nHeads: i32, nKvHeads: i32, headDim: i32, scale: f32, scratch: usize,
): void {
  const group = nHeads / nKvHeads;
  const qRow = <usize>nHeads * <usize>headDim << 2; // bytes per query row
  const headBytes = <usize>headDim << 2;
  for (let t = 0; t < T; t++) {
    const n = load<i32>(positions + (<usize>t << 2)) + 1; // positions visible to this query
    for (let h = g * group; h < (g + 1) * group; h++) {
      const qh = q + <usize>t * qRow + <usize>h * headBytes;
      const max = scores<E>(scratch, qh, k, kvRow, n, headDim, scale);
      const sum = softmaxExp(scratch, n, max);
      weightedSum<E>(out + <usize>t * qRow + <usize>h * headBytes, scratch, v, kvRow, n, headDim, <f32>1.0 / sum);
    }
  }
}

/** scratch[j] = q·k_j·scale for j < n (k_j at k + j*kvRow); returns the max. 4 keys per pass share q. */
function scores<E>(scratch: usize, q: usize, k: usize, kvRow: usize, n: i32, headDim: i32, scale: f32): f32 {
  const vecEnd = <usize>(headDim & ~3);
  const es = <usize>sizeof<E>();
  const sv = f32x4.splat(scale);
  let maxv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = k + <usize>j * kvRow;
    const k1 = k0 + kvRow;
    const k2 = k1 + kvRow;
    const k3 = k2 + kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d: usize = 0; d < vecEnd; d += 4) {
      const qv = v128.load(q + (d << 2));
      const kd = d * es;
      a0 = madd(qv, kv4<E>(k0 + kd), a0);
      a1 = madd(qv, kv4<E>(k1 + kd), a1);
      a2 = madd(qv, kv4<E>(k2 + kd), a2);
      a3 = madd(qv, kv4<E>(k3 + kd), a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (headDim & 3) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      for (let d = headDim & ~3; d < headDim; d++) {
        const kd = <usize>d * es;
        const qd = load<f32>(q + (<usize>d << 2));
        s0 += qd * kv1<E>(k0 + kd);
        s1 += qd * kv1<E>(k1 + kd);
        s2 += qd * kv1<E>(k2 + kd);
        s3 += qd * kv1<E>(k3 + kd);
      }
      s = f32x4.add(s, f32x4(s0, s1, s2, s3));
    }
    s = f32x4.mul(s, sv);
    v128.store(scratch + (<usize>j << 2), s);
    maxv = f32x4.max(maxv, s);
  }
  let best = max(max(f32x4.extract_lane(maxv, 0), f32x4.extract_lane(maxv, 1)), max(f32x4.extract_lane(maxv, 2), f32x4.extract_lane(maxv, 3)));
  for (; j < n; j++) {
    const s = dotKey<E>(q, k + <usize>j * kvRow, headDim) * scale;
    store<f32>(scratch + (<usize>j << 2), s);
    best = max(best, s);
  }
  return best;
}

/** scratch[j] = e^(scratch[j] - max) for j < n; returns the sum. */
function softmaxExp(scratch: usize, n: i32, max: f32): f32 {
  const mv = f32x4.splat(max);
  let acc = f32x4.splat(0);
  const end4 = scratch + (<usize>(n & ~3) << 2);
  let p = scratch;
  for (; p < end4; p += 16) {
    const e = exp4(f32x4.sub(v128.load(p), mv));
    v128.store(p, e);
    acc = f32x4.add(acc, e);
  }
  let sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  const end = scratch + (<usize>n << 2);
  for (; p < end; p += 4) {
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(p) - max)), 0);
    store<f32>(p, e);
    sum += e;
  }
  return sum;
}

/** out (headDim) = inv · Σ_j p_j · v_j, 4 positions per pass so out is loaded/stored n/4 times. */
function weightedSum<E>(out: usize, p: usize, v: usize, kvRow: usize, n: i32, headDim: i32, inv: f32): void {
  const vecBytes = <usize>(headDim & ~3) << 2;
  const end = <usize>headDim << 2;
  // d runs over out's bytes (4 per value); the cache's offset is d / 4 values of E
  const es = <usize>sizeof<E>();
  memory.fill(out, 0, end);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const pj = p + (<usize>j << 2);
    const w0 = v128.load32_splat(pj);
    const w1 = v128.load32_splat(pj, 4);
    const w2 = v128.load32_splat(pj, 8);
    const w3 = v128.load32_splat(pj, 12);
    const v0 = v + <usize>j * kvRow;
    const v1 = v0 + kvRow;
    const v2 = v1 + kvRow;
    const v3 = v2 + kvRow;
    for (let d: usize = 0; d < vecBytes; d += 16) {
      const vd = (d >> 2) * es;
      const acc = f32x4.add(
        f32x4.add(f32x4.mul(w0, kv4<E>(v0 + vd)), f32x4.mul(w1, kv4<E>(v1 + vd))),
        f32x4.add(f32x4.mul(w2, kv4<E>(v2 + vd)), f32x4.mul(w3, kv4<E>(v3 + vd))),
      );
      v128.store(out + d, f32x4.add(v128.load(out + d), acc));
    }
    for (let d = vecBytes; d < end; d += 4) {
      const vd = (d >> 2) * es;
      store<f32>(out + d, load<f32>(out + d) +
        load<f32>(pj) * kv1<E>(v0 + vd) + load<f32>(pj, 4) * kv1<E>(v1 + vd) +
        load<f32>(pj, 8) * kv1<E>(v2 + vd) + load<f32>(pj, 12) * kv1<E>(v3 + vd));
    }
  }
  for (; j < n; j++) {
    const w = v128.load32_splat(p + (<usize>j << 2));
    const vj = v + <usize>j * kvRow;
    for (let d: usize = 0; d < vecBytes; d += 16) {
      v128.store(out + d, f32x4.add(v128.load(out + d), f32x4.mul(w, kv4<E>(vj + (d >> 2) * es))));
    }
    const pjs = load<f32>(p + (<usize>j << 2));
    for (let d = vecBytes; d < end; d += 4) store<f32>(out + d, load<f32>(out + d) + pjs * kv1<E>(vj + (d >> 2) * es));
  }
  const iv = f32x4.splat(inv);
  for (let d: usize = 0; d < vecBytes; d += 16) v128.store(out + d, f32x4.mul(v128.load(out + d), iv));
  for (let d = vecBytes; d < end; d += 4) store<f32>(out + d, load<f32>(out + d) * inv);
}

/** Dot product of the f32 query a and one key b (E values), length n (the j % 4 leftover keys). */
function dotKey<E>(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  const es = <usize>sizeof<E>();
  const vecEnd = <usize>(n & ~3);
  for (let k: usize = 0; k < vecEnd; k += 4) acc = madd(v128.load(a + (k << 2)), kv4<E>(b + k * es), acc);
  let s = hsum(acc);
  for (let k = vecEnd; k < <usize>n; k++) s += load<f32>(a + (k << 2)) * kv1<E>(b + k * es);
  return s;
}
