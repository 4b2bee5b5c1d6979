// phi2 run: one prompt in, streamed text out; timings to stderr.
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { generate, formatPrompt, type PromptFormat } from "../index.js";
import { addModelOptions, addSamplingOptions, fail, generationOptions, openModel, type ModelOpts, type SamplingOpts } from "./options.js";
import { formatTimings, unescapePrompt, verbatim } from "./text.js";

interface RunOpts extends ModelOpts, SamplingOpts { format: PromptFormat; defaultStops: boolean; json?: boolean }

export function runCommand(): Command {
  const cmd = new Command("run")
    .description("generate text from a prompt (streams to stdout; timings to stderr)")
    .argument("<prompt>", 'the prompt (\\n, \\t and \\\\ unescaped unless --no-escape); "-" reads it from stdin, verbatim');
  addModelOptions(cmd);
  addSamplingOptions(cmd, { shortReversePrompt: true });
  return cmd
    .option("--json", "print one JSON object at the end instead of streaming: {text, ids, finish_reason, prompt_tokens, completion_tokens, seed, timings}")
    .option("--no-escape", "take the prompt and --stop literally (no \\n, \\t, \\\\ unescaping)")
    .action(async (promptArg: string, o: RunOpts) => {
      let model;
      try {
        // Typed text gets its escapes turned into characters; piped text is what it is (code has its own \n).
        const text = promptArg === "-" ? verbatim(readFileSync(0, "utf8")) : o.escape ? unescapePrompt(promptArg) : promptArg;
        const { prompt, stop } = formatPrompt(o.format, text);
        model = await openModel(o);
        // Ctrl-C ends the generation cleanly (finish reason "abort") and still prints the timings.
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
      } catch (e) {
        await model?.dispose();
        fail(e);
      }
      await model.dispose();
    });
}
