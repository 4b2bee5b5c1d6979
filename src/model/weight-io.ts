// Reads pieces of weight tensors straight from their files into their final place (a worker's wasm
// memory), without ever holding a whole tensor or file in a JS buffer.
import { closeSync, openSync, readSync } from "node:fs";
import type { DType } from "../formats/tensor.js";
import type { WeightSlice } from "./weights.js";
import { dequantizeRow, quantizeRow, rowBytes, type WritableDType } from "../formats/ggml-quants.js";

const CHUNK = 64 * 1024 * 1024;

/** Keeps one descriptor per file open while a partition loads. */
export class FileReader {
  private fds = new Map<string, number>();
  private scratch = new Uint8Array(0);

  read(file: string, position: number, dst: Uint8Array, dstOffset: number, length: number): void {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openSync(file, "r");
      this.fds.set(file, fd);
    }
    let done = 0;
    while (done < length) {
      const n = readSync(fd, dst, dstOffset + done, Math.min(CHUNK, length - done), position + done);
      if (n <= 0) throw new Error(`${file}: unexpected end of file at byte ${position + done} (file truncated?)`);
      done += n;
    }
  }

  scratchBuffer(bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
    return this.scratch;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

function rowStride(s: WeightSlice): number {
  return rowBytes(s.ref.dtype, s.cols);
}

/** Rows [r0, r1) of a 2-D slice, in the file's dtype, to dst at dstOffset. Returns bytes written. */
export function readRows(io: FileReader, s: WeightSlice, r0: number, r1: number, dst: Uint8Array, dstOffset: number): number {
  const stride = rowStride(s);
  const len = (r1 - r0) * stride;
  io.read(s.ref.file, s.ref.offset + (s.rowStart + r0) * stride, dst, dstOffset, len);
  return len;
}

/** Columns [c0, c1) of every row of a 2-D slice, packed as (rows, c1 - c0), to dst. Returns bytes written. */
export function readColumns(io: FileReader, s: WeightSlice, c0: number, c1: number, dst: Uint8Array, dstOffset: number): number {
  const dtype = s.ref.dtype;
  const stride = rowStride(s);
  const skip = rowBytes(dtype, c0);
  const width = rowBytes(dtype, c1 - c0);
  // Read whole rows in batches (sequential I/O), keep the wanted columns of each.
  const rowsPerBatch = Math.max(1, Math.floor(CHUNK / 4 / stride));
  const buf = io.scratchBuffer(rowsPerBatch * stride);
  let out = dstOffset;
  for (let r = 0; r < s.rows; r += rowsPerBatch) {
    const n = Math.min(rowsPerBatch, s.rows - r);
    io.read(s.ref.file, s.ref.offset + (s.rowStart + r) * stride, buf, 0, n * stride);
    for (let i = 0; i < n; i++) {
      dst.set(buf.subarray(i * stride + skip, i * stride + skip + width), out);
      out += width;
    }
  }
  return out - dstOffset;
}

/** Elements [e0, e1) of a 1-D slice (bias, norm weight), converted to f32 into dst. */
export function readVectorF32(io: FileReader, s: WeightSlice, e0: number, e1: number, dst: Float32Array, dstIndex: number): void {
  const dtype: DType = s.ref.dtype;
  const esize = rowBytes(dtype, 1);
  const n = e1 - e0;
  const buf = io.scratchBuffer(n * esize);
  io.read(s.ref.file, s.ref.offset + (s.rowStart + e0) * esize, buf, 0, n * esize);
  dequantizeRow(dtype, buf, 0, n, dst, dstIndex);
}

/**
 * Rows [r0, r1), columns [c0, c1) of a 2-D slice, re-encoded as `target` (load-time quantization, or a
 * quantized type without a fast kernel converted to the nearest one that has). Whole rows are decoded
 * to f32, so any column range works as long as it is whole blocks of `target`.
 */
export function readConverted(
  io: FileReader, s: WeightSlice, r0: number, r1: number, c0: number, c1: number,
  target: WritableDType, dst: Uint8Array, dstOffset: number,
): number {
  const dtype = s.ref.dtype;
  const stride = rowStride(s);
  const rowsPerBatch = Math.max(1, Math.floor(CHUNK / 8 / stride));
  const raw = io.scratchBuffer(rowsPerBatch * stride);
  const row = new Float32Array(s.cols);
  let out = dstOffset;
  for (let r = r0; r < r1; r += rowsPerBatch) {
    const n = Math.min(rowsPerBatch, r1 - r);
    io.read(s.ref.file, s.ref.offset + (s.rowStart + r) * stride, raw, 0, n * stride);
    for (let i = 0; i < n; i++) {
      dequantizeRow(dtype, raw, i * stride, s.cols, row, 0);
      out += quantizeRow(target, row, c0, c1 - c0, dst, out);
    }
  }
  return out - dstOffset;
}
