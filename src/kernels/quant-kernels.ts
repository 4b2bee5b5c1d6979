// Checked wrappers for the ggml-quantized linear kernels (assembly/linear-q8_0.ts, linear-q4_0.ts,
// linear-q4_k.ts, linear-q5_k.ts, linear-q6_k.ts), plus their plain TypeScript twins. Kept apart from wasm.ts (which
// holds the float kernels): give quantKernels() the exports and memory of an instance made by instantiateKernels().
//
// Contract: out (T, N) = [out +] [bias (N) +] x (T, K) · w (N, K)ᵀ, w in the kernels' layout: ggml's
// block layout (N rows of K / blockSize blocks) rewritten in place once after loading (toKernelLayout):
// Q8_0, Q4_0, Q4_K and Q5_K interleave full groups of 4 rows per block (Q5_K also regroups its 5-bit
// values), Q6_K regroups each super-block's 6-bit values. The kernel first quantizes x to int8 per
// 32 values into `scratch` (owned by the caller, quantScratchBytes(T, K) bytes, 16-byte aligned), then
// does integer dot products.
import { dequantizeRow, fp16ToFp32, fp32ToFp16, rowBytes } from "../formats/ggml-quants.js";

export const QUANT_DTYPES = ["Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"] as const;
export type QuantDType = (typeof QUANT_DTYPES)[number];

export type QuantLinearKernel = (
  out: number, x: number, w: number, bias: number, T: number, K: number, N: number,
  accumulate: number | boolean, scratch: number,
) => void;

export interface QuantKernelExports {
  linear_q8_0(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number): void;
  linear_q4_0(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number): void;
  linear_q4_k(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number): void;
  linear_q5_k(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number): void;
  linear_q6_k(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number): void;
  repack_q8_0(w: number, N: number, K: number, tmp: number): void;
  repack_q4_0(w: number, N: number, K: number, tmp: number): void;
  repack_q4_k(w: number, N: number, K: number, tmp: number): void;
  repack_q5_k(w: number, N: number, K: number, tmp: number): void;
  repack_q6_k(w: number, N: number, K: number, tmp: number): void;
}

export interface QuantKernels {
  linear_q8_0: QuantLinearKernel;
  linear_q4_0: QuantLinearKernel;
  linear_q4_k: QuantLinearKernel;
  linear_q5_k: QuantLinearKernel;
  linear_q6_k: QuantLinearKernel;
  /** The kernel for a weight type. */
  forType(dtype: QuantDType): QuantLinearKernel;
  /**
   * Rewrites N rows of K values of ggml blocks at w, in place, into the layout the kernel for dtype
   * takes. tmp: layoutScratchBytes(dtype, K) bytes.
   */
  toKernelLayout(dtype: QuantDType, w: number, N: number, K: number, tmp: number): void;
}

/** The repacking function of each type (no kernel takes ggml's layout as it is). */
const REPACK = { Q8_0: "repack_q8_0", Q4_0: "repack_q4_0", Q4_K: "repack_q4_k", Q5_K: "repack_q5_k", Q6_K: "repack_q6_k" } as const;

/** Scratch bytes toKernelLayout needs: 4 rows (none for Q6_K, which repacks each super-block in registers). */
export function layoutScratchBytes(dtype: QuantDType, K: number): number {
  return dtype === "Q6_K" ? 0 : 4 * rowBytes(dtype, K);
}

/** Values per weight block that K must be a multiple of. */
export function quantKAlignment(dtype: QuantDType): number {
  return dtype === "Q4_K" || dtype === "Q5_K" || dtype === "Q6_K" ? 256 : 32;
}

/**
 * Scratch bytes a quantized linear kernel needs for T tokens of K inputs: int16 activations (T·K·2)
 * plus two f32 per 32-value block (scale, scale·Σq), plus int8 activations (T·K):
 * T·K·3 + T·(K/32)·8 = 3.25·T·K.
 */
export function quantScratchBytes(T: number, K: number): number {
  return T * K * 3 + T * (K / 32) * 8;
}

/**
 * Binds the quantized kernels of a kernel instance (its exports and memory; reservedBytes from
 * Kernels.reservedBytes) with argument checks that throw RangeError naming the kernel and parameter.
 */
