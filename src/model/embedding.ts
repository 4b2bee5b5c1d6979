// The token embedding table, kept on the main thread in its file dtype (read once, never widened):
// a lookup decodes just the rows a batch needs.
import { FileReader, readRows } from "./weight-io.js";
import { dequantizeRow, rowBytes } from "../formats/ggml-quants.js";
import type { WeightSlice } from "./weights.js";

export class Embedding {
  private readonly table: Uint8Array; // (vocab, C) in the file's dtype
  private readonly rowBytes: number;

  constructor(private readonly w: WeightSlice) {
    this.rowBytes = rowBytes(w.ref.dtype, w.cols);
    this.table = new Uint8Array(w.rows * this.rowBytes);
    const io = new FileReader();
    try {
      readRows(io, w, 0, w.rows, this.table, 0);
    } finally {
      io.close();
    }
  }

  get bytes(): number { return this.table.length; }

  /** Writes the embeddings of `ids` as rows of `out` (ids.length, C) starting at row `row`. */
  lookup(ids: readonly number[], out: Float32Array, row: number): void {
    const C = this.w.cols;
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.w.rows) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.w.rows - 1})`);
      }
      dequantizeRow(this.w.ref.dtype, this.table, id * this.rowBytes, C, out, (row + i) * C);
    });
  }
}
