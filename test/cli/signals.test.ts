// Ctrl-C as a user presses it (SIGINT to the process): `run` stops, prints what it has and exits 130
// like any interrupted Unix tool; `serve` shuts down gracefully on the first, at once on the second.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnPhi2, waitForOutput } from "../helpers/cli.js";
import { testModel } from "../helpers/test-models.js";

test("serve: a second Ctrl-C during the graceful shutdown exits at once, with status 130", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const serve = spawnPhi2(["serve", "--model", dir, "--port", "0", "--threads", "1", "--parallel", "1", "--grace", "60"]);
  try {
    await waitForOutput(serve, (_, err) => /ready in/.test(err), "the model to load");
    const url = /listening on (http:\/\/[\d.:]+)/.exec(serve.stderr())![1]!;
    // A long stream keeps the graceful shutdown waiting (up to --grace).
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Hello", max_tokens: 2000, stream: true, ignore_eos: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const reading = (async () => {
      try {
        while (!(await reader.read()).done);
      } catch { /* cut off when the server exits */ }
    })();
    serve.child.kill("SIGINT");
    await waitForOutput(serve, (_, err) => /SIGINT: finishing running requests/.test(err), "the graceful shutdown");
    const t0 = Date.now();
    serve.child.kill("SIGINT");
    const { code } = await serve.exited;
    assert.equal(code, 130, serve.stderr());
    assert.ok(Date.now() - t0 < 5000, "at once");
    assert.match(serve.stderr(), /second interrupt, stopping now/);
    await reading;
  } finally {
    serve.child.kill("SIGKILL");
  }
});

test("run: Ctrl-C stops the generation, prints the text and timings so far, and exits with status 130", async () => {
  const dir = testModel({ preset: "tiny", dtype: "f32", seed: 11 });
  const run = spawnPhi2(["run", "--model", dir, "--threads", "1", "-n", "2000", "--no-default-stops", "--temperature", "0", "--seed", "3", "Hello"]);
  try {
    await waitForOutput(run, (out) => out.length > 20, "some text");
    run.child.kill("SIGINT");
    const { code } = await run.exited;
    assert.equal(code, 130, run.stderr());
    assert.match(run.stderr(), /generated \d+ tokens, .* \| finish: abort \| seed 3\n$/);
    assert.ok(run.stdout().endsWith("\n") && run.stdout().length > 20, "the text so far, ended by a newline");
  } finally {
    run.child.kill("SIGKILL");
  }
});
