// One phi2 process at a time downloads a given blob: `phi2 serve` and `phi2 chat` started together on a
// fresh machine must not append to the same partial file. The lock is a file holding "{pid} {token}";
// a lock whose process is gone (killed mid-download) is taken over.
// (huggingface_hub's own locks are flock()s on other files; they do not see these, nor we theirs.)
//
// Every step is a single atomic file-system call, because two processes may run them at once:
// - taking: the content is written to a private temp file first and hard-linked to the lock name, so
//   the lock never exists without its owner (an empty lock read mid-write would look dead), and
//   link() fails with EEXIST when someone holds it;
// - taking over a stale lock: it is renamed to a private name, which only one process can do; if what
//   was renamed is not the stale lock we judged (someone took it over and locked it meanwhile), it
//   is linked back at once.
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Tokens of the locks this process holds: a lock with our pid but another token is a leftover. */
const heldHere = new Set<string>();

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

function readLock(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Whether the lock content names a live holder (a pid of ours counts only with a token we hold). */
function holderAlive(content: string): boolean {
  const [pidText, token] = content.trim().split(/\s+/);
  const pid = Number(pidText);
  if (pid === process.pid) return token !== undefined && heldHere.has(token);
  return pidAlive(pid);
}

/** Remove the stale lock whose content was `stale`, unless someone replaced it meanwhile. */
function takeOver(path: string, stale: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // someone else took it over first
    throw err;
  }
  if (readLock(aside) !== stale) {
    // We moved a fresh lock: put it back for its owner (EEXIST: a third process locked in the
    // instant it was away; nothing better can be done than leaving theirs).
    try {
      linkSync(aside, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  rmSync(aside, { force: true });
}

/** Run `fn` holding the lock file `path`; `onWait` is called once if another live process holds it. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, onWait?: (ownerPid: number) => void, pollMs = 250): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const token = randomBytes(8).toString("hex");
  const mine = `${process.pid} ${token}`;
  const temp = `${path}.${process.pid}-${token}.tmp`;
  writeFileSync(temp, mine);
  let told = false;
  try {
    for (;;) {
      try {
        linkSync(temp, path);
        heldHere.add(token);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const content = readLock(path);
      if (content === undefined) continue; // released between our two calls
      if (!holderAlive(content)) {
        takeOver(path, content); // stale: its process died (or is us after a crash we survived)
        continue;
      }
      if (!told) onWait?.(Number(content.trim().split(/\s+/)[0]));
      told = true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    rmSync(temp, { force: true });
  }
  try {
    return await fn();
  } finally {
    heldHere.delete(token);
    // Release only our own lock: if it was taken from us (wrongly judged stale), the new one is not ours.
    if (readLock(path) === mine) rmSync(path, { force: true });
  }
}
