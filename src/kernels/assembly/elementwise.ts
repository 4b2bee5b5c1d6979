// Elementwise helpers and bulk type conversions (all in place or dst/src, n elements).

import { F16_RESCALE } from "./_simd";

/** out (n) += a (n). */
export function add(out: usize, a: usize, n: i32): void {
  const end4 = <usize>(n & ~3) << 2;
  const end = <usize>n << 2;
  let k: usize = 0;
  for (; k < end4; k += 16) v128.store(out + k, f32x4.add(v128.load(out + k), v128.load(a + k)));
  for (; k < end; k += 4) store<f32>(out + k, load<f32>(out + k) + load<f32>(a + k));
}

/** out (T, N) += bias (N) on every row. */
export function add_bias(out: usize, bias: usize, T: i32, N: i32): void {
  const rowBytes = <usize>N << 2;
  for (let t = 0; t < T; t++) add(out + <usize>t * rowBytes, bias, N);
}

/** x (n) *= s. */
export function scale(x: usize, n: i32, s: f32): void {
  const sv = f32x4.splat(s);
  const end4 = <usize>(n & ~3) << 2;
  const end = <usize>n << 2;
  let k: usize = 0;
  for (; k < end4; k += 16) v128.store(x + k, f32x4.mul(v128.load(x + k), sv));
  for (; k < end; k += 4) store<f32>(x + k, load<f32>(x + k) * s);
}

/** dst (n) f32 = src (n) bf16 (exact). E.g. an embedding row: src = table + id * C * 2. */
export function convert_bf16_to_f32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const v = v128.load(src + (<usize>i << 1));
    const d = dst + (<usize>i << 2);
    v128.store(d, i32x4.shl(i32x4.extend_low_i16x8_u(v), 16));
    v128.store(d, i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), 16);
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}

/** dst (n) f32 = src (n) IEEE half, exact for every value including subnormals, inf and nan. */
export function convert_f16_to_f32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const v = v128.load(src + (<usize>i << 1));
    const d = dst + (<usize>i << 2);
    v128.store(d, f16x4Exact(i32x4.extend_low_i16x8_s(v)));
    v128.store(d, f16x4Exact(i32x4.extend_high_i16x8_s(v)), 16);
  }
  for (; i < n; i++) {
    const h = <i32>load<i16>(src + (<usize>i << 1));
    store<f32>(dst + (<usize>i << 2), f32x4.extract_lane(f16x4Exact(i32x4.splat(h)), 0));
  }
}

/** Four halves sign-extended into i32 lanes → f32, with inf/nan (exponent 31) handled. */
// @ts-ignore: decorator
@inline function f16x4Exact(h: v128): v128 {
  const magnitude = v128.and(i32x4.shl(h, 13), i32x4.splat(0x0fffe000)); // exponent+mantissa at f32 positions
  const sign = v128.and(h, i32x4.splat(0x80000000));
  const finite = f32x4.mul(magnitude, f32x4.splat(F16_RESCALE)); // rebias; normalizes subnormals
  const special = v128.or(magnitude, i32x4.splat(0x7f800000)); // inf / nan, payload kept
  const isSpecial = i32x4.ge_s(magnitude, i32x4.splat(0x0f800000));
  return v128.or(v128.bitselect(special, finite, isSpecial), sign);
}

/** dst (n) bf16 = src (n) f32, rounded to nearest even; nan stays nan (quieted). */
export function convert_f32_to_bf16(dst: usize, src: usize, n: i32): void {
  narrowF32(dst, src, n, false);
}

/**
 * dst (n) 16-bit values = src (n) f32, as f16x4Bits (half) or bf16x4 give them: 8 values per vector
 * step, then the tail one at a time through the same vector conversion. `half` is a constant at both
 * call sites, so inlining keeps one conversion per loop (no call_indirect, no select).
 */
// @ts-ignore: decorator
@inline function narrowF32(dst: usize, src: usize, n: i32, half: bool): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const s = src + (<usize>i << 2);
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(to16Bits(v128.load(s), half), to16Bits(v128.load(s, 16), half)));
  }
  for (; i < n; i++) {
    store<u16>(dst + (<usize>i << 1), <u16>i32x4.extract_lane(to16Bits(v128.load32_splat(src + (<usize>i << 2)), half), 0));
  }
}

// @ts-ignore: decorator
@inline function to16Bits(v: v128, half: bool): v128 {
  return half ? f16x4Bits(v) : bf16x4(v);
}

/** f32 bits → bf16 bits in the low half of each lane (round to nearest even; nan → quiet nan). */
// @ts-ignore: decorator
@inline function bf16x4(bits: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(bits, 16), i32x4.splat(1));
  const rounded = i32x4.shr_u(i32x4.add(bits, i32x4.add(i32x4.splat(0x7fff), lsb)), 16);
  const quiet = v128.or(i32x4.shr_u(bits, 16), i32x4.splat(0x40));
  const isNan = i32x4.gt_s(v128.and(bits, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  return v128.bitselect(quiet, rounded, isNan);
}

/**
 * dst (n) IEEE half = src (n) f32, rounded to nearest even, subnormals exact. Saturating: finite values
 * beyond the half range become ±65504 (not inf), so a KV cache never holds an infinity; nan stays nan.
 */
export function convert_f32_to_f16(dst: usize, src: usize, n: i32): void {
  narrowF32(dst, src, n, true);
}

/**
 * Four f32 → half bits in the low half of each lane (F. Giesen's float_to_half_fast3_rtne, branch-free,
 * with the magnitude first clamped to 65504: f32x4.min keeps nan as nan).
 */
// @ts-ignore: decorator
@inline function f16x4Bits(v: v128): v128 {
  const sign = i32x4.shr_u(v128.and(v, i32x4.splat(0x80000000)), 16);
  const a = f32x4.min(f32x4.abs(v), f32x4.splat(65504));
  // below 2^-14 the half is subnormal: adding 0.5 (magic 2^-1) aligns the 10 mantissa bits at the
  // bottom of the f32, rounded to nearest even by the addition itself
  const magic = i32x4.splat(((127 - 15) + (23 - 10) + 1) << 23);
  const sub = i32x4.sub(f32x4.add(a, magic), magic);
  // normal: rebias the exponent, round to nearest even on the 13 dropped bits
  const odd = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(((15 - 127) << 23) + 0xfff)), odd), 13);
  const isSub = i32x4.lt_s(a, i32x4.splat(113 << 23));
  const bits = v128.bitselect(i32x4.splat(0x7e00), v128.bitselect(sub, normal, isSub), f32x4.ne(a, a));
  return v128.or(bits, sign);
}
