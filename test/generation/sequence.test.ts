import { test } from "node:test";
import assert from "node:assert/strict";
import type { Engine, ForwardItem } from "../../src/model/engine.js";
import { PHI2_CONFIG } from "../../src/model/config.js";
import { phi2TokenizerJson, phi2TokenizerConfig } from "../../src/tokenizer/files.js";
import { Phi2Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { GenerationSequence } from "../../src/generation/sequence.js";
import { generate, generateText } from "../../src/generation/generate.js";
import type { GeneratedPiece } from "../../src/generation/types.js";

const tok = Phi2Tokenizer.fromJson(phi2TokenizerJson(), phi2TokenizerConfig());
const VOCAB = PHI2_CONFIG.vocab_size; // 51200 rows: 905 padding rows past the real 50295 tokens

/**
 * A fake model that "wants" to continue every prompt with a fixed script of tokens: the logits after
 * position p favour script[p + 1 - promptLength]. It keeps each slot's tokens like a KV cache and checks
 * that it is fed contiguously. Its padding rows (ids >= 50295) get the highest logits of all, so a sampler
 * that does not mask them would pick them.
 */
class ScriptedEngine implements Engine {
  readonly config = PHI2_CONFIG;
  readonly threads = 1;
  readonly failure = undefined;
  readonly cache: number[][];
  calls: ForwardItem[] = [];
  constructor(
    private readonly promptLength: number,
    private readonly script: number[],
    readonly contextLength = 2048,
    readonly slots = 2,
  ) {
    this.cache = Array.from({ length: slots }, () => []);
  }
  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    return items.map((item) => {
      this.calls.push({ ...item, tokens: [...item.tokens] });
      const cache = this.cache[item.slot];
      assert.ok(item.startPos <= cache.length, `fed at ${item.startPos} but the slot holds ${cache.length}`);
      assert.ok(item.startPos + item.tokens.length <= this.contextLength, "fed past the context");
      cache.length = item.startPos;
      cache.push(...item.tokens);
      const next = this.script[cache.length - this.promptLength];
      const logits = new Float32Array(VOCAB);
      logits.fill(20, tok.size); // padding rows: must never be sampled
      if (next !== undefined) logits[next] = 10;
      return logits;
    });
  }
  async dispose(): Promise<void> {}
}

async function collect(engine: Engine, prompt: number[], options: Parameters<typeof generate>[3] = {}) {
  const pieces: GeneratedPiece[] = [];
  const result = await generateText(engine, tok, prompt, { temperature: 0, ...options }, (p) => pieces.push(p));
  return { pieces, result };
}

const PROMPT = tok.encode("Instruct: Say hello.\nOutput:");

test("greedy generation follows the model to EOS; EOS text is not output", async () => {
  const answer = " Hello, world! 👋 你好";
  const script = [...tok.encode(answer), tok.eosId];
  const engine = new ScriptedEngine(PROMPT.length, script);
  const { pieces, result } = await collect(engine, PROMPT);
  assert.equal(result.text, answer);
  assert.equal(pieces.map((p) => p.text).join(""), answer);
  for (const p of pieces) assert.ok(!p.text.includes("\uFFFD") && p.text.length > 0);
  assert.equal(result.finishReason, "eos");
  assert.deepEqual(result.ids, script);
  assert.equal(result.completionTokens, script.length);
  assert.equal(result.promptTokens, PROMPT.length);
  // One prefill with the whole prompt, then one token per step.
  assert.deepEqual(engine.calls[0], { slot: 0, tokens: PROMPT, startPos: 0 });
  assert.equal(engine.calls.length, script.length);
  assert.ok(engine.calls.slice(1).every((c) => c.tokens.length === 1));
  // The slot holds what the result says it holds (the final EOS was never fed).
  assert.deepEqual(result.tokens, engine.cache[0]);
  assert.deepEqual(result.tokens, [...PROMPT, ...script.slice(0, -1)]);
  assert.ok(result.timings.promptMs >= 0 && result.timings.genMs >= 0);
  assert.ok(result.timings.promptTokensPerSec >= 0 && result.timings.genTokensPerSec >= 0);
});

