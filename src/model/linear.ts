// Picks the matrix kernel for a weight's held dtype. Every kernel computes
// out(T, N) = [out +] bias + x(T, K) · W(N, K)^T; quantized ones quantize x into the scratch area first.
import type { DType } from "../formats/tensor.js";
import { groupScratchBytes, type Kernels } from "../kernels/wasm.js";
import {
  QUANT_DTYPES, layoutScratchBytes, quantKAlignment, quantKernels, quantScratchBytes, type QuantDType, type QuantKernels,
} from "../kernels/quant-kernels.js";

export type LinearFn = (
  out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number, scratch: number,
) => void;

/** Scratch bytes the quantized kernels need for T rows of K activations (and toKernelLayout for K columns). */
export function linearScratchBytes(T: number, K: number): number {
  const k = Math.ceil(K / 32) * 32;
  const layout = QUANT_DTYPES.map((d) => layoutScratchBytes(d, Math.ceil(k / quantKAlignment(d)) * quantKAlignment(d)));
  return Math.max(quantScratchBytes(T, k), ...layout, groupScratchBytes(k));
}

/** The quantized kernels of a kernel instance, bound once. */
const bound = new WeakMap<Kernels, QuantKernels>();
function quantOf(k: Kernels): QuantKernels {
  let q = bound.get(k);
  if (!q) bound.set(k, (q = quantKernels(k.raw, k.memory, k.reservedBytes)));
  return q;
}

function isQuant(dtype: DType): dtype is QuantDType {
  return (QUANT_DTYPES as readonly DType[]).includes(dtype);
}

/**
 * Puts a matrix just loaded in ggml's / the file's layout into the layout its kernel takes (in place;
 * the quantized types: see QuantKernels.toKernelLayout; BF16 and F16: Kernels.group_rows_16bit).
 * scratch: linearScratchBytes(T ≥ 1, cols) bytes.
 */
export function toKernelLayout(k: Kernels, dtype: DType, w: number, rows: number, cols: number, scratch: number): void {
  if (isQuant(dtype)) quantOf(k).toKernelLayout(dtype, w, rows, cols, scratch);
  else if (dtype === "BF16" || dtype === "F16") k.group_rows_16bit(w, rows, cols, scratch);
}

export function linearKernel(k: Kernels, dtype: DType): LinearFn {
  const quant = () => quantOf(k);
  switch (dtype) {
    case "F32": return (o, x, w, b, T, K, N, a) => k.linear_f32(o, x, w, b, T, K, N, a);
    case "BF16": return (o, x, w, b, T, K, N, a) => k.linear_bf16(o, x, w, b, T, K, N, a);
    case "F16": return (o, x, w, b, T, K, N, a) => k.linear_f16(o, x, w, b, T, K, N, a);
    case "Q8_0": return quant().linear_q8_0;
    case "Q4_0": return quant().linear_q4_0;
    case "Q4_K": return quant().linear_q4_k;
    case "Q5_K": return quant().linear_q5_k;
    case "Q6_K": return quant().linear_q6_k;
    default:
      throw new Error(`no matrix kernel for ${dtype} weights (they are converted at load)`);
  }
}
