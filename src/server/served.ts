// A loaded model turned into what the routes serve: its scheduler (one slot per --parallel), tokenizer,
// chat rendering and the names a request may call it by.
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { GenerationSequence, renderChat, DEFAULT_CHAT_NAMES, looksLikeHubId, type LoadedModel } from "../index.js";
import type { ServedModel } from "./context.js";
import type { ServerMetrics } from "./metrics.js";
import { Scheduler } from "./scheduler.js";

export interface ServeModelOptions {
  /** Sequences that may wait for a slot. */
  queueSize: number;
  /** Tokens per batched forward step (decodes + prefill chunks). */
  stepTokenBudget?: number;
  /** The id served in /v1/models (default: the hub id it was asked for, else the model's display name). */
  alias?: string;
  /** What the operator passed as --model (a hub id like microsoft/phi-2, or a path); accepted as a name. */
  requestedAs?: string;
  metrics?: ServerMetrics;
  /** Called once when the engine is first seen to have failed for good (the server logs it). */
  onEngineFailure?: (failure: Error) => void;
}

export function serveModel(loaded: LoadedModel, options: ServeModelOptions): ServedModel {
  const { engine, tokenizer } = loaded;
  const scheduler = new Scheduler(
    engine,
    (promptIds, generation, cachedTokens) =>
      new GenerationSequence(tokenizer, promptIds, { ...generation, cachedTokens }, engine.contextLength),
    {
      queueSize: options.queueSize,
      stepTokenBudget: options.stepTokenBudget,
      metrics: options.metrics,
      onEngineFailure: options.onEngineFailure,
    },
  );
  const requested = options.requestedAs;
  const id = options.alias ?? (requested && looksLikeHubId(requested) && !existsSync(requested) ? requested : loaded.name);
  // Clients often send the path or hub id they know the model by; accept those as well as the id.
  const names = [loaded.name, loaded.source, basename(loaded.source), requested ?? ""];
  const aliases = [...new Set(names)].filter((a) => a !== "" && a !== id);
  return {
    id,
    aliases,
    created: Math.floor(Date.now() / 1000),
    contextLength: engine.contextLength,
    logitsRowSize: engine.config.vocab_size,
    tokenizer,
    scheduler,
    renderChat: (messages, names) =>
      renderChat(messages, { user: names.user ?? DEFAULT_CHAT_NAMES.user, assistant: names.assistant ?? DEFAULT_CHAT_NAMES.assistant }),
  };
}
