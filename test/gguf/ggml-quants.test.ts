// Hand-made blocks: scales written as f16 bits, quants as nibbles/bits, and the values each format's
// definition gives for them worked out by hand (see the comments), not produced by our dequantizer.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  blockSize, dequantizeRow, fp16ToFp32, fp32ToFp16, bf16ToFp32, fp32ToBf16, quantizeRow, rowBytes, typeSize,
} from "../../src/formats/ggml-quants.js";
import type { DType } from "../../src/formats/tensor.js";

// f16 bit patterns used below.
const H = { "0.25": 0x3400, "0.5": 0x3800, "1": 0x3c00, "2": 0x4000, "-1": 0xbc00 };

function block(dtype: DType, fill: (b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(typeSize(dtype));
  fill(b);
  return b;
}
function setF16(b: Uint8Array, p: number, h: number): void {
  b[p] = h & 0xff;
  b[p + 1] = h >> 8;
}
function decode(dtype: DType, b: Uint8Array): Float32Array {
  const out = new Float32Array(blockSize(dtype));
  dequantizeRow(dtype, b, 0, out.length, out);
  return out;
}

test("block sizes and bytes per block match ggml's type traits", () => {
  const expected: Record<string, [number, number]> = {
    F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22],
    Q5_1: [32, 24], Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210],
  };
  for (const [dtype, [bs, ts]] of Object.entries(expected)) {
    assert.equal(blockSize(dtype as DType), bs, dtype);
    assert.equal(typeSize(dtype as DType), ts, dtype);
  }
  assert.equal(rowBytes("Q4_K", 2560), 10 * 144);
  assert.throws(() => rowBytes("Q8_0", 33), /multiple of 32/);
});

