// What to download from a repository: the files a Hugging Face folder needs (config, safetensors
// shards, tokenizer), or one GGUF file picked by its quantization label ("user/repo:Q4_K_M").
import { HubError } from "./errors.js";

export const DEFAULT_MODEL_ID = "microsoft/phi-2";

export interface ModelSpec {
  repo: string;
  /** GGUF quantization label or file name after ":", e.g. "Q4_K_M". */
  quant?: string;
}

// Hub repository names: "owner/name", letters, digits, "-", "_", "." (hf_api's REPO_ID_REGEX).
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(?::[\w.+-]+)?$/;

/** Does `spec` have the shape of a hub id ("user/repo" or "user/repo:QUANT")? */
export function looksLikeHubId(spec: string): boolean {
  return HUB_ID.test(spec) && !spec.includes("..") && !spec.includes("--");
}

export function parseModelSpec(spec: string): ModelSpec {
  if (!looksLikeHubId(spec)) {
    throw new HubError(
      `"${spec}" is neither an existing local path nor a hub id like microsoft/phi-2 or TheBloke/phi-2-GGUF:Q4_K_M`,
      "spec",
    );
  }
  const colon = spec.indexOf(":");
  return colon < 0 ? { repo: spec } : { repo: spec.slice(0, colon), quant: spec.slice(colon + 1) };
}

/** Files a Hugging Face model folder may carry that phi2 reads (weights are handled apart). */
export const CONFIG_FILE = "config.json";
export const SAFETENSORS_INDEX = "model.safetensors.index.json";
export const SIDE_FILES = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.json",
  "merges.txt",
  "added_tokens.json",
  "special_tokens_map.json",
];

const SPLIT_SUFFIX = /-(\d{5})-of-(\d{5})$/;

/** A GGUF file's name without folder, .gguf and split suffix ("sub/x.Q8_0-00001-of-00002.gguf" -> "x.Q8_0"); undefined for other files. */
function ggufStem(file: string): string | undefined {
  const base = file.split("/").pop()!;
  return /\.gguf$/i.test(base) ? base.replace(/\.gguf$/i, "").replace(SPLIT_SUFFIX, "") : undefined;
}

/** Does the GGUF file's name end with `tag` (upper case) after a "." or "-" ("_" is inside labels: "K_XL" is no tag of x-UD-Q4_K_XL)? */
function hasTagTail(file: string, tag: string): boolean {
  const stem = ggufStem(file)?.toUpperCase();
  return stem !== undefined && stem.endsWith(tag) && /[.-]$/.test(stem.slice(0, -tag.length));
}

/**
 * The quantization label of a GGUF file name: "phi-2.Q4_K_M.gguf" -> "Q4_K_M",
 * "ggml-model-f16.gguf" -> "F16", "x.Q8_0-00001-of-00002.gguf" -> "Q8_0". Undefined for non-GGUF.
 */
export function ggufQuantLabel(file: string): string | undefined {
  const stem = ggufStem(file);
  if (stem === undefined) return undefined;
  const known = /(?:^|[.\-_])((?:I?Q\d[A-Za-z0-9_]*)|BF16|F16|F32|FP16|FP32)$/i.exec(stem);
  if (known) return known[1].toUpperCase();
  return (stem.includes(".") ? stem.slice(stem.lastIndexOf(".") + 1) : stem).toUpperCase();
}

export interface GgufChoice {
  /** Every part of the chosen file (one unless it is split "-0000N-of-0000M"). */
  files: string[];
  /** The file to hand to the loader (the first part). */
  entry: string;
  /** A line for the user when the pick was not the obvious one (no Q4_K_M among several: the first file). */
  note?: string;
}

/** Vision projectors (llava's mmproj-*.gguf) sit beside the model in multimodal repos; never a model choice. */
function isProjector(file: string): boolean {
  return /^mmproj/i.test(file.split("/").pop()!);
}

/** With no ":QUANT", a repository of several GGUF files gives this one (else its first), as llama.cpp's -hf and Ollama do. */
export const DEFAULT_GGUF_QUANT = "Q4_K_M";

function ggufGroups(files: string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>(); // label -> files
  for (const f of files) {
    if (isProjector(f)) continue;
    const label = ggufQuantLabel(f);
    if (label === undefined) continue;
    const list = groups.get(label) ?? [];
    list.push(f);
    groups.set(label, list);
  }
  return groups;
}

/**
 * Pick the GGUF file(s) of `quant` (a label, a file name, or a name's tail like "UD-Q4_K_XL"); undefined
 * quant = the only one, or Q4_K_M among several, or without one the repository's first GGUF file (in
 * name order, as the hub lists them), as llama.cpp's -hf falls back. Vision projectors (mmproj-*) are
 * never picked.
 */
