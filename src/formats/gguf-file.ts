// The GGUF container (ggml/docs/gguf.md, ggml/src/gguf.cpp), versions 2 and 3, little-endian:
//   "GGUF" magic, u32 version, u64 tensor_count, u64 kv_count,
//   kv_count × { string key, u32 value_type, value }       (arrays: u32 item_type, u64 count, items)
//   tensor_count × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (default 32), then the tensor data; offsets are relative to its start.
// Strings are u64 length + UTF-8 bytes. ne[0] is the fastest-varying dimension (a row's length).
// This file reads and validates the container only; gguf.ts gives it Phi-2 meaning.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ModelFormatError } from "./tensor.js";
import type { DType } from "./tensor.js";
import { describeGgmlType, dtypeFromGgmlType, ggmlTypeInfo } from "./ggml-quants.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

export type GgufScalarType =
  | "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" | "f32" | "f64" | "bool" | "string";

/** GGUF value type numbers (gguf_type). */
export const GGUF_TYPE_IDS: Record<GgufScalarType | "array", number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const TYPE_BY_ID = new Map<number, GgufScalarType | "array">(
  Object.entries(GGUF_TYPE_IDS).map(([k, v]) => [v, k as GgufScalarType | "array"]),
);
export function ggufTypeFromId(id: number): GgufScalarType | "array" | undefined {
  return TYPE_BY_ID.get(id);
}

export type GgufScalar = number | boolean | string;

/** A metadata value with its GGUF type (needed to write it back unchanged). u64/i64 are held as numbers. */
export type GgufValue =
  | { type: Exclude<GgufScalarType, "bool" | "string">; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufScalarType; value: GgufScalar[] };

