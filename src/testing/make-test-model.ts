// Writes a complete Hugging Face phi-2 folder with random weights: config.json, the safetensors weights
// (one file or K shards + index), generation_config.json and phi-2's tokenizer files. The tests, the
// benchmarks and users without the real 5.56 GB download all run on these.
//
// Every logical tensor (named as in current transformers) draws from its own stream seeded by
// (seed, name), so the values do not depend on the naming scheme, the sharding or the file order:
// the msft folder's fused Wqkv is exactly q_proj, k_proj, v_proj stacked.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { endianness } from "node:os";
import { join, resolve } from "node:path";
import { PHI2_CONFIG, headDim, parsePhiConfig, rotaryDim, type PhiConfig } from "../model/config.js";
import { writeSafetensors, type SafetensorsTensorSource, type SafetensorsWriteDType } from "../formats/safetensors.js";
import { INDEX_FILE, SINGLE_FILE } from "../formats/hf-folder.js";
import { elementSize, shapeSize } from "../formats/tensor.js";
import { phi2TokenizerFiles } from "../tokenizer/files.js";
import { NormalStream } from "./random.js";
import { f32ToBf16Array, f32ToF16Array } from "../kernels/reference.js";

export type TestPreset = "tiny" | "small" | "full";
export type TestDType = "f32" | "f16" | "bf16";

export interface MakeTestModelOptions {
  preset: TestPreset;
  dtype: TestDType;
  seed: number;
  /** Out folder (created; model files already there are replaced). */
  out: string;
  /** 1 (default) writes model.safetensors; K > 1 writes K shards + model.safetensors.index.json. */
  shards?: number;
  /** "hf" (default): model.layers.* as transformers saves phi-2 today; "msft": the original release. */
  naming?: "hf" | "msft";
  /** Std of the Linear weights and of the embedding (default 0.02, transformers' initializer_range). */
  std?: number;
  /** Multiplies every LayerNorm weight (default 1; weights are lnScale · (1 + 0.02·N(0,1))). */
  lnScale?: number;
  /** Weights whose next-token distributions have a clear winner (see PEAKED below). */
  peaked?: boolean;
  /** Overrides of the preset's hyper-parameters (e.g. qk_layernorm, num_key_value_heads, vocab_size). */
  config?: Partial<PhiConfig>;
}

export interface MakeTestModelResult {
  dir: string;
  config: PhiConfig;
  /** Names of the files written, relative to dir. */
  files: string[];
  /** Bytes of weight files (headers included). */
  weightBytes: number;
  parameters: number;
}

export function presetConfig(preset: TestPreset): PhiConfig {
  switch (preset) {
    case "tiny":
      return { ...PHI2_CONFIG, hidden_size: 160, num_attention_heads: 2, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 640 };
    case "small":
      return { ...PHI2_CONFIG, hidden_size: 640, num_attention_heads: 8, num_key_value_heads: 8, num_hidden_layers: 4, intermediate_size: 2560 };
    case "full":
      return { ...PHI2_CONFIG };
    default:
      throw new Error(`unknown preset "${preset as string}" (tiny, small, full)`);
  }
}

/**
 * What `peaked` changes, chosen so that greedy decoding is decided by the model and not by rounding:
 * - lm_head std = LOGIT_STD / sqrt(C): the final LayerNorm's output has unit variance per component,
 *   so the logits get a standard deviation of about LOGIT_STD (instead of ~0.25).
 * - each lm_head row is scaled by exp(ROW_LOG_STD · N(0,1)): heavy-tailed logits, as a trained model's
 *   (some tokens are simply likelier), so the top-1 logit stands clearer of the second than it would
 *   among 51200 Gaussian logits (margins measured in test/reference/peaked.test.ts).
 * - q_proj/k_proj std = QK_STD / sqrt(C): attention scores of std ~QK_STD² instead of ~0.005, so the
 *   attention pattern (and hence rotary positions and the causal mask) visibly drives the output.
 * - embedding std = EMBED_STD: the current token keeps a say against the layers' outputs while the
 *   context still changes predictions.
 */
export const PEAKED = Object.freeze({ LOGIT_STD: 6, ROW_LOG_STD: 0.3, QK_STD: 1.5, EMBED_STD: 0.1 });

