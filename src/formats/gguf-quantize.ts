// `phi2 quantize`: any Phi-2 source (Hugging Face folder or GGUF) -> a llama.cpp-loadable phi2 GGUF.
//
// Metadata as llama.cpp's convert_hf_to_gguf.py writes for phi2 (conversion/phi.py Phi2Model +
// _set_vocab_gpt2), tensor names as its phi2 loader expects (src/models/phi2.cpp: q/k/v split or fused
// attn_qkv, every bias, output.bias required). Tensor types follow llama-quantize's rules: see
// chooseWeightType.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { PhiConfig } from "../model/config.js";
import { headDim, rotaryDim } from "../model/config.js";
import { resolveWeights } from "../model/weights.js";
import type { PhiWeights, WeightSlice } from "../model/weights.js";
import { openHfFolder } from "./hf-folder.js";
import { ModelFormatError } from "./tensor.js";
import type { DType } from "./tensor.js";
import { isGgufFile, openGguf } from "./gguf.js";
import type { GgufValue } from "./gguf-file.js";
import { tokenizerToGgufMetadata } from "./gguf-tokenizer.js";
import { writeGguf } from "./gguf-writer.js";
import { checkOutputFile } from "./output-file.js";
import type { GgufTensorToWrite } from "./gguf-writer.js";
import { blockSize, dequantizeRow, quantizeRow, rowBytes } from "./ggml-quants.js";
import type { WritableDType } from "./ggml-quants.js";
import { quantizeKFast } from "./ggml-quants-wasm.js";

export const QUANTIZE_TYPES = ["q8_0", "q4_0", "q4_k", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "f16", "bf16"] as const;
export type QuantizeType = (typeof QUANTIZE_TYPES)[number];

/**
 * llama_ftype values (include/llama.h) for general.file_type. q4_k (ours: every matrix Q4_K but
 * output.weight) has no ftype of its own and says MOSTLY_Q4_K_S, the nearest.
 */
const FILE_TYPE: Record<QuantizeType, number> = {
  f16: 1, q4_0: 2, q8_0: 7, q4_k: 14, q4_k_s: 14, q4_k_m: 15, q5_k_s: 16, q5_k_m: 17, q6_k: 18, bf16: 32,
};

export interface QuantizeOptions {
  /** general.name (default: the source's name). */
  name?: string;
  /** Called after each tensor: tensors done, total, the tensor's GGUF name and type. */
  onTensor?: (done: number, total: number, name: string, dtype: DType) => void;
  /** Stops the quantization; nothing is left at `out` (the partial file is removed). */
  signal?: AbortSignal;
}

export interface QuantizeResult {
  file: string;
  tensors: number;
  bytes: number;
  /** GGUF tensor name -> type written. */
  types: Map<string, DType>;
}

interface Source {
  label: string;
  name: string;
  config: PhiConfig;
  weights: PhiWeights;
  tokenizerJson: object;
  tokenizerConfig: object;
}

function readJson(file: string): object {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as object;
  } catch (e) {
    throw new ModelFormatError(`${file}: cannot read tokenizer file (${(e as Error).message})`);
  }
}

function openSource(sourceArg: string): Source {
  const path = resolve(sourceArg);
  if (!existsSync(path)) throw new ModelFormatError(`${path}: no such model folder or file`);
  if (statSync(path).isDirectory()) {
    const folder = openHfFolder(path);
    const tokPath = join(path, "tokenizer.json");
    if (!existsSync(tokPath)) throw new ModelFormatError(`${tokPath}: missing (the GGUF needs the tokenizer)`);
    const cfgPath = join(path, "tokenizer_config.json");
    return {
      label: path,
      name: basename(path),
      config: folder.config,
      weights: resolveWeights(folder.tensors, folder.config, path),
      tokenizerJson: readJson(tokPath),
      tokenizerConfig: existsSync(cfgPath) ? readJson(cfgPath) : {},
    };
  }
  if (!isGgufFile(path)) throw new ModelFormatError(`${path}: neither a model folder nor a GGUF file`);
  const g = openGguf(path);
  const name = g.metadata.get("general.name");
  return {
    label: path,
    name: name?.type === "string" ? name.value : basename(path, ".gguf"),
    config: g.config,
    weights: resolveWeights(g.tensors, g.config, path),
    tokenizerJson: g.tokenizerJson,
    tokenizerConfig: g.tokenizerConfig,
  };
}

