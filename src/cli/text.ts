// Small text helpers for the CLI.

/** Turns the escapes people type in shell strings (\n, \t, \\, \") into the characters. */
export function unescapePrompt(s: string): string {
  return s.replace(/\\(n|t|r|\\|")/g, (_, c: string) => ({ n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"' })[c]!);
}

/** Text from a file or a pipe, as llama.cpp's -f takes it: as is, but for the one newline that ends the file. */
export function verbatim(s: string): string {
  return s.replace(/\r?\n$/, "");
}

export interface TimedResult {
  promptTokens: number;
  completionTokens: number;
  finishReason: string;
  seed: number;
  timings: { promptMs: number; genMs: number; promptTokensPerSec: number; genTokensPerSec: number };
}

/** The stderr summary line of `run`; the seed, drawn or given, replays the text with --seed (as llama-cli prints it). */
export function formatTimings(loadMs: number, r: TimedResult): string {
  const t = r.timings;
  return `load ${(loadMs / 1000).toFixed(2)} s | prompt ${r.promptTokens} tokens, ${t.promptTokensPerSec.toFixed(2)} tokens/s | ` +
    `generated ${r.completionTokens} tokens, ${t.genTokensPerSec.toFixed(2)} tokens/s | finish: ${r.finishReason} | seed ${r.seed}`;
}
