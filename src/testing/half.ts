// TEMPORARY until src/kernels/reference.ts lands: float32 -> bf16 / f16 with round-to-nearest-even.
const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

export function f32ToBf16Array(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    if ((x & 0x7fffffff) > 0x7f800000) { out[i] = (x >>> 16) | 0x40; continue; } // NaN stays NaN
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function f32ToF16Array(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let man = x & 0x7fffff;
    if (exp === 0xff) { out[i] = sign | 0x7c00 | (man ? 0x200 : 0); continue; }
    const e = exp - 127 + 15;
    if (e >= 31) { out[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      if (e < -10) { out[i] = sign; continue; }
      man |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = man & ((1 << shift) - 1);
      let h = man >>> shift;
      if (rest > half || (rest === half && (h & 1))) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (man >>> 13);
    const rest = man & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
    out[i] = sign | h;
  }
  return out;
}
