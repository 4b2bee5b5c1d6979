// npm run bench: the engine on the full-size random Phi-2 (speed does not depend on weight values).
// Generates the model once (5.56 GB in bf16) into $PHI2_BENCH_DIR (default: the OS temp dir), runs each
// measurement in its own process, prints a Markdown table and appends it to BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { cpus, totalmem, tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestModel } from "../src/testing/make-test-model.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const benchDir = process.env.PHI2_BENCH_DIR ?? join(tmpdir(), "phi2-bench");
const threads = process.env.PHI2_BENCH_THREADS ?? "2";
const promptTokens = process.env.PHI2_BENCH_PROMPT ?? "512";
const decodeTokens = process.env.PHI2_BENCH_DECODE ?? "128";

function fullModel(dtype: "bf16"): string {
  const dir = join(benchDir, `full-${dtype}`);
  if (!existsSync(join(dir, "config.json"))) {
    console.error(`generating the full-size random model (${dtype}) in ${dir} ...`);
    const t = performance.now();
    makeTestModel({ preset: "full", dtype, seed: 1, out: dir, shards: 2 });
    console.error(`generated in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  return dir;
}

interface Row { label: string; loadS: number; peakRssGB: number; prefillTokPerS: number; decodeTokPerS: number; threads: number }

function measure(label: string, model: string, extra: string[] = []): Row {
  console.error(`measuring ${label} ...`);
  const out = execFileSync(process.execPath, [join(here, "engine.js"), model, threads, promptTokens, decodeTokens, ...extra], {
    encoding: "utf8", stdio: ["ignore", "pipe", "inherit"],
  });
  const r = JSON.parse(out.trim().split("\n").pop()!);
  return { label, ...r };
}

const rows: Row[] = [measure("phi2 bf16", fullModel("bf16"))];

const date = new Date().toISOString().slice(0, 10);
const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const table = [
  `### ${date}: \`npm run bench\` (${threads} threads, ${promptTokens}-token prompt, ${decodeTokens} decoded tokens)`,
  "",
  `Machine: ${machine}. Model: full-size random Phi-2 (2.78e9 parameters).`,
  "",
  "| engine / weights | load s | peak RSS GB | prefill tok/s | decode tok/s |",
  "|---|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.label} | ${r.loadS.toFixed(1)} | ${r.peakRssGB.toFixed(2)} | ${r.prefillTokPerS.toFixed(2)} | ${r.decodeTokPerS.toFixed(2)} |`),
  "",
].join("\n");
console.log(table);
appendFileSync(join(root, "BENCHMARKS.md"), "\n" + table);
