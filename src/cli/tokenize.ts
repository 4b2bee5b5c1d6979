// phi2 tokenize / detokenize: the model's tokenizer alone (no weights are loaded).
import { Command, InvalidArgumentError } from "commander";
import { loadTokenizer } from "../index.js";
import { fail } from "./options.js";
import { unescapePrompt } from "./text.js";

export function tokenizeCommand(): Command {
  return new Command("tokenize")
    .description("print the token ids of a text")
    .requiredOption("-m, --model <path>", "model folder or .gguf file")
    .argument("<text>", "text to tokenize (\\n, \\t unescaped unless --no-escape)")
    .option("--json", 'print {"ids":[...]} (default: ids separated by commas)')
    .option("--no-escape", "take the text literally")
    .action((text: string, o: { model: string; json?: boolean; escape: boolean }) => {
      try {
        const ids = loadTokenizer(o.model).encode(o.escape ? unescapePrompt(text) : text);
        process.stdout.write((o.json ? JSON.stringify({ ids }) : ids.join(",")) + "\n");
      } catch (e) {
        fail(e);
      }
    });
}

export function detokenizeCommand(): Command {
  return new Command("detokenize")
    .description("print the text of comma-separated token ids")
    .requiredOption("-m, --model <path>", "model folder or .gguf file")
    .argument("<ids>", "comma-separated token ids, e.g. 15496,995")
    .option("--json", 'print {"text": ...}')
    .action((idsArg: string, o: { model: string; json?: boolean }) => {
      try {
        const ids = idsArg.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
        if (ids.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`ids must be comma-separated non-negative integers, got "${idsArg}"`);
        const text = loadTokenizer(o.model).decode(ids);
        process.stdout.write(o.json ? JSON.stringify({ text }) + "\n" : text + "\n");
      } catch (e) {
        fail(e);
      }
    });
}
