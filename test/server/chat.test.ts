// POST /v1/chat/completions through the openai client: phi-2's chat rendering (checked against the
// same prompt sent to /v1/completions), response and chunk shapes, logprobs, names, stops, token limits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { http, useTinyServer } from "./helpers.js";

const tiny = useTinyServer("plain", 4);

const conversation = [
  { role: "system" as const, content: "A friendly talk." },
  { role: "user" as const, content: "Hello there" },
  { role: "assistant" as const, content: [{ type: "text" as const, text: "Hi!" }] },
  { role: "user" as const, content: "How are you?" },
];
// The model card's chat format, written out by hand: the system text as a preamble line, turns as
// "Alice: ..." / "Bob: ...", and "Bob:" left open for the model.
const rendered = "A friendly talk.\nAlice: Hello there\nBob: Hi!\nAlice: How are you?\nBob:";

async function chat(extra: Record<string, unknown> = {}) {
  return tiny.client.chat.completions.create({
    model: tiny.model.name, messages: conversation, max_tokens: 8, temperature: 0, ignore_eos: true, ...extra,
  } as never) as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

test("a chat completion renders phi-2's chat format and answers as the assistant", async () => {
  const r = await chat();
  assert.match(r.id, /^chatcmpl-[0-9a-f]{24}$/);
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, tiny.model.name);
  assert.equal(r.choices.length, 1);
  const [c] = r.choices;
  assert.equal(c.index, 0);
  assert.deepEqual(Object.keys(c.message).sort(), ["content", "refusal", "role"]);
  assert.equal(c.message.role, "assistant");
  assert.equal(c.message.refusal, null);
  assert.equal(c.logprobs, null);
  const promptTokens = tiny.model.tokenizer.encode(rendered).length;
  assert.equal(r.usage.prompt_tokens, promptTokens);
  // The same prompt through /v1/completions with the chat stop gives the same greedy answer.
  const same = await tiny.client.completions.create({
    model: tiny.model.name, prompt: rendered, max_tokens: 8, temperature: 0, ignore_eos: true, stop: ["\nAlice:"],
  } as never);
  assert.equal(c.message.content, same.choices[0].text);
  assert.equal(c.finish_reason, same.choices[0].finish_reason);
});

test("streaming: the role first, content deltas, finish_reason last, usage, [DONE]", async () => {
  const whole = await chat({ max_tokens: 10 });
  const stream = await chat({ max_tokens: 10, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const usage = chunks.pop();
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, whole.usage);
  for (const c of chunks) {
    assert.equal(c.object, "chat.completion.chunk");
    assert.equal(c.id, chunks[0].id);
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.choices.length, 1);
  }
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  assert.ok(chunks.slice(1).every((c) => c.choices[0].delta.role === undefined));
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), whole.choices[0].message.content);
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  assert.equal(chunks.at(-1).choices[0].finish_reason, whole.choices[0].finish_reason);
});

test("logprobs with top_logprobs: token, logprob, bytes and alternatives per token", async () => {
  const r = await chat({ logprobs: true, top_logprobs: 2, max_tokens: 6 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 6);
  assert.equal(content.map((t: { token: string }) => t.token).join(""), r.choices[0].message.content);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(Buffer.from(t.bytes).toString("utf8"), t.token);
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6, "greedy takes the top alternative");
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
  }
  const streamed = await chat({ logprobs: true, max_tokens: 3, stream: true });
  let tokens = 0;
  for await (const chunk of streamed) tokens += chunk.choices[0]?.logprobs?.content?.length ?? 0;
  assert.equal(tokens, 3);
});

test("speaker names can be changed per request", async () => {
  const r = await chat({ user_name: "Carol", assistant_name: "Dave" });
  const prompt = rendered.replaceAll("Alice:", "Carol:").replaceAll("Bob:", "Dave:");
  assert.equal(r.usage.prompt_tokens, tiny.model.tokenizer.encode(prompt).length);
  const same = await tiny.client.completions.create({
    model: tiny.model.name, prompt, max_tokens: 8, temperature: 0, ignore_eos: true, stop: ["\nCarol:"],
  } as never);
  assert.equal(r.choices[0].message.content, same.choices[0].text);
});

