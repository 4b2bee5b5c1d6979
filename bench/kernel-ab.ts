// In-process A/B of the quantized linear kernels of two builds (e.g. the previous commit's dist, built in
// a git worktree, and this one). On a machine whose speed drifts from minute to minute, two separate
// runs are not comparable; here both builds live in one process, each with its own wasm memory and the
// same weights and activations, and their calls alternate in short slices. Prints, per build, the
// minimum, 25th percentile and median ms per token (one thread).
//
//   node dist/bench/kernel-ab.js DIST_A DIST_B TYPE N K T [slices]
//   e.g. node dist/bench/kernel-ab.js /tmp/prev/dist dist Q8_0 10240 2560 64
// DIST_*: a build's dist folder (holding src/kernels/*.js and kernels/*.wasm). TYPE: Q8_0|Q4_0|Q4_K|Q6_K.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

type Call = () => void;

async function setup(dist: string, dtype: string, N: number, K: number, T: number): Promise<Call> {
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const wasm = await import(url("src/kernels/wasm.js"));
  const quant = await import(url("src/kernels/quant-kernels.js"));
  const ggml = await import(url("src/formats/ggml-quants.js"));
  let seed = 1;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const memory: WebAssembly.Memory = wasm.createKernelMemory(64 << 20);
  const base = wasm.instantiateKernels(memory);
  const q = quant.quantKernels(base.raw, memory, base.reservedBytes);
  let top: number = base.reservedBytes;
  const alloc = (bytes: number): number => {
    const p = top;
    top += Math.ceil(bytes / 64) * 64;
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
    return p;
  };
  const x = alloc(T * K * 4);
  new Float32Array(memory.buffer, x, T * K).set(Float32Array.from({ length: T * K }, rand));
  const out = alloc(T * N * 4);
  const scratch = alloc(Math.max(quant.quantScratchBytes(T, K), quant.layoutScratchBytes(dtype, K)));
  const wf = Float32Array.from({ length: N * K }, () => 0.05 * rand());
  const rb: number = ggml.rowBytes(dtype, K);
  const w = alloc(N * rb);
  const wb = new Uint8Array(memory.buffer, w, N * rb);
  for (let n = 0; n < N; n++) ggml.quantizeRow(dtype, wf, n * K, K, wb, n * rb);
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
if (!distA || !distB || !dtype || !Ns || !Ks || !Ts) {
  console.error("usage: node dist/bench/kernel-ab.js DIST_A DIST_B TYPE N K T [slices]");
  process.exit(2);
}
const [N, K, T, slices] = [Number(Ns), Number(Ks), Number(Ts), Number(slicesArg ?? 8)];
const calls = [await setup(distA, dtype, N, K, T), await setup(distB, dtype, N, K, T)];
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
