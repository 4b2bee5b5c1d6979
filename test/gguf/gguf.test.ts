// GGUF round trips through our writer and reader, the phi2 tensor naming, and every bad-input error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGguf, readGgufFile, hfNameOfGgufTensor, ggufNameOfHfTensor, isGgufFile } from "../../src/formats/gguf.js";
import type { GgufValue } from "../../src/formats/gguf.js";
import { writeGguf, type GgufTensorToWrite } from "../../src/formats/gguf-writer.js";
import { dequantizeRow, rowBytes } from "../../src/formats/ggml-quants.js";
import { ModelFormatError } from "../../src/formats/tensor.js";

const dir = mkdtempSync(join(tmpdir(), "phi2-gguf-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// A minimal phi2 model: C = 64, 2 heads of 32 (rotary 16), 1 layer, F = 128, V = 96.
const C = 64, F = 128, V = 96, L = 1;

function f32Bytes(values: number[] | Float32Array): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
function ramp(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + scale) * scale;
  return a;
}

interface MiniOptions {
  arch?: string;
  drop?: string;
  shapes?: Record<string, number[]>;
  fused?: boolean;
  extraMeta?: Array<[string, GgufValue]>;
}

function miniMetadata(o: MiniOptions): Array<[string, GgufValue]> {
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const tokens = Array.from({ length: V }, (_, i) => (i < 26 ? String.fromCharCode(97 + i) : i === V - 1 ? "<|endoftext|>" : `t${i}`));
  const types = tokens.map((_, i) => (i === V - 1 ? 3 : i === V - 2 ? 4 : 1));
  tokens[V - 2] = "  ";
  return [
    ["general.architecture", { type: "string", value: o.arch ?? "phi2" }],
    ["general.name", { type: "string", value: "mini" }],
    ["phi2.context_length", u32(256)],
    ["phi2.embedding_length", u32(C)],
    ["phi2.feed_forward_length", u32(F)],
    ["phi2.block_count", u32(L)],
    ["phi2.attention.head_count", u32(2)],
    ["phi2.attention.head_count_kv", u32(2)],
    ["phi2.attention.layer_norm_epsilon", { type: "f32", value: 1e-5 }],
    ["phi2.rope.dimension_count", u32(16)],
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types }],
    ["tokenizer.ggml.merges", { type: "array", itemType: "string", value: ["a b", "c d"] }],
    ["tokenizer.ggml.bos_token_id", u32(V - 1)],
    ["tokenizer.ggml.eos_token_id", u32(V - 1)],
    ...(o.extraMeta ?? []),
  ];
}

function miniTensors(o: MiniOptions): GgufTensorToWrite[] {
  const spec: Array<[string, number[]]> = [
    ["token_embd.weight", [V, C]],
    ["blk.0.attn_norm.weight", [C]], ["blk.0.attn_norm.bias", [C]],
    ...(o.fused
      ? ([["blk.0.attn_qkv.weight", [3 * C, C]], ["blk.0.attn_qkv.bias", [3 * C]]] as Array<[string, number[]]>)
      : ([
          ["blk.0.attn_q.weight", [C, C]], ["blk.0.attn_q.bias", [C]],
          ["blk.0.attn_k.weight", [C, C]], ["blk.0.attn_k.bias", [C]],
          ["blk.0.attn_v.weight", [C, C]], ["blk.0.attn_v.bias", [C]],
        ] as Array<[string, number[]]>)),
    ["blk.0.attn_output.weight", [C, C]], ["blk.0.attn_output.bias", [C]],
    ["blk.0.ffn_up.weight", [F, C]], ["blk.0.ffn_up.bias", [F]],
    ["blk.0.ffn_down.weight", [C, F]], ["blk.0.ffn_down.bias", [C]],
    ["output_norm.weight", [C]], ["output_norm.bias", [C]],
    ["output.weight", [V, C]], ["output.bias", [V]],
  ];
  return spec
    .filter(([name]) => name !== o.drop)
    .map(([name, shape], k) => {
      const s = o.shapes?.[name] ?? shape;
      const n = s.reduce((a, b) => a * b, 1);
      return { name, dtype: "F32" as const, shape: s, data: () => [f32Bytes(ramp(n, k + 1))] };
    });
}

async function writeMini(name: string, o: MiniOptions = {}): Promise<string> {
  const file = join(dir, name);
  await writeGguf(file, { metadata: miniMetadata(o), tensors: miniTensors(o) });
  return file;
}

test("phi2 names map to Hugging Face names and back", () => {
  const pairs: Array<[string, string]> = [
    ["token_embd.weight", "model.embed_tokens.weight"],
    ["output_norm.bias", "model.final_layernorm.bias"],
    ["output.weight", "lm_head.weight"],
    ["blk.7.attn_norm.weight", "model.layers.7.input_layernorm.weight"],
    ["blk.0.attn_qkv.bias", "model.layers.0.self_attn.qkv_proj.bias"],
    ["blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight"],
    ["blk.31.attn_output.weight", "model.layers.31.self_attn.dense.weight"],
    ["blk.2.ffn_up.bias", "model.layers.2.mlp.fc1.bias"],
    ["blk.2.ffn_down.weight", "model.layers.2.mlp.fc2.weight"],
  ];
  for (const [g, hf] of pairs) {
    assert.equal(hfNameOfGgufTensor(g), hf);
    assert.equal(ggufNameOfHfTensor(hf), g);
  }
  assert.equal(hfNameOfGgufTensor("rope_freqs.weight"), undefined);
});

