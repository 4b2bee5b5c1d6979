// bench/llama-cpu-variant.ts: a node_modules folder whose llama.cpp runs one chosen CPU variant.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { llamaCpuVariants, llamaModulesFor } from "../../bench/llama-cpu-variant.js";
import { tempDir } from "../helpers/temp-dir.js";

const projectModules = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "node_modules");
const linuxX64 = process.platform === "linux" && process.arch === "x64";

/** A stand-in project node_modules: one ordinary package and the binaries package with three variants. */
function fakeModules(): string {
  const modules = join(tempDir(), "node_modules");
  mkdirSync(join(modules, "some-package"), { recursive: true });
  writeFileSync(join(modules, "some-package", "index.js"), "");
  const bins = join(modules, "@node-llama-cpp", "linux-x64", "bins", "linux-x64");
  mkdirSync(bins, { recursive: true });
  for (const f of ["libggml-base.so", "libggml-cpu-sse42.so", "libggml-cpu-haswell.so", "libggml-cpu-zen4.so", "llama-addon.node"]) {
    writeFileSync(join(bins, f), f);
  }
  return modules;
}

test("the variant's folder links every other package and keeps that one CPU backend alone", { skip: !linuxX64 }, () => {
  const modules = fakeModules();
  assert.deepEqual(llamaCpuVariants(modules), ["haswell", "sse42", "zen4"]);
  const work = tempDir();
  const made = llamaModulesFor("haswell", modules, work);
  assert.ok(lstatSync(join(made, "some-package")).isSymbolicLink());
  assert.deepEqual(readdirSync(join(made, "@node-llama-cpp", "linux-x64", "bins", "linux-x64")).sort(),
    ["libggml-base.so", "libggml-cpu-haswell.so", "llama-addon.node"]);
  // the project's own package is untouched
  assert.equal(llamaCpuVariants(modules).length, 3);
  // made once, then reused
  assert.equal(llamaModulesFor("haswell", modules, work), made);
});

test("an unknown variant is refused with the ones there are", { skip: !linuxX64 }, () => {
  assert.throws(() => llamaModulesFor("pentium", fakeModules(), tempDir()),
    /PHI2_BENCH_LLAMA_CPU: no llama\.cpp CPU variant "pentium" in .*\(there are: haswell, sse42, zen4\)/);
});

test("node-llama-cpp run from the sse42 folder loads that backend (no AVX)", { skip: !linuxX64 || !existsSync(join(projectModules, "node-llama-cpp")) }, () => {
  assert.ok(llamaCpuVariants(projectModules).includes("sse42"), "the installed node-llama-cpp ships an sse42 backend");
  const made = llamaModulesFor("sse42", projectModules, tempDir());
  const entry = pathToFileURL(join(made, "node-llama-cpp", "dist", "index.js")).href;
  const script = `const { getLlama } = await import(${JSON.stringify(entry)});
    const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false });
    console.log(JSON.stringify(llama.systemInfo)); await llama.dispose();`;
  // a script file, not -e: node-llama-cpp tests its binary in a child process that inherits execArgv
  const file = join(tempDir(), "system-info.mjs");
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, ["--preserve-symlinks", file], {
    encoding: "utf8", env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" },
  });
  const system = JSON.parse(out.trim().split("\n").pop()!) as string;
  assert.match(system, /SSSE3 = 1/);
  assert.doesNotMatch(system, /AVX/);
});
