// phi2 pull: download a model from the Hugging Face hub into the shared hub cache; prints its path.
import { Command } from "commander";
import { DEFAULT_MODEL_ID, pullModel } from "../index.js";
import { fail, hubOptions } from "./options.js";

interface PullOpts { revision?: string; hubUrl?: string; quiet?: boolean }

export function pullCommand(): Command {
  return new Command("pull")
    .description(
      "download a model from the Hugging Face hub (cache: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub, " +
        "shared with Python tools); prints the local path",
    )
    .argument("[model]", "hub id: user/repo, or user/repo:QUANT for one GGUF file of a GGUF repository", DEFAULT_MODEL_ID)
    .option("-r, --revision <rev>", "branch, tag or commit hash", "main")
    .option("--hub-url <url>", "hub endpoint (default: HF_ENDPOINT or https://huggingface.co)")
    .option("-q, --quiet", "no progress bars")
    .addHelpText("after", "\nEnvironment: HF_TOKEN (gated or private repositories), HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1 (cache only), HF_HUB_DISABLE_PROGRESS_BARS=1, HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY.")
    .action(async (model: string, o: PullOpts) => {
      try {
        // -q forces quiet; without it progress stays undefined so HF_HUB_DISABLE_PROGRESS_BARS decides, as in the library.
        const progress = o.quiet ? false : undefined;
        const result = await pullModel(model, { ...hubOptions(o), progress, log: o.quiet ? () => {} : undefined });
        process.stdout.write(result.path + "\n");
      } catch (e) {
        fail(e);
      }
    });
}
