// `phi2 chat` with input from a pipe (a script, not a person): replies only on stdout, stats on
// stderr, commands applied in order, exit 0 at the end of input.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { makeTestModel } from "../../src/testing/make-test-model.js";

const chatModule = fileURLToPath(new URL("../../src/cli/chat.js", import.meta.url));

test("piped input: one reply line per message, /format re-renders the conversation", async () => {
  const dir = mkdtempSync(join(tmpdir(), "phi2-chat-pipe-"));
  makeTestModel({ preset: "tiny", dtype: "f32", seed: 5, out: join(dir, "model") });
  // A launcher file, not `node -e`: worker threads inherit the parent's node options.
  const launcher = join(dir, "launch.mjs");
  writeFileSync(launcher, `const { chatCommand } = await import(${JSON.stringify(chatModule)});\nawait chatCommand().parseAsync(process.argv.slice(2), { from: "user" });\n`);
  const child = spawn(process.execPath, [launcher, "--model", join(dir, "model"), "--threads", "1", "--max-tokens", "4", "--temperature", "0"]);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end('Hello\nHow are you?\n/format qa\n"""\nWhat is\nthe answer?\n"""\n');
  const code = await new Promise((r) => child.on("close", r));
  assert.equal(code, 0, stderr);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4, stdout); // reply, reply, "format: qa", reply
  assert.equal(lines[2], "format: qa");
  assert.ok(!stdout.includes(">>>"), "no prompts when nobody is typing");
  const stats = [...stderr.matchAll(/prompt (\d+) new \+ (\d+) cached tokens/g)].map((m) => ({ fed: +m[1], cached: +m[2] }));
  assert.equal(stats.length, 3);
  assert.ok(stats[1].cached > 0, "the second turn reuses the first from the KV cache");
  // "Instruct: Hello\nOutput: ..." shares no prefix with "Alice: Hello\nBob: ...": all of it is fed again.
  assert.equal(stats[2].cached, 0);
  assert.ok(stats[2].fed > stats[1].fed);
});
