// OpenAI's request fields -> our GenerationOptions, validated with errors that name the parameter.
// Defaults are OpenAI's: temperature 1, top_p 1, /v1/completions max_tokens 16, chat max_tokens "until the
// context is full". Extensions that llama.cpp and vLLM servers also accept: top_k, min_p,
// repetition_penalty, ignore_eos.
import type { GenerationOptions } from "../index.js";
import { invalidParam } from "./errors.js";
import { Fields, describeJson } from "./fields.js";

/** Alternatives per token that logprobs / top_logprobs may ask for (OpenAI allows 5 and 20). */
export const MAX_LOGPROBS = 20;
/** Stop strings per request (OpenAI allows 4; more costs us nothing). */
export const MAX_STOP_STRINGS = 16;

export interface CommonRequest {
  /** The `model` field as sent (undefined when absent). */
  model?: string;
  options: GenerationOptions;
  /** max_tokens as sent; undefined -> the endpoint's default. */
  maxTokens?: number;
  /** Which field carried max_tokens, for error messages. */
  maxTokensParam: string;
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

export interface CompletionRequest extends CommonRequest {
  /** Each prompt as text or as token ids. */
  prompts: (string | number[])[];
  echo: boolean;
  /** Alternatives per token in `logprobs` (0 = only the chosen token's), or null: no logprobs. */
  logprobs: number | null;
}

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
}

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
  logprobs: boolean;
  topLogprobs: number;
  /** Speaker names of the Phi-2 chat format (extension fields user_name / assistant_name). */
  userName?: string;
  assistantName?: string;
}

export interface ParseContext {
  /** Real tokens of the vocabulary (logit_bias keys and token-id prompts must be below it). */
  vocabSize: number;
  /** Most sequences one request may ask for (n × prompts). */
  maxSequences: number;
}

function parseStop(f: Fields): string[] {
  const value = f.raw("stop");
  if (value === undefined) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string")) {
    throw invalidParam("stop", `'stop' must be a string or an array of strings, got ${describeJson(value)}.`);
  }
  if (list.length > MAX_STOP_STRINGS) {
    throw invalidParam("stop", `'stop' may hold at most ${MAX_STOP_STRINGS} strings, got ${list.length}.`);
  }
  return (list as string[]).filter((s) => s.length > 0);
}

function parseLogitBias(f: Fields, vocabSize: number): Record<number, number> | undefined {
  const bias = f.object("logit_bias");
  if (!bias) return undefined;
  const out: Record<number, number> = {};
  for (const key of bias.keys()) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || id >= vocabSize) {
      throw invalidParam("logit_bias", `'logit_bias' keys must be token ids 0..${vocabSize - 1}, got ${JSON.stringify(key)}.`);
    }
    const value = bias.number(key, { min: -100, max: 100 });
    if (value !== undefined) out[id] = value;
  }
  return out;
}

function parseCommon(f: Fields, ctx: ParseContext, maxTokensKeys: string[], minMaxTokens: number): CommonRequest {
  const model = f.string("model");
  const options: GenerationOptions = {
    temperature: f.number("temperature", { min: 0, max: 2 }) ?? 1,
    topP: f.number("top_p", { min: 0, max: 1 }) ?? 1,
    minP: f.number("min_p", { min: 0, max: 1 }) ?? 0,
    presencePenalty: f.number("presence_penalty", { min: -2, max: 2 }) ?? 0,
    frequencyPenalty: f.number("frequency_penalty", { min: -2, max: 2 }) ?? 0,
    repetitionPenalty: f.number("repetition_penalty", { min: 0, max: 10 }) ?? 1,
    stop: parseStop(f),
    stopOnEos: !(f.boolean("ignore_eos") ?? false),
  };
  // vLLM uses top_k = -1 for "off"; we use 0.
  const topK = f.integer("top_k", { min: -1 });
  options.topK = topK === undefined || topK < 0 ? 0 : topK;
  if (options.repetitionPenalty === 0) throw invalidParam("repetition_penalty", "'repetition_penalty' must be greater than 0.");
  const seed = f.integer("seed");
  if (seed !== undefined) {
    if (!Number.isSafeInteger(seed)) throw invalidParam("seed", `'seed' must be a safe integer, got ${seed}.`);
    options.seed = seed;
  }
  const bias = parseLogitBias(f, ctx.vocabSize);
  if (bias) options.logitBias = bias;

  let maxTokens: number | undefined;
  let maxTokensParam = maxTokensKeys[0];
  for (const key of maxTokensKeys) {
    const value = f.integer(key, { min: minMaxTokens });
    if (value !== undefined) {
      maxTokens = value;
      maxTokensParam = key;
      break;
    }
  }
  const n = f.integer("n", { min: 1, max: ctx.maxSequences }) ?? 1;
  const stream = f.boolean("stream") ?? false;
  const streamOptions = f.object("stream_options");
  if (streamOptions && !stream) {
    throw invalidParam("stream_options", "'stream_options' is only allowed when 'stream' is true.");
  }
  const includeUsage = streamOptions?.boolean("include_usage") ?? false;
  return { model, options, maxTokens, maxTokensParam, n, stream, includeUsage };
}

function isTokenIdArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "number");
}

function checkTokenIds(ids: number[], param: string, vocabSize: number): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw invalidParam(param, `'${param}' holds ${id}, which is not a token id (0..${vocabSize - 1}).`);
    }
  }
}

