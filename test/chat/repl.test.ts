// `phi2 chat` driven as a person would, in a real pseudo-terminal (tmux): streamed replies, tokens/s
// after each, history reused from the KV cache, /params, multi-line input, Ctrl-C to stop a reply and
// Ctrl-C twice to leave. Runs on a tiny random model (its replies are gibberish; the REPL is the subject).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { makeTestModel } from "../../src/testing/make-test-model.js";
import { repoFilesFromDir, startFakeHub, type FakeHub } from "../hub/fake-hub.js";

const chatModule = fileURLToPath(new URL("../../src/cli/chat.js", import.meta.url));
const socket = `phi2-chat-test-${process.pid}`;
const session = "chat";
let hasTmux = true;
try {
  execFileSync("tmux", ["-V"]);
} catch {
  hasTmux = false;
}

const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-500", "-t", session);
const keys = (...k: string[]) => tmux("send-keys", "-t", session, ...k);
const line = (text: string) => {
  keys("-l", text);
  keys("Enter");
};

async function waitFor(test: (s: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = screen();
    if (test(s)) return s;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const STATS = /\[(\d+) tokens, ([\d.]+) tokens\/s \| prompt (\d+) new \+ (\d+) cached tokens, [\d.]+ tokens\/s \| ([^\]]+)\]/g;
const stats = (s: string) => [...s.matchAll(STATS)].map((m) => ({ completion: +m[1], tps: +m[2], fed: +m[3], cached: +m[4], finish: m[5] }));
const statsCount = (n: number) => (s: string) => stats(s).length >= n;

let hub: FakeHub | undefined;

before(async () => {
  if (!hasTmux) return;
  const dir = mkdtempSync(join(tmpdir(), "phi2-chat-"));
  makeTestModel({ preset: "tiny", dtype: "f32", seed: 7, out: join(dir, "model") });
  // The model comes from a (fake) hub by its id, as a newcomer's would: pulled into HF_HOME, then loaded.
  hub = await startFakeHub();
  hub.addRepo("acme/tiny-phi", { files: repoFilesFromDir(join(dir, "model")) });
  const launcher = join(dir, "launch.mjs");
  writeFileSync(launcher, `const { chatCommand } = await import(${JSON.stringify(chatModule)});\nawait chatCommand().parseAsync(process.argv.slice(2), { from: "user" });\n`);
  const cmd = `HF_HOME=${join(dir, "hf-home")} ${process.execPath} ${launcher} --model acme/tiny-phi --hub-url ${hub.url} --threads 1 --temperature 0 --max-tokens 12; echo "[exited $?]"; sleep 60`;
  tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "50", cmd);
});

after(async () => {
  await hub?.close();
  if (hasTmux) {
    try {
      tmux("kill-server");
    } catch {
      // already gone
    }
  }
});

test("phi2 chat in a terminal", { skip: hasTmux ? false : "tmux is not installed (apt-get install tmux)" }, async () => {
  const banner = await waitFor((s) => s.includes("/help for commands") && s.includes(">>> "), "the banner and prompt");
  assert.match(banner, /hf-home\/hub\/models--acme--tiny-phi\/snapshots\/[0-9a-f]{40}/, "pulled into the hub cache");

  line("Hello there, who are you?");
  let s = await waitFor(statsCount(1), "the first reply's stats");
  const [first] = stats(s);
  assert.equal(first.completion, 12);
  assert.ok(first.tps > 0);
  assert.equal(first.cached, 0);
  assert.equal(first.finish, "length");

  line("Tell me more.");
  s = await waitFor(statsCount(2), "the second reply's stats");
  const second = stats(s)[1];
  // The first turn (its prompt and reply) comes from the KV cache; only the new turn is fed.
  assert.ok(second.cached >= first.fed + first.completion - 1, `cached ${second.cached} of ${first.fed}+${first.completion}`);
  assert.ok(second.fed <= 12, `fed ${second.fed} new tokens`);

  // A fixed seed: a random one could sample the end of text (or "\nAlice:") before the Ctrl-C below.
  line("/params max_tokens=none temperature=0.5 seed=1");
  await waitFor((s) => /temperature=0\.5 .*max_tokens=none seed=1/.test(s), "/params output");

  // A long reply, stopped with Ctrl-C once text flows.
  const before = screen().length;
  line("Write a very long story about a lighthouse.");
  await waitFor((s) => s.length > before + 80, "streamed text");
  keys("C-c");
  s = await waitFor(statsCount(3), "the stopped reply's stats");
  assert.equal(stats(s)[2].finish, "stopped (Ctrl-C)");
  assert.ok(stats(s)[2].completion > 0);
  line("/params max_tokens=5");
  await waitFor((s) => s.includes("max_tokens=5"), "/params output");

  // Multi-line input: a """ block and a trailing backslash each make one message.
  line('"""');
  line("first line of a block");
  line("second line");
  line('"""');
  s = await waitFor(statsCount(4), "the block's reply");
  assert.ok(s.includes("... second line"), "continuation prompt shown");
  line("one line \\");
  line("continued");
  s = await waitFor(statsCount(5), "the continued line's reply");
  assert.equal(stats(s).length, 5, "each multi-line input made one message");

  keys("C-c");
  await waitFor((s) => s.includes("Ctrl-C again"), "the exit hint");
  keys("C-c");
  await waitFor((s) => s.includes("[exited 0]"), "the REPL to exit with status 0");
});
