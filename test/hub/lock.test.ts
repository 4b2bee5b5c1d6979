// The download lock under races no test can time by chance: another process acting in the instant
// between our reading a stale lock and our acting on it. The "other process" is a second acquirer run
// synchronously from inside our read of the lock file (fs.readFileSync patched for the test).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs, { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { withFileLock } from "../../src/hub/lock.js";

async function deadPid(): Promise<number> {
  const child = spawn("true");
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}

test("two acquirers taking over one stale lock at the same instant never hold it together", async () => {
  const dir = mkdtempSync(join(tmpdir(), "phi2-lock-"));
  const lock = join(dir, "blob.incomplete.phi2-lock");
  writeFileSync(lock, String(await deadPid())); // left by a download that was killed
  let active = 0;
  let overlap = false;
  const entered: string[] = [];
  const critical = (name: string) => async () => {
    active++;
    if (active > 1) overlap = true;
    entered.push(name);
    await new Promise((r) => setTimeout(r, 50));
    active--;
  };
  const realRead = fs.readFileSync;
  let second: Promise<void> | undefined;
  let fired = false;
  const patched = function (this: unknown, ...args: Parameters<typeof realRead>) {
    const result = realRead.apply(fs, args);
    if (!fired && String(args[0]) === lock) {
      fired = true; // the first reader has just seen the stale lock: the other one runs now
      second = withFileLock(lock, critical("second"), undefined, 5);
    }
    return result;
  } as typeof realRead;
  fs.readFileSync = patched;
  syncBuiltinESMExports();
  try {
    const first = withFileLock(lock, critical("first"), undefined, 5);
    assert.ok(fired, "the race was staged");
    await Promise.all([first, second]);
  } finally {
    fs.readFileSync = realRead;
    syncBuiltinESMExports();
  }
  assert.equal(overlap, false, "both acquirers were inside the lock at once");
  assert.deepEqual([...entered].sort(), ["first", "second"]);
  assert.ok(!existsSync(lock), "released");
  assert.deepEqual(readdirSync(dir), [], "no temp or stale files left");
});

test("a lock held by a live process is waited for; one by this process with no matching token is a leftover", async () => {
  const dir = mkdtempSync(join(tmpdir(), "phi2-lock-"));
  const lock = join(dir, "x.phi2-lock");
  writeFileSync(lock, `${process.pid} deadbeef`); // our pid, but not a lock we hold: a crash we survived
  assert.equal(await withFileLock(lock, async () => 42, () => assert.fail("waited for a leftover")), 42);
  assert.ok(!existsSync(lock));
});
