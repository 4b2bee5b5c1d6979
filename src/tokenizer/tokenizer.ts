// Phi-2's tokenizer: a thin wrapper over @huggingface/tokenizers (the JS port of HF `tokenizers`) that
// adds what generation needs: the real vocabulary size (ids past it are padding rows of lm_head and
// must never be sampled), the EOS id, per-token text and bytes for logprobs, and exact decoding.
//
// How Phi-2 treats its 38 whitespace tokens (runs of 2..31 spaces, 2..9 tabs): like HF, added tokens
// are cut out of the text first, longest match from the left, and only the pieces between them go
// through the ByteLevel pre-tokenizer + BPE. So "\n        return" is "\n" | 8 spaces (50280) |
// "return" (7783, no leading-space variant). The JS library does exactly this (a trie splitter over
// the added tokens before pre-tokenization); test/tokenizer checks it on code.
//
// One deliberate difference from `transformers`: phi-2's tokenizer_config.json says
// clean_up_tokenization_spaces = true, which makes HF's decode() rewrite " ." to "." and " 's" to "'s".
// That is lossy (decode(encode(x)) != x) and breaks streaming diffs, so we always decode exactly, as
// llama.cpp does.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { byteLevelBpeTokenizerJson, parseMergesTxt, type AddedTokenSpec } from "./files.js";

/** GPT-2's map from the printable stand-in characters of byte-level BPE back to raw bytes. */
function unicodeToBytes(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = bytes.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + n++);
    }
  }
  return new Map(bytes.map((b, i) => [String.fromCodePoint(chars[i]), b]));
}

const BYTE_OF_CHAR = unicodeToBytes();
const utf8 = new TextEncoder();

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerJsonShape {
  model?: { vocab?: Record<string, number> | unknown; type?: string };
  added_tokens?: AddedTokenJson[];
}

/** tokenizer_config.json names special tokens either as a string or as {content: string}. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

export interface EncodeOptions {
  /** Turn special-token text such as "<|endoftext|>" into its id (default true, as HF). */
  parseSpecial?: boolean;
}

export class Phi2Tokenizer {
  /** Number of real tokens (50295 for phi-2): highest id in vocab or added tokens, plus one. */
  readonly size: number;
  /** End-of-text id (50256 for phi-2), from tokenizer_config.json's eos_token or <|endoftext|>. */
  readonly eosId: number;
  readonly eosToken: string;
  private readonly hf: Tokenizer;
  /** id -> token string as stored (byte-level stand-ins for BPE tokens, raw text for added tokens). */
  private readonly idToToken: string[];
  private readonly addedIds: Set<number>;
  private readonly specialIds: Set<number>;
  private readonly textCache = new Map<number, string>();
  /** Built on first use by encode(text, {parseSpecial: false}). */
  private plainHf?: Tokenizer;

  private constructor(
    private readonly tokenizerJson: object,
    private readonly tokenizerConfig: Record<string, unknown>,
    source: string,
  ) {
    const json = tokenizerJson as TokenizerJsonShape;
    const vocab = json.model?.vocab;
    if (!vocab || typeof vocab !== "object" || Array.isArray(vocab)) {
      throw new Error(`${source}: model.vocab must be an object of token -> id (a byte-level BPE tokenizer)`);
    }
    try {
      this.hf = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new Error(`${source}: not a tokenizer the library can load: ${(err as Error).message}`);
    }
    this.idToToken = [];
    for (const [token, id] of Object.entries(vocab as Record<string, number>)) this.idToToken[id] = token;
    this.addedIds = new Set();
    this.specialIds = new Set();
    for (const t of json.added_tokens ?? []) {
      this.idToToken[t.id] = t.content;
      this.addedIds.add(t.id);
      if (t.special) this.specialIds.add(t.id);
    }
    this.size = this.idToToken.length;
    const eosToken = tokenName(tokenizerConfig.eos_token) ?? "<|endoftext|>";
    const eosId = this.hf.token_to_id(eosToken);
    if (eosId === undefined) {
      throw new Error(`${source}: eos token ${JSON.stringify(eosToken)} is not in the vocabulary`);
    }
    this.eosToken = eosToken;
    this.eosId = eosId;
  }

  /**
   * Loads tokenizer.json (+ tokenizer_config.json when present) from a model folder. Folders without
   * tokenizer.json but with the slow tokenizer's vocab.json + merges.txt (+ added_tokens.json) work too.
   */
  static fromFolder(dir: string): Phi2Tokenizer {
    const jsonPath = join(dir, "tokenizer.json");
    const configPath = join(dir, "tokenizer_config.json");
    const config = existsSync(configPath) ? readJsonFile(configPath) : {};
    if (existsSync(jsonPath)) return new Phi2Tokenizer(readJsonFile(jsonPath), config, jsonPath);
    const vocabPath = join(dir, "vocab.json");
    const mergesPath = join(dir, "merges.txt");
    if (!existsSync(vocabPath) || !existsSync(mergesPath)) {
      throw new Error(`${jsonPath}: missing (a phi-2 folder needs tokenizer.json, or vocab.json and merges.txt)`);
    }
    const vocab = readJsonFile(vocabPath) as Record<string, number>;
    const merges = parseMergesTxt(readTextFile(mergesPath));
    const addedPath = join(dir, "added_tokens.json");
    const added = addedTokensFromConfig(config, vocab, existsSync(addedPath) ? readJsonFile(addedPath) : {});
    return new Phi2Tokenizer(byteLevelBpeTokenizerJson(vocab, merges, added), config, vocabPath);
  }

