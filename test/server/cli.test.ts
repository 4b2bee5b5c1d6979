// `phi2 serve` as a user runs it: --help, the URL printed when listening, 503 until the model is loaded,
// the playground at /, and SIGTERM: a running stream finishes, then the process exits 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { tinyModelDir } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

test("phi2 serve --help documents the options and endpoints", () => {
  const r = spawnSync(process.execPath, [MAIN, "serve", "--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  for (const text of ["--model", "--port", "--host", "--parallel", "--api-key", "--queue-size", "--timeout", "/v1/chat/completions", "/metrics"]) {
    assert.ok(r.stdout.includes(text), `--help mentions ${text}`);
  }
});

test("phi2 serve prints its URL, serves, and on SIGTERM finishes the running stream and exits 0", async () => {
  const child = spawn(
    process.execPath,
    [MAIN, "serve", "--model", tinyModelDir("plain"), "--port", "0", "--parallel", "2", "--threads", "1", "--ctx-size", "256", "--api-key", "k"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        stderr += chunk;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    // Listening comes first; /health turns 200 once the model has loaded.
    for (let i = 0; ; i++) {
      const health = await fetch(`${url}/health`);
      if (health.status === 200) break;
      assert.equal(health.status, 503);
      assert.ok(i < 600, "the model loads within a minute");
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);

    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: (await client.models.list()).data[0].id,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 30,
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
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM/);
  } finally {
    child.kill("SIGKILL");
  }
});
