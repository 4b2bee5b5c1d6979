// Every error status the server sends, in OpenAI's {"error": {message, type, param, code}} shape: 400 for
// bad JSON / parameters (naming the parameter) / a context overflow (with the numbers), 401, 404 for a
// model or a route, 413, 429 with Retry-After.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { eventually, http, loadTiny, openai, serve, useTinyServer, type RawResponse } from "./helpers.js";

const KEY = "test-key-123";
const auth = { authorization: `Bearer ${KEY}` };
const tiny = useTinyServer("plain", 1, { apiKey: KEY, queueSize: 1, bodyLimit: 64 * 1024 });

function assertError(res: RawResponse, status: number, code: string | null, param: string | null = null): void {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(Object.keys(res.json), ["error"]);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e).sort(), ["code", "message", "param", "type"]);
  assert.equal(typeof e.message, "string");
  assert.ok(e.message.length > 0);
  assert.equal(e.code, code);
  assert.equal(e.param, param);
}

test("401 without a key or with a wrong one; /health needs none", async () => {
  assertError(await http(tiny.server, "GET", "/v1/models"), 401, "invalid_api_key");
  assertError(await http(tiny.server, "POST", "/v1/completions", { prompt: "x" }), 401, "invalid_api_key");
  assertError(await http(tiny.server, "GET", "/metrics", undefined, { authorization: "Bearer nope" }), 401, "invalid_api_key");
  await assert.rejects(
    openai(tiny.server, "wrong-key").completions.create({ model: tiny.model.name, prompt: "x", max_tokens: 1 }),
    (err: unknown) => err instanceof OpenAI.AuthenticationError && err.status === 401,
  );
  assert.equal((await http(tiny.server, "GET", "/health")).status, 200);
  assert.equal((await http(tiny.server, "GET", "/v1/models", undefined, auth)).status, 200);
});

test("400 for a body that is not JSON", async () => {
  const res = await http(tiny.server, "POST", "/v1/completions", '{"prompt": "x",', auth);
  assertError(res, 400, "invalid_json");
  assert.equal(res.json.error.type, "invalid_request_error");
  assertError(await http(tiny.server, "POST", "/v1/chat/completions", "[1, 2]", auth), 400, "invalid_value", "body");
  const empty = await http(tiny.server, "POST", "/v1/completions", "", auth);
  assertError(empty, 400, "invalid_value", "body");
  assert.match(empty.json.error.message, /got nothing \(the body is empty\)\.$/);
  // an empty prompt list is named as such ("an array" alone reads as if arrays were not allowed)
  for (const [prompt, param] of [[[], "prompt"], [[[]], "prompt[0]"]] as const) {
    const res = await http(tiny.server, "POST", "/v1/completions", { prompt }, auth);
    assertError(res, 400, "invalid_value", param);
    assert.match(res.json.error.message, /got an empty array\.$/);
  }
});

