import type { DType } from "../formats/tensor.js";
import { blockSize, type WritableDType } from "../formats/ggml-quants.js";

/** Weight types with a fast matrix kernel. */
const FAST: ReadonlySet<DType> = new Set<DType>(["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"]);

/** The types `quant` (--quant) may quantize float weights to at load. */
export const LOAD_QUANTS = ["q8_0", "q4_0"] as const;
export type LoadQuant = (typeof LOAD_QUANTS)[number];

/**
 * The type a matrix is held in: its file type when a kernel exists for it; with --quant, float weights
 * become that quant; other quantized types become the nearest fast type (Q4_1, Q5_0, Q5_1: Q8_0,
 * so nothing is lost; 2/3-bit K-quants Q4_K). A row length that is not whole blocks of the target keeps
 * a type that fits (Q8_0, else F32).
 */
export function computeDType(file: DType, cols: number, quant?: LoadQuant): DType {
  let target: DType = file;
  if (quant && (file === "F32" || file === "F16" || file === "BF16")) target = quant === "q8_0" ? "Q8_0" : "Q4_0";
  else if (!FAST.has(file)) target = file === "Q2_K" || file === "Q3_K" ? "Q4_K" : "Q8_0";
  if (cols % blockSize(target) !== 0) target = cols % 32 === 0 ? "Q8_0" : "F32";
  return target;
}

/**
 * The type the column slice [start, end) of a matrix with `cols` columns is held in (a partition's share
 * of dense / fc2): computeDType's, unless the slice cuts that type's blocks, which a K-quant (256 values)
 * does when more threads split the matrix than it has whole blocks for; then Q8_0 (32), else F32.
 */
export function computeSliceDType(file: DType, cols: number, start: number, end: number, quant?: LoadQuant): DType {
  const whole = computeDType(file, cols, quant);
  const block = blockSize(whole);
  if (start % block === 0 && end % block === 0) return whole;
  return start % 32 === 0 && end % 32 === 0 ? "Q8_0" : "F32";
}

export function isWritable(d: DType): d is WritableDType {
  return d === "F32" || d === "F16" || d === "BF16" || d === "Q8_0" || d === "Q4_0" || d === "Q4_K";
}
