// Download progress on stderr: a redrawn bar on a terminal, a few plain lines otherwise (CI logs).
export interface DownloadProgress {
  file: string;
  /** Bytes of the file on disk so far (including bytes from a resumed earlier attempt). */
  downloaded: number;
  /** Expected size, when the hub announced it. */
  total?: number;
  /** Bytes that were already on disk when this download started (resume). */
  resumedFrom: number;
  done: boolean;
}

export type ProgressListener = (p: DownloadProgress) => void;

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

interface FileState {
  startedAt: number;
  lastDrawAt: number;
  lastTenth: number;
}

/** A listener that writes progress to `stream` (default process.stderr). */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): ProgressListener {
  const states = new Map<string, FileState>();
  const tty = stream.isTTY === true;
  return (p) => {
    const now = Date.now();
    let state = states.get(p.file);
    if (!state) {
      state = { startedAt: now, lastDrawAt: 0, lastTenth: -1 };
      states.set(p.file, state);
      if (!tty && p.resumedFrom > 0) stream.write(`${p.file}: resuming at ${formatBytes(p.resumedFrom)}\n`);
    }
    const elapsed = Math.max((now - state.startedAt) / 1000, 1e-3);
    const speed = (p.downloaded - p.resumedFrom) / elapsed; // bytes/s of this session
    const total = p.total;
    const pct = total ? Math.min(100, Math.floor((p.downloaded / total) * 100)) : undefined;
    const eta = total && speed > 0 ? (total - p.downloaded) / speed : NaN;
    const sizeText = total ? `${formatBytes(p.downloaded)} / ${formatBytes(total)}` : formatBytes(p.downloaded);
    const speedText = `${formatBytes(Math.round(speed))}/s`;
    if (tty) {
      if (!p.done && now - state.lastDrawAt < 100) return;
      state.lastDrawAt = now;
      const width = 24;
      const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const bar = "█".repeat(filled) + "░".repeat(width - filled);
      const name = p.file.length > 36 ? "…" + p.file.slice(-35) : p.file.padEnd(36);
      const tail = p.done ? `in ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`;
      stream.write(`\r\x1b[K${name} ${String(pct ?? "?").padStart(3)}% ${bar} ${sizeText}  ${speedText}  ${tail}`);
      if (p.done) {
        stream.write("\n");
        states.delete(p.file);
      }
      return;
    }
    if (p.done) {
      stream.write(`${p.file}: ${formatBytes(p.downloaded)} done in ${formatDuration(elapsed)} (${speedText})\n`);
      states.delete(p.file);
      return;
    }
    // Plain lines: one per 10% of a big file.
    if (pct === undefined || (total ?? 0) < 10_000_000) return;
    const tenth = Math.floor(pct / 10);
    if (tenth === state.lastTenth) return;
    state.lastTenth = tenth;
    stream.write(`${p.file}: ${pct}% ${sizeText}, ${speedText}, ETA ${formatDuration(eta)}\n`);
  };
}
