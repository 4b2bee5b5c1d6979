import { test } from "node:test";
import assert from "node:assert/strict";
import { phi2TokenizerJson, phi2TokenizerConfig } from "../../src/tokenizer/files.js";
import { Phi2Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { StreamDetokenizer } from "../../src/tokenizer/stream.js";

const tok = Phi2Tokenizer.fromJson(phi2TokenizerJson(), phi2TokenizerConfig());

function streamPieces(ids: number[]): string[] {
  const stream = new StreamDetokenizer(tok);
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  return pieces;
}

test("streaming emoji, CJK and accents never prints U+FFFD and adds up to decode(all)", () => {
  const texts = [
    "😀🎉 family: 👩‍👩‍👧 flag 🇫🇷 done",
    "中文字符和日本語のテキスト、한국어 mixed with English",
    "naïve café — Ελληνικά",
    "def f():\n        return '🐍'\n\t\tx  =  1",
    "  spaces   everywhere  ",
  ];
  for (const text of texts) {
    const ids = tok.encode(text);
    const pieces = streamPieces(ids);
    for (const p of pieces) assert.ok(!p.includes("\uFFFD"), `${JSON.stringify(text)} printed ${JSON.stringify(p)}`);
    assert.equal(pieces.join(""), tok.decode(ids));
    assert.equal(pieces.join(""), text);
  }
});

test("a character split over byte tokens is held until complete", () => {
  const ids = tok.encode("😀");
  assert.ok(ids.length >= 2);
  const stream = new StreamDetokenizer(tok);
  for (const id of ids.slice(0, -1)) assert.equal(stream.push(id), "");
  assert.equal(stream.push(ids[ids.length - 1]), "😀");
  assert.equal(stream.flush(), "");
});

test("spaces at token boundaries are kept", () => {
  const ids = tok.encode(" a b  c");
  assert.equal(streamPieces(ids).join(""), " a b  c");
  assert.equal(new StreamDetokenizer(tok).push(tok.encode(" the")[0]), " the");
});

test("an incomplete character at the end comes out of flush", () => {
  const ids = tok.encode("x😀");
  const stream = new StreamDetokenizer(tok);
  let out = "";
  for (const id of ids.slice(0, -1)) out += stream.push(id);
  assert.equal(out, "x");
  assert.equal(stream.flush(), "\uFFFD");
});

/** A stand-in tokenizer whose token i is the byte string tokens[i]. */
function byteTokens(tokens: number[][]) {
  return { decode: (ids: readonly number[]) => new TextDecoder().decode(new Uint8Array(ids.flatMap((i) => tokens[i]!))) };
}

test("tokens that each end one character and start the next: every character prints once complete, never U+FFFD", () => {
  // 中 = E4 B8 AD, 文 = E6 96 87, 字 = E5 AD 97 (phi-2's vocabulary has such tokens, e.g. 21253 = 9A E9)
  const tokens = [[0xe4], [0xb8, 0xad, 0xe6], [0x96, 0x87, 0xe5], [0xad], [0x97], [0x21]];
  const stream = new StreamDetokenizer(byteTokens(tokens));
  const pieces = tokens.map((_, i) => stream.push(i));
  pieces.push(stream.flush());
  assert.deepEqual(pieces, ["", "中", "文", "", "字", "!", ""]);
  // a longer run: 40 characters, each token carrying the end of one and the start of the next
  const text = "漢字仮名交じり文".repeat(5);
  const bytes = [...new TextEncoder().encode(text)];
  const straddling: number[][] = [];
  for (let i = 0; i < bytes.length; i += 2) straddling.push(bytes.slice(i, i + 2));
  const s2 = new StreamDetokenizer(byteTokens(straddling));
  const out = straddling.map((_, i) => s2.push(i)).concat(s2.flush());
  for (const p of out) assert.ok(!p.includes("\uFFFD"), JSON.stringify(p));
  assert.equal(out.join(""), text);
});

test("invalid UTF-8 from the model is printed after a few tokens instead of being held forever", () => {
  // A stand-in tokenizer whose tokens are single raw bytes.
  const bytes = {
    decode: (ids: readonly number[]) => new TextDecoder().decode(new Uint8Array(ids)),
  };
  const stream = new StreamDetokenizer(bytes);
  const lead = 0xc3; // starts a 2-byte character that never gets its continuation byte
  const printed = [stream.push(lead), stream.push(lead), stream.push(lead), stream.push(lead)];
  assert.ok(printed.slice(0, 3).every((p) => p === ""));
  assert.ok(printed[3].length > 0 && printed[3].includes("\uFFFD"));
  assert.equal(stream.push(0x41), "A");
});
