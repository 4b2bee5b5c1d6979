// POST /v1/completions through the official openai client against the real server on a tiny random
// Phi-2: response shapes, streaming, stop strings, logprobs, echo, seeds, n, prompt forms, logit_bias,
// plus /tokenize, /detokenize and /v1/models.
import { test } from "node:test";
import assert from "node:assert/strict";
import { http, useTinyServer } from "./helpers.js";

const tiny = useTinyServer("plain", 4);

/** Greedy text with EOS ignored, so the length is exactly max_tokens (tokens) unless a stop hits. */
async function greedy(prompt: string | string[] | number[] | number[][], max_tokens: number, extra: Record<string, unknown> = {}) {
  return tiny.client.completions.create({ model: tiny.model.name, prompt, max_tokens, temperature: 0, ignore_eos: true, ...extra } as never);
}

test("a completion has OpenAI's shape and usage", async () => {
  const t0 = Math.floor(Date.now() / 1000);
  const r = await greedy("The quick brown fox", 8);
  assert.match(r.id, /^cmpl-[0-9a-f]{24}$/);
  assert.equal(r.object, "text_completion");
  assert.ok(r.created >= t0 - 1 && r.created <= t0 + 60);
  assert.equal(r.model, tiny.model.name);
  assert.equal(r.choices.length, 1);
  const [c] = r.choices;
  assert.equal(c.index, 0);
  assert.equal(typeof c.text, "string");
  assert.equal(c.logprobs, null);
  assert.equal(c.finish_reason, "length");
  const promptTokens = tiny.model.tokenizer.encode("The quick brown fox").length;
  assert.deepEqual(r.usage, { prompt_tokens: promptTokens, completion_tokens: 8, total_tokens: promptTokens + 8 });
});

test("max_tokens defaults to 16 as in OpenAI's completions API", async () => {
  const r = await tiny.client.completions.create({ model: tiny.model.name, prompt: "Hi", ignore_eos: true } as never);
  assert.equal(r.usage?.completion_tokens, 16);
  assert.equal(r.choices[0].finish_reason, "length");
});

test("streaming sends the same text as one response, then usage, then [DONE]", async () => {
  const whole = await greedy("Once upon a time", 12);
  const stream = await tiny.client.completions.create({
    model: tiny.model.name, prompt: "Once upon a time", max_tokens: 12, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  } as never) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const usageChunk = chunks.pop();
  assert.deepEqual(usageChunk.choices, []);
  assert.deepEqual(usageChunk.usage, whole.usage);
  assert.ok(chunks.length >= 2);
  const id = chunks[0].id;
  for (const c of chunks) {
    assert.equal(c.id, id);
    assert.match(id, /^cmpl-/);
    assert.equal(c.object, "text_completion");
    assert.equal(c.model, tiny.model.name);
    assert.equal(c.usage, null, "with include_usage, every chunk but the last carries usage: null");
  }
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), whole.choices[0].text);
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  assert.equal(chunks.at(-1).choices[0].finish_reason, "length");

  // On the wire: SSE data lines and the [DONE] terminator.
  const raw = await http(tiny.server, "POST", "/v1/completions", { prompt: "Hi", max_tokens: 3, stream: true });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = raw.text.split("\n\n").filter((e) => e !== "");
  assert.ok(events.every((e) => e.startsWith("data: ")));
  assert.equal(events.at(-1), "data: [DONE]");
});

test("a stop string ends the text before it, with finish_reason stop", async () => {
  const full = (await greedy("In the beginning", 24)).choices[0].text;
  const at = Math.floor(full.length / 2);
  const stop = full.slice(at, at + 3);
  const first = full.indexOf(stop);
  assert.ok(first > 0, `stop ${JSON.stringify(stop)} occurs in ${JSON.stringify(full)}`);
  const r = await greedy("In the beginning", 24, { stop: ["\u0000never", stop] });
  assert.equal(r.choices[0].text, full.slice(0, first));
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok((r.usage?.completion_tokens ?? 99) < 24);
  // A single string works too.
  const single = await greedy("In the beginning", 24, { stop });
  assert.equal(single.choices[0].text, full.slice(0, first));
});

test("logprobs: the chosen token's logprob, its top alternatives and text offsets", async () => {
  const r = await greedy("Numbers:", 10, { logprobs: 3 });
  const [c] = r.choices;
  const lp = c.logprobs!;
  assert.equal(lp.tokens!.length, 10);
  assert.equal(lp.tokens!.join(""), c.text);
  let offset = 0;
  for (let i = 0; i < 10; i++) {
    const top = lp.top_logprobs![i];
    const values = Object.values(top);
    assert.ok(values.length >= 1 && values.length <= 3);
    assert.ok(values.every((v) => v <= 0));
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(lp.token_logprobs![i] - Math.max(...values)) < 1e-6);
    assert.equal(lp.text_offset![i], offset);
    offset += lp.tokens![i].length;
  }
});

