// Parity with llama.cpp on a q5_k_m GGUF file (see suite.ts), written by our Q5_K quantizer (ggml's
// quantize_row_q5_K_ref): Q5_K weights, with Q6_K for lm_head and for attn_v and ffn_down of layer 1
// (of 2: use_more_bits), all held by our engine in their own types. q4_k_m.test.ts's model (rows of
// whole super-blocks, so nothing falls back), and its sources of difference: llama.cpp's f16 GELU table
// amplified by int8 activation rounding, and its per-256 activation scales for K-quants (ours: per 32).
// Measured max |Δp|: 0.047 (q4_k_m: 0.044).
import { llamaParitySuite } from "./suite.js";

llamaParitySuite("q5_k_m", {
  maxProbDiff: 0.1,
  decidedMargin: 1,
  minFullPrompts: 0,
  minComparedTokens: 32,
  why: "as q4_k_m: llama.cpp's f16 GELU table and int8 activation rounding move its log-probabilities by <= ~0.46",
  held: /^(?=.*Q5_K)(?=.*Q6_K)/,
}, "f32", [{
  label: "k-wide",
  preset: "small",
  seed: 5,
  config: { hidden_size: 512, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1024, num_hidden_layers: 2, partial_rotary_factor: 0.5 },
}]);
