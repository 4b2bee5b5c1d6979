// Tensor parallelism: how Phi-2 is cut into partitions, each living in its own WebAssembly memory
// (a wasm32 memory holds at most 4 GiB and Phi-2 in bf16 is 5.56 GB, so one memory cannot hold it).
//
// Partition p owns a contiguous range of KV heads (with their query heads), a range of the MLP's
// intermediate units and a range of the vocabulary:
//   q/k/v, fc1, lm_head: split by output rows        -> no communication needed to compute them
//   dense, fc2:          split by input columns      -> each partition yields a partial (T, C) sum
// Phi-2's parallel block (x + attn(h) + mlp(h)) lets both partial sums be reduced together: one
// exchange per layer. Workers (threads) each run one or more partitions.
import { headDim, type PhiConfig } from "./config.js";
import type { DType } from "../formats/tensor.js";
import { blockSize } from "../formats/ggml-quants.js";

export interface Range { start: number; end: number }

export interface PartitionPlan {
  index: number;
  kvHeads: Range;  // KV heads [start, end)
  heads: Range;    // query heads [start, end) = kvHeads * group
  inter: Range;    // intermediate units of fc1/fc2
  vocab: Range;    // rows of lm_head
}

export interface ModelPlan {
  partitions: PartitionPlan[];
  /** workers[w] = indices of the partitions worker w runs, in order. */
  workers: number[][];
}

/** Largest wasm32 memory, less a margin for the allocator's rounding. */
export const MAX_PARTITION_BYTES = 4 * 1024 ** 3 - 64 * 1024 ** 2;

function split(total: number, parts: number, unit: number): Range[] {
  // Boundaries fall on multiples of `unit` so quantized blocks are never cut.
  const units = Math.ceil(total / unit);
  const out: Range[] = [];
  for (let p = 0; p < parts; p++) {
    const s = Math.min(total, Math.floor((p * units) / parts) * unit);
    const e = Math.min(total, Math.floor(((p + 1) * units) / parts) * unit);
    out.push({ start: s, end: e });
  }
  return out;
}

export interface PlanInput {
  config: PhiConfig;
  threads: number;
  /** Column-split weights' dtypes: boundaries must respect their block sizes. */
  denseDType: DType;
  fc2DType: DType;
  /** Bytes one partition needs given its share (called for candidate partition counts). */
  partitionBytes: (p: PartitionPlan) => number;
}

/**
 * Of the dtypes one column-split weight is held in across the layers, the one with the largest block:
 * partition boundaries on its multiples cut no layer's blocks. Mixed GGUFs (Q4_K_M, Q3_K_M, ...) hold
 * one weight in several types across the layers: K-quants (256 values per block) and 32-value types (a
 * Q5_0 or Q4_1 is held as Q8_0).
 */
export function widestBlockDType(dtypes: DType[]): DType {
  if (dtypes.length === 0) throw new Error("widestBlockDType: no dtypes");
  return dtypes.reduce((a, b) => (blockSize(b) > blockSize(a) ? b : a));
}

export function planPartitions(input: PlanInput): ModelPlan {
  const { config, threads } = input;
  const hd = headDim(config);
  const group = config.num_attention_heads / config.num_key_value_heads;
  // Smallest number of KV heads whose dense columns (kv * group * hd) are a whole number of blocks.
  const kvUnitFor = (block: number): number => {
    let u = 1;
    while ((u * group * hd) % block !== 0 && u < config.num_key_value_heads) u++;
    return (u * group * hd) % block === 0 ? u : config.num_key_value_heads;
  };
  const denseBlock = blockSize(input.denseDType);
  let kvUnit = kvUnitFor(denseBlock);
  // A K-quant dense (256-value blocks: 16 of Phi-2's heads) would cap the threads at 2. Rather than leave
  // threads idle, cut it on 32-value boundaries: the partitions whose columns then cut its blocks hold
  // their share as Q8_0 (computeSliceDType).
  if (denseBlock > 32 && Math.floor(config.num_key_value_heads / kvUnit) < threads) kvUnit = kvUnitFor(32);
  const maxParts = Math.max(1, Math.floor(config.num_key_value_heads / kvUnit));
  const interUnit = blockSize(input.fc2DType);

  const make = (parts: number): PartitionPlan[] => {
    const kv = split(config.num_key_value_heads, parts, kvUnit);
    const inter = split(config.intermediate_size, parts, interUnit);
    const vocab = split(config.vocab_size, parts, 1);
    return kv.map((r, i) => ({
      index: i,
      kvHeads: r,
      heads: { start: r.start * group, end: r.end * group },
      inter: inter[i]!,
      vocab: vocab[i]!,
    }));
  };

  let parts = Math.min(Math.max(1, threads), maxParts);
  let partitions = make(parts);
  while (partitions.some((p) => input.partitionBytes(p) > MAX_PARTITION_BYTES)) {
    if (parts >= maxParts) {
      const worst = Math.max(...partitions.map(input.partitionBytes));
      throw new Error(
        `model does not fit: a partition needs ${(worst / 2 ** 30).toFixed(2)} GiB of the 4 GiB a WebAssembly memory can hold ` +
        `(try a smaller --ctx-size or fewer --parallel slots)`,
      );
    }
    parts++;
    partitions = make(parts);
  }
  const workerCount = Math.min(Math.max(1, threads), parts);
  const workers: number[][] = Array.from({ length: workerCount }, () => []);
  partitions.forEach((p, i) => workers[i % workerCount]!.push(p.index));
  return { partitions, workers };
}
