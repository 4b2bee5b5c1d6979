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

/** Bytes per element for the plain float types. */
export function elementSize(dtype: "F32" | "F16" | "BF16"): number {
  return dtype === "F32" ? 4 : 2;
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
