// A loaded model turned into what the routes serve: its scheduler (one slot per --parallel), tokenizer,
// chat rendering and the names a request may call it by.
import { basename } from "node:path";
import { GenerationSequence, renderChat, DEFAULT_CHAT_NAMES, type LoadedModel } from "../index.js";
import type { ServedModel } from "./context.js";
import type { ServerMetrics } from "./metrics.js";
import { Scheduler } from "./scheduler.js";

export interface ServeModelOptions {
  /** Sequences that may wait for a slot. */
  queueSize: number;
  /** Tokens per batched forward step (decodes + prefill chunks). */
  stepTokenBudget?: number;
  /** The id served in /v1/models (default: the model's display name). */
  alias?: string;
  metrics?: ServerMetrics;
}

export function serveModel(loaded: LoadedModel, options: ServeModelOptions): ServedModel {
  const { engine, tokenizer } = loaded;
  const scheduler = new Scheduler(
    engine,
    (promptIds, generation, cachedTokens) =>
      new GenerationSequence(tokenizer, promptIds, { ...generation, cachedTokens }, engine.contextLength),
    { queueSize: options.queueSize, stepTokenBudget: options.stepTokenBudget, metrics: options.metrics },
  );
  const id = options.alias ?? loaded.name;
  // Clients often send the path or hub id they know the model by; accept those as well as the id.
  const aliases = [...new Set([loaded.name, loaded.source, basename(loaded.source)])].filter((a) => a && a !== id);
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
