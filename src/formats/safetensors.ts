// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the raw tensor bytes.
// The JSON maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the
// start of the data section) plus an optional "__metadata__" map of strings.
// Spec: https://github.com/huggingface/safetensors (README "Format").
//
// We read only the header (weights are read later, straight into place, by whoever needs them) and
// write files by streaming each tensor's bytes, so a 5.56 GB model never sits in memory.
import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { ModelFormatError, elementSize, shapeSize, type TensorRef } from "./tensor.js";

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length is usually huge). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** safetensors dtype names we can load, and those we know but refuse (named in the error). */
const SUPPORTED_DTYPES = new Set(["F32", "F16", "BF16"]);
const KNOWN_DTYPES = new Set([
  "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
  "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64",
]);

function readExactly(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Reads the header of a .safetensors file and returns where every tensor's bytes are (offsets absolute
 * in the file). Never reads the tensor data. Throws ModelFormatError naming the file and tensor.
 */
export function readSafetensorsHeader(file: string): TensorRef[] {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === "ENOENT" ? `${file}: file not found` : `${file}: cannot open (${code ?? String(e)})`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) {
      throw new ModelFormatError(`${file}: not a safetensors file: ${fileSize} bytes, shorter than the 8-byte header length`);
    }
    const lenBuf = new Uint8Array(8);
    readExactly(fd, lenBuf, 0);
    const headerLen = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (headerLen > BigInt(fileSize - 8)) {
      throw new ModelFormatError(
        `${file}: header length ${headerLen} goes beyond the end of the file (${fileSize} bytes): truncated or not a safetensors file`,
      );
    }
    if (headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw new ModelFormatError(`${file}: header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes: not a safetensors file`);
    }
    const n = Number(headerLen);
    const headerBuf = new Uint8Array(n);
    readExactly(fd, headerBuf, 8);
    const dataStart = 8 + n;
    const dataLen = fileSize - dataStart;
    return parseHeader(file, headerBuf, dataStart, dataLen);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(file: string, headerBuf: Uint8Array, dataStart: number, dataLen: number): TensorRef[] {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBuf));
  } catch (e) {
    throw new ModelFormatError(`${file}: corrupt header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelFormatError(`${file}: corrupt header: expected a JSON object of tensors`);
  }
  const refs: TensorRef[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    refs.push(parseEntry(file, name, entry, dataStart));
  }
  checkLayout(file, refs, dataStart, dataLen);
  return refs;
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number): TensorRef {
  const where = `${file}: tensor ${name}`;
  if (typeof entry !== "object" || entry === null) throw new ModelFormatError(`${where}: corrupt header entry`);
  const e = entry as Record<string, unknown>;
  const dtype = e.dtype;
  if (typeof dtype !== "string") throw new ModelFormatError(`${where}: corrupt header entry: missing "dtype"`);
  if (!SUPPORTED_DTYPES.has(dtype)) {
    const what = KNOWN_DTYPES.has(dtype) ? "unsupported dtype" : "unknown dtype";
    throw new ModelFormatError(`${where}: ${what} ${dtype} (supported: F32, F16, BF16)`);
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ModelFormatError(`${where}: corrupt header entry: "shape" must be a list of non-negative integers`);
  }
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new ModelFormatError(`${where}: corrupt header entry: "data_offsets" must be [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = shapeSize(shape as number[]) * elementSize(dtype as "F32" | "F16" | "BF16");
  if (end < begin || end - begin !== expected) {
    throw new ModelFormatError(
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${shape.join(",")}] × ${dtype} needs ${expected}`,
    );
  }
  return { name, file, dtype: dtype as "F32" | "F16" | "BF16", shape: shape as number[], offset: dataStart + begin, nbytes: end - begin };
}

/** Tensors must lie inside the data section and must not overlap. */
function checkLayout(file: string, refs: TensorRef[], dataStart: number, dataLen: number): void {
  const sorted = [...refs].sort((a, b) => a.offset - b.offset || a.nbytes - b.nbytes);
  let prev: TensorRef | undefined;
  for (const r of sorted) {
    if (prev && r.offset < prev.offset + prev.nbytes) {
      throw new ModelFormatError(
        `${file}: tensor ${r.name} (data_offsets [${r.offset - dataStart}, ${r.offset - dataStart + r.nbytes}]) overlaps tensor ${prev.name} ` +
          `(data_offsets [${prev.offset - dataStart}, ${prev.offset - dataStart + prev.nbytes}])`,
      );
    }
    prev = r;
  }
  // The tensor that ends last tells whether the data section is complete.
  let last: TensorRef | undefined;
  for (const r of refs) if (!last || r.offset + r.nbytes > last.offset + last.nbytes) last = r;
  if (last && last.offset + last.nbytes > dataStart + dataLen) {
    const end = last.offset + last.nbytes - dataStart;
    throw new ModelFormatError(
      `${file}: truncated: tensor ${last.name} ends at byte ${end} of the data section but the data section has only ${dataLen} bytes ` +
        `(incomplete download?)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Writing

export type SafetensorsWriteDType = "F32" | "F16" | "BF16";

export interface SafetensorsTensorSource {
  name: string;
  dtype: SafetensorsWriteDType;
  shape: number[];
  /** Yields the tensor's bytes (little-endian, row-major) in chunks of any size; must total shape × dtype bytes. */
  chunks: () => Iterable<Uint8Array>;
}

/** Builds the JSON header (tensors laid out in the given order), padded with spaces to a multiple of 8 bytes. */
export function safetensorsHeader(
  tensors: ReadonlyArray<Pick<SafetensorsTensorSource, "name" | "dtype" | "shape">>,
  metadata?: Record<string, string>,
): { header: Uint8Array; dataBytes: number } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name in obj) throw new Error(`safetensors: duplicate or reserved tensor name ${t.name}`);
    const nbytes = shapeSize(t.shape) * elementSize(t.dtype);
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  // As the reference implementation does: pad with spaces so the data section starts 8-byte aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, dataBytes: offset };
}

/**
 * Streams tensors into `file`. Bytes go to `file.tmp-<pid>`, renamed to `file` only once complete, so an
 * interrupted run never leaves a file that looks whole. Returns the file size in bytes.
 */
export function writeSafetensors(file: string, tensors: SafetensorsTensorSource[], metadata?: Record<string, string>): number {
  const { header, dataBytes } = safetensorsHeader(tensors, metadata);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  let closed = false;
  let ok = false;
  try {
    let pos = 0;
    const put = (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, pos + done);
      pos += bytes.length;
    };
    put(header);
    for (const t of tensors) {
      const expected = shapeSize(t.shape) * elementSize(t.dtype);
      let written = 0;
      for (const chunk of t.chunks()) {
        written += chunk.length;
        if (written > expected) break;
        put(chunk);
      }
      if (written !== expected) {
        throw new Error(`writeSafetensors ${file}: tensor ${t.name} produced ${written} bytes, expected ${expected} (shape [${t.shape.join(",")}] × ${t.dtype})`);
      }
    }
    if (pos !== header.length + dataBytes) throw new Error(`writeSafetensors ${file}: wrote ${pos} bytes, expected ${header.length + dataBytes}`);
    closeSync(fd);
    closed = true;
    renameSync(tmp, file);
    ok = true;
    return pos;
  } finally {
    if (!ok) {
      if (!closed) closeSync(fd);
      try { unlinkSync(tmp); } catch { /* nothing to remove */ }
    }
  }
}
