// ggml's tensor types: block sizes, byte layouts, and the reference (de)quantizers of ggml-quants.c,
// transcribed so that our bytes equal llama.cpp's for the same input and our floats equal its floats.
// f32 arithmetic is emulated with Math.fround after every operation, in C's evaluation order.
//
// Block layouts (ggml-common.h), bytes in order; d/m/dmin are f16:
//   Q4_0 (32 values, 18 B):  d, qs[16]            value = (nibble - 8) * d; low nibbles are values 0..15
//   Q4_1 (32, 20 B):         d, m, qs[16]         value = nibble * d + m
//   Q5_0 (32, 22 B):         d, qh[4], qs[16]     5th bit of value j in bit j of qh (u32 little-endian)
//   Q5_1 (32, 24 B):         d, m, qh[4], qs[16]
//   Q8_0 (32, 34 B):         d, qs[32] (int8)     value = q * d
//   K-quants (256 values): see ggml-quants-k.ts
import type { DType } from "./tensor.js";
import { FP16_TABLE, bf16ToFp32, fp32ToBf16, fp32ToFp16, roundf } from "./ggml-quants-half.js";
import {
  dequantizeQ2K, dequantizeQ3K, dequantizeQ4K, dequantizeQ5K, dequantizeQ6K, quantizeRowQ4_K, quantizeRowQ5_K,
  quantizeRowQ6_K,
} from "./ggml-quants-k.js";

export { fp16ToFp32, fp32ToFp16, bf16ToFp32, fp32ToBf16 } from "./ggml-quants-half.js";
export { quantizeRowQ4_K, quantizeRowQ5_K, quantizeRowQ6_K, quantizeRowQ8_K, Q8_K_BYTES } from "./ggml-quants-k.js";

