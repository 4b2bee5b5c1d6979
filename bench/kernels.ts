// Micro-benchmark of the linear kernels at Phi-2 sizes, single thread:
//   matvec (T = 1): GB/s of weights streamed; matmul (T = 64, 512): GFLOP/s (2·T·K·N flops).
// Then layernorm, gelu_new, rope and attention at Phi-2 sizes (skip with --linear-only).
// Run: node dist/bench/kernels.js [--quick] [--linear-only] [--types bf16,f16,f32] [--tokens 1,64,512]
import { attentionF16ScratchBytes, createKernelMemory, instantiateKernels, kernelVariant, type LinearKernel } from "../src/kernels/wasm.js";
import { bumpAllocator } from "./kernel-memory.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const quick = args.includes("--quick");
const FLOAT_TYPES = ["bf16", "f16", "f32"] as const;
const types = option("types", "bf16,f16,f32").split(",") as (typeof FLOAT_TYPES)[number][];
for (const t of types) {
  // the quantized kernels have their own benchmark (they need valid blocks, not arbitrary bytes)
  if (!FLOAT_TYPES.includes(t)) throw new Error(`--types: "${t}" is not one of ${FLOAT_TYPES.join(", ")} (quantized types: node dist/bench/quant-kernels.js)`);
}
const tokenCounts = option("tokens", "1,64,512").split(",").map(Number);
const shapes: [number, number][] = [[2560, 2560], [2560, 10240], [10240, 2560]];

const maxK = 10240, maxN = 10240, maxT = Math.max(512, ...tokenCounts); // 512: the other kernels use T = 512
const memory = createKernelMemory(0);
const k = instantiateKernels(memory);
const alloc = bumpAllocator(memory, k.reservedBytes, 64);
const wPtr = alloc(maxK * 2560 * 4);
const xPtr = alloc(maxT * maxK * 4);
const outPtr = alloc(maxT * maxN * 4);
const biasPtr = alloc(maxN * 4);
// fill weights with small finite values valid in every type (bf16/f16 bit patterns of ~0.01..0.1); any
// order of them is a valid grouped layout (see _linear.ts), so the timings are those of the model's weights
const u16 = new Uint16Array(memory.buffer);
for (let i = wPtr / 2; i < (wPtr + maxK * 2560 * 4) / 2; i++) u16[i] = 0x2000 + (i * 7919) % 4096;
const f32 = new Float32Array(memory.buffer);
for (let i = xPtr / 4; i < (xPtr + maxT * maxK * 4) / 4; i++) f32[i] = ((i * 31) % 101) / 101 - 0.5;

const kernelOf = (t: string): LinearKernel => (t === "bf16" ? k.linear_bf16 : t === "f16" ? k.linear_f16 : k.linear_f32);
const bytesPer = (t: string): number => (t === "f32" ? 4 : 2);

/**
 * Seconds per call: warm up (lets V8 tier the wasm up to TurboFan), then the fastest of the timed
 * repetitions, in process CPU time: on a shared machine wall time also counts the time this thread
 * sat descheduled, which says nothing about the kernel.
 */
function time(run: () => void, minSeconds: number): { cpu: number; wall: number } {
  for (let i = 0; i < 2; i++) run();
  let best = Infinity;
  let bestWall = Infinity;
  const start = process.hrtime.bigint();
  let reps = 0;
  do {
    const before = process.cpuUsage();
    const wallBefore = process.hrtime.bigint();
    run();
    bestWall = Math.min(bestWall, Number(process.hrtime.bigint() - wallBefore) / 1e9);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
    reps++;
  } while (reps < 3 || Number(process.hrtime.bigint() - start) / 1e9 < minSeconds);
  return { cpu: best, wall: bestWall };
}

// tier-up on small sizes first so the first timed shape is not measured on baseline code
for (const t of types) for (const T of [1, 2, 8]) for (let i = 0; i < 20; i++) kernelOf(t)(outPtr, xPtr, wPtr, biasPtr, T, 256, 64, 0);

