// phi2 chat: an interactive conversation in the terminal. Replies stream as they are generated, the
// conversation stays in the KV cache (a turn feeds only its new tokens), Ctrl-C stops a reply and
// keeps the REPL, a second Ctrl-C at an empty prompt (or Ctrl-D, /exit) leaves.
import { Command } from "commander";
import { createInterface, type Interface } from "node:readline";
import { loadModel, resolveModel, type GenerationOptions, type KvCacheType, type LoadedModel, type PromptFormat } from "../index.js";
import { ChatSession, type ReplyStats } from "./chat-session.js";
import {
  addModelOptions, addSamplingOptions, fail, generationOptions, hubOptions, loadOptions, namingCtxSize, printNotices, type ModelOpts, type SamplingOpts,
} from "./options.js";
import { unescapePrompt } from "./text.js";

const FORMATS: PromptFormat[] = ["chat", "qa", "code", "raw"];

const HELP = `Commands:
  /help                 this help
  /reset                forget the conversation
  /system [TEXT]        show or set the system text put before the conversation ("/system -" clears it)
  /format [NAME]        show or set the prompt format: chat (Alice/Bob), qa (Instruct/Output), code, raw
  /params [k=v ...]     show or set sampling: temperature top_k top_p min_p repeat_penalty repeat_last_n
                        presence_penalty frequency_penalty max_tokens (or none) seed (or random)
  /exit                 leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)
Multi-line input: end a line with \\ to continue it on the next line, or put """ alone on a line
to start a block and again to end it.
Ctrl-C during a reply stops it; the partial reply stays in the conversation.`;

interface ChatOpts extends ModelOpts, SamplingOpts {
  format: PromptFormat;
  defaultStops: boolean;
  system?: string;
}

export function chatCommand(): Command {
  const cmd = new Command("chat")
    .description("interactive chat with streaming replies; the conversation stays in the KV cache");
  // A context under 16 tokens holds no exchange at all.
  addModelOptions(cmd, { minCtxSize: 16 })
    .option("--system <text>", "system text put before the conversation")
    .option("--no-escape", "take --system and --stop literally (no \\n, \\t, \\\\ unescaping)");
  // -r is llama-cli's --reverse-prompt, the way its interactive users hand the turn back ("-r 'User:'").
  addSamplingOptions(cmd, { format: "chat", shortReversePrompt: true });
  cmd.addHelpText("after", `\n${HELP}`);
  return cmd.action(async (o: ChatOpts) => {
    let model: LoadedModel;
    try {
      const path = await resolveModel(o.model, hubOptions(o));
      const tty = process.stderr.isTTY === true;
      process.stderr.write(`loading ${path} ...${tty ? "" : "\n"}`);
      model = await loadModel(path, {
        ...loadOptions(o),
        onProgress: tty ? (f) => process.stderr.write(`\r\x1b[Kloading ${path} ... ${Math.round(f * 100)}%`) : undefined,
      }).catch(namingCtxSize(o));
      if (tty) process.stderr.write("\n");
      printNotices(model);
    } catch (e) {
      fail(e);
    }
    const system = o.system !== undefined && o.escape ? unescapePrompt(o.system) : o.system;
    const session = new ChatSession(model, { format: o.format, system, params: generationOptions(o, []), defaultStops: o.defaultStops });
    const code = await repl(model, session, o.kvType ?? "f16");
    await model.dispose();
    process.exit(code);
  });
}

const CANCELLED = Symbol("cancelled");

/** Lines from readline as a queue: next() waits for one; null at end of input; CANCELLED on Ctrl-C. */
class LineQueue {
  private lines: string[] = [];
  private waiter?: (line: string | null | typeof CANCELLED) => void;
  private closed = false;

  constructor(rl: Interface) {
    rl.on("line", (line) => this.push(line));
    rl.on("close", () => {
      this.closed = true;
      this.waiter?.(null);
    });
  }

  private push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(line);
    } else {
      this.lines.push(line);
    }
  }

  cancel(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(CANCELLED);
  }

  next(): Promise<string | null | typeof CANCELLED> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

