// From a hub id with a quant label to generated text: a GGUF repository on the fake hub holds two
// quantization labels of a tiny model; "user/repo:Q8_0" downloads only that file, and the cached file
// (a symlink into blobs/) loads and generates exactly like the original file.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { generateText, loadModel, resolveModel } from "../../src/index.js";
import { quantizeModel } from "../../src/formats/gguf-quantize.js";
import { makeTestModel } from "../../src/testing/make-test-model.js";
import { startFakeHub, type FakeHub } from "./fake-hub.js";

let hub: FakeHub;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "phi2-gguf-hub-"));
  makeTestModel({ preset: "tiny", dtype: "f32", seed: 3, out: join(dir, "hf"), peaked: true });
  await quantizeModel(join(dir, "hf"), "q8_0", join(dir, "tiny.Q8_0.gguf"));
  hub = await startFakeHub();
  hub.addRepo("acme/tiny-phi-GGUF", {
    files: {
      "tiny.Q8_0.gguf": readFileSync(join(dir, "tiny.Q8_0.gguf")),
      "tiny.Q4_0.gguf": Buffer.concat([Buffer.from("GGUF"), randomBytes(4096)]), // never fetched: bytes do not matter
      "README.md": "# tiny GGUF\n",
    },
  });
});

after(() => hub?.close());

async function greedy(path: string): Promise<number[]> {
  const model = await loadModel(path, { threads: 1, contextLength: 64 });
  try {
    return (await generateText(model.engine, model.tokenizer, "Alice: Hello\nBob:", { maxTokens: 8, temperature: 0, stopOnEos: false })).ids;
  } finally {
    await model.dispose();
  }
}

test("user/repo:Q8_0 pulls one GGUF file that loads and generates like the original", async () => {
  const cacheDir = join(dir, "cache");
  const path = await resolveModel("acme/tiny-phi-GGUF:Q8_0", { hubUrl: hub.url, cacheDir, env: {}, progress: false, log: () => {} });
  assert.match(path, /models--acme--tiny-phi-GGUF\/snapshots\/[0-9a-f]{40}\/tiny\.Q8_0\.gguf$/);
  assert.equal(hub.requests.filter((r) => r.path.startsWith("/cdn-lfs/")).length, 1, "only the Q8_0 file was downloaded");
  const fromHub = await greedy(path);
  assert.equal(fromHub.length, 8);
  assert.deepEqual(fromHub, await greedy(join(dir, "tiny.Q8_0.gguf")));
});
