// Server benchmark: aggregate generated tokens/s and time to first token with 1, 4, 8, 16 concurrent
// streaming clients against `phi2 serve` (continuous batching), beside llama.cpp (node-llama-cpp) decoding
// the same number of sequences in one context (its batched decoding) from the same GGUF file.
//
//   node dist/bench/server.js                 # q8_0 and bf16 GGUFs of the full-size random model
//   node dist/bench/server.js phi2 FILE       # one engine, one file: prints one JSON line
//   node dist/bench/server.js llama FILE
//
// Environment: PHI2_BENCH_DIR (model files; default $TMPDIR/phi2-bench), PHI2_BENCH_THREADS (2),
// PHI2_BENCH_CLIENTS ("1,4,8,16"), PHI2_BENCH_TOKENS (tokens per client, 32), PHI2_BENCH_TYPES
// ("q8_0,bf16"), PHI2_BENCH_NO_WRITE=1 (print, do not append to BENCHMARKS.md).
// Each engine runs in its own process so their memory and threads never overlap.
import { execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../src/server/server.js";
import type { QuantizeType } from "../src/formats/gguf-quantize.js";
import { fullGguf } from "./full-model.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const benchDir = process.env.PHI2_BENCH_DIR ?? join(tmpdir(), "phi2-bench");
const threads = Number(process.env.PHI2_BENCH_THREADS ?? "2");
const clientCounts = (process.env.PHI2_BENCH_CLIENTS ?? "1,4,8,16").split(",").map(Number);
const tokensPerClient = Number(process.env.PHI2_BENCH_TOKENS ?? "32");
const maxClients = Math.max(...clientCounts);

/** Distinct short prompts (about 12 tokens each), one per client. */
function promptText(i: number): string {
  return `Client ${i} asks: please write a short story about the number ${i * 7 + 3}.`;
}

interface Round {
  clients: number;
  /** All clients' generated tokens / wall time from the first request to the last token. */
  aggregateTokPerS: number;
  /** Mean and worst time from a client's request to its first generated token. */
  ttftMeanS: number;
  ttftMaxS: number;
  wallS: number;
}

interface EngineResult {
  engine: string;
  file: string;
  threads: number;
  loadS: number;
  rounds: Round[];
}

function summarize(clients: number, wallS: number, ttfts: number[], tokens: number): Round {
  return {
    clients,
    aggregateTokPerS: tokens / wallS,
    ttftMeanS: ttfts.reduce((a, b) => a + b, 0) / ttfts.length,
    ttftMaxS: Math.max(...ttfts),
    wallS,
  };
}

/** Our server on 127.0.0.1, clients streaming /v1/completions over HTTP (SSE), one chunk per token. */
async function benchPhi2(file: string): Promise<EngineResult> {
  const t0 = performance.now();
  const server = await startServer({
    model: file, port: 0, parallel: maxClients, threads, contextLength: 128, queueSize: 0, playground: false,
  });
  await server.ready;
  const loadS = (performance.now() - t0) / 1000;

  const client = async (i: number, maxTokens: number): Promise<{ ttft: number; tokens: number }> => {
    const start = performance.now();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // logprobs: 0 makes every token its own chunk, so the first chunk marks the first token.
      body: JSON.stringify({ prompt: promptText(i), max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, logprobs: 0 }),
    });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    let ttft = -1;
    let tokens = 0;
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(bytes, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        const chunk = JSON.parse(event.slice(6));
        if (chunk.error) throw new Error(chunk.error.message);
        const n = chunk.choices[0]?.logprobs?.tokens?.length ?? 0;
        if (n > 0 && ttft < 0) ttft = (performance.now() - start) / 1000;
        tokens += n;
      }
    }
    return { ttft, tokens };
  };

  await client(0, 2); // warm-up: JIT, page cache
  const rounds: Round[] = [];
  for (const clients of clientCounts) {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: clients }, (_, i) => client(i + 1, tokensPerClient)));
    const wallS = (performance.now() - start) / 1000;
    const tokens = results.reduce((s, r) => s + r.tokens, 0);
    if (tokens !== clients * tokensPerClient) throw new Error(`expected ${clients * tokensPerClient} tokens, got ${tokens}`);
    rounds.push(summarize(clients, wallS, results.map((r) => r.ttft), tokens));
    console.error(`phi2 ${clients} clients: ${(tokens / wallS).toFixed(2)} tok/s`);
  }
  await server.shutdown(1000);
  return { engine: "phi2 serve", file, threads, loadS, rounds };
}