test("400 names the parameter that is wrong", async () => {
  const chat = (body: object) => http(tiny.server, "POST", "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], ...body }, auth);
  const cmpl = (body: object) => http(tiny.server, "POST", "/v1/completions", { prompt: "hi", ...body }, auth);
  const cases: [Promise<RawResponse>, string][] = [
    [cmpl({ temperature: 5 }), "temperature"],
    [cmpl({ temperature: "hot" }), "temperature"],
    [cmpl({ top_p: 1.5 }), "top_p"],
    [cmpl({ max_tokens: -1 }), "max_tokens"],
    [chat({ max_tokens: 0 }), "max_tokens"],
    [cmpl({ max_tokens: 2.5 }), "max_tokens"],
    [cmpl({ n: 0 }), "n"],
    [cmpl({ n: 500 }), "n"],
    [cmpl({ stop: [1, 2] }), "stop"],
    [cmpl({ logprobs: 50 }), "logprobs"],
    [cmpl({ logit_bias: { abc: 1 } }), "logit_bias"],
    [cmpl({ logit_bias: { "5": 500 } }), "logit_bias.5"],
    [cmpl({ seed: "x" }), "seed"],
    [cmpl({ prompt: { text: "hi" } }), "prompt"],
    [cmpl({ prompt: [[1, 2], [99999999]] }), "prompt[1]"],
    [cmpl({ stream_options: { include_usage: true } }), "stream_options"],
    [cmpl({ best_of: 3 }), "best_of"],
    [http(tiny.server, "POST", "/v1/chat/completions", { max_tokens: 3 }, auth), "messages"],
    [chat({ messages: [] }), "messages"],
    [chat({ messages: [{ role: "tool", content: "x" }] }), "messages[0].role"],
    [chat({ messages: [{ role: "user", content: "a" }, { role: "user" }] }), "messages[1].content"],
    [chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), "messages[0].content[0]"],
    [chat({ top_logprobs: 2 }), "top_logprobs"],
    [chat({ max_completion_tokens: -1 }), "max_completion_tokens"],
    [chat({ tools: [{ type: "function", function: { name: "f" } }] }), "tools"],
    [chat({ user_name: "a:b" }), "user_name"],
    [http(tiny.server, "POST", "/tokenize", {}, auth), "content"],
    [http(tiny.server, "POST", "/detokenize", { tokens: [1, -1] }, auth), "tokens"],
  ];
  for (const [pending, param] of cases) {
    const res = await pending;
    assert.equal(res.status, 400, `${param}: ${res.text}`);
    assert.equal(res.json.error.param, param, res.text);
    assert.equal(res.json.error.type, "invalid_request_error");
    assert.ok(res.json.error.message.includes(param.split(".")[0].split("[")[0]), res.json.error.message);
  }
  // The openai client surfaces the same as BadRequestError with .param.
  await assert.rejects(
    tiny.client.completions.create({ model: tiny.model.name, prompt: "x", temperature: 3 }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === "temperature",
  );
});

test("400 when prompt + max_tokens exceed the context, with both numbers", async () => {
  const prompt = "word ".repeat(250); // 250 tokens of the 256-token context
  const promptTokens = tiny.model.tokenizer.encode(prompt).length;
  const res = await http(tiny.server, "POST", "/v1/completions", { prompt, max_tokens: 10 }, auth);
  assertError(res, 400, "context_length_exceeded", "max_tokens");
  const message: string = res.json.error.message;
  assert.ok(message.includes("256") && message.includes(String(promptTokens)) && message.includes("10"), message);
  const chat = await http(tiny.server, "POST", "/v1/chat/completions", { messages: [{ role: "user", content: prompt }], max_tokens: 10 }, auth);
  assertError(chat, 400, "context_length_exceeded", "max_tokens");
  const tooLong = await http(tiny.server, "POST", "/v1/chat/completions", { messages: [{ role: "user", content: prompt + prompt }] }, auth);
  assertError(tooLong, 400, "context_length_exceeded", "max_completion_tokens");
});

test("404 for an unknown model and an unknown route", async () => {
  await assert.rejects(
    tiny.client.completions.create({ model: "gpt-4", prompt: "x", max_tokens: 1 }),
    (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === "model_not_found",
  );
  assertError(await http(tiny.server, "POST", "/v1/chat/completions", { model: "nope", messages: [{ role: "user", content: "x" }] }, auth), 404, "model_not_found", "model");
  assertError(await http(tiny.server, "GET", "/v1/models/nope", undefined, auth), 404, "model_not_found", "model");
  assertError(await http(tiny.server, "GET", "/v1/embeddings", undefined, auth), 404, "not_found");
  assertError(await http(tiny.server, "DELETE", "/v1/completions", undefined, auth), 404, "not_found");
  // The folder the model was loaded from is accepted as its name too.
  const byPath = await http(tiny.server, "POST", "/v1/completions", { model: tiny.model.source, prompt: "x", max_tokens: 1 }, auth);
  assert.equal(byPath.status, 200, byPath.text);
});

test("GET /v1/models/ID answers for an id with a slash (a hub id, the default one) sent unencoded or encoded", async () => {
  const model = await loadTiny("plain", 1);
  const server = await serve(model, { alias: "microsoft/phi-2" });
  try {
    for (const path of ["/v1/models/microsoft/phi-2", "/v1/models/microsoft%2Fphi-2"]) {
      const res = await http(server, "GET", path);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.equal(res.json.id, "microsoft/phi-2");
    }
    assert.equal((await openai(server).models.retrieve("microsoft/phi-2")).id, "microsoft/phi-2");
    assertError(await http(server, "GET", "/v1/models/microsoft/phi-3"), 404, "model_not_found", "model");
  } finally {
    await server.shutdown(1000);
    await model.dispose();
  }
});

test("413 for a body over the limit", async () => {
  const res = await http(tiny.server, "POST", "/v1/completions", { prompt: "x".repeat(100 * 1024) }, auth);
  assertError(res, 413, "request_too_large");
});

test("429 with Retry-After when every slot is busy and the queue is full", async () => {
  // One slot, queue of one: a long stream holds the slot, a second request waits, a third is refused.
  const controller = new AbortController();
  const stream = await tiny.client.completions.create(
    { model: tiny.model.name, prompt: "hold", max_tokens: 240, stream: true, ignore_eos: true } as never,
    { signal: controller.signal },
  ) as unknown as AsyncIterable<unknown>;
  const iterator = stream[Symbol.asyncIterator]();
  await iterator.next(); // the first token: the stream holds the slot
  const waiting = http(tiny.server, "POST", "/v1/completions", { prompt: "wait", max_tokens: 2 }, auth);
  const health = async () => (await http(tiny.server, "GET", "/health")).json;
  await eventually(async () => (await health()).queue_depth === 1, 15_000, "the second request to queue");
  const refused = await http(tiny.server, "POST", "/v1/completions", { prompt: "refused", max_tokens: 2 }, auth);
  assertError(refused, 429, "queue_full");
  assert.equal(refused.headers.get("retry-after"), "1");
  await assert.rejects(
    tiny.client.completions.create({ model: tiny.model.name, prompt: "x", max_tokens: 1 }),
    (err: unknown) => err instanceof OpenAI.RateLimitError,
  );
  controller.abort();
  const served = await waiting;
  assert.equal(served.status, 200, "the queued request runs once the slot is free");
  assert.equal(served.json.usage.completion_tokens <= 2, true);
});

test("CORS: preflights are answered without the key; responses allow any origin", async () => {
  const res = await fetch(`${tiny.server.url}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: { origin: "http://example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
  assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/);
  const models = await http(tiny.server, "GET", "/v1/models", undefined, auth);
  assert.equal(models.headers.get("access-control-allow-origin"), "*");
  const stream = await http(tiny.server, "POST", "/v1/completions", { prompt: "x", max_tokens: 1, stream: true }, auth);
  assert.equal(stream.headers.get("access-control-allow-origin"), "*");
});

test("x-request-id on every /v1 response: the completion's id, else a fresh one; the openai client reads it", async () => {
  const client = openai(tiny.server, KEY);
  const cmpl = await client.completions.create({ model: tiny.model.name, prompt: "x", max_tokens: 2 }).withResponse();
  assert.equal(cmpl.request_id, cmpl.data.id);
  assert.equal((cmpl.data as unknown as { _request_id: string })._request_id, cmpl.data.id);
  const chat = await client.chat.completions.create({ model: tiny.model.name, messages: [{ role: "user", content: "x" }], max_tokens: 2 }).withResponse();
  assert.equal(chat.request_id, chat.data.id);
  // Streamed: the header of the event stream.
  const stream = await client.chat.completions.create({ model: tiny.model.name, messages: [{ role: "user", content: "x" }], max_tokens: 2, stream: true }).withResponse();
  let streamId: string | undefined;
  for await (const chunk of stream.data) streamId ??= chunk.id;
  assert.equal(stream.request_id, streamId);

  // Without a completion (a model list, errors): a fresh id each time.
  const ids = new Set<string>();
  const models = await client.models.list().withResponse();
  ids.add(models.request_id!);
  for (const bad of [{ model: tiny.model.name, prompt: "x", temperature: 5 }, { model: "nope", prompt: "x" }]) {
    await assert.rejects(client.completions.create(bad as never), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      ids.add(e.requestID!);
      return true;
    });
  }
  await assert.rejects(openai(tiny.server, "wrong").models.list(), (e: unknown) => e instanceof OpenAI.APIError && !!ids.add(e.requestID!));
  for (const path of ["/v1/nowhere", "/v1/completions"]) {
    const res = await http(tiny.server, "POST", path, "{not json", auth);
    ids.add(res.headers.get("x-request-id")!);
  }
  assert.equal(ids.size, 6, [...ids].join(" "));
  for (const id of ids) assert.match(id, /^req_[0-9a-f]{32}$/);
  // Browsers may read it.
  const cors = await http(tiny.server, "GET", "/v1/models", undefined, { ...auth, origin: "http://example.com" });
  assert.match(cors.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
});