async function repl(model: LoadedModel, session: ChatSession, kvType: KvCacheType): Promise<number> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty, historySize: 500 });
  const queue = new LineQueue(rl);
  let generating: AbortController | undefined;
  let armedExit = false;
  let exiting = false;

  const onInterrupt = () => {
    if (generating) {
      generating.abort();
      return;
    }
    if (rl.line.length > 0 || midInput) {
      rl.write(null, { ctrl: true, name: "e" });
      rl.write(null, { ctrl: true, name: "u" });
      process.stdout.write("^C\n");
      armedExit = false;
      queue.cancel();
      return;
    }
    if (armedExit) {
      exiting = true;
      process.stdout.write("\n");
      rl.close();
      return;
    }
    armedExit = true;
    process.stdout.write(`\n${dim("(Ctrl-C again, Ctrl-D or /exit to leave)")}\n`);
    rl.prompt();
  };
  rl.on("SIGINT", onInterrupt);
  process.on("SIGINT", onInterrupt);

  // A person at the terminal reads an error and goes on; a script piping its input learns of one from
  // the exit status (the remaining lines still run, as a shell script's do).
  let status = 0;
  const failed = () => {
    if (process.stdin.isTTY !== true) status = 1;
  };

  let midInput = false;
  /** One message: a line, lines joined by trailing backslashes, or a """ block. */
  const readMessage = async (): Promise<string | null | typeof CANCELLED> => {
    rl.setPrompt(">>> ");
    if (tty) rl.prompt(); // piped input: replies only, no prompts
    const first = await queue.next();
    if (typeof first !== "string") return first;
    let text: string;
    const continuation = async (): Promise<string | null | typeof CANCELLED> => {
      midInput = true;
      rl.setPrompt("... ");
      if (tty) rl.prompt();
      const line = await queue.next();
      midInput = false;
      return line;
    };
    if (first.trimStart().startsWith('"""')) {
      const parts: string[] = [];
      let line: string = first.trimStart().slice(3);
      for (;;) {
        const end = line.trimEnd().endsWith('"""');
        if (end) line = line.trimEnd().slice(0, -3);
        if (parts.length > 0 || line.length > 0) parts.push(line);
        if (end) break;
        const next = await continuation();
        if (typeof next !== "string") return next;
        line = next;
      }
      text = parts.join("\n");
    } else {
      text = first;
      while (text.endsWith("\\")) {
        const next = await continuation();
        if (typeof next !== "string") return next;
        text = text.slice(0, -1) + "\n" + next;
      }
    }
    return text;
  };

  process.stderr.write(
    dim(`${model.name}: ${model.weights.types} weights, ${model.config.num_hidden_layers} layers, ` +
      `context ${model.engine.contextLength} tokens (${kvType} KV cache), ` +
      `${model.engine.threads} thread${model.engine.threads === 1 ? "" : "s"}, loaded in ${(model.loadMs / 1000).toFixed(1)} s. Format: ${session.format}. ` +
      `/help for commands.`) + "\n",
  );

  for (;;) {
    const message = await readMessage();
    if (message === null) break;
    if (message === CANCELLED) continue;
    if (exiting) break;
    if (message.trim() === "") continue;
    armedExit = false;
    if (message.startsWith("/")) {
      const out = slashCommand(session, message.trim());
      if (out === "exit") break;
      if (out.error) failed();
      (out.error ? process.stderr : process.stdout).write(out.text + "\n");
      continue;
    }
    generating = new AbortController();
    let stats: ReplyStats | undefined;
    let started = false;
    try {
      const it = session.reply(message, generating.signal);
      for (;;) {
        const next = await it.next();
        if (next.done) {
          stats = next.value;
          break;
        }
        let text = next.value.text;
        if (!started) text = text.replace(/^[ \t]+/, ""); // replies start with the space after "Bob:"
        started ||= text.length > 0;
        process.stdout.write(text);
      }
    } catch (e) {
      if (started) process.stdout.write("\n");
      process.stderr.write(`error: ${(e as Error).message}\n`);
      failed();
      continue;
    } finally {
      generating = undefined;
    }
    process.stdout.write("\n");
    if (stats) process.stderr.write(dim(formatStats(stats)) + "\n");
  }
  rl.close();
  process.off("SIGINT", onInterrupt);
  return status;
}

export function formatStats(s: ReplyStats): string {
  const finish = s.finishReason === "abort" ? "stopped (Ctrl-C)" : s.finishReason;
  return `[${s.completionTokens} tokens, ${s.genTokensPerSec.toFixed(1)} tokens/s | prompt ${s.fedTokens} new + ` +
    `${s.promptTokens - s.fedTokens} cached tokens, ${s.promptTokensPerSec.toFixed(1)} tokens/s | ${finish}]`;
}

/** Runs a slash command; returns the text to print, or "exit". */
export function runCommand(session: ChatSession, line: string): string {
  const out = slashCommand(session, line);
  return out === "exit" ? out : out.text;
}

