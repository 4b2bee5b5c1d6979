// `phi2 pull` as a user runs it: a child process, the hub given by --hub-url / HF_ENDPOINT, the
// cache by HF_HOME; stdout is the path, stderr the progress lines, errors one line and exit 1.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { phi2CleanEnv } from "../helpers/cli.js";
import { startFakeHub, tinyRepoFiles, type FakeHub } from "./fake-hub.js";

/** `phi2 pull ...args` in a child with only PATH and `env` as its environment. */
const runPull = (args: string[], env: NodeJS.ProcessEnv) => phi2CleanEnv(["pull", ...args], env);

let hub: FakeHub;
let commit: string;
const files = tinyRepoFiles();
before(async () => {
  hub = await startFakeHub();
  commit = hub.addRepo("acme/tiny-phi", { files });
});
after(() => hub.close());

test("phi2 pull prints the snapshot path, with plain progress lines when stderr is not a TTY", async () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-pull-"));
  const r = await runPull(["acme/tiny-phi", "--hub-url", hub.url], { HF_HOME: home });
  assert.equal(r.code, 0, r.stderr);
  const path = join(home, "hub", "models--acme--tiny-phi", "snapshots", commit);
  assert.equal(r.stdout, path + "\n");
  assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), files["model-00002-of-00002.safetensors"]);
  assert.match(r.stderr, /model-00001-of-00002\.safetensors: \d+(\.\d+)? kB done in \d+s \(/);
  assert.doesNotMatch(r.stderr, /\r|\x1b\[/, "no terminal control codes in a log");
});

test("phi2 pull fails with one line naming HF_TOKEN on a gated repo (endpoint from HF_ENDPOINT)", async () => {
  hub.addRepo("acme/gated", { files, gated: true });
  const home = mkdtempSync(join(tmpdir(), "phi2-pull-"));
  const r = await runPull(["acme/gated"], { HF_HOME: home, HF_ENDPOINT: hub.url });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: acme\/gated: is gated \(HTTP 401\).*HF_TOKEN/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  const ok = await runPull(["acme/gated", "-q"], { HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: hub.token });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, "");
});

test("phi2 quantize takes a hub id with --hub-url and --revision, like run and pull", async () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-pull-"));
  const out = join(home, "tiny-q8_0.gguf"); // never written: see below
  const quantize = (...args: string[]) =>
    phi2CleanEnv(["quantize", "-m", "acme/tiny-phi", "--type", "q8_0", "-o", out, "-q", "--hub-url", hub.url, ...args], { HF_HOME: home });
  const bad = await quantize("--revision", "nope");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /revision "nope" not found/);
  // that commit is downloaded into the cache (the fake repo has no tokenizer.json, so no GGUF follows)
  const ok = await quantize("--revision", commit);
  assert.match(ok.stderr, new RegExp(`acme/tiny-phi: revision ${commit} is commit`));
  assert.deepEqual(readFileSync(join(home, "hub", "models--acme--tiny-phi", "snapshots", commit, "model-00002-of-00002.safetensors")), files["model-00002-of-00002.safetensors"]);
});

test("phi2 pull draws no progress when HF_HUB_DISABLE_PROGRESS_BARS=1, as the library and huggingface_hub do", async () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-pull-"));
  const r = await runPull(["acme/tiny-phi", "--hub-url", hub.url], { HF_HOME: home, HF_HUB_DISABLE_PROGRESS_BARS: "1" });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, join(home, "hub", "models--acme--tiny-phi", "snapshots", commit) + "\n");
  assert.doesNotMatch(r.stderr, /done in/);
});
