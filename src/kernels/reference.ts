// Plain TypeScript twins of the wasm kernels (obviously-right loops, f64 accumulation) for the tests,
// plus the float conversions other modules use (bf16/f16 <-> f32, scalar and bulk).

// ---- conversions ---------------------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** bf16 bits → f32 value (exact). */
export function bf16ToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0]!;
}

/** f32 value → bf16 bits, round to nearest even; nan → quiet nan. `value` is first rounded to f32. */
export function f32ToBf16(value: number): number {
  scratchF32[0] = value;
  return bitsToBf16(scratchU32[0]!);
}

function bitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;

/** All 65536 half values as f32, built once (256 KiB). */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    const bits = new Uint32Array(f16Table.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      const exp = (h >> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0) f16Table[h] = (sign ? -mant : mant) * 2 ** -24; // zero / subnormal: exact in f32
      else if (exp === 0x1f) bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / nan with payload
      else bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return f16Table;
}

let f16TableBits: Uint32Array | undefined;

function halfTableBits(): Uint32Array {
  return (f16TableBits ??= new Uint32Array(halfTable().buffer));
}

/** IEEE half bits → f32 value (exact, all values). */
export function f16ToF32(bits: number): number {
  return halfTable()[bits & 0xffff]!;
}

/** f32 value → IEEE half bits, round to nearest even, subnormals, overflow → inf, nan → quiet nan. */
export function f32ToF16(value: number): number {
  scratchF32[0] = value;
  return bitsToF16(scratchU32[0]!);
}

function bitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // nan, quieted
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds to inf (and inf itself)
  if (abs < 0x38800000) {
    // below 2^-14: half subnormal (or zero), in units of 2^-24, rounded to nearest even
    scratchU32[0] = abs;
    const units = scratchF32[0]! * 2 ** 24; // exact in f64
    let r = Math.floor(units);
    const frac = units - r;
    if (frac > 0.5 || (frac === 0.5 && (r & 1) === 1)) r++;
    return sign | r; // r = 1024 is the smallest normal, encoded correctly
  }
  const rest = abs & 0x1fff;
  let h = (abs >>> 13) - (112 << 10); // rebias the exponent, keep 10 mantissa bits
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // carry may bump the exponent: correct
  return sign | h;
}

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** dst[i] = bf16 bits of src[i] (round to nearest even). */
export function f32ToBf16Array(src: Float32Array, dst: Uint16Array): void {
  const bits = u32View(src);
  const n = checkLengths("f32ToBf16Array", src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = bitsToBf16(bits[i]!);
}

/** dst[i] = half bits of src[i] (round to nearest even). */
export function f32ToF16Array(src: Float32Array, dst: Uint16Array): void {
  const bits = u32View(src);
  const n = checkLengths("f32ToF16Array", src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = bitsToF16(bits[i]!);
}

/** dst[i] = f32 value of bf16 bits src[i]. */
export function bf16ToF32Array(src: Uint16Array, dst: Float32Array): void {
  const out = u32View(dst);
  const n = checkLengths("bf16ToF32Array", src.length, dst.length);
  for (let i = 0; i < n; i++) out[i] = src[i]! << 16;
}

/** dst[i] = f32 value of half bits src[i]. */
export function f16ToF32Array(src: Uint16Array, dst: Float32Array): void {
  const table = halfTableBits();
  const out = u32View(dst); // integer copies keep nan payloads bit-exact
  const n = checkLengths("f16ToF32Array", src.length, dst.length);
  for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
}

function checkLengths(fn: string, src: number, dst: number): number {
  if (dst < src) throw new RangeError(`${fn}: dst has ${dst} elements, src has ${src}`);
  return src;
}

// ---- kernels -------------------------------------------------------------------------------------

/** out (T, N) = [out +] [bias (N) +] x (T, K) · w (N, K)ᵀ, f64 accumulation. */
export function linear(
  out: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null,
  T: number, K: number, N: number, accumulate: boolean,
): void {
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += w[n * K + k]! * x[t * K + k]!;
      if (bias) s += bias[n]!;
      if (accumulate) s += out[t * N + n]!;
      out[t * N + n] = s;
    }
  }
}

