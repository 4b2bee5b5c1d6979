import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensorsHeader, writeSafetensors } from "../../src/formats/safetensors.js";
import { ModelFormatError } from "../../src/formats/tensor.js";
import { tempDir } from "../helpers/temp-dir.js";

/** A safetensors file assembled by hand from the spec (8-byte LE length, JSON, data): independent of our writer. */
function handMade(header: object | string, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectFormatError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" should mention "${p}"`);
    return true;
  });
}

test("reads a hand-made file: names, dtypes, shapes and absolute offsets", () => {
  const dir = tempDir();
  const file = join(dir, "a.safetensors");
  // a: F32 [2] = 1, 2 ; b: BF16 [1,2] = 1.0, -2.0 (0x3f80, 0xc000)
  const data = new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0x80, 0x3f, 0x00, 0xc0]);
  const header = { __metadata__: { format: "pt" }, a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "BF16", shape: [1, 2], data_offsets: [8, 12] } };
  const bytes = handMade(header, data);
  writeFileSync(file, bytes);
  const refs = readSafetensorsHeader(file);
  const start = bytes.length - data.length;
  assert.deepEqual(refs.map((r) => [r.name, r.dtype, r.shape, r.offset, r.nbytes, r.file]), [
    ["a", "F32", [2], start, 8, file],
    ["b", "BF16", [1, 2], start + 8, 4, file],
  ]);
  const buf = readFileSync(file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  assert.equal(view.getFloat32(refs[0].offset + 4, true), 2);
  assert.equal(view.getUint16(refs[1].offset + 2, true), 0xc000);
});

test("writes what it reads back: streamed chunks, 8-byte aligned space-padded header, metadata", () => {
  const dir = tempDir();
  const file = join(dir, "w.safetensors");
  const a = Float32Array.from({ length: 10 }, (_, i) => i * 0.5 - 2);
  const b = Uint16Array.from({ length: 6 }, (_, i) => 0x3f80 + i); // raw bf16 bits
  const size = writeSafetensors(
    file,
    [
      // the F32 tensor arrives in three chunks of uneven sizes
      { name: "a", dtype: "F32", shape: [2, 5], chunks: function* () { const u = new Uint8Array(a.buffer); yield u.subarray(0, 3); yield u.subarray(3, 30); yield u.subarray(30); } },
      { name: "b", dtype: "BF16", shape: [6], chunks: () => [new Uint8Array(b.buffer)] },
    ],
    { format: "pt" },
  );
  const bytes = readFileSync(file);
  assert.equal(size, bytes.length);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0, "data section starts 8-byte aligned");
  const headerText = bytes.subarray(8, 8 + n).toString("utf8");
  assert.match(headerText, / *$/);
  assert.deepEqual(JSON.parse(headerText).__metadata__, { format: "pt" });
  assert.equal(bytes.length, 8 + n + 40 + 12);
  const refs = readSafetensorsHeader(file);
  const ra = refs.find((r) => r.name === "a")!, rb = refs.find((r) => r.name === "b")!;
  assert.deepEqual(ra.shape, [2, 5]);
  assert.deepEqual(new Float32Array(bytes.buffer.slice(bytes.byteOffset + ra.offset, bytes.byteOffset + ra.offset + ra.nbytes)), a);
  assert.deepEqual(new Uint16Array(bytes.buffer.slice(bytes.byteOffset + rb.offset, bytes.byteOffset + rb.offset + rb.nbytes)), b);
  assert.deepEqual(readdirSync(dir), ["w.safetensors"], "no temporary file left behind");
});

test("an interrupted write leaves no file that looks complete", () => {
  const dir = tempDir();
  const file = join(dir, "x.safetensors");
  assert.throws(() =>
    writeSafetensors(file, [
      { name: "a", dtype: "F32", shape: [1024], chunks: function* () { yield new Uint8Array(2048); throw new Error("disk on fire"); } },
    ]),
  /disk on fire/);
  assert.equal(existsSync(file), false);
  assert.deepEqual(readdirSync(dir), []);
  // a producer that yields the wrong number of bytes is refused the same way
  assert.throws(() => writeSafetensors(file, [{ name: "a", dtype: "F16", shape: [4], chunks: () => [new Uint8Array(6)] }]), /tensor a produced 6 bytes, expected 8/);
  assert.deepEqual(readdirSync(dir), []);
});

test("bad files: every error is a ModelFormatError naming the file and, where there is one, the tensor", () => {
  const dir = tempDir();
  const f = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const good = { t: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };

  const missing = join(dir, "missing.safetensors");
  expectFormatError(() => readSafetensorsHeader(missing), missing, "not found");

  const short = f("short.safetensors", new Uint8Array(5));
  expectFormatError(() => readSafetensorsHeader(short), short, "shorter than the 8-byte header length");

  const beyond = f("beyond.safetensors", handMade(good, new Uint8Array(16), 1_000_000n));
  expectFormatError(() => readSafetensorsHeader(beyond), beyond, "header length 1000000 goes beyond the end of the file");

  const corrupt = f("corrupt.safetensors", handMade('{"t": {"dtype": "F32", "shape": [2', new Uint8Array(16)));
  expectFormatError(() => readSafetensorsHeader(corrupt), corrupt, "corrupt header");

  const inconsistent = f("inconsistent.safetensors", handMade({ t: { dtype: "F32", shape: [2, 3], data_offsets: [0, 16] } }, new Uint8Array(24)));
  expectFormatError(() => readSafetensorsHeader(inconsistent), inconsistent, "tensor t", "[0, 16]", "needs 24");

  const overlap = f("overlap.safetensors", handMade({
    a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
    b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
  }, new Uint8Array(16)));
  expectFormatError(() => readSafetensorsHeader(overlap), overlap, "overlaps", "tensor b", "tensor a");

  const i64 = f("i64.safetensors", handMade({ ...good, position_ids: { dtype: "I64", shape: [2], data_offsets: [16, 32] } }, new Uint8Array(32)));
  expectFormatError(() => readSafetensorsHeader(i64), i64, "tensor position_ids", "unsupported dtype I64");

  const f8 = f("f8.safetensors", handMade({ w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)));
  expectFormatError(() => readSafetensorsHeader(f8), f8, "tensor w", "unsupported dtype F8_E4M3");

  // A shard cut short, as an interrupted download leaves it: the last tensor's end is past the data.
  const truncated = join(dir, "truncated.safetensors");
  writeSafetensors(truncated, [
    { name: "first", dtype: "F32", shape: [8], chunks: () => [new Uint8Array(32)] },
    { name: "last", dtype: "F32", shape: [8], chunks: () => [new Uint8Array(32)] },
  ]);
  truncateSync(truncated, readFileSync(truncated).length - 10);
  expectFormatError(() => readSafetensorsHeader(truncated), truncated, "truncated", "tensor last", "ends at byte 64", "only 54 bytes");
});
