// Options shared by the commands that load a model or sample from it, parsed and checked in one place
// so every command names a bad value the same way.
import { Command, InvalidArgumentError, Option } from "commander";
import {
  DEFAULT_MODEL_ID, KV_CACHE_TYPES, PROMPT_FORMATS, loadModel, resolveModel,
  type GenerationOptions, type HubOptions, type KvCacheType, type LoadedModel, type LoadOptions, type PromptFormat,
} from "../index.js";
import { unescapePrompt } from "./text.js";

export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got "${v}"`);
    return n;
  };
}

export function floatArg(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in ${min}..${max}, got "${v}"`);
    return n;
  };
}

/** A number > 0 (a penalty that divides by it). */
function positiveArg(name: string, note: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0 (${note}), got "${v}"`);
    return n;
  };
}

/** -n: at least 1 token, or -1 = no limit (llama.cpp's "infinite"), which generationOptions turns into no maxTokens. */
function maxTokensArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || (n < 1 && n !== -1)) {
    throw new InvalidArgumentError(`--max-tokens must be an integer >= 1, or -1 for no limit, got "${v}"`);
  }
  return n;
}

/** The sampler's RNG keeps 32 bits of the seed: a larger one would silently repeat a smaller one's text. */
function seedArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < -1 || n > 0xffffffff) {
    throw new InvalidArgumentError(`--seed must be an integer in 0..4294967295, or -1 for a random seed, got "${v}"`);
  }
  return n;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface ModelOptionSettings {
  /** Smallest --ctx-size accepted (default 1). */
  minCtxSize?: number;
  /** -r for --revision (serve, as `pull -r`); elsewhere -r means something else (run, chat: --reverse-prompt) or is free. */
  shortRevision?: boolean;
}

export function addModelOptions(cmd: Command, settings: ModelOptionSettings = {}): Command {
  cmd
    .option("-m, --model <path|id>", "model folder (Hugging Face layout), .gguf file, or hub id (user/repo, user/repo:QUANT)", DEFAULT_MODEL_ID)
    .option("-t, --threads <n>", "worker threads (default: all cores)", intArg("--threads", 1, 256))
    .option("-c, --ctx-size <n>", "context length in tokens (default: the model's, 2048)", intArg("--ctx-size", settings.minCtxSize ?? 1, 1 << 20))
    .addOption(new Option("-q, --quant <type>", "quantize 16/32-bit weights in memory at load (no file written)").choices(["q8_0", "q4_0"]))
    .addOption(new Option("--kv-type <type>", "KV cache element type: f16 (half the memory, as llama.cpp) or f32 (exact keys/values)").choices([...KV_CACHE_TYPES]).default("f16"));
  return addHubOptions(cmd, settings.shortRevision);
}

/** --revision and --hub-url, for a --model that is a hub id (read back with hubOptions). */
export function addHubOptions(cmd: Command, shortRevision = false): Command {
  return cmd
    .option(`${shortRevision ? "-r, " : ""}--revision <rev>`, "hub revision when --model is a hub id", "main")
    .option("--hub-url <url>", "hub endpoint (default: HF_ENDPOINT or https://huggingface.co)");
}

export interface SamplingOptionSettings {
  /** --format's default (default "raw"). */
  format?: PromptFormat;
  /** -r for --reverse-prompt, as llama-cli has it (only where -r means nothing else). */
  shortReversePrompt?: boolean;
}

/**
 * Another spelling of an option of `cmd` (llama.cpp's or ollama's name for it): parsed by the same
 * parser and stored as that option, so a repeatable one (--stop) collects from both spellings.
 */
export function addAlias(cmd: Command, flags: string, targetLong: string): void {
  const target = cmd.options.find((opt) => opt.long === targetLong);
  if (!target) throw new Error(`addAlias: ${cmd.name()} has no option ${targetLong}`);
  const key = target.attributeName();
  const value = /<[^>]+>/.exec(target.flags)?.[0] ?? "";
  const alias = new Option(`${flags} ${value}`, `same as ${targetLong}`)
    .argParser((v: string) => (target.parseArg ? target.parseArg(v, cmd.getOptionValue(key)) : v));
  cmd.addOption(alias);
  // Runs after commander's own listener has parsed and stored the alias's value.
  cmd.on(`option:${alias.name()}`, () => cmd.setOptionValueWithSource(key, cmd.getOptionValue(alias.attributeName()), "cli"));
}

export function addSamplingOptions(cmd: Command, settings: SamplingOptionSettings = {}): Command {
  cmd
    .option("-n, --max-tokens <n>", "maximum new tokens; -1 or unset: until EOS, a stop string or the context end", maxTokensArg)
    .option("--temperature <t>", "sampling temperature; 0 = greedy", floatArg("--temperature", 0, 100), 0.8)
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", intArg("--top-k", 0), 40)
    .option("--top-p <p>", "nucleus sampling: keep tokens up to this cumulative probability (1 = off)", floatArg("--top-p", 0, 1), 0.95)
    .option("--min-p <p>", "drop tokens below p × the top probability (0 = off)", floatArg("--min-p", 0, 1), 0.05)
    .option("--repeat-penalty <x>", "repetition penalty, > 0 (1 = off)", positiveArg("--repeat-penalty", "1 = off"), 1.0)
    .option("--repeat-last-n <n>", "tokens the penalties look back over (-1 = all)", intArg("--repeat-last-n", -1), 64)
    .option("--presence-penalty <x>", "OpenAI presence penalty (0 = off)", floatArg("--presence-penalty", -2, 2), 0)
    .option("--frequency-penalty <x>", "OpenAI frequency penalty (0 = off)", floatArg("--frequency-penalty", -2, 2), 0)
    .option("-s, --seed <n>", "random seed, 0..4294967295 (same seed, same text); -1 or unset: a random one (run prints it, chat's /params shows it)", seedArg)
    .option("--stop <text>", "stop string (repeatable); added to the format's defaults", collect)
    .addOption(new Option("--format <name>", "prompt format: raw text, Instruct/Output QA, Alice/Bob chat, or code").choices([...PROMPT_FORMATS]).default(settings.format ?? "raw"))
    .option("--no-default-stops", "do not add the format's default stop strings");
  addAlias(cmd, "--n-predict", "--max-tokens");
  addAlias(cmd, "--temp", "--temperature");
  addAlias(cmd, settings.shortReversePrompt ? "-r, --reverse-prompt" : "--reverse-prompt", "--stop");
  return cmd;
}

export interface ModelOpts {
  model: string; threads?: number; ctxSize?: number; quant?: "q8_0" | "q4_0"; kvType?: KvCacheType; revision?: string; hubUrl?: string;
}

/** How --model is fetched when it is a hub id. */
export function hubOptions(o: { revision?: string; hubUrl?: string }): HubOptions {
  return { revision: o.revision, hubUrl: o.hubUrl };
}

export function loadOptions(o: ModelOpts): LoadOptions {
  return { threads: o.threads, contextLength: o.ctxSize, quant: o.quant, kvType: o.kvType };
}

/** A load error's rethrower: the library says "context length must be 1..N", which on the command line is --ctx-size's value. */
export function namingCtxSize(o: ModelOpts): (e: unknown) => never {
  return (e) => {
    if (e instanceof RangeError && /^context length/.test(e.message) && o.ctxSize !== undefined) {
      throw new RangeError(`--ctx-size ${o.ctxSize}: ${e.message}`);
    }
    throw e;
  };
}

/** Resolves --model (downloading a hub id into the cache when needed) and loads it. */
export async function openModel(o: ModelOpts, extra: LoadOptions = {}): Promise<LoadedModel> {
  const path = await resolveModel(o.model, hubOptions(o));
  const model = await loadModel(path, { ...loadOptions(o), ...extra }).catch(namingCtxSize(o));
  printNotices(model);
  return model;
}

/** The model's load-time conversions (weights held in another type than the file's), one stderr line each. */
export function printNotices(model: LoadedModel, prefix = "phi2"): void {
  for (const line of model.notices) process.stderr.write(`${prefix}: note: ${line}\n`);
}

export interface SamplingOpts {
  maxTokens?: number; temperature: number; topK: number; topP: number; minP: number; repeatPenalty: number;
  repeatLastN: number; presencePenalty: number; frequencyPenalty: number; seed?: number; stop?: string[];
  /** --no-escape sets it false: --stop strings are then taken literally, like the prompt. */
  escape: boolean;
}

export function generationOptions(o: SamplingOpts, formatStops: string[]): GenerationOptions {
  return {
    maxTokens: o.maxTokens === -1 ? undefined : o.maxTokens,
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    minP: o.minP,
    repetitionPenalty: o.repeatPenalty,
    penaltyLastN: o.repeatLastN,
    presencePenalty: o.presencePenalty,
    frequencyPenalty: o.frequencyPenalty,
    seed: o.seed === -1 ? undefined : o.seed,
    // Unescaped as the prompt is (llama.cpp does so for its reverse prompts too): `--stop '\n'` is a newline.
    stop: [...formatStops, ...(o.stop ?? []).map((t) => (o.escape ? unescapePrompt(t) : t))],
  };
}

/** Prints a one-line error (no stack trace) and exits 1: for errors caused by the user's input. */
export function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`error: ${msg}\n`);
  process.exit(1);
}
