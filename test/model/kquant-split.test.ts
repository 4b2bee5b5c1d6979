// A K-quant attn_output (256-value blocks) used to cap the worker threads: Phi-2's 32 heads × 80 columns
// split into whole blocks only 2 ways. Now more threads cut it on 32-value boundaries and the partitions
// whose columns cut its blocks hold their share as Q8_0, with a notice; fewer threads keep it exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, quantizeModel } from "../../src/index.js";
import { openGguf } from "../../src/formats/gguf.js";
import { computeSliceDType } from "../../src/model/dtype.js";
import { conversionNotices } from "../../src/model/conversions.js";
import { planPartitions } from "../../src/model/plan.js";
import type { PhiConfig } from "../../src/model/config.js";
import { testModel } from "../helpers/test-models.js";
import { execFile } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const cli = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.js");

test("computeSliceDType: a slice that cuts a K-quant's blocks is held as Q8_0 (F32 when it cuts Q8_0's too)", () => {
  assert.equal(computeSliceDType("Q4_K", 2560, 0, 1280), "Q4_K");
  assert.equal(computeSliceDType("Q4_K", 2560, 1280, 2560), "Q4_K");
  assert.equal(computeSliceDType("Q4_K", 2560, 640, 1280), "Q8_0");
  assert.equal(computeSliceDType("Q6_K", 2560, 0, 160), "Q8_0");
  assert.equal(computeSliceDType("Q8_0", 2560, 0, 160), "Q8_0");
  assert.equal(computeSliceDType("Q8_0", 2560, 0, 80), "F32");
  assert.equal(computeSliceDType("BF16", 2560, 0, 80), "BF16");
});

test("plan: a K-quant dense no longer caps Phi-2 at 2 partitions; boundaries stay on 32-value blocks", () => {
  const config = {
    hidden_size: 2560, intermediate_size: 10240, num_attention_heads: 32, num_key_value_heads: 32,
    num_hidden_layers: 2, vocab_size: 51200, partial_rotary_factor: 0.4,
  } as unknown as PhiConfig;
  const plan = (threads: number) => planPartitions({ config, threads, denseDType: "Q4_K", fc2DType: "Q4_K", partitionBytes: () => 1 << 20 });
  assert.equal(plan(2).partitions.length, 2);
  assert.deepEqual(plan(2).partitions.map((p) => p.heads.start * 80 % 256), [0, 0], "2 threads: whole Q4_K blocks");
  for (const threads of [3, 4, 8]) {
    const p = plan(threads);
    assert.equal(p.partitions.length, threads);
    assert.equal(p.workers.length, threads);
    for (const part of p.partitions) assert.equal((part.heads.start * 80) % 32, 0);
  }
});

test("a q4_k GGUF on 4 threads: 4 workers, attn_output slices as Q8_0 with a notice, logits close to 2 threads'", async () => {
  // hidden 512 = 2 Q4_K blocks, 8 heads of 64 (rotary 32): whole Q4_K blocks allow 2 partitions
  const dir = await testModel({
    preset: "small", dtype: "bf16", seed: 11, peaked: true,
    config: {
      hidden_size: 512, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1024, num_hidden_layers: 2,
      partial_rotary_factor: 0.5,
    },
  });
  const tmp = mkdtempSync(join(tmpdir(), "phi2-kquant-"));
  try {
    const file = join(tmp, "model-q4_k.gguf");
    await quantizeModel(dir, "q4_k", file);
    assert.equal(openGguf(file).tensors.get("model.layers.0.self_attn.dense.weight")?.dtype, "Q4_K");
    const two = await loadModel(file, { threads: 2, contextLength: 64 });
    const four = await loadModel(file, { threads: 4, contextLength: 64 });
    try {
      assert.equal(two.engine.threads, 2);
      assert.deepEqual(two.notices, []);
      assert.equal(four.engine.threads, 4);
      assert.equal(four.notices.length, 1, four.notices.join("\n"));
      assert.match(four.notices[0]!, /8 of 8 attn_output slices .* held as Q8_0, not Q4_K/);
      const tokens = [50, 1000, 7, 42, 31000, 5, 9];
      const [a] = await two.engine.forward([{ slot: 0, tokens, startPos: 0, allLogits: true }]);
      const [b] = await four.engine.forward([{ slot: 0, tokens, startPos: 0, allLogits: true }]);
      const V = two.config.vocab_size;
      let maxDiff = 0, maxAbs = 0;
      for (let t = 0; t < tokens.length; t++) {
        let ia = 0, ib = 0;
        for (let i = 0; i < V; i++) {
          const o = t * V + i;
          maxDiff = Math.max(maxDiff, Math.abs(a![o]! - b![o]!));
          maxAbs = Math.max(maxAbs, Math.abs(a![o]!));
          if (a![o]! > a![t * V + ia]!) ia = i;
          if (b![o]! > b![t * V + ib]!) ib = i;
        }
        assert.equal(ib, ia, `greedy token at position ${t}`);
      }
      // Q4_K → Q8_0 re-quantization of attn_output only: a small change (seen: 0.54 of 52), not an identical result
      assert.ok(maxDiff > 0 && maxDiff < 0.02 * maxAbs, `max logit difference ${maxDiff} (max |logit| ${maxAbs})`);
    } finally {
      await two.dispose();
      await four.dispose();
    }
    // The CLI says so, once, on stderr.
    const { stderr } = await promisify(execFile)(process.execPath, [cli, "run", "--model", file, "--threads", "4", "-n", "2", "Hello"]);
    assert.equal(stderr.match(/^phi2: note: .*attn_output slices.*$/gm)?.length, 1, stderr);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("conversionNotices: one line per (file type, held type) of whole tensors; --quant conversions are not reported", () => {
  const config = { hidden_size: 2560, num_attention_heads: 32, num_key_value_heads: 32 } as unknown as PhiConfig;
  const slice = (name: string, dtype: string, cols = 2560) => ({ ref: { name, dtype }, rowStart: 0, rows: 2560, cols });
  const layer = (l: number, fc2: string) => ({
    q_w: slice(`blk.${l}.attn_qkv`, "Q5_0"), k_w: slice(`blk.${l}.attn_qkv`, "Q5_0"), v_w: slice(`blk.${l}.attn_qkv`, "Q5_0"),
    dense_w: slice(`blk.${l}.attn_output`, "Q8_0"), fc1_w: slice(`blk.${l}.ffn_up`, "Q3_K"), fc2_w: slice(`blk.${l}.ffn_down`, fc2, 10240),
  });
  const weights = { layers: [layer(0, "Q6_K"), layer(1, "Q5_K")], lm_head_w: slice("output", "BF16") } as never;
  const plan = { partitions: [{ heads: { start: 0, end: 16 } }, { heads: { start: 16, end: 32 } }], workers: [[0], [1]] } as never;
  assert.deepEqual(conversionNotices(config, weights, plan), [
    "2 Q5_0 tensors held as Q8_0 (converted at load: no Q5_0 kernel for this shape)",
    "2 Q3_K tensors held as Q4_K (converted at load: no Q3_K kernel for this shape)",
  ]);
  // --quant q8_0 turns the BF16 output into Q8_0 because it was asked to: no line for it
  assert.equal(conversionNotices(config, weights, plan, "q8_0").length, 2);
});