test("echo returns the prompt first; with logprobs the prompt tokens are scored too", async () => {
  const prompt = "Echo this";
  const plain = await greedy(prompt, 4, { echo: true });
  const gen = await greedy(prompt, 4);
  assert.equal(plain.choices[0].text, prompt + gen.choices[0].text);

  const promptIds = tiny.model.tokenizer.encode(prompt);
  const scored = await greedy(prompt, 1, { echo: true, logprobs: 2 });
  const lp = scored.choices[0].logprobs!;
  assert.equal(lp.tokens!.length, promptIds.length + 1);
  assert.equal(lp.token_logprobs![0], null, "nothing predicts the first prompt token");
  assert.equal(lp.top_logprobs![0], null);
  // Score the prompt + the greedy token as a prompt: its last token's echo logprob (computed from the
  // prefill's logits) equals the logprob the sampler reported when it generated that token.
  const nextId = tiny.model.tokenizer.encode(prompt + scored.choices[0].text.slice(prompt.length));
  const rescored = await greedy(nextId, 1, { echo: true, logprobs: 0 });
  const rlp = rescored.choices[0].logprobs!;
  const generatedLogprob = lp.token_logprobs!.at(-1)!;
  const echoedLogprob = rlp.token_logprobs![nextId.length - 1]!;
  assert.ok(Math.abs(generatedLogprob - echoedLogprob) < 1e-3, `${generatedLogprob} vs ${echoedLogprob}`);
});