test("a stop string split over tokens ends with finish 'stop' and is not output", async () => {
  const script = tok.encode(" Hi there.\nAlice: and more\nAlice: again");
  const engine = new ScriptedEngine(PROMPT.length, script);
  const { pieces, result } = await collect(engine, PROMPT, { stop: ["\nAlice:"] });
  assert.equal(result.text, " Hi there.");
  const seq = new GenerationSequence(tok, PROMPT, { temperature: 0, stop: ["zzz", "\nAlice:"] }, 2048);
  const fake = new ScriptedEngine(PROMPT.length, script);
  while (!seq.done) seq.accept((await fake.forward([{ slot: 0, ...seq.nextInput() }]))[0]);
  assert.equal(seq.matchedStop, "\nAlice:");
  assert.equal(pieces.map((p) => p.text).join(""), " Hi there.");
  assert.equal(result.finishReason, "stop");
  assert.ok(result.completionTokens < script.length);
});

test("maxTokens ends with finish 'length' after exactly that many tokens", async () => {
  const script = tok.encode(" one two three four five six");
  const { result } = await collect(new ScriptedEngine(PROMPT.length, script), PROMPT, { maxTokens: 3 });
  assert.equal(result.finishReason, "length");
  assert.equal(result.completionTokens, 3);
  assert.equal(result.text, tok.decode(script.slice(0, 3)));
});

test("a full context ends with finish 'context' and never feeds past it", async () => {
  const script = tok.encode(" a b c d e f g h i j k l m n o p");
  const contextLength = PROMPT.length + 4;
  const engine = new ScriptedEngine(PROMPT.length, script, contextLength);
  const { result } = await collect(engine, PROMPT);
  assert.equal(result.finishReason, "context");
  assert.equal(result.completionTokens, 5); // 4 fed back + the last one sampled into the final position
  assert.equal(engine.cache[0].length, contextLength);
});

test("prompts that are empty or longer than the context are refused clearly", () => {
  assert.throws(() => new GenerationSequence(tok, [], {}, 10), /prompt is empty/);
  assert.throws(
    () => new GenerationSequence(tok, new Array(11).fill(1), {}, 10),
    /the prompt has 11 tokens but the context holds only 10/,
  );
  assert.throws(() => new GenerationSequence(tok, [50295], {}, 10), /prompt token id 50295/);
  assert.throws(() => new GenerationSequence(tok, [1], { maxTokens: 0 }, 10), /maxTokens must be a positive integer/);
});

test("padding rows of lm_head are never sampled, greedy or not", async () => {
  const script = tok.encode(" ok ok ok ok");
  const greedy = await collect(new ScriptedEngine(PROMPT.length, script), PROMPT, { maxTokens: 4 });
  assert.deepEqual(greedy.result.ids, script);
  const hot = await collect(new ScriptedEngine(PROMPT.length, script), PROMPT, { temperature: 1.5, seed: 1, maxTokens: 30 });
  assert.ok(hot.result.ids.every((id) => id < tok.size));
});

test("prefix reuse feeds only the part of the prompt the slot does not hold", () => {
  const cached = [...PROMPT.slice(0, 5), 999, 998];
  const seq = new GenerationSequence(tok, PROMPT, { cachedTokens: cached }, 2048);
  assert.equal(seq.reusedTokens, 5);
  assert.deepEqual(seq.nextInput(), { tokens: PROMPT.slice(5), startPos: 5 });
  // The whole prompt cached: the last token is still fed, its logits are needed.
  const again = new GenerationSequence(tok, PROMPT, { cachedTokens: [...PROMPT, 7] }, 2048);
  assert.deepEqual(again.nextInput(), { tokens: PROMPT.slice(-1), startPos: PROMPT.length - 1 });
});

