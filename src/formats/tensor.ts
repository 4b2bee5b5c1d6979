// What every weight-file reader hands to the model: where a tensor's bytes are, never the bytes themselves.
// The model decides which slices go where (tensor parallelism) and reads them straight into place.

/** Element types the engine can hold in memory. GGUF quantized types are added by the GGUF reader. */
export type DType = "F32" | "F16" | "BF16" | GgmlQuantType;

/** ggml block-quantized types (see formats/gguf). Kept here so TensorRef is one type for all formats. */
export type GgmlQuantType =
  | "Q8_0" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1"
  | "Q2_K" | "Q3_K" | "Q4_K" | "Q5_K" | "Q6_K";

export interface TensorRef {
  /** Name as found in the file (before any renaming). */
  name: string;
  /** Absolute path of the file holding the bytes. */
  file: string;
  dtype: DType;
  /** Shape in PyTorch order, e.g. a Linear weight is [out_features, in_features]. */
  shape: number[];
  /** Absolute byte offset of the first element inside `file`. */
  offset: number;
  /** Byte length of the whole tensor. */
  nbytes: number;
}

/** Elements per block and bytes per block of every type (ggml's block layouts; floats are 1-element blocks). */
export const BLOCK_LAYOUT: Record<DType, { elems: number; bytes: number }> = {
  F32: { elems: 1, bytes: 4 }, F16: { elems: 1, bytes: 2 }, BF16: { elems: 1, bytes: 2 },
  Q8_0: { elems: 32, bytes: 34 }, Q4_0: { elems: 32, bytes: 18 }, Q4_1: { elems: 32, bytes: 20 },
  Q5_0: { elems: 32, bytes: 22 }, Q5_1: { elems: 32, bytes: 24 },
  Q2_K: { elems: 256, bytes: 84 }, Q3_K: { elems: 256, bytes: 110 }, Q4_K: { elems: 256, bytes: 144 },
  Q5_K: { elems: 256, bytes: 176 }, Q6_K: { elems: 256, bytes: 210 },
};

/** Bytes per element for the plain float types. */
export function elementSize(dtype: "F32" | "F16" | "BF16"): number {
  return dtype === "F32" ? 4 : 2;
}

/** Bytes of `n` consecutive elements of a row (n must be a whole number of blocks). */
export function rowBytes(dtype: DType, n: number): number {
  const b = BLOCK_LAYOUT[dtype];
  if (n % b.elems !== 0) throw new Error(`${n} elements is not a whole number of ${dtype} blocks (${b.elems})`);
  return (n / b.elems) * b.bytes;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A weight-file problem: the message always names the file and the tensor or field. */
export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFormatError";
  }
}