test("writer output: header fields, alignment padding, offsets and data read back", async () => {
  const file = await writeMini("mini.gguf");
  const bytes = readFileSync(file);
  assert.equal(bytes.toString("latin1", 0, 4), "GGUF");
  assert.equal(bytes.readUInt32LE(4), 3);
  const g = readGgufFile(file);
  assert.equal(g.version, 3);
  assert.equal(g.alignment, 32);
  assert.equal(g.dataOffset % 32, 0);
  let expectedOffset = 0;
  for (const t of g.tensors) {
    assert.equal(t.relativeOffset, expectedOffset, t.name);
    expectedOffset += Math.ceil(t.nbytes / 32) * 32;
  }
  assert.equal(bytes.length, g.dataOffset + expectedOffset);
  const embd = g.tensors.find((t) => t.name === "token_embd.weight")!;
  assert.deepEqual(embd.ne, [C, V]);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + embd.offset, bytes.byteOffset + embd.offset + embd.nbytes));
  assert.deepEqual(values, ramp(V * C, 1));
  assert.equal(g.metadata.get("phi2.attention.layer_norm_epsilon")?.value, Math.fround(1e-5));
  assert.ok(isGgufFile(file));
  assert.ok(!isGgufFile(dir));
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp-")), []);
});

test("openGguf: config from phi2.* metadata, tensors under HF names in PyTorch order", async () => {
  const m = openGguf(await writeMini("open.gguf"));
  assert.equal(m.version, 3);
  assert.equal(m.config.hidden_size, C);
  assert.equal(m.config.intermediate_size, F);
  assert.equal(m.config.num_hidden_layers, L);
  assert.equal(m.config.num_attention_heads, 2);
  assert.equal(m.config.vocab_size, V);
  assert.equal(m.config.partial_rotary_factor, 0.5);
  assert.equal(m.config.rope_theta, 10000);
  assert.equal(m.config.max_position_embeddings, 256);
  assert.equal(m.config.eos_token_id, V - 1);
  const fc1 = m.tensors.get("model.layers.0.mlp.fc1.weight")!;
  assert.equal(fc1.name, "blk.0.ffn_up.weight");
  assert.deepEqual(fc1.shape, [F, C]);
  assert.equal(fc1.dtype, "F32");
  assert.equal(fc1.nbytes, F * C * 4);
  const buf = readFileSync(m.file);
  const row = new Float32Array(C);
  dequantizeRow("F32", buf, fc1.offset + C * 4, C, row); // second row
  assert.deepEqual(row, ramp(F * C, 12).subarray(C, 2 * C)); // ffn_up is the 12th tensor written (k = 11)
});

test("openGguf accepts fused attn_qkv", async () => {
  const m = openGguf(await writeMini("fused.gguf", { fused: true }));
  assert.deepEqual(m.tensors.get("model.layers.0.self_attn.qkv_proj.weight")?.shape, [3 * C, C]);
  assert.equal(m.tensors.has("model.layers.0.self_attn.q_proj.weight"), false);
});

test("tokenizer metadata becomes a BPE tokenizer.json with added tokens", async () => {
  const m = openGguf(await writeMini("tok.gguf"));
  const tj = m.tokenizerJson as {
    model: { type: string; vocab: Record<string, number>; merges: string[] };
    added_tokens: Array<{ id: number; content: string; special: boolean }>;
  };
  assert.equal(tj.model.type, "BPE");
  assert.equal(tj.model.vocab["a"], 0);
  assert.equal(tj.model.vocab["<|endoftext|>"], V - 1);
  assert.equal(tj.model.vocab["  "], undefined); // user-defined: an added token only
  assert.deepEqual(tj.model.merges, ["a b", "c d"]);
  assert.deepEqual(tj.added_tokens.map((t) => [t.id, t.content, t.special]), [[V - 2, "  ", false], [V - 1, "<|endoftext|>", true]]);
  const tc = m.tokenizerConfig as Record<string, unknown>;
  assert.equal(tc.eos_token, "<|endoftext|>");
  assert.equal(tc.add_bos_token, false);
});

async function expectError(file: string, pattern: RegExp): Promise<void> {
  assert.throws(() => openGguf(file), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    return true;
  });
}

function mutate(src: string, name: string, edit: (b: Buffer) => Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, edit(Buffer.from(readFileSync(src))));
  return file;
}

