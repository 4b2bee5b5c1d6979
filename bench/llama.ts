// llama.cpp's side of the benchmark: node-llama-cpp (its prebuilt CPU binaries, never a download or a
// build) on the very GGUF file our engine runs, measured the way bench/engine.ts measures ours:
// load time, peak RSS, prefill tokens/s over one P-token batch, decode tokens/s over N greedy tokens.
//
// measureLlama() runs the measurement in a child process (this file as a CLI), so the peak RSS is
// llama.cpp's alone. Usage: node dist/bench/llama.js FILE THREADS PROMPT_TOKENS DECODE_TOKENS
// (PHI2_BENCH_LLAMA_MODULES=DIR, with node --preserve-symlinks: node-llama-cpp from that node_modules
// folder, made by bench/llama-cpu-variant.ts to run one chosen CPU variant of llama.cpp).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Token } from "node-llama-cpp";

export interface LlamaMeasurement {
  /** Model file mapped + weights loaded + context (KV cache, compute buffers) created. */
  loadS: number;
  /** getLlama(): loading the native backend, once per process (not part of loadS). */
  backendS: number;
  peakRssGB: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  /** llama.cpp's CPU features, from its system info. */
  system: string;
  /**
   * 1-minute load average before and after. llama.cpp's threads meet at spinning barriers after every
   * graph node, so anything else running on the cores ruins its numbers (measured on a busy 2-core
   * machine, small model: decode 3.6 tokens/s with 2 threads, 92 with 1): check these are low.
   */
  loadAvgBefore: number;
  loadAvgAfter: number;
}

/**
 * Runs node-llama-cpp on `ggufPath` in a child process and returns its measurement. `modules`: a
 * node_modules folder from llamaModulesFor (one CPU variant); by default the project's, where ggml
 * picks the best variant for this CPU.
 */
export function measureLlama(
  ggufPath: string, threads: number, promptTokens: number, decodeTokens: number, modules?: string,
): LlamaMeasurement {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" };
  delete env.PHI2_BENCH_LLAMA_MODULES;
  if (modules) env.PHI2_BENCH_LLAMA_MODULES = modules;
  const out = execFileSync(
    process.execPath,
    [...(modules ? ["--preserve-symlinks"] : []), fileURLToPath(import.meta.url), ggufPath, String(threads), String(promptTokens), String(decodeTokens)],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env },
  );
  const last = out.trim().split("\n").pop();
  if (!last) throw new Error(`bench/llama: no measurement printed for ${ggufPath}`);
  return JSON.parse(last) as LlamaMeasurement;
}

function positiveInt(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const [file, threadsArg = "2", promptArg = "512", decodeArg = "128"] = argv;
  if (!file) {
    console.error("usage: node dist/bench/llama.js FILE.gguf [THREADS] [PROMPT_TOKENS] [DECODE_TOKENS]");
    process.exit(2);
  }
  if (!existsSync(file)) throw new Error(`${file}: no such GGUF file`);
  const threads = positiveInt("THREADS", threadsArg);
  const promptTokens = positiveInt("PROMPT_TOKENS", promptArg);
  const decodeTokens = positiveInt("DECODE_TOKENS", decodeArg);

  const loadAvgBefore = loadavg()[0]!;
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
  const modules = process.env.PHI2_BENCH_LLAMA_MODULES;
  const { getLlama, LlamaLogLevel } = modules
    ? (await import(pathToFileURL(join(modules, "node-llama-cpp", "dist", "index.js")).href)) as typeof import("node-llama-cpp")
    : await import("node-llama-cpp");
  const t0 = performance.now();
  const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
    logLevel: LlamaLogLevel.error, maxThreads: threads,
  });
  const backendS = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: promptTokens + decodeTokens + 8,
    batchSize: promptTokens, // the whole prompt in one batch, as our engine prefills it
    threads,
    sequences: 1,
  });
  const sequence = context.getSequence();
  // Warm-up, as bench/engine.ts does: one token's forward pass touches every weight page once (with
  // mmap, the file's pages get mapped on first use), so the prefill below measures compute alone.
  await sequence.controlledEvaluate([[1 as Token, { generateNext: { token: true, options: { temperature: 0 } } }]] as never);
  await sequence.clearHistory();
  const loadS = (performance.now() - t1) / 1000;

  // The same deterministic ids as bench/engine.ts (speed does not depend on which tokens).
  const prompt = Array.from({ length: promptTokens }, (_, i) => ((i * 7919 + 13) % 50000) as Token);
  const t2 = performance.now();
  const input = prompt.map((t, i) => (i === promptTokens - 1 ? ([t, { generateNext: { token: true, options: { temperature: 0 } } }] as const) : t));
  const results = await sequence.controlledEvaluate(input as never);
  const first = results[promptTokens - 1]?.next.token;
  const prefillS = (performance.now() - t2) / 1000;
  if (first == null) throw new Error("llama.cpp produced no token after the prompt");

  // Decode: each iteration is one forward pass of one token and a greedy pick.
  let decoded = 0;
  const t3 = performance.now();
  for await (const _ of sequence.evaluate([first], { temperature: 0 })) {
    if (++decoded >= decodeTokens) break;
  }
  const decodeS = (performance.now() - t3) / 1000;
  const measuredThreads = context.currentThreads;

  await context.dispose();
  await model.dispose();
  const system = llama.systemInfo;
  await llama.dispose();

  const result: LlamaMeasurement = {
    loadS,
    backendS,
    peakRssGB: (process.resourceUsage().maxRSS * 1024) / 1e9,
    prefillTokPerS: promptTokens / prefillS,
    decodeTokPerS: decodeTokens / decodeS,
    threads: measuredThreads,
    promptTokens,
    decodeTokens,
    system,
    loadAvgBefore,
    loadAvgAfter: loadavg()[0]!,
  };
  console.log(JSON.stringify(result));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
