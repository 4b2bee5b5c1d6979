// Runs the built CLI (dist/src/cli/main.js) as a user would: a child process, its output captured.
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const CLI_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.js");

/** `phi2 ...args`; rejects when it exits non-zero. */
export const phi2 = (...args: string[]) => run(process.execPath, [CLI_MAIN, ...args], { maxBuffer: 64 << 20 });

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

export interface Spawned {
  child: ChildProcessWithoutNullStreams;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status (null if killed by a signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `phi2 ...args` as a child whose streams the test drives: for signals, early-closing readers and
 * piped stdin. `input` (default none) is written to stdin, which is then closed: stdin is a pipe, not a TTY.
 * `env` is added to this process's environment.
 */
export function spawnPhi2(args: string[], input?: string, env?: NodeJS.ProcessEnv): Spawned {
  return spawnWithEnv(args, input, { ...process.env, ...env });
}

/** spawnPhi2 with `env` as the child's whole environment. */
function spawnWithEnv(args: string[], input: string | undefined, env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  // The child may exit before reading its input, or close stdin: that is not the test's concern.
  child.stdin.on("error", () => {});
  child.stdin.end(input ?? "");
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves once `check` holds for the child's output, or fails after `timeoutMs`. */
export async function waitForOutput(s: Spawned, check: (stdout: string, stderr: string) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check(s.stdout(), s.stderr())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; stderr:\n${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * `phi2 ...args` as a child whose environment is only PATH and `env` (no HF_TOKEN, proxy or cache
 * variables of the machine running the tests leak in); resolves with its exit status and output.
 */
export async function phi2CleanEnv(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const s = spawnWithEnv(args, undefined, { PATH: process.env.PATH, ...env });
  const { code } = await s.exited;
  return { code: code ?? -1, stdout: s.stdout(), stderr: s.stderr() };
}
