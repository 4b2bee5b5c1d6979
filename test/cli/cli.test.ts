// The CLI commands other checks rely on (run, eval, tokenize, detokenize), run as a user would:
// as child processes on a tiny random model, their output parsed and checked against the reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { phi2, phi2Fails, spawnPhi2, waitForOutput } from "../helpers/cli.js";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";
import { randomCommit, repoFilesFromDir, startFakeHub } from "../hub/fake-hub.js";
import { referenceLogits, referenceGreedy } from "../reference/phi-reference.js";

test("run --json: greedy text, ids and counts, equal to the reference's greedy continuation", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const { stdout, stderr } = await phi2("run", "--model", dir, "--threads", "2", "--temperature", "0", "-n", "12", "--json", "Hello world");
  const r = JSON.parse(stdout);
  assert.deepEqual(Object.keys(r).sort(), ["completion_tokens", "finish_reason", "ids", "prompt_tokens", "seed", "text", "timings"]);
  assert.equal(r.prompt_tokens, 2); // "Hello world" = [15496, 995]
  assert.equal(r.finish_reason, "length");
  assert.equal(r.completion_tokens, 12);
  const ref = referenceGreedy(dir, [15496, 995], 12, 50295);
  assert.deepEqual(r.ids, ref.tokens);
  assert.match(stderr, /load [\d.]+ s \| prompt 2 tokens, [\d.]+ tokens\/s \| generated 12 tokens, [\d.]+ tokens\/s/);
});

test("run streams text to stdout and unescapes \\n in the prompt; --format qa wraps the prompt", async () => {
  const dir = testModel({ preset: "tiny", dtype: "bf16", seed: 11, peaked: true });
  const plain = await phi2("run", "--model", dir, "--temperature", "0", "-n", "8", "--json", "Instruct: hi\\nOutput:");
  const qa = await phi2("run", "--model", dir, "--temperature", "0", "-n", "8", "--json", "--format", "qa", "hi");
  const a = JSON.parse(plain.stdout), b = JSON.parse(qa.stdout);
  assert.equal(a.prompt_tokens, b.prompt_tokens);
  assert.deepEqual(a.ids.slice(0, 3), b.ids.slice(0, 3));
  const streamed = await phi2("run", "--model", dir, "--temperature", "0", "-n", "8", "--no-default-stops", "Instruct: hi\\nOutput:");
  assert.ok(streamed.stdout.startsWith(a.text.slice(0, 5)), `streamed ${JSON.stringify(streamed.stdout)} vs ${JSON.stringify(a.text)}`);
});

for (const kv of ["default (f16)", "f32"] as const) test(`eval prints the top logits and writes all logits, equal to the reference; KV cache ${kv}`, async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 7, peaked: true });
  const out = join(tempDir(), "logits.f32");
  const ids = [464, 2068, 7586];
  const kvArgs = kv === "f32" ? ["--kv-type", "f32"] : [];
  const { stdout } = await phi2("eval", "--model", dir, "--ids", ids.join(","), "--top", "5", "--logits-out", out, "--json", ...kvArgs);
  const top = JSON.parse(stdout).top as Array<{ id: number; logit: number }>;
  // an f16 cache holds each key and value rounded to the nearest half: the reference does the same
  const ref = referenceLogits(dir, ids, undefined, kv === "f32" ? "exact" : "f16")[0]!;
  const order = Array.from(ref.keys()).sort((a, b) => ref[b]! - ref[a]!).slice(0, 5);
  assert.deepEqual(top.map((t) => t.id), order);
  const bytes = readFileSync(out);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  assert.equal(all.length, 51200);
  for (let i = 0; i < all.length; i++) assert.ok(Math.abs(all[i]! - ref[i]!) < 1e-3, `logit ${i}`);
});

test("tokenize / detokenize", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 7 });
  const t = await phi2("tokenize", "--model", dir, "--json", "Hello world");
  assert.deepEqual(JSON.parse(t.stdout), { ids: [15496, 995] });
  const d = await phi2("detokenize", "--model", dir, "15496,995");
  assert.equal(d.stdout, "Hello world\n");
});

