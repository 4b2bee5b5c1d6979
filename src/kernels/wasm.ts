// Loads the kernels (built by scripts/build-kernels.mjs from src/kernels/assembly into
// dist/kernels/kernels.wasm and kernels-relaxed.wasm) and instantiates them on a caller-owned memory.
//
// Contract: every pointer is a byte offset into that memory (wasm32: up to 4 GiB, offsets above 2 GiB
// are fine); the kernels never allocate; activations are f32, rows are row-major, Linear weights are
// PyTorch's (out_features, in_features). Bytes below `reservedBytes` hold the module's static data
// (rewritten on instantiation): one instance per memory. Each worker thread compiles/instantiates
// its own (or receives the WebAssembly.Module by postMessage) on its own memory.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";

/** Raw exports of the wasm module (no argument checks). Pointers are byte offsets. */
export interface KernelExports {
  linear_f32(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number): void;
  linear_bf16(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number): void;
  linear_f16(out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number): void;
  layernorm(out: number, x: number, gamma: number, beta: number, T: number, C: number, eps: number): void;
  gelu_new(x: number, n: number): void;
  rope(x: number, T: number, rowStride: number, nHeads: number, headDim: number, rotaryDim: number, positions: number, theta: number): void;
  attention(
    out: number, q: number, T: number, positions: number, kCache: number, vCache: number,
    nHeads: number, nKvHeads: number, headDim: number, scale: number, scratch: number,
  ): void;
  attention_f16(
    out: number, q: number, T: number, positions: number, kCache: number, vCache: number,
    nHeads: number, nKvHeads: number, headDim: number, scale: number, scratch: number,
  ): void;
  add(out: number, a: number, n: number): void;
  add_bias(out: number, bias: number, T: number, N: number): void;
  scale(x: number, n: number, s: number): void;
  convert_bf16_to_f32(dst: number, src: number, n: number): void;
  convert_f16_to_f32(dst: number, src: number, n: number): void;
  convert_f32_to_bf16(dst: number, src: number, n: number): void;
  convert_f32_to_f16(dst: number, src: number, n: number): void;
  group_rows_16bit(w: number, N: number, K: number, tmp: number): void;
  kernel_reserved_bytes(): number;
}

/** Scratch bytes group_rows_16bit needs for rows of K weights (a copy of one group of 4 rows). */
export function groupScratchBytes(K: number): number {
  return 8 * K;
}

/**
 * A linear kernel: out (T, N) = [out +] [bias (N) +] x (T, K) · w (N, K)ᵀ; bias 0 = none; accumulate
 * truthy adds to out's current values. out must not overlap x or w. f32 accumulation.
 */
export type LinearKernel = (
  out: number, x: number, w: number, bias: number, T: number, K: number, N: number, accumulate: number | boolean,
) => void;

/**
 * The kernels bound to one memory, with argument checks (sizes, regions inside the memory and above
 * reservedBytes) that throw RangeError naming the kernel and parameter. `raw` skips the checks.
 */
