// Opens a model source (HF folder, .gguf file, or hub id) and starts the engine.
import type { PhiConfig } from "./config.js";
import type { Engine } from "./engine.js";

export interface LoadOptions {
  /** Worker threads (default: all cores). */
  threads?: number;
  /** KV-cache slots = sequences in flight at once (server --parallel). Default 1. */
  slots?: number;
  /** Tokens per slot (default: the model's max_position_embeddings, 2048). */
  contextLength?: number;
  /** Quantize float weights at load (issue 3). */
  quant?: "q8_0" | "q4_0";
  /** Progress callback: fraction 0..1 of weight bytes loaded. */
  onProgress?: (fraction: number) => void;
}

export interface LoadedModel {
  engine: Engine;
  /** Phi2Tokenizer (src/tokenizer/tokenizer.ts). */
  tokenizer: import("../tokenizer/tokenizer.js").Phi2Tokenizer;
  config: PhiConfig;
  /** What the user passed (path or hub id) and a short display name (folder/file base name). */
  source: string;
  name: string;
  loadMs: number;
  dispose(): Promise<void>;
}

export async function loadModel(_source: string, _options: LoadOptions = {}): Promise<LoadedModel> {
  throw new Error("loadModel: engine not landed yet");
}
