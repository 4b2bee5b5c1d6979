// Micro-benchmark of the quantized linear kernels on one thread: K = 2560, N = 10240 (phi-2's fc1).
// Decode (T = 1) is memory bound: we report GB/s of weight bytes streamed (target >= 8 GB/s per core)
// next to linear_bf16 on the same shape. Prefill (T = 64) reports GFLOP/s (2·T·K·N per call).
// Batches: PHI2_BENCH_T=2,4,8,16 adds the time per token for those T (small batches, as the server's
// batched decode runs them).
// PHI2_BENCH_TYPES=Q8_0,Q4_0 limits the weight types (default: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, BF16). Q5_K and
// Q6_K weights are random valid blocks (no quantizer for them here; see writeWeights in kernel-memory.ts).
// Run: node dist/bench/quant-kernels.js [K] [N]
import { createKernelMemory, instantiateKernels } from "../src/kernels/wasm.js";
import { quantKernels, quantScratchBytes, type QuantDType } from "../src/kernels/quant-kernels.js";
import { bumpAllocator, weightBytes, writeWeights } from "./kernel-memory.js";

const K = Number(process.argv[2] ?? 2560);
const N = Number(process.argv[3] ?? 10240);
const T_PREFILL = 64;
const batchTs = (process.env.PHI2_BENCH_T ?? "").split(",").filter(Boolean).map(Number);

/**
 * Milliseconds of this thread's CPU time per call (robust against other processes sharing the cores).
 * Warms up for 300 ms first: V8 starts wasm in its baseline compiler and swaps in optimized code
 * only for later calls.
 */
function timeIt(fn: () => void, minMs = 1500): number {
  for (const t0 = performance.now(); performance.now() - t0 < 300;) fn();
  let runs = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    runs++;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / runs;
}

const rand = (() => {
  let s = 12345;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
})();

const wf = new Float32Array(N * K).map(() => 0.05 * rand());
const memory = createKernelMemory(64 << 20);
const base = instantiateKernels(memory);
const q = quantKernels(base.raw, memory, base.reservedBytes);
const alloc = bumpAllocator(memory, base.reservedBytes);
const x = alloc(T_PREFILL * K * 4);
new Float32Array(memory.buffer, x, T_PREFILL * K).set(new Float32Array(T_PREFILL * K).map(() => rand()));
const out = alloc(T_PREFILL * N * 4);
const scratch = alloc(quantScratchBytes(T_PREFILL, K));

console.log(`linear kernels, K=${K} N=${N}, one thread, CPU time per call`);
const allTypes = ["Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", "BF16"] as const;
const types = process.env.PHI2_BENCH_TYPES?.split(",") ?? allTypes;
for (const dtype of allTypes.filter((t) => types.includes(t))) {
  const bytes = weightBytes(dtype, N, K);
  const w = alloc(bytes);
  writeWeights(dtype, new Uint8Array(memory.buffer, w, bytes), N, K, wf, rand);
  // the layout the model loads the weights into (bf16: rows grouped by 4, see _linear.ts)
  if (dtype !== "BF16") q.toKernelLayout(dtype as QuantDType, w, N, K, scratch);
  else base.group_rows_16bit(w, N, K, scratch);
  const run = (T: number) => dtype === "BF16"
    ? () => base.linear_bf16(out, x, w, 0, T, K, N, false)
    : () => q.forType(dtype as QuantDType)(out, x, w, 0, T, K, N, false, scratch);
  const msDecode = timeIt(run(1));
  const msPrefill = timeIt(run(T_PREFILL), 2000);
  const gbs = bytes / (msDecode / 1000) / 1e9;
  const gflops = (2 * T_PREFILL * K * N) / (msPrefill / 1000) / 1e9;
  console.log(
    `${dtype.padEnd(5)} ${(bytes / 2 ** 20).toFixed(1).padStart(6)} MiB  decode T=1: ${msDecode.toFixed(2).padStart(7)} ms = ${gbs.toFixed(1).padStart(5)} GB/s` +
    `   prefill T=${T_PREFILL}: ${msPrefill.toFixed(1).padStart(7)} ms = ${gflops.toFixed(1).padStart(5)} GFLOP/s`,
  );
  if (batchTs.length > 0) {
    const perToken = batchTs.map((T) => `T=${T} ${(timeIt(run(T), 800) / T).toFixed(2)}`);
    console.log(`      ms per token in a batch: ${perToken.join("  ")}`);
  }
}
