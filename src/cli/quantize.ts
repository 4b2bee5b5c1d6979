// phi2 quantize: writes a llama.cpp-loadable phi2 GGUF (q8_0, q4_0, the K-quant mixes q4_k, q4_k_s, q4_k_m,
// q5_k_s, q5_k_m, q6_k, f16 or bf16) from a model folder, a GGUF file or a hub id. The file appears under its name only once complete.
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
      "\nTypes (the tensor types llama-quantize picks for phi2; bits/weight of the bulk):\n" +
      "  q8_0    Q8_0 (8.5)             q4_0   Q4_0 (4.5)        f16, bf16  16-bit\n" +
      "  q4_k    every matrix Q4_K (4.5); not a llama.cpp mix\n" +
      "  q4_k_s  Q4_K; Q5_K for attn_v/attn_qkv of the first 4 layers and ffn_down of the first eighth\n" +
      "  q4_k_m  Q4_K; Q6_K for attn_v/attn_qkv and ffn_down in about half the layers (use_more_bits)\n" +
      "  q5_k_s  every matrix Q5_K (5.5)\n" +
      "  q5_k_m  Q5_K; Q6_K for attn_v/attn_qkv and ffn_down in about half the layers\n" +
      "  q6_k    every matrix Q6_K (6.6)\n" +
      "In every type but q8_0, f16 and bf16, output.weight is Q6_K. Rows not a multiple of 256 fall back:\n" +
      "Q6_K and Q5_K to Q8_0, Q4_K to Q4_0 (llama-quantize: Q5_1 and Q5_0, which we cannot write);\n" +
      "rows not a multiple of 32 to f16.")
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