export interface Kernels {
  readonly memory: WebAssembly.Memory;
  /** First byte the caller may use (16-byte aligned); below it lies the module's static data. */
  readonly reservedBytes: number;
  readonly raw: KernelExports;
  /**
   * w f32 (N, K). T < 17 streams the weights once for all tokens (decode, small batches), T >= 17
   * runs f32 panels (prefill). Batch invariant: a token's outputs are bit-identical whatever T and
   * its place in the batch.
   */
  linear_f32: LinearKernel;
  /** w bf16 (N, K) in the grouped layout of group_rows_16bit (row-major when K % 8 != 0); as linear_f32. */
  linear_bf16: LinearKernel;
  /** w IEEE half (N, K), finite values only (|x| < 2^72), grouped as for linear_bf16; as linear_f32. */
  linear_f16: LinearKernel;
  /**
   * Puts N rows of K bf16 / f16 weights, just written row-major at w, into the layout linear_bf16 and
   * linear_f16 read (in place): with K % 8 == 0, each full group of 4 rows interleaved per 8 columns,
   * so decode streams the weights as one sequence (see _linear.ts); a no-op otherwise. tmp:
   * groupScratchBytes(K) bytes.
   */
  group_rows_16bit(w: number, N: number, K: number, tmp: number): void;
  /** Per row of C: (x - mean) / sqrt(var + eps) * gamma + beta (biased variance). out may equal x. */
  layernorm(out: number, x: number, gamma: number, beta: number, T: number, C: number, eps: number): void;
  /** In place, tanh-approximated GELU (transformers' gelu_new). */
  gelu_new(x: number, n: number): void;
  /**
   * In place rotary embedding (rotate_half convention) of the first rotaryDim dims of each of nHeads
   * heads (consecutive, headDim apart) in T rows of rowStride floats; positions: T i32.
   */
  rope(x: number, T: number, rowStride: number, nHeads: number, headDim: number, rotaryDim: number, positions: number, theta: number): void;
  /**
   * Causal attention of q (T, nHeads*headDim) against one sequence's caches (ctx, nKvHeads*headDim);
   * query t sees positions 0..positions[t]. out may equal q. scratch: attentionScratchBytes(maxPos).
   */
  attention(
    out: number, q: number, T: number, positions: number, kCache: number, vCache: number,
    nHeads: number, nKvHeads: number, headDim: number, scale: number, scratch: number,
  ): void;
  /**
   * As attention, the caches holding IEEE halves (ctx, nKvHeads*headDim) u16, finite values (as
   * convert_f32_to_f16 writes them). scratch: attentionF16ScratchBytes(maxPos, headDim).
   */
  attention_f16(
    out: number, q: number, T: number, positions: number, kCache: number, vCache: number,
    nHeads: number, nKvHeads: number, headDim: number, scale: number, scratch: number,
  ): void;
  /** out (n) += a (n). */
  add(out: number, a: number, n: number): void;
  /** out (T, N) += bias (N) per row. */
  add_bias(out: number, bias: number, T: number, N: number): void;
  /** x (n) *= s. */
  scale(x: number, n: number, s: number): void;
  /** dst f32 (n) = src bf16 (n). */
  convert_bf16_to_f32(dst: number, src: number, n: number): void;
  /** dst f32 (n) = src half (n), exact for all values (inf/nan included). */
  convert_f16_to_f32(dst: number, src: number, n: number): void;
  /** dst bf16 (n) = src f32 (n), round to nearest even. */
  convert_f32_to_bf16(dst: number, src: number, n: number): void;
  /**
   * dst half (n) = src f32 (n), round to nearest even; finite values beyond ±65504 saturate to ±65504
   * (a KV cache never holds inf), nan stays nan.
   */
  convert_f32_to_f16(dst: number, src: number, n: number): void;
}

/** Scratch bytes `attention` needs when the largest position among its queries is maxPosition. */
export function attentionScratchBytes(maxPosition: number): number {
  return (maxPosition + 1) * 4;
}

/**
 * Scratch bytes `attention_f16` needs: the scores, then one kv head's visible keys and values widened
 * to f32 (used when it runs several queries).
 */
export function attentionF16ScratchBytes(maxPosition: number, headDim: number): number {
  const n = maxPosition + 1;
  return Math.ceil(n / 4) * 16 + 2 * n * headDim * 4;
}

/** A memory for kernel instances: own (not shared), growable up to 4 GiB. */
/** The kernel module's declared minimum memory (scripts/build-kernels.mjs --initialMemory): its static data. */
export const KERNEL_MIN_PAGES = 2;

export function createKernelMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.max(KERNEL_MIN_PAGES, Math.ceil(bytes / 65536));
  if (pages > 65536) throw new RangeError(`createKernelMemory: ${bytes} bytes exceeds the 4 GiB wasm32 limit`);
  return new WebAssembly.Memory({ initial: pages, maximum: 65536 });
}

const baselineUrl = new URL("../../kernels/kernels.wasm", import.meta.url);
const relaxedUrl = new URL("../../kernels/kernels-relaxed.wasm", import.meta.url);

/** "relaxed": SIMD + relaxed-SIMD fused multiply-add; "baseline": SIMD only. */
export type KernelVariant = "relaxed" | "baseline";
const compiled = new Map<KernelVariant, WebAssembly.Module>();
let defaultVariant: KernelVariant | undefined;

function readWasm(url: URL): Uint8Array<ArrayBuffer> {
  try {
    return new Uint8Array(readFileSync(fileURLToPath(url)));
  } catch (e) {
    throw new Error(`kernels: cannot read ${fileURLToPath(url)} (run \`node scripts/build-kernels.mjs\`): ${(e as Error).message}`);
  }
}

/**
 * Whether this Node runs relaxed SIMD. Node >= 22 does by default; on Node 20 the V8 flag
 * --experimental-wasm-relaxed-simd (complete there, not yet on by default) is switched on, which
 * changes nothing but that wasm feature.
 */
function relaxedSimdAvailable(bytes: Uint8Array<ArrayBuffer>): boolean {
  if (WebAssembly.validate(bytes)) return true;
  setFlagsFromString("--experimental-wasm-relaxed-simd");
  return WebAssembly.validate(bytes);
}

/**
 * The variant used when none is named: PHI2_KERNELS=baseline|relaxed forces one; otherwise
 * relaxed where the runtime supports it. Both give the same results up to f32 rounding (fused vs
 * separate multiply-add); every thread of one process picks the same one.
 */
