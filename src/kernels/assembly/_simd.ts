// Shared SIMD helpers for the kernel families. Files starting with "_" are not exported by the
// build; kernel files import what they need from here. Everything is @inline: a v128 helper that is
// not inlined costs a call per vector.

/** Sum of the four f32 lanes of `v`. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const pairs = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1);
}

/** Horizontal sums of four vectors, as one vector: [Σa, Σb, Σc, Σd]. */
// @ts-ignore: decorator
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // interleave then add: ab = [a0+a2, b0+b2, a1+a3, b1+b3]
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** bf16 → f32 scalar. */
// @ts-ignore: decorator
@inline export function bf16Scalar(bits: u32): f32 {
  return reinterpret<f32>(bits << 16);
}

/** 4 bf16 at p → 4 f32: zero-extend to 32 bits, shift into the high half. */
// @ts-ignore: decorator
@inline export function bf16x4At(p: usize): v128 {
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/** 2^56: half of the 2^112 that scaledF16x4 leaves out (see linear-f16.ts). */
// @ts-ignore: decorator
@inline export const HALF_RESCALE: f32 = reinterpret<f32>(0x5b800000);

/** Four halves (sign-extended i32 lanes) → w·2^-112 as f32 (exact, no rounding; see linear-f16.ts). */
// @ts-ignore: decorator
@inline export function scaledF16x4(signExtended: v128): v128 {
  return v128.and(i32x4.shl(signExtended, 13), i32x4.splat(0x8fffe000));
}

/** 4 halves at p → w·2^-112. */
// @ts-ignore: decorator
@inline export function scaledF16x4At(p: usize): v128 {
  return scaledF16x4(v128.load16x4_s(p));
}

/** One half at p → w·2^-112. */
// @ts-ignore: decorator
@inline export function scaledF16At(p: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(p) << 13) & 0x8fffe000);
}

/** 2^112: rescales a half whose exponent/mantissa bits were moved into f32 position. */
// @ts-ignore: decorator
@inline export const F16_RESCALE: f32 = reinterpret<f32>(0x77800000);

/**
 * IEEE half → f32 for finite values (no inf/nan in weights), subnormals and signed zero exact.
 * `signExtended` is the half sign-extended to 32 bits: shifting left by 13 puts exponent and
 * mantissa where f32 keeps them (with the half's bias), the mask keeps the sign, and the multiply by
 * 2^112 fixes the bias (and turns half subnormals, which land as f32 subnormals, into normals).
 */
// @ts-ignore: decorator
@inline export function f16Scalar(signExtended: i32): f32 {
  return reinterpret<f32>((signExtended << 13) & 0x8fffe000) * F16_RESCALE;
}

/**
 * The IEEE half at p as f32, exactly, without an f32 subnormal on the way. For scales that are often
 * f16 subnormals (Q4_K / Q6_K super-block scales: the largest sub-block scale / 63 and so on): f16Scalar
 * turns those into f32 subnormals before rescaling, and an x86 multiply with a subnormal operand takes
 * a microcode assist (measured: Q4_K decode 4× slower on weights of magnitude 0.02). Subnormals go
 * through an integer conversion instead.
 */
// @ts-ignore: decorator
@inline export function f16ExactAt(p: usize): f32 {
  const h = <i32>load<u16>(p);
  const mag = h & 0x7fff;
  const v = mag >= 0x400 ? reinterpret<f32>((mag << 13) + 0x38000000) : <f32>mag * <f32>5.9604644775390625e-8;
  return (h & 0x8000) != 0 ? -v : v;
}

/**
 * f16ExactAt for four halves at once (zero-extended into i32 lanes): the same bits, subnormals through
 * an integer conversion (no f32 subnormal on the way), finite values only.
 */
// @ts-ignore: decorator
@inline export function f16x4Exact(h: v128): v128 {
  const mag = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(mag, 13), i32x4.splat(0x38000000));
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(mag), f32x4.splat(<f32>5.9604644775390625e-8));
  const v = v128.bitselect(normal, subnormal, i32x4.ge_s(mag, i32x4.splat(0x400)));
  return v128.or(v, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** The halves at p0..p3 as four f32 lanes (f16x4 of a gather; finite values only). */
// @ts-ignore: decorator
@inline export function f16x4Gather(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let h = i32x4.splat(<i32>load<i16>(p0));
  h = i32x4.replace_lane(h, 1, <i32>load<i16>(p1));
  h = i32x4.replace_lane(h, 2, <i32>load<i16>(p2));
  h = i32x4.replace_lane(h, 3, <i32>load<i16>(p3));
  return f16x4(h);
}

/** Four halves (sign-extended into i32 lanes) → four f32, finite values only (see f16Scalar). */
// @ts-ignore: decorator
@inline export function f16x4(signExtended: v128): v128 {
  return f32x4.mul(
    v128.and(i32x4.shl(signExtended, 13), i32x4.splat(0x8fffe000)),
    f32x4.splat(F16_RESCALE),
  );
}

/**
 * e^x for four f32 lanes (Cephes expf polynomial, about 1 ulp). Inputs are clamped to
 * [-87.3, 88.3], so very negative inputs give ~1e-38 (not 0) and nothing overflows to inf.
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  // r = x - n*ln2 in two steps (Cody-Waite) so r keeps full precision
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  return f32x4.mul(expReduced(r), pow2(i32x4.trunc_sat_f32x4_s(n)));
}

/** e^r for |r| <= ln2/2 (Cephes expf polynomial). */
// @ts-ignore: decorator
@inline export function expReduced(r: v128): v128 {
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  return f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
}

/** 2^n as f32 from its exponent bits, n in [-126, 127] (i32 lanes). */
// @ts-ignore: decorator
@inline export function pow2(n: v128): v128 {
  return i32x4.shl(i32x4.add(n, i32x4.splat(127)), 23);
}

/**
 * a·b + c on four f32 lanes. In the relaxed-SIMD build (kernels-relaxed.wasm) this is
 * f32x4.relaxed_madd, a fused multiply-add where the CPU has one (one rounding instead of two,
 * twice the throughput); in the baseline build it is a multiply then an add.
 */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
