import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { ModelFormatError, type TensorRef } from "../../src/formats/tensor.js";
import { tempDir } from "../helpers/temp-dir.js";
import { testModel } from "../helpers/test-models.js";

// A tiny model with a small vocabulary: a few MB, so copying and breaking it is cheap.
const base = { preset: "tiny", dtype: "f32", seed: 11, config: { vocab_size: 512 } } as const;

function bytesOf(ref: TensorRef): Buffer {
  return readFileSync(ref.file).subarray(ref.offset, ref.offset + ref.nbytes);
}

function expectFormatError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" should mention "${p}"`);
    return true;
  });
}

/** A private copy of a test model folder, free to break. */
function copyOf(dir: string): string {
  const d = join(tempDir(), "model");
  cpSync(dir, d, { recursive: true });
  return d;
}

test("one file and three shards hold the same tensors, byte for byte", () => {
  const one = openHfFolder(testModel({ ...base }));
  const sharded = openHfFolder(testModel({ ...base, shards: 3 }));
  assert.equal(one.naming, "hf");
  assert.equal(sharded.naming, "hf");
  assert.deepEqual(sharded.config, one.config);
  assert.deepEqual([...sharded.tensors.keys()].sort(), [...one.tensors.keys()].sort());
  const shardFiles = new Set([...sharded.tensors.values()].map((r) => r.file.split("/").pop()));
  assert.deepEqual([...shardFiles].sort(), ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]);
  for (const [name, ref] of one.tensors) {
    const other = sharded.tensors.get(name)!;
    assert.deepEqual([other.dtype, other.shape], [ref.dtype, ref.shape], name);
    assert.ok(bytesOf(other).equals(bytesOf(ref)), `${name} differs between the single file and the shards`);
  }
  const index = JSON.parse(readFileSync(join(sharded.dir, "model.safetensors.index.json"), "utf8"));
  const total = [...sharded.tensors.values()].reduce((a, r) => a + r.nbytes, 0);
  assert.equal(index.metadata.total_size, total);
});

test("the msft naming (original phi-2 release) opens with the same config", () => {
  const hf = openHfFolder(testModel({ ...base }));
  const msft = openHfFolder(testModel({ ...base, naming: "msft" }));
  assert.equal(msft.naming, "msft");
  assert.equal(msft.rawConfig.model_type, "phi-msft");
  assert.deepEqual(msft.config, hf.config);
  assert.ok(msft.tensors.has("transformer.h.1.mixer.Wqkv.weight"));
  assert.ok(msft.tensors.has("lm_head.linear.bias"));
});

test("broken folders: errors name the file and the tensor or field", () => {
  const src = testModel({ ...base, shards: 2 });
  const index = join("model.safetensors.index.json");

  let d = copyOf(src);
  rmSync(join(d, "config.json"));
  expectFormatError(() => openHfFolder(d), join(d, "config.json"), "not found");

  d = copyOf(src);
  writeFileSync(join(d, index), "{ \"weight_map\": ");
  expectFormatError(() => openHfFolder(d), join(d, index), "corrupt JSON");

  d = copyOf(src);
  writeFileSync(join(d, index), JSON.stringify({ metadata: {} }));
  expectFormatError(() => openHfFolder(d), join(d, index), "weight_map");

  d = copyOf(src);
  rmSync(join(d, "model-00002-of-00002.safetensors"));
  expectFormatError(() => openHfFolder(d), join(d, index), "shard model-00002-of-00002.safetensors", "is missing");

  d = copyOf(src);
  const idx = JSON.parse(readFileSync(join(d, index), "utf8"));
  idx.weight_map["model.layers.9.mlp.fc1.weight"] = "model-00001-of-00002.safetensors";
  writeFileSync(join(d, index), JSON.stringify(idx));
  expectFormatError(() => openHfFolder(d), join(d, "model-00001-of-00002.safetensors"), "tensor model.layers.9.mlp.fc1.weight", "absent from this shard");

  d = copyOf(src);
  const shard2 = join(d, "model-00002-of-00002.safetensors");
  truncateSync(shard2, statSync(shard2).size - 100);
  expectFormatError(() => openHfFolder(d), shard2, "truncated", "tensor");

  d = copyOf(src);
  rmSync(join(d, index));
  expectFormatError(() => openHfFolder(d), d, "model-00001-of-00002.safetensors", "model.safetensors.index.json");

  d = copyOf(src);
  for (const f of [index, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) rmSync(join(d, f));
  expectFormatError(() => openHfFolder(d), d, "no safetensors weights");

  d = copyOf(src);
  writeFileSync(join(d, "config.json"), JSON.stringify({ model_type: "phi", vocab_size: 512 }));
  expectFormatError(() => openHfFolder(d), join(d, "config.json"), "hidden_size");

  expectFormatError(() => openHfFolder(join(d, "nope")), join(d, "nope"), "not found");
});