export function pickGguf(repo: string, files: string[], quant: string | undefined): GgufChoice {
  const groups = ggufGroups(files);
  const labels = [...groups.keys()].sort();
  if (labels.length === 0) {
    throw new HubError(`${repo} has no .gguf files, so "${repo}:${quant}" cannot pick one (drop ":${quant}" to use its safetensors)`, "not-found");
  }
  let chosen: string[] | undefined;
  let note: string | undefined;
  if (quant === undefined) {
    if (labels.length > 1 && !groups.has(DEFAULT_GGUF_QUANT)) {
      const first = [...groups.values()].flat().sort()[0];
      const label = ggufQuantLabel(first)!;
      chosen = groups.get(label);
      note = `${repo} has no ${DEFAULT_GGUF_QUANT}; using ${label} (${first}), its first GGUF file, as llama.cpp's -hf does; ` +
        `choose another as ${repo}:QUANT (available: ${labels.join(", ")})`;
    } else {
      chosen = groups.get(labels.length > 1 ? DEFAULT_GGUF_QUANT : labels[0]);
    }
  } else {
    const wanted = quant.toUpperCase();
    chosen = groups.get(wanted) ?? files.filter((f) => f === quant || f.split("/").pop() === quant);
    // a label with a prefix the label parser leaves out ("UD-Q4_K_XL" for x-UD-Q4_K_XL.gguf)
    if (chosen.length === 0) chosen = files.filter((f) => !isProjector(f) && hasTagTail(f, wanted));
    if (chosen.length === 0) {
      throw new HubError(`${repo} has no GGUF file for quantization "${quant}" (available: ${labels.join(", ")})`, "not-found");
    }
  }
  const sorted = [...chosen!].sort();
  return { files: sorted, entry: sorted[0], ...(note ? { note } : {}) };
}

export interface HfFolderChoice {
  /** Files to fetch now: config, side files, and either the shards or the index (shards come after it). */
  files: string[];
  /** The safetensors index, when the weights are sharded; its weight_map names the shards. */
  index?: string;
}

/**
 * Files of a Hugging Face folder: config.json, the safetensors weights, tokenizer files,
 * generation_config.json. PyTorch .bin / TF .h5 / Flax .msgpack / ONNX copies are never fetched.
 */
export function pickHfFiles(repo: string, files: string[]): HfFolderChoice {
  const present = new Set(files);
  const topLevel = files.filter((f) => !f.includes("/"));
  const safetensors = topLevel.filter((f) => f.endsWith(".safetensors"));
  if (!present.has(SAFETENSORS_INDEX) && safetensors.length === 0) {
    const hasBin = topLevel.some((f) => /\.(bin|pt|pth|h5|msgpack|onnx)$/.test(f));
    throw new HubError(
      hasBin
        ? `${repo} has only PyTorch/TF/Flax weights (.bin/.h5/.msgpack); phi2 reads .safetensors or .gguf: use a repository with safetensors (e.g. microsoft/phi-2) or a GGUF one`
        : `${repo} has no .safetensors or .gguf weights (files: ${topLevel.slice(0, 12).join(", ")})`,
      "unsupported",
    );
  }
  if (!present.has(CONFIG_FILE)) {
    throw new HubError(`${repo} has safetensors weights but no config.json; phi2 needs both`, "unsupported");
  }
  const side = SIDE_FILES.filter((f) => present.has(f));
  if (present.has(SAFETENSORS_INDEX)) return { files: [CONFIG_FILE, ...side, SAFETENSORS_INDEX], index: SAFETENSORS_INDEX };
  return { files: [CONFIG_FILE, ...side, ...safetensors.sort()] };
}

/** The shard files an index's weight_map points to, checked against the repository's file list. */
export function shardsFromIndex(repo: string, indexText: string, repoFiles: string[] | undefined): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexText) as { weight_map?: unknown }).weight_map;
  } catch {
    throw new HubError(`${repo}/${SAFETENSORS_INDEX}: not valid JSON`, "unsupported");
  }
  if (!weightMap || typeof weightMap !== "object") {
    throw new HubError(`${repo}/${SAFETENSORS_INDEX}: no "weight_map" object`, "unsupported");
  }
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  const bad = shards.find((s) => typeof s !== "string" || s.includes("..") || s.startsWith("/"));
  if (bad !== undefined) throw new HubError(`${repo}/${SAFETENSORS_INDEX}: bad shard name ${JSON.stringify(bad)}`, "unsupported");
  if (repoFiles) {
    const missing = (shards as string[]).filter((s) => !repoFiles.includes(s));
    if (missing.length) throw new HubError(`${repo}/${SAFETENSORS_INDEX} names shards the repository lacks: ${missing.join(", ")}`, "unsupported");
  }
  return (shards as string[]).sort();
}
