// Q4_K quantization through the kernels' wasm build of ggml's quantize_row_q4_K_ref (native f32
// arithmetic: bit-exact with ggml and with quantizeRowQ4_K, about 10× faster than the TypeScript, which
// must emulate f32 with Math.fround). Falls back to the TypeScript when kernels.wasm is not built.
import { createKernelMemory, kernelModule } from "../kernels/wasm.js";
import { quantizeRowQ4_K } from "./ggml-quants-k.js";

interface Q4KExports {
  quantize_row_q4_k(dst: number, src: number, n: number): void;
  kernel_reserved_bytes(): number;
}

const CHUNK_VALUES = 1 << 18; // 1 MiB of f32 per call

let state: { memory: WebAssembly.Memory; exports: Q4KExports; src: number; dst: number } | null | undefined;

function wasmQuantizer(): typeof state {
  if (state !== undefined) return state;
  try {
    const memory = createKernelMemory(8 << 20);
    const instance = new WebAssembly.Instance(kernelModule(), { env: { memory } });
    const exports = instance.exports as unknown as Q4KExports;
    if (typeof exports.quantize_row_q4_k !== "function") throw new Error("kernels.wasm has no quantize_row_q4_k");
    const base = Math.ceil(exports.kernel_reserved_bytes() / 64) * 64;
    state = { memory, exports, src: base, dst: base + CHUNK_VALUES * 4 };
  } catch {
    state = null;
  }
  return state;
}

/** quantizeRowQ4_K over n values (n % 256 == 0), in wasm when available. */
export function quantizeQ4_KFast(x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number): void {
  const s = wasmQuantizer();
  if (!s) return quantizeRowQ4_K(x, xOffset, n, out, outOffset);
  for (let done = 0; done < n; done += CHUNK_VALUES) {
    const len = Math.min(CHUNK_VALUES, n - done);
    new Float32Array(s.memory.buffer, s.src, len).set(x.subarray(xOffset + done, xOffset + done + len));
    s.exports.quantize_row_q4_k(s.dst, s.src, len);
    const bytes = (len / 256) * 144;
    out.set(new Uint8Array(s.memory.buffer, s.dst, bytes), outOffset + (done / 256) * 144);
  }
}