test("max_tokens 0 scores the prompt without generating: echo + logprobs as lm-eval-harness asks, streamed or not", async () => {
  const prompt = "Echo this";
  const promptIds = tiny.model.tokenizer.encode(prompt);
  const withOne = (await greedy(prompt, 1, { echo: true, logprobs: 2 })).choices[0].logprobs!;
  const r = await greedy(prompt, 0, { echo: true, logprobs: 2 });
  const [c] = r.choices;
  assert.equal(c.text, prompt);
  assert.equal(c.finish_reason, "length");
  assert.deepEqual(r.usage, { prompt_tokens: promptIds.length, completion_tokens: 0, total_tokens: promptIds.length });
  const lp = c.logprobs!;
  // the prompt's tokens only, scored as with max_tokens 1 (whose last entry is the generated token)
  assert.equal(lp.tokens!.length, promptIds.length);
  assert.deepEqual(lp.tokens, withOne.tokens!.slice(0, -1));
  assert.deepEqual(lp.token_logprobs, withOne.token_logprobs!.slice(0, -1));
  assert.deepEqual(lp.text_offset, withOne.text_offset!.slice(0, -1));

  const stream = await tiny.client.completions.create({
    model: tiny.model.name, prompt, max_tokens: 0, echo: true, logprobs: 2, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  const tokens: string[] = [];
  let finish: string | null = null;
  let usage;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.text;
      tokens.push(...(ch.logprobs?.tokens ?? []));
      finish = ch.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, prompt);
  assert.deepEqual(tokens, lp.tokens);
  assert.equal(finish, "length");
  assert.equal(usage?.completion_tokens, 0);

  // without echo: nothing at all, still "length"
  const bare = await greedy(prompt, 0);
  assert.equal(bare.choices[0].text, "");
  assert.equal(bare.choices[0].finish_reason, "length");
  assert.equal(bare.usage?.completion_tokens, 0);
});

test("same seed, same text; another seed, other text", async () => {
  const ask = (seed: number) =>
    tiny.client.completions.create({ model: tiny.model.name, prompt: "Random:", max_tokens: 16, temperature: 1, seed, ignore_eos: true } as never);
  const [a, b, c] = await Promise.all([ask(42), ask(42), ask(43)]);
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test("n choices, and several prompts, come back indexed in order", async () => {
  const r = await tiny.client.completions.create({ model: tiny.model.name, prompt: "Pick:", max_tokens: 8, n: 3, temperature: 1, seed: 5, ignore_eos: true } as never);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(new Set(r.choices.map((c) => c.text)).size, 3, "n choices differ");
  const again = await tiny.client.completions.create({ model: tiny.model.name, prompt: "Pick:", max_tokens: 8, n: 3, temperature: 1, seed: 5, ignore_eos: true } as never);
  assert.deepEqual(again.choices.map((c) => c.text), r.choices.map((c) => c.text));
  assert.equal(r.usage?.prompt_tokens, tiny.model.tokenizer.encode("Pick:").length, "the prompt counts once");
  assert.equal(r.usage?.completion_tokens, 24);

  const multi = await greedy(["First prompt", "Second"], 5, { n: 2 });
  assert.deepEqual(multi.choices.map((c) => c.index), [0, 1, 2, 3]);
  const first = (await greedy("First prompt", 5)).choices[0].text;
  const second = (await greedy("Second", 5)).choices[0].text;
  assert.deepEqual(multi.choices.map((c) => c.text), [first, first, second, second]);
});

test("a prompt of token ids equals the same prompt as text; an empty prompt starts from <|endoftext|>", async () => {
  const text = "Token ids work";
  const ids = tiny.model.tokenizer.encode(text);
  const a = await greedy(text, 6);
  const b = await greedy(ids, 6);
  assert.equal(b.choices[0].text, a.choices[0].text);
  const batch = await greedy([ids, ids], 6);
  assert.deepEqual(batch.choices.map((c) => c.text), [a.choices[0].text, a.choices[0].text]);
  const empty = await greedy("", 3);
  assert.equal(empty.usage?.prompt_tokens, 1);
  assert.equal(empty.usage?.completion_tokens, 3);
});

test("logit_bias steers sampling", async () => {
  const the = tiny.model.tokenizer.encode(" the");
  assert.equal(the.length, 1);
  const r = await greedy("Bias:", 4, { logit_bias: { [String(the[0])]: 100 } });
  assert.equal(r.choices[0].text, " the the the the");
});

test("/tokenize and /detokenize round-trip with the counts usage reports", async () => {
  const text = "Hello, world!  Two spaces\tand a tab.";
  const t = await http(tiny.server, "POST", "/tokenize", { content: text });
  assert.equal(t.status, 200);
  assert.deepEqual(t.json.tokens, tiny.model.tokenizer.encode(text));
  assert.equal(t.json.count, t.json.tokens.length);
  assert.equal(t.json.max_model_len, 256);
  const alias = await http(tiny.server, "POST", "/tokenize", { prompt: text });
  assert.deepEqual(alias.json.tokens, t.json.tokens);
  const d = await http(tiny.server, "POST", "/detokenize", { tokens: t.json.tokens });
  assert.equal(d.status, 200);
  assert.equal(d.json.content, text);
  assert.equal(d.json.prompt, text);
  const r = await greedy(text, 1);
  assert.equal(r.usage?.prompt_tokens, t.json.count);
});

test("/v1/models lists the served model; /health is ok", async () => {
  const list = await tiny.client.models.list();
  assert.deepEqual(list.data.map((m) => [m.id, m.object, m.owned_by]), [[tiny.model.name, "model", "phi2"]]);
  const one = await tiny.client.models.retrieve(tiny.model.name);
  assert.equal(one.id, tiny.model.name);
  const health = await http(tiny.server, "GET", "/health");
  assert.equal(health.status, 200);
  assert.equal(health.json.status, "ok");
});

test("logprobs list exactly the tokens of the returned text: a stop string's tokens and EOS are not listed", async () => {
  const full = await greedy("In the beginning", 24, { logprobs: 1 });
  const tokens = full.choices[0].logprobs!.tokens!;
  // A stop of two whole tokens from the middle, at its first occurrence in the text.
  const k = tokens.findIndex((_, i) => i >= 4 && !/\uFFFD/.test(tokens[i] + tokens[i + 1]) &&
    full.choices[0].text.indexOf(tokens[i] + tokens[i + 1]) === tokens.slice(0, i).join("").length);
  assert.ok(k > 0 && k < 22, JSON.stringify(tokens));
  const stop = tokens[k] + tokens[k + 1];
  const r = await greedy("In the beginning", 24, { logprobs: 1, stop });
  const lp = r.choices[0].logprobs!;
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].text, tokens.slice(0, k).join(""));
  assert.deepEqual(lp.tokens, tokens.slice(0, k));
  assert.equal(lp.token_logprobs!.length, k);
  assert.equal(lp.top_logprobs!.length, k);
  assert.deepEqual(lp.text_offset, full.choices[0].logprobs!.text_offset!.slice(0, k));

  const stream = (await greedy("In the beginning", 24, { logprobs: 1, stop, stream: true })) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const streamed: string[] = [];
  for await (const chunk of stream) streamed.push(...(chunk.choices[0].logprobs?.tokens ?? []));
  assert.deepEqual(streamed, tokens.slice(0, k));

  const eos = await greedy("In the beginning", 4, { ignore_eos: false, logprobs: 0, logit_bias: { [String(tiny.model.tokenizer.eosId)]: 100 } });
  assert.equal(eos.choices[0].text, "");
  assert.deepEqual(eos.choices[0].logprobs!.tokens, []);
});

test("without a prompt (absent or null) the model generates from the start of a new document, as from \"\"", async () => {
  const empty = await greedy("", 3);
  for (const body of [{ prompt: null }, {}]) {
    const r = await tiny.client.completions.create({ model: tiny.model.name, max_tokens: 3, temperature: 0, ignore_eos: true, ...body } as never);
    assert.equal(r.choices[0].text, empty.choices[0].text, JSON.stringify(body));
    assert.deepEqual(r.usage, empty.usage);
  }
});

test("logprobs as OpenAI's: the sampled token is always in its top_logprobs (logprobs: 0 gives just it)", async () => {
  const zero = await greedy("Numbers:", 5, { logprobs: 0 });
  const lp0 = zero.choices[0].logprobs!;
  assert.equal(lp0.top_logprobs!.length, 5);
  lp0.top_logprobs!.forEach((top, i) => assert.deepEqual(top, { [lp0.tokens![i]]: lp0.token_logprobs![i] }));

  // Sampled (not greedy) from a near-uniform model: the sampled token is seldom the most likely one.
  const sampled = await tiny.client.completions.create({
    model: tiny.model.name, prompt: "Random:", max_tokens: 12, temperature: 1, seed: 3, ignore_eos: true, logprobs: 1,
  } as never);
  const lp = sampled.choices[0].logprobs!;
  let extra = 0;
  lp.top_logprobs!.forEach((top, i) => {
    assert.equal(top[lp.tokens![i]], lp.token_logprobs![i], `position ${i}: ${JSON.stringify(top)}`);
    const n = Object.keys(top).length;
    assert.ok(n === 1 || n === 2, `logprobs + 1 entries at most: ${JSON.stringify(top)}`);
    if (n === 2) extra++;
  });
  assert.ok(extra > 0, "some sampled token was not the most likely one and was added");
});

test("text_offset indexes the returned text, also after characters split over several tokens", async () => {
  const prompt = "日本語 and ☕ then";
  const promptIds = tiny.model.tokenizer.encode(prompt);
  // Every character of 日本語 (and ☕) is two tokens that each decode to U+FFFD alone.
  assert.deepEqual(promptIds.slice(0, 6).map((id) => tiny.model.tokenizer.tokenText(id)), Array(6).fill("\uFFFD"));
  // Generated text with split characters too: only the two tokens of 日 are likely.
  const bias = Object.fromEntries(tiny.model.tokenizer.encode("日").map((id) => [String(id), 100]));
  const ask = (extra: Record<string, unknown>) => tiny.client.completions.create({
    model: tiny.model.name, prompt, max_tokens: 10, temperature: 1, seed: 1, ignore_eos: true, echo: true, logprobs: 0,
    logit_bias: bias, ...extra,
  } as never);
  const r = await ask({});
  const text = r.choices[0].text;
  assert.ok(text.startsWith(prompt) && text.length > prompt.length);
  const { tokens, text_offset: offsets } = r.choices[0].logprobs!;
  assert.equal(tokens!.length, promptIds.length + 10);
  assert.deepEqual(offsets!.slice(0, 6), [0, 0, 1, 1, 2, 2], "the two tokens of a character start where it starts");
  let whole = 0;
  tokens!.forEach((token, i) => {
    const at = offsets![i];
    assert.ok(i === 0 || at >= offsets![i - 1]);
    assert.ok(at < text.length);
    if (token.includes("\uFFFD")) {
      // Its text up to the bytes of a split character, then that character.
      const head = token.slice(0, token.indexOf("\uFFFD"));
      assert.equal(text.slice(at, at + head.length), head, `token ${i} ${JSON.stringify(token)} at ${at}`);
      assert.ok(text.codePointAt(at + head.length)! > 127, `token ${i} (part of a character) points at one: ${JSON.stringify(text.slice(at))}`);
    } else {
      assert.equal(text.slice(at, at + token.length), token, `token ${i} ${JSON.stringify(token)} at ${at}`);
      whole++;
    }
  });
  assert.ok(whole >= 2, "the tokens after the split characters are checked");
  assert.ok(text.slice(prompt.length).includes("日"), JSON.stringify(text));

  // Streamed: the same offsets.
  const stream = (await ask({ stream: true })) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const streamed: number[] = [];
  let streamedText = "";
  for await (const chunk of stream) {
    streamedText += chunk.choices[0].text;
    streamed.push(...(chunk.choices[0].logprobs?.text_offset ?? []));
  }
  assert.equal(streamedText, text);
  assert.deepEqual(streamed, offsets);
});