test("bad input: one clear line naming the problem, no stack trace", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 7 });
  let err = await phi2Fails("run", "--model", "/nonexistent/phi-2", "hi");
  assert.match(err, /nonexistent/);
  assert.doesNotMatch(err, /at .*\.js:\d+/);
  err = await phi2Fails("eval", "--model", dir, "--ids", "1,x");
  assert.match(err, /--ids/);
  err = await phi2Fails("eval", "--model", dir, "--ctx-size", "4", "--ids", "1,2,3,4,5");
  assert.match(err, /^error: --ids has 5 ids, more than the context of 4 tokens$/m);
  err = await phi2Fails("run", "--model", dir, "--top-p", "2", "hi");
  assert.match(err, /--top-p/);
  err = await phi2Fails("run", "--model", dir, "--ctx-size", "16", "-n", "4", "a ".repeat(40));
  assert.match(err, /context|16/);
  assert.doesNotMatch(err, /at .*\.js:\d+/);
  // a --ctx-size beyond the model's context names the option, not only the library's "context length"
  err = await phi2Fails("run", "--model", dir, "--ctx-size", "4096", "hi");
  assert.match(err, /^error: --ctx-size 4096: context length must be 1\.\.2048, got 4096$/m);
  err = await phi2Fails("chat", "--model", dir, "--ctx-size", "4096");
  assert.match(err, /^error: --ctx-size 4096: context length must be 1\.\.2048, got 4096$/m);
  err = await phi2Fails("serve", "--model", dir, "--port", "0", "--no-playground", "--ctx-size", "4096");
  assert.match(err, /^phi2 serve: the model failed to load: --ctx-size 4096: context length must be 1\.\.2048, got 4096$/m);
});

test("a reader that stops early (| head -c 10) ends run, chat and tokenize quietly with status 0", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const runs = [
    spawnPhi2(["run", "--model", dir, "--threads", "1", "-n", "1000", "--no-default-stops", "--temperature", "0", "Hello"]),
    spawnPhi2(["chat", "--model", dir, "--threads", "1", "-n", "1000", "--no-default-stops", "--temperature", "0"], "Hello\n"),
    spawnPhi2(["tokenize", "--model", dir, "word ".repeat(20_000)]),
  ];
  await Promise.all(runs.map(async (s) => {
    // The reader goes away after 10 bytes, as `head -c 10` does: the next write fails with EPIPE.
    await waitForOutput(s, (out) => out.length >= 10, "the first output");
    s.child.stdout.destroy();
    const { code } = await s.exited;
    assert.doesNotMatch(s.stderr(), /EPIPE|at .*\.js:\d+/, "no stack trace");
    assert.equal(code, 0, s.stderr());
  }));
});

test("--stop and chat's --system are unescaped like the prompt (\\t, \\n), unless --no-escape", async () => {
  // This model's greedy continuation of "Hi" has its first tab after 20-odd tokens: "...synchronidelines\t\t..."
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 1, peaked: true });
  const args = ["run", "--model", dir, "--threads", "1", "--temperature", "0", "-n", "60", "--json", "Hi"];
  const json = (...extra: string[]) => phi2(...args, ...extra).then((r) => JSON.parse(r.stdout));
  const chat = (...extra: string[]) => {
    const s = spawnPhi2(["chat", "--model", dir, "--threads", "1", "--stop", "x\\ny", "--system", "Be brief.\\nReally.", ...extra], "/params\n/system\n");
    return s.exited.then(({ code }) => {
      assert.equal(code, 0, s.stderr());
      const stop = JSON.parse(/^stop=(.*)$/m.exec(s.stdout())![1]!) as string[];
      return { stop: stop.at(-1), system: s.stdout().slice(s.stdout().indexOf("system: ")) };
    });
  };
  const [full, stopped, literal, escaped, raw] = await Promise.all([
    json(), json("--stop", "\\t\\t"), json("--stop", "\\t\\t", "--no-escape"), chat(), chat("--no-escape"),
  ]);
  const tab = full.text.indexOf("\t");
  assert.ok(tab > 0, JSON.stringify(full.text));
  assert.equal(stopped.finish_reason, "stop");
  assert.equal(stopped.text, full.text.slice(0, tab));
  assert.equal(literal.finish_reason, "length");
  assert.equal(escaped.stop, "x\ny");
  assert.equal(escaped.system, "system: Be brief.\nReally.\n");
  assert.equal(raw.stop, "x\\ny");
  assert.equal(raw.system, "system: Be brief.\\nReally.\n");
});

