// The oracle's own tests: cases worked out by hand (so a wrong convention in the reference cannot hide
// behind agreeing with itself), invariants of rotary, causality, grouped KV heads and qk_layernorm.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { PhiConfig } from "../../src/model/config.js";
import { applyRotary, argmax, bf16ToNumber, f16ToNumber, referenceGreedy, referenceLogits, roundToHalf, topMargin } from "./phi-reference.js";
import { phiTensors, writeCustomModel } from "../helpers/custom-model.js";
import { tempDir } from "../helpers/temp-dir.js";
import { testModel } from "../helpers/test-models.js";

type Sizes = Pick<PhiConfig, "hidden_size" | "intermediate_size" | "num_hidden_layers" | "num_attention_heads" | "num_key_value_heads" | "vocab_size"> & Partial<PhiConfig>;

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs expected ${expected[i]}`);
  }
}

/** Plain LayerNorm with weight 1, bias 0, written out again for the hand-computed expectations. */
function plainLayerNorm(x: number[], eps = 1e-5): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((v) => (v - mean) / Math.sqrt(variance + eps));
}

const identity = (n: number) => Float32Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));

/** Deterministic pseudo-random values in [-scale, scale) (a 32-bit LCG: no dependence on the generator under test). */
function lcg(seed: number, scale: number) {
  let s = seed >>> 0;
  return (n: number) => Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 * 2 - 1) * scale;
  });
}

test("f16 and bf16 decoding", () => {
  assert.equal(f16ToNumber(0x3c00), 1);
  assert.equal(f16ToNumber(0xc000), -2);
  assert.equal(f16ToNumber(0x7bff), 65504);
  assert.equal(f16ToNumber(0x3555), 0.333251953125);
  assert.equal(f16ToNumber(0x0400), 2 ** -14);
  assert.equal(f16ToNumber(0x0001), 2 ** -24);
  assert.equal(f16ToNumber(0x7c00), Infinity);
  assert.ok(Number.isNaN(f16ToNumber(0x7e00)));
  assert.equal(bf16ToNumber(0x3f80), 1);
  assert.equal(bf16ToNumber(0xc049), -3.140625);
  assert.equal(bf16ToNumber(0x0001), 2 ** -133);
});

test("roundToHalf: every half is a fixed point, midpoints go to the even neighbour, overflow saturates", () => {
  for (let h = 0; h < 0x7c00; h++) {
    const v = f16ToNumber(h);
    assert.equal(roundToHalf(v), v);
    assert.equal(roundToHalf(-v), -v);
    if (h + 1 < 0x7c00) {
      const next = f16ToNumber(h + 1);
      const even = (h & 1) === 0 ? v : next;
      assert.equal(roundToHalf((v + next) / 2), even, `midpoint after 0x${h.toString(16)}`);
      assert.equal(roundToHalf(v + (next - v) * 0.49), v);
      assert.equal(roundToHalf(v + (next - v) * 0.51), next);
    }
  }
  assert.equal(roundToHalf(65519), 65504);
  assert.equal(roundToHalf(1e9), 65504);
  assert.equal(roundToHalf(-1e9), -65504);
  assert.equal(roundToHalf(2 ** -25), 0);
  assert.equal(roundToHalf(2 ** -25 * 1.01), 2 ** -24);
});

test("rotary: rotate_half pairs (j, j + rd/2), preserves norms, leaves dims >= rd alone, depends only on relative position", () => {
  // rd = 4, theta = 10000: pair (0, 2) turns by pos·1 rad, pair (1, 3) by pos·0.01 rad.
  const v = Float64Array.from([1, 2, 3, 4, 5, 6]);
  applyRotary(v, 0, 1, 4, 10000);
  const c1 = Math.cos(1), s1 = Math.sin(1), c2 = Math.cos(0.01), s2 = Math.sin(0.01);
  close(v, [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2, 5, 6], 1e-15, "rotated");

  const r = lcg(1, 1);
  const q = Float64Array.from(r(32)), k = Float64Array.from(r(32));
  const dotAt = (m: number, n: number) => {
    const a = q.slice(), b = k.slice();
    applyRotary(a, 0, m, 32, 10000);
    applyRotary(b, 0, n, 32, 10000);
    return a.reduce((acc, x, i) => acc + x * b[i], 0);
  };
  for (const [m, n, shift] of [[5, 2, 100], [7, 7, 1000], [0, 3, 2040]]) {
    assert.ok(Math.abs(dotAt(m, n) - dotAt(m + shift, n + shift)) < 1e-9, `q·k at (${m},${n}) vs shifted by ${shift}`);
  }
  const a = q.slice();
  applyRotary(a, 0, 1234, 32, 10000);
  assert.ok(Math.abs(Math.hypot(...a) - Math.hypot(...q)) < 1e-12, "norm preserved");
  const z = q.slice();
  applyRotary(z, 0, 0, 32, 10000);
  close(z, q, 0, "position 0 is the identity");
});

test("hand-computed: a 2-layer model of biases only (residual, parallel attention + MLP, gelu_new, lm_head bias)", () => {
  // hidden 4, 1 head, intermediate 8, vocab 3. Every input LayerNorm has weight 0, so each layer sees
  // h = ln bias whatever x is; v_proj has weight 0, so attention returns v_b whatever its weights are.
  const sizes: Sizes = { hidden_size: 4, intermediate_size: 8, num_hidden_layers: 2, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 3, partial_rotary_factor: 0.5 };
  const vB = [1, 0, -1, 0.5], denseB = [0.125, 0.25, -0.375, 0.5], fc1B = [1, -1, 0.5, 2, 0, 0, 0, 0], fc2B = [0, 0, 0, -0.5];
  const fc2W = Float32Array.from({ length: 4 * 8 }, (_, i) => (Math.floor(i / 8) === i % 8 ? 1 : 0)); // picks fc1 units 0..3
  const tensors = phiTensors(sizes, (name) => {
    if (name === "model.embed_tokens.weight") return [1, 2, 3, 4, 0, 0, 0, 0, -4, 0, 0, 8];
    if (name.endsWith("input_layernorm.bias")) return [0.5, -1, 0, 2];
    if (name.endsWith("q_proj.bias")) return [3, 1, 4, 1];
    if (name.endsWith("k_proj.bias")) return [5, 9, 2, 6];
    if (name.endsWith("v_proj.bias")) return vB;
    if (name.endsWith("dense.weight")) return identity(4);
    if (name.endsWith("dense.bias")) return denseB;
    if (name.endsWith("fc1.bias")) return fc1B;
    if (name.endsWith("fc2.weight")) return fc2W;
    if (name.endsWith("fc2.bias")) return fc2B;
    if (name === "model.final_layernorm.weight") return [1, 1, 1, 1];
    if (name === "lm_head.weight") return [1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1];
    if (name === "lm_head.bias") return [0, 1, 2];
    return undefined;
  });
  const dir = tempDir();
  writeCustomModel(dir, sizes, tensors);
  // gelu_new (tanh approximation) at 1, -1, 0.5, 2: PyTorch's gelu(x, approximate="tanh").
  const gelu = [0.8411919906082768, -0.15880800939172324, 0.34571400982514394, 1.954597694087775];
  const perLayer = [0, 1, 2, 3].map((i) => vB[i] + denseB[i] + gelu[i] + fc2B[i]);
  const ids = [0, 2, 1];
  const logits = referenceLogits(dir, ids, [0, 1, 2]);
  const embed = [[1, 2, 3, 4], [0, 0, 0, 0], [-4, 0, 0, 8]];
  ids.forEach((id, p) => {
    const x = embed[id].map((e, i) => e + 2 * perLayer[i]);
    const y = plainLayerNorm(x);
    // lm_head rows: e0, e1, (1,1,1,1) — the last sees sum(LayerNorm output) = 0, so logit 2 = its bias exactly
    close(logits[p], [y[0], y[1] + 1, 2], 1e-12, `position ${p}`);
  });
});

test("hand-computed: attention with partial rotary (rd = 4 of head_dim 8) over two tokens", () => {
  // hidden 8, one head of 8, rotary on dims 0..3 (pairs (0,2) and (1,3)), q/k/v/dense = identity, MLP zero,
  // lm_head = identity: the logits are the final LayerNorm of x + attention(x).
  const sizes: Sizes = { hidden_size: 8, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 8, partial_rotary_factor: 0.5 };
  const eA = [1, -1, 1, -1, 1, -1, 1, -1], eB = [1, 1, -1, -1, 1, 1, -1, -1]; // mean 0, variance 1
  const tensors = phiTensors(sizes, (name) => {
    if (name === "model.embed_tokens.weight") return [...eA, ...eB, ...new Array(48).fill(0)];
    if (name.endsWith("layernorm.weight")) return new Array(8).fill(1);
    if (/(q_proj|k_proj|v_proj|dense)\.weight$/.test(name) || name === "lm_head.weight") return identity(8);
    return undefined;
  });
  const dir = tempDir();
  writeCustomModel(dir, sizes, tensors);
  const s = 1 / Math.sqrt(1 + 1e-5); // input LayerNorm of a mean-0, variance-1 row
  // position 1: q1 = k1 = rot(s·eB, pos 1), k0 = s·eA (position 0 is not rotated). By hand:
  // rot(eB) = [cos1 + sin1, cos.01 + sin.01, sin1 - cos1, sin.01 - cos.01, 1, 1, -1, -1], so
  // q1·k0 = s²(2 sin 1 − 2 sin 0.01) and q1·k1 = s²|eB|² = 8 s².
  const score10 = (s * s * (2 * Math.sin(1) - 2 * Math.sin(0.01))) / Math.sqrt(8);
  const score11 = (8 * s * s) / Math.sqrt(8);
  const w0 = 1 / (1 + Math.exp(score11 - score10)), w1 = 1 - w0;
  const x1 = eB.map((e, i) => e + s * (w0 * eA[i] + w1 * eB[i]));
  const x0 = eA.map((e) => e + s * e); // position 0 attends only to itself
  const [l0, l1] = referenceLogits(dir, [0, 1], [0, 1]);
  close(l0, plainLayerNorm(x0), 1e-12, "position 0");
  close(l1, plainLayerNorm(x1), 1e-12, "position 1");
  // the interleaved convention (pairs (0,1), (2,3)) would give a clearly different answer
  const interleaved = [Math.cos(1) - Math.sin(1), Math.sin(1) + Math.cos(1), -Math.cos(0.01) + Math.sin(0.01), -Math.sin(0.01) - Math.cos(0.01)];
  const scoreI = (s * s * (interleaved[0] - interleaved[1] + interleaved[2] - interleaved[3])) / Math.sqrt(8);
  assert.ok(Math.abs(scoreI - score10) > 0.1, "test distinguishes rotary conventions");
});

test("hand-computed: the parallel block feeds the MLP LayerNorm(x), not x + attention (PhiDecoderLayer)", () => {
  // hidden 4, one layer: attention returns the constant v_b (v_proj weight 0), the MLP is gelu_new itself
  // (fc1 = fc2 = identity, intermediate 4). Parallel: x' = x + v_b + gelu(LN(x)).
  const sizes: Sizes = { hidden_size: 4, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 4, partial_rotary_factor: 0.5 };
  const e = [1, -1, -1, 1], vB = [2, 0, -2, 4];
  const tensors = phiTensors(sizes, (name) => {
    if (name === "model.embed_tokens.weight") return [...e, ...new Array(12).fill(0)];
    if (name.endsWith("layernorm.weight")) return [1, 1, 1, 1];
    if (name.endsWith("v_proj.bias")) return vB;
    if (/(dense|fc1|fc2)\.weight$/.test(name) || name === "lm_head.weight") return identity(4);
    return undefined;
  });
  const dir = tempDir();
  writeCustomModel(dir, sizes, tensors);
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
  const s = 1 / Math.sqrt(1 + 1e-5);
  const x1 = e.map((v, i) => v + vB[i] + gelu(s * v));
  close(referenceLogits(dir, [0])[0], plainLayerNorm(x1), 1e-12, "logits");
});

/** Random-weight custom model (LCG), with `edit` to adjust tensors before writing. */
function randomModel(sizes: Sizes, seed: number, edit: (t: ReturnType<typeof phiTensors>) => void = () => {}): string {
  const r = lcg(seed, 0.5);
  const tensors = phiTensors(sizes, (name, shape) => {
    const v = r(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("layernorm.weight")) return v.map((x) => 1 + x);
    return v;
  });
  edit(tensors);
  const dir = tempDir();
  writeCustomModel(dir, sizes, tensors);
  return dir;
}

test("grouped KV heads (repeat_kv): query heads 2j and 2j+1 read kv head j", () => {
  // 4 query heads over 2 kv heads of head_dim 4, against the same model with 4 kv heads whose k/v rows
  // repeat each kv head twice, in repeat_kv's order: kv0, kv0, kv1, kv1.
  const base: Sizes = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 20, partial_rotary_factor: 0.5 };
  let shared: Record<string, Float32Array> = {};
  const gqa = randomModel(base, 7, (t) => {
    shared = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Float32Array.from(v.values)]));
  });
  const full = randomModel({ ...base, num_key_value_heads: 4 }, 7, (t) => {
    for (const [name, tensor] of Object.entries(t)) {
      const src = shared[name];
      if (/(k_proj|v_proj)\.(weight|bias)$/.test(name)) {
        const head = src.length / 2; // values of one kv head (4 rows of 16, or 4 biases)
        const kv0 = src.subarray(0, head), kv1 = src.subarray(head);
        tensor.values = Float32Array.from([...kv0, ...kv0, ...kv1, ...kv1]);
      } else {
        tensor.values = src;
      }
    }
  });
  const ids = [3, 1, 4, 1, 5, 9, 2, 6];
  const a = referenceLogits(gqa, ids, [0, 7]), b = referenceLogits(full, ids, [0, 7]);
  close(a[1], b[1], 1e-12, "last position");
  close(a[0], b[0], 1e-12, "first position");
});

test("qk_layernorm: a LayerNorm per head makes each head's q/k scale-free, and its weights matter", () => {
  const sizes: Sizes = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 20, qk_layernorm: true, partial_rotary_factor: 0.5 };
  const ids = [1, 2, 3, 4, 5];
  const plain = referenceLogits(randomModel(sizes, 3), ids)[0];
  // Scale head 0 of q by 4 and head 1 of k by 1/4 (head_dim 8: weight rows 0..7 / 8..15, of 16 values each):
  // a per-head LayerNorm cancels both, a LayerNorm over the whole q or k vector would not.
  const scaled = referenceLogits(randomModel(sizes, 3, (t) => {
    const scaleRows = (name: string, rows: [number, number], cols: number, f: number) => {
      const x = t[name];
      x.values = Float32Array.from(x.values, (v, i) => (Math.floor(i / cols) >= rows[0] && Math.floor(i / cols) < rows[1] ? v * f : v));
    };
    scaleRows("model.layers.0.self_attn.q_proj.weight", [0, 8], 16, 4);
    scaleRows("model.layers.0.self_attn.q_proj.bias", [0, 8], 1, 4);
    scaleRows("model.layers.0.self_attn.k_proj.weight", [8, 16], 16, 0.25);
    scaleRows("model.layers.0.self_attn.k_proj.bias", [8, 16], 1, 0.25);
  }), ids)[0];
  close(scaled, plain, 1e-4, "q head 0 scaled by 4, k head 1 by 1/4"); // equal up to LayerNorm's eps
  const other = referenceLogits(randomModel(sizes, 3, (t) => {
    t["model.layers.0.self_attn.q_layernorm.weight"].values = new Float32Array(8).fill(3);
  }), ids)[0];
  assert.ok(Math.max(...other.map((v, i) => Math.abs(v - plain[i]))) > 1e-3, "q_layernorm weight has an effect");
});

test("causal: logits at position p are those of the prefix ending at p; positions option", () => {
  const dir = testModel({ preset: "tiny", dtype: "bf16", seed: 21, config: { vocab_size: 512 } });
  const ids = [5, 17, 300, 2, 511, 0, 42];
  const all = referenceLogits(dir, ids, ids.map((_, i) => i));
  for (const p of [0, 3, 6]) close(all[p], referenceLogits(dir, ids.slice(0, p + 1))[0], 1e-12, `position ${p}`);
  // a later token changes later logits, never earlier ones
  const changed = referenceLogits(dir, [...ids.slice(0, 4), 7, 8, 9], [3, 6]);
  close(changed[0], all[3], 1e-12, "position 3 unchanged");
  assert.ok(Math.abs(changed[1][0] - all[6][0]) > 1e-9, "position 6 changed");
  assert.throws(() => referenceLogits(dir, ids, [7]), /position 7 outside/);
  assert.throws(() => referenceLogits(dir, [512]), /token id 512 outside/);
});

test("smoke: the tiny preset (full 51200 vocabulary) gives finite logits; greedy margins reported", (t) => {
  const dir = testModel({ preset: "tiny", dtype: "bf16", seed: 1 });
  const start = performance.now();
  const [logits] = referenceLogits(dir, [50256, 464, 3290, 318]);
  t.diagnostic(`tiny, T=4: ${(performance.now() - start).toFixed(0)} ms`);
  assert.equal(logits.length, 51200);
  assert.ok(logits.every(Number.isFinite));
  assert.equal(topMargin(logits).top, argmax(logits));
  const g = referenceGreedy(dir, [50256, 464], 3, 50295);
  assert.equal(g.tokens.length, 3);
  assert.ok(g.tokens.every((id) => id < 50295));
  assert.ok(g.margins.every((m) => m >= 0));
});
