// One engine measurement in its own process (so peak RSS is this model's alone):
// load time, peak RSS, prefill tokens/s over a P-token prompt, decode tokens/s over N tokens.
// Usage: node dist/bench/engine.js MODEL THREADS PROMPT_TOKENS DECODE_TOKENS [quant]
import { loadModel } from "../src/index.js";
import { benchTokenIds } from "../src/model/throughput.js";

const [modelPath, threadsArg = "2", promptArg = "512", decodeArg = "128", quant] = process.argv.slice(2);
if (!modelPath) {
  console.error("usage: node dist/bench/engine.js MODEL [THREADS] [PROMPT_TOKENS] [DECODE_TOKENS] [q8_0|q4_0]");
  process.exit(2);
}
const promptTokens = Number(promptArg), decodeTokens = Number(decodeArg);

const t0 = performance.now();
const model = await loadModel(modelPath, {
  threads: Number(threadsArg), contextLength: promptTokens + decodeTokens + 8,
  quant: quant as "q8_0" | "q4_0" | undefined,
});
// Warm-up: one token's forward pass. The first pass over freshly read weights is slow on some machines
// (new anonymous memory gets mapped on first use: ~3 s for 3 GB on a small VM), so it is counted in
// the load time, and the prefill below measures compute alone; bench/llama.ts does the same.
await model.engine.forward([{ slot: 0, tokens: [1], startPos: 0 }]);
const loadS = (performance.now() - t0) / 1000;
const rssAfterLoad = process.memoryUsage().rss;

// Deterministic ordinary-text-like ids (speed does not depend on which tokens).
const prompt = benchTokenIds(promptTokens, model.config.vocab_size);
const t1 = performance.now();
let [logits] = await model.engine.forward([{ slot: 0, tokens: prompt, startPos: 0 }]);
const prefillS = (performance.now() - t1) / 1000;

let pos = promptTokens;
const t2 = performance.now();
for (let i = 0; i < decodeTokens; i++) {
  let best = 0;
  for (let v = 1; v < 50295; v++) if (logits![v]! > logits![best]!) best = v;
  [logits] = await model.engine.forward([{ slot: 0, tokens: [best], startPos: pos++ }]);
}
const decodeS = (performance.now() - t2) / 1000;
await model.dispose();

console.log(JSON.stringify({
  model: modelPath,
  threads: model.engine.threads,
  loadS,
  rssAfterLoadGB: rssAfterLoad / 1e9,
  peakRssGB: process.resourceUsage().maxRSS * 1024 / 1e9,
  promptTokens,
  prefillTokPerS: promptTokens / prefillS,
  decodeTokens,
  decodeTokPerS: decodeTokens / decodeS,
}));
