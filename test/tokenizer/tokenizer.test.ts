import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// gpt-3-encoder is an independent GPT-2 BPE implementation (OpenAI's encoder.py ported to JS): for text
// without runs of 2+ spaces or tabs, phi-2 must tokenize exactly like GPT-2.
import { encode as gpt2Encode } from "gpt-3-encoder";
import { phi2TokenizerFiles, phi2TokenizerJson, phi2TokenizerConfig } from "../../src/tokenizer/files.js";
import { Phi2Tokenizer } from "../../src/tokenizer/tokenizer.js";

const tok = Phi2Tokenizer.fromJson(phi2TokenizerJson(), phi2TokenizerConfig());

const GPT2_TEXTS = [
  "Hello world",
  "The quick brown fox jumps over the lazy dog.",
  "It's 3.14159 o'clock, isn't it? We'll see; they've gone.",
  "héllo wörld — naïve café, Ελληνικά, русский текст",
  "中文字符和日本語のテキスト、한국어",
  "emoji 😀🎉👩‍👩‍👧 and flags 🇫🇷",
  " leading space",
  "trailing space ",
  "line one\nline two\n\nline four\r\n",
  "def f(x):\n\treturn x * 2\n",
  "x=[1,2,3]; print(x[-1]) # comment",
  "<html><body class=\"a\">&amp;</body></html>",
  "1234567890 + 0.5e-3 = ?",
];

test("phi2 and GPT-2 tokenize alike where phi-2's whitespace tokens do not apply", () => {
  for (const text of GPT2_TEXTS) {
    assert.deepEqual(tok.encode(text), gpt2Encode(text), JSON.stringify(text));
  }
});

test("well-known GPT-2 ids", () => {
  assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
  assert.deepEqual(tok.encode(" the"), [262]);
  assert.deepEqual(tok.encode("\n"), [198]);
  assert.equal(tok.eosId, 50256);
  assert.equal(tok.eosToken, "<|endoftext|>");
  assert.equal(tok.size, 50295);
});

test("runs of spaces and tabs map to phi-2's added tokens, longest first", () => {
  for (let n = 2; n <= 31; n++) assert.deepEqual(tok.encode(" ".repeat(n)), [50257 + 31 - n], `${n} spaces`);
  for (let n = 2; n <= 9; n++) assert.deepEqual(tok.encode("\t".repeat(n)), [50287 + 9 - n], `${n} tabs`);
  assert.deepEqual(tok.encode(" ".repeat(40)), [50257, 50279]); // 31 + 9
  assert.deepEqual(tok.encode("\t".repeat(11)), [50287, 50294]); // 9 + 2
  assert.deepEqual(tok.encode("\t"), gpt2Encode("\t")); // a single tab stays GPT-2's byte token
});

test("indented code: the indentation is one added token and the keyword loses its leading space", () => {
  // HF cuts added tokens out before the pre-tokenizer: "\n" | 8 spaces | "return 1".
  const ids = tok.encode("def f():\n        return 1");
  assert.deepEqual(ids, [...gpt2Encode("def f():\n"), 50280, ...gpt2Encode("return 1")]);
  assert.equal(gpt2Encode("return")[0], 7783);
  assert.deepEqual(tok.encode("a  b"), [...gpt2Encode("a"), 50286, ...gpt2Encode("b")]);
  assert.deepEqual(tok.encode("if x:\n\t\tpass"), [...gpt2Encode("if x:\n"), 50294, ...gpt2Encode("pass")]);
});

test("decode(encode(text)) is exact on varied text", () => {
  const texts = [
    ...GPT2_TEXTS,
    "class A:\n    def f(self):\n        if x:\n            return {'a': 1}\n\t\t\tmixed\ttabs\n",
    "   three leading, trailing three   ",
    "\n\n",
    "  \n  \n",
    "Hello , world . Don 't stop !", // would be altered by HF's clean_up_tokenization_spaces
    "a" + " ".repeat(100) + "b",
    "<|endoftext|>after eos",
  ];
  for (const text of texts) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
});

test("special token text becomes the EOS id unless parseSpecial is false", () => {
  assert.deepEqual(tok.encode("a<|endoftext|>b"), [...gpt2Encode("a"), 50256, ...gpt2Encode("b")]);
  assert.deepEqual(tok.encode("a<|endoftext|>b", { parseSpecial: false }), gpt2Encode("a<|endoftext|>b"));
  assert.deepEqual(tok.encode("x  y", { parseSpecial: false }), tok.encode("x  y"));
  assert.equal(tok.isSpecial(50256), true);
  assert.equal(tok.isSpecial(50280), false);
});

test("tokenText and tokenBytes of single tokens", () => {
  assert.equal(tok.tokenText(262), " the");
  assert.equal(tok.tokenText(50280), " ".repeat(8));
  assert.equal(tok.tokenText(50256), "<|endoftext|>");
  const emoji = "😀";
  const ids = tok.encode(emoji);
  assert.ok(ids.length > 1, "the emoji spans several byte tokens");
  const bytes = ids.flatMap((id) => [...tok.tokenBytes(id)]);
  assert.deepEqual(bytes, [...new TextEncoder().encode(emoji)]);
  assert.ok(tok.tokenText(ids[0]).includes("\uFFFD"), "a partial character decodes to U+FFFD");
  assert.deepEqual([...tok.tokenBytes(50294)], [9, 9]);
});