test("values the generator would refuse are refused when parsed, naming the flag, before any model loads; -n -1 = no limit", async () => {
  // The model path does not exist: an error about it would mean the value got past the parser.
  const refused = async ([cmd, flag, value, message]: readonly [string, string, string, RegExp]) => {
    const err = await phi2Fails(cmd, "--model", "/nonexistent/phi-2", flag, value, ...(cmd === "run" ? ["hi"] : []));
    assert.match(err, message);
    assert.doesNotMatch(err, /nonexistent|maxTokens|repetitionPenalty/);
  };
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const [r] = await Promise.all([
    // -n -1 (llama.cpp's "infinite"): until EOS, a stop string or the end of the context.
    phi2("run", "--model", dir, "--threads", "1", "-c", "24", "-n", "-1", "--temperature", "0", "--no-default-stops", "--json", "Hello")
      .then((out) => JSON.parse(out.stdout)),
    ...([
    ["run", "-n", "0", /--max-tokens must be an integer >= 1, or -1 for no limit, got "0"/],
    ["run", "--max-tokens", "-2", /--max-tokens must be an integer >= 1, or -1 for no limit, got "-2"/],
    ["chat", "-n", "0", /--max-tokens/],
    ["run", "--repeat-penalty", "0", /--repeat-penalty must be a number > 0 \(1 = off\), got "0"/],
    ["chat", "--repeat-penalty", "-1", /--repeat-penalty must be a number > 0/],
  ] as const).map(refused),
  ]);
  assert.ok(r.finish_reason === "context" || r.finish_reason === "eos", r.finish_reason);
  // the context holds the prompt and every generated token but the last, which is sampled, never fed
  if (r.finish_reason === "context") assert.equal(r.prompt_tokens + r.completion_tokens, 25);
});

test("seeds: a drawn seed is reported (stderr, --json) and replays the text; -1 = random; only 0..2^32-1 accepted", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const args = ["run", "--model", dir, "--threads", "1", "-n", "8", "--temperature", "1", "--top-k", "0", "--json", "Hello"];
  const drawn = await phi2(...args);
  const a = JSON.parse(drawn.stdout);
  assert.ok(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32, String(a.seed));
  assert.match(drawn.stderr, new RegExp(`\\| seed ${a.seed}\n`));
  const chat = spawnPhi2(["chat", "--model", dir, "--threads", "1", "-n", "2"], "Hello\n/params\n");
  // The sampler keeps 32 bits: 2^32 + 1 would silently be seed 1.
  const refused = async ([cmd, bad]: string[]) => {
    const err = await phi2Fails(cmd!, "--model", "/nonexistent/phi-2", "--seed", bad!, ...(cmd === "run" ? ["hi"] : []));
    assert.match(err, new RegExp(`--seed must be an integer in 0\\.\\.4294967295, or -1 for a random seed, got "${bad!.replace(".", "\\.")}"`));
  };
  const [replay, random] = await Promise.all([
    phi2(...args, "--seed", String(a.seed)).then((r) => JSON.parse(r.stdout)),
    phi2(...args, "--seed", "-1").then((r) => JSON.parse(r.stdout)),
    chat.exited,
    ...[["run", "4294967296"], ["run", "-2"], ["chat", "1.5"]].map(refused),
  ]);
  assert.deepEqual(replay.ids, a.ids);
  assert.equal(replay.seed, a.seed);
  assert.ok(Number.isInteger(random.seed), "-1 draws a seed");
  assert.equal((await chat.exited).code, 0, chat.stderr());
  assert.match(chat.stdout(), /seed=random \(last reply's seed: \d+\)/);
  // One JSON style: snake_case timing keys, as the rest of the object.
  assert.deepEqual(Object.keys(a.timings).sort(), ["gen_ms", "gen_tokens_per_sec", "load_ms", "prompt_ms", "prompt_tokens_per_sec"]);
});

test("chat takes the model options of run (-q/--quant, --kv-type) and its --help shows its real --format default", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const chat = spawnPhi2(["chat", "--model", dir, "--threads", "1", "-q", "q8_0", "--kv-type", "f32"], "/format\n");
  assert.equal((await chat.exited).code, 0, chat.stderr());
  assert.match(chat.stderr(), /Q8_0\S* weights.*\(f32 KV cache\)/, "the banner says what was loaded");
  assert.equal(chat.stdout(), "format: chat (chat, qa, code, raw)\n");
  const help = (await phi2("chat", "--help")).stdout.replace(/\s+/g, " "); // one line: help wraps at 80 columns
  assert.match(help, /--format <name> [^)]*\(choices: "raw", "qa", "chat", "code", default: "chat"\)/);
  assert.doesNotMatch(help, /default: "raw"/);
  for (const flag of ["-q, --quant <type>", "--kv-type <type>"]) assert.ok(help.includes(flag), flag);
});

