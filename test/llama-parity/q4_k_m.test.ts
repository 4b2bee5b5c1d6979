// Parity with llama.cpp on a q4_k_m GGUF file (see suite.ts): Q4_K weights, with Q6_K for lm_head and for
// attn_v and ffn_down of layer 1 (of 2: use_more_bits), all held by our engine in their own types. The
// model's rows are whole super-blocks (hidden 512, intermediate 1024), so nothing falls back to a 32-block
// type; it is q5_k.test.ts's model. The differences from llama.cpp are q4_0.test.ts's (its f16 GELU
// table, amplified by int8 activation rounding) plus its per-256 activation scales for K-quants (ours
// are per 32). Measured max |Δp|: 0.044 (q4_0 files of the tiny and small models: 0.066 and 0.108).
import { llamaParitySuite } from "./suite.js";

llamaParitySuite("q4_k_m", {
  maxProbDiff: 0.1,
  decidedMargin: 1,
  minFullPrompts: 0,
  minComparedTokens: 32,
  why: "as q4_0 (bound 0.2), where llama.cpp's f16 GELU table and int8 activation rounding move its log-probabilities by <= ~0.46",
  held: /^(?=.*Q4_K)(?=.*Q6_K)/,
}, "f32", [{
  label: "k-wide",
  preset: "small",
  seed: 5,
  config: { hidden_size: 512, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1024, num_hidden_layers: 2, partial_rotary_factor: 0.5 },
}]);
