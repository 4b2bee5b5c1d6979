// linear_q4_0: out (T, N) [+]= x (T, K) f32 · w (N, K) Q4_0ᵀ [+ bias (N) f32].
// w: N rows of K/32 ggml blocks { f16 d; u8 qs[16] } (18 bytes): value j (j < 16) is the low nibble of
// qs[j], value 16 + j its high nibble, value = (nibble − 8) · d. Activations are quantized to int16-held
// int8 per 32 values into `scratch` in nibble order (see _linear-quant.ts; quantScratchBytes(T, K)).
// The −8 is applied once per block through the activation sums: Σ (q − 8)·x = Σ q·x − 8·Σ x.

import { f16Scalar } from "./_simd";
import {
  QK, QPANEL, QPANEL_K, QPANEL_MIN, QPANEL_SCALE, dot32, linearQuantPanels, nibble0, nibble1, nibble2, nibble3,
  qstore1, quantizeActivations, xdBase, xsBase,
} from "./_linear-quant";

const BLOCK_BYTES: usize = 18;

/** Pointers are byte offsets; bias = 0 means none; K % 32 == 0; scratch: T·K·2 + T·(K/32)·8 bytes. */
export function linear_q4_0(
  out: usize, x: usize, w: usize, bias: usize, T: i32, K: i32, N: i32, accumulate: i32, scratch: usize,
): void {
  quantizeActivations(x, T, K, scratch, true);
  if (T == 1) matvecQ4_0(out, w, bias, K, N, accumulate != 0, scratch);
  else linearQuantPanels(out, w, bias, T, K, N, accumulate != 0, scratch, q4_0Panel, true);
}

/** Σ nibble·x over one Q4_0 block (nibbles 0..15, without the −8). */
// @ts-ignore: decorator
@inline function blockDot(blk: usize, xp: usize): v128 {
  const v = v128.load(blk, 2);
  return dot32(nibble0(v), nibble1(v), nibble2(v), nibble3(v), xp);
}

// @ts-ignore: decorator
@inline function blockScale(blk: usize): f32 {
  return f16Scalar(<i32>load<i16>(blk));
}

/** Decode: streams the weights once, one row at a time (x stays in L1). */
function matvecQ4_0(out: usize, w: usize, bias: usize, K: i32, N: i32, addOut: bool, scratch: usize): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * BLOCK_BYTES;
  const xd = xdBase(scratch, 1, K);
  const xs = xsBase(scratch, 1, K);
  for (let n = 0; n < N; n++) {
    let r = w + <usize>n * rowBytes;
    let acc = f32x4.splat(0);
    let offset: f32 = 0; // Σ_b d_b · dx_b · Σ q_x over the block
    let xp = scratch;
    let dp = xd;
    let sp = xs;
    for (let b = 0; b < nb; b++) {
      const d = blockScale(r);
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(blockDot(r, xp)), f32x4.splat(d * load<f32>(dp))));
      offset += d * load<f32>(sp);
      r += BLOCK_BYTES;
      xp += 64;
      dp += 4;
      sp += 4;
    }
    const pairs = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
    const sum = f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1) - 8 * offset;
    qstore1(out + (<usize>n << 2), sum, bias != 0 ? bias + (<usize>n << 2) : 0, addOut);
  }
}

/** Q4_0 rows → int16 panel of nibbles (nibble order) with scale d and minimum 8·d. */
function q4_0Panel(w: usize, K: i32, n0: i32, rows: i32, k0: i32, kc: i32): void {
  const nb = K >> 5;
  const nbc = kc >> 5;
  const b0 = k0 >> 5;
  for (let r = 0; r < rows; r++) {
    let blk = w + (<usize>(n0 + r) * <usize>nb + <usize>b0) * BLOCK_BYTES;
    let dst = QPANEL + <usize>r * <usize>(QPANEL_K << 1);
    let sp = QPANEL_SCALE + <usize>r * <usize>((QPANEL_K / QK) << 2);
    let mp = QPANEL_MIN + <usize>r * <usize>((QPANEL_K / QK) << 2);
    for (let b = 0; b < nbc; b++) {
      const v = v128.load(blk, 2);
      v128.store(dst, nibble0(v));
      v128.store(dst, nibble1(v), 16);
      v128.store(dst, nibble2(v), 32);
      v128.store(dst, nibble3(v), 48);
      const d = blockScale(blk);
      store<f32>(sp, d);
      store<f32>(mp, 8 * d);
      blk += BLOCK_BYTES;
      dst += 64;
      sp += 4;
      mp += 4;
    }
  }
}
