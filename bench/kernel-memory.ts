// What the kernel micro-benchmarks share: a bump allocator over a kernel memory, and weight rows of each
// benchmarked type written into it.
import { fp32ToFp16, quantizeRow, rowBytes } from "../src/formats/ggml-quants.js";

export type BenchWeightType = "Q8_0" | "Q4_0" | "Q4_K" | "Q5_K" | "Q6_K" | "BF16";

/** Allocation at `start` onwards in 64-byte steps (plus `gap` bytes between allocations), growing the memory. */
export function bumpAllocator(memory: WebAssembly.Memory, start: number, gap = 0): (bytes: number) => number {
  let top = start;
  return (bytes) => {
    const p = top;
    top += Math.ceil(bytes / 64) * 64 + gap;
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
    return p;
  };
}

/** Bytes of N rows of K values of `dtype` (ggml layout). */
export function weightBytes(dtype: BenchWeightType, N: number, K: number): number {
  return dtype === "BF16" ? N * K * 2 : N * rowBytes(dtype, K);
}

/**
 * Writes N rows of K values into dst (ggml layout): wf (N·K floats) encoded as dtype. Q6_K and Q5_K
 * have no quantizer here, so their rows are random valid blocks: random values and scales, and the f16
 * d (and dmin) a quantizer would give weights of this magnitude (Q6_K: an f16 subnormal, as in real files).
 */
export function writeWeights(dtype: BenchWeightType, dst: Uint8Array, N: number, K: number, wf: Float32Array, rand: () => number): void {
  if (dtype === "Q6_K") {
    const dBits = fp32ToFp16(0.025 / 32 / 128);
    for (let p = 0; p < dst.length; p += 210) {
      for (let i = 0; i < 208; i++) dst[p + i] = Math.floor((rand() + 0.5) * 256);
      dst[p + 208] = dBits & 0xff;
      dst[p + 209] = dBits >> 8;
    }
    return;
  }
  if (dtype === "Q5_K") {
    const dBits = fp32ToFp16(0.025 / 31 / 63), dminBits = fp32ToFp16(0.025 / 63);
    for (let p = 0; p < dst.length; p += 176) {
      for (let i = 4; i < 176; i++) dst[p + i] = Math.floor((rand() + 0.5) * 256);
      dst[p] = dBits & 0xff;
      dst[p + 1] = dBits >> 8;
      dst[p + 2] = dminBits & 0xff;
      dst[p + 3] = dminBits >> 8;
    }
    return;
  }
  const rb = dtype === "BF16" ? K * 2 : rowBytes(dtype, K);
  for (let n = 0; n < N; n++) quantizeRow(dtype, wf, n * K, K, dst, n * rb);
}
