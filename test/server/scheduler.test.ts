// The continuous-batching scheduler on a deterministic fake engine: results equal the unbatched rule,
// prompts are prefilled in budget-sized chunks without stalling decoders, cached prefixes are reused,
// aborts free slots, a full queue refuses, engine errors fail only their batch (all, once the engine has
// failed for good), drain waits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GenerationSequence, type GenerationOptions, type StepResult } from "../../src/index.js";
import { Scheduler, type SequenceEvent } from "../../src/server/scheduler.js";
import { ServerMetrics } from "../../src/server/metrics.js";
import { ApiError } from "../../src/server/errors.js";
import { FakeEngine, expectedGreedy, fakeTokenizer } from "./fake-engine.js";

function makeScheduler(engine: FakeEngine, queueSize = 64, stepTokenBudget = 16) {
  const metrics = new ServerMetrics(() => 0, () => 0);
  const scheduler = new Scheduler(
    engine,
    (prompt, options, cachedTokens) => new GenerationSequence(fakeTokenizer, prompt, { ...options, cachedTokens }, engine.contextLength),
    { queueSize, stepTokenBudget, metrics },
  );
  return { scheduler, metrics };
}

interface Outcome {
  ids: number[];
  finish: StepResult["finishReason"] | "error";
  started?: boolean;
  error?: Error;
  /** Forward call index at which each token arrived. */
  steps: number[];
}

/** Submits one sequence; resolves with its tokens when it finishes. */
function run(
  scheduler: Scheduler,
  engine: FakeEngine,
  promptIds: number[],
  options: GenerationOptions,
  signal?: AbortSignal,
  onToken?: (n: number) => void,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { ids: [], finish: undefined, steps: [] };
    const onEvent = (e: SequenceEvent) => {
      if (e.kind === "step" || e.kind === "finish") {
        if (e.result.piece) {
          out.ids.push(e.result.piece.id);
          out.steps.push(engine.calls.length);
          onToken?.(out.ids.length);
        }
      }
      if (e.kind === "finish") resolve({ ...out, finish: e.result.finishReason, started: e.started });
      if (e.kind === "error") resolve({ ...out, finish: "error", error: e.error });
    };
    scheduler.submit([{ promptIds, options, onEvent }], signal);
  });
}

const greedy = (maxTokens: number): GenerationOptions => ({ temperature: 0, maxTokens });
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => (from + i * 7) % 38);

test("batched sequences give exactly the unbatched results, with prompts longer than the step budget", async () => {
  const engine = new FakeEngine(4, 512);
  const { scheduler } = makeScheduler(engine, 64, 16);
  const prompts = [range(3, 1), range(50, 2), range(17, 3), range(1, 4), range(33, 5), range(8, 6), range(70, 7)];
  const outcomes = await Promise.all(prompts.map((p, i) => run(scheduler, engine, p, greedy(5 + i))));
  outcomes.forEach((o, i) => {
    assert.equal(o.finish, "length");
    assert.deepEqual(o.ids, expectedGreedy(prompts[i], 5 + i), `sequence ${i}`);
  });
  // 7 sequences on 4 slots: batches held several sequences, and never two items of one slot (fake asserts).
  assert.ok(engine.calls.some((c) => c.length >= 3), "sequences were batched together");
  for (const call of engine.calls) {
    const tokens = call.reduce((s, i) => s + i.tokens.length, 0);
    assert.ok(tokens <= 16, `a step carried ${tokens} tokens, over the budget of 16`);
  }
});

