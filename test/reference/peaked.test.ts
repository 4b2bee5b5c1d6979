// `peaked` test models exist so that greedy parity tests are decided by the model, not by rounding:
// measure the top-1 vs top-2 logit margin with the reference, against the default weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { referenceGreedy, referenceLogits, topMargin } from "./phi-reference.js";
import { testModel } from "../helpers/test-models.js";

const REAL_TOKENS = 50295; // phi-2 never samples the padding rows 50295..51199

/** Margins at every position of `contexts` random contexts of length T. */
function margins(dir: string, contexts: number, T: number): number[] {
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % REAL_TOKENS;
  const out: number[] = [];
  for (let c = 0; c < contexts; c++) {
    const ids = Array.from({ length: T }, rand);
    for (const logits of referenceLogits(dir, ids, ids.map((_, i) => i))) out.push(topMargin(logits, REAL_TOKENS).margin);
  }
  return out.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.floor(q * (sorted.length - 1))];

test("peaked: the top-1 logit clearly beats the second; default weights are nearly uniform", (t) => {
  const peaked = margins(testModel({ preset: "tiny", dtype: "bf16", seed: 7, peaked: true }), 4, 12);
  const plain = margins(testModel({ preset: "tiny", dtype: "bf16", seed: 7 }), 2, 12);
  const describe = (m: number[]) =>
    `min ${m[0].toFixed(3)}, p10 ${quantile(m, 0.1).toFixed(3)}, median ${quantile(m, 0.5).toFixed(3)}, max ${m[m.length - 1].toFixed(2)} (${m.length} positions)`;
  t.diagnostic(`peaked top1-top2 logit margin: ${describe(peaked)}`);
  t.diagnostic(`default top1-top2 logit margin: ${describe(plain)}`);
  assert.ok(quantile(peaked, 0.5) > 1, "peaked median margin above 1 logit");
  assert.ok(quantile(peaked, 0.1) > 0.1, "peaked: 90% of positions have a margin above 0.1");
  assert.ok(quantile(plain, 0.5) < 0.1, "default weights: margins are rounding-noise sized");
});

test("peaked: greedy decoding follows the context instead of repeating one token", (t) => {
  const dir = testModel({ preset: "tiny", dtype: "bf16", seed: 7, peaked: true });
  const g = referenceGreedy(dir, [50256, 464, 3290], 10, REAL_TOKENS);
  t.diagnostic(`greedy tokens ${g.tokens.join(" ")}; margins ${g.margins.map((m) => m.toFixed(2)).join(" ")}`);
  assert.ok(new Set(g.tokens).size >= 4, `greedy output too repetitive: ${g.tokens.join(" ")}`);
});
