// Streams a GGUF (version 3) file: header, tensor table, then each tensor's bytes as its generator
// yields them, padded to the alignment exactly as llama.cpp's gguf.cpp expects (each tensor's offset is
// the previous offset + its size rounded up to the alignment). The bytes go to `<file>.tmp-<pid>`,
// renamed over `file` only after the last byte: an interrupted write never leaves a complete-looking file,
// and a failed or aborted one removes its temporary file.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { checkOutputFile, yieldToEventLoop } from "./output-file.js";
import type { DType } from "./tensor.js";
import { GGML_TYPES, ggmlTypeInfo } from "./ggml-quants.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_TYPE_IDS } from "./gguf-file.js";
import type { GgufScalar, GgufScalarType, GgufValue } from "./gguf-file.js";

export interface GgufTensorToWrite {
  /** GGUF name, e.g. "blk.0.attn_qkv.weight". */
  name: string;
  dtype: DType;
  /** PyTorch order ([rows, cols]); written reversed as GGUF ne. */
  shape: number[];
  /** Produces exactly the tensor's bytes, in order, in chunks of any size. */
  data: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

export interface GgufToWrite {
  metadata: Iterable<[string, GgufValue]>;
  tensors: GgufTensorToWrite[];
  /** Defaults to general.alignment from the metadata, else 32. */
  alignment?: number;
}

export interface GgufWriteOptions {
  /** Stops the write (checked between chunks); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Bytes written between turns of the event loop, so that an abort (e.g. on Ctrl-C) is seen promptly. */
const YIELD_BYTES = 16 * 2 ** 20;

/** Byte size of a tensor of `dtype` and PyTorch `shape` (rows must hold whole blocks). */
export function tensorBytes(dtype: DType, shape: readonly number[]): number {
  const { blockSize, typeSize } = ggmlTypeInfo(dtype);
  const cols = shape[shape.length - 1] ?? 1;
  if (cols % blockSize !== 0) throw new Error(`${dtype} tensors need rows of a multiple of ${blockSize} values, got ${cols}`);
  return (shape.reduce((a, b) => a * b, 1) / blockSize) * typeSize;
}

class HeaderBuilder {
  private parts: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufScalarType, v: GgufScalar, key: string): void {
    const b = Buffer.alloc(8);
    const bad = (): never => { throw new Error(`GGUF metadata "${key}": ${JSON.stringify(v)} is not a valid ${type}`); };
    if (type === "string") {
      if (typeof v !== "string") bad();
      return this.string(v as string);
    }
    if (type === "bool") {
      if (typeof v !== "boolean") bad();
      return this.push(Buffer.from([v ? 1 : 0]));
    }
    if (typeof v !== "number" || Number.isNaN(v) && type !== "f32" && type !== "f64") bad();
    const n = v as number;
    switch (type) {
      case "u8": b.writeUInt8(n); return this.push(b.subarray(0, 1));
      case "i8": b.writeInt8(n); return this.push(b.subarray(0, 1));
      case "u16": b.writeUInt16LE(n); return this.push(b.subarray(0, 2));
      case "i16": b.writeInt16LE(n); return this.push(b.subarray(0, 2));
      case "u32": b.writeUInt32LE(n); return this.push(b.subarray(0, 4));
      case "i32": b.writeInt32LE(n); return this.push(b.subarray(0, 4));
      case "f32": b.writeFloatLE(n); return this.push(b.subarray(0, 4));
      case "u64": b.writeBigUInt64LE(BigInt(n)); return this.push(b);
      case "i64": b.writeBigInt64LE(BigInt(n)); return this.push(b);
      case "f64": b.writeDoubleLE(n); return this.push(b);
    }
  }
  value(key: string, v: GgufValue): void {
    this.u32(GGUF_TYPE_IDS[v.type]);
    if (v.type !== "array") return this.scalar(v.type, v.value, key);
    this.u32(GGUF_TYPE_IDS[v.itemType]);
    this.u64(v.value.length);
    for (const item of v.value) this.scalar(v.itemType, item, key);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    if (pad) this.push(Buffer.alloc(pad));
  }
  concat(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done);
}

export async function writeGguf(file: string, g: GgufToWrite, options: GgufWriteOptions = {}): Promise<void> {
  checkOutputFile(file, "GGUF output");
  const { signal } = options;
  const metadata = new Map<string, GgufValue>(g.metadata);
  const fromMeta = metadata.get("general.alignment");
  const alignment = g.alignment ?? (fromMeta?.type === "u32" ? fromMeta.value : GGUF_DEFAULT_ALIGNMENT);
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new Error(`GGUF alignment ${alignment} is not a power of two`);
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) metadata.set("general.alignment", { type: "u32", value: alignment });

  const h = new HeaderBuilder();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(g.tensors.length);
  h.u64(metadata.size);
  for (const [key, v] of metadata) {
    h.string(key);
    h.value(key, v);
  }
  const sizes: number[] = [];
  let offset = 0;
  const names = new Set<string>();
  for (const t of g.tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor "${t.name}" listed twice`);
    names.add(t.name);
    if (!GGML_TYPES.some((x) => x.dtype === t.dtype)) throw new Error(`GGUF tensor "${t.name}": unknown dtype ${t.dtype}`);
    const nbytes = tensorBytes(t.dtype, t.shape);
    h.string(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(ggmlTypeInfo(t.dtype).ggmlType);
    h.u64(offset);
    sizes.push(nbytes);
    offset += Math.ceil(nbytes / alignment) * alignment;
  }
  h.padTo(alignment);

  signal?.throwIfAborted();
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  let ok = false;
  try {
    try {
      writeAll(fd, h.concat());
      let sinceYield = 0;
      for (let i = 0; i < g.tensors.length; i++) {
        const t = g.tensors[i];
        let written = 0;
        for await (const chunk of t.data()) {
          if (written + chunk.length > sizes[i]) {
            throw new Error(`GGUF tensor "${t.name}": data generator produced more than the ${sizes[i]} bytes of ${t.dtype} [${t.shape}]`);
          }
          writeAll(fd, chunk);
          written += chunk.length;
          sinceYield += chunk.length;
          if (sinceYield >= YIELD_BYTES) {
            sinceYield = 0;
            await yieldToEventLoop();
          }
          signal?.throwIfAborted();
        }
        if (written !== sizes[i]) {
          throw new Error(`GGUF tensor "${t.name}": data generator produced ${written} bytes, expected ${sizes[i]} for ${t.dtype} [${t.shape}]`);
        }
        const pad = (alignment - (written % alignment)) % alignment;
        if (pad) writeAll(fd, new Uint8Array(pad));
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    ok = true;
  } finally {
    if (!ok) {
      try { unlinkSync(tmp); } catch { /* already gone */ }
    }
  }
}