/** Phi-2's config.json (current transformers format), keys in the order transformers writes them (sorted). */
export function hfConfigJson(c: PhiConfig, torchDtype: string): Record<string, unknown> {
  return {
    _name_or_path: "microsoft/phi-2",
    architectures: ["PhiForCausalLM"],
    attention_dropout: 0.0,
    bos_token_id: c.bos_token_id,
    embd_pdrop: 0.0,
    eos_token_id: c.eos_token_id,
    hidden_act: c.hidden_act,
    hidden_size: c.hidden_size,
    initializer_range: 0.02,
    intermediate_size: c.intermediate_size,
    layer_norm_eps: c.layer_norm_eps,
    max_position_embeddings: c.max_position_embeddings,
    model_type: "phi",
    num_attention_heads: c.num_attention_heads,
    num_hidden_layers: c.num_hidden_layers,
    num_key_value_heads: c.num_key_value_heads,
    partial_rotary_factor: c.partial_rotary_factor,
    qk_layernorm: c.qk_layernorm,
    resid_pdrop: 0.1,
    rope_scaling: null,
    rope_theta: c.rope_theta,
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: torchDtype,
    transformers_version: "4.37.0",
    use_cache: true,
    vocab_size: c.vocab_size,
  };
}

/** The original release's config.json (model_type "phi-msft", run with trust_remote_code). */
export function msftConfigJson(c: PhiConfig, torchDtype: string): Record<string, unknown> {
  return {
    _name_or_path: "microsoft/phi-2",
    activation_function: c.hidden_act,
    architectures: ["PhiForCausalLM"],
    attn_pdrop: 0.0,
    auto_map: { AutoConfig: "configuration_phi.PhiConfig", AutoModelForCausalLM: "modeling_phi.PhiForCausalLM" },
    embd_pdrop: 0.0,
    flash_attn: false,
    flash_rotary: false,
    fused_dense: false,
    img_processor: null,
    initializer_range: 0.02,
    layer_norm_epsilon: c.layer_norm_eps,
    model_type: "phi-msft",
    n_embd: c.hidden_size,
    n_head: c.num_attention_heads,
    n_head_kv: c.num_key_value_heads === c.num_attention_heads ? null : c.num_key_value_heads,
    n_inner: c.intermediate_size === 4 * c.hidden_size ? null : c.intermediate_size,
    n_layer: c.num_hidden_layers,
    n_positions: c.max_position_embeddings,
    resid_pdrop: 0.1,
    rotary_dim: rotaryDim(c),
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: torchDtype,
    transformers_version: "4.35.2",
    vocab_size: c.vocab_size,
  };
}

const TORCH_DTYPE: Record<TestDType, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };
const ST_DTYPE: Record<TestDType, SafetensorsWriteDType> = { f32: "F32", f16: "F16", bf16: "BF16" };

/** One logical tensor: its transformers name, shape and the distribution of its values. */
interface LogicalTensor {
  name: string;
  shape: number[];
  mean: number;
  std: number;
  /** When set, row r is further multiplied by exp(rowLogStd · z_r), z_r ~ N(0, 1): rows of very unequal norms. */
  rowLogStd?: number;
}

function logicalTensors(c: PhiConfig, o: Omit<MakeTestModelOptions, "out">): LogicalTensor[] {
  const C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, hd = headDim(c);
  const qDim = c.num_attention_heads * hd, kvDim = c.num_key_value_heads * hd;
  const std = o.std ?? 0.02;
  const bias = std / 2;
  const ln = o.lnScale ?? 1;
  const peaked = o.peaked === true;
  const qkStd = peaked ? PEAKED.QK_STD / Math.sqrt(C) : std;
  const out: LogicalTensor[] = [];
  const t = (name: string, shape: number[], mean: number, s: number) => out.push({ name, shape, mean, std: s });
  t("model.embed_tokens.weight", [V, C], 0, peaked ? PEAKED.EMBED_STD : std);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    t(`${p}.input_layernorm.weight`, [C], ln, ln * 0.02);
    t(`${p}.input_layernorm.bias`, [C], 0, bias);
    t(`${p}.self_attn.q_proj.weight`, [qDim, C], 0, qkStd);
    t(`${p}.self_attn.q_proj.bias`, [qDim], 0, bias);
    t(`${p}.self_attn.k_proj.weight`, [kvDim, C], 0, qkStd);
    t(`${p}.self_attn.k_proj.bias`, [kvDim], 0, bias);
    t(`${p}.self_attn.v_proj.weight`, [kvDim, C], 0, std);
    t(`${p}.self_attn.v_proj.bias`, [kvDim], 0, bias);
    if (c.qk_layernorm) {
      t(`${p}.self_attn.q_layernorm.weight`, [hd], ln, ln * 0.02);
      t(`${p}.self_attn.q_layernorm.bias`, [hd], 0, bias);
      t(`${p}.self_attn.k_layernorm.weight`, [hd], ln, ln * 0.02);
      t(`${p}.self_attn.k_layernorm.bias`, [hd], 0, bias);
    }
    t(`${p}.self_attn.dense.weight`, [C, qDim], 0, std);
    t(`${p}.self_attn.dense.bias`, [C], 0, bias);
    t(`${p}.mlp.fc1.weight`, [I, C], 0, std);
    t(`${p}.mlp.fc1.bias`, [I], 0, bias);
    t(`${p}.mlp.fc2.weight`, [C, I], 0, std);
    t(`${p}.mlp.fc2.bias`, [C], 0, bias);
  }
  t("model.final_layernorm.weight", [C], ln, ln * 0.02);
  t("model.final_layernorm.bias", [C], 0, bias);
  if (!c.tie_word_embeddings) {
    t("lm_head.weight", [V, C], 0, peaked ? PEAKED.LOGIT_STD / Math.sqrt(C) : std);
    if (peaked) out[out.length - 1].rowLogStd = PEAKED.ROW_LOG_STD;
  }
  t("lm_head.bias", [V], 0, bias);
  return out;
}

