// What the engine holds: the parameter count, the bytes the weights take in the partitions' memories and
// on the main thread (matrices in their held type, see dtype.ts; norms and biases as f32), and the types
// the matrices are held in, most parameters first. (A K-quant attn_output whose blocks a thread split
// cuts is held partly as Q8_0, conversions.ts; it counts here as its whole type.) For `phi2 bench`'s model line, as llama-bench prints
// a model's size, parameter count and type.
import type { DType } from "../formats/tensor.js";
import { rowBytes } from "../formats/ggml-quants.js";
import { computeDType, type LoadQuant } from "./dtype.js";
import type { PhiWeights, WeightSlice } from "./weights.js";

export interface WeightSummary {
  /** Parameters (a tied lm_head counts once, with the embedding). */
  params: number;
  /** Bytes as held: matrices in their held type, vectors as f32. */
  bytes: number;
  /** The matrices' held types, most parameters first, e.g. "Q4_0" or "Q4_0+Q6_K". */
  types: string;
}

export function summarizeWeights(weights: PhiWeights, quant?: LoadQuant): WeightSummary {
  // distinct (tensor, rows) pieces: fused q|k|v are three row ranges of one tensor, a tied lm_head the embedding
  const matrices = new Map<string, WeightSlice>();
  const vectors = new Map<string, WeightSlice>();
  const key = (s: WeightSlice) => `${s.ref.name}#${s.rowStart}`;
  matrices.set(key(weights.lm_head_w), weights.lm_head_w);
  for (const v of [weights.final_ln_w, weights.final_ln_b, weights.lm_head_b]) vectors.set(key(v), v);
  for (const l of weights.layers) {
    for (const m of [l.q_w, l.k_w, l.v_w, l.dense_w, l.fc1_w, l.fc2_w]) matrices.set(key(m), m);
    for (const v of [l.ln_w, l.ln_b, l.q_b, l.k_b, l.v_b, l.dense_b, l.fc1_b, l.fc2_b, l.q_ln_w, l.q_ln_b, l.k_ln_w, l.k_ln_b]) {
      if (v) vectors.set(key(v), v);
    }
  }
  const perType = new Map<DType, number>();
  const hold = (m: WeightSlice, held: DType) => perType.set(held, (perType.get(held) ?? 0) + m.rows * m.cols);
  // the embedding table stays on the main thread in its file type; tied to lm_head, it is held twice
  // (the partitions hold lm_head's rows for their kernels) but its parameters count once
  const e = weights.embed;
  let params = matrices.has(key(e)) ? 0 : e.rows * e.cols;
  let bytes = e.rows * rowBytes(e.ref.dtype, e.cols);
  if (params > 0) hold(e, e.ref.dtype);
  for (const m of matrices.values()) {
    const held = computeDType(m.ref.dtype, m.cols, quant);
    params += m.rows * m.cols;
    bytes += m.rows * rowBytes(held, m.cols);
    hold(m, held);
  }
  for (const v of vectors.values()) {
    params += v.rows * v.cols;
    bytes += v.rows * v.cols * 4;
  }
  const types = [...perType].sort((a, b) => b[1] - a[1]).map(([t]) => t).join("+");
  return { params, bytes, types };
}