export interface GgufTensorInfo {
  name: string;
  dtype: DType;
  /** GGUF order: ne[0] is the row length. */
  ne: number[];
  /** Offset inside the data section. */
  relativeOffset: number;
  /** Absolute offset in the file. */
  offset: number;
  nbytes: number;
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

/** Sequential reader over a file descriptor with a refillable buffer; every read checks the end of file. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0;

  constructor(private readonly fd: number, readonly size: number, private readonly file: string) {}

  private ensure(n: number, what: string): number {
    if (this.pos + n > this.size) {
      throw new ModelFormatError(
        `${this.file}: truncated GGUF header: ${what} needs ${n} bytes at offset ${this.pos}, but the file ends at ${this.size}`,
      );
    }
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, this.buf, got, len - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    if (got < n) throw new ModelFormatError(`${this.file}: could not read ${what} at offset ${this.pos}`);
    this.bufStart = this.pos;
    return 0;
  }

  u8(what: string): number { const r = this.ensure(1, what); this.pos += 1; return this.buf.readUInt8(r); }
  i8(what: string): number { const r = this.ensure(1, what); this.pos += 1; return this.buf.readInt8(r); }
  u16(what: string): number { const r = this.ensure(2, what); this.pos += 2; return this.buf.readUInt16LE(r); }
  i16(what: string): number { const r = this.ensure(2, what); this.pos += 2; return this.buf.readInt16LE(r); }
  u32(what: string): number { const r = this.ensure(4, what); this.pos += 4; return this.buf.readUInt32LE(r); }
  i32(what: string): number { const r = this.ensure(4, what); this.pos += 4; return this.buf.readInt32LE(r); }
  f32(what: string): number { const r = this.ensure(4, what); this.pos += 4; return this.buf.readFloatLE(r); }
  f64(what: string): number { const r = this.ensure(8, what); this.pos += 8; return this.buf.readDoubleLE(r); }
  u64(what: string): number {
    const r = this.ensure(8, what);
    this.pos += 8;
    const v = this.buf.readBigUInt64LE(r);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ModelFormatError(`${this.file}: ${what} at offset ${this.pos - 8} is too large (${v})`);
    }
    return Number(v);
  }
  i64(what: string): number {
    const r = this.ensure(8, what);
    this.pos += 8;
    return Number(this.buf.readBigInt64LE(r));
  }
  string(what: string): string {
    const len = this.u64(`${what} length`);
    if (len > this.size - this.pos) {
      throw new ModelFormatError(
        `${this.file}: truncated GGUF header: ${what} claims ${len} bytes at offset ${this.pos}, but the file ends at ${this.size}`,
      );
    }
    const r = this.ensure(len, what);
    this.pos += len;
    return this.buf.toString("utf8", r, r + len);
  }
}

function readScalar(c: Cursor, type: GgufScalarType, what: string): GgufScalar {
  switch (type) {
    case "u8": return c.u8(what);
    case "i8": return c.i8(what);
    case "u16": return c.u16(what);
    case "i16": return c.i16(what);
    case "u32": return c.u32(what);
    case "i32": return c.i32(what);
    case "u64": return c.u64(what);
    case "i64": return c.i64(what);
    case "f32": return c.f32(what);
    case "f64": return c.f64(what);
    case "bool": {
      const b = c.u8(what);
      return b !== 0;
    }
    case "string": return c.string(what);
  }
}

const SCALAR_BYTES: Partial<Record<GgufScalarType, number>> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8,
};

function readValue(c: Cursor, file: string, key: string): GgufValue {
  const typeId = c.u32(`type of key "${key}"`);
  const type = ggufTypeFromId(typeId);
  if (type === undefined) throw new ModelFormatError(`${file}: key "${key}" has invalid GGUF value type ${typeId}`);
  if (type !== "array") return { type, value: readScalar(c, type, `value of "${key}"`) } as GgufValue;
  const itemId = c.u32(`item type of array "${key}"`);
  const itemType = ggufTypeFromId(itemId);
  if (itemType === undefined || itemType === "array") {
    throw new ModelFormatError(`${file}: array "${key}" has unsupported item type ${itemId}`);
  }
  const count = c.u64(`length of array "${key}"`);
  const minBytes = SCALAR_BYTES[itemType] ?? 8; // strings take at least their 8-byte length
  if (count * minBytes > c.size - c.pos) {
    throw new ModelFormatError(
      `${file}: truncated GGUF header: array "${key}" claims ${count} items at offset ${c.pos}, more than the file holds`,
    );
  }
  const value: GgufScalar[] = new Array(count);
  for (let i = 0; i < count; i++) value[i] = readScalar(c, itemType, `item ${i} of "${key}"`);
  return { type: "array", itemType, value };
}

/** Reads and validates a GGUF file's header: metadata, tensor table, data layout. */
export function readGgufFile(file: string): GgufFile {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const c = new Cursor(fd, size, file);
    if (size < 4) throw new ModelFormatError(`${file}: not a GGUF file (only ${size} bytes)`);
    const magic = c.u32("magic");
    if (magic !== GGUF_MAGIC) {
      const shown = Buffer.alloc(4);
      shown.writeUInt32LE(magic);
      throw new ModelFormatError(`${file}: not a GGUF file (magic ${JSON.stringify(shown.toString("latin1"))}, expected "GGUF")`);
    }
    const version = c.u32("version");
    // A big-endian file (convert_hf_to_gguf.py --bigendian) reads here as version << 24: as llama.cpp, say so.
    if (version !== 0 && (version & 0xffff) === 0) {
      throw new ModelFormatError(`${file}: a big-endian GGUF file (version ${version >>> 24} byte-swapped); only little-endian files are supported`);
    }
    if (version !== 2 && version !== 3) {
      throw new ModelFormatError(`${file}: unsupported GGUF version ${version} (supported: 2, 3)`);
    }
    const tensorCount = c.u64("tensor count");
    const kvCount = c.u64("metadata count");
    // Each kv needs >= 12 bytes, each tensor info >= 28: a larger count cannot fit in the file.
    if (kvCount * 12 > size || tensorCount * 28 > size) {
      throw new ModelFormatError(`${file}: truncated GGUF header: ${kvCount} metadata entries and ${tensorCount} tensors cannot fit in ${size} bytes`);
    }
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.string(`key ${i}`);
      if (metadata.has(key)) throw new ModelFormatError(`${file}: duplicate metadata key "${key}"`);
      metadata.set(key, readValue(c, file, key));
    }
    const alignValue = metadata.get("general.alignment");
    let alignment = GGUF_DEFAULT_ALIGNMENT;
    if (alignValue !== undefined) {
      if (alignValue.type !== "u32" || alignValue.value === 0 || (alignValue.value & (alignValue.value - 1)) !== 0) {
        throw new ModelFormatError(`${file}: general.alignment must be a u32 power of two, found ${JSON.stringify(alignValue)}`);
      }
      alignment = alignValue.value;
    }
    const infos: Omit<GgufTensorInfo, "offset">[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string(`name of tensor ${i}`);
      if (names.has(name)) throw new ModelFormatError(`${file}: duplicate tensor name "${name}"`);
      names.add(name);
      const nDims = c.u32(`dimension count of tensor "${name}"`);
      if (nDims < 1 || nDims > 4) throw new ModelFormatError(`${file}: tensor "${name}" has ${nDims} dimensions (1 to 4 allowed)`);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(c.u64(`dimension ${d} of tensor "${name}"`));
      const typeId = c.u32(`type of tensor "${name}"`);
      const dtype = dtypeFromGgmlType(typeId);
      if (dtype === undefined) {
        throw new ModelFormatError(`${file}: tensor "${name}" has unsupported ggml ${describeGgmlType(typeId)}`);
      }
      const relativeOffset = c.u64(`data offset of tensor "${name}"`);
      if (relativeOffset % alignment !== 0) {
        throw new ModelFormatError(`${file}: tensor "${name}" data offset ${relativeOffset} is not a multiple of the alignment ${alignment}`);
      }
      const { blockSize, typeSize } = ggmlTypeInfo(dtype);
      if (ne[0] % blockSize !== 0) {
        throw new ModelFormatError(`${file}: tensor "${name}" rows of ${ne[0]} values are not a whole number of ${dtype} blocks (${blockSize})`);
      }
      const count = ne.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(count)) throw new ModelFormatError(`${file}: tensor "${name}" shape [${ne}] is too large`);
      infos.push({ name, dtype, ne, relativeOffset, nbytes: (count / blockSize) * typeSize });
    }
    const dataOffset = tensorCount > 0 ? Math.ceil(c.pos / alignment) * alignment : c.pos;
    const tensors = infos.map((t) => {
      const offset = dataOffset + t.relativeOffset;
      if (offset + t.nbytes > size) {
        throw new ModelFormatError(
          `${file}: tensor "${t.name}" data (bytes ${offset}..${offset + t.nbytes}) lies outside the file (${size} bytes): truncated or corrupt`,
        );
      }
      return { ...t, offset };
    });
    return { file, version, metadata, tensors, alignment, dataOffset, fileSize: size };
  } finally {
    closeSync(fd);
  }
}
