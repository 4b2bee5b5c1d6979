// Tokenization parity with llama.cpp on a GGUF written by our quantizer: llama.cpp's tokenizer (built
// from the file's tokenizer.ggml.* metadata, pre-tokenizer "phi-2") and ours (the tokenizer.json we
// rebuild from the same metadata) give the same ids for the same text, and decode ids to the same text.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer, type Phi2Tokenizer } from "../../src/index.js";
import { quantizeModel } from "../../src/formats/gguf-quantize.js";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";
import { cpuLlama } from "../helpers/llama.js";
import type { LlamaModel, Token } from "node-llama-cpp";

const TEXTS = [
  "Hello, world!",
  "Instruct: Write a haiku about the sea.\nOutput:",
  "Alice: Hi Bob, how are you?\nBob: Fine, thanks.\nAlice:",
  'def fib(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  "class A {\n\tconstructor() {\n\t\tthis.x = 1;\t\t// tabs\n\t}\n}\n",
  // Whitespace runs longer and shorter than the added tokens (2..31 spaces, 2..9 tabs), mixed.
  "a  b   c    d" + " ".repeat(31) + "e" + " ".repeat(32) + "f" + " ".repeat(70) + "g",
  "\t\t\t\t\t\t\t\t\t|\t\t\t\t\t\t\t\t\t\t|\t \t  \t|",
  "   leading spaces and trailing   ",
  "\n\n\nnewlines\r\n\r\nCRLF\n \n  \n",
  "numbers 1234567890 3.14159 -42 1e-10 0x1F 1,000,000",
  "contractions: don't, I'M, we'll, they've, it's, 'quoted'",
  "naïve café — 日本語のテキスト, emoji 🚀🙂👍🏽, Ελληνικά, русский",
  "<|endoftext|>after the special token<|endoftext|>",
  "x".repeat(100) + " " + "ab".repeat(40),
  "    return x  *  2   # trailing spaces   ",
  "https://example.com/path?query=1&b=2#frag user@example.org",
];

let llama: LlamaModel;
let ours: Phi2Tokenizer;

before(async () => {
  const file = join(tempDir("phi2-llama-tok-"), "tiny-f16.gguf");
  await quantizeModel(testModel({ preset: "tiny", dtype: "f32", seed: 1, peaked: true }), "f16", file);
  llama = await (await cpuLlama()).loadModel({ modelPath: file, vocabOnly: true });
  ours = loadTokenizer(file);
});
after(async () => {
  await llama?.dispose();
});

test("llama.cpp tokenizes like us (special tokens parsed, as both default)", () => {
  let whitespaceTokens = 0;
  for (const text of TEXTS) {
    const expected = llama.tokenize(text, true);
    assert.deepEqual(ours.encode(text), expected, JSON.stringify(text));
    whitespaceTokens += expected.filter((id) => id >= 50257 && id <= 50294).length;
  }
  assert.ok(whitespaceTokens >= 5, "the texts exercise phi-2's added whitespace tokens");
  assert.ok(llama.tokenize(TEXTS[12]!, true).includes(50256 as Token), "<|endoftext|> was parsed as the special token");
});

test("llama.cpp tokenizes like us with special tokens taken as plain text", () => {
  for (const text of TEXTS) {
    assert.deepEqual(ours.encode(text, { parseSpecial: false }), llama.tokenize(text, false), JSON.stringify(text));
  }
  assert.ok(!llama.tokenize(TEXTS[12]!, false).includes(50256 as Token));
});

test("llama.cpp decodes our ids to the same text as we do", () => {
  for (const text of TEXTS) {
    const ids = ours.encode(text);
    assert.equal(llama.detokenize(ids as Token[], true), ours.decode(ids), JSON.stringify(text));
    assert.equal(ours.decode(ids), text, "round trip");
  }
});
