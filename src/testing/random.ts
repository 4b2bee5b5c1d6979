// Seeded, fast, reproducible normal numbers for test models: the full-size preset needs 2.78e9 of them,
// so Math.random() (unseeded) and Box-Muller (log + sqrt + sin + cos, ~20 ns each in V8) are out.
//
// Uniforms: xoshiro128** (Blackman & Vigna), 32-bit state words, plenty for test weights.
// Normals: the inverse normal CDF Φ⁻¹ tabulated at 2^16 points and linearly interpolated with the
// low 16 bits of the uniform — one table lookup per number. The tails are cut at about ±4.2σ
// (beyond the outer table cells, ±4.3σ); irrelevant for random test weights.

/** 32-bit FNV-1a of a string: turns a tensor name into part of its stream's seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: spreads one 32-bit value into well-mixed seed words. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9): accurate enough for a table. */
function inverseNormalCdf(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const plow = 0.02425;
  if (p < plow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - plow) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const TABLE_BITS = 16;
const TABLE_SIZE = 1 << TABLE_BITS;
let quantiles: Float64Array | undefined;

/** quantiles[k] = Φ⁻¹(k / 2^16) at the cell edges; the two infinite ends are clamped to the outer cells' midpoints. */
function quantileTable(): Float64Array {
  if (quantiles) return quantiles;
  const t = new Float64Array(TABLE_SIZE + 1);
  for (let k = 1; k < TABLE_SIZE; k++) t[k] = inverseNormalCdf(k / TABLE_SIZE);
  t[0] = inverseNormalCdf(0.5 / TABLE_SIZE);
  t[TABLE_SIZE] = -t[0];
  quantiles = t;
  return t;
}

/** A reproducible stream of N(0, 1) numbers, determined by (seed, name). */
export class NormalStream {
  private s = new Int32Array(4);
  private readonly table = quantileTable();

  constructor(seed: number, name: string) {
    const lo = seed >>> 0, hi = Math.floor(seed / 4294967296) >>> 0;
    let x = hashString(name) ^ splitmix32(lo) ^ splitmix32(hi ^ 0x5bd1e995);
    for (let i = 0; i < 4; i++) {
      x = splitmix32(x + i);
      this.s[i] = x | 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // xoshiro's one bad state
  }

  /** Fills `out` with mean + std · N(0, 1). */
  fill(out: Float32Array, mean = 0, std = 1): void {
    const t = this.table;
    let a = this.s[0], b = this.s[1], c = this.s[2], d = this.s[3];
    for (let i = 0; i < out.length; i++) {
      // xoshiro128**
      let r = Math.imul(b, 5);
      r = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
      const tt = b << 9;
      c ^= a; d ^= b; b ^= c; a ^= d; c ^= tt;
      d = (d << 11) | (d >>> 21);
      // high 16 bits pick the table cell, low 16 bits interpolate inside it
      const k = r >>> 16, f = (r & 0xffff) * (1 / 65536);
      const z = t[k] + (t[k + 1] - t[k]) * f;
      out[i] = mean + std * z;
    }
    this.s[0] = a; this.s[1] = b; this.s[2] = c; this.s[3] = d;
  }
}
