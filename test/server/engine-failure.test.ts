// An engine that fails for good (a worker trapped mid-pass: PhiEngine then refuses every later forward)
// must show: /health turns 503 with an OpenAI-style error naming the failure, /metrics' phi2_engine_failed
// turns 1, running requests end with a clean error (JSON, or an error event in a stream), queued and new
// ones get the 503, and the server stays up to say so. On the fake engine, failed with its breakNext.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeEngine, fakeLoadedModel } from "./fake-engine.js";
import { eventually, http, metrics, openai, serve, type RawResponse } from "./helpers.js";

const MESSAGE = "engine worker 1 (partition 1) failed in layer 1: RangeError: injected fault";

function assertEngineFailed(res: RawResponse, what: string): void {
  assert.equal(res.status, 503, `${what}: ${res.text}`);
  assert.deepEqual(res.json.error, { message: `engine failed: ${MESSAGE}`, type: "server_error", param: null, code: "engine_failed" }, what);
  assert.equal(res.headers.get("retry-after"), null, `${what}: retrying this server will not help`);
}

/** The SSE events of a stream's body: the JSON of each data line, "[DONE]" as is. */
function sseEvents(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((e) => e !== "")
    .map((e) => {
      assert.ok(e.startsWith("data: "), e);
      const data = e.slice(6);
      return data === "[DONE]" ? data : JSON.parse(data);
    });
}

test("an engine that failed for good: /health 503, phi2_engine_failed 1, running requests end cleanly, new ones get 503", async () => {
  // Two slots, 2 ms per forward step: long generations are still running when the engine breaks.
  const engine = new FakeEngine(2, 512, 2);
  const server = await serve(fakeLoadedModel(engine), { parallel: 2 });
  try {
    const healthy = await http(server, "GET", "/health");
    assert.equal(healthy.status, 200, healthy.text);
    assert.equal(healthy.json.status, "ok");
    assert.equal((await metrics(server)).get("phi2_engine_failed"), 0);
    const before = await http(server, "POST", "/v1/completions", { prompt: [1, 2, 3], max_tokens: 3 });
    assert.equal(before.status, 200, before.text);

    // Two requests decoding (one streamed) and one queued behind them when the engine breaks.
    const long = { prompt: [4, 5, 6], max_tokens: 400 };
    const plain = http(server, "POST", "/v1/completions", long);
    const streamed = http(server, "POST", "/v1/completions", { ...long, stream: true });
    await eventually(async () => (await http(server, "GET", "/health")).json.slots_processing === 2, 5000, "both to start");
    const queued = http(server, "POST", "/v1/completions", long);
    await eventually(async () => (await http(server, "GET", "/health")).json.queue_depth === 1, 5000, "the third to queue");
    // A few more steps, so the stream has sent tokens before it breaks.
    const tokens = async () => (await metrics(server)).get("phi2_generation_tokens_total") ?? 0;
    const soFar = await tokens();
    await eventually(async () => (await tokens()) >= soFar + 4, 5000, "a few tokens");
    engine.breakNext = new Error(MESSAGE);

    assertEngineFailed(await plain, "the running request");
    assertEngineFailed(await queued, "the queued request");
    const stream = await streamed;
    assert.equal(stream.status, 200, "the stream had started");
    const events = sseEvents(stream.text);
    assert.equal(events.at(-1), "[DONE]", "the stream ends cleanly");
    assert.deepEqual((events.at(-2) as { error: unknown }).error, { message: `engine failed: ${MESSAGE}`, type: "server_error", param: null, code: "engine_failed" });
    const chunks = events.slice(0, -2) as { choices: { text: string }[] }[];
    assert.ok(chunks.length > 0 && chunks.every((c) => typeof c.choices[0].text === "string"), "tokens came before the error");
    const callsAtFailure = engine.calls.length;

    // For good: /health and /metrics say so, every new generation request gets the 503.
    const health = await http(server, "GET", "/health");
    assertEngineFailed(health, "/health");
    assert.equal(health.json.status, "error");
    assert.equal(health.json.message, `engine failed: ${MESSAGE}`);
    assert.equal((await metrics(server)).get("phi2_engine_failed"), 1);
    assertEngineFailed(await http(server, "POST", "/v1/completions", { prompt: [1, 2, 3], max_tokens: 3 }), "a new completion");
    assertEngineFailed(await http(server, "POST", "/v1/completions", { prompt: [1, 2, 3], max_tokens: 3, stream: true }), "a new stream");
    assertEngineFailed(
      await http(server, "POST", "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
      "a new chat completion",
    );
    await assert.rejects(openai(server).completions.create({ model: "fake", prompt: "hi", max_tokens: 3 }), (e: { status?: number; message?: string }) => {
      assert.equal(e.status, 503);
      assert.match(e.message ?? "", /engine failed: engine worker 1/);
      return true;
    });

    // The server is still up, answering what needs no engine, and still says it is broken.
    assert.equal((await http(server, "GET", "/v1/models")).status, 200);
    assert.equal((await http(server, "GET", "/health")).status, 503);
    const m = await metrics(server);
    assert.equal(m.get("phi2_engine_failed"), 1);
    assert.equal(m.get("phi2_active_sequences"), 0);
    assert.equal(m.get("phi2_queue_depth"), 0);
    assert.equal(engine.calls.length, callsAtFailure, "no forward pass was tried on the failed engine");
  } finally {
    await server.shutdown(1000);
  }
});