function parsePrompts(f: Fields, vocabSize: number): (string | number[])[] {
  const value = f.raw("prompt");
  // Without a prompt OpenAI generates "as if from the beginning of a new document": the empty prompt.
  if (value === undefined) return [""];
  if (typeof value === "string") return [value];
  if (isTokenIdArray(value)) {
    checkTokenIds(value, "prompt", vocabSize);
    return [value];
  }
  if (Array.isArray(value) && value.length > 0) {
    return value.map((item, i) => {
      if (typeof item === "string") return item;
      if (isTokenIdArray(item)) {
        checkTokenIds(item, `prompt[${i}]`, vocabSize);
        return item;
      }
      throw invalidParam(`prompt[${i}]`, `'prompt[${i}]' must be a string or an array of token ids, got ${describeJson(item)}.`);
    });
  }
  throw invalidParam("prompt", `'prompt' must be a string, an array of strings, or token ids, got ${describeJson(value)}.`);
}

export function parseCompletionRequest(body: unknown, ctx: ParseContext): CompletionRequest {
  const f = Fields.of(body);
  // max_tokens 0 scores the prompt (echo + logprobs) without generating, as OpenAI's completions allow
  const common = parseCommon(f, ctx, ["max_tokens"], 0);
  const prompts = parsePrompts(f, ctx.vocabSize);
  const bestOf = f.integer("best_of", { min: 1 });
  if (bestOf !== undefined && bestOf !== common.n) {
    throw invalidParam("best_of", "'best_of' other than n is not supported (every generated choice is returned).");
  }
  f.unsupported("suffix", (v) => v === "", "Phi-2 has no fill-in-the-middle mode.");
  if (prompts.length * common.n > ctx.maxSequences) {
    throw invalidParam(
      "n",
      `This request asks for ${prompts.length * common.n} sequences (prompts × n); the server takes at most ${ctx.maxSequences}.`,
    );
  }
  const logprobs = f.integer("logprobs", { min: 0, max: MAX_LOGPROBS }) ?? null;
  const echo = f.boolean("echo") ?? false;
  if (logprobs !== null) {
    common.options.logprobs = true;
    common.options.topLogprobs = logprobs;
  }
  return { ...common, prompts, echo, logprobs };
}

function parseContent(value: unknown, param: string, role: string): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) {
    if (role === "assistant") return "";
    throw invalidParam(param, `'${param}' is required for a ${role} message.`);
  }
  if (!Array.isArray(value)) throw invalidParam(param, `'${param}' must be a string or an array of text parts.`);
  return value
    .map((part, i) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (!p || typeof p !== "object" || p.type !== "text" || typeof p.text !== "string") {
        const type = p && typeof p === "object" ? JSON.stringify(p.type) : describeJson(part);
        throw invalidParam(`${param}[${i}]`, `'${param}[${i}]' must be {"type": "text", "text": ...}; Phi-2 reads text only (got type ${type}).`);
      }
      return p.text;
    })
    .join("");
}

function parseMessages(f: Fields): ChatMessage[] {
  const value = f.raw("messages");
  if (value === undefined) throw invalidParam("messages", "'messages' is required.");
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidParam("messages", "'messages' must be a non-empty array of {role, content}.");
  }
  return value.map((item, i): ChatMessage => {
    const param = `messages[${i}]`;
    if (!item || typeof item !== "object" || Array.isArray(item)) throw invalidParam(param, `'${param}' must be an object.`);
    const m = new Fields(item as Record<string, unknown>, `${param}.`);
    const role = m.string("role");
    if (role === undefined) throw invalidParam(`${param}.role`, `'${param}.role' is required.`);
    // "developer" is OpenAI's newer name for the system role.
    const mapped = role === "developer" ? "system" : role;
    if (mapped !== "system" && mapped !== "user" && mapped !== "assistant") {
      throw invalidParam(`${param}.role`, `'${param}.role' must be system, developer, user or assistant, got ${JSON.stringify(role)} (tools are not supported).`);
    }
    const content = parseContent(m.raw("content"), `${param}.content`, mapped);
    const name = m.string("name");
    return name === undefined ? { role: mapped, content } : { role: mapped, content, name };
  });
}

export function parseChatRequest(body: unknown, ctx: ParseContext): ChatRequest {
  const f = Fields.of(body);
  const common = parseCommon(f, ctx, ["max_completion_tokens", "max_tokens"], 1);
  const messages = parseMessages(f);
  const logprobs = f.boolean("logprobs") ?? false;
  const topLogprobs = f.integer("top_logprobs", { min: 0, max: MAX_LOGPROBS }) ?? 0;
  if (f.has("top_logprobs") && !logprobs) {
    throw invalidParam("top_logprobs", "'top_logprobs' requires 'logprobs' to be true.");
  }
  if (logprobs) {
    common.options.logprobs = true;
    common.options.topLogprobs = topLogprobs;
  }
  const isEmptyList = (v: unknown) => Array.isArray(v) && v.length === 0;
  f.unsupported("tools", isEmptyList, "Phi-2 has no tool calling.");
  f.unsupported("functions", isEmptyList, "Phi-2 has no function calling.");
  f.unsupported("tool_choice", (v) => v === "none", "Phi-2 has no tool calling.");
  f.unsupported("response_format", (v) => !!v && typeof v === "object" && (v as { type?: unknown }).type === "text", "only {\"type\": \"text\"}.");
  f.unsupported("audio", () => false, "Phi-2 reads and writes text only.");
  f.unsupported("modalities", (v) => Array.isArray(v) && v.every((m) => m === "text"), "Phi-2 reads and writes text only.");
  const userName = f.string("user_name");
  const assistantName = f.string("assistant_name");
  for (const [key, name] of [["user_name", userName], ["assistant_name", assistantName]] as const) {
    if (name !== undefined && (name.trim() === "" || name.includes("\n") || name.includes(":"))) {
      throw invalidParam(key, `'${key}' must be a non-empty name without newlines or colons.`);
    }
  }
  return { ...common, messages, logprobs, topLogprobs, userName, assistantName };
}
