// Phi2 on an engine that failed for good: `failure` holds the worker's error, the call that was running
// rejects with it, and every later generate / complete / chat rejects at once with an error naming it,
// while tokenize, detokenize and dispose still work. The failure is provoked with the engine's test hook
// (EngineOptions.injectFault), which Phi2.load cannot reach: PhiEngine.start is wrapped for the test (the
// same module loadModel calls).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PhiEngine, type EngineOptions } from "../../src/model/phi.js";
import { Phi2 } from "../../src/index.js";
import { testModel } from "../helpers/test-models.js";

/** Phi2.load with `fault` injected into the engine it starts. */
async function loadWithFault(fault: NonNullable<EngineOptions["injectFault"]>): Promise<Phi2> {
  const start = PhiEngine.start;
  PhiEngine.start = (config, weights, o) => start.call(PhiEngine, config, weights, { ...o, injectFault: fault });
  try {
    return await Phi2.load(testModel({ preset: "tiny", dtype: "f32", seed: 7 }), { threads: 1, contextLength: 128 });
  } finally {
    PhiEngine.start = start;
  }
}

/** The error p rejects with (fails if it resolves or takes longer than ms), and how long it took. */
async function rejection(p: Promise<unknown>, ms: number, what: string): Promise<{ error: Error; elapsed: number }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung`)), ms)));
  try {
    await Promise.race([p, hung]);
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.doesNotMatch(e.message, /hung$/, `${what} should reject, not hang`);
    return { error: e, elapsed: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
  assert.fail(`${what} resolved; it should have rejected`);
}

test("Phi2.failure: the running call rejects with the worker's error, later ones at once with an error naming it", async () => {
  // One worker; pass 1 is the prompt's prefill, pass 2 (the first decode step) throws in layer 0.
  const model = await loadWithFault({ worker: 0, pass: 2, layer: 0, message: "injected fault" });
  try {
    assert.equal(model.failure, undefined, "a working model has not failed");
    const running = await rejection(model.complete("Hello", { maxTokens: 8, temperature: 0 }), 10_000, "the running completion");
    assert.match(running.error.message, /^engine worker 0 \(partitions? [\d, ]+\) failed in layer 0: RangeError: injected fault$/);
    assert.equal(model.failure, running.error, "failure is the error that stopped the engine");

    const named = (e: Error) => {
      assert.equal(e.message, `Phi2: the engine failed earlier, load the model again to generate: ${running.error.message}`);
      assert.equal(e.cause, running.error);
    };
    const streamed = model.generate("Hi", { maxTokens: 4 });
    const later = [
      await rejection(streamed.next(), 1000, "generate"),
      await rejection(model.complete("Hi", { maxTokens: 4 }), 1000, "complete"),
      await rejection(model.chat([{ role: "user", content: "Hi" }], { maxTokens: 4 }), 1000, "chat"),
    ];
    for (const { error, elapsed } of later) {
      named(error);
      assert.ok(elapsed < 500, `rejected after ${elapsed.toFixed(0)} ms`);
    }
    assert.equal(model.failure, running.error, "failure stays the first error");
    assert.deepEqual(model.tokenize("Hello world"), [15496, 995], "the tokenizer needs no engine");
    assert.equal(model.detokenize([15496, 995]), "Hello world");
  } finally {
    const t0 = performance.now();
    await model.dispose();
    assert.ok(performance.now() - t0 < 2000, "dispose is quick on a failed engine");
  }
});
