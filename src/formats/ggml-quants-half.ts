// 16-bit floats exactly as ggml converts them (ggml-impl.h): IEEE half with round-to-nearest-even, and
// bfloat16 with round-to-nearest-even (NaN forced quiet). Bit-exactness matters: block scales of every
// quantized type are stored as f16, so a different rounding would change the files we write.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Half (IEEE binary16 bits) -> float. Exact: every half is representable as an f32. */
export function fp16ToFp32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** Lookup table of all 65536 halves, for the dequantizers' hot loops. */
export const FP16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = fp16ToFp32(h);
  return t;
})();

/**
 * float -> half bits, ggml_compute_fp32_to_fp16 transcribed: the scale trick rounds to nearest even in
 * f32 arithmetic, handles subnormals, overflows to infinity and maps NaN to 0x7E00.
 */
export function fp32ToFp16(value: number): number {
  const scaleToInf = 2 ** 112; // 0x1.0p+112f
  const scaleToZero = 2 ** -110; // 0x1.0p-110f
  f32[0] = value;
  const w = u32[0];
  let base = Math.fround(Math.fround(Math.abs(f32[0]) * scaleToInf) * scaleToZero);
  const shl1w = (w + w) >>> 0;
  const sign = w & 0x80000000;
  let bias = (shl1w & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  u32[0] = ((bias >>> 1) + 0x07800000) >>> 0;
  base = Math.fround(f32[0] + base);
  f32[0] = base;
  const bits = u32[0];
  const expBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  const nonsign = expBits + mantissaBits;
  return ((sign >>> 16) | (shl1w > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** bfloat16 bits -> float (the top half of an f32). */
export function bf16ToFp32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** float -> bfloat16 bits, ggml_compute_fp32_to_bf16: round to nearest even, NaN made quiet. */
export function fp32ToBf16(value: number): number {
  f32[0] = value;
  const i = u32[0];
  if ((i & 0x7fffffff) > 0x7f800000) return ((i >>> 16) | 64) & 0xffff;
  return ((i + (0x7fff + ((i >>> 16) & 1))) >>> 16) & 0xffff;
}

/** Rounds like C's roundf: half away from zero. (Math.round rounds half towards +infinity.) */
export function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * ggml's nearest_int: adds 1.5*2^23 in f32 and reads the low 23 bits, i.e. round half to even for
 * |x| <= 4194303. Outside that range ggml's bit trick wraps (and NaN gives 0, ±Infinity -4194304); we
 * keep that too, since the quantizers can meet such values and their files must match ggml's. `x` must
 * be an f32 value (already fround-ed): then the double sum rounded once to f32 equals the f32 sum.
 */
export function nearestInt(x: number): number {
  const v = Math.fround(x + 12582912);
  if (v >= 8388608 && v < 16777216) return v - 12582912; // [2^23, 2^24): the mantissa is the integer
  f32[0] = v;
  return (u32[0] & 0x7fffff) - 0x400000;
}
