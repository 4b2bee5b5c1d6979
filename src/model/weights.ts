// Which tensor of the checkpoint is which weight of Phi-2, checked against config.json.
// Two naming schemes exist (see PHI2.md): the current Hugging Face one (model.layers.*) and the original
// release ("phi-msft": transformer.h.*, with q|k|v fused into one Wqkv tensor). Both resolve to the same
// PhiWeights; a fused tensor simply yields q, k and v as row ranges of one TensorRef.
import { ModelFormatError, type TensorRef } from "../formats/tensor.js";
import { headDim, type PhiConfig } from "./config.js";

/**
 * A 2-D view: rows [rowStart, rowStart + rows) of a tensor whose rows have `cols` elements.
 * 1-D tensors (norms, biases) are rows = length, cols = 1.
 */
export interface WeightSlice {
  ref: TensorRef;
  rowStart: number;
  rows: number;
  cols: number;
}

export interface LayerWeights {
  ln_w: WeightSlice; ln_b: WeightSlice;          // (C)            input_layernorm
  q_w: WeightSlice; q_b: WeightSlice;            // (H*hd, C), (H*hd)
  k_w: WeightSlice; k_b: WeightSlice;            // (KV*hd, C), (KV*hd)
  v_w: WeightSlice; v_b: WeightSlice;            // (KV*hd, C), (KV*hd)
  q_ln_w?: WeightSlice; q_ln_b?: WeightSlice;    // (hd) per-head LayerNorm, only when qk_layernorm
  k_ln_w?: WeightSlice; k_ln_b?: WeightSlice;    // (hd)
  dense_w: WeightSlice; dense_b: WeightSlice;    // (C, H*hd), (C)
  fc1_w: WeightSlice; fc1_b: WeightSlice;        // (I, C), (I)
  fc2_w: WeightSlice; fc2_b: WeightSlice;        // (C, I), (C)
}

export interface PhiWeights {
  embed: WeightSlice;                            // (V, C)
  layers: LayerWeights[];
  final_ln_w: WeightSlice; final_ln_b: WeightSlice; // (C)
  lm_head_w: WeightSlice;                        // (V, C); the embedding itself when tie_word_embeddings
  lm_head_b: WeightSlice;                        // (V)
}

export type WeightNaming = "hf" | "msft";

/** Names of every weight in one scheme. Fused q|k|v appears as `qkv`; separate q/k/v as `q`, `k`, `v`. */
interface NameScheme {
  embed: string;
  finalLn: string;
  lmHead: string;
  layer(i: number): {
    ln: string;
    q?: string; k?: string; v?: string; qkv: string;
    qLn?: string; kLn?: string;
    dense: string; fc1: string; fc2: string;
  };
  layerPattern: RegExp;
}

const HF: NameScheme = {
  embed: "model.embed_tokens.weight",
  finalLn: "model.final_layernorm",
  lmHead: "lm_head",
  layer: (i) => {
    const p = `model.layers.${i}`;
    return {
      ln: `${p}.input_layernorm`,
      q: `${p}.self_attn.q_proj`, k: `${p}.self_attn.k_proj`, v: `${p}.self_attn.v_proj`,
      // Not written by transformers; the GGUF reader maps llama.cpp's fused attn_qkv here.
      qkv: `${p}.self_attn.qkv_proj`,
      qLn: `${p}.self_attn.q_layernorm`, kLn: `${p}.self_attn.k_layernorm`,
      dense: `${p}.self_attn.dense`, fc1: `${p}.mlp.fc1`, fc2: `${p}.mlp.fc2`,
    };
  },
  layerPattern: /^model\.layers\.(\d+)\./,
};

const MSFT: NameScheme = {
  embed: "transformer.embd.wte.weight",
  finalLn: "lm_head.ln",
  lmHead: "lm_head.linear",
  layer: (i) => {
    const p = `transformer.h.${i}`;
    return {
      ln: `${p}.ln`,
      qkv: `${p}.mixer.Wqkv`, // rows laid out (three, heads, head_dim): q then k then v
      dense: `${p}.mixer.out_proj`, fc1: `${p}.mlp.fc1`, fc2: `${p}.mlp.fc2`,
    };
  },
  layerPattern: /^transformer\.h\.(\d+)\./,
};

