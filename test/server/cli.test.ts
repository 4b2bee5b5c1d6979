// `phi2 serve` as a user runs it: --help, the URL printed when listening, 503 until the model is loaded,
// the playground at /, and SIGTERM: a running stream finishes, then the process exits 0. An engine that
// fails for good is printed once on stderr, as "phi2 serve: error: engine failed: ...".
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import OpenAI from "openai";
import { eventually, parseMetrics, tinyModelDir } from "./helpers.js";
import { tempDir } from "../helpers/temp-dir.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const PHI = new URL("../../src/model/phi.js", import.meta.url).href;

interface Serving {
  child: ChildProcess;
  url: string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Spawns `node [nodeArgs] main.js serve args` and resolves once it prints the URL it listens on. */
async function startServe(args: string[], nodeArgs: string[] = []): Promise<Serving> {
  const child = spawn(process.execPath, [...nodeArgs, MAIN, "serve", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        stderr += chunk;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    return { child, url, stderr: () => stderr, exited };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}

/** Polls /health until the model has loaded (200). */
async function waitLoaded(url: string): Promise<void> {
  for (let i = 0; ; i++) {
    const health = await fetch(`${url}/health`);
    if (health.status === 200) break;
    assert.equal(health.status, 503);
    assert.ok(i < 600, "the model loads within a minute");
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("phi2 serve --help documents the options and endpoints", () => {
  const r = spawnSync(process.execPath, [MAIN, "serve", "--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  for (const text of ["--model", "--port", "--host", "--parallel", "--api-key", "--queue-size", "--timeout", "/v1/chat/completions", "/metrics"]) {
    assert.ok(r.stdout.includes(text), `--help mentions ${text}`);
  }
});

test("phi2 serve prints its URL, serves, and on SIGTERM finishes the running stream and exits 0", async () => {
  const { child, url, stderr, exited } = await startServe(
    ["--model", tinyModelDir("plain"), "--port", "0", "--parallel", "2", "--threads", "1", "--ctx-size", "256", "--api-key", "k"],
  );
  try {
    // Listening comes first; /health turns 200 once the model has loaded.
    await waitLoaded(url);
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);

    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: (await client.models.list()).data[0].id,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 30,
      // greedy: at temperature 1 the chat format's <|endoftext|> stop string could be sampled (ignore_eos
      // only keeps EOS from ending the stream as EOS) and end it before 30 tokens
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    } as never) as unknown as AsyncIterable<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    let sent = false;
    let finish = null;
    let usage;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      if (!sent) {
        child.kill("SIGTERM");
        sent = true;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "length", "the stream ran to its end after SIGTERM");
    assert.equal(usage?.completion_tokens, 30);
    assert.equal(await exited, 0, stderr());
    assert.match(stderr(), /SIGTERM/);
    assert.doesNotMatch(stderr(), /error/, "nothing went wrong");
  } finally {
    child.kill("SIGKILL");
  }
});

test("phi2 serve prints an engine failure on stderr once, answers 503, and still stops cleanly", async () => {
  // The engine's fault hook (EngineOptions.injectFault) is not reachable from the CLI: a module preloaded
  // with --import wraps PhiEngine.start to pass it. It imports the same phi.js as the CLI, so loadModel
  // gets the wrapped start. With one thread, worker 0 throws in layer 0 of its second pass: the first
  // request's prefill runs, its first decode step fails.
  const preload = join(tempDir(), "inject-fault.mjs");
  const fault = { worker: 0, pass: 2, layer: 0, message: "injected fault" };
  writeFileSync(
    preload,
    `import { PhiEngine } from ${JSON.stringify(PHI)};\n` +
      `const start = PhiEngine.start;\n` +
      `PhiEngine.start = (config, weights, o) => start.call(PhiEngine, config, weights, { ...o, injectFault: ${JSON.stringify(fault)} });\n`,
  );
  const { child, url, stderr, exited } = await startServe(
    ["--model", tinyModelDir("plain"), "--port", "0", "--parallel", "1", "--threads", "1", "--ctx-size", "256"],
    ["--import", pathToFileURL(preload).href],
  );
  try {
    await waitLoaded(url);
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Hello", max_tokens: 5 }),
    });
    const body = (await res.json()) as { error: { message: string; code: string } };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, "engine_failed");
    const cause = /^engine failed: (engine worker 0 \(partitions? [\d, ]+\) failed in layer 0: RangeError: injected fault)$/.exec(body.error.message);
    assert.ok(cause, body.error.message);

    const line = `phi2 serve: error: engine failed: ${cause[1]} (generation requests get 503 and /health 503 until the server is restarted)\n`;
    await eventually(() => stderr().includes(line), 5000, `the error line on stderr:\n${stderr()}`);
    assert.match(stderr().slice(stderr().indexOf(line) + line.length), /^ {4}Error: .*injected fault\n( {4}\s+at .*\n)+/, "then the worker's stack, indented");

    assert.equal((await fetch(`${url}/health`)).status, 503);
    assert.equal(parseMetrics(await (await fetch(`${url}/metrics`)).text()).get("phi2_engine_failed"), 1);
    assert.equal((await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Hi", max_tokens: 2 }) })).status, 503);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr());
    assert.equal(stderr().split("engine failed:").length - 1, 1, `logged once:\n${stderr()}`);
  } finally {
    child.kill("SIGKILL");
  }
});
