// Bit-exactness against ggml itself: test/gguf/fixtures/ggml-oracle.bin holds an input, and the bytes and
// floats that node-llama-cpp's own libggml-base.so produced from it (ggml_quantize_chunk, the
// dequantize_row_* functions, ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref); see
// test/gguf/oracle/ggml-oracle.c. We compare our TypeScript and wasm quantizers with those bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dequantizeRow, quantizeRow, rowBytes } from "../../src/formats/ggml-quants.js";
import { quantizeKFast } from "../../src/formats/ggml-quants-wasm.js";
import type { DType } from "../../src/formats/tensor.js";

const FIXTURE = new URL("../../../test/gguf/fixtures/ggml-oracle.bin", import.meta.url);

function readFixture(): Map<string, Uint8Array> {
  const buf = readFileSync(FIXTURE);
  const out = new Map<string, Uint8Array>();
  let p = 0;
  while (p < buf.length) {
    const tagLen = buf.readUInt32LE(p);
    const tag = buf.subarray(p + 4, p + 4 + tagLen).toString("latin1");
    p += 4 + tagLen;
    const n = buf.readUInt32LE(p);
    out.set(tag, new Uint8Array(buf.subarray(p + 4, p + 4 + n)));
    p += 4 + n;
  }
  return out;
}

const fixture = readFixture();
const inputBytes = fixture.get("input")!;
const input = new Float32Array(inputBytes.buffer, inputBytes.byteOffset, inputBytes.length / 4);
const N = input.length;
const ROW = N / 2;

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `byte ${i}: ours ${a[i]}, ggml ${b[i]}`;
  return "none";
}

test("fixture holds 2048 inputs", () => {
  assert.equal(N, 2048);
});

for (const dtype of ["F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"] as const) {
  test(`quantizeRow ${dtype} writes the same bytes as ggml`, () => {
    const expected = fixture.get(dtype)!;
    const ours = new Uint8Array(2 * rowBytes(dtype, ROW));
    const rb = rowBytes(dtype, ROW);
    quantizeRow(dtype, input, 0, ROW, ours, 0);
    quantizeRow(dtype, input, ROW, ROW, ours, rb);
    assert.equal(ours.length, expected.length);
    assert.ok(Buffer.from(ours).equals(Buffer.from(expected)), `first difference: ${firstDifference(ours, expected)}`);
  });
}

const QUANT_TYPES: DType[] = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"];
for (const dtype of QUANT_TYPES) {
  test(`dequantizeRow ${dtype} gives ggml's floats bit for bit`, () => {
    const blocks = fixture.get(dtype)!;
    const expectedBytes = fixture.get(`${dtype}.dequant`)!;
    const expected = new Float32Array(expectedBytes.buffer, expectedBytes.byteOffset, N);
    const ours = new Float32Array(N);
    dequantizeRow(dtype, blocks, 0, N, ours, 0);
    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < N; i++) {
      if (!Object.is(ours[i], expected[i])) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    assert.equal(mismatches, 0, `first mismatch at ${first}: ours ${ours[first]}, ggml ${expected[first]}`);
  });
}

test("dequantized F16 and BF16 rows equal the inputs rounded by ggml", () => {
  for (const dtype of ["F16", "BF16"] as const) {
    const bytes = fixture.get(dtype)!;
    const ours = new Float32Array(N);
    dequantizeRow(dtype, bytes, 0, N, ours);
    // Round trip through our own encoder must give back the exact same half bits.
    const again = new Uint8Array(bytes.length);
    quantizeRow(dtype, ours, 0, N, again, 0);
    assert.ok(Buffer.from(again).equals(Buffer.from(bytes)), dtype);
  }
});

const K_TYPES = ["Q4_K", "Q5_K", "Q6_K"] as const;