/** Elements generated per chunk: 1 Mi floats = 4 MB of f32 scratch, reused for every chunk. */
const CHUNK = 1 << 20;

/** The bytes of consecutive logical tensors (several for a fused tensor), chunk by chunk. */
function* tensorBytes(parts: LogicalTensor[], dtype: TestDType, seed: number): Generator<Uint8Array> {
  const f32 = new Float32Array(CHUNK);
  const half = new Uint16Array(CHUNK);
  for (const part of parts) {
    const stream = new NormalStream(seed, part.name);
    let rowScale: Float32Array | undefined;
    if (part.rowLogStd !== undefined) {
      rowScale = new Float32Array(part.shape[0]);
      new NormalStream(seed, `${part.name}#row-scale`).fill(rowScale, 0, part.rowLogStd);
      for (let r = 0; r < rowScale.length; r++) rowScale[r] = Math.exp(rowScale[r]);
    }
    const cols = part.shape.length > 1 ? shapeSize(part.shape.slice(1)) : 1;
    const total = shapeSize(part.shape);
    let left = total;
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      const vals = f32.subarray(0, n);
      stream.fill(vals, part.mean, part.std);
      if (rowScale) {
        const first = total - left;
        for (let i = 0; i < n; i++) vals[i] *= rowScale[Math.floor((first + i) / cols)];
      }
      if (dtype === "f32") {
        yield new Uint8Array(vals.buffer, 0, n * 4);
      } else {
        const h = half.subarray(0, n);
        if (dtype === "bf16") f32ToBf16Array(vals, h);
        else f32ToF16Array(vals, h);
        yield new Uint8Array(h.buffer, 0, n * 2);
      }
      left -= n;
    }
  }
}

