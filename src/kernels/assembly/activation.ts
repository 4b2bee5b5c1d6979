// Activations, in place on n f32 values.

import { expReduced, pow2 } from "./_simd";

/**
 * gelu_new (transformers' NewGELUActivation, the tanh approximation), in place on x (n):
 *   0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 * computed as x / (1 + e^(-2u)) with u = √(2/π)·(x + 0.044715·x³), the same function
 * (0.5·(1 + tanh u) = sigmoid(2u)) without the cancellation of 1 + tanh(u) for negative x.
 */
export function gelu_new(x: usize, n: i32): void {
  const end4 = x + (<usize>(n & ~3) << 2);
  let p = x;
  for (; p < end4; p += 16) v128.store(p, gelu4(v128.load(p)));
  const end = x + (<usize>n << 2);
  for (; p < end; p += 4) store<f32>(p, f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(p))), 0));
}

// @ts-ignore: decorator
@inline function gelu4(v: v128): v128 {
  // -2u and its range reduction (-2u = n·ln2 + r) in f64: |2u| reaches 88, where an f32 u would
  // already carry a relative error of 88·ulp into e^(-2u)
  const a0 = minusTwoU(f64x2.promote_low_f32x4(v));
  const a1 = minusTwoU(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
  const n0 = f64x2.nearest(f64x2.mul(a0, f64x2.splat(1.4426950408889634)));
  const n1 = f64x2.nearest(f64x2.mul(a1, f64x2.splat(1.4426950408889634)));
  const r0 = f32x4.demote_f64x2_zero(f64x2.sub(a0, f64x2.mul(n0, f64x2.splat(0.6931471805599453))));
  const r1 = f32x4.demote_f64x2_zero(f64x2.sub(a1, f64x2.mul(n1, f64x2.splat(0.6931471805599453))));
  const r = v128.shuffle<f32>(r0, r1, 0, 1, 4, 5);
  const n = v128.shuffle<i32>(i32x4.trunc_sat_f64x2_s_zero(n0), i32x4.trunc_sat_f64x2_s_zero(n1), 0, 1, 4, 5);
  const e = f32x4.mul(expReduced(r), pow2(n));
  const g = f32x4.div(v, f32x4.add(e, f32x4.splat(1.0)));
  // where -2u was clamped (x < about -9.9) the true value is below 1e-37 in magnitude: return -0
  // (and x³ overflowing for huge |x| cannot leave x / e^88 instead of 0)
  const clamped = v128.shuffle<i32>(f64x2.ge(a0, f64x2.splat(88.0)), f64x2.ge(a1, f64x2.splat(88.0)), 0, 2, 4, 6);
  return v128.bitselect(f32x4.splat(-0.0), g, clamped);
}

/** -2u = -2·√(2/π)·(x + 0.044715·x³) for two f64 lanes, clamped to [-87, 88] (the range of pow2). */
// @ts-ignore: decorator
@inline function minusTwoU(x: v128): v128 {
  const x3 = f64x2.mul(f64x2.mul(x, x), x);
  const u = f64x2.mul(f64x2.add(x, f64x2.mul(x3, f64x2.splat(0.044715))), f64x2.splat(-1.5957691216057308));
  return f64x2.min(f64x2.max(u, f64x2.splat(-87.0)), f64x2.splat(88.0));
}