export interface GgmlTypeInfo {
  dtype: DType;
  /** enum ggml_type value, as stored in GGUF tensor infos. */
  ggmlType: number;
  /** Values per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** The types we read (ggml.h enum ggml_type and ggml.c type_traits). */
export const GGML_TYPES: readonly GgmlTypeInfo[] = [
  { dtype: "F32", ggmlType: 0, blockSize: 1, typeSize: 4 },
  { dtype: "F16", ggmlType: 1, blockSize: 1, typeSize: 2 },
  { dtype: "Q4_0", ggmlType: 2, blockSize: 32, typeSize: 18 },
  { dtype: "Q4_1", ggmlType: 3, blockSize: 32, typeSize: 20 },
  { dtype: "Q5_0", ggmlType: 6, blockSize: 32, typeSize: 22 },
  { dtype: "Q5_1", ggmlType: 7, blockSize: 32, typeSize: 24 },
  { dtype: "Q8_0", ggmlType: 8, blockSize: 32, typeSize: 34 },
  { dtype: "Q2_K", ggmlType: 10, blockSize: 256, typeSize: 84 },
  { dtype: "Q3_K", ggmlType: 11, blockSize: 256, typeSize: 110 },
  { dtype: "Q4_K", ggmlType: 12, blockSize: 256, typeSize: 144 },
  { dtype: "Q5_K", ggmlType: 13, blockSize: 256, typeSize: 176 },
  { dtype: "Q6_K", ggmlType: 14, blockSize: 256, typeSize: 210 },
  { dtype: "BF16", ggmlType: 30, blockSize: 1, typeSize: 2 },
];

/** Names of ggml types we do not read, for error messages. */
const OTHER_GGML_TYPE_NAMES: Record<number, string> = {
  9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
  22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 34: "TQ1_0",
  35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0", 42: "Q2_0",
};

const BY_DTYPE = new Map<DType, GgmlTypeInfo>(GGML_TYPES.map((t) => [t.dtype, t]));
const BY_ID = new Map<number, GgmlTypeInfo>(GGML_TYPES.map((t) => [t.ggmlType, t]));

export function ggmlTypeInfo(dtype: DType): GgmlTypeInfo {
  const info = BY_DTYPE.get(dtype);
  if (!info) throw new Error(`unknown tensor dtype ${dtype}`);
  return info;
}

/** The dtype for a ggml type number, or undefined for types we cannot read. */
export function dtypeFromGgmlType(id: number): DType | undefined {
  return BY_ID.get(id)?.dtype;
}

/** "type 20 (IQ4_NL)" style description of a ggml type number. */
export function describeGgmlType(id: number): string {
  const name = BY_ID.get(id)?.dtype ?? OTHER_GGML_TYPE_NAMES[id];
  return name ? `type ${id} (${name})` : `type ${id}`;
}

export function blockSize(dtype: DType): number {
  return ggmlTypeInfo(dtype).blockSize;
}

/** Bytes per block. */
export function typeSize(dtype: DType): number {
  return ggmlTypeInfo(dtype).typeSize;
}

/** Bytes of a row of n values; n must be a multiple of the block size. */
export function rowBytes(dtype: DType, n: number): number {
  const { blockSize: bs, typeSize: ts } = ggmlTypeInfo(dtype);
  if (n % bs !== 0) throw new Error(`${dtype} rows need a multiple of ${bs} values, got ${n}`);
  return (n / bs) * ts;
}

function checkRow(dtype: DType, bytes: Uint8Array, offset: number, n: number, out: Float32Array, outOffset: number): void {
  const need = rowBytes(dtype, n);
  if (offset < 0 || offset + need > bytes.length) {
    throw new RangeError(`${dtype} row of ${n} values needs bytes ${offset}..${offset + need}, have ${bytes.length}`);
  }
  if (outOffset < 0 || outOffset + n > out.length) {
    throw new RangeError(`output needs ${n} floats at ${outOffset}, has ${out.length}`);
  }
}

/**
 * Decodes n values of `dtype` starting at bytes[offsetBytes] into out[outOffset..]. Bit-exact with
 * ggml's dequantize_row_* (and its f16/bf16 -> f32 conversions).
 */
export function dequantizeRow(
  dtype: DType, bytes: Uint8Array, offsetBytes: number, n: number, out: Float32Array, outOffset = 0,
): void {
  checkRow(dtype, bytes, offsetBytes, n, out, outOffset);
  switch (dtype) {
    case "F32": {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + offsetBytes, n * 4);
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat32(i * 4, true);
      return;
    }
    case "F16":
      for (let i = 0; i < n; i++) {
        const p = offsetBytes + 2 * i;
        out[outOffset + i] = FP16_TABLE[bytes[p] | (bytes[p + 1] << 8)];
      }
      return;
    case "BF16":
      for (let i = 0; i < n; i++) {
        const p = offsetBytes + 2 * i;
        out[outOffset + i] = bf16ToFp32(bytes[p] | (bytes[p + 1] << 8));
      }
      return;
    case "Q4_0": return dequantizeQ4_0(bytes, offsetBytes, n, out, outOffset);
    case "Q4_1": return dequantizeQ4_1(bytes, offsetBytes, n, out, outOffset);
    case "Q5_0": return dequantizeQ5_0(bytes, offsetBytes, n, out, outOffset);
    case "Q5_1": return dequantizeQ5_1(bytes, offsetBytes, n, out, outOffset);
    case "Q8_0": return dequantizeQ8_0(bytes, offsetBytes, n, out, outOffset);
    case "Q2_K": return dequantizeQ2K(bytes, offsetBytes, n, out, outOffset);
    case "Q3_K": return dequantizeQ3K(bytes, offsetBytes, n, out, outOffset);
    case "Q4_K": return dequantizeQ4K(bytes, offsetBytes, n, out, outOffset);
    case "Q5_K": return dequantizeQ5K(bytes, offsetBytes, n, out, outOffset);
    case "Q6_K": return dequantizeQ6K(bytes, offsetBytes, n, out, outOffset);
  }
}

/** Types we can write: the float types and ggml's reference quantizers for Q8_0, Q4_0, Q4_K, Q5_K and Q6_K. */
export type WritableDType = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_K" | "Q5_K" | "Q6_K";

