// The server's life around requests: 503 while the model loads, the per-request timeout, prompt-prefix
// reuse across turns, and a graceful shutdown that lets running streams finish.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { LoadedModel } from "../../src/index.js";
import { eventually, http, loadTiny, metrics, openai, serve } from "./helpers.js";
import { FakeEngine, fakeLoadedModel } from "./fake-engine.js";

let model: LoadedModel;

before(async () => {
  model = await loadTiny("plain", 1);
});

after(async () => {
  await model.dispose();
});

test("503 while the model loads, 200 once it has", async () => {
  let finishLoading!: (m: LoadedModel) => void;
  const loading = new Promise<LoadedModel>((resolve) => (finishLoading = resolve));
  const server = await serve(loading);
  try {
    const health = await http(server, "GET", "/health");
    assert.equal(health.status, 503);
    assert.equal(health.json.status, "loading");
    const early = await http(server, "POST", "/v1/completions", { prompt: "x", max_tokens: 1 });
    assert.equal(early.status, 503);
    assert.equal(early.json.error.code, "model_loading");
    assert.ok(early.headers.get("retry-after"));
    assert.equal(early.headers.get("x-should-retry"), null, "a client may retry while the model loads");
    finishLoading(model);
    await server.ready;
    assert.equal((await http(server, "GET", "/health")).status, 200);
    assert.equal((await http(server, "POST", "/v1/completions", { prompt: "x", max_tokens: 1 })).status, 200);
  } finally {
    await server.shutdown(1000);
  }
});

test("a model that failed to load: 500 model_load_failed, which the openai client does not retry", async () => {
  const server = await serve(Promise.reject(new Error("bad weights")));
  try {
    await server.ready.catch(() => undefined);
    const raw = await http(server, "POST", "/v1/completions", { prompt: "x", max_tokens: 1 });
    assert.equal(raw.status, 500, raw.text);
    assert.equal(raw.json.error.code, "model_load_failed");
    assert.equal(raw.headers.get("x-should-retry"), "false");
    const failed = 'phi2_requests_total{endpoint="/v1/chat/completions",status="500"}';
    await assert.rejects(
      openai(server, "unused", 2).chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
      (e: { status?: number }) => e.status === 500,
    );
    // The response is counted when it closes, just after the client has read it.
    const count = async () => (await metrics(server)).get(failed) ?? 0;
    await eventually(async () => (await count()) >= 1, 5000, "the 500 to be counted");
    assert.equal(await count(), 1, "one request: the client did not retry");
  } finally {
    await server.shutdown(1000);
  }
});

test("the per-request timeout ends a generation with finish_reason length, and refuses one still queued", async () => {
  // A quarter second against 240 steps of at least 5 ms (the fake engine, one slot): the tiny model's
  // ~1 ms steps on a fast idle machine would finish 240 tokens right at the deadline.
  const server = await serve(fakeLoadedModel(new FakeEngine(1, 512, 5)), { timeoutSeconds: 0.25 });
  try {
    const t0 = performance.now();
    const cut = await http(server, "POST", "/v1/completions", { prompt: "long", max_tokens: 240, ignore_eos: true });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(cut.status, 200, cut.text);
    assert.equal(cut.json.choices[0].finish_reason, "length");
    assert.ok(cut.json.usage.completion_tokens < 240, "cut short");
    assert.ok(seconds < 2, `took ${seconds} s`);

    // One slot and n = 2: the second choice waits for the first, which runs until the deadline.
    const queued = await http(server, "POST", "/v1/completions", { prompt: "long", max_tokens: 240, n: 2, ignore_eos: true });
    assert.equal(queued.status, 503, queued.text);
    assert.equal(queued.json.error.code, "timeout");

    const streamed = await http(server, "POST", "/v1/completions", { prompt: "long", max_tokens: 240, stream: true, ignore_eos: true });
    const events = streamed.text.split("\n\n").filter((e) => e !== "");
    assert.equal(events.at(-1), "data: [DONE]");
    assert.equal(JSON.parse(events.at(-2)!.slice(6)).choices[0].finish_reason, "length");
  } finally {
    await server.shutdown(1000);
  }
});

test("a follow-up turn reuses the cached prefix and answers exactly as without the cache", async () => {
  const server = await serve(model);
  try {
    const client = openai(server);
    const ask = async (messages: { role: "user" | "assistant"; content: string }[]) =>
      (await client.chat.completions.create({ model: model.name, messages, max_tokens: 6, temperature: 0, ignore_eos: true } as never)) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const unrelated = () => client.completions.create({ model: model.name, prompt: "zzz unrelated", max_tokens: 1 });
    const turn1 = [{ role: "user" as const, content: "Tell me about cats." }];
    // The answer to turn 2 from a cold slot (it held something unrelated).
    const first = await ask(turn1);
    const turn2 = [...turn1, { role: "assistant" as const, content: first.choices[0].message.content }, { role: "user" as const, content: "And dogs?" }];
    await unrelated();
    const cold = await ask(turn2);
    // Now turn 1, then turn 2 on the slot that holds turn 1.
    await unrelated();
    await ask(turn1);
    const before = (await metrics(server)).get("phi2_prompt_cache_tokens_total")!;
    const warm = await ask(turn2);
    const reused = (await metrics(server)).get("phi2_prompt_cache_tokens_total")! - before;
    assert.equal(warm.choices[0].message.content, cold.choices[0].message.content);
    assert.ok(reused >= first.usage.prompt_tokens, `reused ${reused} of turn 1's ${first.usage.prompt_tokens} prompt tokens`);
    assert.ok(reused < warm.usage.prompt_tokens);
  } finally {
    await server.shutdown(1000);
  }
});

test("graceful shutdown: new requests are refused, a running stream finishes, then the port closes", async () => {
  const server = await serve(model);
  const client = openai(server);
  const stream = (await client.completions.create({
    model: model.name, prompt: "finish me", max_tokens: 20, stream: true, ignore_eos: true,
  } as never)) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const iterator = stream[Symbol.asyncIterator]();
  const firstChunk = await iterator.next();
  const stopped = server.shutdown(10_000);
  const health = await http(server, "GET", "/health").catch(() => undefined);
  if (health) assert.equal(health.status, 503, "no new work while shutting down");
  let text = firstChunk.value.choices[0].text;
  let finish = null;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
    text += r.value.choices[0].text;
    finish = r.value.choices[0].finish_reason ?? finish;
  }
  assert.equal(finish, "length", "the stream ran to its end");
  await stopped;
  await assert.rejects(fetch(`${server.url}/health`), "the port is closed");
  assert.ok(text.length > 0);
});
