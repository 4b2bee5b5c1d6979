// `phi2 make-test-model`: writes a Hugging Face phi-2 folder with random weights (tests, benchmarks,
// trying the engine without the 5.56 GB download).
import { Command, InvalidArgumentError, Option } from "commander";
import { makeTestModel, type TestDType, type TestPreset } from "../testing/make-test-model.js";
import { fail } from "./options.js";

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function positive(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** A file-system error while writing --out, said in one line that names the flag. */
function outError(out: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === undefined) return e;
  // mkdir of a path that is a file (EEXIST) or runs through one (ENOTDIR)
  const why = code === "EEXIST" || code === "ENOTDIR" ? "a file is in the way: --out must be a folder or a path that does not exist yet"
    : code === "EACCES" || code === "EPERM" ? "permission denied"
    : code === "ENOSPC" ? "no space left on the device"
    : (e as Error).message;
  return new Error(`--out ${out}: ${why}`);
}

export function makeTestModelCommand(): Command {
  return new Command("make-test-model")
    .description("write a Hugging Face phi-2 folder with random weights (Phi-2's architecture, reduced sizes for tiny/small)")
    .addOption(new Option("--preset <preset>", "sizes: tiny (hidden 160, 2 layers), small (hidden 640, 4 layers), full (phi-2: 2.78B parameters)").choices(["tiny", "small", "full"]).makeOptionMandatory())
    .addOption(new Option("--dtype <dtype>", "weight type").choices(["f32", "f16", "bf16"]).default("bf16"))
    .requiredOption("--seed <n>", "random seed (same seed, same options: byte-identical files)", integer("--seed", 0))
    .option("--shards <k>", "split the weights into k safetensors shards + model.safetensors.index.json", integer("--shards", 1), 1)
    .addOption(new Option("--naming <scheme>", "tensor names: hf (model.layers.*) or msft (original release: transformer.h.*, fused Wqkv)").choices(["hf", "msft"]).default("hf"))
    .option("--std <x>", "standard deviation of Linear weights and embedding", positive("--std"))
    .option("--peaked", "weights whose next-token distributions have a clear top-1 (for greedy parity tests)", false)
    .requiredOption("--out <dir>", "folder to write (created; model files already there are replaced)")
    .action((opts: { preset: TestPreset; dtype: TestDType; seed: number; shards: number; naming: "hf" | "msft"; std?: number; peaked: boolean; out: string }) => {
      const start = performance.now();
      let r;
      try {
        r = makeTestModel({
          preset: opts.preset, dtype: opts.dtype, seed: opts.seed, shards: opts.shards, naming: opts.naming,
          std: opts.std, peaked: opts.peaked, out: opts.out,
        });
      } catch (e) {
        fail(outError(opts.out, e));
      }
      const seconds = (performance.now() - start) / 1000;
      const c = r.config;
      console.log(
        `wrote ${r.dir} in ${seconds.toFixed(1)} s: ${(r.parameters / 1e6).toFixed(1)}M parameters, ${opts.dtype}, ` +
          `${formatBytes(r.weightBytes)} of weights (${opts.naming} naming${opts.peaked ? ", peaked" : ""}, seed ${opts.seed})`,
      );
      console.log(
        `  hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads, intermediate ${c.intermediate_size}, vocab ${c.vocab_size}`,
      );
      for (const f of r.files) console.log(`  ${f}`);
    });
}
