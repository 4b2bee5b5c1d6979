// Runs the built CLI (dist/src/cli/main.js) as a user would: a child process, its output captured.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const main = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.js");

/** `phi2 ...args`; rejects when it exits non-zero. */
export const phi2 = (...args: string[]) => run(process.execPath, [main, ...args], { maxBuffer: 64 << 20 });

/** `phi2 ...args`, which must fail: returns its stderr. */
export async function phi2Fails(...args: string[]): Promise<string> {
  try {
    await phi2(...args);
  } catch (e) {
    const err = e as { code: number; stderr: string };
    assert.notEqual(err.code, 0);
    return err.stderr;
  }
  assert.fail(`phi2 ${args.join(" ")} succeeded`);
}
