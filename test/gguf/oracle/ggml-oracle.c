// Writes ggml's own quantized blocks and dequantized floats for a fixed input, using the libggml-base.so
// that ships inside node-llama-cpp (the library llama.cpp itself runs). Our tests compare our
// TypeScript (de)quantizers with these bytes: an implementation nobody here wrote.
// Build and run: test/gguf/oracle/make-fixtures.sh (needs gcc; the fixture it writes is committed).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

typedef uint16_t ggml_fp16_t;
size_t ggml_quantize_chunk(int type, const float * src, void * dst, int64_t start, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t ggml_row_size(int type, int64_t ne);
void ggml_fp32_to_fp16_row(const float * x, ggml_fp16_t * y, int64_t n);
void ggml_fp32_to_bf16_row_ref(const float * x, uint16_t * y, int64_t n);
void dequantize_row_q4_0(const void * x, float * y, int64_t k);
void dequantize_row_q4_1(const void * x, float * y, int64_t k);
void dequantize_row_q5_0(const void * x, float * y, int64_t k);
void dequantize_row_q5_1(const void * x, float * y, int64_t k);
void dequantize_row_q8_0(const void * x, float * y, int64_t k);
void dequantize_row_q2_K(const void * x, float * y, int64_t k);
void dequantize_row_q3_K(const void * x, float * y, int64_t k);
void dequantize_row_q4_K(const void * x, float * y, int64_t k);
void dequantize_row_q5_K(const void * x, float * y, int64_t k);
void dequantize_row_q6_K(const void * x, float * y, int64_t k);
void ggml_quantize_init(int type);

#define N 2048
#define NE 6144 // the K-quant edge cases: 24 super-blocks

static uint64_t state = 0x9E3779B97F4A7C15ull;
static double uniform(void) { // xorshift64*, in (0, 1)
  state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
  return ((state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0) + 1e-12;
}
static double gauss(void) { return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform()); }

// Sub-blocks of 32 of different kinds, mixed within super-blocks 16..23 of the edge cases: the 4-lane wasm
// Q4_K/Q5_K quantizer runs four sub-blocks side by side, each taking its own branches of make_qkx2_quants.
static float kind(int kd, int k32, double g) {
  switch (kd) {
    case 0: return 0.0f;                                          // flat: max == min == 0
    case 1: return -0.5f;                                         // flat and negative: the_min 0.5
    case 2: return (float)(0.1 * g);
    case 3: return k32 == 7 ? 0.8f : 0.0f;                        // one-hot
    case 4: return (float)(-0.05 - fabs(0.1 * g));                // negative only
    case 5: return (float)(1.0 + 0.05 * g);                       // positive, offset: this_min > 0
    case 6: return 0.75f;                                         // constant, positive: not flat (min 0)
    case 7: return k32 % 2 ? 0.3f : -0.2f;                        // two levels
    case 8: return (float)(1e-7 * g);                             // beside 1.0: 6-bit scale 0, levels kept
    case 9: return (float)(1.0 * g);
    case 11: return k32 == 11 ? NAN : (float)(0.1 * g);           // NaN: its sub-block's weights are NaN
    case 12: return k32 == 3 ? INFINITY : (float)(0.1 * g);
    case 13: return k32 == 0 ? NAN : (float)(0.1 * g);            // NaN first: min = max = NaN, never replaced
    default: return -1e-7f;                                       // (10) flat, tiny: scale 0, min ~0
  }
}

static void put(FILE * f, const char * tag, const void * p, uint32_t n) {
  uint32_t len = (uint32_t) strlen(tag);
  fwrite(&len, 4, 1, f); fwrite(tag, 1, len, f); fwrite(&n, 4, 1, f); fwrite(p, 1, n, f);
}

int main(int argc, char ** argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s OUT.bin\n", argv[0]); return 1; }
  static float x[N];
  // 8 super-blocks of different character: weights-like gaussians at several scales, one with outliers,
  // an all-zero block, a constant block, all-positive values and tiny (f16-subnormal) values.
  for (int i = 0; i < N; i++) {
    int blk = i / 256;
    double g = gauss();
    switch (blk) {
      case 0: x[i] = (float)(0.02 * g); break;
      case 1: x[i] = (float)(1.0 * g + ((i % 97) == 0 ? 12.0 : 0.0)); break;
      case 2: x[i] = (i % 256) < 128 ? 0.0f : (float)(0.5 * g); break;
      case 3: x[i] = 0.75f; break;
      case 4: x[i] = (float)fabs(3.0 * g); break;
      case 5: x[i] = (float)(1e-6 * g); break;
      case 6: x[i] = (float)(-0.3 + 0.05 * g); break;
      default: x[i] = (float)(100.0 * g); break;
    }
  }
  FILE * f = fopen(argv[1], "wb");
  put(f, "input", x, sizeof(x));
  static uint16_t h[N];
  ggml_fp32_to_fp16_row(x, h, N); put(f, "F16", h, sizeof(h));
  ggml_fp32_to_bf16_row_ref(x, h, N); put(f, "BF16", h, sizeof(h));
  struct { const char * name; int type; void (*deq)(const void *, float *, int64_t); } types[] = {
    {"Q4_0", 2, dequantize_row_q4_0}, {"Q4_1", 3, dequantize_row_q4_1}, {"Q5_0", 6, dequantize_row_q5_0},
    {"Q5_1", 7, dequantize_row_q5_1}, {"Q8_0", 8, dequantize_row_q8_0}, {"Q2_K", 10, dequantize_row_q2_K},
    {"Q3_K", 11, dequantize_row_q3_K}, {"Q4_K", 12, dequantize_row_q4_K}, {"Q5_K", 13, dequantize_row_q5_K},
    {"Q6_K", 14, dequantize_row_q6_K},
  };
  static uint8_t q[NE * 4];
  static float y[N];
  char tag[64];
  for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
    ggml_quantize_init(types[t].type);
    // 2 rows of N/2, as llama-quantize calls it (no importance matrix).
    size_t nbytes = ggml_quantize_chunk(types[t].type, x, q, 0, 2, N / 2, NULL);
    put(f, types[t].name, q, (uint32_t) nbytes);
    types[t].deq(q, y, N);
    snprintf(tag, sizeof tag, "%s.dequant", types[t].name);
    put(f, tag, y, sizeof(y));
  }
  // Edge cases for the K-quant quantizers, one super-block each: what the rounding tricks, the zero and
  // tiny-scale shortcuts, the sign of the largest value and f16 overflow of the scales do.
  static float e[NE];
  for (int i = 0; i < NE; i++) {
    int blk = i / 256, k = i % 256, sub = k / 16;
    double g = gauss();
    switch (blk) {
      case 0: e[i] = (float)(0.02 * g); break;
      case 1: e[i] = k % 16 == 5 ? (float)(-1.0 - uniform()) : (float)(0.1 * g); break; // negative max in every 16
      case 2: e[i] = 0.0f; break;
      case 3: e[i] = (float)(1e-9 * g); break;                          // scales underflow f16
      case 4: e[i] = (float)((sub % 2 ? 1e-16 : 1e-14) * g); break;     // around GROUP_MAX_EPS
      case 5: e[i] = (float)(1e-39 * g); break;                         // f32 subnormals
      case 6: e[i] = k % 41 == 3 ? (float)(50.0 * (k % 2 ? -1 : 1)) : (float)(0.05 * g); break;
      case 7: e[i] = sub < 2 ? (float)(1e-3 * g) : (float)(1e8 * g); break;  // Q4_K/Q5_K d overflows f16
      case 8: e[i] = sub < 1 ? (float)(1e-3 * g) : (float)(3e9 * g); break;  // Q6_K d overflows f16
      case 9: e[i] = sub % 2 ? -e[i - 16] : (float)(0.3 * g); break;    // opposite sub-blocks: scale +-128
      case 10: e[i] = 0.75f; break;
      case 11: e[i] = -0.5f; break;
      case 12: e[i] = (float)((k % 16) - 8) * 0.125f; break;            // exact grid: rounding ties
      case 13: e[i] = (float)((k % 7) - 3) * 0.0625f * (sub % 3 ? 1 : -1); break;
      case 14: e[i] = sub == 3 ? 0.0f : (float)(1000.0 * g); break;
      case 15: e[i] = (float)(pow(10.0, sub % 8 - 6) * g); break;        // sub-block scales 1e-6..10
      case 16: e[i] = kind(k / 32, k % 32, g); break;
      case 17: e[i] = kind((3 * (k / 32) + 1) % 8, k % 32, g); break;
      case 18: e[i] = kind((5 * (k / 32) + 2) % 8, k % 32, g); break;
      case 19: e[i] = kind((7 * (k / 32) + 3) % 8, k % 32, g); break;
      case 20: e[i] = kind(k / 32 % 2 ? 9 : 8, k % 32, g); break;
      case 21: e[i] = kind(k / 32 == 6 ? 10 : k / 32 % 3 ? 9 : 8, k % 32, g); break;
      case 22: e[i] = kind(k / 32 % 4 == 1 ? 3 : k / 32 % 4 == 2 ? 8 : k / 32 % 4 == 3 ? 1 : 9, k % 32, g); break;
      default: e[i] = kind((k / 32 + 7) % 14, k % 32, g); break;
    }
  }
  put(f, "edge", e, sizeof(e));
  struct { const char * tag; int type; } edge[] = { {"edge.Q4_K", 12}, {"edge.Q6_K", 14}, {"edge.Q5_K", 13} };
  for (size_t t = 0; t < sizeof(edge) / sizeof(edge[0]); t++) {
    ggml_quantize_init(edge[t].type);
    size_t nbytes = ggml_quantize_chunk(edge[t].type, e, q, 0, 4, NE / 4, NULL);
    put(f, edge[t].tag, q, (uint32_t) nbytes);
  }
  fclose(f);
  return 0;
}