test("f16 and bf16 conversions", () => {
  assert.equal(fp16ToFp32(0x3c00), 1);
  assert.equal(fp16ToFp32(0xc000), -2);
  assert.equal(fp16ToFp32(0x7bff), 65504);
  assert.equal(fp16ToFp32(0x0001), 2 ** -24);
  assert.equal(fp16ToFp32(0x7c00), Infinity);
  assert.equal(fp32ToFp16(1), 0x3c00);
  assert.equal(fp32ToFp16(65520), 0x7c00); // halfway above the largest half: rounds to infinity
  assert.equal(fp32ToFp16(1 + 2 ** -11), 0x3c00); // tie: to even
  assert.equal(fp32ToFp16(1 + 3 * 2 ** -11), 0x3c02); // tie: to even (up)
  assert.equal(fp32ToFp16(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal: to even (0)
  assert.equal(fp32ToFp16(-(2 ** -24)), 0x8001);
  assert.equal(fp32ToFp16(NaN), 0x7e00);
  assert.equal(bf16ToFp32(0x3f80), 1);
  assert.equal(bf16ToFp32(0xc0a0), -5);
  assert.equal(fp32ToBf16(1 + 2 ** -8), 0x3f80); // tie: to even
  assert.equal(fp32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
});

test("Q8_0: value = int8 * d", () => {
  const y = decode("Q8_0", block("Q8_0", (b) => {
    setF16(b, 0, H["0.5"]);
    b[2] = 0xfd; // -3
    b[3] = 127;
    b[33] = 0x80; // -128
  }));
  assert.equal(y[0], -1.5);
  assert.equal(y[1], 63.5);
  assert.equal(y[2], 0);
  assert.equal(y[31], -64);
});

test("Q4_0: low nibbles are values 0..15, high nibbles 16..31, value = (q - 8) * d", () => {
  const y = decode("Q4_0", block("Q4_0", (b) => {
    setF16(b, 0, H["2"]);
    b[2] = 0x3f; // value 0: 15, value 16: 3
    b[3] = 0x88; // value 1 and 17: 8 -> 0
  }));
  assert.equal(y[0], 14);
  assert.equal(y[16], -10);
  assert.equal(y[1], 0);
  assert.equal(y[17], 0);
  assert.equal(y[5], -16); // nibble 0
});

test("Q4_1: value = q * d + m", () => {
  const y = decode("Q4_1", block("Q4_1", (b) => {
    setF16(b, 0, H["0.25"]);
    setF16(b, 2, H["-1"]);
    b[5] = 0xa2; // value 1: 2, value 17: 10
  }));
  assert.equal(y[1], -0.5);
  assert.equal(y[17], 1.5);
  assert.equal(y[0], -1);
});

test("Q5_0: fifth bit of value j is bit j of qh, value = (q - 16) * d", () => {
  const y = decode("Q5_0", block("Q5_0", (b) => {
    setF16(b, 0, H["1"]);
    // qh = bits 0 and 18 set (little-endian u32 at bytes 2..5)
    b[2] = 0x01;
    b[4] = 0x04;
    b[6] = 0x05; // value 0: low 5 | 16 = 21; value 16: 0, no high bit
    b[8] = 0x70; // value 18: 7 | 16 = 23; value 2: 0
  }));
  assert.equal(y[0], 5);
  assert.equal(y[16], -16);
  assert.equal(y[18], 7);
  assert.equal(y[2], -16);
});

test("Q5_1: value = q * d + m with 5-bit q", () => {
  const y = decode("Q5_1", block("Q5_1", (b) => {
    setF16(b, 0, H["0.5"]);
    setF16(b, 2, H["1"]);
    b[4] = 0x08; // qh bit 3
    b[8 + 3] = 0x1f; // value 3: 15 | 16 = 31; value 19: 1
  }));
  assert.equal(y[3], 16.5);
  assert.equal(y[19], 1.5);
  assert.equal(y[0], 1);
});

test("Q2_K: 2-bit quants, 4-bit scale (low) and min (high) per 16 values", () => {
  const y = decode("Q2_K", block("Q2_K", (b) => {
    b[0] = 0x21; // values 0..15: scale 1, min 2
    b[2] = 0x13; // values 32..47: scale 3, min 1
    b[4] = 0x05; // values 64..79: scale 5, min 0
    b[6] = 0xf1; // values 96..111: scale 1, min 15
    b[8] = 0x02; // values 128..143: scale 2, min 0
    b[16 + 0] = 0xe4; // q[0]: bits 1-0 = 0, 3-2 = 1, 5-4 = 2, 7-6 = 3 (values 0, 32, 64, 96)
    b[16 + 32] = 0x03; // q[32]: value 128 = 3
    setF16(b, 80, H["1"]); // d
    setF16(b, 82, H["0.5"]); // dmin
  }));
  assert.equal(y[0], 1 * 0 - 0.5 * 2);
  assert.equal(y[32], 3 * 1 - 0.5 * 1);
  assert.equal(y[64], 5 * 2);
  assert.equal(y[96], 1 * 3 - 0.5 * 15);
  assert.equal(y[128], 2 * 3);
  assert.equal(y[16], 0); // scale byte 1 is zero
});

test("Q3_K: 2 low bits + inverted high bit, 6-bit scales offset by 32", () => {
  const y = decode("Q3_K", block("Q3_K", (b) => {
    const hm = 0, qs = 32, sc = 96;
    // scale 0 = 33 (-> +1): low nibble 1 in byte 0, high bits 2 in byte 8 bits 0-1
    // scale 8 = 37 (-> +5): low nibble 5 in byte 0's high nibble, high bits 2 in byte 8 bits 4-5
    // scale 2 = 31 (-> -1): low nibble 15 in byte 2, high bits 1 in byte 10 bits 0-1
    // scale 1 = 0 (-> -32)
    b[sc + 0] = 0x51;
    b[sc + 2] = 0x0f;
    b[sc + 8] = 0x22;
    b[sc + 10] = 0x01;
    b[qs + 0] = 0x03; // value 0: 3 (bits 1-0), value 32: 0 (bits 3-2)
    b[qs + 1] = 0x01; // value 1: 1
    b[qs + 32] = 0x02; // value 128: 2
    b[hm + 0] = 0x01 | 0x10; // high bit set for value 0 (bit 0) and value 128 (bit 4): no -4
    setF16(b, 108, H["0.5"]);
  }));
  assert.equal(y[0], 0.5 * 1 * 3);
  assert.equal(y[1], 0.5 * 1 * (1 - 4));
  assert.equal(y[32], 0.5 * -1 * (0 - 4));
  assert.equal(y[128], 0.5 * 5 * 2);
  assert.equal(y[16], 0.5 * -32 * (0 - 4));
});

test("Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes", () => {
  const y = decode("Q4_K", block("Q4_K", (b) => {
    setF16(b, 0, H["1"]);
    setF16(b, 2, H["0.5"]);
    const s = 4, q = 16;
    b[s + 0] = 3; // scale 0
    b[s + 4] = 4; // min 0
    b[s + 1] = 2; // scale 1 (min 1 = 0)
    // scale 6 = 37 = 0b10_0101: low 4 bits in byte 10 (low nibble), top 2 bits in byte 2 bits 6-7
    // min 6 = 20 = 0b01_0100: low 4 bits in byte 10 (high nibble), top 2 bits in byte 6 bits 6-7
    b[s + 2] = 0x80 | 1; // scale 2 = 1
    b[s + 6] = 0x40; // min 2 = 0
    b[s + 10] = 0x45;
    b[q + 0] = 0x25; // value 0: 5, value 32: 2
    b[q + 32] = 0x0f; // value 64: 15
    b[q + 96] = 0x07; // value 192: 7
  }));
  assert.equal(y[0], 3 * 5 - 0.5 * 4);
  assert.equal(y[32], 2 * 2);
  assert.equal(y[64], 1 * 15);
  assert.equal(y[192], 37 * 7 - 0.5 * 20);
  assert.equal(y[1], -0.5 * 4);
});

test("Q5_K: Q4_K plus a fifth bit, bits 2i and 2i+1 of qh for sub-blocks 2i and 2i+1", () => {
  const y = decode("Q5_K", block("Q5_K", (b) => {
    setF16(b, 0, H["0.25"]);
    setF16(b, 2, H["1"]);
    const s = 4, qh = 16, ql = 48;
    b[s + 0] = 4; // scale 0
    b[s + 4] = 1; // min 0
    b[s + 5] = 2; // min 1 (scale 1 = 0)
    b[s + 3] = 2; // scale 3 (min 3 = 0)
    b[qh + 0] = 0x01 | 0x08; // value 0 (sub-block 0, bit 0) and value 96 (sub-block 3, bit 3)
    b[ql + 0] = 0x0a; // value 0: 10
    b[ql + 32] = 0x30; // value 96: high nibble 3
  }));
  assert.equal(y[0], 0.25 * 4 * (10 + 16) - 1);
  assert.equal(y[32], -2);
  assert.equal(y[96], 0.25 * 2 * (3 + 16));
});

test("Q6_K: 4 low bits + 2 high bits - 32, int8 scale per 16 values", () => {
  const y = decode("Q6_K", block("Q6_K", (b) => {
    const ql = 0, qh = 128, sc = 192;
    b[ql + 0] = 0x21; // value 0: low 1, value 64: low 2
    b[qh + 0] = 0x02; // value 0: high 2 (bits 1-0), value 64: high 0 (bits 5-4)
    b[sc + 0] = 0xfd; // -3
    b[sc + 1] = 1;
    b[sc + 4] = 2;
    b[ql + 64] = 0x0f; // second half, value 128: low 15
    b[qh + 32] = 0x03; // value 128: high 3
    b[sc + 8] = 100;
    setF16(b, 208, H["0.5"]);
  }));
  assert.equal(y[0], 0.5 * -3 * ((1 | (2 << 4)) - 32));
  assert.equal(y[64], 0.5 * 2 * (2 - 32));
  assert.equal(y[16], 0.5 * 1 * -32);
  assert.equal(y[128], 0.5 * 100 * ((15 | (3 << 4)) - 32));
});

test("dequantizeRow honours byte and output offsets and rejects short buffers", () => {
  const b = new Uint8Array(5 + 34);
  setF16(b, 5, H["2"]);
  b[7] = 3;
  const out = new Float32Array(40);
  dequantizeRow("Q8_0", b, 5, 32, out, 8);
  assert.equal(out[8], 6);
  assert.equal(out[7], 0);
  assert.throws(() => dequantizeRow("Q8_0", b, 6, 32, out, 0), RangeError);
  assert.throws(() => dequantizeRow("Q8_0", b, 5, 32, out, 9), RangeError);
});

// Deterministic pseudo-random gaussians (Box-Muller on a small LCG).
function gaussians(n: number, seed: number, sigma: number): Float32Array {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = sigma * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return x;
}

function roundTrip(dtype: "Q8_0" | "Q4_0" | "Q4_K" | "F16" | "BF16", x: Float32Array): Float32Array {
  const bytes = new Uint8Array(rowBytes(dtype, x.length));
  quantizeRow(dtype, x, 0, x.length, bytes, 0);
  const y = new Float32Array(x.length);
  dequantizeRow(dtype, bytes, 0, x.length, y);
  return y;
}

test("Q8_0 round trip: error at most half a step (amax/127) plus the f16 rounding of the scale", () => {
  const x = gaussians(32 * 64, 1, 0.05);
  const y = roundTrip("Q8_0", x);
  for (let b = 0; b < 64; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = amax / 127;
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      assert.ok(Math.abs(y[i] - x[i]) <= 0.5 * d + 127 * d * 2 ** -11 + 1e-12, `value ${i}`);
    }
  }
});

test("Q4_0 round trip: error at most one step (|max|/8), mean under a third of a step", () => {
  const x = gaussians(32 * 64, 2, 1);
  const y = roundTrip("Q4_0", x);
  let sumErr = 0, sumStep = 0;
  for (let b = 0; b < 64; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = amax / 8;
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      const err = Math.abs(y[i] - x[i]);
      assert.ok(err <= d * (1 + 2 ** -10), `value ${i}: err ${err}, step ${d}`);
      sumErr += err;
      sumStep += d;
    }
  }
  assert.ok(sumErr / sumStep < 1 / 3, `mean error ${sumErr / sumStep} steps`);
});

test("Q4_K round trip: RMS error under 10% of the signal (4.5 bits per weight)", () => {
  const x = gaussians(256 * 16, 3, 0.02);
  const y = roundTrip("Q4_K", x);
  let se = 0, ss = 0;
  for (let i = 0; i < x.length; i++) {
    se += (y[i] - x[i]) ** 2;
    ss += x[i] ** 2;
  }
  assert.ok(Math.sqrt(se / ss) < 0.1, `relative RMS error ${Math.sqrt(se / ss)}`);
});

test("F16 and BF16 round trips are within half an ulp of their mantissa", () => {
  const x = gaussians(1024, 4, 3);
  const h = roundTrip("F16", x);
  const b = roundTrip("BF16", x);
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]) > 2 ** -14) assert.ok(Math.abs(h[i] - x[i]) <= Math.abs(x[i]) * 2 ** -11, `f16 ${i}`);
    assert.ok(Math.abs(b[i] - x[i]) <= Math.abs(x[i]) * 2 ** -8, `bf16 ${i}`);
  }
});
