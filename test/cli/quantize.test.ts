// `phi2 quantize` and `phi2 eval --logits-out` as a user runs them: a wrong output path fails before any
// work, and Ctrl-C while writing leaves no file behind (not even the temporary one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { phi2Fails } from "../helpers/cli.js";
import { testModel } from "../helpers/test-models.js";
import { tempDir } from "../helpers/temp-dir.js";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.js");

test("quantize -o FOLDER and eval --logits-out FOLDER fail at once naming the option, leaving nothing", async () => {
  const model = testModel({ preset: "tiny", dtype: "f32", seed: 7 });
  const out = tempDir();
  mkdirSync(join(out, "sub"));
  const q = await phi2Fails("quantize", "-m", model, "--type", "q8_0", "-o", join(out, "sub"));
  assert.match(q, /error: --out .*sub is a folder: name the file to write/);
  const missing = await phi2Fails("quantize", "-m", model, "--type", "q8_0", "-o", join(out, "nope", "m.gguf"));
  assert.match(missing, /error: --out .*m\.gguf: the folder .*nope does not exist/);
  const e = await phi2Fails("eval", "-m", model, "--ids", "1,2", "--logits-out", join(out, "sub"));
  assert.match(e, /error: --logits-out .*sub is a folder/);
  assert.deepEqual(readdirSync(out), ["sub"]);
});

test("Ctrl-C while quantize writes: exit 130, and neither the output nor its temporary file remains", async () => {
  const model = testModel({ preset: "small", dtype: "f32", seed: 3 }); // a few seconds of q4_k
  const dir = tempDir();
  const out = join(dir, "m.gguf");
  const child = spawn(process.execPath, [main, "quantize", "-m", model, "--type", "q4_k", "-o", out, "-q"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const tmp = join(dir, `m.gguf.tmp-${child.pid}`);
  // interrupt once the temporary file exists, i.e. mid-write
  const deadline = Date.now() + 60_000;
  while (!existsSync(tmp)) {
    assert.ok(Date.now() < deadline, "quantize never started writing");
    assert.equal(child.exitCode, null, `quantize ended before it could be interrupted: ${stderr}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill("SIGINT");
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /quantize: interrupted \(SIGINT\); .*m\.gguf was not written/);
  assert.deepEqual(readdirSync(dir), []);
});
