import { test } from "node:test";
import assert from "node:assert/strict";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { ModelFormatError, type TensorRef } from "../../src/formats/tensor.js";
import { parsePhiConfig, type PhiConfig } from "../../src/model/config.js";
import { resolveWeights, type PhiWeights, type WeightSlice } from "../../src/model/weights.js";
import { readSlice } from "../reference/phi-reference.js";
import { testModel } from "../helpers/test-models.js";

const base = { preset: "tiny", dtype: "bf16", seed: 5, config: { vocab_size: 512 } } as const;

/** Every slice of the model with a stable label, in a fixed order. */
function slices(w: PhiWeights): Array<[string, WeightSlice]> {
  const out: Array<[string, WeightSlice]> = [["embed", w.embed]];
  w.layers.forEach((l, i) => {
    for (const [k, s] of Object.entries(l)) if (s) out.push([`layers.${i}.${k}`, s]);
  });
  out.push(["final_ln_w", w.final_ln_w], ["final_ln_b", w.final_ln_b], ["lm_head_w", w.lm_head_w], ["lm_head_b", w.lm_head_b]);
  return out;
}

function open(dir: string) {
  const f = openHfFolder(dir);
  return { folder: f, weights: resolveWeights(f.tensors, f.config, f.dir) };
}

function expectFormatError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" should mention "${p}"`);
    return true;
  });
}

test("hf naming, msft naming (fused Wqkv) and shards resolve to equal weights", () => {
  const hf = open(testModel({ ...base }));
  const msft = open(testModel({ ...base, naming: "msft" }));
  const sharded = open(testModel({ ...base, naming: "msft", shards: 4 }));
  const a = slices(hf.weights), b = slices(msft.weights), c = slices(sharded.weights);
  assert.deepEqual(b.map(([k]) => k), a.map(([k]) => k));
  // q, k, v of the msft folder are row ranges of one tensor
  const l0 = msft.weights.layers[0];
  assert.equal(l0.q_w.ref, l0.k_w.ref);
  assert.deepEqual([l0.q_w.rowStart, l0.k_w.rowStart, l0.v_w.rowStart, l0.v_w.rows, l0.v_w.cols], [0, 160, 320, 160, 160]);
  assert.deepEqual([l0.k_b.rowStart, l0.k_b.rows, l0.k_b.cols], [160, 160, 1]);
  for (let i = 0; i < a.length; i++) {
    const [label, s] = a[i];
    assert.deepEqual([b[i][1].rows, b[i][1].cols], [s.rows, s.cols], label);
    const values = readSlice(s);
    assert.deepEqual(readSlice(b[i][1]), values, `${label}: msft differs from hf`);
    assert.deepEqual(readSlice(c[i][1]), values, `${label}: sharded differs from hf`);
  }
});

test("shape and consistency errors name the model, the tensor and the config fields", () => {
  const { folder } = open(testModel({ ...base }));
  const src = folder.dir;
  const t = folder.tensors;
  const cfg = (over: Partial<PhiConfig>): PhiConfig => ({ ...folder.config, ...over });
  const without = (name: string) => new Map([...t].filter(([n]) => n !== name));

  expectFormatError(() => resolveWeights(t, cfg({ intermediate_size: 320 }), src),
    src, "tensor model.layers.0.mlp.fc1.weight has shape [640,160], expected [320,160] (from config.json: intermediate_size 320, hidden_size 160)");
  expectFormatError(() => resolveWeights(t, cfg({ num_attention_heads: 4, num_key_value_heads: 1 }), src),
    src, "tensor model.layers.0.self_attn.k_proj.weight has shape [160,160], expected [40,160]", "num_key_value_heads 1 × head_dim 40");
  expectFormatError(() => resolveWeights(t, cfg({ vocab_size: 51200 }), src),
    src, "config inconsistent with weights", "vocab_size 51200", "model.embed_tokens.weight", "[512,160]");
  expectFormatError(() => resolveWeights(t, cfg({ hidden_size: 320 }), src), src, "config inconsistent with weights", "hidden_size 320");
  expectFormatError(() => resolveWeights(t, cfg({ num_hidden_layers: 1 }), src),
    src, "config inconsistent with weights", "num_hidden_layers 1", "layers 0..1");
  expectFormatError(() => resolveWeights(t, cfg({ num_hidden_layers: 3 }), src),
    src, "tensor model.layers.2.input_layernorm.weight is missing", "layer 2 of num_hidden_layers 3");
  expectFormatError(() => resolveWeights(without("model.layers.1.mlp.fc2.bias"), folder.config, src), src, "tensor model.layers.1.mlp.fc2.bias is missing");
  expectFormatError(() => resolveWeights(without("lm_head.bias"), folder.config, src), src, "tensor lm_head.bias is missing");
  expectFormatError(() => resolveWeights(without("lm_head.weight"), folder.config, src), src, "tensor lm_head.weight is missing", "tie_word_embeddings false");
  expectFormatError(() => resolveWeights(t, cfg({ qk_layernorm: true }), src), src, "tensor model.layers.0.self_attn.q_layernorm.weight is missing");
  expectFormatError(() => resolveWeights(new Map(), folder.config, src), src, "model.embed_tokens.weight", "missing");

  const msft = open(testModel({ ...base, naming: "msft" })).folder;
  expectFormatError(() => resolveWeights(msft.tensors, { ...msft.config, intermediate_size: 100 }, msft.dir),
    "tensor transformer.h.0.mlp.fc1.weight has shape [640,160], expected [100,160]");
});

