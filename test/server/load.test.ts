// Bounded load on loopback: 32 concurrent streaming clients over 16 slots each get a complete,
// well-formed stream whose greedy text equals the text of the same request served alone; /metrics
// adds up. Clients that go away mid-request free their slots and leave the other streams unharmed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { eventually, http, metrics, useTinyServer } from "./helpers.js";

const SLOTS = 16;
const CLIENTS = 32;
const TOKENS = 8;

const tiny = useTinyServer("peaked", SLOTS, { queueSize: 64 });

const promptOf = (i: number) => `Client number ${i} asks:${" more".repeat(i % 5)}`;

function request(i: number, extra: Record<string, unknown> = {}) {
  return { model: tiny.model.name, prompt: promptOf(i), max_tokens: TOKENS, temperature: 0, ignore_eos: true, ...extra };
}

interface StreamResult {
  text: string;
  finish: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function streamOne(i: number): Promise<StreamResult> {
  const stream = (await tiny.client.completions.create(
    request(i, { stream: true, stream_options: { include_usage: true } }) as never,
  )) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  let text = "";
  let finish: string | null = null;
  let usage;
  let id: string | undefined;
  for await (const chunk of stream) {
    id ??= chunk.id;
    assert.equal(chunk.id, id, "one id per stream");
    assert.equal(chunk.object, "text_completion");
    if (chunk.usage) {
      assert.deepEqual(chunk.choices, [], "the usage chunk comes alone");
      usage = chunk.usage;
      continue;
    }
    assert.equal(usage, undefined, "nothing after the usage chunk");
    assert.equal(chunk.choices.length, 1);
    assert.equal(chunk.choices[0].index, 0);
    assert.equal(finish, null, "nothing after finish_reason");
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason;
  }
  assert.ok(usage, "the stream ended with usage");
  return { text, finish, usage };
}

test(`${CLIENTS} concurrent streaming clients: complete streams, the same greedy text as alone, metrics add up`, async () => {
  const before = await metrics(tiny.server);
  // Each request alone first: the reference.
  const alone: string[] = [];
  for (let i = 0; i < CLIENTS; i++) alone.push((await tiny.client.completions.create(request(i) as never)).choices[0].text);

  const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => streamOne(i)));
  let promptTokens = 0;
  let completionTokens = 0;
  results.forEach((r, i) => {
    assert.equal(r.text, alone[i], `client ${i}: batched text differs from the text served alone`);
    assert.equal(r.finish, "length");
    assert.equal(r.usage.completion_tokens, TOKENS);
    assert.equal(r.usage.prompt_tokens, tiny.model.tokenizer.encode(promptOf(i)).length);
    promptTokens += r.usage.prompt_tokens;
    completionTokens += r.usage.completion_tokens;
  });

  const after = await metrics(tiny.server);
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  // The references and the streams: 2 × CLIENTS requests.
  assert.equal(delta('phi2_requests_total{endpoint="/v1/completions",status="200"}'), 2 * CLIENTS);
  assert.equal(delta('phi2_sequences_total{finish_reason="length"}'), 2 * CLIENTS);
  assert.equal(delta("phi2_prompt_tokens_total"), 2 * promptTokens);
  assert.equal(delta("phi2_prefill_tokens_total") + delta("phi2_prompt_cache_tokens_total"), 2 * promptTokens);
  assert.equal(delta("phi2_generation_tokens_total"), 2 * completionTokens);
  assert.equal(delta("phi2_time_to_first_token_seconds_count"), 2 * CLIENTS);
  assert.equal(delta("phi2_request_duration_seconds_count"), 2 * CLIENTS);
  assert.equal(delta("phi2_queue_wait_seconds_count"), 2 * CLIENTS);
  assert.equal(after.get("phi2_queue_depth"), 0);
  assert.equal(after.get("phi2_active_sequences"), 0);
  // The streams really ran together: some forward passes carried all 16 slots.
  assert.ok(delta('phi2_batch_sequences_bucket{le="8"}') < delta("phi2_batch_sequences_count"), "batches of more than 8 sequences");
  assert.ok(delta("phi2_forward_steps_total") < 2 * CLIENTS * TOKENS, "fewer steps than tokens");
});

test("a client that aborts mid-stream frees its slot; the other streams are unharmed", async () => {
  const before = await metrics(tiny.server);
  const alone = await Promise.all([0, 1, 2, 3].map(async (i) => (await tiny.client.completions.create(request(i) as never)).choices[0].text));
  const controller = new AbortController();
  const victim = (async () => {
    const stream = (await tiny.client.completions.create(
      request(40, { stream: true, max_tokens: 200 }) as never,
      { signal: controller.signal },
    )) as unknown as AsyncIterable<unknown>;
    let chunks = 0;
    // The openai client ends the iteration quietly when its signal aborts.
    for await (const _ of stream) if (++chunks === 3) controller.abort();
    return chunks;
  })();
  const others = await Promise.all([0, 1, 2, 3].map((i) => streamOne(i)));
  others.forEach((r, i) => assert.equal(r.text, alone[i]));
  // The client may still hand out events it had already read in the same network chunk (seen once
  // under full CI load: 4); without the abort the stream would run to its 200 tokens.
  const victimChunks = await victim;
  assert.ok(victimChunks >= 3 && victimChunks < 200, `the stream ended at the abort (${victimChunks} chunks)`);

  // A non-streamed request whose client leaves is ended too.
  const leaving = new AbortController();
  const gone = fetch(`${tiny.server.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "leaving", max_tokens: 200, ignore_eos: true }),
    signal: leaving.signal,
  }).catch((err: Error) => err.name);
  await eventually(async () => (await http(tiny.server, "GET", "/health")).json.slots_processing > 0, 5000, "the request to start");
  leaving.abort();
  assert.equal(await gone, "AbortError");

  await eventually(async () => (await metrics(tiny.server)).get('phi2_sequences_total{finish_reason="abort"}') === (before.get('phi2_sequences_total{finish_reason="abort"}') ?? 0) + 2, 5000, "two aborted sequences");
  const after = await metrics(tiny.server);
  assert.equal(after.get("phi2_active_sequences"), 0, "every slot is free again");
  const generated = after.get("phi2_generation_tokens_total")! - before.get("phi2_generation_tokens_total")!;
  assert.ok(generated < 8 * TOKENS + 200, `the aborted sequences stopped early (${generated} tokens in all)`);
  // The freed slots serve new work at once.
  const next = await tiny.client.completions.create(request(5) as never);
  assert.equal(next.choices[0].finish_reason, "length");
});

test("filters that leave only the top token make sampling at temperature 1 greedy, whatever the seed", async () => {
  const ask = async (extra: Record<string, unknown>) =>
    (await tiny.client.completions.create({ model: tiny.model.name, prompt: "Hello there", max_tokens: 12, ignore_eos: true, ...extra } as never))
      .choices[0].text;
  const greedy = await ask({ temperature: 0 });
  for (const filter of [{ top_k: 1 }, { top_p: 1e-6 }, { min_p: 1 }]) {
    for (const seed of [1, 2]) assert.equal(await ask({ temperature: 1, seed, ...filter }), greedy, JSON.stringify(filter));
  }
});
