// layernorm over rows of C, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).

/**
 * out (T, C) = (x - mean) / sqrt(var + eps) * gamma + beta, per row of x (T, C).
 * gamma, beta (C) f32. out may equal x. Two passes (mean, then Σ(x-mean)²) in f32 SIMD with
 * 8 partial sums, which keeps the error near f32 rounding for C in the thousands.
 */
export function layernorm(out: usize, x: usize, gamma: usize, beta: usize, T: i32, C: i32, eps: f32): void {
  const rowBytes = <usize>C << 2;
  const vecBytes = <usize>(C & ~7) << 2;
  const end = <usize>C << 2;
  for (let t = 0; t < T; t++) {
    const xr = x + <usize>t * rowBytes;
    const or = out + <usize>t * rowBytes;
    // mean
    let a = f32x4.splat(0), b = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 32) {
      a = f32x4.add(a, v128.load(xr + k));
      b = f32x4.add(b, v128.load(xr + k, 16));
    }
    let s = f32x4.add(a, b);
    let sum = <f64>f32x4.extract_lane(s, 0) + <f64>f32x4.extract_lane(s, 1) + <f64>f32x4.extract_lane(s, 2) + <f64>f32x4.extract_lane(s, 3);
    for (let k = vecBytes; k < end; k += 4) sum += <f64>load<f32>(xr + k);
    const mean = <f32>(sum / <f64>C);
    // variance
    const mv = f32x4.splat(mean);
    a = f32x4.splat(0);
    b = f32x4.splat(0);
    for (let k: usize = 0; k < vecBytes; k += 32) {
      const da = f32x4.sub(v128.load(xr + k), mv);
      const db = f32x4.sub(v128.load(xr + k, 16), mv);
      a = f32x4.add(a, f32x4.mul(da, da));
      b = f32x4.add(b, f32x4.mul(db, db));
    }
    s = f32x4.add(a, b);
    let sq = <f64>f32x4.extract_lane(s, 0) + <f64>f32x4.extract_lane(s, 1) + <f64>f32x4.extract_lane(s, 2) + <f64>f32x4.extract_lane(s, 3);
    for (let k = vecBytes; k < end; k += 4) {
      const d = <f64>(load<f32>(xr + k) - mean);
      sq += d * d;
    }
    const rstd = <f32>(1.0 / Math.sqrt(sq / <f64>C + <f64>eps));
    // normalize, scale, shift
    const rv = f32x4.splat(rstd);
    const end4 = <usize>(C & ~3) << 2;
    for (let k: usize = 0; k < end4; k += 16) {
      const n = f32x4.mul(f32x4.sub(v128.load(xr + k), mv), rv);
      v128.store(or + k, f32x4.add(f32x4.mul(n, v128.load(gamma + k)), v128.load(beta + k)));
    }
    for (let k = end4; k < end; k += 4) {
      store<f32>(or + k, (load<f32>(xr + k) - mean) * rstd * load<f32>(gamma + k) + load<f32>(beta + k));
    }
  }
}