/** Runs a slash command: the text to print and whether it is an error (stderr), or "exit". */
function slashCommand(session: ChatSession, line: string): { text: string; error?: boolean } | "exit" {
  const ok = (text: string) => ({ text });
  const error = (text: string) => ({ text, error: true });
  const space = line.indexOf(" ");
  const name = (space < 0 ? line : line.slice(0, space)).toLowerCase();
  const arg = space < 0 ? "" : line.slice(space + 1).trim();
  switch (name) {
    case "/help":
    case "/?":
      return ok(HELP);
    case "/exit":
    case "/quit":
    case "/bye":
      return "exit";
    case "/reset":
      session.reset();
      return ok("conversation cleared");
    case "/system":
      if (!arg) return ok(session.system ? `system: ${session.system}` : "no system text (set one with /system TEXT)");
      session.system = arg === "-" ? "" : arg;
      session.invalidate();
      return ok(session.system ? "system text set; it applies from the next reply" : "system text cleared");
    case "/format":
      if (!arg) return ok(`format: ${session.format} (chat, qa, code, raw)`);
      if (!(FORMATS as string[]).includes(arg)) return error(`unknown format "${arg}": use chat, qa, code or raw`);
      session.format = arg as PromptFormat;
      session.invalidate();
      return ok(`format: ${arg}`);
    case "/params":
      try {
        if (arg) session.params = applyParams(session.params, arg);
        return ok(showParams(session.params, session.stops, session.lastSeed));
      } catch (e) {
        return error(`error: ${(e as Error).message}`);
      }
    default:
      return error(`unknown command ${name}; /help lists them`);
  }
}

type ParamKey = "temperature" | "topK" | "topP" | "minP" | "repetitionPenalty" | "penaltyLastN" | "presencePenalty" | "frequencyPenalty" | "maxTokens" | "seed";

/** /params names (as llama.cpp's and the OpenAI API's snake_case) -> option, allowed range, integer? */
const PARAMS: Record<string, { key: ParamKey; min: number; max: number; int: boolean; unset?: string }> = {
  temperature: { key: "temperature", min: 0, max: 100, int: false },
  top_k: { key: "topK", min: 0, max: 1e9, int: true },
  top_p: { key: "topP", min: 0, max: 1, int: false },
  min_p: { key: "minP", min: 0, max: 1, int: false },
  repeat_penalty: { key: "repetitionPenalty", min: 0, max: 100, int: false },
  repeat_last_n: { key: "penaltyLastN", min: -1, max: 1e9, int: true },
  presence_penalty: { key: "presencePenalty", min: -2, max: 2, int: false },
  frequency_penalty: { key: "frequencyPenalty", min: -2, max: 2, int: false },
  max_tokens: { key: "maxTokens", min: 1, max: 1e9, int: true, unset: "none" },
  seed: { key: "seed", min: 0, max: 2 ** 32 - 1, int: true, unset: "random" },
};

/** Applies "k=v k=v" to a copy of the params; a bad name or value throws, naming it. */
export function applyParams(params: GenerationOptions, text: string): GenerationOptions {
  const next: GenerationOptions = { ...params };
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 0) throw new Error(`"${pair}" is not name=value`);
    const name = pair.slice(0, eq).toLowerCase().replace(/-/g, "_");
    const value = pair.slice(eq + 1);
    const spec = PARAMS[name];
    if (!spec) throw new Error(`unknown parameter "${name}" (known: ${Object.keys(PARAMS).join(", ")})`);
    if (spec.unset !== undefined && value === spec.unset) {
      delete next[spec.key];
      continue;
    }
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < spec.min || n > spec.max || (spec.int && !Number.isInteger(n))) {
      throw new Error(`${name} must be ${spec.int ? "an integer" : "a number"} in ${spec.min}..${spec.max}${spec.unset ? ` or ${spec.unset}` : ""}, got "${value}"`);
    }
    next[spec.key] = n;
  }
  return next;
}

/** The params as k=v; with a random seed, the last reply's (what `/params seed=N` replays). */
export function showParams(params: GenerationOptions, stops: string[], lastSeed?: number): string {
  const parts = Object.entries(PARAMS).map(([name, spec]) => `${name}=${params[spec.key] ?? spec.unset ?? "default"}`);
  if (params.seed === undefined && lastSeed !== undefined) parts.push(`(last reply's seed: ${lastSeed})`);
  return `${parts.join(" ")}\nstop=${JSON.stringify(stops)}`;
}