export function quantKernels(exports: object, memory: WebAssembly.Memory, reservedBytes: number): QuantKernels {
  const raw = exports as QuantKernelExports;
  const region = (kernel: string, name: string, ptr: number, bytes: number): void => {
    if (!Number.isInteger(ptr) || ptr < reservedBytes || ptr + bytes > memory.buffer.byteLength) {
      throw new RangeError(`${kernel}: ${name} = ${ptr} (+${bytes} bytes) is outside the usable memory [${reservedBytes}, ${memory.buffer.byteLength})`);
    }
  };
  const bind = (kernel: string, dtype: QuantDType, fn: QuantKernelExports["linear_q8_0"] | undefined): QuantLinearKernel => {
    if (typeof fn !== "function") throw new Error(`kernels.wasm has no ${kernel} (rebuild with node scripts/build-kernels.mjs)`);
    const align = quantKAlignment(dtype);
    return (out, x, w, bias, T, K, N, accumulate, scratch) => {
      for (const [name, v] of [["T", T], ["K", K], ["N", N]] as const) {
        if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`${kernel}: ${name} = ${v} must be a positive integer`);
      }
      if (K % align !== 0) throw new RangeError(`${kernel}: K = ${K} must be a multiple of ${align}`);
      region(kernel, "out", out, T * N * 4);
      region(kernel, "x", x, T * K * 4);
      region(kernel, "w", w, N * rowBytes(dtype, K));
      if (bias !== 0) region(kernel, "bias", bias, N * 4);
      region(kernel, "scratch", scratch, quantScratchBytes(T, K));
      if (x % 4 !== 0 || out % 4 !== 0 || scratch % 16 !== 0) {
        throw new RangeError(`${kernel}: out and x must be 4-byte aligned and scratch 16-byte aligned`);
      }
      fn(out, x, w, bias, T, K, N, accumulate ? 1 : 0, scratch);
    };
  };
  const k = {
    linear_q8_0: bind("linear_q8_0", "Q8_0", raw.linear_q8_0),
    linear_q4_0: bind("linear_q4_0", "Q4_0", raw.linear_q4_0),
    linear_q4_k: bind("linear_q4_k", "Q4_K", raw.linear_q4_k),
    linear_q5_k: bind("linear_q5_k", "Q5_K", raw.linear_q5_k),
    linear_q6_k: bind("linear_q6_k", "Q6_K", raw.linear_q6_k),
  };
  return {
    ...k,
    forType: (dtype) => {
      switch (dtype) {
        case "Q8_0": return k.linear_q8_0;
        case "Q4_0": return k.linear_q4_0;
        case "Q4_K": return k.linear_q4_k;
        case "Q5_K": return k.linear_q5_k;
        case "Q6_K": return k.linear_q6_k;
      }
    },
    toKernelLayout: (dtype, w, N, K, tmp) => {
      const name = REPACK[dtype];
      const repack = raw[name];
      if (typeof repack !== "function") throw new Error(`kernels.wasm has no ${name} (rebuild with node scripts/build-kernels.mjs)`);
      const align = quantKAlignment(dtype);
      if (K % align !== 0) throw new RangeError(`${name}: K = ${K} must be a multiple of ${align}`);
      region(name, "w", w, N * rowBytes(dtype, K));
      region(name, "tmp", tmp, layoutScratchBytes(dtype, K));
      repack(w, N, K, tmp);
    },
  };
}

// ---- Plain TypeScript twins (what the kernels compute, step by step) ----

export interface QuantizedActivations {
  /** (T, K) integers in [-127, 127]. */
  q: Int16Array;
  /** (T, K/32) block scales. */
  d: Float32Array;
}

/**
 * The kernels' activation quantization (= ggml's x86 quantize_row_q8_0): per 32 values d = amax/127 rounded
 * to f16, q = round-half-even(x · 127/amax).
 */
export function quantizeActivationsRef(x: Float32Array, T: number, K: number): QuantizedActivations {
  const nb = K / 32;
  const q = new Int16Array(T * K);
  const d = new Float32Array(T * nb);
  for (let i = 0; i < T * nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    d[i] = fp16ToFp32(fp32ToFp16(Math.fround(amax / 127))); // ggml keeps activation scales as f16
    const id = amax > 0 ? Math.fround(127 / amax) : 0;
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[i * 32 + j] * id);
      const r = Math.round(v);
      // round half to even, as f32x4.nearest
      q[i * 32 + j] = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
    }
  }
  return { q, d };
}

/**
 * Reference for the quantized kernels: the activations quantized as the kernels do, weights
 * dequantized exactly (ggml's dequantizer), sums in f64. Differs from the kernels only by f32 rounding.
 */
export function linearQuantRef(
  dtype: QuantDType, out: Float32Array, x: Float32Array, w: Uint8Array, bias: Float32Array | null,
  T: number, K: number, N: number, accumulate: boolean,
): void {
  const { q, d } = quantizeActivationsRef(x, T, K);
  const nb = K / 32;
  const rb = rowBytes(dtype, K);
  const row = new Float32Array(K);
  for (let n = 0; n < N; n++) {
    dequantizeRow(dtype, w, n * rb, K, row);
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let b = 0; b < nb; b++) {
        let sb = 0;
        for (let j = 0; j < 32; j++) sb += row[b * 32 + j] * q[t * K + b * 32 + j];
        s += sb * d[t * nb + b];
      }
      const o = t * N + n;
      out[o] = (accumulate ? out[o] : 0) + (bias ? bias[n] : 0) + s;
    }
  }
}
