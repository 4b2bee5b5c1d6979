// What `npm install phi2` gets: the files npm would pack (package.json "files"), listed by npm itself.
// The CLI, the library and the playground must find everything they load at run time in it (the
// compiled code, both kernel builds, the web assets, every module a packed module imports), and the
// tests, benchmarks and sources stay out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { PLAYGROUND_ASSETS } from "../../src/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

test("the npm package holds what phi2 loads at run time, and no tests, benchmarks or TypeScript sources", () => {
  // --ignore-scripts: list what is built already (prepack would rebuild it first)
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const out = execFileSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const files = new Set<string>((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

  const needed = [
    pkg.bin.phi2, pkg.main, pkg.types, pkg.exports["."].default.replace(/^\.\//, ""), pkg.exports["."].types.replace(/^\.\//, ""),
    "dist/kernels/kernels.wasm", "dist/kernels/kernels-relaxed.wasm",
    ...PLAYGROUND_ASSETS.map((a) => `src/web/${a.file}`),
    "README.md", "LICENSE", "package.json",
  ];
  for (const f of needed) assert.ok(files.has(f), `${f} is not in the package`);

  // Every relative import of a packed module resolves to a packed file.
  let imports = 0;
  for (const f of files) {
    if (!f.endsWith(".js")) continue;
    const text = readFileSync(join(root, f), "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = normalize(join(dirname(f), m[1])).split("\\").join("/");
      assert.ok(files.has(target), `${f} imports ${m[1]}, which is not in the package`);
      imports++;
    }
  }
  assert.ok(imports > 100, `only ${imports} relative imports found: the pattern no longer matches the compiled code`);

  const stray = [...files].filter((f) => /^(dist\/(test|bench)\/|test\/|bench\/|scripts\/)|\.ts$/.test(f) && !f.endsWith(".d.ts"));
  assert.deepEqual(stray, [], "tests, benchmarks, scripts and TypeScript sources stay out of the package");
});
