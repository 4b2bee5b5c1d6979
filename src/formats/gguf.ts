// A Phi-2 GGUF file (llama.cpp architecture "phi2") seen as what the engine needs: a PhiConfig from the
// phi2.* metadata, tensors renamed to the Hugging Face names the weight map expects, and a tokenizer.json
// rebuilt from tokenizer.ggml.*, so a lone .gguf file needs nothing else.
//
// Names (llama.cpp gguf-py constants.py MODEL_ARCH.PHI2, src/models/phi2.cpp):
//   token_embd            -> model.embed_tokens            output_norm -> model.final_layernorm
//   output                -> lm_head                       blk.N.attn_norm -> model.layers.N.input_layernorm
//   blk.N.attn_qkv        -> model.layers.N.self_attn.qkv_proj   (fused q|k|v rows)
//   blk.N.attn_q/k/v      -> model.layers.N.self_attn.q_proj/k_proj/v_proj
//   blk.N.attn_output     -> model.layers.N.self_attn.dense
//   blk.N.ffn_up/ffn_down -> model.layers.N.mlp.fc1/fc2
// GGUF dimensions are reversed from PyTorch's: ne = [cols, rows].
import { parsePhiConfig } from "../model/config.js";
import type { PhiConfig } from "../model/config.js";
import { ModelFormatError } from "./tensor.js";
import type { TensorRef } from "./tensor.js";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { GGUF_MAGIC, readGgufFile } from "./gguf-file.js";
import type { GgufFile, GgufValue } from "./gguf-file.js";
import { tokenizerFromGguf } from "./gguf-tokenizer.js";

export type { GgufValue, GgufScalar, GgufScalarType, GgufFile, GgufTensorInfo } from "./gguf-file.js";
export { readGgufFile } from "./gguf-file.js";

export interface GgufModel {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  config: PhiConfig;
  /** Keyed by Hugging Face name; TensorRef.name keeps the GGUF name. Shapes in PyTorch order. */
  tensors: Map<string, TensorRef>;
  tokenizerJson: object;
  tokenizerConfig: object;
}

const LAYER_PARTS: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_qkv: "self_attn.qkv_proj",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.dense",
  ffn_up: "mlp.fc1",
  ffn_down: "mlp.fc2",
};
const GLOBAL_PARTS: Record<string, string> = {
  token_embd: "model.embed_tokens",
  output_norm: "model.final_layernorm",
  output: "lm_head",
};

/** Hugging Face name of a phi2 GGUF tensor name, or undefined for names phi-2 does not use. */
export function hfNameOfGgufTensor(name: string): string | undefined {
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  if (m) {
    const part = LAYER_PARTS[m[2]];
    return part ? `model.layers.${m[1]}.${part}.${m[3]}` : undefined;
  }
  const g = /^([a-z_]+)\.(weight|bias)$/.exec(name);
  if (g && GLOBAL_PARTS[g[1]]) return `${GLOBAL_PARTS[g[1]]}.${g[2]}`;
  return undefined;
}

/** GGUF name for a Hugging Face phi name (inverse of hfNameOfGgufTensor). */
export function ggufNameOfHfTensor(name: string): string | undefined {
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const part = Object.entries(LAYER_PARTS).find(([, hf]) => hf === m[2]);
    return part ? `blk.${m[1]}.${part[0]}.${m[3]}` : undefined;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  const part = g && Object.entries(GLOBAL_PARTS).find(([, hf]) => hf === g[1]);
  return part ? `${part[0]}.${g![2]}` : undefined;
}

function metaNumber(meta: Map<string, GgufValue>, key: string, file: string, fallback?: number): number {
  const v = meta.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelFormatError(`${file}: missing metadata "${key}"`);
  }
  if (typeof v.value !== "number") throw new ModelFormatError(`${file}: metadata "${key}" must be a number, found ${v.type}`);
  return v.value;
}

/** PhiConfig from phi2.* metadata (and the token embedding's row count for vocab_size). */
export function phiConfigFromGguf(g: GgufFile): PhiConfig {
  const { file, metadata: meta } = g;
  const arch = meta.get("general.architecture");
  if (arch === undefined) throw new ModelFormatError(`${file}: missing metadata "general.architecture"`);
  if (arch.value !== "phi2") {
    throw new ModelFormatError(`${file}: architecture ${JSON.stringify(arch.value)} is not supported (only "phi2")`);
  }
  const embd = g.tensors.find((t) => t.name === "token_embd.weight");
  if (!embd) throw new ModelFormatError(`${file}: missing tensor "token_embd.weight"`);
  const hidden = metaNumber(meta, "phi2.embedding_length", file);
  const heads = metaNumber(meta, "phi2.attention.head_count", file);
  const ropeDim = metaNumber(meta, "phi2.rope.dimension_count", file);
  const raw = {
    vocab_size: embd.ne[1] ?? 1,
    hidden_size: hidden,
    intermediate_size: metaNumber(meta, "phi2.feed_forward_length", file),
    num_hidden_layers: metaNumber(meta, "phi2.block_count", file),
    num_attention_heads: heads,
    num_key_value_heads: metaNumber(meta, "phi2.attention.head_count_kv", file, heads),
    partial_rotary_factor: ropeDim / (hidden / heads),
    rope_theta: metaNumber(meta, "phi2.rope.freq_base", file, 10000),
    layer_norm_eps: metaNumber(meta, "phi2.attention.layer_norm_epsilon", file),
    max_position_embeddings: metaNumber(meta, "phi2.context_length", file),
    qk_layernorm: false,
    tie_word_embeddings: false,
    bos_token_id: metaNumber(meta, "tokenizer.ggml.bos_token_id", file, 50256),
    eos_token_id: metaNumber(meta, "tokenizer.ggml.eos_token_id", file, 50256),
    hidden_act: "gelu_new",
  };
  return parsePhiConfig(raw, `${file} (GGUF metadata)`);
}

