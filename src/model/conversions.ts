// Which weights the engine holds in another type than their file's, as one-line notices for the user.
// Quantized types without a kernel here (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K) are converted at load to the nearest fast
// type (computeDType), and a K-quant attn_output split by more threads than it has whole blocks for is
// held as Q8_0 in the partitions whose columns cut its blocks (computeSliceDType). Conversions the user
// asked for (--quant) are not reported.
import { headDim, type PhiConfig } from "./config.js";
import { computeDType, computeSliceDType, type LoadQuant } from "./dtype.js";
import type { ModelPlan } from "./plan.js";
import type { PhiWeights, WeightSlice } from "./weights.js";

export function conversionNotices(config: PhiConfig, weights: PhiWeights, plan: ModelPlan, quant?: LoadQuant): string[] {
  const notices: string[] = [];

  // Whole tensors (fused q|k|v counts once), grouped by (file type, held type).
  const tensors = new Map<string, WeightSlice>();
  for (const l of weights.layers) for (const w of [l.q_w, l.k_w, l.v_w, l.dense_w, l.fc1_w, l.fc2_w]) tensors.set(w.ref.name, w);
  tensors.set(weights.lm_head_w.ref.name, weights.lm_head_w);
  const groups = new Map<string, number>();
  for (const w of tensors.values()) {
    const held = computeDType(w.ref.dtype, w.cols, quant);
    // converted even without --quant: not something the user asked for
    if (computeDType(w.ref.dtype, w.cols) !== w.ref.dtype) groups.set(`${w.ref.dtype}→${held}`, (groups.get(`${w.ref.dtype}→${held}`) ?? 0) + 1);
  }
  for (const [pair, n] of groups) {
    const [from, to] = pair.split("→");
    notices.push(`${n} ${from} tensor${n === 1 ? "" : "s"} held as ${to} (converted at load: no ${from} kernel for this shape)`);
  }

  // attn_output slices cut by the partition plan.
  const hd = headDim(config);
  let cut = 0, total = 0;
  let from = "", to = "";
  for (const l of weights.layers) {
    const w = l.dense_w;
    const whole = computeDType(w.ref.dtype, w.cols, quant);
    for (const p of plan.partitions) {
      total++;
      const held = computeSliceDType(w.ref.dtype, w.cols, p.heads.start * hd, p.heads.end * hd, quant);
      if (held !== whole) { cut++; from = whole; to = held; }
    }
  }
  if (cut > 0) {
    notices.push(
      `${cut} of ${total} attn_output slices (layers × ${plan.partitions.length} partitions) held as ${to}, not ${from}: ` +
      `${plan.partitions.length} threads cut its blocks (fewer threads keep it exact)`,
    );
  }
  return notices;
}
