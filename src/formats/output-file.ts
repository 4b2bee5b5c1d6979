// Where output files (GGUF, logits) may go. Checked before any work starts: a quantization of Phi-2 takes
// minutes and writes gigabytes, which must not end in "EISDIR" at the final rename.
import { renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** Throws unless `file` names a file (new or existing) in an existing folder; `what` names the option. */
export function checkOutputFile(file: string, what: string): void {
  const path = resolve(file);
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`${what} ${file} is a folder: name the file to write (e.g. ${join(file, "model.gguf")})`);
  }
  const folder = dirname(path);
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`${what} ${file}: the folder ${folder} does not exist`);
  }
}

/** Lets signal handlers and timers run during a long synchronous-ish loop (for AbortSignal, Ctrl-C). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Writes `data` to `<file>.tmp-<pid>`, then renames it to `file`; a failure leaves neither behind. */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* never made */ }
    throw e;
  }
}