test("chat: errors go to stderr; with piped input an error makes the exit status 1 (later lines still run)", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const input = `${"word ".repeat(40)}\n/format sonnet\n/params top_p=2\n/frobnicate\nHello\n`;
  const chat = spawnPhi2(["chat", "--model", dir, "--threads", "1", "-c", "32", "-n", "4", "--temperature", "0"], input);
  const { code } = await chat.exited;
  assert.equal(code, 1, chat.stderr());
  assert.match(chat.stderr(), /error: the message is \d+ tokens long/);
  assert.match(chat.stderr(), /unknown format "sonnet"/);
  assert.match(chat.stderr(), /error: top_p must be/);
  assert.match(chat.stderr(), /unknown command \/frobnicate/);
  assert.doesNotMatch(chat.stdout(), /error|unknown/);
  assert.equal(chat.stdout().split("\n").length, 2, `one reply line, to "Hello": ${JSON.stringify(chat.stdout())}`);
  assert.match(chat.stderr(), /\[4 tokens/, "the last message was answered");
});

test("a prompt piped on stdin (\"-\") is taken verbatim: no unescaping, one final newline dropped", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const opts = ["--model", dir, "--threads", "1", "--temperature", "0", "-n", "4", "--json"];
  const code = 'print("a\\nb")\n\n'; // Python source with a \n escape of its own, and a blank line
  const piped = spawnPhi2(["run", ...opts, "-"], code);
  const [{ stdout }] = await Promise.all([phi2("run", ...opts, "--no-escape", 'print("a\\nb")\n'), piped.exited]);
  assert.equal((await piped.exited).code, 0, piped.stderr());
  const fromArg = JSON.parse(stdout);
  const fromStdin = JSON.parse(piped.stdout());
  assert.equal(fromStdin.prompt_tokens, fromArg.prompt_tokens);
  assert.deepEqual(fromStdin.ids, fromArg.ids);
});

test("llama.cpp's spellings: --temp, --n-predict, -r/--reverse-prompt (run and chat)", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 1, peaked: true });
  const base = ["run", "--model", dir, "--threads", "1", "--json", "Hi"];
  const json = (...extra: string[]) => phi2(...base, ...extra).then((r) => JSON.parse(r.stdout));
  const chat = spawnPhi2(["chat", "--model", dir, "--threads", "1", "--temp", "0", "--n-predict", "2", "-r", "x\\ny", "--reverse-prompt", "zz"], "/params\n");
  const [ours, theirs, both, badTemp, badN] = await Promise.all([
    json("--temperature", "0", "-n", "60", "--stop", "\\t\\t"),
    json("--temp", "0", "--n-predict", "60", "-r", "\\t\\t"),
    json("--temp", "0", "--n-predict", "3", "--reverse-prompt", "zzz", "--stop", "\\t\\t"),
    phi2Fails("run", "--model", dir, "--temp", "-1", "Hi"),
    phi2Fails("run", "--model", dir, "--n-predict", "0", "Hi"),
    chat.exited,
  ]);
  assert.equal(theirs.finish_reason, "stop");
  assert.deepEqual(theirs.ids, ours.ids);
  assert.equal(both.completion_tokens, 3);
  assert.match(badTemp, /--temperature must be a number in 0\.\.100, got "-1"/);
  assert.match(badN, /--max-tokens must be an integer >= 1/);
  assert.equal((await chat.exited).code, 0, chat.stderr());
  assert.match(chat.stdout(), /temperature=0 .*max_tokens=2 .*\nstop=\[.*"x\\ny","zz"\]/);
});

