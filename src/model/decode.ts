// Decodes n elements of any supported type to f32: used for the small tensors kept in f32 (norms,
// biases) and for embedding rows looked up on the main thread.
import type { DType } from "../formats/tensor.js";
import { bf16ToF32Array, f16ToF32Array } from "../kernels/reference.js";
import { dequantizeRow } from "../formats/ggml-quants.js";

export function decodeToF32(dtype: DType, bytes: Uint8Array, byteOffset: number, n: number, out: Float32Array, outIndex: number): void {
  const at = bytes.byteOffset + byteOffset;
  switch (dtype) {
    case "F32": {
      const src = at % 4 === 0
        ? new Float32Array(bytes.buffer, at, n)
        : new Float32Array(bytes.slice(byteOffset, byteOffset + 4 * n).buffer);
      out.set(src, outIndex);
      return;
    }
    case "F16":
    case "BF16": {
      const src = at % 2 === 0
        ? new Uint16Array(bytes.buffer, at, n)
        : new Uint16Array(bytes.slice(byteOffset, byteOffset + 2 * n).buffer);
      const dst = out.subarray(outIndex, outIndex + n);
      if (dtype === "F16") f16ToF32Array(src, dst);
      else bf16ToF32Array(src, dst);
      return;
    }
    default:
      dequantizeRow(dtype, bytes, byteOffset, n, out, outIndex);
  }
}
