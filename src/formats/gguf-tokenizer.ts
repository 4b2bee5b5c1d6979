// Tokenizer metadata in GGUF (tokenizer.ggml.*) <-> Hugging Face tokenizer.json / tokenizer_config.json.
// Mirrors llama.cpp's convert_hf_to_gguf.py (get_vocab_base + _set_vocab_gpt2 + SpecialVocab): one token
// per embedding row, "[PAD<i>]" for rows without a token, token types NORMAL / CONTROL (special added
// tokens) / USER_DEFINED (other added tokens, e.g. Phi-2's whitespace runs) / UNUSED, merges as "a b".
import { ModelFormatError } from "./tensor.js";
import { byteLevelBpeTokenizerJson } from "../tokenizer/files.js";
import type { GgufScalar, GgufValue } from "./gguf-file.js";

/** llama.cpp's token types (gguf-py TokenType / llama_token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

function strings(meta: Map<string, GgufValue>, key: string, file: string, required: boolean): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) {
    if (required) throw new ModelFormatError(`${file}: missing metadata "${key}"`);
    return undefined;
  }
  if (v.type !== "array" || v.itemType !== "string") {
    throw new ModelFormatError(`${file}: metadata "${key}" must be an array of strings`);
  }
  return v.value as string[];
}

function optionalNumber(meta: Map<string, GgufValue>, key: string, file: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value !== "number") throw new ModelFormatError(`${file}: metadata "${key}" must be a number`);
  return v.value;
}

function optionalBool(meta: Map<string, GgufValue>, key: string, file: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "bool") throw new ModelFormatError(`${file}: metadata "${key}" must be a bool`);
  return v.value;
}

/**
 * Builds tokenizer.json and tokenizer_config.json objects from a GGUF's gpt2-style BPE metadata, so the
 * Hugging Face tokenizer pipeline (ByteLevel BPE + added tokens) tokenizes exactly as the original files.
 */
export function tokenizerFromGguf(
  meta: Map<string, GgufValue>, file: string, contextLength: number,
): { tokenizerJson: object; tokenizerConfig: object } {
  const model = meta.get("tokenizer.ggml.model");
  if (model === undefined) throw new ModelFormatError(`${file}: missing metadata "tokenizer.ggml.model"`);
  if (model.type !== "string" || model.value !== "gpt2") {
    throw new ModelFormatError(`${file}: tokenizer.ggml.model ${JSON.stringify(model.value)} is not supported (phi-2 uses "gpt2", byte-level BPE)`);
  }
  const tokens = strings(meta, "tokenizer.ggml.tokens", file, true)!;
  const merges = strings(meta, "tokenizer.ggml.merges", file, true)!;
  const typesValue = meta.get("tokenizer.ggml.token_type");
  let types: GgufScalar[] | undefined;
  if (typesValue !== undefined) {
    if (typesValue.type !== "array" || typeof typesValue.value[0] !== "number") {
      throw new ModelFormatError(`${file}: metadata "tokenizer.ggml.token_type" must be an array of integers`);
    }
    types = typesValue.value;
    if (types.length !== tokens.length) {
      throw new ModelFormatError(`${file}: tokenizer.ggml.token_type has ${types.length} entries but tokenizer.ggml.tokens has ${tokens.length}`);
    }
  }
  const vocab: Record<string, number> = {};
  const addedTokens: HfAddedToken[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const type = types ? (types[id] as number) : TOKEN_TYPE.NORMAL;
    const content = tokens[id];
    // Rows without a token: UNUSED today; llama.cpp's converter before mid-2024 (which made the phi-2
    // GGUFs most people downloaded, e.g. TheBloke's) wrote the same "[PAD<id>]" placeholders as
    // USER_DEFINED, which would make them added tokens the model could print and prompts could contain.
    if (type === TOKEN_TYPE.UNUSED || (type === TOKEN_TYPE.USER_DEFINED && content === `[PAD${id}]`)) continue;
    if (type === TOKEN_TYPE.USER_DEFINED || type === TOKEN_TYPE.CONTROL) {
      const special = type === TOKEN_TYPE.CONTROL;
      addedTokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
      // Special tokens of GPT-2 (<|endoftext|>) are also part of its BPE vocabulary, as in vocab.json.
      if (!special) continue;
    }
    if (!(content in vocab)) vocab[content] = id;
  }
  const tokenAt = (key: string): string | undefined => {
    const id = optionalNumber(meta, key, file);
    if (id === undefined) return undefined;
    if (!Number.isInteger(id) || id < 0 || id >= tokens.length) {
      throw new ModelFormatError(`${file}: ${key} ${id} is not a token id (vocabulary of ${tokens.length})`);
    }
    return tokens[id];
  };
  const addedTokensDecoder: Record<string, object> = {};
  for (const t of addedTokens) {
    addedTokensDecoder[String(t.id)] = {
      content: t.content, lstrip: false, normalized: t.normalized, rstrip: false, single_word: false, special: t.special,
    };
  }
  const tokenizerJson = byteLevelBpeTokenizerJson(vocab, [...merges], addedTokens);
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: optionalBool(meta, "tokenizer.ggml.add_bos_token", file) ?? false,
    add_eos_token: optionalBool(meta, "tokenizer.ggml.add_eos_token", file) ?? false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    clean_up_tokenization_spaces: true,
    model_max_length: contextLength,
    tokenizer_class: "CodeGenTokenizer",
  };
  const bos = tokenAt("tokenizer.ggml.bos_token_id");
  const eos = tokenAt("tokenizer.ggml.eos_token_id");
  const unk = tokenAt("tokenizer.ggml.unknown_token_id");
  const pad = tokenAt("tokenizer.ggml.padding_token_id");
  if (bos !== undefined) tokenizerConfig.bos_token = bos;
  if (eos !== undefined) tokenizerConfig.eos_token = eos;
  if (unk !== undefined) tokenizerConfig.unk_token = unk;
  if (pad !== undefined) tokenizerConfig.pad_token = pad;
  return { tokenizerJson, tokenizerConfig };
}

