// phi2 bench: prompt-processing and generation speed of a model on this machine, as llama-bench measures
// them (pp512 / tg128, mean ± standard deviation over repetitions), with the model's type, size, load
// time and peak memory. The timing itself is measureThroughput's (src/model/throughput.ts).
import { Command, Option } from "commander";
import { formatBytes } from "../hub/progress.js";
import { kernelVariant } from "../kernels/wasm.js";
import { measureThroughput, throughputContext, type ThroughputResult } from "../model/throughput.js";
import { addModelOptions, fail, intArg, openModel, type ModelOpts } from "./options.js";

interface BenchOpts extends ModelOpts { promptTokens: number[]; genTokens: number[]; repetitions: number; json?: boolean }

/** "512" or "128,512": token counts, each 0 .. 2^20. */
function countList(name: string) {
  const one = intArg(name, 0, 1 << 20);
  return (v: string): number[] => v.split(",").map((s) => one(s.trim()));
}

/** 2.78 B / 17.05 M parameters. */
function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(2)} M`;
}

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

export function benchCommand(): Command {
  const cmd = new Command("bench").description("measure prompt processing (ppN) and generation (tgN) speed, as llama-bench does");
  addModelOptions(cmd);
  return cmd
    .addOption(new Option("-p, --prompt-tokens <n,...>", "pp tests: prompt tokens processed in one pass (0 = no pp test)")
      .argParser(countList("--prompt-tokens")).default([512], "512"))
    .addOption(new Option("-n, --gen-tokens <n,...>", "tg tests: tokens generated one pass at a time (0 = no tg test)")
      .argParser(countList("--gen-tokens")).default([128], "128"))
    .option("-r, --repetitions <n>", "timed runs of each test", intArg("--repetitions", 1, 1000), 3)
    .option("--json", "print one JSON object instead of the table")
    .addHelpText("after",
      "\nBoth tests start from an empty KV cache, as llama-bench's do; the fed token ids are fixed and nothing\n" +
      "is sampled. One single-token pass warms up first. `npm run bench` measures decode after a 512-token\n" +
      "prompt instead, hence slightly lower tg numbers there. The KV cache holds the longest test's tokens\n" +
      "unless --ctx-size says more. Size is the weights as held in memory. Example: -p 128,512 -n 0.")
    .action(async (o: BenchOpts) => {
      const need = throughputContext(o);
      const asked = `--prompt-tokens ${o.promptTokens.join(",")} / --gen-tokens ${o.genTokens.join(",")}`;
      if (need === 0) fail(`nothing to measure: ${asked} are all 0`);
      if (o.ctxSize !== undefined && o.ctxSize < need) fail(`--ctx-size ${o.ctxSize} is too small: ${asked} need ${need} tokens`);
      let model;
      try {
        model = await openModel(o, o.ctxSize === undefined ? { contextLength: need } : {}).catch((e: unknown) => {
          if (e instanceof RangeError && /context length/.test(e.message)) {
            throw new RangeError(`${e.message}: ${asked} need ${need} tokens`);
          }
          throw e;
        });
        const loadS = model.loadMs / 1000;
        const w = model.weights;
        const head = {
          model: model.name, types: w.types, size: formatBytes(w.bytes), params: formatParams(w.params),
          threads: String(model.engine.threads), kv: o.kvType ?? "f16",
        };
        if (!o.json) {
          process.stdout.write(row(["model", "type", "size", "params", "threads", "kv", "test", "t/s"]) + "\n");
          process.stdout.write(row(["---", "---", "---:", "---:", "---:", "---", "---:", "---:"]) + "\n");
        }
        const print = (r: ThroughputResult) => {
          if (o.json) return;
          const cells = [head.model, head.types, head.size, head.params, head.threads, head.kv, r.test, `${r.mean.toFixed(2)} ± ${r.stddev.toFixed(2)}`];
          process.stdout.write(row(cells) + "\n");
        };
        const results = await measureThroughput(model.engine, o, print);
        const peakRssBytes = process.resourceUsage().maxRSS * 1024;
        if (o.json) {
          process.stdout.write(JSON.stringify({
            model: model.name, source: model.source, types: w.types, bytes: w.bytes, params: w.params,
            threads: model.engine.threads, kvType: head.kv, kernels: kernelVariant(), loadS, peakRssBytes, results,
          }) + "\n");
        } else {
          process.stderr.write(`load ${loadS.toFixed(1)} s | peak RSS ${(peakRssBytes / 1e9).toFixed(2)} GB | ${kernelVariant()} SIMD kernels\n`);
        }
      } catch (e) {
        await model?.dispose();
        fail(e);
      }
      await model.dispose();
    });
}
