// Opens a model source (HF folder, .gguf file, or hub id), builds the tokenizer, starts the engine.
import { statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, resolve } from "node:path";
import type { PhiConfig } from "./config.js";
import type { Engine } from "./engine.js";
import { PhiEngine } from "./phi.js";
import { KV_CACHE_TYPES, type KvCacheType } from "./partition.js";
import { LOAD_QUANTS, type LoadQuant } from "./dtype.js";
import { resolveWeights, type PhiWeights } from "./weights.js";
import { summarizeWeights, type WeightSummary } from "./weight-summary.js";
import { openHfFolder } from "../formats/hf-folder.js";
import { openGguf } from "../formats/gguf.js";
import { ModelFormatError, type TensorRef } from "../formats/tensor.js";
import { Phi2Tokenizer } from "../tokenizer/tokenizer.js";

export interface LoadOptions {
  /** Worker threads (default: all cores). */
  threads?: number;
  /** KV-cache slots = sequences in flight at once (server --parallel). Default 1. */
  slots?: number;
  /** Tokens per slot (default: the model's max_position_embeddings, 2048). */
  contextLength?: number;
  /** Quantize float weights at load (issue 3). */
  quant?: LoadQuant;
  /** The KV cache's element type: "f16" (default, as llama.cpp) or "f32". */
  kvType?: KvCacheType;
  /** Progress callback: fraction 0..1 of the weights loaded. */
  onProgress?: (fraction: number) => void;
}

export interface LoadedModel {
  engine: Engine;
  tokenizer: Phi2Tokenizer;
  config: PhiConfig;
  /** What the user passed (path or hub id) and a short display name (folder/file base name). */
  source: string;
  name: string;
  loadMs: number;
  /** Weights held in another type than the file's (converted at load), one line each; empty when none. */
  notices: string[];
  /** Parameters, bytes and types of the weights as held (after any conversion at load). */
  weights: WeightSummary;
  dispose(): Promise<void>;
}

interface OpenedModel {
  config: PhiConfig;
  tensors: ReadonlyMap<string, TensorRef>;
  tokenizer: Phi2Tokenizer;
  label: string;
}

function openSource(path: string): OpenedModel {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new ModelFormatError(`${path}: no such model folder or file`);
  }
  if (isDir) {
    const folder = openHfFolder(path);
    return { config: folder.config, tensors: folder.tensors, tokenizer: Phi2Tokenizer.fromFolder(path), label: path };
  }
  // Any file is taken for GGUF: the reader names what is wrong with it (magic, version, ...).
  const g = openGguf(path);
  return { config: g.config, tensors: g.tensors, tokenizer: Phi2Tokenizer.fromJson(g.tokenizerJson, g.tokenizerConfig, path), label: path };
}

/** The tokenizer of a model folder or .gguf file, without loading any weights. */
export function loadTokenizer(source: string): Phi2Tokenizer {
  return openSource(resolve(source)).tokenizer;
}

export async function loadModel(source: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const t0 = performance.now();
  const path = resolve(source);
  const opened = openSource(path);
  const weights: PhiWeights = resolveWeights(opened.tensors, opened.config, opened.label);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const slots = options.slots ?? 1;
  if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
  const contextLength = options.contextLength ?? opened.config.max_position_embeddings;
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > opened.config.max_position_embeddings) {
    throw new RangeError(`context length must be 1..${opened.config.max_position_embeddings}, got ${contextLength}`);
  }
  if (options.quant !== undefined && !LOAD_QUANTS.includes(options.quant)) {
    // computeDType would otherwise take any other value for q4_0
    throw new RangeError(`quant must be one of ${LOAD_QUANTS.join(", ")}, got ${String(options.quant)}`);
  }
  if (options.kvType !== undefined && !KV_CACHE_TYPES.includes(options.kvType)) {
    throw new RangeError(`kvType must be one of ${KV_CACHE_TYPES.join(", ")}, got ${String(options.kvType)}`);
  }
  const engine = await PhiEngine.start(opened.config, weights, {
    threads, slots, contextLength, quant: options.quant, kvType: options.kvType, onProgress: options.onProgress,
  });
  return {
    engine,
    tokenizer: opened.tokenizer,
    config: opened.config,
    source,
    name: basename(path),
    loadMs: performance.now() - t0,
    notices: engine.notices,
    weights: summarizeWeights(weights, options.quant),
    dispose: () => engine.dispose(),
  };
}
