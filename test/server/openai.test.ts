// Request validation and mapping, without a model: OpenAI fields -> GenerationOptions exactly, and the
// defaults OpenAI documents.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseChatRequest, parseCompletionRequest } from "../../src/server/openai.js";
import { ApiError } from "../../src/server/errors.js";

const ctx = { vocabSize: 50295, maxSequences: 8 };

test("every sampling field maps to its GenerationOptions field", () => {
  const r = parseCompletionRequest(
    {
      model: "m", prompt: "hi", max_tokens: 7, temperature: 0.7, top_p: 0.9, top_k: 5, min_p: 0.1,
      presence_penalty: 0.5, frequency_penalty: -1.5, repetition_penalty: 1.2, seed: 3, stop: ["\n", ""],
      logit_bias: { "50256": -100, "11": 2.5 }, ignore_eos: true, logprobs: 2, echo: true, n: 2, stream: true,
      stream_options: { include_usage: true }, user: "ignored",
    },
    ctx,
  );
  assert.deepEqual(r.options, {
    temperature: 0.7, topP: 0.9, topK: 5, minP: 0.1, presencePenalty: 0.5, frequencyPenalty: -1.5,
    repetitionPenalty: 1.2, seed: 3, stop: ["\n"], logitBias: { 50256: -100, 11: 2.5 }, stopOnEos: false,
    logprobs: true, topLogprobs: 2,
  });
  assert.equal(r.maxTokens, 7);
  assert.deepEqual([r.model, r.n, r.echo, r.logprobs, r.stream, r.includeUsage], ["m", 2, true, 2, true, true]);
  assert.deepEqual(r.prompts, ["hi"]);
});

test("OpenAI's defaults; null means absent", () => {
  const r = parseCompletionRequest({ prompt: [1, 2, 3], temperature: null, max_tokens: null, stop: null }, ctx);
  assert.deepEqual(r.options, {
    temperature: 1, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1,
    stop: [], stopOnEos: true,
  });
  assert.equal(r.maxTokens, undefined);
  assert.deepEqual([r.n, r.echo, r.logprobs, r.stream, r.includeUsage], [1, false, null, false, false]);
  assert.deepEqual(r.prompts, [[1, 2, 3]]);
  assert.equal(parseCompletionRequest({ prompt: "x", top_k: -1 }, ctx).options.topK, 0, "vLLM's -1 = off");
});

test("prompt forms: string, strings, ids, lists of ids", () => {
  assert.deepEqual(parseCompletionRequest({ prompt: ["a", "b"] }, ctx).prompts, ["a", "b"]);
  assert.deepEqual(parseCompletionRequest({ prompt: [[1], [2, 3]] }, ctx).prompts, [[1], [2, 3]]);
  assert.deepEqual(parseCompletionRequest({ prompt: ["a", [4]] }, ctx).prompts, ["a", [4]]);
  const tooMany = () => parseCompletionRequest({ prompt: ["a", "b", "c"], n: 3 }, ctx);
  assert.throws(tooMany, (e: unknown) => e instanceof ApiError && e.status === 400 && e.param === "n");
});

test("chat: messages, text parts, developer = system, max_completion_tokens before max_tokens, logprobs", () => {
  const r = parseChatRequest(
    {
      messages: [
        { role: "developer", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Hi " }, { type: "text", text: "there" }], name: "Carol" },
        { role: "assistant", content: null },
      ],
      max_tokens: 9, max_completion_tokens: 4, logprobs: true, top_logprobs: 3, user_name: "Eve",
      response_format: { type: "text" }, tools: [],
    },
    ctx,
  );
  assert.deepEqual(r.messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi there", name: "Carol" },
    { role: "assistant", content: "" },
  ]);
  assert.equal(r.maxTokens, 4);
  assert.equal(r.maxTokensParam, "max_completion_tokens");
  assert.deepEqual([r.logprobs, r.topLogprobs, r.options.logprobs, r.options.topLogprobs], [true, 3, true, 3]);
  assert.equal(r.userName, "Eve");
  assert.equal(parseChatRequest({ messages: [{ role: "user", content: "x" }], max_tokens: 9 }, ctx).maxTokensParam, "max_tokens");
});

test("a missing or null prompt is the empty prompt", () => {
  assert.deepEqual(parseCompletionRequest({}, ctx).prompts, [""]);
  assert.deepEqual(parseCompletionRequest({ prompt: null }, ctx).prompts, [""]);
});
