// The HTTP surface: fastify routes, API-key check, OpenAI-shaped errors, request metrics. The app exists
// (and answers /health with 503) before the model has loaded; ServerContext.model is set when it has.
// /health answers 503 again, for good, once the engine has failed (Engine.failure).
import { timingSafeEqual, createHash, randomBytes } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { handleChat } from "./chat.js";
import { handleCompletion } from "./completions.js";
import type { ServerContext } from "./context.js";
import { ApiError, bodyTooLarge, engineFailed, internalError, invalidJson, invalidParam, missingApiKey, routeNotFound, wrongApiKey } from "./errors.js";
import { Fields } from "./fields.js";
import { PLAYGROUND_ASSETS, readPlaygroundAsset } from "../index.js";

export interface AppOptions {
  /** Largest accepted request body (default 8 MiB: a 2048-token prompt as ids is ~16 KB, chats with history more). */
  bodyLimit?: number;
  /** Serve the web playground (src/web) at / (default true). */
  playground?: boolean;
}

/**
 * Routes reachable without the API key: load balancers probe /health, and the playground's static files
 * hold no data (the page sends the key with its API calls).
 */
const PUBLIC_ROUTES = new Set(["/health", ...PLAYGROUND_ASSETS.map((a) => a.path)]);

function sameKey(given: string, expected: string): boolean {
  // Compare digests so the comparison takes the same time whatever the lengths.
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export function buildApp(ctx: ServerContext, options: AppOptions = {}): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? 8 * 1024 * 1024;
  const app = Fastify({ logger: false, bodyLimit, return503OnClosing: true });

  // Every body is read as JSON whatever its content-type (curl -d sends form encoding), as llama.cpp does.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(invalidJson((err as Error).message), undefined);
    }
  });

  // CORS: browsers on other origins may call the API (the key, when set, still guards it), as with
  // OpenAI's API and llama.cpp's server. Preflights are answered here, before the key check.
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("access-control-allow-origin", "*");
    // Every API response names its request (openai-node shows it as _request_id / APIError.requestID);
    // generation requests replace this with their completion id. Browsers may read it too.
    if (request.url === "/v1" || request.url.startsWith("/v1/") || request.url.startsWith("/v1?")) {
      void reply.header("x-request-id", `req_${randomBytes(16).toString("hex")}`);
      void reply.header("access-control-expose-headers", "x-request-id");
    }
    if (request.method === "OPTIONS") {
      return reply
        .code(204)
        .header("access-control-allow-methods", "GET, POST, OPTIONS")
        .header("access-control-allow-headers", request.headers["access-control-request-headers"] ?? "authorization, content-type")
        .header("access-control-max-age", "86400")
        .send();
    }
  });

  app.addHook("onRequest", async (request, reply) => {
    // 'close' fires once per response, finished or cut off, streamed or not.
    reply.raw.on("close", () => {
      const endpoint = request.routeOptions.url ?? "unmatched";
      ctx.metrics.requests.inc(1, { endpoint, status: String(reply.raw.statusCode) });
    });
    const key = ctx.settings.apiKey;
    if (key === undefined || PUBLIC_ROUTES.has(request.routeOptions.url ?? "")) return;
    const header = request.headers.authorization;
    if (!header) throw missingApiKey();
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match || !sameKey(match[1], key)) throw wrongApiKey();
  });

  app.setErrorHandler((error: FastifyError | ApiError | Error, _request, reply) => {
    let apiError: ApiError;
    if (error instanceof ApiError) apiError = error;
    else if ((error as FastifyError).code === "FST_ERR_CTP_BODY_TOO_LARGE") apiError = bodyTooLarge(bodyLimit);
    else if ((error as FastifyError).statusCode === 400) apiError = invalidJson(error.message);
    else if ((error as FastifyError).statusCode === 503) apiError = new ApiError(503, error.message, "server_error");
    else apiError = internalError(`Internal error: ${error.message}`);
    if (reply.sent || reply.raw.headersSent) return; // a stream already started; it reports its own errors
    void reply.code(apiError.status).headers(apiError.headers).send(apiError.body());
  });

  app.setNotFoundHandler((request, reply) => {
    const err = routeNotFound(request.method, request.url);
    void reply.code(err.status).send(err.body());
  });

  app.get("/health", async (_request, reply) => {
    if (ctx.closing) return reply.code(503).send({ status: "shutting_down" });
    if (ctx.loadError) return reply.code(500).send({ status: "error", message: ctx.loadError.message });
    if (!ctx.model) return reply.code(503).send({ status: "loading" });
    const s = ctx.model.scheduler;
    if (s.engineFailure) {
      // For good: the engine refuses every forward pass, so a load balancer must take this server out.
      const err = engineFailed(s.engineFailure);
      return reply.code(err.status).send({ status: "error", message: err.message, ...err.body() });
    }
    return { status: "ok", slots_idle: s.slotCount - s.activeCount, slots_processing: s.activeCount, queue_depth: s.queueDepth };
  });

  const modelObject = () => {
    const model = ctx.ready();
    return { id: model.id, object: "model", created: model.created, owned_by: "phi2" };
  };
  app.get("/v1/models", async () => ({ object: "list", data: [modelObject()] }));
  // A wildcard, not :model: hub ids have a slash ("microsoft/phi-2", the default id), which curl sends as is.
  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request) => {
    const model = ctx.ready();
    ctx.checkModelName(model, request.params["*"]);
    return modelObject();
  });

  app.post("/v1/completions", (request, reply) => handleCompletion(ctx, request, reply));
  app.post("/v1/chat/completions", (request, reply) => handleChat(ctx, request, reply));

  app.post("/tokenize", async (request) => {
    const model = ctx.ready();
    const f = Fields.of(request.body);
    const text = f.string("content") ?? f.string("prompt");
    if (text === undefined) throw invalidParam("content", "'content' (or 'prompt') is required: the text to tokenize.");
    const tokens = model.tokenizer.encode(text);
    return { tokens, count: tokens.length, max_model_len: model.contextLength };
  });

  app.post("/detokenize", async (request) => {
    const model = ctx.ready();
    const f = Fields.of(request.body);
    const tokens = f.raw("tokens");
    if (!Array.isArray(tokens)) throw invalidParam("tokens", "'tokens' is required: an array of token ids.");
    for (const id of tokens) {
      if (!Number.isInteger(id) || id < 0 || id >= model.tokenizer.size) {
        throw invalidParam("tokens", `'tokens' holds ${JSON.stringify(id)}, which is not a token id (0..${model.tokenizer.size - 1}).`);
      }
    }
    const text = model.tokenizer.decode(tokens as number[]);
    // llama.cpp answers `content`, vLLM `prompt`: both, so either client works.
    return { content: text, prompt: text };
  });

  if (options.playground ?? true) {
    for (const asset of PLAYGROUND_ASSETS) {
      app.get(asset.path, async (_request, reply) => {
        const file = readPlaygroundAsset(asset.path);
        if (!file) throw routeNotFound("GET", asset.path);
        return reply.type(file.contentType).header("cache-control", "no-cache").send(file.body);
      });
    }
  }

  app.get("/metrics", async (_request, reply) => {
    return reply.type("text/plain; version=0.0.4; charset=utf-8").send(ctx.metrics.render());
  });

  return app;
}
