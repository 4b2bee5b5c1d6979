// Partition boundaries of the column-split weights (dense, fc2) must fall on every layer's block
// boundaries, not only layer 0's: mixed GGUFs hold some layers in 32-value and others in 256-value types.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planPartitions, widestBlockDType } from "../../src/model/plan.js";
import type { PhiConfig } from "../../src/model/config.js";

test("widestBlockDType picks the largest block over the layers, wherever it is", () => {
  assert.equal(widestBlockDType(["Q8_0", "Q4_K", "Q8_0"]), "Q4_K");
  assert.equal(widestBlockDType(["Q6_K", "Q8_0"]), "Q6_K");
  assert.equal(widestBlockDType(["BF16", "Q4_0"]), "Q4_0");
  assert.equal(widestBlockDType(["F16"]), "F16");
  assert.throws(() => widestBlockDType([]), /no dtypes/);
});

test("with 3 partitions, fc2 column ranges are whole 256-value blocks when any layer's fc2 is a K-quant", () => {
  const config = {
    hidden_size: 2560, intermediate_size: 10240, num_attention_heads: 32, num_key_value_heads: 32,
    num_hidden_layers: 2, vocab_size: 51200, partial_rotary_factor: 0.4,
  } as unknown as PhiConfig;
  const plan = planPartitions({
    config, threads: 3,
    denseDType: widestBlockDType(["Q8_0", "Q8_0"]),
    fc2DType: widestBlockDType(["Q8_0", "Q4_K"]),
    partitionBytes: () => 1 << 20,
  });
  assert.equal(plan.partitions.length, 3);
  for (const p of plan.partitions) {
    assert.equal(p.inter.start % 256, 0, `inter start ${p.inter.start}`);
    assert.equal((p.heads.start * 80) % 32, 0, `dense column start ${p.heads.start * 80}`);
  }
  // layer 0's type alone (Q8_0) would have allowed a boundary inside a Q4_K block
  const narrow = planPartitions({ config, threads: 3, denseDType: "Q8_0", fc2DType: "Q8_0", partitionBytes: () => 1 << 20 });
  assert.ok(narrow.partitions.some((p) => p.inter.start % 256 !== 0));
});
