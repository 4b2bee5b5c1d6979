import { test } from "node:test";
import assert from "node:assert/strict";
import { formatPrompt, renderChat, defaultStops, isPromptFormat, CODE_STOPS } from "../../src/generation/formats.js";

test("QA format of the model card", () => {
  const f = formatPrompt("qa", "What is 2 + 2?");
  assert.equal(f.prompt, "Instruct: What is 2 + 2?\nOutput:");
  assert.ok(f.stop.includes("\nInstruct:"));
  assert.ok(f.stop.includes("<|endoftext|>"));
});

test("chat format: Alice and Bob by default, names configurable, stop at the next user turn", () => {
  const f = formatPrompt("chat", "Hi!");
  assert.equal(f.prompt, "Alice: Hi!\nBob:");
  assert.deepEqual(f.stop, ["\nAlice:", "<|endoftext|>"]);
  const named = formatPrompt("chat", "Hi!", { user: "User", assistant: "AI" });
  assert.equal(named.prompt, "User: Hi!\nAI:");
  assert.ok(named.stop.includes("\nUser:"));
});

test("code and raw prompts pass through unchanged", () => {
  const code = 'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """';
  const f = formatPrompt("code", code);
  assert.equal(f.prompt, code);
  for (const s of CODE_STOPS) assert.ok(f.stop.includes(s));
  assert.ok(!f.stop.some((s) => "\n    return x\n\tpass\n        # note".includes(s)), "indented code never stops");
  assert.deepEqual(formatPrompt("raw", " as is ").prompt, " as is ");
  assert.deepEqual(defaultStops("raw"), []);
});

test("renderChat: system preamble, alternating turns, ends with the assistant's name", () => {
  const f = renderChat([
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Hello" },
    { role: "assistant", content: "Hi, how can I help?" },
    { role: "user", content: "Tell me a joke.\n" },
  ]);
  assert.equal(f.prompt, "You are a helpful assistant.\nAlice: Hello\nBob: Hi, how can I help?\nAlice: Tell me a joke.\nBob:");
  assert.deepEqual(f.stop, ["\nAlice:", "<|endoftext|>"]);
  assert.throws(() => renderChat([]), /messages must not be empty/);
  assert.throws(() => renderChat([{ role: "tool" as "user", content: "x" }]), /messages\[0\]\.role/);
});

test("isPromptFormat", () => {
  assert.ok(isPromptFormat("qa"));
  assert.ok(!isPromptFormat("QA"));
});