test("tied embeddings: lm_head is the embedding when lm_head.weight is absent", () => {
  const { folder } = open(testModel({ ...base }));
  const tensors = new Map([...folder.tensors].filter(([n]) => n !== "lm_head.weight"));
  const w = resolveWeights(tensors, { ...folder.config, tie_word_embeddings: true }, folder.dir);
  assert.equal(w.lm_head_w.ref.name, "model.embed_tokens.weight");
  assert.equal(w.lm_head_b.ref.name, "lm_head.bias");
});

test("fused qkv_proj (as the GGUF reader names llama.cpp's attn_qkv) with grouped KV heads, quantized refs", () => {
  // H = 4 query heads, KV = 2 kv heads of hd = 8 over C = 32: fused rows = (4 + 2·2)·8 = 64.
  const config: PhiConfig = {
    vocab_size: 16, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2,
    partial_rotary_factor: 0.5, rope_theta: 10000, layer_norm_eps: 1e-5, max_position_embeddings: 64, qk_layernorm: false,
    tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0, hidden_act: "gelu_new",
  };
  const ref = (name: string, shape: number[], dtype: TensorRef["dtype"] = "Q8_0"): [string, TensorRef] =>
    [name, { name, file: "/m.gguf", dtype, shape, offset: 0, nbytes: 0 }];
  const p = "model.layers.0";
  const tensors = new Map<string, TensorRef>([
    ref("model.embed_tokens.weight", [16, 32]),
    ref(`${p}.input_layernorm.weight`, [32], "F32"), ref(`${p}.input_layernorm.bias`, [32], "F32"),
    ref(`${p}.self_attn.qkv_proj.weight`, [64, 32]), ref(`${p}.self_attn.qkv_proj.bias`, [64], "F32"),
    ref(`${p}.self_attn.dense.weight`, [32, 32]), ref(`${p}.self_attn.dense.bias`, [32], "F32"),
    ref(`${p}.mlp.fc1.weight`, [64, 32]), ref(`${p}.mlp.fc1.bias`, [64], "F32"),
    ref(`${p}.mlp.fc2.weight`, [32, 64]), ref(`${p}.mlp.fc2.bias`, [32], "F32"),
    ref("model.final_layernorm.weight", [32], "F32"), ref("model.final_layernorm.bias", [32], "F32"),
    ref("lm_head.weight", [16, 32], "Q4_0"), ref("lm_head.bias", [16], "F32"),
  ]);
  const w = resolveWeights(tensors, config, "/m.gguf");
  const l = w.layers[0];
  assert.deepEqual([l.q_w.rowStart, l.q_w.rows, l.k_w.rowStart, l.k_w.rows, l.v_w.rowStart, l.v_w.rows], [0, 32, 32, 16, 48, 16]);
  assert.deepEqual([l.v_b.rowStart, l.v_b.rows, l.v_b.cols], [48, 16, 1]);
  assert.equal(l.q_w.cols, 32);
  assert.equal(w.lm_head_w.ref.dtype, "Q4_0");
  tensors.set(`${p}.self_attn.qkv_proj.weight`, { ...tensors.get(`${p}.self_attn.qkv_proj.weight`)!, shape: [96, 32] });
  expectFormatError(() => resolveWeights(tensors, config, "/m.gguf"),
    "/m.gguf", "tensor model.layers.0.self_attn.qkv_proj.weight has shape [96,32], expected [64,32]", "num_key_value_heads 2");
});

test("a config.json of another architecture is refused by its model_type, before any tensor is looked for", () => {
  const { folder } = open(testModel({ ...base }));
  const raw = JSON.parse(JSON.stringify(folder.rawConfig)) as Record<string, unknown>;
  for (const t of ["phi", "phi-msft", "mixformer-sequential", undefined]) parsePhiConfig({ ...raw, model_type: t }, "config.json");
  expectFormatError(() => parsePhiConfig({ ...raw, model_type: "llama" }, "x/config.json"),
    "x/config.json: model_type \"llama\" is not Phi-2's architecture", "\"phi\", \"phi-msft\"");
});