export function kernelVariant(): KernelVariant {
  if (!defaultVariant) {
    const wanted = process.env["PHI2_KERNELS"];
    if (wanted !== undefined && wanted !== "baseline" && wanted !== "relaxed") {
      throw new Error(`kernels: PHI2_KERNELS=${wanted} must be "baseline" or "relaxed"`);
    }
    defaultVariant = wanted === "baseline" ? "baseline" : "relaxed";
    if (wanted !== "baseline" && !relaxedSimdAvailable(readWasm(relaxedUrl))) {
      if (wanted === "relaxed") throw new Error("kernels: PHI2_KERNELS=relaxed but this Node cannot run relaxed SIMD");
      defaultVariant = "baseline";
    }
  }
  return defaultVariant;
}

/** The compiled kernel module (compiled once per thread and variant, synchronously). */
export function kernelModule(variant: KernelVariant = kernelVariant()): WebAssembly.Module {
  let module = compiled.get(variant);
  if (!module) {
    const bytes = readWasm(variant === "relaxed" ? relaxedUrl : baselineUrl);
    if (variant === "relaxed" && !relaxedSimdAvailable(bytes)) throw new Error("kernels: this Node cannot run relaxed SIMD");
    module = new WebAssembly.Module(bytes);
    compiled.set(variant, module);
  }
  return module;
}

/** Instantiates the kernels on `memory` (sync). The module's static data is written below reservedBytes. */
export function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module = kernelModule()): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const raw = instance.exports as unknown as KernelExports;
  const reservedBytes = raw.kernel_reserved_bytes() >>> 0;
  return checkedKernels(memory, raw, reservedBytes);
}