/** The file-level tensors of one naming scheme: each is one or more logical tensors stacked by rows. */
function fileTensors(c: PhiConfig, logical: LogicalTensor[], naming: "hf" | "msft"): Array<{ name: string; shape: number[]; parts: LogicalTensor[] }> {
  const byName = new Map(logical.map((t) => [t.name, t]));
  const one = (name: string, from: string) => {
    const t = byName.get(from)!;
    return { name, shape: t.shape, parts: [t] };
  };
  if (naming === "hf") return logical.map((t) => one(t.name, t.name));
  if (c.qk_layernorm) throw new Error("make-test-model: the msft naming has no q/k LayerNorm tensors (qk_layernorm)");
  if (c.tie_word_embeddings) throw new Error("make-test-model: the msft naming has no tied lm_head (tie_word_embeddings)");
  const out = [one("transformer.embd.wte.weight", "model.embed_tokens.weight")];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`, m = `transformer.h.${i}`;
    out.push(one(`${m}.ln.weight`, `${p}.input_layernorm.weight`), one(`${m}.ln.bias`, `${p}.input_layernorm.bias`));
    for (const kind of ["weight", "bias"]) {
      // Wqkv rows are laid out (three, heads, head_dim): all of q, then k, then v.
      const parts = ["q_proj", "k_proj", "v_proj"].map((x) => byName.get(`${p}.self_attn.${x}.${kind}`)!);
      const rows = parts.reduce((a, t) => a + t.shape[0], 0);
      out.push({ name: `${m}.mixer.Wqkv.${kind}`, shape: [rows, ...parts[0].shape.slice(1)], parts });
    }
    for (const kind of ["weight", "bias"]) {
      out.push(one(`${m}.mixer.out_proj.${kind}`, `${p}.self_attn.dense.${kind}`));
      out.push(one(`${m}.mlp.fc1.${kind}`, `${p}.mlp.fc1.${kind}`));
      out.push(one(`${m}.mlp.fc2.${kind}`, `${p}.mlp.fc2.${kind}`));
    }
  }
  out.push(one("lm_head.ln.weight", "model.final_layernorm.weight"), one("lm_head.ln.bias", "model.final_layernorm.bias"));
  out.push(one("lm_head.linear.weight", "lm_head.weight"), one("lm_head.linear.bias", "lm_head.bias"));
  return out;
}

export function shardFileName(k: number, count: number): string {
  return `model-${String(k).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.safetensors`;
}

/** Removes model files a previous run may have left (a stale index would win over a new model.safetensors). */
function removeOldWeights(dir: string): void {
  for (const f of readdirSync(dir)) {
    if (f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) unlinkSync(join(dir, f));
  }
}

/** The tensors (as named in the files) that makeTestModel would write, without writing anything. */
export function plannedTensors(o: Omit<MakeTestModelOptions, "out">): { config: PhiConfig; tensors: Array<{ name: string; shape: number[] }> } {
  const config: PhiConfig = { ...presetConfig(o.preset), ...(o.config ?? {}) };
  return { config, tensors: fileTensors(config, logicalTensors(config, o), o.naming ?? "hf").map(({ name, shape }) => ({ name, shape })) };
}

export function makeTestModel(o: MakeTestModelOptions): MakeTestModelResult {
  if (endianness() !== "LE") throw new Error("make-test-model: safetensors is little-endian; this machine is not");
  const config: PhiConfig = { ...presetConfig(o.preset), ...(o.config ?? {}) };
  if (!(o.dtype in ST_DTYPE)) throw new Error(`make-test-model: dtype must be f32, f16 or bf16, got "${o.dtype as string}"`);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new Error(`make-test-model: seed must be a non-negative integer, got ${o.seed}`);
  parsePhiConfig(hfConfigJson(config, "float32"), "make-test-model options"); // same checks as a loaded config
  const naming = o.naming ?? "hf";
  const shards = o.shards ?? 1;
  const logical = logicalTensors(config, o);
  const tensors = fileTensors(config, logical, naming);
  if (!Number.isInteger(shards) || shards < 1 || shards > tensors.length) {
    throw new Error(`make-test-model: shards must be an integer in 1..${tensors.length}, got ${shards}`);
  }
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  removeOldWeights(dir);
  // config.json goes last: a folder without it is visibly incomplete.
  if (existsSync(join(dir, "config.json"))) rmSync(join(dir, "config.json"));

  const dtype = ST_DTYPE[o.dtype];
  const bytesOf = (t: { shape: number[] }) => shapeSize(t.shape) * elementSize(dtype);
  const totalBytes = tensors.reduce((a, t) => a + bytesOf(t), 0);
  const source = (t: (typeof tensors)[number]): SafetensorsTensorSource => ({
    name: t.name, dtype, shape: t.shape, chunks: () => tensorBytes(t.parts, o.dtype, o.seed),
  });

  const files: string[] = [];
  let weightBytes = 0;
  if (shards === 1) {
    weightBytes += writeSafetensors(join(dir, SINGLE_FILE), tensors.map(source), { format: "pt" });
    files.push(SINGLE_FILE);
  } else {
    // Consecutive runs of tensors, each shard holding about an even share of the bytes (like
    // save_pretrained's max_shard_size), never an empty shard.
    const groups: Array<typeof tensors> = [];
    let offset = 0, prev = 0;
    tensors.forEach((t, i) => {
      const mid = offset + bytesOf(t) / 2;
      offset += bytesOf(t);
      let k = i === 0 ? 0 : Math.min(Math.max(Math.floor((mid * shards) / totalBytes), prev), prev + 1);
      k = Math.min(Math.max(k, shards - (tensors.length - i)), shards - 1); // leave a tensor for every later shard
      (groups[k] ??= []).push(t);
      prev = k;
    });
    const weightMap: Record<string, string> = {};
    groups.forEach((group, k) => {
      const name = shardFileName(k + 1, shards);
      weightBytes += writeSafetensors(join(dir, name), group.map(source), { format: "pt" });
      for (const t of group) weightMap[t.name] = name;
      files.push(name);
    });
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sortedMap }, null, 2) + "\n");
    files.push(INDEX_FILE);
  }

  writeFileSync(
    join(dir, "generation_config.json"),
    JSON.stringify({ _from_model_config: true, bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, transformers_version: "4.37.0" }, null, 2) + "\n",
  );
  files.push("generation_config.json");
  for (const [name, text] of Object.entries(phi2TokenizerFiles())) {
    writeFileSync(join(dir, name), text);
    files.push(name);
  }
  const torchDtype = TORCH_DTYPE[o.dtype];
  const configJson = naming === "hf" ? hfConfigJson(config, torchDtype) : msftConfigJson(config, torchDtype);
  const tmpConfig = join(dir, `config.json.tmp-${process.pid}`);
  writeFileSync(tmpConfig, JSON.stringify(configJson, null, 2) + "\n");
  renameSync(tmpConfig, join(dir, "config.json"));
  files.push("config.json");

  const parameters = logical.reduce((a, t) => a + shapeSize(t.shape), 0);
  return { dir, config, files, weightBytes, parameters };
}
