// The chat session's bookkeeping, against a scripted engine (it emits chosen tokens and records what
// it is fed) and the real phi-2 tokenizer: each turn feeds only the new tokens, the ids always spell
// the rendered transcript, and the transcript is rebuilt when it must be.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatSession, renderTranscript } from "../../src/cli/chat-session.js";
import { applyParams, runCommand } from "../../src/cli/chat.js";
import type { Engine, ForwardItem, GenerationOptions, LoadedModel, PhiConfig } from "../../src/index.js";
import { Phi2Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { phi2TokenizerConfig, phi2TokenizerJson } from "../../src/tokenizer/files.js";

const tokenizer = Phi2Tokenizer.fromJson(phi2TokenizerJson(), phi2TokenizerConfig());
const EOS = tokenizer.eosId;

/** Emits the scripted tokens (greedy picks a one-hot logit), then EOS; records every forward item. */
class ScriptedEngine implements Engine {
  readonly config = { vocab_size: 51200 } as PhiConfig;
  readonly slots = 1;
  readonly threads = 1;
  readonly failure = undefined;
  readonly calls: ForwardItem[] = [];
  script: number[] = [];
  onForward?: (n: number) => void;
  constructor(readonly contextLength = 2048) {}
  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    this.calls.push(...items.map((i) => ({ ...i, tokens: [...i.tokens] })));
    this.onForward?.(this.calls.length);
    const logits = new Float32Array(51200).fill(-20);
    logits[this.script.length ? this.script.shift()! : EOS] = 20;
    return [logits];
  }
  async dispose(): Promise<void> {}
}

function session(engine: ScriptedEngine, format: "chat" | "qa" | "code" = "chat", params: GenerationOptions = {}) {
  const model = { engine, tokenizer } as unknown as LoadedModel;
  return new ChatSession(model, { format, params: { temperature: 0, ...params } });
}

async function say(s: ChatSession, message: string, signal?: AbortSignal) {
  const it = s.reply(message, signal);
  let text = "";
  for (;;) {
    const n = await it.next();
    if (n.done) return { text, stats: n.value };
    text += n.value.text;
  }
}

/** The ids the engine holds in its slot after the calls (replaying startPos overwrites). */
function slotContents(calls: ForwardItem[]): number[] {
  let slot: number[] = [];
  for (const c of calls) slot = [...slot.slice(0, c.startPos), ...c.tokens];
  return slot;
}

test("a reply that ended at the stop string keeps its tokens; the next turn feeds only the new text", async () => {
  const engine = new ScriptedEngine();
  const s = session(engine);
  engine.script = tokenizer.encode(" Hi there.\nAlice:");
  const first = await say(s, "Hello");
  assert.equal(first.text, " Hi there.");
  assert.equal(first.stats.finishReason, "stop");
  const turn1Prompt = tokenizer.encode("Alice: Hello\nBob:");
  assert.deepEqual(engine.calls[0].tokens, turn1Prompt);

  const before = engine.calls.length;
  engine.script = tokenizer.encode(" Fine.");
  const second = await say(s, "How are you?");
  const call = engine.calls[before];
  const generated = tokenizer.encode(" Hi there.\nAlice:");
  // Everything but the last sampled token (":") is already in the cache.
  assert.equal(call.startPos, turn1Prompt.length + generated.length - 1);
  assert.deepEqual(call.tokens, [generated.at(-1)!, ...tokenizer.encode(" How are you?\nBob:")]);
  assert.equal(second.stats.fedTokens, call.tokens.length);
  // The cache spells exactly the transcript.
  const expected = renderTranscript("chat", "", [{ user: "Hello", reply: " Hi there." }], "How are you?");
  assert.equal(tokenizer.decode(slotContents(engine.calls).slice(0, call.startPos + call.tokens.length)), expected);
});

test("after an EOS the EOS is dropped and the turn separator is added", async () => {
  const engine = new ScriptedEngine();
  const s = session(engine, "qa");
  engine.script = [...tokenizer.encode(" Paris."), EOS];
  assert.equal((await say(s, "Capital of France?")).stats.finishReason, "eos");
  const before = engine.calls.length;
  engine.script = [...tokenizer.encode(" Rome."), EOS];
  await say(s, "Capital of Italy?");
  const call = engine.calls[before];
  const turn1 = tokenizer.encode("Instruct: Capital of France?\nOutput:");
  assert.equal(call.startPos, turn1.length + tokenizer.encode(" Paris.").length);
  assert.equal(tokenizer.decode(call.tokens), "\nInstruct: Capital of Italy?\nOutput:");
  assert.ok(!slotContents(engine.calls).slice(0, call.startPos).includes(EOS));
});

