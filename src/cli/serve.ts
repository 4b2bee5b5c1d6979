// phi2 serve: an OpenAI-compatible HTTP server with continuous batching.
import { Command } from "commander";
import { startServer, stderrLog, DEFAULTS } from "../server/server.js";
import { addModelOptions, fail, hubOptions, intArg, namingCtxSize, printNotices, type ModelOpts } from "./options.js";

interface ServeOpts extends ModelOpts {
  host: string;
  port: number;
  parallel: number;
  apiKey?: string;
  queueSize: number;
  timeout: number;
  alias?: string;
  batchTokens: number;
  userName?: string;
  assistantName?: string;
  grace: number;
  playground: boolean;
}

const EXAMPLES = `
Endpoints (OpenAI wire format):
  POST /v1/completions        POST /v1/chat/completions     GET /v1/models
  GET  /health (503 while the model loads, and for good if the engine fails)
  POST /tokenize   POST /detokenize   GET /metrics (Prometheus)
  GET  /  the web playground

Examples:
  phi2 serve --model ./phi-2 --parallel 8
  curl http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"messages":[{"role":"user","content":"What is a prime number?"}],"max_tokens":64}'

Any OpenAI client works unchanged: point its base URL at http://HOST:PORT/v1.
SIGTERM / Ctrl-C: stop accepting, let running streams finish (up to --grace seconds), exit 0.
A second Ctrl-C stops at once (exit status 130).`;

export function serveCommand(): Command {
  const cmd = new Command("serve").description("serve the model over an OpenAI-compatible HTTP API (continuous batching)");
  addModelOptions(cmd, { shortRevision: true });
  return cmd
    .option("--host <addr>", "address to listen on", DEFAULTS.host)
    .option("-p, --port <n>", "port to listen on (0 = any free port)", intArg("--port", 0, 65535), DEFAULTS.port)
    .option("--parallel <n>", "sequences decoded together in one batch (KV-cache slots)", intArg("--parallel", 1, 256), DEFAULTS.parallel)
    .option("--api-key <key>", "require 'Authorization: Bearer KEY' on every route but /health (default: $PHI2_API_KEY, else open)")
    .option("--queue-size <n>", "sequences that may wait for a slot; beyond that requests get 429", intArg("--queue-size", 0), DEFAULTS.queueSize)
    .option("--timeout <s>", "per-request time limit in seconds (0 = none); a cut-off generation ends with finish_reason \"length\"", intArg("--timeout", 0), DEFAULTS.timeoutSeconds)
    .option("--alias <name>", "model id to serve (default: the model folder/file name)")
    .option("--batch-tokens <n>", "tokens per batched step: every decoding sequence's token plus chunks of new prompts", intArg("--batch-tokens", 1), DEFAULTS.stepTokenBudget)
    .option("--user-name <name>", "chat format: name of the user's turns (default Alice, as in the model card)")
    .option("--assistant-name <name>", "chat format: name of the model's turns (default Bob)")
    .option("--grace <s>", "on SIGTERM, seconds to let running requests finish before ending them", intArg("--grace", 0), 30)
    .option("--no-playground", "do not serve the web playground at /")
    .addHelpText("after", EXAMPLES)
    .action(async (o: ServeOpts) => {
      const apiKey = o.apiKey ?? process.env.PHI2_API_KEY;
      let server;
      try {
        server = await startServer({
          model: o.model,
          host: o.host,
          port: o.port,
          parallel: o.parallel,
          threads: o.threads,
          contextLength: o.ctxSize,
          apiKey: apiKey === "" ? undefined : apiKey,
          queueSize: o.queueSize,
          timeoutSeconds: o.timeout,
          alias: o.alias,
          stepTokenBudget: o.batchTokens,
          chatNames: { user: o.userName, assistant: o.assistantName },
          quant: o.quant,
          kvType: o.kvType,
          hub: hubOptions(o),
          playground: o.playground,
          // Like the lines below: an engine that fails for good is printed as "phi2 serve: error: ...".
          log: stderrLog("phi2 serve"),
        });
      } catch (e) {
        fail(e);
      }
      const running = server;
      process.stderr.write(`phi2 serve: listening on ${running.url} (OpenAI base URL ${running.url}/v1); loading ${o.model} ...\n`);
      if (o.playground) process.stderr.write(`phi2 serve: playground at ${running.url}/\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          // Whoever presses Ctrl-C again does not want to wait for the running requests (llama-server too).
          if (signal !== "SIGINT") return;
          process.stderr.write("phi2 serve: second interrupt, stopping now\n");
          process.exit(130);
        }
        stopping = true;
        process.stderr.write(`phi2 serve: ${signal}: finishing running requests (up to ${o.grace} s) ...\n`);
        running.shutdown(o.grace * 1000).then(
          () => {
            process.stderr.write("phi2 serve: stopped\n");
            process.exit(0);
          },
          (err: Error) => {
            process.stderr.write(`phi2 serve: error while stopping: ${err.message}\n`);
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      try {
        const model = await running.ready.catch(namingCtxSize(o));
        printNotices(model, "phi2 serve");
        const e = model.engine;
        process.stderr.write(
          `phi2 serve: ${running.context.model?.id} ready in ${(model.loadMs / 1000).toFixed(1)} s: ` +
            `${e.slots} slots × ${e.contextLength} tokens, ${e.threads} threads. Serving at ${running.url}/v1\n`,
        );
      } catch (e) {
        // Without a model the server is useless: fail fast so a supervisor notices and restarts it.
        process.stderr.write(`phi2 serve: the model failed to load: ${(e as Error).message}\n`);
        await running.shutdown(0);
        process.exit(1);
      }
    });
}
