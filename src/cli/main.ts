#!/usr/bin/env node
// phi2: Microsoft's Phi-2 in TypeScript + WebAssembly. Each command lives in its own file.
import { Command } from "commander";
import { runCommand } from "./run.js";
import { evalCommand } from "./eval.js";
import { tokenizeCommand, detokenizeCommand } from "./tokenize.js";
import { makeTestModelCommand } from "./make-test-model.js";
import { chatCommand } from "./chat.js";
import { serveCommand } from "./serve.js";
import { pullCommand } from "./pull.js";
import { quantizeCommand } from "./quantize.js";
import { benchCommand } from "./bench.js";

// A reader that stops early (`phi2 run ... | head`) closes the pipe. C programs die of SIGPIPE there;
// Node ignores SIGPIPE, so the next write fails with EPIPE, which unhandled is a stack trace and status 1.
// Stop quietly with status 0 instead, as llama-cli and the Unix tools do: exiting also ends a generation
// whose text nobody can read any more (worker threads end with the process).
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(0);
  });
}

const program = new Command("phi2")
  .description("Phi-2 (2.7B) running natively in Node.js: WebAssembly SIMD kernels on worker threads")
  .version("0.1.0")
  .showHelpAfterError();

for (const cmd of [
  runCommand(), chatCommand(), serveCommand(), benchCommand(), pullCommand(), evalCommand(), tokenizeCommand(), detokenizeCommand(),
  quantizeCommand(), makeTestModelCommand(),
]) {
  program.addCommand(cmd);
}

await program.parseAsync(process.argv);
