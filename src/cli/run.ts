// phi2 run: one prompt in, streamed text out; timings to stderr.
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { generate, formatPrompt, type PromptFormat } from "../index.js";
import { addModelOptions, addSamplingOptions, fail, generationOptions, openModel, type ModelOpts, type SamplingOpts } from "./options.js";
import { formatTimings, unescapePrompt, verbatim } from "./text.js";

interface RunOpts extends ModelOpts, SamplingOpts { format: PromptFormat; defaultStops: boolean; json?: boolean; prompt?: string; file?: string }

/** A file's text ("-": stdin) as given: a read error names --file. */
function readPromptFile(path: string): string {
  try {
    return verbatim(readFileSync(path === "-" ? 0 : path, "utf8"));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`--file ${path}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  }
}

/**
 * The prompt from wherever it was given, once: typed text (the argument, --prompt) gets its escapes turned
 * into characters; a file or a pipe is what it is (code has \n escapes of its own), as llama.cpp's -f.
 * With no prompt at all, a pipe on stdin is read, as ollama does.
 */
function readPrompt(arg: string | undefined, o: RunOpts): string {
  const given = [
    arg !== undefined && "as the PROMPT argument", o.prompt !== undefined && "with --prompt", o.file !== undefined && "with --file",
  ].filter((g) => g !== false);
  if (given.length > 1) throw new Error(`the prompt was given twice: ${given.slice(0, 2).join(" and ")}`);
  if (o.file !== undefined) return readPromptFile(o.file);
  const typed = arg ?? o.prompt;
  if (typed === "-" && arg !== undefined) return readPromptFile("-");
  if (typed !== undefined) return o.escape ? unescapePrompt(typed) : typed;
  if (process.stdin.isTTY) throw new Error("no prompt: give it as an argument, with -p/--prompt or -f/--file, or pipe it on stdin");
  return readPromptFile("-");
}

export function runCommand(): Command {
  const cmd = new Command("run")
    .description("generate text from a prompt (streams to stdout; timings to stderr)")
    .argument("[prompt]", 'the prompt (\\n, \\t and \\\\ unescaped unless --no-escape); "-" or none with a pipe on stdin: read from stdin, verbatim');
  addModelOptions(cmd);
  addSamplingOptions(cmd, { shortReversePrompt: true });
  return cmd
    .option("-p, --prompt <text>", "the prompt, as the PROMPT argument")
    .option("-f, --file <path>", "read the prompt from a file, verbatim (one final newline dropped)")
    .option("--json", "print one JSON object at the end instead of streaming: {text, ids, finish_reason, prompt_tokens, completion_tokens, seed, timings}")
    .option("--no-escape", "take the prompt (argument, --prompt) and --stop literally (no \\n, \\t, \\\\ unescaping)")
    .action(async (promptArg: string | undefined, o: RunOpts) => {
      let model;
      try {
        const { prompt, stop } = formatPrompt(o.format, readPrompt(promptArg, o));
        // Said now rather than after a load of seconds (the generator refuses an empty prompt too).
        if (prompt === "") throw new Error("the prompt is empty");
        model = await openModel(o);
        // Ctrl-C ends the generation cleanly (finish reason "abort") and still prints the timings; a second
        // one, with no handler left, kills the process at once.
        const ac = new AbortController();
        process.once("SIGINT", () => ac.abort());
        const it = generate(model.engine, model.tokenizer, prompt, { ...generationOptions(o, o.defaultStops ? stop : []), signal: ac.signal });
        let r = await it.next();
        while (!r.done) {
          if (!o.json) process.stdout.write(r.value.text);
          r = await it.next();
        }
        const res = r.value;
        const t = res.timings;
        if (o.json) {
          process.stdout.write(JSON.stringify({
            text: res.text, ids: res.ids, finish_reason: res.finishReason,
            prompt_tokens: res.promptTokens, completion_tokens: res.completionTokens, seed: res.seed,
            timings: {
              load_ms: model.loadMs, prompt_ms: t.promptMs, gen_ms: t.genMs,
              prompt_tokens_per_sec: t.promptTokensPerSec, gen_tokens_per_sec: t.genTokensPerSec,
            },
          }) + "\n");
        } else {
          process.stdout.write("\n");
        }
        process.stderr.write(formatTimings(model.loadMs, res) + "\n");
        // Interrupted: say so to the shell (128 + SIGINT), as any Unix tool stopped by Ctrl-C does.
        if (res.finishReason === "abort") process.exitCode = 130;
      } catch (e) {
        await model?.dispose();
        fail(e);
      }
      await model.dispose();
    });
}