  /** Builds from parsed tokenizer.json / tokenizer_config.json objects (e.g. made from GGUF metadata). */
  static fromJson(tokenizerJson: object, tokenizerConfig?: object, source = "tokenizer.json"): Phi2Tokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== "object") throw new Error(`${source}: must be a JSON object`);
    return new Phi2Tokenizer(tokenizerJson, (tokenizerConfig ?? {}) as Record<string, unknown>, source);
  }

  /** Text -> ids. No BOS is added (phi-2 has none). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (text.length === 0) return [];
    if (options.parseSpecial === false) return this.encodeWithoutSpecial(text);
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** Ids -> text, exactly (no clean-up of spaces; special tokens rendered as their text). */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return "";
    for (const id of ids) this.checkId(id);
    return this.hf.decode(ids as number[], { clean_up_tokenization_spaces: false });
  }

  /** Decoded text of one token (may be U+FFFD for a token holding part of a multi-byte character). */
  tokenText(id: number): string {
    let text = this.textCache.get(id);
    if (text === undefined) {
      text = this.decode([id]);
      this.textCache.set(id, text);
    }
    return text;
  }

  /** Raw UTF-8 bytes of one token (what OpenAI reports as `bytes` in logprobs). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    const token = this.idToToken[id];
    if (this.addedIds.has(id)) return utf8.encode(token);
    const out = new Uint8Array(token.length);
    let n = 0;
    for (const ch of token) {
      const b = BYTE_OF_CHAR.get(ch);
      if (b === undefined) return utf8.encode(token); // not a byte-level token: its text is its bytes
      out[n++] = b;
    }
    return out.slice(0, n);
  }

  /** Is this id a special token (e.g. <|endoftext|>)? */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size || this.idToToken[id] === undefined) {
      throw new RangeError(`token id ${id} is not in the vocabulary (0..${this.size - 1})`);
    }
  }

  /** Encodes with special-token text treated as plain text, by a second tokenizer without them. */
  private encodeWithoutSpecial(text: string): number[] {
    if (![...this.specialIds].some((id) => text.includes(this.idToToken[id]))) {
      return this.hf.encode(text, { add_special_tokens: false }).ids;
    }
    if (!this.plainHf) {
      const json = this.tokenizerJson as TokenizerJsonShape;
      const plain = { ...json, added_tokens: (json.added_tokens ?? []).filter((t) => !t.special) };
      this.plainHf = new Tokenizer(plain, this.tokenizerConfig);
    }
    return this.plainHf.encode(text, { add_special_tokens: false }).ids;
  }
}

function readTextFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read: ${(err as Error).message}`);
  }
}

function readJsonFile(path: string): Record<string, unknown> {
  const text = readTextFile(path);
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not a JSON object");
    return value as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path}: corrupt JSON: ${(err as Error).message}`);
  }
}

/**
 * The added tokens of a folder without tokenizer.json: tokenizer_config.json's added_tokens_decoder when
 * it has one (it carries the special flags), else added_tokens.json (content -> id) plus the config's
 * bos/eos/unk tokens as special.
 */
function addedTokensFromConfig(
  config: Record<string, unknown>,
  vocab: Record<string, number>,
  addedTokensJson: Record<string, unknown>,
): AddedTokenSpec[] {
  const decoder = config.added_tokens_decoder;
  if (decoder && typeof decoder === "object") {
    return Object.entries(decoder as Record<string, { content?: unknown; special?: unknown; normalized?: unknown }>)
      .filter(([, t]) => typeof t?.content === "string")
      .map(([id, t]) => ({
        id: Number(id),
        content: t.content as string,
        special: t.special === true,
        normalized: t.normalized === undefined ? t.special !== true : t.normalized === true,
      }));
  }
  const added: AddedTokenSpec[] = [];
  for (const name of ["bos_token", "eos_token", "unk_token"]) {
    const content = tokenName(config[name]);
    if (content !== undefined && vocab[content] !== undefined && !added.some((t) => t.content === content)) {
      added.push({ id: vocab[content], content, special: true, normalized: false });
    }
  }
  for (const [content, id] of Object.entries(addedTokensJson)) {
    if (typeof id === "number") added.push({ id, content, special: false, normalized: true });
  }
  return added.sort((a, b) => a.id - b.id);
}