export const NAME_SCHEMES: Record<WeightNaming, NameScheme> = { hf: HF, msft: MSFT };

/** Which scheme the tensor names follow, judged by the embedding's name. */
export function detectNaming(tensors: ReadonlyMap<string, TensorRef>): WeightNaming | undefined {
  if (tensors.has(HF.embed)) return "hf";
  if (tensors.has(MSFT.embed)) return "msft";
  const names = [...tensors.keys()];
  if (names.some((n) => HF.layerPattern.test(n))) return "hf";
  if (names.some((n) => MSFT.layerPattern.test(n))) return "msft";
  return undefined;
}

const fmt = (shape: readonly number[]) => `[${shape.join(",")}]`;

/**
 * Maps checkpoint tensors to Phi-2's weights and checks every shape against config. `source` names the
 * model (folder or file) in error messages. TensorRef.shape is the logical [rows, cols] for every dtype,
 * quantized ones included, so the same checks serve safetensors and GGUF.
 */
export function resolveWeights(tensors: ReadonlyMap<string, TensorRef>, config: PhiConfig, source: string): PhiWeights {
  const naming = detectNaming(tensors);
  if (!naming) {
    throw new ModelFormatError(
      `${source}: tensor ${HF.embed} (or ${MSFT.embed}) is missing: no Phi weights found among ${tensors.size} tensors`,
    );
  }
  const s = NAME_SCHEMES[naming];
  const C = config.hidden_size, V = config.vocab_size, I = config.intermediate_size;
  const H = config.num_attention_heads, KV = config.num_key_value_heads, hd = headDim(config);

  const get = (name: string, why: string): TensorRef => {
    const ref = tensors.get(name);
    if (!ref) throw new ModelFormatError(`${source}: tensor ${name} is missing (${why})`);
    return ref;
  };
  const check = (ref: TensorRef, expected: number[], fromConfig: string): void => {
    const ok = ref.shape.length === expected.length && ref.shape.every((d, i) => d === expected[i]);
    if (!ok) {
      throw new ModelFormatError(
        `${source}: tensor ${ref.name} has shape ${fmt(ref.shape)}, expected ${fmt(expected)} (from config.json: ${fromConfig}) in ${ref.file}`,
      );
    }
  };
  const matrix = (ref: TensorRef, rowStart = 0, rows = ref.shape[0]): WeightSlice => ({ ref, rowStart, rows, cols: ref.shape[1] });
  const vector = (ref: TensorRef, rowStart = 0, rows = ref.shape[0]): WeightSlice => ({ ref, rowStart, rows, cols: 1 });
  /** A Linear layer: weight (out, in) and bias (out). */
  const linear = (base: string, out: number, inp: number, outWhy: string, inWhy: string, why: string) => {
    const w = get(`${base}.weight`, why), b = get(`${base}.bias`, why);
    check(w, [out, inp], `${outWhy}, ${inWhy}`);
    check(b, [out], outWhy);
    return { w: matrix(w), b: vector(b) };
  };
  const norm = (base: string, n: number, nWhy: string, why: string) => {
    const w = get(`${base}.weight`, why), b = get(`${base}.bias`, why);
    check(w, [n], nWhy);
    check(b, [n], nWhy);
    return { w: vector(w), b: vector(b) };
  };

  // The embedding first: when it disagrees with config.json the config is wrong for these weights.
  const embedRef = get(s.embed, "token embedding");
  if (embedRef.shape.length !== 2 || embedRef.shape[0] !== V || embedRef.shape[1] !== C) {
    throw new ModelFormatError(
      `${source}: config inconsistent with weights: config.json has vocab_size ${V}, hidden_size ${C} but tensor ${s.embed} ` +
        `has shape ${fmt(embedRef.shape)} (rows = vocab_size, cols = hidden_size) in ${embedRef.file}`,
    );
  }
  let maxLayer = -1;
  for (const name of tensors.keys()) {
    const m = s.layerPattern.exec(name);
    if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
  }
  if (maxLayer + 1 > config.num_hidden_layers) {
    throw new ModelFormatError(
      `${source}: config inconsistent with weights: config.json has num_hidden_layers ${config.num_hidden_layers} ` +
        `but the weights have layers 0..${maxLayer}`,
    );
  }

  const cWhy = `hidden_size ${C}`, iWhy = `intermediate_size ${I}`;
  const qWhy = `num_attention_heads ${H} × head_dim ${hd}`, kvWhy = `num_key_value_heads ${KV} × head_dim ${hd}`;
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const n = s.layer(i);
    const why = `layer ${i} of num_hidden_layers ${config.num_hidden_layers} in config.json`;
    const ln = norm(n.ln, C, cWhy, why);

    // q, k, v: separate tensors, or row ranges of a fused q|k|v tensor.
    let q, k, v;
    const fusedPresent = tensors.has(`${n.qkv}.weight`);
    if (n.q && !fusedPresent) {
      q = linear(n.q, H * hd, C, qWhy, cWhy, why);
      k = linear(n.k!, KV * hd, C, kvWhy, cWhy, why);
      v = linear(n.v!, KV * hd, C, kvWhy, cWhy, why);
    } else {
      const fused = linear(n.qkv, (H + 2 * KV) * hd, C, `(num_attention_heads ${H} + 2 × num_key_value_heads ${KV}) × head_dim ${hd}`, cWhy, why);
      const rows = (start: number, count: number) => ({
        w: matrix(fused.w.ref, start, count),
        b: vector(fused.b.ref, start, count),
      });
      q = rows(0, H * hd);
      k = rows(H * hd, KV * hd);
      v = rows((H + KV) * hd, KV * hd);
    }

    let qLn, kLn;
    if (config.qk_layernorm) {
      if (!n.qLn || !n.kLn) {
        throw new ModelFormatError(`${source}: config.json sets qk_layernorm but the ${naming} naming scheme has no q/k LayerNorm tensors`);
      }
      qLn = norm(n.qLn, hd, `head_dim ${hd} (qk_layernorm)`, why);
      kLn = norm(n.kLn, hd, `head_dim ${hd} (qk_layernorm)`, why);
    }
    const dense = linear(n.dense, C, H * hd, cWhy, qWhy, why);
    const fc1 = linear(n.fc1, I, C, iWhy, cWhy, why);
    const fc2 = linear(n.fc2, C, I, cWhy, iWhy, why);
    layers.push({
      ln_w: ln.w, ln_b: ln.b,
      q_w: q.w, q_b: q.b, k_w: k.w, k_b: k.b, v_w: v.w, v_b: v.b,
      ...(qLn && kLn ? { q_ln_w: qLn.w, q_ln_b: qLn.b, k_ln_w: kLn.w, k_ln_b: kLn.b } : {}),
      dense_w: dense.w, dense_b: dense.b,
      fc1_w: fc1.w, fc1_b: fc1.b,
      fc2_w: fc2.w, fc2_b: fc2.b,
    });
  }

  const finalLn = norm(s.finalLn, C, cWhy, "final LayerNorm");

  // lm_head: Phi-2 has its own (untied) matrix and always a bias.
  let lmHeadW: WeightSlice;
  const lmHeadRef = tensors.get(`${s.lmHead}.weight`);
  if (config.tie_word_embeddings) {
    lmHeadW = matrix(embedRef); // tied: transformers uses the embedding even if a copy was saved
  } else {
    if (!lmHeadRef) {
      throw new ModelFormatError(`${source}: tensor ${s.lmHead}.weight is missing (config.json has tie_word_embeddings false)`);
    }
    check(lmHeadRef, [V, C], `vocab_size ${V}, hidden_size ${C}`);
    lmHeadW = matrix(lmHeadRef);
  }
  const lmHeadB = get(`${s.lmHead}.bias`, "phi's lm_head always has a bias");
  check(lmHeadB, [V], `vocab_size ${V}`);

  return {
    embed: matrix(embedRef),
    layers,
    final_ln_w: finalLn.w, final_ln_b: finalLn.b,
    lm_head_w: lmHeadW, lm_head_b: vector(lmHeadB),
  };
}
