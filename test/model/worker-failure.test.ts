// A worker that fails in the middle of a forward pass must not leave the others blocked at the layer
// barrier: the call rejects with the failing worker's error (quickly, not after a hang), the engine's
// `failure` holds it, later calls reject with "engine failed earlier: ...", and dispose() still
// finishes. The failure is provoked with the engine's test hook (EngineOptions.injectFault), a
// RangeError thrown inside one worker where its partitions' layer would run. Below that, the barrier
// itself with real threads: an abort releases threads already waiting and stops those arriving later.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { PhiEngine, type EngineOptions } from "../../src/model/phi.js";
import { openHfFolder } from "../../src/formats/hf-folder.js";
import { resolveWeights } from "../../src/model/weights.js";
import { BARRIER_BYTES, barrierAbort } from "../../src/model/barrier.js";
import { testModel } from "../helpers/test-models.js";

/** Rejects with "hung" after ms, so a regression fails the test instead of stalling the suite. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The settled error of p (fails if p resolves), and how long it took. */
async function rejection(p: Promise<unknown>, ms: number, what: string): Promise<{ error: Error; elapsed: number }> {
  const t0 = performance.now();
  try {
    await within(ms, p, what);
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.doesNotMatch(e.message, /hung for/, `${what} should reject, not hang`);
    return { error: e, elapsed: performance.now() - t0 };
  }
  assert.fail(`${what} resolved; it should have rejected`);
}

/** A tiny model (2 layers, 2 KV heads: 2 partitions) on 2 worker threads, with a fault injected. */
async function startTiny(injectFault: EngineOptions["injectFault"]): Promise<PhiEngine> {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 7 });
  const folder = openHfFolder(dir);
  const weights = resolveWeights(folder.tensors, folder.config, dir);
  const engine = await PhiEngine.start(folder.config, weights, { threads: 2, slots: 2, contextLength: 64, injectFault });
  assert.equal(engine.threads, 2, "the test needs two workers");
  return engine;
}

const MESSAGE = "injected fault: partition blew up";

test("a worker failing mid-pass (after a barrier) rejects the call with its error; later calls say the engine failed", async () => {
  // Pass 1 runs clean; in pass 2 worker 1 throws in layer 1, after both workers met at layer 0's barrier.
  // Worker 0 is then waiting at layer 1's barrier for a partner that will not come.
  const engine = await startTiny({ worker: 1, pass: 2, layer: 1, message: MESSAGE });
  let disposed = false;
  try {
    const [first] = await within(10_000, engine.forward([{ slot: 0, tokens: [1, 2, 3], startPos: 0 }]), "first forward");
    assert.equal(first!.length, engine.config.vocab_size);
    assert.equal(engine.failure, undefined, "a working engine has not failed");

    const failing = engine.forward([{ slot: 0, tokens: [4], startPos: 3 }, { slot: 1, tokens: [5, 6], startPos: 0 }]);
    // Queued behind the failing call: it must not run on a broken engine.
    const queued = rejection(engine.forward([{ slot: 1, tokens: [7], startPos: 2 }]), 15_000, "the queued forward");
    const { error, elapsed } = await rejection(failing, 10_000, "the failing forward");
    assert.match(error.message, /^engine worker 1 \(partition 1\) failed in layer 1: RangeError: injected fault: partition blew up$/);
    assert.ok(elapsed < 5000, `rejected after ${elapsed.toFixed(0)} ms`);
    assert.match(error.stack ?? "", /worker\.js/, "the stack is the worker's");
    assert.equal(engine.failure, error, "the engine reports the failure that stopped it");

    const later = await queued;
    assert.equal(later.error.message, `engine failed earlier: ${error.message}`);
    assert.equal(later.error.cause, error);
    const again = await rejection(engine.forward([{ slot: 0, tokens: [1], startPos: 0 }]), 5000, "a later forward");
    assert.equal(again.error.message, `engine failed earlier: ${error.message}`);

    const t0 = performance.now();
    await within(5000, engine.dispose(), "dispose");
    disposed = true;
    assert.ok(performance.now() - t0 < 2000, "dispose is quick");
    const after = await rejection(engine.forward([{ slot: 0, tokens: [1], startPos: 0 }]), 5000, "forward after dispose");
    assert.equal(after.error.message, "engine is disposed");
    assert.equal(engine.failure, error, "dispose does not clear the failure");
  } finally {
    if (!disposed) await engine.dispose();
  }
});

test("a worker failing before the first barrier of the first pass: the other worker is released too", async () => {
  // Worker 0 throws at layer 0 of pass 1; worker 1 arrives at layer 0's barrier (before or after the
  // abort) and must stop there, not wait. A long prompt makes both workers' layer work non-trivial.
  const engine = await startTiny({ worker: 0, pass: 1, layer: 0, message: MESSAGE });
  try {
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 97) % 50000);
    const { error, elapsed } = await rejection(engine.forward([{ slot: 0, tokens, startPos: 0 }]), 10_000, "the failing forward");
    assert.match(error.message, /^engine worker 0 \(partition 0\) failed in layer 0: RangeError: injected fault/);
    assert.equal(engine.failure, error);
    assert.ok(elapsed < 5000, `rejected after ${elapsed.toFixed(0)} ms`);
    const later = await rejection(engine.forward([{ slot: 0, tokens: [1], startPos: 0 }]), 5000, "a later forward");
    assert.match(later.error.message, /^engine failed earlier: engine worker 0 \(partition 0\) failed in layer 0/);
  } finally {
    await within(5000, engine.dispose(), "dispose");
  }
});

// The barrier alone, on real threads: each thread calls barrierWait(rounds times) and reports how it ended.
const barrierThread = `
const { workerData, parentPort } = require("node:worker_threads");
import(workerData.module).then(({ barrierWait }) => {
  const ctrl = new Int32Array(workerData.buffer);
  try {
    for (let i = 0; i < workerData.rounds; i++) barrierWait(ctrl, workerData.n);
    parentPort.postMessage("passed");
  } catch (e) {
    parentPort.postMessage(e.name);
  }
});`;
const barrierModule = new URL("../../src/model/barrier.js", import.meta.url).href;

function runThread(buffer: SharedArrayBuffer, n: number, rounds: number): Promise<string> {
  const w = new Worker(barrierThread, { eval: true, workerData: { module: barrierModule, buffer, n, rounds } });
  return new Promise<string>((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  }).finally(() => w.terminate());
}

test("barrier: threads meet many times; an abort releases the waiting threads and stops later arrivals", async () => {
  const ok = new SharedArrayBuffer(BARRIER_BYTES);
  assert.deepEqual(await within(10_000, Promise.all([0, 1, 2].map(() => runThread(ok, 3, 500))), "500 barriers"), ["passed", "passed", "passed"]);

  // Two of three threads arrive and wait for the third, which never comes; the main thread aborts.
  const broken = new SharedArrayBuffer(BARRIER_BYTES);
  const waiting = [0, 1].map(() => runThread(broken, 3, 1));
  const arrivals = new Int32Array(broken);
  const end = Date.now() + 10_000;
  while (Atomics.load(arrivals, 0) < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  assert.equal(Atomics.load(arrivals, 0), 2, "both threads are at the barrier");
  barrierAbort(new Int32Array(broken));
  assert.deepEqual(await within(5000, Promise.all(waiting), "aborted waiters"), ["BarrierAbortedError", "BarrierAbortedError"]);
  assert.equal(await within(5000, runThread(broken, 3, 1), "a late arrival"), "BarrierAbortedError");
});
