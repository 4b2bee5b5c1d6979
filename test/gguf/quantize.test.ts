// quantizeModel: HF folder (or GGUF) -> phi2 GGUF; types per tensor, bytes equal to ggml's reference
// quantizers applied to the source rows, metadata, and a tokenizer that tokenizes like tokenizer.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestModel } from "../../src/testing/make-test-model.js";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { openGguf } from "../../src/formats/gguf.js";
import { TOKEN_TYPE, tokenizerFromGguf } from "../../src/formats/gguf-tokenizer.js";
import { quantizeModel, chooseWeightType } from "../../src/formats/gguf-quantize.js";
import { dequantizeRow, quantizeRow, rowBytes, type WritableDType } from "../../src/formats/ggml-quants.js";
import type { TensorRef } from "../../src/formats/tensor.js";
import { Phi2Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { loadModel } from "../../src/index.js";
import { phi2TokenizerJson } from "../../src/tokenizer/files.js";

const dir = mkdtempSync(join(tmpdir(), "phi2-quantize-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const hfDir = join(dir, "tiny");
const model = makeTestModel({ preset: "tiny", dtype: "f32", seed: 7, out: hfDir });
const hf = openHfFolder(hfDir);

const fileCache = new Map<string, Buffer>();
function contents(file: string): Buffer {
  let b = fileCache.get(file);
  if (!b) fileCache.set(file, (b = readFileSync(file)));
  return b;
}

function sourceRows(ref: TensorRef): Float32Array {
  const b = contents(ref.file);
  const n = ref.shape.reduce((a, c) => a * c, 1);
  const out = new Float32Array(n);
  dequantizeRow(ref.dtype, b, ref.offset, n, out);
  return out;
}

function fileBytes(ref: TensorRef): Uint8Array {
  return new Uint8Array(contents(ref.file).subarray(ref.offset, ref.offset + ref.nbytes));
}

test("q8_0: every weight's bytes are ggml's quantize_row_q8_0 of the source rows; norms and biases stay f32", async () => {
  const out = join(dir, "tiny-q8_0.gguf");
  const r = await quantizeModel(hfDir, "q8_0", out);
  const m = openGguf(out);
  // GGUF stores layer_norm_epsilon as f32.
  assert.deepEqual({ ...m.config }, { ...model.config, layer_norm_eps: Math.fround(model.config.layer_norm_eps) });
  for (const [name, ref] of m.tensors) {
    const src = hf.tensors.get(name)!;
    assert.ok(src, name);
    assert.deepEqual(ref.shape, src.shape, name);
    const x = sourceRows(src);
    if (ref.shape.length === 1) {
      assert.equal(ref.dtype, "F32", name);
      assert.deepEqual(new Float32Array(fileBytes(ref).slice().buffer), x, name);
    } else {
      assert.equal(ref.dtype, "Q8_0", name);
      const cols = ref.shape[1];
      const expected = new Uint8Array(ref.nbytes);
      for (let row = 0; row < ref.shape[0]; row++) quantizeRow("Q8_0", x, row * cols, cols, expected, row * rowBytes("Q8_0", cols));
      assert.ok(Buffer.from(fileBytes(ref)).equals(Buffer.from(expected)), name);
    }
  }
  assert.equal(r.tensors, m.tensors.size);
  const meta = m.metadata;
  assert.equal(meta.get("general.architecture")?.value, "phi2");
  assert.equal(meta.get("general.file_type")?.value, 7);
  assert.equal(meta.get("general.quantization_version")?.value, 2);
  assert.equal(meta.get("phi2.rope.dimension_count")?.value, 32);
  assert.equal(meta.get("tokenizer.ggml.pre")?.value, "phi-2");
  assert.equal(meta.get("tokenizer.ggml.add_bos_token")?.value, false);
  assert.equal(meta.get("tokenizer.ggml.unknown_token_id")?.value, 50256);
  const tokens = meta.get("tokenizer.ggml.tokens");
  assert.ok(tokens?.type === "array" && tokens.value.length === 51200);
  assert.equal(tokens.value[50300], "[PAD50300]");
  assert.equal(tokens.value[50257], " ".repeat(31));
});

test("the GGUF's tokenizer is phi-2's tokenizer.json and tokenizes identically", async () => {
  const m = openGguf(join(dir, "tiny-q8_0.gguf"));
  const original = phi2TokenizerJson() as { model: { vocab: object; merges: string[] }; added_tokens: object[] };
  const rebuilt = m.tokenizerJson as typeof original;
  assert.deepEqual(rebuilt.model.vocab, original.model.vocab);
  assert.deepEqual(rebuilt.model.merges, original.model.merges);
  assert.deepEqual(rebuilt.added_tokens, original.added_tokens);
  const a = Phi2Tokenizer.fromFolder(hfDir);
  const b = Phi2Tokenizer.fromJson(m.tokenizerJson, m.tokenizerConfig, m.file);
  const texts = [
    "Hello, world!",
    "Instruct: What is 2+2?\nOutput:",
    "def f(x):\n    return x  *  2\n\n\n",
    "        eight spaces, then\t\t\ttabs\t\t and 31:" + " ".repeat(31) + "| 40:" + " ".repeat(40) + "|",
    "naïve café — 日本語 🚀 emoji<|endoftext|>after",
    "  leading and trailing  ",
    "x".repeat(50) + " 12345 3.14159 don't we'll I'M",
  ];
  for (const t of texts) {
    const ids = a.encode(t);
    assert.deepEqual(b.encode(t), ids, JSON.stringify(t));
    assert.equal(b.decode(ids), a.decode(ids));
  }
  assert.ok(a.encode(texts[3]).some((id) => id >= 50257 && id <= 50294), "whitespace tokens were exercised");
  assert.equal(b.eosId, 50256);
  assert.equal(b.size, a.size);
});

test("padding rows typed USER_DEFINED (llama.cpp's converter before mid-2024) are not tokens", () => {
  const m = openGguf(join(dir, "tiny-q8_0.gguf"));
  const meta = new Map(m.metadata);
  const types = meta.get("tokenizer.ggml.token_type");
  assert.ok(types?.type === "array");
  // as the old convert-hf-to-gguf.py wrote them: "[PAD<i>]" with gguf.TokenType.USER_DEFINED
  meta.set("tokenizer.ggml.token_type", { ...types, value: types.value.map((t, i) => (i >= 50295 ? TOKEN_TYPE.USER_DEFINED : t)) });
  const old = tokenizerFromGguf(meta, "old-style.gguf", 2048);
  const a = Phi2Tokenizer.fromFolder(hfDir);
  const b = Phi2Tokenizer.fromJson(old.tokenizerJson, old.tokenizerConfig, "old-style.gguf");
  assert.equal(b.size, a.size);
  assert.equal(b.size, 50295);
  const text = "Hello [PAD50300] world" + " ".repeat(12) + "end";
  assert.deepEqual(b.encode(text), a.encode(text));
});

test("q4_0 and q4_k: weight types follow llama-quantize's, output.weight Q6_K, and its fallbacks", async () => {
  assert.equal(chooseWeightType("q4_k", "blk.0.ffn_up.weight", 2560), "Q4_K");
  assert.equal(chooseWeightType("q4_k", "blk.0.ffn_up.weight", 160), "Q4_0");
  assert.equal(chooseWeightType("q4_k", "output.weight", 2560), "Q6_K");
  assert.equal(chooseWeightType("q4_0", "output.weight", 2560), "Q6_K");
  assert.equal(chooseWeightType("q4_0", "output.weight", 160), "Q8_0");
  assert.equal(chooseWeightType("q4_k", "output.weight", 48), "F16");
  assert.equal(chooseWeightType("q8_0", "output.weight", 2560), "Q8_0");
  assert.equal(chooseWeightType("q4_0", "token_embd.weight", 2560), "Q4_0");
  assert.equal(chooseWeightType("q8_0", "blk.0.ffn_up.weight", 48), "F16");
  const out = join(dir, "tiny-q4_0.gguf");
  await quantizeModel(hfDir, "q4_0", out);
  const m = openGguf(out);
  assert.equal(m.tensors.get("model.layers.0.mlp.fc2.weight")?.dtype, "Q4_0");
  assert.equal(m.tensors.get("model.embed_tokens.weight")?.dtype, "Q4_0");
  assert.equal(m.tensors.get("lm_head.weight")?.dtype, "Q8_0");
  assert.equal(m.metadata.get("general.file_type")?.value, 2);
});

// The tiny preset's rows (160, 640) are not whole super-blocks; this one's are (256, 512), and its 8 layers
// show llama-quantize's per-layer choices.
let wide: string | undefined;
function wideModel(): string {
  wide ??= makeTestModel({
    preset: "tiny", dtype: "f32", seed: 11, out: join(dir, "wide"),
    config: { hidden_size: 256, num_attention_heads: 4, num_key_value_heads: 4, partial_rotary_factor: 0.5, intermediate_size: 512, num_hidden_layers: 8 },
  }).dir;
  return wide;
}

/** The file's tensor's bytes equal quantizeRow(dtype) of the source's rows. */
function assertQuantizedFrom(ref: TensorRef, src: TensorRef, name: string): void {
  const x = sourceRows(src);
  const cols = ref.shape[1];
  const expected = new Uint8Array(ref.nbytes);
  const rb = rowBytes(ref.dtype, cols);
  for (let row = 0; row < ref.shape[0]; row++) quantizeRow(ref.dtype as WritableDType, x, row * cols, cols, expected, row * rb);
  assert.ok(Buffer.from(fileBytes(ref)).equals(Buffer.from(expected)), `${name}: bytes of ${ref.dtype}`);
}

/** Loads `file` with our engine and runs a few tokens: finite logits, and the matrices held in `types`. */
async function assertRuns(file: string, types: RegExp): Promise<void> {
  const m = await loadModel(file, { threads: 2, contextLength: 16, kvType: "f32" });
  try {
    assert.match(m.weights.types, types);
    const [logits] = await m.engine.forward([{ slot: 0, tokens: [1, 2, 3, 50256], startPos: 0 }]);
    assert.ok(logits!.length === m.config.vocab_size && logits!.every(Number.isFinite), "finite logits");
  } finally {
    await m.dispose();
  }
}

test("q4_k with rows of whole super-blocks: output.weight is ggml's Q6_K of lm_head, and the file runs", async () => {
  const source = openHfFolder(wideModel());
  const out = join(dir, "wide-q4_k.gguf");
  await quantizeModel(wideModel(), "q4_k", out);
  const m = openGguf(out);
  const lm = m.tensors.get("lm_head.weight")!;
  assert.equal(lm.dtype, "Q6_K");
  assertQuantizedFrom(lm, source.tensors.get("lm_head.weight")!, "lm_head.weight");
  assert.equal(m.tensors.get("model.layers.0.mlp.fc2.weight")?.dtype, "Q4_K");
  await assertRuns(out, /Q4_K.*Q6_K|Q6_K.*Q4_K/);
});

test("q4_k_m: llama-quantize's Q4_K_M mix (Q6_K for output, and attn_v / attn_qkv / ffn_down in use_more_bits layers)", async () => {
  // phi-2's 32 layers: the first and last 4, and every third from layer 6
  const more = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  for (let i = 0; i < 32; i++) {
    const want = more.includes(i) ? "Q6_K" : "Q4_K";
    for (const t of ["attn_v", "attn_qkv", "ffn_down"]) assert.equal(chooseWeightType("q4_k_m", `blk.${i}.${t}.weight`, 2560, 32), want, `${t} ${i}`);
    for (const t of ["attn_q", "attn_k", "attn_output", "ffn_up"]) assert.equal(chooseWeightType("q4_k_m", `blk.${i}.${t}.weight`, 2560, 32), "Q4_K");
  }
  assert.equal(chooseWeightType("q4_k_m", "output.weight", 2560, 32), "Q6_K");
  assert.equal(chooseWeightType("q4_k_m", "token_embd.weight", 2560, 32), "Q4_K");
  // fallbacks: Q6_K -> Q8_0, Q4_K -> Q4_0 (the tiny preset: 160-wide rows, 2 layers of which layer 1 gets more bits)
  assert.equal(chooseWeightType("q4_k_m", "blk.1.attn_qkv.weight", 160, 2), "Q8_0");
  assert.equal(chooseWeightType("q4_k_m", "blk.0.attn_qkv.weight", 160, 2), "Q4_0");

  const source = openHfFolder(wideModel());
  const out = join(dir, "wide-q4_k_m.gguf");
  const r = await quantizeModel(wideModel(), "q4_k_m", out);
  const expected = new Map<string, string>([["token_embd.weight", "Q4_K"], ["output.weight", "Q6_K"]]);
  for (let i = 0; i < 8; i++) {
    const more = [0, 3, 6, 7].includes(i); // 8 layers: the first, the last, and layers 3 and 6
    for (const t of ["attn_q", "attn_k", "attn_output", "ffn_up"]) expected.set(`blk.${i}.${t}.weight`, "Q4_K");
    for (const t of ["attn_v", "ffn_down"]) expected.set(`blk.${i}.${t}.weight`, more ? "Q6_K" : "Q4_K");
  }
  assert.deepEqual(new Map([...r.types].filter(([, t]) => t !== "F32")), expected);
  const m = openGguf(out);
  assert.equal(m.metadata.get("general.file_type")?.value, 15);
  for (const name of ["model.layers.3.self_attn.v_proj.weight", "model.layers.7.mlp.fc2.weight", "model.layers.1.self_attn.v_proj.weight"]) {
    assertQuantizedFrom(m.tensors.get(name)!, source.tensors.get(name)!, name);
  }
  await assertRuns(out, /Q4_K.*Q6_K|Q6_K.*Q4_K/);
});

// llama_tensor_get_type_impl (src/llama-quant.cpp) for phi2, by file type, for phi-2's 32 layers:
// - attn_v / attn_qkv (category_is_attn_v, counted in layer order): Q4_K_M, Q5_K_M: Q6_K if use_more_bits;
//   Q4_K_S: Q5_K if i_attention_wv < 4;
// - ffn_down: Q4_K_M, Q5_K_M: Q6_K if use_more_bits; Q4_K_S: Q5_K if i_layer < n_layer/8 (= 4);
// - output.weight: Q6_K (the default type is not Q8_0); every other matrix: the default type
//   (llama_ftype_get_default_type: Q4_K_S -> Q4_K, Q5_K_S/Q5_K_M -> Q5_K, Q6_K -> Q6_K).
const MORE_BITS_32 = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
const K_MIXES = {
  q4_k_s: { base: "Q4_K", attnV: (i: number) => (i < 4 ? "Q5_K" : "Q4_K"), ffnDown: (i: number) => (i < 4 ? "Q5_K" : "Q4_K"), fileType: 14 },
  q5_k_s: { base: "Q5_K", attnV: () => "Q5_K", ffnDown: () => "Q5_K", fileType: 16 },
  q5_k_m: {
    base: "Q5_K", attnV: (i: number) => (MORE_BITS_32.includes(i) ? "Q6_K" : "Q5_K"),
    ffnDown: (i: number) => (MORE_BITS_32.includes(i) ? "Q6_K" : "Q5_K"), fileType: 17,
  },
  q6_k: { base: "Q6_K", attnV: () => "Q6_K", ffnDown: () => "Q6_K", fileType: 18 },
} as const;

for (const [type, mix] of Object.entries(K_MIXES) as Array<[keyof typeof K_MIXES, (typeof K_MIXES)[keyof typeof K_MIXES]]>) {
  test(`${type}: llama-quantize's per-tensor types for phi-2's 32 layers`, () => {
    for (let i = 0; i < 32; i++) {
      for (const t of ["attn_v", "attn_qkv"]) assert.equal(chooseWeightType(type, `blk.${i}.${t}.weight`, 2560, 32), mix.attnV(i), `${t} ${i}`);
      assert.equal(chooseWeightType(type, `blk.${i}.ffn_down.weight`, 10240, 32), mix.ffnDown(i), `ffn_down ${i}`);
      for (const t of ["attn_q", "attn_k", "attn_output", "ffn_up"]) assert.equal(chooseWeightType(type, `blk.${i}.${t}.weight`, 2560, 32), mix.base, `${t} ${i}`);
    }
    assert.equal(chooseWeightType(type, "output.weight", 2560, 32), "Q6_K");
    assert.equal(chooseWeightType(type, "token_embd.weight", 2560, 32), mix.base);
  });
}

test("K-quant fallbacks for rows that are not whole super-blocks: Q6_K and Q5_K -> Q8_0, Q4_K -> Q4_0, else F16", () => {
  assert.equal(chooseWeightType("q6_k", "blk.0.ffn_up.weight", 160, 2), "Q8_0");
  assert.equal(chooseWeightType("q5_k_s", "blk.0.ffn_up.weight", 160, 2), "Q8_0");
  assert.equal(chooseWeightType("q5_k_m", "output.weight", 160, 2), "Q8_0");
  assert.equal(chooseWeightType("q4_k_s", "blk.0.attn_v.weight", 160, 2), "Q8_0"); // Q5_K (layer < 4)
  assert.equal(chooseWeightType("q4_k_s", "blk.0.ffn_up.weight", 160, 2), "Q4_0");
  assert.equal(chooseWeightType("q5_k_s", "blk.0.ffn_up.weight", 48, 2), "F16");
  assert.equal(chooseWeightType("q6_k", "output.weight", 48, 2), "F16");
});

test("q5_k_m, q4_k_s, q5_k_s, q6_k files: the mixes on 8 layers, ggml's bytes, file types, and our engine runs them", async () => {
  const source = openHfFolder(wideModel());
  // 8 layers: use_more_bits holds for layers 0, 3, 6, 7; n_layer/8 = 1 (q4_k_s ffn_down), attn_v < 4 (q4_k_s)
  const layerTypes: Record<keyof typeof K_MIXES, (i: number) => [string, string]> = {
    q5_k_m: (i) => (([0, 3, 6, 7].includes(i) ? ["Q6_K", "Q6_K"] : ["Q5_K", "Q5_K"])),
    q4_k_s: (i) => [i < 4 ? "Q5_K" : "Q4_K", i < 1 ? "Q5_K" : "Q4_K"],
    q5_k_s: () => ["Q5_K", "Q5_K"],
    q6_k: () => ["Q6_K", "Q6_K"],
  };
  for (const type of ["q5_k_m", "q4_k_s", "q5_k_s", "q6_k"] as const) {
    const out = join(dir, `wide-${type}.gguf`);
    const r = await quantizeModel(wideModel(), type, out);
    const base = K_MIXES[type].base;
    const expected = new Map<string, string>([["token_embd.weight", base], ["output.weight", "Q6_K"]]);
    for (let i = 0; i < 8; i++) {
      for (const t of ["attn_q", "attn_k", "attn_output", "ffn_up"]) expected.set(`blk.${i}.${t}.weight`, base);
      const [v, down] = layerTypes[type](i);
      expected.set(`blk.${i}.attn_v.weight`, v);
      expected.set(`blk.${i}.ffn_down.weight`, down);
    }
    assert.deepEqual(new Map([...r.types].filter(([, t]) => t !== "F32")), expected, type);
    const m = openGguf(out);
    assert.equal(m.metadata.get("general.file_type")?.value, K_MIXES[type].fileType, type);
    for (const name of ["model.layers.0.self_attn.v_proj.weight", "model.layers.1.mlp.fc1.weight", "model.layers.2.mlp.fc2.weight"]) {
      assertQuantizedFrom(m.tensors.get(name)!, source.tensors.get(name)!, `${type} ${name}`);
    }
  }
  await assertRuns(join(dir, "wide-q5_k_m.gguf"), /^(?=.*Q5_K)(?=.*Q6_K)/);
});

test("a GGUF source re-quantizes; f16 keeps every weight to f16 rounding; msft naming writes fused attn_qkv", async () => {
  const f16 = join(dir, "tiny-f16.gguf");
  await quantizeModel(join(dir, "tiny-q8_0.gguf"), "f16", f16);
  const m = openGguf(f16);
  const q8 = openGguf(join(dir, "tiny-q8_0.gguf"));
  const a = sourceRows(m.tensors.get("model.layers.1.mlp.fc1.weight")!);
  const b = sourceRows(q8.tensors.get("model.layers.1.mlp.fc1.weight")!);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(b[i]) * 2 ** -11 + 2 ** -24, `value ${i}`);

  const msftDir = join(dir, "msft");
  makeTestModel({ preset: "tiny", dtype: "bf16", seed: 3, out: msftDir, naming: "msft" });
  const out = join(dir, "msft-bf16.gguf");
  await quantizeModel(msftDir, "bf16", out);
  const g = openGguf(out);
  assert.equal(g.tensors.get("model.layers.0.self_attn.qkv_proj.weight")?.dtype, "BF16");
  assert.equal(g.tensors.has("model.layers.0.self_attn.q_proj.weight"), false);
  const src = openHfFolder(msftDir).tensors.get("transformer.h.0.mixer.Wqkv.weight")!;
  assert.ok(Buffer.from(fileBytes(g.tensors.get("model.layers.0.self_attn.qkv_proj.weight")!)).equals(Buffer.from(fileBytes(src))));
});

test("the output path is checked before any work: a folder, or a file in a missing folder, is refused naming --out", async () => {
  await assert.rejects(quantizeModel(hfDir, "q8_0", dir), new RegExp(`--out ${dir} is a folder: name the file to write`));
  await assert.rejects(quantizeModel(hfDir, "q8_0", join(dir, "no-such-folder", "m.gguf")), /--out .*m\.gguf: the folder .*no-such-folder does not exist/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp-")), []);
});

test("an aborted quantization rejects with the signal's reason and leaves neither the file nor its temporary", async () => {
  const out = join(dir, "aborted.gguf");
  const stop = new AbortController();
  let seen = 0;
  await assert.rejects(
    quantizeModel(hfDir, "q4_0", out, { signal: stop.signal, onTensor: () => { if (++seen === 3) stop.abort(new Error("stop here")); } }),
    /stop here/,
  );
  assert.equal(seen, 3, "the write stopped at the abort");
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith("aborted.gguf")), []);
});
