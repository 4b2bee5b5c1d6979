// Phi2 keeps one conversation's tokens in the KV cache between calls. Whatever a caller does with the
// stream (read it to the end, or stop early), the next call must compute exactly what it computes from an
// empty cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Phi2 } from "../../src/index.js";
import { testModel } from "../helpers/test-models.js";

test("Phi2: a stream left early (break) does not leave stale keys and values for the next call", async () => {
  const model = await Phi2.load(testModel({ preset: "tiny", dtype: "f32", seed: 7 }), { threads: 1, contextLength: 128 });
  try {
    const greedy = { temperature: 0, maxTokens: 8 };
    const A = "one two three four five six seven eight nine ten";
    const B = "one two three four five six seven eight nine ten eleven";
    const X = "one two alpha beta gamma delta epsilon zeta eta theta iota kappa";
    const alone = await model.complete(B, greedy); // from an empty cache

    await model.complete(A, { temperature: 0, maxTokens: 2 });
    // X overwrites the cache after "one two"; the loop stops after the first piece
    for await (const piece of model.generate(X, { temperature: 0, maxTokens: 50 })) {
      assert.equal(typeof piece, "string");
      break;
    }
    const after = await model.complete(B, greedy);
    assert.equal(after.text, alone.text);
    assert.deepEqual(after.tokens, alone.tokens);

    // and a completed call is still reused by the next one
    const again = await model.complete(B + " twelve", greedy);
    assert.ok(again.reusedTokens > 0, `reused ${again.reusedTokens}`);
  } finally {
    await model.dispose();
  }
});

test("Phi2: an unknown prompt format is refused naming the option", async () => {
  const model = await Phi2.load(testModel({ preset: "tiny", dtype: "f32", seed: 7 }), { threads: 1, contextLength: 64 });
  try {
    await assert.rejects(model.complete("hi", { format: "chatml" as never }), /format must be one of raw, qa, chat, code, got "chatml"/);
    // the model still works after the refusal
    assert.equal((await model.complete("hi", { temperature: 0, maxTokens: 2 })).tokens.length > 0, true);
  } finally {
    await model.dispose();
  }
});

test("Phi2: stop takes one string as the OpenAI API does (not its characters), and refuses a non-string naming the option", async () => {
  const model = await Phi2.load(testModel({ preset: "tiny", dtype: "f32", seed: 7 }), { threads: 1, contextLength: 128 });
  try {
    const greedy = { temperature: 0, maxTokens: 24 };
    const free = await model.complete("one two three", greedy);
    assert.ok(free.text.length >= 4, `free text: ${JSON.stringify(free.text)}`);
    // the free text's first character then one it cannot hold: as a string it never matches; spread
    // into its characters, the first would stop the text before it starts
    const stop = free.text[0] + "\u0001";
    const asString = await model.complete("one two three", { ...greedy, stop });
    assert.equal(asString.text, free.text);
    const hit = free.text.slice(1, 3); // and a string that is there stops where it starts
    assert.equal((await model.complete("one two three", { ...greedy, stop: hit })).text, free.text.slice(0, free.text.indexOf(hit)));
    await assert.rejects(model.complete("hi", { stop: 5 as never }), /stop must be a string or an array of strings, got 5/);
  } finally {
    await model.dispose();
  }
});