function checkedKernels(memory: WebAssembly.Memory, raw: KernelExports, reservedBytes: number): Kernels {
  /** Throws unless [ptr, ptr + bytes) lies inside the memory and above the reserved area. */
  const region = (kernel: string, name: string, ptr: number, bytes: number): void => {
    if (!Number.isInteger(ptr) || ptr < reservedBytes || ptr + bytes > memory.buffer.byteLength) {
      throw new RangeError(
        `${kernel}: ${name} = ${ptr} (+${bytes} bytes) is outside the usable memory [${reservedBytes}, ${memory.buffer.byteLength})`,
      );
    }
  };
  const count = (kernel: string, name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min || v > 0x7fffffff) throw new RangeError(`${kernel}: ${name} = ${v} must be an integer >= ${min}`);
  };
  const linear = (kernel: string, fn: KernelExports["linear_f32"], weightBytes: number): LinearKernel =>
    (out, x, w, bias, T, K, N, accumulate) => {
      count(kernel, "T", T, 1);
      count(kernel, "K", K, 1);
      count(kernel, "N", N, 1);
      region(kernel, "out", out, T * N * 4);
      region(kernel, "x", x, T * K * 4);
      region(kernel, "w", w, N * K * weightBytes);
      if (bias !== 0) region(kernel, "bias", bias, N * 4);
      fn(out, x, w, bias, T, K, N, accumulate ? 1 : 0);
    };
  const positionsMax = (kernel: string, positions: number, T: number): number => {
    region(kernel, "positions", positions, T * 4);
    if (positions % 4 !== 0) throw new RangeError(`${kernel}: positions = ${positions} must be 4-byte aligned`);
    const view = new Int32Array(memory.buffer, positions, T);
    let max = -1;
    for (let t = 0; t < T; t++) {
      const p = view[t]!;
      if (p < 0) throw new RangeError(`${kernel}: positions[${t}] = ${p} is negative`);
      if (p > max) max = p;
    }
    return max;
  };
  /** Checks attention's arguments (cache values of elementBytes); the largest position, -1 when T = 0. */
  const attentionArgs = (
    kernel: string, out: number, q: number, T: number, positions: number, kCache: number, vCache: number,
    nHeads: number, nKvHeads: number, headDim: number, elementBytes: number,
  ): number => {
    count(kernel, "T", T, 0);
    count(kernel, "nHeads", nHeads, 1);
    count(kernel, "nKvHeads", nKvHeads, 1);
    count(kernel, "headDim", headDim, 1);
    if (nHeads % nKvHeads !== 0) {
      throw new RangeError(`${kernel}: nHeads = ${nHeads} is not a multiple of nKvHeads = ${nKvHeads}`);
    }
    if (T === 0) return -1;
    const maxPos = positionsMax(kernel, positions, T);
    const rowBytes = nHeads * headDim * 4;
    const kvBytes = (maxPos + 1) * nKvHeads * headDim * elementBytes;
    region(kernel, "out", out, T * rowBytes);
    region(kernel, "q", q, T * rowBytes);
    region(kernel, "kCache", kCache, kvBytes);
    region(kernel, "vCache", vCache, kvBytes);
    return maxPos;
  };

  return {
    memory,
    reservedBytes,
    raw,
    linear_f32: linear("linear_f32", raw.linear_f32, 4),
    linear_bf16: linear("linear_bf16", raw.linear_bf16, 2),
    linear_f16: linear("linear_f16", raw.linear_f16, 2),
    group_rows_16bit(w, N, K, tmp) {
      count("group_rows_16bit", "N", N, 1);
      count("group_rows_16bit", "K", K, 1);
      region("group_rows_16bit", "w", w, N * K * 2);
      region("group_rows_16bit", "tmp", tmp, groupScratchBytes(K));
      raw.group_rows_16bit(w, N, K, tmp);
    },
    layernorm(out, x, gamma, beta, T, C, eps) {
      count("layernorm", "T", T, 0);
      count("layernorm", "C", C, 1);
      region("layernorm", "out", out, T * C * 4);
      region("layernorm", "x", x, T * C * 4);
      region("layernorm", "gamma", gamma, C * 4);
      region("layernorm", "beta", beta, C * 4);
      raw.layernorm(out, x, gamma, beta, T, C, eps);
    },
    gelu_new(x, n) {
      count("gelu_new", "n", n, 0);
      region("gelu_new", "x", x, n * 4);
      raw.gelu_new(x, n);
    },
    rope(x, T, rowStride, nHeads, headDim, rotaryDim, positions, theta) {
      count("rope", "T", T, 0);
      count("rope", "nHeads", nHeads, 1);
      count("rope", "headDim", headDim, 1);
      count("rope", "rotaryDim", rotaryDim, 0);
      if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
        throw new RangeError(`rope: rotaryDim = ${rotaryDim} must be even and <= headDim = ${headDim}`);
      }
      count("rope", "rowStride", rowStride, nHeads * headDim);
      if (T === 0) return;
      positionsMax("rope", positions, T);
      region("rope", "x", x, ((T - 1) * rowStride + nHeads * headDim) * 4);
      raw.rope(x, T, rowStride, nHeads, headDim, rotaryDim, positions, theta);
    },
    attention(out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, scale, scratch) {
      const maxPos = attentionArgs("attention", out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, 4);
      if (maxPos < 0) return;
      region("attention", "scratch", scratch, attentionScratchBytes(maxPos));
      raw.attention(out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, scale, scratch);
    },
    attention_f16(out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, scale, scratch) {
      const maxPos = attentionArgs("attention_f16", out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, 2);
      if (maxPos < 0) return;
      region("attention_f16", "scratch", scratch, attentionF16ScratchBytes(maxPos, headDim));
      raw.attention_f16(out, q, T, positions, kCache, vCache, nHeads, nKvHeads, headDim, scale, scratch);
    },
    add(out, a, n) {
      count("add", "n", n, 0);
      region("add", "out", out, n * 4);
      region("add", "a", a, n * 4);
      raw.add(out, a, n);
    },
    add_bias(out, bias, T, N) {
      count("add_bias", "T", T, 0);
      count("add_bias", "N", N, 1);
      region("add_bias", "out", out, T * N * 4);
      region("add_bias", "bias", bias, N * 4);
      raw.add_bias(out, bias, T, N);
    },
    scale(x, n, s) {
      count("scale", "n", n, 0);
      region("scale", "x", x, n * 4);
      raw.scale(x, n, s);
    },
    convert_bf16_to_f32(dst, src, n) {
      count("convert_bf16_to_f32", "n", n, 0);
      region("convert_bf16_to_f32", "dst", dst, n * 4);
      region("convert_bf16_to_f32", "src", src, n * 2);
      raw.convert_bf16_to_f32(dst, src, n);
    },
    convert_f16_to_f32(dst, src, n) {
      count("convert_f16_to_f32", "n", n, 0);
      region("convert_f16_to_f32", "dst", dst, n * 4);
      region("convert_f16_to_f32", "src", src, n * 2);
      raw.convert_f16_to_f32(dst, src, n);
    },
    convert_f32_to_bf16(dst, src, n) {
      count("convert_f32_to_bf16", "n", n, 0);
      region("convert_f32_to_bf16", "dst", dst, n * 2);
      region("convert_f32_to_bf16", "src", src, n * 4);
      raw.convert_f32_to_bf16(dst, src, n);
    },
    convert_f32_to_f16(dst, src, n) {
      count("convert_f32_to_f16", "n", n, 0);
      region("convert_f32_to_f16", "dst", dst, n * 2);
      region("convert_f32_to_f16", "src", src, n * 4);
      raw.convert_f32_to_f16(dst, src, n);
    },
  };
}