/**
 * Expected PyTorch shapes of every phi-2 tensor, by HF name. All are required: Phi-2 has a bias on every
 * linear layer (llama.cpp too requires the q/k/v biases of split attention; only its fused qkv bias is
 * optional, for other models), and the engine computes with all of them.
 */
function expectedShapes(c: PhiConfig, fusedQkv: Set<number>): Map<string, { shape: number[] }> {
  const C = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const kv = (C / c.num_attention_heads) * c.num_key_value_heads;
  const m = new Map<string, { shape: number[] }>([
    ["model.embed_tokens.weight", { shape: [V, C] }],
    ["model.final_layernorm.weight", { shape: [C] }],
    ["model.final_layernorm.bias", { shape: [C] }],
    ["lm_head.weight", { shape: [V, C] }],
    ["lm_head.bias", { shape: [V] }],
  ]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, { shape: [C] });
    m.set(`${p}.input_layernorm.bias`, { shape: [C] });
    if (fusedQkv.has(i)) {
      m.set(`${p}.self_attn.qkv_proj.weight`, { shape: [C + 2 * kv, C] });
      m.set(`${p}.self_attn.qkv_proj.bias`, { shape: [C + 2 * kv] });
    } else {
      m.set(`${p}.self_attn.q_proj.weight`, { shape: [C, C] });
      m.set(`${p}.self_attn.k_proj.weight`, { shape: [kv, C] });
      m.set(`${p}.self_attn.v_proj.weight`, { shape: [kv, C] });
      m.set(`${p}.self_attn.q_proj.bias`, { shape: [C] });
      m.set(`${p}.self_attn.k_proj.bias`, { shape: [kv] });
      m.set(`${p}.self_attn.v_proj.bias`, { shape: [kv] });
    }
    m.set(`${p}.self_attn.dense.weight`, { shape: [C, C] });
    m.set(`${p}.self_attn.dense.bias`, { shape: [C] });
    m.set(`${p}.mlp.fc1.weight`, { shape: [F, C] });
    m.set(`${p}.mlp.fc1.bias`, { shape: [F] });
    m.set(`${p}.mlp.fc2.weight`, { shape: [C, F] });
    m.set(`${p}.mlp.fc2.bias`, { shape: [C] });
  }
  return m;
}

/**
 * Opens a phi2 GGUF file: validates the container, the architecture, every tensor's presence and shape,
 * and builds the tokenizer. Reads only the header; tensor bytes stay in the file (TensorRef offsets).
 */
export function openGguf(file: string): GgufModel {
  const g = readGgufFile(file);
  const split = g.metadata.get("split.count");
  if (split && typeof split.value === "number" && split.value > 1) {
    throw new ModelFormatError(
      `${file}: one shard of a GGUF split into ${split.value} files; merge them first (llama-gguf-split --merge FIRST-SHARD OUT.gguf)`,
    );
  }
  const config = phiConfigFromGguf(g);
  const tensors = new Map<string, TensorRef>();
  const fusedQkv = new Set<number>();
  for (const t of g.tensors) {
    const hf = hfNameOfGgufTensor(t.name);
    if (hf === undefined) continue; // e.g. rope_freqs: not part of phi-2
    const m = /^blk\.(\d+)\.attn_qkv\.weight$/.exec(t.name);
    if (m) fusedQkv.add(Number(m[1]));
    tensors.set(hf, { name: t.name, file, dtype: t.dtype, shape: [...t.ne].reverse(), offset: t.offset, nbytes: t.nbytes });
  }
  for (const [hf, want] of expectedShapes(config, fusedQkv)) {
    const t = tensors.get(hf);
    if (!t) {
      const hint = ggufNameOfHfTensor(hf) ?? hf;
      throw new ModelFormatError(`${file}: missing tensor "${hint}" (${hf})`);
    }
    if (t.shape.length !== want.shape.length || t.shape.some((d, i) => d !== want.shape[i])) {
      throw new ModelFormatError(
        `${file}: tensor "${t.name}" has shape [${t.shape}] (PyTorch order), expected [${want.shape}] from the phi2 metadata`,
      );
    }
  }
  const { tokenizerJson, tokenizerConfig } = tokenizerFromGguf(g.metadata, file, config.max_position_embeddings);
  return { file, version: g.version, metadata: g.metadata, config, tensors, tokenizerJson, tokenizerConfig };
}

/** True when `path` is a file that starts with the GGUF magic (cheap check for "--model PATH"). */
export function isGgufFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    const fd = openSync(path, "r");
    try {
      const b = Buffer.alloc(4);
      return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32LE(0) === GGUF_MAGIC;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