/** llama.cpp: one context with one sequence per client, all evaluating at once (node-llama-cpp batches them). */
async function benchLlama(file: string): Promise<EngineResult> {
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });
  const loadS = (performance.now() - t0) / 1000;
  const rounds: Round[] = [];
  const run = async (clients: number, maxTokens: number): Promise<Round> => {
    const context = await model.createContext({
      contextSize: 128 * clients, sequences: clients, batchSize: 512, threads: { ideal: threads, min: threads },
    });
    const start = performance.now();
    const results = await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const sequence = context.getSequence();
        const prompt = model.tokenize(promptText(i + 1));
        let ttft = -1;
        let tokens = 0;
        for await (const _token of sequence.evaluate(prompt, { temperature: 0 })) {
          if (ttft < 0) ttft = (performance.now() - start) / 1000;
          if (++tokens >= maxTokens) break;
        }
        return { ttft, tokens };
      }),
    );
    const wallS = (performance.now() - start) / 1000;
    await context.dispose();
    return summarize(clients, wallS, results.map((r) => r.ttft), results.reduce((s, r) => s + r.tokens, 0));
  };
  await run(1, 2); // warm-up
  for (const clients of clientCounts) {
    const round = await run(clients, tokensPerClient);
    rounds.push(round);
    console.error(`llama.cpp ${clients} clients: ${round.aggregateTokPerS.toFixed(2)} tok/s`);
  }
  await model.dispose();
  return { engine: "llama.cpp (node-llama-cpp 3.21.1)", file, threads, loadS, rounds };
}

function table(results: { type: string; phi2: EngineResult; llama: EngineResult }[]): string {
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const lines = [
    `### ${new Date().toISOString().slice(0, 10)}: \`node dist/bench/server.js\` (server, continuous batching)`,
    "",
    `Machine: ${machine}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(" / ")}. ` +
      `Full-size random Phi-2 GGUFs (the same file for both engines), ${threads} threads, ${tokensPerClient} greedy tokens ` +
      "per client after a ~15-token prompt. phi2: `phi2 serve` with one slot per client, streaming HTTP clients on loopback. " +
      "llama.cpp: one context, one sequence per client, all evaluating at once (node-llama-cpp batches them into one decode).",
    "",
    "| weights | clients | phi2 tok/s (aggregate) | phi2 TTFT mean / max s | llama.cpp tok/s | llama.cpp TTFT mean / max s | phi2 / llama.cpp | phi2 speed-up vs 1 client |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { type, phi2, llama } of results) {
    const single = phi2.rounds[0]?.aggregateTokPerS ?? NaN;
    phi2.rounds.forEach((p, i) => {
      const l = llama.rounds[i];
      lines.push(
        `| ${type} | ${p.clients} | ${p.aggregateTokPerS.toFixed(2)} | ${p.ttftMeanS.toFixed(2)} / ${p.ttftMaxS.toFixed(2)} | ` +
          `${l.aggregateTokPerS.toFixed(2)} | ${l.ttftMeanS.toFixed(2)} / ${l.ttftMaxS.toFixed(2)} | ` +
          `${(p.aggregateTokPerS / l.aggregateTokPerS).toFixed(2)}× | ${(p.aggregateTokPerS / single).toFixed(2)}× |`,
      );
    });
  }
  lines.push("", `Load: ${results.map((r) => `${r.type}: phi2 ${r.phi2.loadS.toFixed(1)} s, llama.cpp ${r.llama.loadS.toFixed(1)} s (mmap)`).join("; ")}.`, "");
  return lines.join("\n");
}

function measureInChild(engine: "phi2" | "llama", file: string): EngineResult {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), engine, file], {
    encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24,
  });
  const line = out.trim().split("\n").pop()!;
  console.error(line); // each engine's result as soon as it is known, in case a later one is cut short
  return JSON.parse(line) as EngineResult;
}

const [mode, fileArg] = process.argv.slice(2);
if (mode === "phi2" || mode === "llama") {
  if (!fileArg) throw new Error(`usage: node dist/bench/server.js ${mode} FILE`);
  const result = mode === "phi2" ? await benchPhi2(fileArg) : await benchLlama(fileArg);
  console.log(JSON.stringify(result));
} else if (mode === undefined) {
  const types = (process.env.PHI2_BENCH_TYPES ?? "q8_0,bf16").split(",") as QuantizeType[];
  const results = [];
  for (const type of types) {
    const file = await fullGguf(benchDir, type);
    results.push({ type, phi2: measureInChild("phi2", file), llama: measureInChild("llama", file) });
  }
  const text = table(results);
  console.log(text);
  if (process.env.PHI2_BENCH_NO_WRITE !== "1") appendFileSync(join(root, "BENCHMARKS.md"), "\n" + text);
} else {
  console.error("usage: node dist/bench/server.js [phi2 FILE | llama FILE]");
  process.exit(2);
}
