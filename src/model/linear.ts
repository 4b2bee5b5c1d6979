// Picks the matrix kernel for a weight's dtype. Every kernel computes
// out(T, N) = [out +] bias + x(T, K) · W(N, K)^T; quantized ones use the scratch area to quantize x.
import type { DType } from "../formats/tensor.js";
import type { Kernels } from "../kernels/wasm.js";

export type LinearFn = (
  out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number,
) => void;

/** Scratch bytes the quantized kernels may need for T rows of K activations (int8 + per-block scales). */
export function linearScratchBytes(T: number, K: number): number {
  return T * (K + Math.ceil(K / 32) * 8) + 1024;
}

export function linearKernel(k: Kernels, dtype: DType): LinearFn {
  switch (dtype) {
    case "F32": return (o, x, w, b, T, K, N, a) => k.linear_f32(o, x, w, b, T, K, N, a);
    case "BF16": return (o, x, w, b, T, K, N, a) => k.linear_bf16(o, x, w, b, T, K, N, a);
    case "F16": return (o, x, w, b, T, K, N, a) => k.linear_f16(o, x, w, b, T, K, N, a);
    default:
      throw new Error(`no matrix kernel for ${dtype} weights`);
  }
}
