// A Hugging Face model folder: config.json plus either model.safetensors or shards listed in
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor name: shard file name}}).
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parsePhiConfig, type PhiConfig } from "../model/config.js";
import { detectNaming, type WeightNaming } from "../model/weights.js";
import { readSafetensorsHeader } from "./safetensors.js";
import { ModelFormatError, type TensorRef } from "./tensor.js";

export interface HfFolder {
  /** Absolute path of the folder. */
  dir: string;
  config: PhiConfig;
  /** config.json as parsed JSON (fields we don't model are kept here). */
  rawConfig: Record<string, unknown>;
  /** Every tensor of the checkpoint by name (as stored: no renaming). */
  tensors: Map<string, TensorRef>;
  /** "hf" = model.layers.* (current transformers), "msft" = transformer.h.* (original phi-2 release). */
  naming: WeightNaming;
}

export const INDEX_FILE = "model.safetensors.index.json";
export const SINGLE_FILE = "model.safetensors";

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === "ENOENT" ? `${file}: file not found (${what})` : `${file}: cannot read (${code ?? String(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${file}: corrupt JSON (${(e as Error).message})`);
  }
}

/** Opens a folder and indexes every tensor (headers only; no weight bytes are read). */
export function openHfFolder(dirArg: string): HfFolder {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFormatError(`${dir}: model folder not found`);
  const configFile = join(dir, "config.json");
  const rawConfig = readJson(configFile, "every Hugging Face model folder has a config.json");
  const config = parsePhiConfig(rawConfig, configFile);

  const tensors = new Map<string, TensorRef>();
  const indexFile = join(dir, INDEX_FILE);
  const singleFile = join(dir, SINGLE_FILE);
  // transformers looks for the single file first, then the index; so do we.
  if (existsSync(singleFile)) {
    for (const ref of readSafetensorsHeader(singleFile)) tensors.set(ref.name, ref);
  } else if (existsSync(indexFile)) {
    readShards(dir, indexFile, tensors);
  } else {
    const others = readdirSync(dir).filter((f) => f.endsWith(".safetensors"));
    throw new ModelFormatError(
      others.length > 0
        ? `${dir}: found ${others.join(", ")} but neither ${SINGLE_FILE} nor ${INDEX_FILE} (which lists the shards)`
        : `${dir}: no safetensors weights (expected ${SINGLE_FILE} or ${INDEX_FILE})`,
    );
  }

  const naming = detectNaming(tensors);
  if (!naming) {
    throw new ModelFormatError(`${dir}: no Phi-2 weights: neither model.embed_tokens.weight nor transformer.embd.wte.weight is present`);
  }
  return { dir, config, rawConfig: rawConfig as Record<string, unknown>, tensors, naming };
}

function readShards(dir: string, indexFile: string, tensors: Map<string, TensorRef>): void {
  const index = readJson(indexFile, "shard index");
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelFormatError(`${indexFile}: corrupt index: missing "weight_map" object`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) {
      throw new ModelFormatError(`${indexFile}: corrupt index: weight_map entry for tensor ${name} must be a shard file name, found ${JSON.stringify(shard)}`);
    }
    let list = byShard.get(shard);
    if (!list) byShard.set(shard, (list = []));
    list.push(name);
  }
  if (byShard.size === 0) throw new ModelFormatError(`${indexFile}: corrupt index: weight_map is empty`);
  for (const [shard, names] of byShard) {
    const shardFile = join(dir, shard);
    if (!existsSync(shardFile)) {
      throw new ModelFormatError(`${indexFile}: shard ${shard} (holding tensor ${names[0]} and ${names.length - 1} more) is missing: ${shardFile} not found`);
    }
    const inShard = new Map(readSafetensorsHeader(shardFile).map((r) => [r.name, r]));
    for (const name of names) {
      const ref = inShard.get(name);
      if (!ref) throw new ModelFormatError(`${shardFile}: tensor ${name} is listed in ${INDEX_FILE} but absent from this shard`);
      tensors.set(name, ref);
    }
  }
}