/**
 * llama-quantize's use_more_bits: the first and last eighth of the layers and every third between.
 * (It counts attn_v / attn_qkv and ffn_down tensors in layer order, one per layer: the count is the layer.)
 */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/**
 * The type llama-quantize gives a 2-D weight before shape fallbacks (src/llama-quant.cpp,
 * llama_tensor_get_type_impl, for phi2: no experts, n_gqa 1, not FALCON, output.weight not tied):
 * - output.weight: Q6_K for every quantized file type but q8_0 (which keeps Q8_0);
 * - attn_v, or a fused attn_qkv (category_is_attn_v counts ATTENTION_QKV, so its own branch, which would
 *   give Q4_K_M Q5_K, is never reached): Q4_K_M and Q5_K_M take Q6_K where use_more_bits(i, n) holds,
 *   i counting attn_v-like tensors in layer order (the loader's weight_name_comparer sorts by layer),
 *   so i is the layer; Q4_K_S takes Q5_K for i < 4;
 * - ffn_down: Q4_K_M and Q5_K_M take Q6_K where use_more_bits(layer, layers); Q4_K_S takes Q5_K in the
 *   first eighth of the layers;
 * - everything else (token_embd, attn_q/k, attn_output, ffn_up) the file type's default:
 *   Q4_K for q4_k*, Q5_K for q5_k*, Q6_K for q6_k.
 * Our q4_k is not a llama.cpp type: every matrix Q4_K but output.weight (Q6_K).
 */
function wantedType(type: QuantizeType, ggufName: string, layers: number): DType {
  if (type === "f16") return "F16";
  if (type === "bf16") return "BF16";
  if (type === "q8_0") return "Q8_0";
  if (ggufName === "output.weight") return "Q6_K";
  if (type === "q4_0") return "Q4_0";
  const base: DType = type === "q5_k_s" || type === "q5_k_m" ? "Q5_K" : type === "q6_k" ? "Q6_K" : "Q4_K";
  const m = /^blk\.(\d+)\.(attn_v|attn_qkv|ffn_down)\.weight$/.exec(ggufName);
  if (m === null) return base;
  const layer = Number(m[1]);
  if (type === "q4_k_m" || type === "q5_k_m") return useMoreBits(layer, layers) ? "Q6_K" : base;
  if (type === "q4_k_s") return layer < (m[2] === "ffn_down" ? Math.floor(layers / 8) : 4) ? "Q5_K" : base;
  return base;
}

/**
 * tensor_type_fallback: rows that are not whole blocks of `wanted`. llama-quantize falls back from Q6_K
 * to Q8_0 (so do we), from Q4_K to Q5_0 and from Q5_K to Q5_1; we have no Q5_0/Q5_1 quantizer and write
 * Q4_0 for Q4_K (the same size class) and Q8_0 for Q5_K (more bits rather than fewer). Where even that
 * does not fit (rows not a multiple of 32), F16, as llama-quantize does; for q8_0 and q4_0 files
 * llama-quantize has no fallback and stops, where we write F16.
 */
function fallbackType(wanted: DType, cols: number): DType {
  if (cols % blockSize(wanted) === 0) return wanted;
  const next: DType = wanted === "Q4_K" ? "Q4_0" : wanted === "Q5_K" || wanted === "Q6_K" ? "Q8_0" : "F16";
  return cols % blockSize(next) === 0 ? next : "F16";
}

/**
 * The type a 2-D weight gets in a file of `type`, as llama-quantize chooses it (see wantedType and
 * fallbackType). `layers` is the model's layer count (used by the _s and _m mixes).
 */
export function chooseWeightType(type: QuantizeType, ggufName: string, cols: number, layers = 0): DType {
  return fallbackType(wantedType(type, ggufName, layers), cols);
}

