import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { makeTestModelCommand } from "../../src/cli/make-test-model.js";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { PHI2_CONFIG, parsePhiConfig } from "../../src/model/config.js";
import { resolveWeights } from "../../src/model/weights.js";
import { makeTestModel, plannedTensors, presetConfig } from "../../src/testing/make-test-model.js";
import { readSlice } from "../reference/phi-reference.js";
import { tempDir } from "../helpers/temp-dir.js";
import { testModel } from "../helpers/test-models.js";

const small = { preset: "tiny", seed: 3, config: { vocab_size: 512 } } as const;

function stats(v: Float64Array): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
}

test("same seed and options give byte-identical folders; another seed changes the weights", () => {
  const a = tempDir(), b = tempDir(), c = tempDir();
  makeTestModel({ ...small, dtype: "bf16", shards: 2, out: a });
  makeTestModel({ ...small, dtype: "bf16", shards: 2, out: b });
  makeTestModel({ ...small, dtype: "bf16", shards: 2, seed: 4, out: c });
  const files = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between two runs`);
  const shard = "model-00001-of-00002.safetensors";
  assert.ok(!readFileSync(join(a, shard)).equals(readFileSync(join(c, shard))), "seed 4 wrote the same weights as seed 3");
});

test("a complete phi-2 folder: config.json as microsoft/phi-2's, generation config, tokenizer files", () => {
  const dir = testModel({ ...small, dtype: "f32" });
  assert.deepEqual(readdirSync(dir).sort(), [
    "added_tokens.json", "config.json", "generation_config.json", "merges.txt", "model.safetensors",
    "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
  ]);
  const raw = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  // The keys of microsoft/phi-2's config.json (transformers 4.37 format).
  assert.deepEqual(Object.keys(raw).sort(), [
    "_name_or_path", "architectures", "attention_dropout", "bos_token_id", "embd_pdrop", "eos_token_id", "hidden_act",
    "hidden_size", "initializer_range", "intermediate_size", "layer_norm_eps", "max_position_embeddings", "model_type",
    "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "partial_rotary_factor", "qk_layernorm",
    "resid_pdrop", "rope_scaling", "rope_theta", "tie_word_embeddings", "torch_dtype", "transformers_version",
    "use_cache", "vocab_size",
  ]);
  assert.deepEqual([raw.model_type, raw.hidden_size, raw.num_attention_heads, raw.partial_rotary_factor, raw.torch_dtype], ["phi", 160, 2, 0.4, "float32"]);
  assert.deepEqual(parsePhiConfig(raw, "config.json"), { ...presetConfig("tiny"), vocab_size: 512 });
  const gen = JSON.parse(readFileSync(join(dir, "generation_config.json"), "utf8"));
  assert.deepEqual([gen.bos_token_id, gen.eos_token_id], [50256, 50256]);
  const tok = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  assert.equal(tok.added_tokens.length, 39);

  const msft = JSON.parse(readFileSync(join(testModel({ ...small, dtype: "f32", naming: "msft" }), "config.json"), "utf8"));
  assert.deepEqual([msft.model_type, msft.n_embd, msft.n_head, msft.n_layer, msft.rotary_dim, msft.n_inner], ["phi-msft", 160, 2, 2, 32, null]);
  assert.deepEqual(parsePhiConfig(msft, "config.json"), { ...presetConfig("tiny"), vocab_size: 512 });
});

test("presets: full is phi-2 itself (2,779,683,840 parameters = 5.56 GB in bf16)", () => {
  assert.deepEqual(presetConfig("full"), PHI2_CONFIG);
  const count = (preset: "tiny" | "small" | "full") =>
    plannedTensors({ preset, dtype: "bf16", seed: 0 }).tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  // phi-2 by hand: embedding V·C; per layer 2C (LayerNorm) + 4(C² + C) (q, k, v, dense) + 2·I·C + I + C (fc1, fc2);
  // final LayerNorm 2C; lm_head V·C + V.
  const phi = (C: number, I: number, L: number, V: number) => V * C + L * (2 * C + 4 * (C * C + C) + 2 * I * C + I + C) + 2 * C + V * C + V;
  assert.equal(count("full"), 2_779_683_840);
  assert.equal(count("full"), phi(2560, 10240, 32, 51200));
  assert.equal(count("small"), phi(640, 2560, 4, 51200));
  assert.equal(count("tiny"), phi(160, 640, 2, 51200));
  assert.equal(plannedTensors({ preset: "full", dtype: "bf16", seed: 0, naming: "msft" }).tensors.length, 1 + 32 * 10 + 4); // wte; ln, Wqkv, out_proj, fc1, fc2 (weight + bias); lm_head.ln, lm_head.linear
});

test("weights: N(0, std) matrices, LayerNorm weights near 1, bf16/f16 are the f32 values rounded", () => {
  const load = (dtype: "f32" | "bf16" | "f16", extra = {}) => {
    const f = openHfFolder(testModel({ ...small, dtype, ...extra }));
    return resolveWeights(f.tensors, f.config, f.dir);
  };
  const f32 = load("f32"), bf16 = load("bf16"), f16 = load("f16");
  const fc1 = readSlice(f32.layers[1].fc1_w);
  const s = stats(fc1);
  assert.ok(Math.abs(s.mean) < 0.001 && Math.abs(s.std - 0.02) < 0.0005, `fc1 mean ${s.mean} std ${s.std}`);
  // the normal transform: about 68.3% of the values within one std, 95.4% within two
  const within = (k: number) => fc1.filter((x) => Math.abs(x - s.mean) < k * s.std).length / fc1.length;
  assert.ok(Math.abs(within(1) - 0.6827) < 0.005 && Math.abs(within(2) - 0.9545) < 0.003, `${within(1)} ${within(2)}`);
  const ln = stats(readSlice(f32.layers[0].ln_w));
  assert.ok(Math.abs(ln.mean - 1) < 0.01 && ln.std > 0.005 && ln.std < 0.05, `ln mean ${ln.mean} std ${ln.std}`);
  const b16 = readSlice(bf16.layers[1].fc1_w), h16 = readSlice(f16.layers[1].fc1_w);
  for (let i = 0; i < fc1.length; i++) {
    assert.ok(Math.abs(b16[i] - fc1[i]) <= Math.abs(fc1[i]) * 2 ** -8, `bf16[${i}] ${b16[i]} vs ${fc1[i]}`);
    assert.ok(Math.abs(h16[i] - fc1[i]) <= Math.max(Math.abs(fc1[i]) * 2 ** -11, 2 ** -25), `f16[${i}] ${h16[i]} vs ${fc1[i]}`);
  }
  const wide = stats(readSlice(load("f32", { std: 0.1 }).layers[1].fc1_w));
  assert.ok(Math.abs(wide.std - 0.1) < 0.003, `std option: ${wide.std}`);
  const lnScaled = stats(readSlice(load("f32", { lnScale: 2 }).layers[0].ln_w));
  assert.ok(Math.abs(lnScaled.mean - 2) < 0.02, `lnScale option: ${lnScaled.mean}`);
});

test("CLI: phi2 make-test-model writes the folder and prints what it wrote", async () => {
  const out = join(tempDir(), "cli-model");
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await makeTestModelCommand().parseAsync(["--preset", "tiny", "--dtype", "f16", "--seed", "9", "--shards", "2", "--naming", "msft", "--out", out], { from: "user" });
  } finally {
    console.log = log;
  }
  const text = lines.join("\n");
  assert.match(text, /17\.1M parameters, f16, 34\.1 MB of weights \(msft naming, seed 9\)/);
  assert.match(text, /model-00002-of-00002\.safetensors/);
  const f = openHfFolder(out);
  assert.equal(f.naming, "msft");
  assert.equal(f.tensors.get("transformer.embd.wte.weight")!.dtype, "F16");
});