/** Minimal view of tokenizer.json that the GGUF writer needs. */
interface TokenizerJsonLike {
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  model?: { type?: string; vocab?: Record<string, number>; merges?: Array<string | [string, string]> };
}

/**
 * tokenizer.ggml.* metadata for a gpt2-style BPE tokenizer.json, the way convert_hf_to_gguf.py writes it
 * for phi-2: `vocabSize` tokens (the embedding rows), merges, token types, special token ids.
 */
export function tokenizerToGgufMetadata(
  tokenizerJson: object, tokenizerConfig: object, vocabSize: number, source: string,
): Array<[string, GgufValue]> {
  const tj = tokenizerJson as TokenizerJsonLike;
  const tc = tokenizerConfig as Record<string, unknown>;
  if (tj.model?.type !== "BPE" || !tj.model.vocab || !tj.model.merges) {
    throw new ModelFormatError(`${source}: tokenizer.json must hold a BPE model with vocab and merges`);
  }
  const byId = new Map<number, { content: string; type: number }>();
  for (const [content, id] of Object.entries(tj.model.vocab)) byId.set(id, { content, type: TOKEN_TYPE.NORMAL });
  const idOf = new Map<string, number>(Object.entries(tj.model.vocab));
  for (const t of tj.added_tokens ?? []) {
    byId.set(t.id, { content: t.content, type: t.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED });
    idOf.set(t.content, t.id);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = byId.get(i);
    tokens.push(t ? t.content : `[PAD${i}]`);
    types.push(t ? t.type : TOKEN_TYPE.UNUSED);
  }
  for (const id of byId.keys()) {
    if (id >= vocabSize) throw new ModelFormatError(`${source}: token id ${id} is outside the ${vocabSize} embedding rows`);
  }
  const merges = tj.model.merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const meta: Array<[string, GgufValue]> = [
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: "phi-2" }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types }],
    ["tokenizer.ggml.merges", { type: "array", itemType: "string", value: merges }],
  ];
  const special = (name: string, key: string): void => {
    const raw = tc[name];
    const content = typeof raw === "string" ? raw : (raw as { content?: string } | undefined)?.content;
    if (content === undefined) return;
    const id = idOf.get(content);
    if (id !== undefined) meta.push([key, { type: "u32", value: id }]);
  };
  special("bos_token", "tokenizer.ggml.bos_token_id");
  special("eos_token", "tokenizer.ggml.eos_token_id");
  special("unk_token", "tokenizer.ggml.unknown_token_id");
  special("pad_token", "tokenizer.ggml.padding_token_id");
  // Phi2Model.set_gguf_parameters: add_add_bos_token(False).
  meta.push(["tokenizer.ggml.add_bos_token", { type: "bool", value: false }]);
  return meta;
}