test("a conversation continues in the same slot, reusing the cached tokens", async () => {
  const script = tok.encode(" Fine.");
  const engine = new ScriptedEngine(PROMPT.length, [...script, tok.eosId]);
  const first = await collect(engine, PROMPT);
  const followUp = [...first.result.tokens, ...tok.encode("\nInstruct: And you?\nOutput:")];
  const engine2Calls = engine.calls.length;
  const second = await generateText(engine, tok, followUp, { temperature: 0, maxTokens: 1, cachedTokens: first.result.tokens });
  assert.equal(second.reusedTokens, first.result.tokens.length);
  assert.equal(engine.calls[engine2Calls].startPos, first.result.tokens.length);
});

test("logprobs: every token yields a piece with its logprob and alternatives", async () => {
  const script = tok.encode("😀"); // several byte tokens, text only at the last
  assert.ok(script.length > 1);
  const engine = new ScriptedEngine(PROMPT.length, [...script, tok.eosId]);
  const { pieces } = await collect(engine, PROMPT, { logprobs: true, topLogprobs: 3 });
  assert.equal(pieces.length, script.length + 1); // the EOS step too
  const expected = 10 - Math.log(Math.exp(10) + (tok.size - 1)); // one logit 10, the other real ones 0
  pieces.forEach((p, i) => {
    assert.equal(p.id, i < script.length ? script[i] : tok.eosId);
    assert.ok(Math.abs(p.logprob!.logprob - expected) < 1e-4);
    assert.equal(p.logprob!.text, tok.tokenText(p.id));
    assert.equal(p.topLogprobs!.length, 3);
    assert.equal(p.topLogprobs![0].id, p.id);
    assert.ok(p.topLogprobs!.every((t) => t.id < tok.size));
  });
  assert.deepEqual(pieces.map((p) => p.text), [...script.slice(0, -1).map(() => ""), "😀", ""]);
});

test("stopOnEos false goes on past EOS and shows its text", async () => {
  const script = [...tok.encode(" a"), tok.eosId, ...tok.encode(" b")];
  const { result } = await collect(new ScriptedEngine(PROMPT.length, script), PROMPT, { stopOnEos: false, maxTokens: 3 });
  assert.equal(result.text, " a<|endoftext|> b");
  assert.equal(result.finishReason, "length");
});

test("aborting through the signal ends with 'abort' and stops calling the model", async () => {
  const script = tok.encode(" one two three four five six seven eight nine ten");
  const engine = new ScriptedEngine(PROMPT.length, script);
  const controller = new AbortController();
  const it = generate(engine, tok, PROMPT, { temperature: 0, signal: controller.signal });
  const texts: string[] = [];
  let result;
  for (;;) {
    const next = await it.next();
    if (next.done) {
      result = next.value;
      break;
    }
    texts.push(next.value.text);
    if (texts.length === 2) controller.abort();
  }
  assert.equal(result.finishReason, "abort");
  assert.equal(engine.calls.length, 2);
  assert.equal(result.text, texts.join(""));
});

test("a text prompt is encoded without BOS; a bad slot is refused", async () => {
  const engine = new ScriptedEngine(PROMPT.length, [tok.eosId]);
  await collect(engine, PROMPT);
  const engine2 = new ScriptedEngine(PROMPT.length, [tok.eosId]);
  await generateText(engine2, tok, "Instruct: Say hello.\nOutput:", { temperature: 0 });
  assert.deepEqual(engine2.calls[0].tokens, PROMPT);
  await assert.rejects(generateText(engine2, tok, PROMPT, { slot: 2 }), /slot must be an integer in \[0, 1\]/);
});

test("the state machine refuses out-of-order calls", () => {
  const seq = new GenerationSequence(tok, PROMPT, { temperature: 0, maxTokens: 1 }, 2048);
  assert.throws(() => seq.accept(new Float32Array(VOCAB)), /accept\(\) without nextInput/);
  seq.nextInput();
  assert.throws(() => seq.nextInput(), /nextInput\(\) called twice/);
  assert.throws(() => seq.accept(new Float32Array(10)), /logits have 10 entries/);
  const step = seq.accept(new Float32Array(VOCAB));
  assert.equal(step.finishReason, "length");
  assert.equal(seq.done, true);
  assert.throws(() => seq.nextInput(), /finished \(length\)/);
});
