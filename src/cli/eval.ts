// phi2 eval: the next-token logits after a list of token ids (used by parity checks).
import { Command, InvalidArgumentError } from "commander";
import { checkOutputFile, writeFileAtomic } from "../formats/output-file.js";
import { addModelOptions, fail, intArg, openModel, type ModelOpts } from "./options.js";

interface EvalOpts extends ModelOpts { ids: number[]; top: number; logitsOut?: string; json?: boolean }

function idList(v: string): number[] {
  const ids = v.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidArgumentError(`--ids must be comma-separated non-negative integers, got "${v}"`);
  }
  return ids;
}

export function evalCommand(): Command {
  const cmd = new Command("eval").description("run token ids through the model and print the next-token logits");
  addModelOptions(cmd);
  return cmd
    .requiredOption("--ids <list>", "comma-separated token ids, e.g. 464,2068,7586", idList)
    .option("--top <k>", "how many of the largest logits to print", intArg("--top", 1), 10)
    .option("--logits-out <file>", "write all vocab_size next-token logits as little-endian float32")
    .option("--json", "print {\"top\":[{\"id\",\"logit\"}...]} (default output is the same JSON)")
    .action(async (o: EvalOpts) => {
      let model;
      try {
        if (o.logitsOut) checkOutputFile(o.logitsOut, "--logits-out"); // before the load, not after it
        model = await openModel(o);
        const context = model.engine.contextLength;
        if (o.ids.length > context) throw new Error(`--ids has ${o.ids.length} ids, more than the context of ${context} tokens`);
        const [logits] = await model.engine.forward([{ slot: 0, tokens: o.ids, startPos: 0 }]);
        const order = Array.from(logits!.keys()).sort((a, b) => logits![b]! - logits![a]!).slice(0, o.top);
        if (o.logitsOut) writeFileAtomic(o.logitsOut, new Uint8Array(logits!.buffer, logits!.byteOffset, logits!.byteLength));
        process.stdout.write(JSON.stringify({ top: order.map((id) => ({ id, logit: logits![id] })) }) + "\n");
      } catch (e) {
        await model?.dispose();
        fail(e);
      }
      await model.dispose();
    });
}
