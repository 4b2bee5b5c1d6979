// Rotary position embedding, rotate_half convention (GPT-NeoX / HF Phi), partial rotary.

/**
 * In place on x viewed as T rows of rowStride floats; head h of a row occupies
 * [h*headDim, (h+1)*headDim) from the row start. The first rotaryDim dims of each head rotate:
 * with half = rotaryDim/2, for i < half: a = x[i], b = x[i+half],
 *   x[i] = a·cos − b·sin,  x[i+half] = b·cos + a·sin,  angle = positions[t] · theta^(−2i/rotaryDim).
 * positions: T i32. Angles and their cos/sin are computed in f64, then rounded to f32.
 * Rotating q and k of a fused qkv row in one call: pass nHeads = heads of q + heads of k.
 */
export function rope(x: usize, T: i32, rowStride: i32, nHeads: i32, headDim: i32, rotaryDim: i32, positions: usize, theta: f32): void {
  const half = rotaryDim >> 1;
  const headBytes = <usize>headDim << 2;
  const halfBytes = <usize>half << 2;
  for (let t = 0; t < T; t++) {
    const pos = <f64>load<i32>(positions + (<usize>t << 2));
    const row = x + <usize>t * (<usize>rowStride << 2);
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(<f64>theta, -2.0 * <f64>i / <f64>rotaryDim);
      const c = <f32>Math.cos(angle);
      const s = <f32>Math.sin(angle);
      let p = row + (<usize>i << 2);
      for (let h = 0; h < nHeads; h++, p += headBytes) {
        const a = load<f32>(p);
        const b = load<f32>(p + halfBytes);
        store<f32>(p, a * c - b * s);
        store<f32>(p + halfBytes, b * c + a * s);
      }
    }
  }
}
