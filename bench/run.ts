// npm run bench: our engine and llama.cpp (node-llama-cpp 3.21.1) on the full-size random Phi-2 (speed
// does not depend on weight values), the same files for both, each measurement in its own process
// (so peak RSS is that run's alone). Generates what it needs once into $PHI2_BENCH_DIR (default: the
// OS temp dir, see full-model.ts): the HF folder in bf16 and GGUFs in f16, q8_0, q4_0, q4_k, q4_k_m, q5_k_m written by our
// quantizer (again when the quantizer's code has changed since).
// Prints a Markdown table and appends it to BENCHMARKS.md.
//
// Environment: PHI2_BENCH_THREADS (2), PHI2_BENCH_PROMPT (512), PHI2_BENCH_DECODE (128),
// PHI2_BENCH_ONLY (comma list of rows: bf16,f16,q8_0,q4_0,q4_k,q4_k_m,q5_k_m; default all), PHI2_BENCH_NO_LLAMA=1,
// PHI2_BENCH_ROUNDS (1): rounds per row, each one measurement of our engine then one of llama.cpp; with
// more than one the table shows medians and lists each round's ratios. A VM whose speed drifts by tens of
// percent from minute to minute makes a single pair of runs a poor ratio; adjacent pairs fare better.
// PHI2_BENCH_LLAMA_CPU (comma list of llama.cpp's x86 CPU variants, e.g. sse42,haswell,zen4; default: the
// one ggml picks for this CPU): one llama.cpp row per variant, each measured in every round (see
// bench/llama-cpu-variant.ts); sse42 is 128-bit SIMD as WebAssembly's, haswell AVX2.
import { execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { cpus, totalmem, tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { QuantizeType } from "../src/index.js";
import { fullBf16Folder, fullGguf } from "./full-model.js";
import { measureLlama } from "./llama.js";
import { llamaModulesFor } from "./llama-cpu-variant.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const benchDir = process.env.PHI2_BENCH_DIR ?? join(tmpdir(), "phi2-bench");
const threads = Number(process.env.PHI2_BENCH_THREADS ?? "2");
const promptTokens = Number(process.env.PHI2_BENCH_PROMPT ?? "512");
const decodeTokens = Number(process.env.PHI2_BENCH_DECODE ?? "128");
const ROWS = ["bf16", "f16", "q8_0", "q4_0", "q4_k", "q4_k_m", "q5_k_m"] as const;
const only = (process.env.PHI2_BENCH_ONLY ?? ROWS.join(",")).split(",");
const withLlama = process.env.PHI2_BENCH_NO_LLAMA !== "1";
const rounds = Number(process.env.PHI2_BENCH_ROUNDS ?? "1");
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`PHI2_BENCH_ROUNDS must be a positive integer, got ${process.env.PHI2_BENCH_ROUNDS}`);
/** llama.cpp builds to compare with: label and node_modules folder (undefined: the project's, ggml's own pick). */
const llamaBuilds: { label: string; modules?: string }[] = (process.env.PHI2_BENCH_LLAMA_CPU ?? "")
  .split(",").filter((v) => v !== "")
  .map((v) => ({ label: `llama.cpp (${v})`, modules: llamaModulesFor(v, join(root, "node_modules"), benchDir) }));
if (llamaBuilds.length === 0) llamaBuilds.push({ label: "llama.cpp" });

interface Measurement { loadS: number; peakRssGB: number; prefillTokPerS: number; decodeTokPerS: number; system?: string }

function measureOurs(model: string): Measurement {
  const out = execFileSync(process.execPath, [join(here, "engine.js"), model, String(threads), String(promptTokens), String(decodeTokens)], {
    encoding: "utf8", stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Measurement;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Each metric's median over the rounds (the measurement itself when there is one round). */
function medianOf(ms: Measurement[]): Measurement | undefined {
  if (ms.length === 0) return undefined;
  return {
    loadS: median(ms.map((m) => m.loadS)), peakRssGB: median(ms.map((m) => m.peakRssGB)),
    prefillTokPerS: median(ms.map((m) => m.prefillTokPerS)), decodeTokPerS: median(ms.map((m) => m.decodeTokPerS)),
  };
}

/** llama: per llama.cpp build (llamaBuilds' order), its measurement in each round. */
interface Row { weights: string; ours: Measurement[]; llama: Measurement[][] }
const rows: Row[] = [];
for (const w of only) {
  if (!(ROWS as readonly string[]).includes(w)) throw new Error(`PHI2_BENCH_ONLY: unknown row "${w}" (${ROWS.join(", ")})`);
  // llama.cpp reads the bf16 model as F16 (the f16 row); our engine runs the HF folder as published.
  const row: Row = { weights: w === "bf16" ? "bf16 (HF safetensors)" : `${w} (GGUF)`, ours: [], llama: llamaBuilds.map(() => []) };
  const source = w === "bf16" ? fullBf16Folder(benchDir) : await fullGguf(benchDir, w as QuantizeType);
  for (let r = 1; r <= rounds; r++) {
    console.error(`measuring ${w}${rounds > 1 ? `, round ${r} of ${rounds}` : ""} ...`);
    row.ours.push(measureOurs(source));
    if (!withLlama || w === "bf16") continue;
    llamaBuilds.forEach((b, i) => row.llama[i]!.push(measureLlama(source, threads, promptTokens, decodeTokens, b.modules)));
  }
  rows.push(row);
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
  ...(rounds > 1 ? [`${rounds} rounds per row (ours, then each llama.cpp build); the table shows each metric's median.`, ""] : []),
  "| weights | engine | load s | peak RSS GB | prefill tok/s | decode tok/s | prefill phi2/this | decode phi2/this |",
  "|---|---|---:|---:|---:|---:|---:|---:|",
  ...rows.flatMap((r) => {
    const ours = medianOf(r.ours);
    const line = (engine: string, m: Measurement | undefined, ratios: string) =>
      `| ${r.weights} | ${engine} | ${f(m?.loadS, 1)} | ${f(m?.peakRssGB)} | ${f(m?.prefillTokPerS)} | ${f(m?.decodeTokPerS)} | ${ratios} |`;
    return [
      line("phi2", ours, " | "),
      ...llamaBuilds.flatMap((b, i) => {
        const llama = medianOf(r.llama[i]!);
        return llama ? [line(b.label, llama, `${ratio(ours?.prefillTokPerS, llama.prefillTokPerS)} | ${ratio(ours?.decodeTokPerS, llama.decodeTokPerS)}`)] : [];
      }),
    ];
  }),
  "",
  ...(rounds > 1 ? rows.flatMap((r) => llamaBuilds.flatMap((b, i) => r.llama[i]!.length === 0 ? [] : [
    `${r.weights}, each round's phi2/${b.label}: prefill ${r.ours.map((o, k) => ratio(o.prefillTokPerS, r.llama[i]![k]!.prefillTokPerS)).join(", ")}; ` +
    `decode ${r.ours.map((o, k) => ratio(o.decodeTokPerS, r.llama[i]![k]!.decodeTokPerS)).join(", ")}.`])) : []),
  ...(rounds > 1 ? [""] : []),
  ...llamaBuilds.flatMap((b, i) => {
    const system = rows.find((r) => r.llama[i]!.length > 0)?.llama[i]![0]!.system;
    return system ? [`${b.label}: ${system.trim()}`, ""] : [];
  }),
].join("\n");
console.log(table);
appendFileSync(join(root, "BENCHMARKS.md"), "\n" + table);