/** Encodes n values x[xOffset..] as `dtype` into out[outOffset..]; returns the bytes written. */
export function quantizeRow(
  dtype: WritableDType, x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset = 0,
): number {
  const need = rowBytes(dtype, n);
  if (xOffset < 0 || xOffset + n > x.length) throw new RangeError(`input needs ${n} floats at ${xOffset}, has ${x.length}`);
  if (outOffset < 0 || outOffset + need > out.length) throw new RangeError(`output needs ${need} bytes at ${outOffset}, has ${out.length}`);
  switch (dtype) {
    case "F32": {
      const dv = new DataView(out.buffer, out.byteOffset + outOffset, need);
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, x[xOffset + i], true);
      break;
    }
    case "F16":
    case "BF16": {
      const convert = dtype === "F16" ? fp32ToFp16 : fp32ToBf16;
      for (let i = 0; i < n; i++) {
        const h = convert(x[xOffset + i]);
        out[outOffset + 2 * i] = h & 0xff;
        out[outOffset + 2 * i + 1] = h >> 8;
      }
      break;
    }
    case "Q8_0": quantizeRowQ8_0(x, xOffset, n, out, outOffset); break;
    case "Q4_0": quantizeRowQ4_0(x, xOffset, n, out, outOffset); break;
    case "Q4_K": quantizeRowQ4_K(x, xOffset, n, out, outOffset); break;
    case "Q5_K": quantizeRowQ5_K(x, xOffset, n, out, outOffset); break;
    case "Q6_K": quantizeRowQ6_K(x, xOffset, n, out, outOffset); break;
  }
  return need;
}

function f16At(bytes: Uint8Array, p: number): number {
  return FP16_TABLE[bytes[p] | (bytes[p + 1] << 8)];
}

function putF16(out: Uint8Array, p: number, value: number): void {
  const h = fp32ToFp16(value);
  out[p] = h & 0xff;
  out[p + 1] = h >> 8;
}

// ---- 32-value block types: dequantizers (ggml-quants.c dequantize_row_q4_0 ... q8_0) ----

function dequantizeQ4_0(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 32; i++) {
    const p = off + i * 18;
    const d = f16At(b, p);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 2 + j];
      y[yo + i * 32 + j] = ((q & 0x0f) - 8) * d;
      y[yo + i * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

function dequantizeQ4_1(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 32; i++) {
    const p = off + i * 20;
    const d = f16At(b, p);
    const m = f16At(b, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 4 + j];
      y[yo + i * 32 + j] = Math.fround((q & 0x0f) * d) + m;
      y[yo + i * 32 + j + 16] = Math.fround((q >> 4) * d) + m;
    }
  }
}

function readU32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function dequantizeQ5_0(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 32; i++) {
    const p = off + i * 22;
    const d = f16At(b, p);
    const qh = readU32(b, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 6 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      y[yo + i * 32 + j] = (((q & 0x0f) | xh0) - 16) * d;
      y[yo + i * 32 + j + 16] = (((q >> 4) | xh1) - 16) * d;
    }
  }
}

function dequantizeQ5_1(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 32; i++) {
    const p = off + i * 24;
    const d = f16At(b, p);
    const m = f16At(b, p + 2);
    const qh = readU32(b, p + 4);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 8 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      y[yo + i * 32 + j] = Math.fround(((q & 0x0f) | xh0) * d) + m;
      y[yo + i * 32 + j + 16] = Math.fround(((q >> 4) | xh1) * d) + m;
    }
  }
}

function dequantizeQ8_0(b: Uint8Array, off: number, n: number, y: Float32Array, yo: number): void {
  for (let i = 0; i < n / 32; i++) {
    const p = off + i * 34;
    const d = f16At(b, p);
    for (let j = 0; j < 32; j++) y[yo + i * 32 + j] = ((b[p + 2 + j] << 24) >> 24) * d;
  }
}

// ---- reference quantizers (quantize_row_q8_0_ref, quantize_row_q4_0_ref) ----

/** ggml's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d). n must be a multiple of 32. */
export function quantizeRowQ8_0(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const fr = Math.fround;
  for (let i = 0; i < n / 32; i++) {
    const xb = xOffset + i * 32;
    const p = outOffset + i * 34;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xb + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(out, p, d);
    for (let j = 0; j < 32; j++) out[p + 2 + j] = roundf(fr(x[xb + j] * id)) & 0xff;
  }
}

/**
 * ggml's quantize_row_q4_0_ref: d = max / -8 where max is the value of largest magnitude (first one on
 * ties), q = min(15, trunc(x / d + 8.5)).
 */
export function quantizeRowQ4_0(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const fr = Math.fround;
  for (let i = 0; i < n / 32; i++) {
    const xb = xOffset + i * 32;
    const p = outOffset + i * 18;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xb + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    putF16(out, p, d);
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[xb + j] * id);
      const x1 = fr(x[xb + 16 + j] * id);
      const xi0 = Math.min(15, Math.trunc(fr(x0 + 8.5)));
      const xi1 = Math.min(15, Math.trunc(fr(x1 + 8.5)));
      out[p + 2 + j] = xi0 | (xi1 << 4);
    }
  }
}