test("run's prompt: the argument, -p/--prompt (escapes apply), -f/--file or stdin without an argument (both verbatim)", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true });
  const opts = ["--model", dir, "--threads", "1", "--temperature", "0", "-n", "3", "--json"];
  const out = async (s: ReturnType<typeof spawnPhi2>) => {
    assert.equal((await s.exited).code, 0, s.stderr());
    return JSON.parse(s.stdout()).ids as number[];
  };
  const file = join(tempDir(), "prompt.py");
  writeFileSync(file, 'print("a\\nb")\n');
  const [arg, code, p, f, piped] = await Promise.all([
    out(spawnPhi2(["run", ...opts, "Hello\\nworld"])),
    out(spawnPhi2(["run", ...opts, "--no-escape", 'print("a\\nb")'])),
    out(spawnPhi2(["run", ...opts, "-p", "Hello\\nworld"])),
    out(spawnPhi2(["run", ...opts, "-f", file])),
    out(spawnPhi2(["run", ...opts], "Hello\nworld\n")),
  ]);
  assert.deepEqual(p, arg);
  assert.deepEqual(piped, arg);
  assert.deepEqual(f, code);
  assert.notDeepEqual(code, arg);
  // Errors come before the model is looked for (it does not exist here).
  const fails = async (args: string[], input: string, message: RegExp) => {
    const s = spawnPhi2(["run", "--model", "/nonexistent/phi-2", ...args], input);
    assert.notEqual((await s.exited).code, 0);
    assert.match(s.stderr(), message);
    assert.doesNotMatch(s.stderr(), /nonexistent\/phi-2|at .*\.js:\d+/);
  };
  await Promise.all([
    fails(["-p", "a", "b"], "", /the prompt was given twice: as the PROMPT argument and with --prompt/),
    fails(["-p", "a", "-f", file], "", /the prompt was given twice: with --prompt and with --file/),
    fails(["-f", "/nonexistent/prompt.txt"], "", /--file \/nonexistent\/prompt\.txt: no such file/),
    fails([], "", /the prompt is empty/),
  ]);
});

test("--revision and --hub-url are model options of run and bench too (as of chat and serve)", async () => {
  const [a, b] = [testModel({ preset: "tiny", dtype: "f32", seed: 11, peaked: true }), testModel({ preset: "tiny", dtype: "f32", seed: 7, peaked: true })];
  const hub = await startFakeHub();
  try {
    const v1 = randomCommit();
    hub.addRepo("acme/tiny-phi", { files: repoFilesFromDir(a), refs: { v1 }, commits: { [v1]: repoFilesFromDir(b) } });
    const env = { HF_HOME: join(tempDir(), "hf-home"), HF_ENDPOINT: "http://127.0.0.1:9" }; // the flag, not the environment, names the hub
    const gen = ["--threads", "1", "--temperature", "0", "-n", "4", "--json", "Hello"];
    const fromHub = spawnPhi2(["run", "--model", "acme/tiny-phi", "--revision", "v1", "--hub-url", hub.url, ...gen], "", env);
    const [{ stdout }] = await Promise.all([phi2("run", "--model", b, ...gen), fromHub.exited]);
    assert.equal((await fromHub.exited).code, 0, fromHub.stderr());
    const local = JSON.parse(stdout);
    assert.deepEqual(JSON.parse(fromHub.stdout()).ids, local.ids, "revision v1's weights, not main's");
    assert.ok(hub.requestsTo("/api/models/acme/tiny-phi/revision/v1").length > 0);
    const bench = spawnPhi2(["bench", "--model", "acme/tiny-phi", "--revision", "v1", "--hub-url", hub.url, "-p", "4", "-n", "0", "-r", "1", "-t", "1"], "", env);
    assert.equal((await bench.exited).code, 0, bench.stderr());
    assert.match(bench.stdout(), /pp4/);
  } finally {
    await hub.close();
  }
});

test("make-test-model --out naming a file (or a path under one): one line naming --out, no stack trace", async () => {
  const file = join(tempDir(), "not-a-folder");
  writeFileSync(file, "x");
  for (const out of [file, join(file, "model")]) {
    const err = await phi2Fails("make-test-model", "--preset", "tiny", "--seed", "1", "--out", out);
    assert.match(err, new RegExp(`^error: --out ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
    assert.equal(err.trimEnd().split("\n").length, 1, err);
  }
});
