// A float64 forward pass of a quantized phi-2 GGUF with ggml's semantics for quantized matrix products:
// weights dequantized exactly, activations quantized per 32-block to int8 with an f16 scale (ggml's x86
// quantize_row_q8_0: d = amax/127 stored as f16, q = round-half-even(x * 127/amax), then dequantized).
// Activations for f16 weights stay exact in "ours" mode (our engine) and are rounded to f16 in "ggml"
// mode (ggml converts them to f16, the vec_dot type of F16 weights).
// `f16Gelu` selects llama.cpp's GELU (an f16 lookup table: f16(gelu(f16(x))), ggml GGML_GELU_FP16)
// instead of the exact one. Used to explain the difference between llama.cpp and our engine.
import { closeSync, openSync, readSync } from "node:fs";
import { headDim, rotaryDim, type PhiConfig } from "../../src/model/config.js";
import type { LayerWeights, PhiWeights, WeightSlice } from "../../src/model/weights.js";
import { dequantizeRow, rowBytes } from "../../src/formats/ggml-quants.js";
import { applyRotary, geluNew, layerNorm, linear } from "../reference/phi-reference.js";

/** Rounds to the nearest IEEE half (ties to even); the emulated values stay far from overflow. */
export function f16Round(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const quantum = 2 ** (Math.max(Math.floor(Math.log2(a)), -14) - 10);
  const r = a / quantum;
  let n = Math.floor(r);
  const frac = r - n;
  if (frac > 0.5 || (frac === 0.5 && n % 2 === 1)) n++;
  return Math.sign(x) * n * quantum;
}

function roundHalfEven(v: number): number {
  const n = Math.floor(v);
  const frac = v - n;
  return frac > 0.5 || (frac === 0.5 && n % 2 !== 0) ? n + 1 : n;
}

/** (T, n) activations as ggml's q8_0 quantization and dequantization leave them (float32 inputs). */
export function quantizeActivations(x: Float64Array, T: number, n: number): Float64Array {
  const y = new Float64Array(T * n);
  for (let t = 0; t < T; t++) {
    for (let b = t * n; b < (t + 1) * n; b += 32) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(Math.fround(x[b + i]!)));
      const d = f16Round(Math.fround(amax / 127));
      const id = amax > 0 ? Math.fround(127 / amax) : 0;
      for (let i = 0; i < 32; i++) y[b + i] = roundHalfEven(Math.fround(Math.fround(x[b + i]!) * id)) * d;
    }
  }
  return y;
}

export type ActivationMode = "ours" | "ggml";

function readRows(s: WeightSlice, rowStart = s.rowStart, rows = s.rows): Float64Array {
  const stride = rowBytes(s.ref.dtype, s.cols);
  const bytes = new Uint8Array(rows * stride);
  const fd = openSync(s.ref.file, "r");
  try {
    readSync(fd, bytes, 0, bytes.length, s.ref.offset + rowStart * stride);
  } finally {
    closeSync(fd);
  }
  const out = new Float32Array(rows * s.cols);
  dequantizeRow(s.ref.dtype, bytes, 0, out.length, out);
  return Float64Array.from(out);
}

/** Activations as ggml hands them to a matrix product with `w`, in `mode`. */
function activationsFor(x: Float64Array, T: number, w: WeightSlice, mode: ActivationMode): Float64Array {
  if (w.ref.dtype === "F32") return x;
  if (w.ref.dtype === "F16") return mode === "ggml" ? x.map((v) => f16Round(Math.fround(v))) : x;
  return quantizeActivations(x, T, w.cols);
}

/** Linear with exactly dequantized weights and activations prepared as `mode` says. */
function qLinear(x: Float64Array, T: number, w: WeightSlice, b: WeightSlice, mode: ActivationMode): Float64Array {
  return linear(activationsFor(x, T, w, mode), T, w.cols, readRows(w), readRows(b), w.rows);
}

function attention(h: Float64Array, T: number, c: PhiConfig, L: LayerWeights, mode: ActivationMode): Float64Array {
  const H = c.num_attention_heads, KV = c.num_key_value_heads, hd = headDim(c), rd = rotaryDim(c);
  if (c.qk_layernorm) throw new Error("quantized reference: qk_layernorm is not emulated");
  const q = qLinear(h, T, L.q_w, L.q_b, mode); // (T, H*hd)
  const k = qLinear(h, T, L.k_w, L.k_b, mode); // (T, KV*hd)
  const v = qLinear(h, T, L.v_w, L.v_b, mode); // (T, KV*hd)
  for (let t = 0; t < T; t++) {
    for (let head = 0; head < H; head++) applyRotary(q, (t * H + head) * hd, t, rd, c.rope_theta);
    for (let head = 0; head < KV; head++) applyRotary(k, (t * KV + head) * hd, t, rd, c.rope_theta);
  }
  const out = new Float64Array(T * H * hd); // (T, H*hd)
  const scores = new Float64Array(T);
  for (let head = 0; head < H; head++) {
    const kvHead = Math.floor(head / (H / KV));
    for (let t = 0; t < T; t++) {
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[(t * H + head) * hd + d]! * k[(s * KV + kvHead) * hd + d]!;
        scores[s] = dot / Math.sqrt(hd);
        max = Math.max(max, scores[s]!);
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) sum += scores[s] = Math.exp(scores[s]! - max);
      for (let s = 0; s <= t; s++) {
        for (let d = 0; d < hd; d++) out[(t * H + head) * hd + d]! += (scores[s]! / sum) * v[(s * KV + kvHead) * hd + d]!;
      }
    }
  }
  return qLinear(out, T, L.dense_w, L.dense_b, mode);
}

/** Next-token logits (vocab_size, float64) after each of `positions`. */
export function quantizedReferenceLogits(
  c: PhiConfig, w: PhiWeights, ids: readonly number[], positions: readonly number[], mode: ActivationMode, f16Gelu: boolean,
): Float64Array[] {
  const C = c.hidden_size, T = ids.length;
  let x = new Float64Array(T * C); // (T, C) residual stream
  ids.forEach((id, t) => x.set(readRows(w.embed, w.embed.rowStart + id, 1), t * C));
  for (const L of w.layers) {
    const h = layerNorm(x, C, readRows(L.ln_w), readRows(L.ln_b), c.layer_norm_eps); // (T, C)
    const a = attention(h, T, c, L, mode);
    const f = qLinear(h, T, L.fc1_w, L.fc1_b, mode); // (T, I)
    for (let i = 0; i < f.length; i++) f[i] = f16Gelu ? f16Round(geluNew(f16Round(f[i]!))) : geluNew(f[i]!);
    const m = qLinear(f, T, L.fc2_w, L.fc2_b, mode);
    const next = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) next[i] = x[i]! + a[i]! + m[i]!;
    x = next;
  }
  const last = new Float64Array(positions.length * C);
  positions.forEach((p, i) => last.set(x.subarray(p * C, (p + 1) * C), i * C));
  const normed = layerNorm(last, C, readRows(w.final_ln_w), readRows(w.final_ln_b), c.layer_norm_eps);
  const logits = qLinear(normed, positions.length, w.lm_head_w, w.lm_head_b, mode); // (P, V)
  return positions.map((_, i) => logits.slice(i * c.vocab_size, (i + 1) * c.vocab_size));
}
