// The KV cache's element type: f16 (the default, as llama.cpp's) holds each key and value in half the
// bytes of f32; the choice is validated where it enters. (What the two types compute is checked against
// the reference in parity.test.ts, and against llama.cpp in llama-parity.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel, type KvCacheType } from "../../src/index.js";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { resolveWeights } from "../../src/model/weights.js";
import { partitionBytes } from "../../src/model/partition.js";
import { planPartitions } from "../../src/model/plan.js";
import { headDim } from "../../src/model/config.js";
import { testModel } from "../helpers/test-models.js";

test("an f16 KV cache takes half the memory of an f32 one", () => {
  const folder = openHfFolder(testModel({ preset: "tiny", dtype: "f32", seed: 1 }));
  const config = folder.config;
  const weights = resolveWeights(folder.tensors, config, folder.dir);
  const [plan] = planPartitions({ config, threads: 1, denseDType: "F32", fc2DType: "F32", partitionBytes: () => 1 << 20 }).partitions;
  const slots = 4, contextLength = 2048;
  const bytes = (kvType?: KvCacheType) => partitionBytes({ config, plan: plan!, slots, contextLength, maxTokens: 64, kvType }, weights);
  const kvF32 = 2 * config.num_hidden_layers * slots * contextLength * config.num_key_value_heads * headDim(config) * 4;
  const saved = bytes("f32") - bytes("f16");
  // half the cache, less the f16 path's scratch (one kv head's keys and values widened to f32)
  const scratch = 2 * contextLength * headDim(config) * 4;
  assert.ok(saved >= kvF32 / 2 - scratch && saved <= kvF32 / 2, `saved ${saved} of ${kvF32} cache bytes`);
  assert.equal(bytes(), bytes("f16"), "f16 is the default");
});

test("an unknown KV cache type is refused, naming the option", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 1 });
  await assert.rejects(loadModel(dir, { threads: 1, kvType: "q8_0" as KvCacheType }), /kvType must be one of f16, f32, got q8_0/);
});

test("an unknown load-time quant type is refused, naming the option (not quietly taken for q4_0)", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 1 });
  await assert.rejects(loadModel(dir, { threads: 1, quant: "q4_k" as "q4_0" }), /quant must be one of q8_0, q4_0, got q4_k/);
});