test("a long prompt is prefilled in chunks while an active sequence keeps decoding every step", async () => {
  const engine = new FakeEngine(2, 512);
  const { scheduler } = makeScheduler(engine, 64, 8);
  let longDone: Promise<Outcome> | undefined;
  const long = range(100, 9);
  const first = run(scheduler, engine, range(4, 1), greedy(30), undefined, (n) => {
    if (n === 3) longDone = run(scheduler, engine, long, greedy(4));
  });
  const a = await first;
  const b = await longDone!;
  assert.deepEqual(a.ids, expectedGreedy(range(4, 1), 30));
  assert.deepEqual(b.ids, expectedGreedy(long, 4));
  // While the 100-token prompt was being prefilled (in ~13 chunks), the first sequence got a token at every step.
  const gaps = a.steps.slice(1).map((s, i) => s - a.steps[i]);
  assert.ok(gaps.every((g) => g === 1), `decode steps stalled: gaps ${gaps.join(",")}`);
  const chunks = engine.calls.flatMap((c) => c.filter((i) => i.tokens.length > 1));
  assert.ok(chunks.length >= 12, `expected the prompt in chunks, got ${chunks.length}`);
  assert.ok(chunks.every((c) => c.tokens.length <= 7), "chunk + the decoder's token fit the budget of 8");
});

test("a prompt extending a cached one reuses the slot's prefix and only prefills the rest", async () => {
  const engine = new FakeEngine(2, 512);
  const { scheduler, metrics } = makeScheduler(engine, 64, 64);
  const turn1 = range(20, 3);
  const a = await run(scheduler, engine, turn1, greedy(6));
  // Fill the other slot with something unrelated, so the choice between slots matters.
  await run(scheduler, engine, range(9, 11), greedy(2));
  const turn2 = [...turn1, ...a.ids.slice(0, 5), 1, 2, 3];
  const callsBefore = engine.calls.length;
  const b = await run(scheduler, engine, turn2, greedy(4));
  assert.deepEqual(b.ids, expectedGreedy(turn2, 4), "reuse must not change the result");
  const prefill = engine.calls[callsBefore][0];
  assert.equal(prefill.startPos, 25, "turn 1's prompt and the 5 fed tokens of its answer came from the cache");
  assert.deepEqual(prefill.tokens, [1, 2, 3]);
  assert.equal(metrics.cachedPromptTokens.get(), 25);
});

test("an identical prompt still runs its last token (its logits are needed)", async () => {
  const engine = new FakeEngine(1, 512);
  const { scheduler } = makeScheduler(engine);
  const prompt = range(10, 1);
  await run(scheduler, engine, prompt, greedy(2));
  const before = engine.calls.length;
  const again = await run(scheduler, engine, prompt, greedy(2));
  assert.deepEqual(again.ids, expectedGreedy(prompt, 2));
  assert.deepEqual(engine.calls[before][0], { slot: 0, tokens: [prompt[9]], startPos: 9, allLogits: false });
});

test("aborting ends a running sequence before the next step and frees its slot for the queue", async () => {
  const engine = new FakeEngine(1, 512, 1);
  const { scheduler } = makeScheduler(engine);
  const controller = new AbortController();
  const aborted = run(scheduler, engine, range(5), greedy(1000), controller.signal, (n) => {
    if (n === 4) controller.abort();
  });
  const waiting = run(scheduler, engine, range(6, 2), greedy(3));
  const a = await aborted;
  assert.equal(a.finish, "abort");
  assert.equal(a.started, true);
  assert.equal(a.ids.length, 4, "no token after the abort");
  const w = await waiting;
  assert.deepEqual(w.ids, expectedGreedy(range(6, 2), 3));
  assert.equal(scheduler.activeCount, 0);
});

test("aborting a queued sequence removes it at once", async () => {
  const engine = new FakeEngine(1, 512, 1);
  const { scheduler } = makeScheduler(engine);
  const busy = run(scheduler, engine, range(5), greedy(20));
  const controller = new AbortController();
  const queued = run(scheduler, engine, range(5, 1), greedy(5), controller.signal);
  assert.equal(scheduler.queueDepth, 1);
  controller.abort();
  const q = await queued;
  assert.equal(q.finish, "abort");
  assert.equal(q.started, false);
  assert.equal(scheduler.queueDepth, 0);
  assert.equal((await busy).ids.length, 20);
});