/** linear with bf16 weights (bits). */
export function linearBf16(
  out: Float32Array, x: Float32Array, w: Uint16Array, bias: Float32Array | null,
  T: number, K: number, N: number, accumulate: boolean,
): void {
  const wf = new Float32Array(N * K);
  bf16ToF32Array(w.subarray(0, N * K), wf);
  linear(out, x, wf, bias, T, K, N, accumulate);
}

/** linear with IEEE half weights (bits). */
export function linearF16(
  out: Float32Array, x: Float32Array, w: Uint16Array, bias: Float32Array | null,
  T: number, K: number, N: number, accumulate: boolean,
): void {
  const wf = new Float32Array(N * K);
  f16ToF32Array(w.subarray(0, N * K), wf);
  linear(out, x, wf, bias, T, K, N, accumulate);
}

/** torch.nn.LayerNorm per row of C (biased variance), in f64. out may be x. */
export function layerNorm(
  out: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, T: number, C: number, eps: number,
): void {
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[t * C + c]!;
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[t * C + c]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) out[t * C + c] = (x[t * C + c]! - mean) * rstd * gamma[c]! + beta[c]!;
  }
}

/**
 * gelu_new (tanh approximation) of one value, in f64: 0.5·v·(1 + tanh(u)), u = √(2/π)·(v + 0.044715·v³),
 * evaluated as v / (1 + e^(-2u)) (the same function) because 1 + tanh(u) cancels catastrophically for
 * v < -6 even in f64.
 */
export function geluNewValue(v: number): number {
  const u = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v);
  return v / (1 + Math.exp(-2 * u));
}

/** gelu_new in place on x[0..n). */
export function geluNew(x: Float32Array, n: number = x.length): void {
  for (let i = 0; i < n; i++) x[i] = geluNewValue(x[i]!);
}

/** Rotary embedding (rotate_half), in place; see the wasm kernel for the layout. */
export function rope(
  x: Float32Array, T: number, rowStride: number, nHeads: number, headDim: number, rotaryDim: number,
  positions: Int32Array, theta: number,
): void {
  const half = rotaryDim / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const base = t * rowStride + h * headDim;
      for (let i = 0; i < half; i++) {
        const invFreq = 1 / theta ** ((2 * i) / rotaryDim);
        const angle = positions[t]! * invFreq;
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        x[base + i] = a * Math.cos(angle) - b * Math.sin(angle);
        x[base + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }
}

/**
 * Causal attention of q (T, nHeads*headDim) against caches (ctx, nKvHeads*headDim); query t sees
 * positions 0..positions[t]; head h uses kv head h / (nHeads / nKvHeads). f64 throughout.
 */
export function attention(
  out: Float32Array, q: Float32Array, T: number, positions: Int32Array, kCache: Float32Array, vCache: Float32Array,
  nHeads: number, nKvHeads: number, headDim: number, scale: number,
): void {
  const group = nHeads / nKvHeads;
  const qRow = nHeads * headDim;
  const kvRow = nKvHeads * headDim;
  for (let t = 0; t < T; t++) {
    const n = positions[t]! + 1;
    for (let h = 0; h < nHeads; h++) {
      const kv = Math.floor(h / group) * headDim;
      const scores = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[t * qRow + h * headDim + d]! * kCache[j * kvRow + kv + d]!;
        scores[j] = s * scale;
      }
      const max = Math.max(...scores);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += scores[j] = Math.exp(scores[j]! - max);
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += scores[j]! * vCache[j * kvRow + kv + d]!;
        out[t * qRow + h * headDim + d] = acc / sum;
      }
    }
  }
}

/** out[i] += a[i]. */
export function add(out: Float32Array, a: Float32Array, n: number = out.length): void {
  for (let i = 0; i < n; i++) out[i] = out[i]! + a[i]!;
}

/** out (T, N) += bias (N) per row. */
export function addBias(out: Float32Array, bias: Float32Array, T: number, N: number): void {
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) out[t * N + n] = out[t * N + n]! + bias[n]!;
}

/** x[i] *= s. */
export function scale(x: Float32Array, n: number, s: number): void {
  for (let i = 0; i < n; i++) x[i] = x[i]! * s;
}
