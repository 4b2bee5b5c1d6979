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
