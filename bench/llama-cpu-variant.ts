// llama.cpp built for a chosen x86 CPU variant, for the benchmarks.
//
// node-llama-cpp's linux-x64 package ships ggml's CPU backend once per x86 level (libggml-cpu-sse42.so,
// -haswell (AVX2), -skylakex, -icelake, -zen4 (AVX-512 VNNI), ...) and ggml loads the best one this CPU
// runs. There is no option to pick another, so to compare our 128-bit WebAssembly SIMD with llama.cpp at
// a chosen SIMD width, this builds a node_modules folder in which that package holds one variant alone:
// every other package is a symbolic link to the project's own, and the child process runs with
// --preserve-symlinks so that node-llama-cpp resolves its binaries from that folder.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const BINARIES = join("@node-llama-cpp", "linux-x64");
const BIN_DIR = join("bins", "linux-x64");

/** The CPU variants (names as in libggml-cpu-NAME.so) that the installed package ships. */
export function llamaCpuVariants(projectModules: string): string[] {
  const dir = join(projectModules, BINARIES, BIN_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => /^libggml-cpu-(.+)\.so$/.exec(f)?.[1] ?? []).sort();
}

/**
 * A node_modules folder under `workDir` whose llama.cpp runs the CPU variant `variant` alone (made once,
 * reused after). Returns its path; pass it to bench/llama.ts as PHI2_BENCH_LLAMA_MODULES.
 */
export function llamaModulesFor(variant: string, projectModules: string, workDir: string): string {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`PHI2_BENCH_LLAMA_CPU: CPU variants are only for linux-x64 (this is ${process.platform}-${process.arch})`);
  }
  const available = llamaCpuVariants(projectModules);
  if (!available.includes(variant)) {
    throw new Error(`PHI2_BENCH_LLAMA_CPU: no llama.cpp CPU variant "${variant}" in ${join(projectModules, BINARIES, BIN_DIR)} (there are: ${available.join(", ")})`);
  }
  const modules = join(workDir, `llama-cpu-${variant}`, "node_modules");
  const done = join(modules, ".complete");
  if (existsSync(done)) return modules;
  rmSync(modules, { recursive: true, force: true });
  mkdirSync(join(modules, "@node-llama-cpp"), { recursive: true });
  for (const name of readdirSync(projectModules)) {
    if (name !== "@node-llama-cpp" && !name.startsWith(".")) symlinkSync(join(projectModules, name), join(modules, name));
  }
  const binaries = join(modules, BINARIES);
  cpSync(join(projectModules, BINARIES), binaries, { recursive: true });
  for (const f of readdirSync(join(binaries, BIN_DIR))) {
    if (f.startsWith("libggml-cpu-") && f !== `libggml-cpu-${variant}.so`) rmSync(join(binaries, BIN_DIR, f));
  }
  // written last: an interrupted build is redone next time rather than used half-made
  writeFileSync(done, "");
  return modules;
}
