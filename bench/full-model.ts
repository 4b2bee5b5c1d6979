// The full-size random Phi-2 the benchmarks run (speed does not depend on weight values), generated once
// into a benchmark folder and shared by `npm run bench` and bench/server.ts: the HF folder in bf16
// (5.56 GB) and GGUFs written from it by our quantizer.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestModel } from "../src/testing/make-test-model.js";
import { quantizeModel, type QuantizeType } from "../src/formats/gguf-quantize.js";

const here = dirname(fileURLToPath(import.meta.url));

/** The bf16 HF folder in benchDir, generated on first use. */
export function fullBf16Folder(benchDir: string): string {
  const dir = join(benchDir, "full-bf16");
  if (!existsSync(join(dir, "config.json"))) {
    console.error(`generating the full-size random model (bf16) in ${dir} ...`);
    makeTestModel({ preset: "full", dtype: "bf16", seed: 1, out: dir, shards: 2 });
  }
  return dir;
}

/**
 * A fingerprint of the quantizer's code (this build's src/formats): a GGUF cached by another version may
 * hold other tensor types or other bytes (output.weight's type, say), so it is written again.
 */
function quantizerStamp(): string {
  const dir = join(here, "..", "src", "formats");
  const hash = createHash("sha256");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".js")).sort()) hash.update(f).update(readFileSync(join(dir, f)));
  return hash.digest("hex");
}

/** The full-size model as a GGUF of `type` in benchDir, written when missing or made by other quantizer code. */
export async function fullGguf(benchDir: string, type: QuantizeType): Promise<string> {
  const file = join(benchDir, `full-${type}.gguf`);
  const stampFile = `${file}.quantizer`;
  const stamp = quantizerStamp();
  if (!existsSync(file) || !existsSync(stampFile) || readFileSync(stampFile, "utf8") !== stamp) {
    const folder = fullBf16Folder(benchDir);
    console.error(`writing ${file} ...`);
    await quantizeModel(folder, type, file, { name: `phi-2 random full ${type}` });
    writeFileSync(stampFile, stamp);
  }
  return file;
}
