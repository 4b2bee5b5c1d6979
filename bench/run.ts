// npm run bench: our engine and llama.cpp (node-llama-cpp 3.21.1) on the full-size random Phi-2 (speed
// does not depend on weight values), the same files for both, each measurement in its own process
// (so peak RSS is that run's alone). Generates what it needs once into $PHI2_BENCH_DIR (default: the
// OS temp dir): the HF folder in bf16 (5.56 GB) and GGUFs in f16, q8_0, q4_0 written by our quantizer.
// Prints a Markdown table and appends it to BENCHMARKS.md.
//
// Environment: PHI2_BENCH_THREADS (2), PHI2_BENCH_PROMPT (512), PHI2_BENCH_DECODE (128),
// PHI2_BENCH_ONLY (comma list of rows: bf16,f16,q8_0,q4_0; default all), PHI2_BENCH_NO_LLAMA=1.
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { cpus, totalmem, tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestModel } from "../src/testing/make-test-model.js";
import { quantizeModel, type QuantizeType } from "../src/index.js";
import { measureLlama } from "./llama.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const benchDir = process.env.PHI2_BENCH_DIR ?? join(tmpdir(), "phi2-bench");
const threads = Number(process.env.PHI2_BENCH_THREADS ?? "2");
const promptTokens = Number(process.env.PHI2_BENCH_PROMPT ?? "512");
const decodeTokens = Number(process.env.PHI2_BENCH_DECODE ?? "128");
const only = (process.env.PHI2_BENCH_ONLY ?? "bf16,f16,q8_0,q4_0").split(",");
const withLlama = process.env.PHI2_BENCH_NO_LLAMA !== "1";

function bf16Folder(): string {
  const dir = join(benchDir, "full-bf16");
  if (!existsSync(join(dir, "config.json"))) {
    console.error(`generating the full-size random model (bf16) in ${dir} ...`);
    makeTestModel({ preset: "full", dtype: "bf16", seed: 1, out: dir, shards: 2 });
  }
  return dir;
}

async function gguf(type: QuantizeType): Promise<string> {
  const file = join(benchDir, `full-${type}.gguf`);
  if (!existsSync(file)) {
    console.error(`writing ${file} ...`);
    await quantizeModel(bf16Folder(), type, file);
  }
  return file;
}

interface Measurement { loadS: number; peakRssGB: number; prefillTokPerS: number; decodeTokPerS: number }

function measureOurs(model: string): Measurement {
  const out = execFileSync(process.execPath, [join(here, "engine.js"), model, String(threads), String(promptTokens), String(decodeTokens)], {
    encoding: "utf8", stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Measurement;
}

interface Row { weights: string; ours?: Measurement; llama?: Measurement }
const rows: Row[] = [];
for (const w of only) {
  console.error(`measuring ${w} ...`);
  if (w === "bf16") {
    // llama.cpp reads this model as F16 (the row below); our engine runs the HF folder as published.
    rows.push({ weights: "bf16 (HF safetensors)", ours: measureOurs(bf16Folder()) });
  } else if (w === "f16" || w === "q8_0" || w === "q4_0") {
    const file = await gguf(w);
    rows.push({
      weights: `${w} (GGUF)`,
      ours: measureOurs(file),
      llama: withLlama ? measureLlama(file, threads, promptTokens, decodeTokens) : undefined,
    });
  } else {
    throw new Error(`PHI2_BENCH_ONLY: unknown row "${w}" (bf16, f16, q8_0, q4_0)`);
  }
}

const f = (x: number | undefined, d = 2) => (x === undefined ? "–" : x.toFixed(d));
const ratio = (a?: number, b?: number) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : "–");
const date = new Date().toISOString().slice(0, 10);
const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const table = [
  `### ${date}: \`npm run bench\`, ${threads} threads, prefill ${promptTokens} tokens, decode ${decodeTokens} tokens`,
  "",
  `Machine: ${machine}. Model: full-size random Phi-2 (2.78e9 parameters). Load s includes a one-token`,
  "warm-up pass in both engines (the first touch of every weight page), so prefill and decode time compute alone.",
  "",
  "| weights | engine | load s | peak RSS GB | prefill tok/s | decode tok/s | prefill ours/llama | decode ours/llama |",
  "|---|---|---:|---:|---:|---:|---:|---:|",
  ...rows.flatMap((r) => [
    `| ${r.weights} | phi2 | ${f(r.ours?.loadS, 1)} | ${f(r.ours?.peakRssGB)} | ${f(r.ours?.prefillTokPerS)} | ${f(r.ours?.decodeTokPerS)} | ` +
      `${ratio(r.ours?.prefillTokPerS, r.llama?.prefillTokPerS)} | ${ratio(r.ours?.decodeTokPerS, r.llama?.decodeTokPerS)} |`,
    ...(r.llama ? [`| ${r.weights} | llama.cpp | ${f(r.llama.loadS, 1)} | ${f(r.llama.peakRssGB)} | ${f(r.llama.prefillTokPerS)} | ${f(r.llama.decodeTokPerS)} | | |`] : []),
  ]),
  "",
].join("\n");
console.log(table);
appendFileSync(join(root, "BENCHMARKS.md"), "\n" + table);
