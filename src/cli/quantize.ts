// phi2 quantize: writes a llama.cpp-loadable phi2 GGUF (q8_0, q4_0, q4_k, q4_k_m, f16 or bf16) from a model
// folder, a GGUF file or a hub id. The file appears under its name only once complete.
import { Command, Option } from "commander";
import { QUANTIZE_TYPES, quantizeModel, resolveModel, type QuantizeType } from "../index.js";
import { addHubOptions, fail, hubOptions } from "./options.js";
import { checkOutputFile } from "../formats/output-file.js";

interface QuantizeOpts { model: string; type: QuantizeType; out: string; name?: string; quiet?: boolean; revision?: string; hubUrl?: string }

export function quantizeCommand(): Command {
  const cmd = new Command("quantize")
    .description("write a phi2 GGUF file that llama.cpp and phi2 load (norms and biases stay f32)")
    .requiredOption("-m, --model <path|id>", "model folder (Hugging Face layout), .gguf file, or hub id")
    .addOption(new Option("--type <type>", "weight type").choices([...QUANTIZE_TYPES]).makeOptionMandatory())
    .requiredOption("-o, --out <file.gguf>", "output file (written as <file>.tmp-<pid>, renamed when complete)")
    .option("--name <name>", "general.name stored in the file (default: the source's name)")
    .option("-q, --quiet", "no progress output");
  // not addModelOptions: no engine is loaded here, and -q is --quiet
  return addHubOptions(cmd)
    .addHelpText("after",
      "\nTypes: q8_0 (8.5 bits/weight), q4_0 (4.5), q4_k (4.5, K-quant; rows not a multiple of 256 use q4_0),\n" +
      "q4_k_m (llama.cpp's Q4_K_M: q4_k with q6_k for attn_v/attn_qkv and ffn_down in about half the layers), f16, bf16.\n" +
      "In q4_0/q4_k/q4_k_m files output.weight is stored as q6_k (q8_0 if its rows are not a multiple of 256),\n" +
      "as llama-quantize does.")
    .action(async (o: QuantizeOpts) => {
      // Ctrl-C (or SIGTERM) while writing stops the write and removes the partial file (a download before
      // it keeps Node's default: exit at once, resumable); a second Ctrl-C kills at once.
      const interrupted = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => interrupted.abort(new Error(`interrupted (${signal})`));
      try {
        checkOutputFile(o.out, "--out"); // before a download, not after it
        const t0 = performance.now();
        const source = await resolveModel(o.model, hubOptions(o));
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        const log = o.quiet ? undefined : (line: string) => process.stderr.write(line);
        const r = await quantizeModel(source, o.type, o.out, {
          name: o.name,
          signal: interrupted.signal,
          onTensor: log && process.stderr.isTTY ? ((done, total, name, dtype) => log(`\r[${done}/${total}] ${name} -> ${dtype}\x1b[K`)) : undefined,
        });
        log?.(`${process.stderr.isTTY ? "\r\x1b[K" : ""}wrote ${r.file}: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      } catch (e) {
        if (interrupted.signal.aborted) {
          process.stderr.write(`\nquantize: ${(interrupted.signal.reason as Error).message}; ${o.out} was not written\n`);
          process.exit(130);
        }
        fail(e);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