test("ids outside the real vocabulary are rejected", () => {
  assert.throws(() => tok.decode([50295]), /token id 50295 is not in the vocabulary \(0\.\.50294\)/);
  assert.throws(() => tok.decode([-1]), /token id -1/);
  assert.equal(tok.decode([]), "");
  assert.deepEqual(tok.encode(""), []);
});

test("fromFolder reads a phi-2 folder and names the file on errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "phi2-tok-"));
  try {
    assert.throws(() => Phi2Tokenizer.fromFolder(dir), new RegExp(`${dir}/tokenizer\\.json: missing`));
    const files = phi2TokenizerFiles();
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const fromDisk = Phi2Tokenizer.fromFolder(dir);
    assert.equal(fromDisk.size, 50295);
    assert.equal(fromDisk.eosId, 50256);
    assert.deepEqual(fromDisk.encode("def f():\n        return 1"), tok.encode("def f():\n        return 1"));
    writeFileSync(join(dir, "tokenizer_config.json"), "{ not json");
    assert.throws(() => Phi2Tokenizer.fromFolder(dir), /tokenizer_config\.json: corrupt JSON/);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|nope|>" }));
    assert.throws(() => Phi2Tokenizer.fromFolder(dir), /eos token "<\|nope\|>" is not in the vocabulary/);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "BPE" } }));
    assert.throws(() => Phi2Tokenizer.fromFolder(dir), /tokenizer\.json: model\.vocab must be an object/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a folder with only the slow tokenizer's files (vocab.json, merges.txt, added_tokens.json) loads the same", () => {
  const dir = mkdtempSync(join(tmpdir(), "phi2-tok-"));
  try {
    const files = phi2TokenizerFiles();
    for (const name of ["vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json"]) {
      writeFileSync(join(dir, name), files[name]);
    }
    const text = "def f():\n        return '😀'\t\tx<|endoftext|>";
    const slow = Phi2Tokenizer.fromFolder(dir);
    assert.equal(slow.size, 50295);
    assert.deepEqual(slow.encode(text), tok.encode(text));
    // Without tokenizer_config.json: added_tokens.json + <|endoftext|> found in the vocabulary.
    rmSync(join(dir, "tokenizer_config.json"));
    const bare = Phi2Tokenizer.fromFolder(dir);
    assert.equal(bare.eosId, 50256);
    assert.deepEqual(bare.encode("a\t\tb"), tok.encode("a\t\tb"));
    rmSync(join(dir, "merges.txt"));
    assert.throws(() => Phi2Tokenizer.fromFolder(dir), /tokenizer\.json: missing \(a phi-2 folder needs tokenizer\.json, or vocab\.json and merges\.txt\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("phi2TokenizerFiles has the six files of a microsoft/phi-2 folder", () => {
  const files = phi2TokenizerFiles();
  assert.deepEqual(Object.keys(files).sort(), [
    "added_tokens.json",
    "merges.txt",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
  ]);
  const vocab = JSON.parse(files["vocab.json"]) as Record<string, number>;
  assert.equal(Object.keys(vocab).length, 50257);
  assert.equal(vocab["<|endoftext|>"], 50256);
  const merges = files["merges.txt"].split("\n").slice(1).filter((l) => l.length > 0); // after "#version: 0.2"
  assert.equal(merges.length, 50000);
  const added = JSON.parse(files["added_tokens.json"]) as Record<string, number>;
  assert.equal(Object.keys(added).length, 38);
  assert.equal(added[" ".repeat(31)], 50257);
  assert.equal(added["\t\t"], 50294);
  const config = JSON.parse(files["tokenizer_config.json"]) as Record<string, unknown>;
  assert.equal(config.tokenizer_class, "CodeGenTokenizer");
  assert.equal(config.eos_token, "<|endoftext|>");
  assert.equal(config.bos_token, "<|endoftext|>");
  assert.equal(config.unk_token, "<|endoftext|>");
  const json = JSON.parse(files["tokenizer.json"]) as {
    added_tokens: { id: number; content: string; special: boolean }[];
    pre_tokenizer: { type: string; add_prefix_space: boolean };
    decoder: { type: string };
    model: { type: string; merges: string[] };
  };
  assert.equal(json.added_tokens.length, 39);
  assert.deepEqual(
    json.added_tokens.filter((t) => t.special).map((t) => t.id),
    [50256],
  );
  assert.deepEqual(json.pre_tokenizer, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.equal(json.decoder.type, "ByteLevel");
  assert.equal(json.model.type, "BPE");
  assert.equal(json.model.merges[0], "Ġ t");
  assert.equal(json.model.merges.length, 50000);
});