/** 64 super-blocks of mixed scales: sin waves, spikes, negative offsets. */
function mixedScales(): Float32Array {
  const x = new Float32Array(256 * 64);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * (1 + (i % 256) / 64) * 10 ** ((i >> 8) % 5 - 3) + ((i % 61) === 0 ? 0.5 : 0) - ((i >> 8) % 3 === 0 ? 0.01 : 0);
  return x;
}

for (const dtype of K_TYPES) {
  test(`the wasm ${dtype} quantizer writes ggml's bytes too, and equals the TypeScript on other data`, () => {
    const expected = fixture.get(dtype)!;
    const ours = new Uint8Array(expected.length);
    quantizeKFast(dtype, input, 0, N, ours, 0);
    assert.ok(Buffer.from(ours).equals(Buffer.from(expected)), `first difference: ${firstDifference(ours, expected)}`);
    const x = mixedScales();
    const a = new Uint8Array(rowBytes(dtype, x.length)), b = new Uint8Array(a.length);
    quantizeKFast(dtype, x, 0, x.length, a, 0);
    quantizeRow(dtype, x, 0, x.length, b, 0);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `first difference: ${firstDifference(a, b)}`);
  });
}

test("quantizeKFast takes an offset input and output, runs past one wasm chunk, and refuses partial super-blocks", () => {
  // 2^18 values per wasm call: 1100 super-blocks take several calls.
  const n = 256 * 1100;
  const x = new Float32Array(n + 512);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 1.7) * 0.05 + ((i * 7919) % 1000) / 1e5;
  for (const dtype of K_TYPES) {
    const rb = rowBytes(dtype, n);
    const a = new Uint8Array(rb + 3), b = new Uint8Array(rb + 3);
    quantizeKFast(dtype, x, 256, n, a, 3);
    quantizeRow(dtype, x, 256, n, b, 3);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${dtype} first difference: ${firstDifference(a, b)}`);
    assert.throws(() => quantizeKFast(dtype, x, 0, 300, a, 0), /whole super-blocks of 256 values, got 300/);
  }
});

// 24 super-blocks of edge cases (see the oracle): negative maxima, zero, tiny, subnormal and f16-overflowing
// scales, rounding ties; then (16..23) super-blocks whose sub-blocks of 32 differ in kind (flat, one-hot,
// negative-only, offset, tiny beside large, NaN, inf), for the wasm Q4_K/Q5_K quantizer that runs four
// sub-blocks side by side, each in its own lane and taking its own branches. Quantized by ggml as 4 rows of 1536.
const edgeBytes = fixture.get("edge")!;
const edge = new Float32Array(edgeBytes.buffer, edgeBytes.byteOffset, edgeBytes.length / 4);

for (const dtype of K_TYPES) {
  test(`quantizeRow ${dtype} writes ggml's bytes on the edge cases, block by block`, () => {
    const expected = fixture.get(`edge.${dtype}`)!;
    const ours = new Uint8Array(expected.length);
    quantizeRow(dtype, edge, 0, edge.length, ours, 0);
    const bb = rowBytes(dtype, 256);
    const wrong: number[] = [];
    for (let b = 0; b < edge.length / 256; b++) {
      if (!Buffer.from(ours.subarray(b * bb, (b + 1) * bb)).equals(Buffer.from(expected.subarray(b * bb, (b + 1) * bb)))) wrong.push(b);
    }
    assert.deepEqual(wrong, [], `super-blocks that differ (first difference: ${firstDifference(ours, expected)})`);
  });
}

for (const dtype of K_TYPES) {
  test(`the wasm ${dtype} quantizer writes ggml's bytes on the edge cases`, () => {
    const expected = fixture.get(`edge.${dtype}`)!;
    const ours = new Uint8Array(expected.length);
    quantizeKFast(dtype, edge, 0, edge.length, ours, 0);
    assert.ok(Buffer.from(ours).equals(Buffer.from(expected)), `first difference: ${firstDifference(ours, expected)}`);
  });
}