console.log(`linear kernels (${kernelVariant()} build), 1 thread, node ${process.version}`);
console.log("fastest call in CPU time (and in wall time, which also counts time descheduled on a busy machine)");
console.log("type  K      N      T    ms/call (wall)        result (wall)");
for (const t of types) {
  for (const [K, N] of shapes) {
    for (const T of tokenCounts) {
      const fn = kernelOf(t);
      const { cpu, wall } = time(() => fn(outPtr, xPtr, wPtr, biasPtr, T, K, N, 0), quick ? 0.2 : 1);
      const rate = (seconds: number): string => T === 1
        ? ((K * N * bytesPer(t)) / seconds / 1e9).toFixed(2)
        : ((2 * T * K * N) / seconds / 1e9).toFixed(2);
      const unit = T === 1 ? "GB/s of weights" : "GFLOP/s";
      const ms = `${(cpu * 1e3).toFixed(2)} (${(wall * 1e3).toFixed(2)})`;
      console.log(`${t.padEnd(5)} ${String(K).padEnd(6)} ${String(N).padEnd(6)} ${String(T).padEnd(4)} ${ms.padEnd(21)} ${rate(cpu)} (${rate(wall)}) ${unit}`);
    }
  }
}

// The other kernels at Phi-2 sizes (C 2560, 32 heads of 80, rotary 32, MLP 10240), same timing.
if (!args.includes("--linear-only")) {
  const C = 2560, H = 32, hd = 80, ctx = 2048;
  const kCache = wPtr, vCache = wPtr + ctx * C * 4; // (ctx, C) each, inside the weight area
  const positions = alloc(512 * 4);
  const scratch = alloc(ctx * 4);
  const gamma = alloc(C * 4), beta = alloc(C * 4);
  new Float32Array(memory.buffer, gamma, C).fill(1);
  const f32w = new Float32Array(memory.buffer, wPtr, 2 * ctx * C);
  for (let i = 0; i < f32w.length; i++) f32w[i] = ((i * 17) % 97) / 97 - 0.5;
  const setPositions = (from: number, T: number) => new Int32Array(memory.buffer, positions, T).set(Array.from({ length: T }, (_, t) => from + t));
  const report = (name: string, run: () => void, work: number, unit: string): void => {
    for (let i = 0; i < 3; i++) run();
    const { cpu, wall } = time(run, quick ? 0.2 : 0.5);
    const ms = `${(cpu * 1e3).toFixed(3)} (${(wall * 1e3).toFixed(3)})`;
    console.log(`${name.padEnd(44)} ${ms.padEnd(21)} ${(work / cpu / 1e9).toFixed(2)} (${(work / wall / 1e9).toFixed(2)}) ${unit}`);
  };
  console.log("\nkernel                                       ms/call (wall)        result (wall)");
  report("layernorm T=512 C=2560", () => k.layernorm(outPtr, xPtr, gamma, beta, 512, C, 1e-5), 512 * C, "G elements/s");
  report("gelu_new n=512*10240", () => k.gelu_new(outPtr, 512 * 10240), 512 * 10240, "G elements/s");
  setPositions(100, 512);
  report("rope q+k T=512, 64 heads of 80, rotary 32", () => k.rope(xPtr, 512, 2 * C, 2 * H, hd, 32, positions, 10000), 512 * 2 * H * 16, "G pairs/s");
  // f16 caches: the same values as halves, in the first half of each f32 cache's bytes
  k.convert_f32_to_f16(kCache, kCache, ctx * C);
  k.convert_f32_to_f16(vCache, vCache, ctx * C);
  const scratchF16 = alloc(attentionF16ScratchBytes(ctx - 1, hd));
  const attentionOf = (type: "f32" | "f16") => (T: number) => type === "f32"
    ? k.attention(outPtr, xPtr, T, positions, kCache, vCache, H, H, hd, 1 / Math.sqrt(hd), scratch)
    : k.attention_f16(outPtr, xPtr, T, positions, kCache, vCache, H, H, hd, 1 / Math.sqrt(hd), scratchF16);
  for (const type of ["f32", "f16"] as const) {
    const run = attentionOf(type);
    setPositions(ctx - 1, 1);
    report(`attention decode T=1 at pos 2047, ${type} cache`, () => run(1), 2 * ctx * C * (type === "f32" ? 4 : 2), "GB/s of KV cache");
    setPositions(0, 512);
    report(`attention prefill T=512 from pos 0, ${type}`, () => run(512), H * 2 * 2 * hd * (512 * 513) / 2, "GFLOP/s");
    setPositions(1536, 512);
    report(`attention prefill T=512 from pos 1536, ${type}`, () => run(512), H * 2 * 2 * hd * 512 * (1536 + 257), "GFLOP/s");
  }
}
