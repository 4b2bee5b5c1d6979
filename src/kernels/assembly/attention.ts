// Causal multi-head attention of T queries against one sequence's KV cache (GQA aware).

import { exp4, hsum, hsum4, madd } from "./_simd";

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
  const group = nHeads / nKvHeads;
  const qRow = <usize>nHeads * <usize>headDim << 2; // bytes per query row
  const kvRow = <usize>nKvHeads * <usize>headDim << 2; // bytes per cache position
  const headBytes = <usize>headDim << 2;
  for (let t = 0; t < T; t++) {
    const n = load<i32>(positions + (<usize>t << 2)) + 1; // positions visible to this query
    for (let h = 0; h < nHeads; h++) {
      const qh = q + <usize>t * qRow + <usize>h * headBytes;
      const kvOffset = <usize>(h / group) * headBytes;
      const max = scores(scratch, qh, kCache + kvOffset, kvRow, n, headDim, scale);
      const sum = softmaxExp(scratch, n, max);
      weightedSum(out + <usize>t * qRow + <usize>h * headBytes, scratch, vCache + kvOffset, kvRow, n, headDim, <f32>1.0 / sum);
    }
  }
}

/** scratch[j] = q·k_j·scale for j < n (k_j at k + j*kvRow); returns the max. 4 keys per pass share q. */
function scores(scratch: usize, q: usize, k: usize, kvRow: usize, n: i32, headDim: i32, scale: f32): f32 {
  const vecBytes = <usize>(headDim & ~3) << 2;
  const sv = f32x4.splat(scale);
  let maxv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = k + <usize>j * kvRow;
    const k1 = k0 + kvRow;
    const k2 = k1 + kvRow;
    const k3 = k2 + kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d: usize = 0; d < vecBytes; d += 16) {
      const qv = v128.load(q + d);
      a0 = madd(qv, v128.load(k0 + d), a0);
      a1 = madd(qv, v128.load(k1 + d), a1);
      a2 = madd(qv, v128.load(k2 + d), a2);
      a3 = madd(qv, v128.load(k3 + d), a3);
    }
    let s = hsum4(a0, a1, a2, a3);
    if (headDim & 3) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      for (let d = headDim & ~3; d < headDim; d++) {
        const off = <usize>d << 2;
        const qd = load<f32>(q + off);
        s0 += qd * load<f32>(k0 + off);
        s1 += qd * load<f32>(k1 + off);
        s2 += qd * load<f32>(k2 + off);
        s3 += qd * load<f32>(k3 + off);
      }
      s = f32x4.add(s, f32x4(s0, s1, s2, s3));
    }
    s = f32x4.mul(s, sv);
    v128.store(scratch + (<usize>j << 2), s);
    maxv = f32x4.max(maxv, s);
  }
  let best = max(max(f32x4.extract_lane(maxv, 0), f32x4.extract_lane(maxv, 1)), max(f32x4.extract_lane(maxv, 2), f32x4.extract_lane(maxv, 3)));
  for (; j < n; j++) {
    const s = dotF32(q, k + <usize>j * kvRow, headDim) * scale;
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
function weightedSum(out: usize, p: usize, v: usize, kvRow: usize, n: i32, headDim: i32, inv: f32): void {
  const vecBytes = <usize>(headDim & ~3) << 2;
  const end = <usize>headDim << 2;
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
      const acc = f32x4.add(
        f32x4.add(f32x4.mul(w0, v128.load(v0 + d)), f32x4.mul(w1, v128.load(v1 + d))),
        f32x4.add(f32x4.mul(w2, v128.load(v2 + d)), f32x4.mul(w3, v128.load(v3 + d))),
      );
      v128.store(out + d, f32x4.add(v128.load(out + d), acc));
    }
    for (let d = vecBytes; d < end; d += 4) {
      store<f32>(out + d, load<f32>(out + d) +
        load<f32>(pj) * load<f32>(v0 + d) + load<f32>(pj, 4) * load<f32>(v1 + d) +
        load<f32>(pj, 8) * load<f32>(v2 + d) + load<f32>(pj, 12) * load<f32>(v3 + d));
    }
  }
  for (; j < n; j++) {
    const w = v128.load32_splat(p + (<usize>j << 2));
    const vj = v + <usize>j * kvRow;
    for (let d: usize = 0; d < vecBytes; d += 16) {
      v128.store(out + d, f32x4.add(v128.load(out + d), f32x4.mul(w, v128.load(vj + d))));
    }
    const pjs = load<f32>(p + (<usize>j << 2));
    for (let d = vecBytes; d < end; d += 4) store<f32>(out + d, load<f32>(out + d) + pjs * load<f32>(vj + d));
  }
  const iv = f32x4.splat(inv);
  for (let d: usize = 0; d < vecBytes; d += 16) v128.store(out + d, f32x4.mul(v128.load(out + d), iv));
  for (let d = vecBytes; d < end; d += 4) store<f32>(out + d, load<f32>(out + d) * inv);
}

/** Dot product of two f32 vectors of length n (the j % 4 leftover keys). */
function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  const vecBytes = <usize>(n & ~3) << 2;
  for (let k: usize = 0; k < vecBytes; k += 16) acc = madd(v128.load(a + k), v128.load(b + k), acc);
  let s = hsum(acc);
  for (let k = vecBytes; k < (<usize>n << 2); k += 4) s += load<f32>(a + k) * load<f32>(b + k);
  return s;
}
