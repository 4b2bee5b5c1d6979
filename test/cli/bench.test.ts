// phi2 bench: the timing (measureThroughput, against a fake engine and a fake clock), the weight summary
// (against parameter counts worked out from config.json), and the command as a user runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel, type Engine, type ForwardItem, type PhiConfig } from "../../src/index.js";
import { measureThroughput, benchTokenIds } from "../../src/model/throughput.js";
import { phi2, phi2Fails } from "../helpers/cli.js";
import { testModel } from "../helpers/test-models.js";

/** An engine whose passes cost, on a fake clock, 1 ms each plus perToken ms per token. */
class ClockedEngine implements Engine {
  readonly slots = 1;
  readonly threads = 1;
  readonly failure = undefined;
  readonly calls: ForwardItem[] = [];
  clock = 0;
  perToken = 2;
  constructor(readonly contextLength: number, readonly config = { vocab_size: 51200 } as PhiConfig) {}
  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    for (const i of items) {
      this.calls.push({ ...i, tokens: [...i.tokens] });
      this.clock += 1 + this.perToken * i.tokens.length;
    }
    return items.map(() => new Float32Array(this.config.vocab_size));
  }
  async dispose(): Promise<void> {}
}

test("measureThroughput: a warm-up token, then pp as one pass and tg one token at a time, from position 0, timed per run", async () => {
  const engine = new ClockedEngine(64);
  const heard: string[] = [];
  const results = await measureThroughput(engine, {
    promptTokens: [16], genTokens: [4], repetitions: 3,
    // from the end of the first pp run on, tokens cost 4 ms instead of 2: the runs differ
    now: () => {
      if (engine.calls.length === 2) engine.perToken = 4;
      return engine.clock;
    },
  }, (r) => heard.push(r.test));
  const ids = benchTokenIds(16, 51200);
  // warm-up
  assert.deepEqual(engine.calls[0], { slot: 0, tokens: [ids[0]], startPos: 0 });
  // pp16 × 3: the whole prompt in one pass at position 0
  for (let r = 1; r <= 3; r++) assert.deepEqual(engine.calls[r], { slot: 0, tokens: ids, startPos: 0 });
  // tg4 × 3: one token per pass, positions 0..3
  const tg = engine.calls.slice(4);
  assert.equal(tg.length, 12);
  tg.forEach((c, i) => assert.deepEqual(c, { slot: 0, tokens: [ids[i % 4]], startPos: i % 4 }));
  assert.deepEqual(heard, ["pp16", "tg4"]);
  const [pp, gen] = results;
  // pp: run 1 at 2 ms/token (1 + 32 ms), runs 2 and 3 at 4 ms/token (1 + 64 ms)
  assert.equal(pp!.test, "pp16");
  assert.deepEqual(pp!.tokPerS, [16 / 0.033, 16 / 0.065, 16 / 0.065]);
  const mean = (16 / 0.033 + 2 * 16 / 0.065) / 3;
  assert.ok(Math.abs(pp!.mean - mean) < 1e-9);
  const sd = Math.sqrt(((16 / 0.033 - mean) ** 2 + 2 * (16 / 0.065 - mean) ** 2) / 2);
  assert.ok(Math.abs(pp!.stddev - sd) < 1e-9);
  // tg: 4 passes of 1 + 4 ms each
  assert.equal(gen!.test, "tg4");
  assert.deepEqual(gen!.tokPerS, [4 / 0.02, 4 / 0.02, 4 / 0.02]);
  assert.equal(gen!.stddev, 0);
});

test("measureThroughput: a test of 0 tokens is skipped; a context too small or no repetitions is refused", async () => {
  const engine = new ClockedEngine(32);
  const only = await measureThroughput(engine, { promptTokens: [0], genTokens: [5], repetitions: 1, now: () => engine.clock });
  assert.deepEqual(only.map((r) => r.test), ["tg5"]);
  await assert.rejects(measureThroughput(engine, { promptTokens: [33], genTokens: [0], repetitions: 1 }), /need 33 tokens of context, the engine has 32/);
  await assert.rejects(measureThroughput(engine, { promptTokens: [8], genTokens: [], repetitions: 0 }), /repetitions must be a positive integer/);
});

test("measureThroughput: several sizes run in the order given, pp tests first", async () => {
  const engine = new ClockedEngine(32);
  const r = await measureThroughput(engine, { promptTokens: [8, 4], genTokens: [3, 2], repetitions: 1, now: () => engine.clock });
  assert.deepEqual(r.map((x) => x.test), ["pp8", "pp4", "tg3", "tg2"]);
  // warm-up, pp8, pp4, then 3 + 2 single tokens
  assert.deepEqual(engine.calls.map((c) => c.tokens.length), [1, 8, 4, 1, 1, 1, 1, 1]);
  assert.deepEqual(engine.calls.slice(3).map((c) => c.startPos), [0, 1, 2, 0, 1]);
});

