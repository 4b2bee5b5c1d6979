// The loader's contract: reserved area, argument checks, pointers above 2 GiB, worker threads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { execFileSync } from "node:child_process";
import { Arena, randomF32, rng } from "./harness.js";
import { createKernelMemory, instantiateKernels, kernelModule } from "../../src/kernels/wasm.js";
import { linear } from "../../src/kernels/reference.js";

test("reservedBytes is 16-byte aligned and above the module's static data", () => {
  const k = instantiateKernels(createKernelMemory(1 << 20));
  assert.equal(k.reservedBytes % 16, 0);
  assert.ok(k.reservedBytes > 32 * 1024, `reservedBytes ${k.reservedBytes} must cover the 32 KiB weight panel`);
  assert.ok(k.reservedBytes < 1 << 20);
  assert.equal(kernelModule(), kernelModule(), "compiled once");
});

test("checked kernels reject regions outside memory or inside the reserved area, and bad sizes", () => {
  const arena = new Arena(1 << 20);
  const { k } = arena;
  const x = arena.alloc(64);
  const end = arena.memory.buffer.byteLength - 16;
  assert.throws(() => k.linear_f32(x, x, end, 0, 1, 4, 4, 0), /linear_f32: w = \d+ \(\+64 bytes\) is outside/);
  assert.throws(() => k.linear_bf16(x, x, 1 << 20, 0, 1, 4, 4, 0), /linear_bf16: w = 1048576/);
  assert.throws(() => k.linear_f16(0, x, x, 0, 1, 1, 1, 0), /linear_f16: out = 0 .*outside the usable memory/);
  assert.throws(() => k.linear_f32(x, x, x, 0, 0, 1, 1, 0), /linear_f32: T = 0 must be an integer >= 1/);
  assert.throws(() => k.layernorm(x, x, x, x, 1, 1.5, 1e-5), /layernorm: C = 1.5/);
  assert.throws(() => k.rope(x, 1, 8, 1, 8, 3, x, 10000), /rope: rotaryDim = 3 must be even/);
  assert.throws(() => k.attention(x, x, 1, x, x, x, 3, 2, 4, 1, x), /nHeads = 3 is not a multiple of nKvHeads = 2/);
  const pos = arena.put(new Int32Array([-1]));
  assert.throws(() => k.attention(x, x, 1, pos, x, x, 1, 1, 4, 1, x), /positions\[0\] = -1 is negative/);
});

test("pointers above 2 GiB work (wasm32 addresses are unsigned)", () => {
  const memory = createKernelMemory(2 ** 31 + (4 << 20));
  const k = instantiateKernels(memory);
  const base = 2 ** 31 + 65536;
  const rand = rng(1);
  const [T, K, N] = [3, 37, 9];
  const x = randomF32(rand, T * K);
  const w = randomF32(rand, N * K);
  const f32 = new Float32Array(memory.buffer);
  const xPtr = base, wPtr = base + 4096, outPtr = base + 8192;
  f32.set(x, xPtr / 4);
  f32.set(w, wPtr / 4);
  k.linear_f32(outPtr, xPtr, wPtr, 0, T, K, N, 0);
  const want = new Float32Array(T * N);
  linear(want, x, w, null, T, K, N, false);
  const got = f32.subarray(outPtr / 4, outPtr / 4 + T * N);
  for (let i = 0; i < T * N; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-5, `element ${i}`);
});

test("each worker thread instantiates its own kernels on its own memory", async () => {
  const wasmUrl = new URL("../../src/kernels/wasm.js", import.meta.url).href;
  const code = `
    const { parentPort } = require("node:worker_threads");
    import(${JSON.stringify(wasmUrl)}).then(({ createKernelMemory, instantiateKernels }) => {
      const memory = createKernelMemory(1 << 20);
      const k = instantiateKernels(memory);
      const f32 = new Float32Array(memory.buffer);
      const base = k.reservedBytes;
      f32.set([1, 2, 3], base / 4);          // x (1, 3)
      f32.set([1, 0, 0, 0, 1, 1], base / 4 + 4); // w (2, 3)
      k.linear_f32(base + 64, base, base + 16, 0, 1, 3, 2, 0);
      parentPort.postMessage([...f32.subarray(base / 4 + 16, base / 4 + 18)]);
    });`;
  const results = await Promise.all([0, 1].map(() => new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    worker.once("message", (m) => { resolve(m); void worker.terminate(); });
    worker.once("error", reject);
  })));
  assert.deepEqual(results, [[1, 5], [1, 5]]);
});

test("PHI2_KERNELS picks the build; a bad value is a clear error", () => {
  const wasmUrl = new URL("../../src/kernels/wasm.js", import.meta.url).href;
  const run = (value: string): string => execFileSync(process.execPath, [
    "--input-type=module", "-e",
    `import(${JSON.stringify(wasmUrl)}).then((m) => { try { console.log(m.kernelVariant()); } catch (e) { console.log(e.message); } });`,
  ], { env: { ...process.env, PHI2_KERNELS: value }, encoding: "utf8" }).trim();
  assert.equal(run("baseline"), "baseline");
  assert.equal(run("relaxed"), "relaxed"); // Node 20 needs the V8 flag, which the loader sets
  assert.match(run("fast"), /PHI2_KERNELS=fast must be "baseline" or "relaxed"/);
});
