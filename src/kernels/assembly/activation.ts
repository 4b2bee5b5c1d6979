// Activations, in place on n f32 values.

import { exp4 } from "./_simd";

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
  const v3 = f32x4.mul(f32x4.mul(v, v), v);
  const u = f32x4.mul(f32x4.add(v, f32x4.mul(v3, f32x4.splat(0.044715))), f32x4.splat(0.7978845608028654));
  const e = exp4(f32x4.mul(u, f32x4.splat(-2.0)));
  return f32x4.div(v, f32x4.add(e, f32x4.splat(1.0)));
}
