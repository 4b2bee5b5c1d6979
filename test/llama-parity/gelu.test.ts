// Why llama.cpp and our engine differ on q8_0/q4_0 files, proven rather than assumed, with a float64
// forward pass that emulates ggml's activation handling (quantized-reference.ts): with int8 activations
// (as both do) and an exact GELU it reproduces our engine; with llama.cpp's f16 GELU lookup table
// instead it reproduces llama.cpp. The two emulations differ by far more than either match, so the
// f16 GELU is the whole difference.
// (On f16 files the same emulation with f16-rounded activations and the f16 GELU comes within 7e-3
// of llama.cpp's log-probabilities, against 2e-2 without it: some other f16 rounding of llama.cpp's
// remains unexplained there, so f16 is not claimed here.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../../src/index.js";
import { openGguf } from "../../src/formats/gguf.js";
import { resolveWeights } from "../../src/model/weights.js";
import { quantizeModel } from "../../src/formats/gguf-quantize.js";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";
import { LlamaCppModel } from "../helpers/llama.js";
import { quantizedReferenceLogits } from "./quantized-reference.js";

const PROMPT = [31373, 995, 11, 612, 318, 257, 1332, 13];
const POSITIONS = [0, 4, 7];
/** Log-probability agreement expected of an exact emulation (float32 vs float64 sums, rare tie flips). */
const MATCH = 2e-3;

function logSoftmax(l: ArrayLike<number>, offset: number, n: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, l[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(l[offset + i]! - max);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = l[offset + i]! - max - Math.log(sum);
  return out;
}

/** Largest log-probability difference over the tokens either side gives a non-negligible chance. */
function maxLogProbDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > -20 || b[i]! > -20) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

for (const type of ["q8_0", "q4_0"] as const) {
  test(`tiny ${type}: ours = int8 activations + exact GELU; llama.cpp = the same + f16 GELU table`, async (t) => {
    const file = join(tempDir("phi2-llama-gelu-"), `tiny-${type}.gguf`);
    await quantizeModel(testModel({ preset: "tiny", dtype: "f32", seed: 1, peaked: true }), type, file);
    const g = openGguf(file);
    const w = resolveWeights(g.tensors, g.config, file);
    const V = g.config.vocab_size;
    const exact = quantizedReferenceLogits(g.config, w, PROMPT, POSITIONS, "ours", false).map((l) => logSoftmax(l, 0, V));
    const f16 = quantizedReferenceLogits(g.config, w, PROMPT, POSITIONS, "ggml", true).map((l) => logSoftmax(l, 0, V));

    const ours = await loadModel(file, { threads: 2, contextLength: 32, kvType: "f32" }); // as the emulation (and llama.cpp here)
    let oursLp: Float64Array[];
    try {
      const [logits] = await ours.engine.forward([{ slot: 0, tokens: PROMPT, startPos: 0, allLogits: true }]); // (T, V)
      oursLp = POSITIONS.map((p) => logSoftmax(logits!, p * V, V));
    } finally {
      await ours.dispose();
    }
    const llama = await LlamaCppModel.open(file, { threads: 1, contextSize: 32 });
    let llamaLp: Float64Array[];
    try {
      llamaLp = (await llama.nextTokenProbabilities(PROMPT, POSITIONS)).map((p) => Float64Array.from(p, Math.log));
    } finally {
      await llama.dispose();
    }

    const worst = (a: Float64Array[], b: Float64Array[]) => Math.max(...a.map((x, i) => maxLogProbDiff(x, b[i]!)));
    const oursVsExact = worst(oursLp, exact), llamaVsF16 = worst(llamaLp, f16);
    const emulations = worst(exact, f16), oursVsLlama = worst(oursLp, llamaLp);
    t.diagnostic(`tiny ${type}: max |Δlogp| ours vs our emulation ${oursVsExact.toExponential(1)}, llama.cpp vs ggml's emulation ${llamaVsF16.toExponential(1)}; between the emulations ${emulations.toFixed(3)}, ours vs llama.cpp ${oursVsLlama.toFixed(3)}`);
    assert.ok(oursVsExact <= MATCH, `ours vs our emulation: ${oursVsExact}`);
    assert.ok(llamaVsF16 <= MATCH, `llama.cpp vs ggml's emulation: ${llamaVsF16}`);
    assert.ok(emulations > 5 * MATCH, `the two emulations must be told apart (${emulations})`);
  });
}