test("max_completion_tokens, max_tokens and request stops are honoured", async () => {
  const a = await chat({ max_tokens: undefined, max_completion_tokens: 5 });
  assert.equal(a.usage.completion_tokens, 5);
  assert.equal(a.choices[0].finish_reason, "length");
  const full = (await chat({ max_tokens: 16 })).choices[0].message.content as string;
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const cut = await chat({ max_tokens: 16, stop: [stop] });
  assert.equal(cut.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, "stop");
});

test("without max_tokens the answer may run to the end of the context", async () => {
  const r = await http(tiny.server, "POST", "/v1/chat/completions", {
    messages: [{ role: "user", content: "x ".repeat(100) }], temperature: 0, ignore_eos: true,
  });
  assert.equal(r.status, 200);
  assert.equal(r.json.usage.total_tokens, 256, "prompt + completion fill the 256-token context");
  assert.equal(r.json.choices[0].finish_reason, "length");
});

test("n choices with a seed differ from each other and repeat with the seed", async () => {
  const r = await chat({ n: 2, temperature: 1, seed: 9 });
  assert.deepEqual(r.choices.map((c: { index: number }) => c.index), [0, 1]);
  assert.notEqual(r.choices[0].message.content, r.choices[1].message.content);
  const again = await chat({ n: 2, temperature: 1, seed: 9 });
  assert.deepEqual(again.choices.map((c: any) => c.message.content), r.choices.map((c: any) => c.message.content)); // eslint-disable-line @typescript-eslint/no-explicit-any
  const streamed = await chat({ n: 2, temperature: 1, seed: 9, stream: true });
  const texts = ["", ""];
  for await (const chunk of streamed) for (const c of chunk.choices) texts[c.index] += c.delta.content ?? "";
  assert.deepEqual(texts, r.choices.map((c: any) => c.message.content)); // eslint-disable-line @typescript-eslint/no-explicit-any
});

/** Chat with the tokens of the chat's own stop ("\nAlice:") made likely: replies soon end on it. */
async function endsOnTheChatStop(seed: number, extra: Record<string, unknown> = {}) {
  const bias = Object.fromEntries(tiny.model.tokenizer.encode("\nAlice:").map((id) => [String(id), 11]));
  return chat({ max_tokens: 30, temperature: 1, seed, ignore_eos: false, logit_bias: bias, logprobs: true, ...extra });
}

test("logprobs.content lists exactly the tokens of the returned text: none of the stop string's or EOS's", async () => {
  let stopped = 0;
  for (let seed = 0; seed < 8; seed++) {
    const r = await endsOnTheChatStop(seed);
    const c = r.choices[0];
    const tokens = c.logprobs.content.map((t: { token: string }) => t.token);
    assert.equal(tokens.join(""), c.message.content, `seed ${seed}`);
    if (c.finish_reason !== "stop") continue;
    stopped++;
    assert.ok(tokens.length < r.usage.completion_tokens, "the stop's tokens were generated but are not listed");

    // Streamed: logprobs come with their text, and the stop's tokens are never sent.
    const stream = await endsOnTheChatStop(seed, { stream: true });
    let text = "";
    const streamedTokens: string[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const content = choice.logprobs?.content ?? [];
      if (content.length > 0) assert.ok(choice.delta.content, `a chunk with logprobs carries their text: ${JSON.stringify(choice)}`);
      text += choice.delta.content ?? "";
      streamedTokens.push(...content.map((t: { token: string }) => t.token));
    }
    assert.equal(text, c.message.content);
    assert.deepEqual(streamedTokens, tokens);
  }
  assert.ok(stopped >= 2, `${stopped} of 8 replies ended on "\\nAlice:"`);

  // A reply that is nothing but <|endoftext|>: empty content, no tokens.
  const eos = await chat({ ignore_eos: false, logprobs: true, logit_bias: { [String(tiny.model.tokenizer.eosId)]: 100 } });
  assert.equal(eos.choices[0].finish_reason, "stop");
  assert.equal(eos.choices[0].message.content, "");
  assert.deepEqual(eos.choices[0].logprobs.content, []);
  assert.equal(eos.usage.completion_tokens, 1);
});