/** Reads rows [r0, r1) of a 2-D slice (or elements of a 1-D one) as f32, whatever the stored type. */
function readRowsF32(fd: number, s: WeightSlice, r0: number, r1: number): Float32Array {
  const { ref } = s;
  const cols = s.cols;
  const stride = rowBytes(ref.dtype, cols);
  const bytes = new Uint8Array((r1 - r0) * stride);
  const position = ref.offset + (s.rowStart + r0) * stride;
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, bytes.length - done, position + done);
    if (n <= 0) throw new ModelFormatError(`${ref.file}: unexpected end of file reading tensor ${ref.name} (truncated?)`);
    done += n;
  }
  const out = new Float32Array((r1 - r0) * cols);
  if (cols % blockSize(ref.dtype) === 0) {
    for (let r = 0; r < r1 - r0; r++) dequantizeRow(ref.dtype, bytes, r * stride, cols, out, r * cols);
  } else {
    dequantizeRow(ref.dtype, bytes, 0, out.length, out, 0); // 1-D slice: cols = 1, a float type
  }
  return out;
}

/** A tensor to write, assembled from one or more source slices stacked by rows. */
interface Planned {
  name: string;
  parts: WeightSlice[];
  /** PyTorch shape of the result. */
  shape: number[];
  dtype: DType;
}

const CHUNK_VALUES = 1 << 20; // ~4 MB of f32 per step

function tensorData(p: Planned, fds: Map<string, number>): () => Iterable<Uint8Array> {
  return function* () {
    for (const s of p.parts) {
      let fd = fds.get(s.ref.file);
      if (fd === undefined) {
        fd = openSync(s.ref.file, "r");
        fds.set(s.ref.file, fd);
      }
      const is1d = p.shape.length === 1;
      const cols = is1d ? 1 : s.cols;
      const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / cols));
      for (let r = 0; r < s.rows; r += rowsPerChunk) {
        const r1 = Math.min(s.rows, r + rowsPerChunk);
        const x = readRowsF32(fd, s, r, r1);
        if (is1d || p.dtype === "F32" || p.dtype === "F16" || p.dtype === "BF16") {
          const out = new Uint8Array(rowBytes(p.dtype, x.length));
          quantizeRow(p.dtype as WritableDType, x, 0, x.length, out, 0);
          yield out;
        } else {
          const rb = rowBytes(p.dtype, cols);
          const out = new Uint8Array((r1 - r) * rb);
          // K-quant rows are whole super-blocks, so the chunk is one run of blocks: quantize it in wasm.
          if (p.dtype === "Q4_K" || p.dtype === "Q5_K" || p.dtype === "Q6_K") quantizeKFast(p.dtype, x, 0, x.length, out, 0);
          else for (let i = 0; i < r1 - r; i++) quantizeRow(p.dtype as WritableDType, x, i * cols, cols, out, i * rb);
          yield out;
        }
      }
    }
  };
}

function plan(w: PhiWeights, c: PhiConfig, type: QuantizeType): Planned[] {
  const out: Planned[] = [];
  const matrix = (name: string, parts: WeightSlice[]): void => {
    const rows = parts.reduce((a, s) => a + s.rows, 0);
    const cols = parts[0].cols;
    out.push({ name, parts, shape: [rows, cols], dtype: chooseWeightType(type, name, cols, c.num_hidden_layers) });
  };
  const vector = (name: string, parts: WeightSlice[]): void => {
    out.push({ name, parts, shape: [parts.reduce((a, s) => a + s.rows, 0)], dtype: "F32" });
  };
  matrix("token_embd.weight", [w.embed]);
  w.layers.forEach((l, i) => {
    const b = `blk.${i}`;
    vector(`${b}.attn_norm.weight`, [l.ln_w]);
    vector(`${b}.attn_norm.bias`, [l.ln_b]);
    // Keep the source's layout: one fused q|k|v tensor (phi-msft, or a GGUF with attn_qkv) or three.
    const fused = l.q_w.ref === l.k_w.ref && l.k_w.ref === l.v_w.ref;
    if (fused) {
      matrix(`${b}.attn_qkv.weight`, [l.q_w, l.k_w, l.v_w]);
      vector(`${b}.attn_qkv.bias`, [l.q_b, l.k_b, l.v_b]);
    } else {
      for (const [n, wt, bs] of [["q", l.q_w, l.q_b], ["k", l.k_w, l.k_b], ["v", l.v_w, l.v_b]] as const) {
        matrix(`${b}.attn_${n}.weight`, [wt]);
        vector(`${b}.attn_${n}.bias`, [bs]);
      }
    }
    matrix(`${b}.attn_output.weight`, [l.dense_w]);
    vector(`${b}.attn_output.bias`, [l.dense_b]);
    matrix(`${b}.ffn_up.weight`, [l.fc1_w]);
    vector(`${b}.ffn_up.bias`, [l.fc1_b]);
    matrix(`${b}.ffn_down.weight`, [l.fc2_w]);
    vector(`${b}.ffn_down.bias`, [l.fc2_b]);
  });
  vector("output_norm.weight", [w.final_ln_w]);
  vector("output_norm.bias", [w.final_ln_b]);
  matrix("output.weight", [w.lm_head_w]);
  vector("output.bias", [w.lm_head_b]);
  if (c.qk_layernorm) throw new ModelFormatError("qk_layernorm models cannot be written as llama.cpp phi2 GGUF (it has no q/k norms)");
  return out;
}

