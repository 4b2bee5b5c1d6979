// The README's library example, run as written (only the model id is pointed at a local random model and
// the package import at this checkout's build), so the documentation cannot drift from the API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";
import { Phi2 } from "../../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");

test("the README's library example runs and prints generated text", async () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const block = /## Library\n\n```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README has a ## Library section with a ts code block");
  const dir = testModel({ preset: "tiny", dtype: "bf16", seed: 11, peaked: true });
  const index = pathToFileURL(join(root, "dist", "src", "index.js")).href;
  const code = block[1]!.replace(`from "phi2"`, `from ${JSON.stringify(index)}`).replace(`"microsoft/phi-2"`, JSON.stringify(dir));
  assert.notEqual(code, block[1], "the example imports phi2 and loads microsoft/phi-2");
  const file = join(tempDir(), "example.mjs");
  writeFileSync(file, code);
  const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 120_000 });
  assert.ok(stdout.trim().length > 0, "the example printed text");
});

test("Phi2: generate streams what complete returns; chat keeps the conversation's tokens cached", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const model = await Phi2.load(dir, { threads: 2, contextLength: 256 });
  try {
    let streamed = "";
    for await (const piece of model.generate("What is a prime number?", { format: "qa", maxTokens: 12, temperature: 0 })) streamed += piece;
    const done = await model.complete("What is a prime number?", { format: "qa", maxTokens: 12, temperature: 0 });
    assert.equal(streamed, done.text);
    // The second call's prompt extends the first one's tokens: only the new part is prefilled.
    assert.ok(done.reusedTokens > 0, `reused ${done.reusedTokens} tokens`);
    const first = await model.chat([{ role: "user", content: "Hi!" }], { maxTokens: 6, temperature: 0 });
    assert.equal(first.message.role, "assistant");
    const ids = model.tokenize("Hello world");
    assert.deepEqual(ids, [15496, 995]);
    assert.equal(model.detokenize(ids), "Hello world");
    assert.deepEqual(model.notices, [], "an f32 model is held as it is");
  } finally {
    await model.dispose();
  }
});