test("a full queue refuses with 429 and takes nothing of the refused request", async () => {
  const engine = new FakeEngine(1, 512, 1);
  const { scheduler, metrics } = makeScheduler(engine, 1);
  const a = run(scheduler, engine, range(4), greedy(10));
  const b = run(scheduler, engine, range(4, 1), greedy(2));
  assert.throws(
    () => scheduler.submit([{ promptIds: range(3), options: greedy(1), onEvent: () => {} }]),
    (err: unknown) => err instanceof ApiError && err.status === 429,
  );
  assert.equal(scheduler.queueDepth, 1);
  assert.equal(metrics.rejected.get(), 1);
  await Promise.all([a, b]);
});

test("an engine error fails the sequences of that batch only; later ones work", async () => {
  const engine = new FakeEngine(2, 512);
  const { scheduler } = makeScheduler(engine);
  engine.failNext = new Error("worker crashed");
  const [x, y] = await Promise.all([run(scheduler, engine, range(4), greedy(3)), run(scheduler, engine, range(4, 3), greedy(3))]);
  assert.equal(x.finish, "error");
  assert.match(x.error!.message, /worker crashed/);
  // y joined after the failing step had started: it ran in the next batch, unharmed.
  assert.deepEqual(y.ids, expectedGreedy(range(4, 3), 3));
  const z = await run(scheduler, engine, range(4), greedy(3));
  assert.deepEqual(z.ids, expectedGreedy(range(4), 3));
});

test("an engine that fails for good fails running and queued sequences with a 503 and refuses new ones", async () => {
  const engine = new FakeEngine(1, 512, 1);
  const { scheduler } = makeScheduler(engine);
  const running = run(scheduler, engine, range(4), greedy(400), undefined, (n) => {
    if (n === 3) engine.breakNext = new Error("worker 0 trapped");
  });
  const queued = run(scheduler, engine, range(4, 1), greedy(3));
  const isEngineFailed = (e: unknown) =>
    e instanceof ApiError && e.status === 503 && e.code === "engine_failed" && e.message === "engine failed: worker 0 trapped";
  for (const outcome of [await running, await queued]) {
    assert.equal(outcome.finish, "error");
    assert.ok(isEngineFailed(outcome.error), String(outcome.error));
  }
  assert.equal((await running).ids.length, 3);
  assert.equal(scheduler.engineFailure?.message, "worker 0 trapped");
  assert.equal(scheduler.activeCount + scheduler.queueDepth, 0);
  const calls = engine.calls.length;
  assert.throws(() => scheduler.submit([{ promptIds: [1], options: greedy(1), onEvent: () => {} }]), isEngineFailed);
  assert.equal(await scheduler.drain(1000), true, "nothing left to drain");
  assert.equal(engine.calls.length, calls, "no pass was tried on the failed engine");
});

test("drain waits for running sequences, refuses new ones, and ends what outlives the grace period", async () => {
  // A grace period the short sequence's 5 steps fit in even on a stalled machine, and a long one that
  // cannot end within it (4000 steps of at least 1 ms).
  const engine = new FakeEngine(2, 4096, 1);
  const { scheduler } = makeScheduler(engine);
  const short = run(scheduler, engine, range(4), greedy(5));
  const long = run(scheduler, engine, range(4, 1), greedy(4000));
  const drained = await scheduler.drain(1000);
  assert.equal(drained, false, "the long sequence outlived the grace period");
  assert.equal((await short).ids.length, 5);
  const l = await long;
  assert.equal(l.finish, "abort");
  assert.ok(l.ids.length > 0 && l.ids.length < 4000);
  assert.throws(() => scheduler.submit([{ promptIds: [1], options: greedy(1), onEvent: () => {} }]), (e: unknown) => e instanceof ApiError && e.status === 503);
});
