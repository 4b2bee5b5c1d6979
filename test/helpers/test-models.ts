// Test models generated once and shared by every test file (and every test process): each option set
// gets a folder under os.tmpdir()/phi2-test-models, keyed by the options and by a fingerprint of the
// code that writes models, so a changed generator never serves stale files.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestModel, type MakeTestModelOptions } from "../../src/testing/make-test-model.js";

export type TestModelOptions = Omit<MakeTestModelOptions, "out">;

export const TEST_MODELS_DIR = join(tmpdir(), "phi2-test-models");

/** The compiled files whose output lands in a model folder. */
const GENERATOR_FILES = [
  "../../src/testing/make-test-model.js",
  "../../src/testing/random.js",
  "../../src/kernels/reference.js",
  "../../src/formats/safetensors.js",
  "../../src/tokenizer/files.js",
];

let fingerprint: string | undefined;
function generatorFingerprint(): string {
  if (fingerprint) return fingerprint;
  const here = dirname(fileURLToPath(import.meta.url));
  const h = createHash("sha256");
  for (const f of GENERATOR_FILES) {
    const path = join(here, f);
    h.update(existsSync(path) ? readFileSync(path) : f);
  }
  fingerprint = h.digest("hex").slice(0, 12);
  return fingerprint;
}

/** JSON with sorted keys, so {a, b} and {b, a} name the same model. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
}

/** Folders written by an older generator: removed once nobody could still be using them (1 hour). */
function pruneStale(fp: string): void {
  for (const name of readdirSync(TEST_MODELS_DIR)) {
    if (name.startsWith(fp)) continue;
    const path = join(TEST_MODELS_DIR, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > 3600_000) rmSync(path, { recursive: true, force: true });
    } catch { /* someone else removed it */ }
  }
}

/** The folder of a generated test model (generated on first use, then reused). */
export function testModel(opts: TestModelOptions): string {
  const fp = generatorFingerprint();
  const key = createHash("sha256").update(canonical(opts)).digest("hex").slice(0, 16);
  const dir = join(TEST_MODELS_DIR, `${fp}-${opts.preset}-${opts.dtype}-${key}`);
  if (existsSync(join(dir, "config.json"))) return dir;
  mkdirSync(TEST_MODELS_DIR, { recursive: true });
  pruneStale(fp);
  // Write beside, then rename: a concurrent test process sees either nothing or a whole folder.
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    makeTestModel({ ...opts, out: tmp });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(join(dir, "config.json"))) throw e; // not "someone else finished first"
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
