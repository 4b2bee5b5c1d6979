// Starts the server: listen first (so /health answers 503 "loading" at once), load the model, then
// serve. shutdown() is the graceful path SIGTERM takes: refuse new work, let in-flight streams finish
// within a grace period, end the rest cleanly, close the port, free the model. An engine that fails for
// good is logged once, at error level, through ServerOptions.log.
import { loadModel, resolveModel, type HubOptions, type KvCacheType, type LoadedModel } from "../index.js";
import { buildApp } from "./app.js";
import { ServerContext, type ChatNames } from "./context.js";
import { engineFailed } from "./errors.js";
import { ServerMetrics } from "./metrics.js";
import { serveModel } from "./served.js";
import type { FastifyInstance } from "fastify";

export interface ServerOptions {
  /**
   * A model source (folder, .gguf file, hub id) to load, or a model loaded (or being loaded) by the caller,
   * which shutdown leaves to the caller to dispose.
   */
  model: string | LoadedModel | Promise<LoadedModel>;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Sequences decoded together = KV-cache slots. */
  parallel?: number;
  threads?: number;
  /** Tokens per slot (default: the model's 2048). */
  contextLength?: number;
  apiKey?: string;
  /** Sequences that may wait for a slot before requests get 429. */
  queueSize?: number;
  /** Per-request limit in seconds (0 = none). */
  timeoutSeconds?: number;
  /** Model id served (default: the model's name). */
  alias?: string;
  /** Tokens per batched step (decodes + prefill chunks). */
  stepTokenBudget?: number;
  chatNames?: ChatNames;
  bodyLimit?: number;
  /** Quantize float weights at load. */
  quant?: "q8_0" | "q4_0";
  /** The KV cache's element type (default f16). */
  kvType?: KvCacheType;
  /** How a hub id given as `model` is fetched (revision, hub URL, progress); local paths skip the hub. */
  hub?: HubOptions;
  /** Serve the web playground at / (default true). */
  playground?: boolean;
  onProgress?: (fraction: number) => void;
  /**
   * Where the server reports what an operator must act on (today: an engine that failed for good, logged
   * once). Default: stderrLog("phi2 server"). `console` fits (it prints the cause's stack too).
   */
  log?: ServerLog;
}

/** The server's log; only the error level is used. */
export interface ServerLog {
  /** Something went wrong for good; `cause` is the error behind it (its stack is worth printing). */
  error(message: string, cause?: Error): void;
}

/** A ServerLog writing "<prefix>: error: <message>" to stderr, then the cause's stack, indented. */
export function stderrLog(prefix: string): ServerLog {
  return {
    error(message, cause) {
      const stack = cause?.stack ? "\n" + cause.stack.split("\n").map((line) => `    ${line}`).join("\n") : "";
      process.stderr.write(`${prefix}: error: ${message}${stack}\n`);
    },
  };
}

export interface RunningServer {
  app: FastifyInstance;
  context: ServerContext;
  /** http://host:port */
  url: string;
  /** Resolves with the model when it has loaded (rejects if loading failed; /health then says so). */
  ready: Promise<LoadedModel>;
  /** Graceful stop; streams still running after graceMs are ended. Resolves when everything is closed. */
  shutdown(graceMs?: number): Promise<void>;
}

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 8080,
  parallel: 4,
  queueSize: 64,
  timeoutSeconds: 600,
  stepTokenBudget: 256,
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const parallel = options.parallel ?? DEFAULTS.parallel;
  const queueSize = options.queueSize ?? DEFAULTS.queueSize;
  const log = options.log ?? stderrLog("phi2 server");
  let context: ServerContext;
  const metrics = new ServerMetrics(
    () => context.model?.scheduler.queueDepth ?? 0,
    () => context.model?.scheduler.activeCount ?? 0,
    () => context.model?.scheduler.engineFailure !== undefined,
  );
  context = new ServerContext(
    {
      apiKey: options.apiKey,
      timeoutMs: (options.timeoutSeconds ?? DEFAULTS.timeoutSeconds) * 1000,
      // One request may fill every slot and the whole queue, no more (it could never be admitted).
      maxSequencesPerRequest: Math.max(1, Math.min(128, parallel + queueSize)),
      chatNames: options.chatNames ?? {},
    },
    metrics,
  );
  const app = buildApp(context, { bodyLimit: options.bodyLimit, playground: options.playground });
  const host = options.host ?? DEFAULTS.host;
  await app.listen({ host, port: options.port ?? DEFAULTS.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const ownsModel = typeof options.model === "string";
  const ready = (async () => {
    const loaded =
      typeof options.model === "string"
        ? await loadModel(await resolveModel(options.model, options.hub), {
            threads: options.threads,
            slots: parallel,
            contextLength: options.contextLength,
            quant: options.quant,
            kvType: options.kvType,
            onProgress: options.onProgress,
          })
        : await options.model;
    context.model = serveModel(loaded, {
      queueSize,
      stepTokenBudget: options.stepTokenBudget ?? DEFAULTS.stepTokenBudget,
      alias: options.alias,
      requestedAs: typeof options.model === "string" ? options.model : undefined,
      metrics,
      onEngineFailure: (failure) =>
        log.error(`${engineFailed(failure).message} (generation requests get 503 and /health 503 until the server is restarted)`, failure),
    });
    return loaded;
  })();
  ready.catch((err: Error) => {
    context.loadError = err;
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs = 30_000): Promise<void> => {
    stopping ??= (async () => {
      context.closing = true;
      const closed = app.close(); // stops listening; waits for open connections
      // Connections that turn idle after close() began (a finished stream on a keep-alive socket) would
      // otherwise linger until their keep-alive timeout: sweep them while we wait.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        if (context.model) await context.model.scheduler.drain(graceMs);
        await closed;
      } finally {
        clearInterval(sweep);
      }
      const loaded = await ready.catch(() => undefined);
      if (loaded && ownsModel) await loaded.dispose();
    })();
    return stopping;
  };
  return { app, context, url, ready, shutdown };
}