/** The phi2 metadata convert_hf_to_gguf.py writes, plus the tokenizer. */
export function phi2Metadata(
  c: PhiConfig, name: string, type: QuantizeType, tokenizerJson: object, tokenizerConfig: object, source: string,
): Array<[string, GgufValue]> {
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const f32 = (value: number): GgufValue => ({ type: "f32", value });
  return [
    ["general.architecture", { type: "string", value: "phi2" }],
    ["general.name", { type: "string", value: name }],
    ["phi2.context_length", u32(c.max_position_embeddings)],
    ["phi2.embedding_length", u32(c.hidden_size)],
    ["phi2.feed_forward_length", u32(c.intermediate_size)],
    ["phi2.block_count", u32(c.num_hidden_layers)],
    ["phi2.attention.head_count", u32(c.num_attention_heads)],
    ["phi2.attention.head_count_kv", u32(c.num_key_value_heads)],
    ["phi2.attention.layer_norm_epsilon", f32(c.layer_norm_eps)],
    ["phi2.rope.dimension_count", u32(rotaryDim(c))],
    ["phi2.rope.freq_base", f32(c.rope_theta)],
    ["general.file_type", u32(FILE_TYPE[type])],
    ...tokenizerToGgufMetadata(tokenizerJson, tokenizerConfig, c.vocab_size, source),
    ["general.quantization_version", u32(2)],
  ];
}

/** Writes a phi2 GGUF of `type` from a HF folder or GGUF file at `source`. */
export async function quantizeModel(
  source: string, type: QuantizeType, out: string, options: QuantizeOptions = {},
): Promise<QuantizeResult> {
  if (!(QUANTIZE_TYPES as readonly string[]).includes(type)) {
    throw new RangeError(`--type must be one of ${QUANTIZE_TYPES.join(", ")}, got "${type}"`);
  }
  checkOutputFile(out, "--out");
  const src = openSource(source);
  const outPath = resolve(out);
  if (outPath === src.label) throw new Error(`--out ${outPath} would overwrite the source`);
  if (headDim(src.config) * src.config.num_attention_heads !== src.config.hidden_size) {
    throw new ModelFormatError(`${src.label}: hidden_size is not heads × head_dim`);
  }
  const planned = plan(src.weights, src.config, type);
  const fds = new Map<string, number>();
  const types = new Map<string, DType>();
  let done = 0;
  const tensors: GgufTensorToWrite[] = planned.map((p) => ({
    name: p.name,
    dtype: p.dtype,
    shape: p.shape,
    data: function* () {
      yield* tensorData(p, fds)();
      types.set(p.name, p.dtype);
      options.onTensor?.(++done, planned.length, p.name, p.dtype);
    },
  }));
  try {
    await writeGguf(outPath, {
      metadata: phi2Metadata(src.config, options.name ?? src.name, type, src.tokenizerJson, src.tokenizerConfig, src.label),
      tensors,
    }, { signal: options.signal });
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return { file: outPath, tensors: planned.length, bytes: statSync(outPath).size, types };
}