/** Phi-2's parameters from config.json alone: embedding, per layer ln + q/k/v + dense + fc1 + fc2, final ln, lm_head. */
function paramsFromConfig(dir: string): { params: number; matrices: Array<[rows: number, cols: number]>; vectors: number; embed: number } {
  const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const hd = C / c.num_attention_heads, kv = (c.num_key_value_heads ?? c.num_attention_heads) * hd;
  const matrices: Array<[number, number]> = [];
  let vectors = 2 * C + V; // final ln, lm_head bias
  for (let l = 0; l < c.num_hidden_layers; l++) {
    matrices.push([C, C], [kv, C], [kv, C], [C, C], [I, C], [C, I]);
    vectors += 2 * C + C + 2 * kv + C + I + C;
  }
  matrices.push([V, C]); // lm_head
  const params = V * C + matrices.reduce((a, [r, k]) => a + r * k, 0) + vectors;
  return { params, matrices, vectors, embed: V * C };
}

test("the weight summary: parameters and bytes as held, f32 and quantized at load to q8_0", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const want = paramsFromConfig(dir);
  const f32 = await loadModel(dir, { threads: 1, contextLength: 16 });
  try {
    assert.deepEqual(f32.weights, { params: want.params, bytes: 4 * want.params, types: "F32" });
  } finally {
    await f32.dispose();
  }
  const q8 = await loadModel(dir, { threads: 1, contextLength: 16, quant: "q8_0" });
  try {
    // matrices in Q8_0 (34 bytes per 32 values); the embedding stays f32 on the main thread; vectors f32
    const q8Bytes = want.matrices.reduce((a, [r, k]) => a + r * (k / 32) * 34, 0);
    assert.equal(q8.weights.params, want.params);
    assert.equal(q8.weights.bytes, q8Bytes + 4 * want.embed + 4 * want.vectors);
    assert.equal(q8.weights.types, "Q8_0+F32");
  } finally {
    await q8.dispose();
  }
});

test("phi2 bench: a llama-bench table, or JSON with every run; bad values are named", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const { params } = paramsFromConfig(dir);
  const json = await phi2("bench", "--model", dir, "-p", "16", "-n", "8", "-r", "2", "-t", "1", "--kv-type", "f32", "--json");
  const r = JSON.parse(json.stdout);
  assert.equal(r.params, params);
  assert.equal(r.types, "F32");
  assert.equal(r.threads, 1);
  assert.equal(r.kvType, "f32");
  assert.ok(r.loadS > 0 && r.peakRssBytes > 0);
  assert.deepEqual(r.results.map((x: { test: string }) => x.test), ["pp16", "tg8"]);
  for (const x of r.results) {
    assert.equal(x.tokPerS.length, 2);
    for (const v of x.tokPerS) assert.ok(Number.isFinite(v) && v > 0, `${x.test}: ${v} tokens/s`);
    assert.ok(Math.abs(x.mean - (x.tokPerS[0] + x.tokPerS[1]) / 2) < 1e-6 * x.mean);
  }

  const table = await phi2("bench", "--model", dir, "-p", "8,4", "-n", "4", "-r", "1", "-t", "2");
  const lines = table.stdout.trim().split("\n");
  assert.equal(lines[0], "| model | type | size | params | threads | kv | test | t/s |");
  assert.equal(lines.length, 5);
  assert.match(lines[2]!, /\| F32 \| 68\.2 MB \| 17\.05 M \| 2 \| f16 \| pp8 \| [\d.]+ ± 0\.00 \|$/);
  assert.match(lines[3]!, /\| pp4 \| [\d.]+ ± 0\.00 \|$/);
  assert.match(lines[4]!, /\| tg4 \| [\d.]+ ± 0\.00 \|$/);
  assert.match(table.stderr, /load [\d.]+ s \| peak RSS [\d.]+ GB/);
  assert.equal(params, 17053440); // the size and params cells above are this model's

  const help = (await phi2("bench", "--help")).stdout;
  for (const text of ["--prompt-tokens <n,...>", "--gen-tokens <n,...>", "--repetitions", "--json", "empty KV cache", "(default: 512)"]) {
    assert.ok(help.includes(text), `--help mentions ${text}`);
  }

  assert.match(await phi2Fails("bench", "--model", dir, "-p", "0", "-n", "0"), /nothing to measure/);
  assert.match(await phi2Fails("bench", "--model", dir, "-p", "8,x"), /--prompt-tokens must be an integer in 0\.\.1048576, got "x"/);
  assert.match(await phi2Fails("bench", "--model", dir, "-p", "3000", "-n", "8"), /2048.*--prompt-tokens 3000/);
  assert.match(await phi2Fails("bench", "--model", dir, "-p", "16", "-c", "8"), /--ctx-size 8 is too small/);
  assert.match(await phi2Fails("bench", "--model", dir, "-r", "0"), /--repetitions must be an integer in 1\.\.1000/);
});
