// In-process A/B of the quantized linear kernels of two builds (e.g. the previous commit's dist, built in
// a git worktree, and this one). On a machine whose speed drifts from minute to minute, two separate
// runs are not comparable; here both builds live in one process, each with its own wasm memory and the
// same weights and activations, and their calls alternate in short slices. Prints, per build, the
// minimum, 25th percentile and median ms per token (one thread).
//
//   node dist/bench/kernel-ab.js DIST_A DIST_B TYPE N K T [slices]
//   e.g. node dist/bench/kernel-ab.js /tmp/prev/dist dist Q8_0 10240 2560 64
// DIST_*: a build's dist folder (holding src/kernels/*.js and kernels/*.wasm). TYPE: Q8_0|Q4_0|Q4_K|Q5_K|Q6_K.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { QUANT_DTYPES, type QuantDType } from "../src/kernels/quant-kernels.js";
import { bumpAllocator, weightBytes, writeWeights } from "./kernel-memory.js";

type Call = () => void;

async function setup(dist: string, dtype: QuantDType, N: number, K: number, T: number): Promise<Call> {
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const wasm = await import(url("src/kernels/wasm.js"));
  const quant = await import(url("src/kernels/quant-kernels.js"));
  let seed = 1;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const memory: WebAssembly.Memory = wasm.createKernelMemory(64 << 20);
  const base = wasm.instantiateKernels(memory);
  const q = quant.quantKernels(base.raw, memory, base.reservedBytes);
  const alloc = bumpAllocator(memory, base.reservedBytes);
  const x = alloc(T * K * 4);
  new Float32Array(memory.buffer, x, T * K).set(Float32Array.from({ length: T * K }, rand));
  const out = alloc(T * N * 4);
  const scratch = alloc(Math.max(quant.quantScratchBytes(T, K), quant.layoutScratchBytes(dtype, K)));
  // the weights in ggml's layout (the same bytes for both builds), then in the build's kernel layout
  const bytes = weightBytes(dtype, N, K);
  const w = alloc(bytes);
  writeWeights(dtype, new Uint8Array(memory.buffer, w, bytes), N, K, Float32Array.from({ length: N * K }, () => 0.05 * rand()), rand);
  q.toKernelLayout(dtype, w, N, K, scratch);
  const f = q.forType(dtype);
  return () => f(out, x, w, 0, T, K, N, false, scratch);
}

function stats(times: number[], T: number): string {
  times.sort((a, b) => a - b);
  const at = (f: number) => (times[Math.floor(f * (times.length - 1))]! / T).toFixed(3);
  return `min ${at(0)}  p25 ${at(0.25)}  median ${at(0.5)}`;
}

const [distA, distB, dtype, Ns, Ks, Ts, slicesArg] = process.argv.slice(2);
if (!distA || !distB || !dtype || !(QUANT_DTYPES as readonly string[]).includes(dtype) || !Ns || !Ks || !Ts) {
  console.error(`usage: node dist/bench/kernel-ab.js DIST_A DIST_B ${QUANT_DTYPES.join("|")} N K T [slices]`);
  process.exit(2);
}
const [N, K, T, slices] = [Number(Ns), Number(Ks), Number(Ts), Number(slicesArg ?? 8)];
const calls = [await setup(distA, dtype as QuantDType, N, K, T), await setup(distB, dtype as QuantDType, N, K, T)];
for (const t0 = performance.now(); performance.now() - t0 < 500;) calls.forEach((c) => c());
const times: number[][] = [[], []];
for (let s = 0; s < slices; s++) {
  calls.forEach((call, i) => {
    for (const t0 = performance.now(); performance.now() - t0 < 150;) {
      const c = performance.now();
      call();
      times[i]!.push(performance.now() - c);
    }
  });
}
console.log(`${dtype} N=${N} K=${K} T=${T}, ms per token, one thread`);
console.log(`  A ${distA}: ${stats(times[0]!, T)}`);
console.log(`  B ${distB}: ${stats(times[1]!, T)}`);
