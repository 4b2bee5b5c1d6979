// Parity with llama.cpp on f16 GGUF files (see suite.ts).
//
// Weights are bit-identical on both sides; llama.cpp rounds the activations to f16 before every f16
// matrix product and its GELU is an f16 lookup table, so its log-probabilities differ from a float64
// forward pass by up to ~0.04 (measured), ours by ~4e-5. Hence a decided greedy step needs a lead of
// 0.1, and |Δp| <= p(1-p)·|Δlogit| stays under 0.25·0.04 = 0.01 (measured: 2.7e-3 tiny, 1.4e-3 small).
import { llamaParitySuite } from "./suite.js";

llamaParitySuite("f16", {
  maxProbDiff: 0.01,
  decidedMargin: 0.1,
  minFullPrompts: 3,
  minComparedTokens: 3 * 32,
  why: "llama.cpp's f16 activations and f16 GELU table move its log-probabilities by <= ~0.04",
});
