// K-quant quantization through the kernels' wasm build of ggml's reference quantizers
// (kernels/assembly/quantize-k.ts: quantize_row_q4_K_ref, q5_K_ref, q6_K_ref in native f32 arithmetic:
// bit-exact with ggml and with the TypeScript in ggml-quants-k.ts; 17-19× (Q4_K, Q5_K) and 7× (Q6_K) faster
// than it, as the TypeScript must emulate f32 with Math.fround and the wasm runs independent work in SIMD
// lanes). Falls back to the TypeScript when kernels.wasm is not built.
import { createKernelMemory, kernelModule } from "../kernels/wasm.js";
import { quantizeRowQ4_K, quantizeRowQ5_K, quantizeRowQ6_K } from "./ggml-quants-k.js";

/** The K-quant types quantizeKFast writes. */
export type FastKType = "Q4_K" | "Q5_K" | "Q6_K";

type QuantizeExport = (dst: number, src: number, n: number) => void;

interface QuantizeKExports {
  quantize_row_q4_k: QuantizeExport;
  quantize_row_q5_k: QuantizeExport;
  quantize_row_q6_k: QuantizeExport;
  kernel_reserved_bytes(): number;
}

const KINDS: Record<FastKType, { blockBytes: number; wasm: keyof QuantizeKExports; ts: typeof quantizeRowQ4_K }> = {
  Q4_K: { blockBytes: 144, wasm: "quantize_row_q4_k", ts: quantizeRowQ4_K },
  Q5_K: { blockBytes: 176, wasm: "quantize_row_q5_k", ts: quantizeRowQ5_K },
  Q6_K: { blockBytes: 210, wasm: "quantize_row_q6_k", ts: quantizeRowQ6_K },
};

const CHUNK_VALUES = 1 << 18; // 1 MiB of f32 per call

let state: { memory: WebAssembly.Memory; exports: QuantizeKExports; src: number; dst: number } | null | undefined;

function wasmQuantizer(): typeof state {
  if (state !== undefined) return state;
  try {
    const memory = createKernelMemory(8 << 20);
    const instance = new WebAssembly.Instance(kernelModule(), { env: { memory } });
    const exports = instance.exports as unknown as QuantizeKExports;
    for (const k of Object.values(KINDS)) {
      if (typeof exports[k.wasm] !== "function") throw new Error(`kernels.wasm has no ${k.wasm}`);
    }
    const base = Math.ceil(exports.kernel_reserved_bytes() / 64) * 64;
    state = { memory, exports, src: base, dst: base + CHUNK_VALUES * 4 };
  } catch {
    state = null;
  }
  return state;
}

/**
 * ggml's reference quantizer of `dtype` over n values (n % 256 == 0: a run of whole super-blocks, one
 * row or several), in wasm when available.
 */
export function quantizeKFast(
  dtype: FastKType, x: Float32Array, xOffset: number, n: number, out: Uint8Array, outOffset: number,
): void {
  const kind = KINDS[dtype];
  if (n % 256 !== 0) throw new RangeError(`${dtype} quantizes whole super-blocks of 256 values, got ${n}`);
  const s = wasmQuantizer();
  if (!s) return kind.ts(x, xOffset, n, out, outOffset);
  const run = s.exports[kind.wasm] as QuantizeExport;
  for (let done = 0; done < n; done += CHUNK_VALUES) {
    const len = Math.min(CHUNK_VALUES, n - done);
    new Float32Array(s.memory.buffer, s.src, len).set(x.subarray(xOffset + done, xOffset + done + len));
    run(s.dst, s.src, len);
    const bytes = (len / 256) * kind.blockBytes;
    out.set(new Uint8Array(s.memory.buffer, s.dst, bytes), outOffset + (done / 256) * kind.blockBytes);
  }
}
