// One phi2 process at a time downloads a given blob: `phi2 serve` and `phi2 chat` started together on a
// fresh machine must not append to the same .incomplete file. The lock is a file created exclusively
// holding the owner's pid; a lock whose process is gone (killed mid-download) is taken over.
// (huggingface_hub's own locks are flock()s on other files; they do not see these, nor we theirs.)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Run `fn` holding the lock file `path`; `onWait` is called once if another live process holds it. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, onWait?: (ownerPid: number) => void, pollMs = 250): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  let told = false;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(path, "utf8").trim());
    } catch {
      continue; // released between our two calls
    }
    if (!pidAlive(owner) || owner === process.pid) {
      rmSync(path, { force: true }); // stale: its process died (or is us after a crash we survived)
      continue;
    }
    if (!told) onWait?.(owner);
    told = true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
