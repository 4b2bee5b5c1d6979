// Progress output: a redrawn bar with size, speed and ETA on a terminal; a few plain lines in a log.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatBytes, formatDuration, stderrProgress } from "../../src/hub/progress.js";

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("sizes and durations read like a person would write them", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(5_560_000_000), "5.56 GB");
  assert.equal(formatBytes(45_200_000), "45.2 MB");
  assert.equal(formatDuration(42), "42s");
  assert.equal(formatDuration(62), "1m02s");
  assert.equal(formatDuration(3 * 3600 + 5 * 60), "3h05m");
  assert.equal(formatDuration(NaN), "?");
});

test("on a terminal: one line redrawn with percent, bar, size, speed and ETA, then a final newline", async () => {
  const { writes, stream } = fakeStream(true);
  const report = stderrProgress(stream);
  const total = 50_000_000;
  report({ file: "model.safetensors", downloaded: 0, total, resumedFrom: 0, done: false });
  await sleep(120);
  report({ file: "model.safetensors", downloaded: 20_000_000, total, resumedFrom: 0, done: false });
  report({ file: "model.safetensors", downloaded: 21_000_000, total, resumedFrom: 0, done: false }); // throttled
  await sleep(20);
  report({ file: "model.safetensors", downloaded: total, total, resumedFrom: 0, done: true });
  assert.equal(writes.length, 4, writes.join("|")); // first draw, 40% draw, final draw + newline
  assert.match(writes[1], /^\r\x1b\[Kmodel\.safetensors\s+ 40% █+░+ 20\.0 MB \/ 50\.0 MB  [\d.]+ [kMG]?B\/s  ETA \d+s$/);
  assert.match(writes[2], /100% █{24} 50\.0 MB \/ 50\.0 MB .* in \d+s$/);
  assert.equal(writes[3], "\n");
});

test("in a log: a line per 10% of a big file, a resume note, a done line; small files only the done line", () => {
  const { writes, stream } = fakeStream(false);
  const report = stderrProgress(stream);
  const total = 100_000_000;
  report({ file: "big.safetensors", downloaded: 30_000_000, total, resumedFrom: 30_000_000, done: false });
  for (let d = 30_000_000; d <= total; d += 1_000_000) report({ file: "big.safetensors", downloaded: d, total, resumedFrom: 30_000_000, done: false });
  report({ file: "big.safetensors", downloaded: total, total, resumedFrom: 30_000_000, done: true });
  report({ file: "config.json", downloaded: 0, total: 700, resumedFrom: 0, done: false });
  report({ file: "config.json", downloaded: 700, total: 700, resumedFrom: 0, done: true });
  const lines = writes.join("").trimEnd().split("\n");
  assert.equal(lines[0], "big.safetensors: resuming at 30.0 MB");
  assert.deepEqual(lines.slice(1, -2).map((l) => /: (\d+)%/.exec(l)?.[1]), ["30", "40", "50", "60", "70", "80", "90", "100"]);
  assert.match(lines.at(-2)!, /^big\.safetensors: 100\.0 MB done in \d+s \(/);
  assert.match(lines.at(-1)!, /^config\.json: 700 B done in \d+s/);
  assert.ok(!writes.join("").includes("\r"));
});
