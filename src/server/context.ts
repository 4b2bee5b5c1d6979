// What the routes share: the served model (absent while it loads), the scheduler, metrics and settings.
import { modelLoadFailed, modelLoading, modelNotFound, shuttingDown } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import type { ChatMessage } from "./openai.js";
import type { TokenTexts } from "./responses.js";
import type { Scheduler } from "./scheduler.js";

/** The tokenizer calls the server makes (Phi2Tokenizer provides them). */
export interface ServerTokenizer extends TokenTexts {
  readonly size: number;
  readonly eosId: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

export interface ChatNames {
  user?: string;
  assistant?: string;
}

export interface ServedModel {
  /** The id /v1/models lists and responses carry in `model`. */
  id: string;
  /** Other names a request's `model` may use for it (the path it was loaded from, --alias). */
  aliases: string[];
  /** Unix seconds when loading finished (`created` in /v1/models). */
  created: number;
  /** Tokens per sequence (prompt + completion). */
  contextLength: number;
  /** Width of one row of logits (config.vocab_size, padding rows included). */
  logitsRowSize: number;
  tokenizer: ServerTokenizer;
  scheduler: Scheduler;
  /** Phi-2 chat format: the prompt for the conversation and the stop strings of the next user turn. */
  renderChat(messages: ChatMessage[], names: ChatNames): { prompt: string; stop: string[] };
}

export interface ServerSettings {
  /** Bearer key required on every route but /health; undefined = open. */
  apiKey?: string;
  /** Per-request limit in ms (0 = none). */
  timeoutMs: number;
  /** Most sequences one request may ask for (prompts × n). */
  maxSequencesPerRequest: number;
  /** Default speaker names for chat (the model card's when undefined). */
  chatNames: ChatNames;
}

export class ServerContext {
  model: ServedModel | undefined;
  loadError: Error | undefined;
  closing = false;

  constructor(readonly settings: ServerSettings, readonly metrics: ServerMetrics) {}

  /** The model, or the 503 a client should retry after. */
  ready(): ServedModel {
    if (this.closing) throw shuttingDown();
    if (this.loadError) throw modelLoadFailed(this.loadError);
    if (!this.model) throw modelLoading();
    return this.model;
  }

  /** Checks the request's `model` field: absent, the served id or an alias. */
  checkModelName(model: ServedModel, requested: string | undefined): void {
    if (requested === undefined || requested === model.id || model.aliases.includes(requested)) return;
    throw modelNotFound(requested, model.id);
  }
}