test("a reply stopped midway stays in the conversation; /system re-reads it all; /reset forgets it", async () => {
  const engine = new ScriptedEngine();
  const s = session(engine);
  const ac = new AbortController();
  engine.script = tokenizer.encode(" one two three four five six seven eight");
  engine.onForward = (n) => { if (n === 4) ac.abort(); };
  const cut = await say(s, "Count", ac.signal);
  engine.onForward = undefined;
  assert.equal(cut.stats.finishReason, "abort");
  assert.ok(cut.text.length > 0 && " one two three four five six seven eight".startsWith(cut.text));

  engine.script = [EOS];
  let before = engine.calls.length;
  await say(s, "Go on");
  let slot = slotContents(engine.calls);
  assert.equal(tokenizer.decode(slot), renderTranscript("chat", "", [{ user: "Count", reply: cut.text }], "Go on"));

  assert.match(runCommand(s, "/system You are a helpful assistant."), /system text set/);
  before = engine.calls.length;
  engine.script = [EOS];
  await say(s, "Again");
  assert.equal(engine.calls[before].startPos, 0, "the system text comes first: everything is fed again");
  slot = slotContents(engine.calls);
  assert.equal(tokenizer.decode(slot), renderTranscript("chat", "You are a helpful assistant.", s.history.slice(0, 2), "Again"));

  runCommand(s, "/reset");
  assert.equal(s.history.length, 0);
  before = engine.calls.length;
  engine.script = [EOS];
  await say(s, "Hi");
  const systemIds = tokenizer.encode("You are a helpful assistant.");
  assert.ok(engine.calls[before].startPos >= systemIds.length - 1, "the system preamble is reused from the cache");
  assert.equal(tokenizer.decode(slotContents(engine.calls)), renderTranscript("chat", "You are a helpful assistant.", [], "Hi"));
});

test("a reply whose reader stops early (or that throws) leaves nothing stale: the next turn's ids are what the slot holds", async () => {
  const engine = new ScriptedEngine();
  const s = session(engine);
  engine.script = [EOS];
  await say(s, "Hi");
  runCommand(s, "/reset");
  // a different prompt overwrites the slot after the shared preamble; its reader leaves after one piece
  engine.script = tokenizer.encode(" yes no maybe");
  const it = s.reply("Something completely different");
  assert.equal((await it.next()).done, false);
  await it.return(undefined as never);
  runCommand(s, "/reset");
  engine.script = [EOS];
  await say(s, "Hi");
  assert.equal(tokenizer.decode(slotContents(engine.calls)), renderTranscript("chat", "", [], "Hi"));
});

test("when the context is full the oldest turns are dropped and the rest re-rendered", async () => {
  const engine = new ScriptedEngine(96);
  const s = session(engine, "chat", { maxTokens: 8 });
  for (let i = 0; i < 8; i++) {
    engine.script = [...tokenizer.encode(` Reply number ${i} is here.`), EOS];
    await say(s, `Message number ${i}, a few words long.`);
    const slot = slotContents(engine.calls);
    assert.ok(slot.length <= 96);
    assert.equal(tokenizer.decode(slot.slice(0, slot.length)).startsWith(renderTranscript("chat", "", s.history.slice(0, -1), s.history.at(-1)!.user)), true);
  }
  assert.ok(s.history.length < 8, `history trimmed to ${s.history.length}`);
  assert.equal(s.history.at(-1)!.user, "Message number 7, a few words long.");
  engine.script = [EOS];
  await assert.rejects(say(s, "x ".repeat(200)), /does not fit the 96-token context/);
});

test("/params shows and sets sampling with checked values; /format switches", () => {
  const s = session(new ScriptedEngine(), "chat", { temperature: 0.8, topK: 40, seed: 3 });
  const out = runCommand(s, "/params temperature=0.2 top_k=5 seed=random max_tokens=64");
  assert.match(out, /temperature=0\.2 top_k=5 .*max_tokens=64 seed=random/);
  assert.deepEqual([s.params.temperature, s.params.topK, s.params.seed, s.params.maxTokens], [0.2, 5, undefined, 64]);
  assert.match(out, /stop=\["\\nAlice:"/);
  assert.throws(() => applyParams({}, "top_p=2"), /top_p must be a number in 0\.\.1, got "2"/);
  assert.throws(() => applyParams({}, "top_k=1.5"), /top_k must be an integer/);
  assert.throws(() => applyParams({}, "warmth=1"), /unknown parameter "warmth"/);
  assert.match(runCommand(s, "/params top_p=2"), /^error: top_p/);
  assert.equal(s.params.topP, undefined, "a bad value changes nothing");
  assert.match(runCommand(s, "/format sonnet"), /unknown format/);
  assert.equal(runCommand(s, "/format code"), "format: code");
  assert.ok(s.stops.includes("\ndef"));
  assert.equal(runCommand(s, "/quit"), "exit");
});