/** Byte offset of the u32 type field of tensor `name` in the tensor table. */
function tensorTypeField(b: Buffer, name: string): number {
  const key = Buffer.concat([Buffer.from([name.length, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(name)]);
  const at = b.indexOf(key);
  assert.ok(at > 0);
  const p = at + key.length;
  const nDims = b.readUInt32LE(p);
  return p + 4 + 8 * nDims;
}

test("bad input: wrong magic, unsupported version, truncated header and data", async () => {
  const good = await writeMini("good.gguf");
  await expectError(mutate(good, "magic.gguf", (b) => { b.write("GGML", 0, "latin1"); return b; }), /not a GGUF file/);
  await expectError(mutate(good, "v1.gguf", (b) => { b.writeUInt32LE(1, 4); return b; }), /unsupported GGUF version 1/);
  await expectError(mutate(good, "v9.gguf", (b) => { b.writeUInt32LE(9, 4); return b; }), /unsupported GGUF version 9/);
  // convert_hf_to_gguf.py --bigendian: the version reads byte-swapped
  await expectError(mutate(good, "be.gguf", (b) => { b.writeUInt32BE(3, 4); return b; }), /big-endian GGUF file \(version 3 byte-swapped\)/);
  await expectError(mutate(good, "cut-header.gguf", (b) => b.subarray(0, 300)), /truncated GGUF header/);
  await expectError(mutate(good, "cut-data.gguf", (b) => b.subarray(0, b.length - 100)), /outside the file.*truncated/);
  await expectError(mutate(good, "empty.gguf", () => Buffer.alloc(0)), /not a GGUF file/);
});

test("bad input: unknown tensor type names the type number and the tensor", async () => {
  const good = await writeMini("good2.gguf");
  const file = mutate(good, "type.gguf", (b) => { b.writeUInt32LE(20, tensorTypeField(b, "blk.0.ffn_up.weight")); return b; });
  await expectError(file, /blk\.0\.ffn_up\.weight.*type 20 \(IQ4_NL\)/);
  const file2 = mutate(good, "type99.gguf", (b) => { b.writeUInt32LE(99, tensorTypeField(b, "output.bias")); return b; });
  await expectError(file2, /output\.bias.*type 99/);
});

test("bad input: tensor offset outside the file", async () => {
  const good = await writeMini("good3.gguf");
  const file = mutate(good, "offset.gguf", (b) => {
    b.writeBigUInt64LE(BigInt(1 << 30), tensorTypeField(b, "output.weight") + 4);
    return b;
  });
  await expectError(file, /output\.weight.*outside the file/);
});

test("bad input: missing tensor, wrong shape, other architecture", async () => {
  await expectError(await writeMini("missing.gguf", { drop: "blk.0.ffn_down.bias" }), /missing tensor "blk\.0\.ffn_down\.bias"/);
  await expectError(await writeMini("missing-out.gguf", { drop: "output.weight" }), /missing tensor "output\.weight"/);
  // the attention biases too, fused or split: named in GGUF terms before any weight is read
  await expectError(await writeMini("missing-qkv-bias.gguf", { fused: true, drop: "blk.0.attn_qkv.bias" }), /missing tensor "blk\.0\.attn_qkv\.bias"/);
  await expectError(await writeMini("missing-k-bias.gguf", { drop: "blk.0.attn_k.bias" }), /missing tensor "blk\.0\.attn_k\.bias"/);
  await expectError(await writeMini("shape.gguf", { shapes: { "blk.0.ffn_up.weight": [F + 32, C] } }), /blk\.0\.ffn_up\.weight.*shape \[160,64\].*expected \[128,64\]/);
  await expectError(await writeMini("llama.gguf", { arch: "llama" }), /architecture "llama" is not supported/);
  const shard = await writeMini("split-00001-of-00002.gguf", { extraMeta: [["split.count", { type: "u16", value: 2 }]] });
  await expectError(shard, /one shard of a GGUF split into 2 files; merge them first \(llama-gguf-split --merge/);
});

test("writer: a generator giving the wrong byte count fails and leaves no file behind", async () => {
  const file = join(dir, "short.gguf");
  const tensors: GgufTensorToWrite[] = [{ name: "x.weight", dtype: "Q8_0", shape: [2, 32], data: () => [new Uint8Array(rowBytes("Q8_0", 32))] }];
  await assert.rejects(writeGguf(file, { metadata: [], tensors }), /produced 34 bytes, expected 68/);
  assert.equal(existsSync(file), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith("short.gguf")), []);
});

test("writer: custom alignment is recorded and honoured", async () => {
  const file = join(dir, "align.gguf");
  const tensors: GgufTensorToWrite[] = [
    { name: "a", dtype: "F32", shape: [3], data: () => [f32Bytes([1, 2, 3])] },
    { name: "b", dtype: "F16", shape: [2], data: () => [new Uint8Array([0x00, 0x3c, 0x00, 0xc0])] },
  ];
  await writeGguf(file, { metadata: [["general.alignment", { type: "u32", value: 64 }]], tensors });
  const g = readGgufFile(file);
  assert.equal(g.alignment, 64);
  assert.equal(g.dataOffset % 64, 0);
  assert.equal(g.tensors[1].relativeOffset, 64);
  const out = new Float32Array(2);
  dequantizeRow("F16", readFileSync(file), g.tensors[1].offset, 2, out);
  assert.deepEqual(Array.from(out), [1, -2]);
});
