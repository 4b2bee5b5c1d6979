// Phi-2's hyper-parameters, named as in transformers' configuration_phi.py so config.json and this file
// read side by side. Also accepts the original "phi-msft" config names (n_embd, n_layer, ...).
import { ModelFormatError } from "../formats/tensor.js";

export interface PhiConfig {
  vocab_size: number;            // 51200 rows in embed/lm_head (50295 real tokens, the rest padding)
  hidden_size: number;           // C = 2560
  intermediate_size: number;     // 10240
  num_hidden_layers: number;     // 32
  num_attention_heads: number;   // 32
  num_key_value_heads: number;   // 32 (== heads for phi-2)
  partial_rotary_factor: number; // 0.4 -> rotary on the first 32 of 80 head dims
  rope_theta: number;            // 10000
  layer_norm_eps: number;        // 1e-5
  max_position_embeddings: number; // 2048
  qk_layernorm: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  hidden_act: string;            // "gelu_new"
}

export function headDim(c: PhiConfig): number {
  return c.hidden_size / c.num_attention_heads;
}

export function rotaryDim(c: PhiConfig): number {
  return Math.floor(c.partial_rotary_factor * headDim(c));
}

/** Phi-2's published config (microsoft/phi-2 config.json). */
export const PHI2_CONFIG: PhiConfig = {
  vocab_size: 51200,
  hidden_size: 2560,
  intermediate_size: 10240,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  partial_rotary_factor: 0.4,
  rope_theta: 10000,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  qk_layernorm: false,
  tie_word_embeddings: false,
  bos_token_id: 50256,
  eos_token_id: 50256,
  hidden_act: "gelu_new",
};

/** config.json's model_type for Phi-2: transformers' "phi", the original release's "phi-msft" (and its older "mixformer-sequential"). */
const PHI_MODEL_TYPES: readonly string[] = ["phi", "phi-msft", "mixformer-sequential"];

/**
 * Reads a parsed config.json (model_type "phi" or the original "phi-msft"/"mixformer-sequential").
 * `source` names the file in error messages.
 */
export function parsePhiConfig(raw: unknown, source: string): PhiConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ModelFormatError(`${source}: expected a JSON object`);
  }
  const j = raw as Record<string, unknown>;
  // Another architecture's folder (llama, gpt2, phi3, ...) would otherwise fail later on a missing tensor.
  if (j.model_type !== undefined && !PHI_MODEL_TYPES.includes(j.model_type as string)) {
    throw new ModelFormatError(
      `${source}: model_type ${JSON.stringify(j.model_type)} is not Phi-2's architecture (expected ${PHI_MODEL_TYPES.map((t) => `"${t}"`).join(", ")})`,
    );
  }
  const num = (names: string[], fallback?: number): number => {
    for (const n of names) {
      const v = j[n];
      if (v === undefined || v === null) continue;
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ModelFormatError(`${source}: field "${n}" must be a number, found ${JSON.stringify(v)}`);
      }
      return v;
    }
    if (fallback !== undefined) return fallback;
    throw new ModelFormatError(`${source}: missing field "${names[0]}"`);
  };
  const int = (names: string[], fallback?: number): number => {
    const v = num(names, fallback);
    if (!Number.isInteger(v) || v <= 0) {
      throw new ModelFormatError(`${source}: field "${names[0]}" must be a positive integer, found ${v}`);
    }
    return v;
  };
  const hidden = int(["hidden_size", "n_embd"]);
  const heads = int(["num_attention_heads", "n_head"]);
  const rotaryFromMsft = typeof j.rotary_dim === "number" ? (j.rotary_dim as number) / (hidden / heads) : undefined;
  const cfg: PhiConfig = {
    vocab_size: int(["vocab_size"]),
    hidden_size: hidden,
    intermediate_size: int(["intermediate_size", "n_inner"], 4 * hidden),
    num_hidden_layers: int(["num_hidden_layers", "n_layer"]),
    num_attention_heads: heads,
    num_key_value_heads: int(["num_key_value_heads", "n_head_kv"], heads),
    partial_rotary_factor: num(["partial_rotary_factor"], rotaryFromMsft ?? 0.5),
    rope_theta: num(["rope_theta"], 10000),
    layer_norm_eps: num(["layer_norm_eps", "layer_norm_epsilon"], 1e-5),
    max_position_embeddings: int(["max_position_embeddings", "n_positions"], 2048),
    qk_layernorm: j.qk_layernorm === true,
    tie_word_embeddings: j.tie_word_embeddings === true,
    bos_token_id: num(["bos_token_id"], 50256),
    eos_token_id: num(["eos_token_id"], 50256),
    hidden_act: typeof j.hidden_act === "string" ? j.hidden_act : (typeof j.activation_function === "string" ? j.activation_function : "gelu_new"),
  };
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    throw new ModelFormatError(`${source}: hidden_size ${cfg.hidden_size} is not divisible by num_attention_heads ${cfg.num_attention_heads}`);
  }
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    throw new ModelFormatError(`${source}: num_attention_heads ${cfg.num_attention_heads} is not a multiple of num_key_value_heads ${cfg.num_key_value_heads}`);
  }
  if (!(cfg.partial_rotary_factor > 0 && cfg.partial_rotary_factor <= 1)) {
    throw new ModelFormatError(`${source}: partial_rotary_factor must be in (0, 1], found ${cfg.partial_rotary_factor}`);
  }
  if (rotaryDim(cfg) % 2 !== 0) {
    throw new ModelFormatError(`${source}: rotary dimension ${rotaryDim(cfg)} (partial_rotary_factor × head_dim) must be even`);
  }
  if (cfg.hidden_act !== "gelu_new" && cfg.hidden_act !== "gelu_pytorch_tanh") {
    throw new ModelFormatError(`${source}: hidden_act "${cfg.hidden_act}" is not supported (phi-2 uses gelu_new)`);
  }
  return cfg;
}
