// A conversation with phi-2 kept in one KV-cache slot. Each turn feeds only what is new: the tokens
// the model generated last time stay as they are (they are already in the cache) and only the text
// after them ("\nAlice: <message>\nBob:") is encoded and fed, using GenerationSequence's prefix reuse.
// The transcript is rebuilt from text (and re-fed) only when it must change earlier on: /system,
// /format, or dropping old turns when the context is full.
import { generate, defaultStops, type GeneratedPiece, type GenerationOptions, type LoadedModel, type PromptFormat } from "../index.js";
import { stopList } from "../generation/stops.js";

export interface Turn {
  user: string;
  /** The reply as shown (stop string excluded; cut short if stopped with Ctrl-C). */
  reply: string;
}

export interface ReplyStats {
  /** Tokens of the whole prompt (transcript so far + the new message). */
  promptTokens: number;
  /** Of those, tokens fed this turn; the rest came from the KV cache. */
  fedTokens: number;
  completionTokens: number;
  finishReason: string;
  /** The sampler's seed, drawn at random when params.seed is unset. */
  seed: number;
  promptTokensPerSec: number;
  genTokensPerSec: number;
}

export interface ChatSessionOptions {
  format: PromptFormat;
  system?: string;
  /** Sampling and length options; `stop` holds the user's extra stop strings. */
  params: GenerationOptions;
  /** Add the format's own stop strings (default true). */
  defaultStops?: boolean;
}

const USER = "Alice";
const ASSISTANT = "Bob";

/** The text of one user turn, ending where the model is to write. */
export function renderTurn(format: PromptFormat, message: string): string {
  switch (format) {
    case "chat":
      return `${USER}: ${message.trim()}\n${ASSISTANT}:`;
    case "qa":
      return `Instruct: ${message.trim()}\nOutput:`;
    case "code":
    case "raw":
      return message;
    default:
      throw new Error(`unknown prompt format "${format as string}"`);
  }
}

/** The whole transcript: system preamble, earlier turns with their replies, the new turn. */
export function renderTranscript(format: PromptFormat, system: string, history: readonly Turn[], message: string): string {
  const parts = system.trim() ? [system.trim()] : [];
  for (const turn of history) parts.push(renderTurn(format, turn.user) + turn.reply);
  parts.push(renderTurn(format, message));
  return parts.join("\n");
}

export class ChatSession {
  format: PromptFormat;
  system: string;
  params: GenerationOptions;
  useDefaultStops: boolean;
  readonly history: Turn[] = [];
  /** The seed of the last reply (drawn when params.seed is unset), for /params. */
  lastSeed?: number;
  /** Prompt of the last turn (ids and the text they stand for) and what the model generated after it. */
  private last?: { promptIds: number[]; promptText: string; generated: number[]; reply: string };
  /** Ids in the KV-cache slot now. */
  private slotTokens: number[] = [];

  constructor(private readonly model: LoadedModel, options: ChatSessionOptions) {
    this.format = options.format;
    this.system = options.system ?? "";
    this.params = { ...options.params };
    this.useDefaultStops = options.defaultStops ?? true;
  }

  /** Forget the conversation (the slot keeps the system preamble's tokens for reuse). */
  reset(): void {
    this.history.length = 0;
    this.last = undefined;
  }

  /** Earlier turns must be rendered differently: next turn re-renders the transcript from text. */
  invalidate(): void {
    this.last = undefined;
  }

  get stops(): string[] {
    return [...(this.useDefaultStops ? defaultStops(this.format) : []), ...stopList(this.params.stop)];
  }

  /** Streams the reply to `message` piece by piece; returns the stats. Abort with `signal`. */
  async *reply(message: string, signal?: AbortSignal): AsyncGenerator<GeneratedPiece, ReplyStats, void> {
    const { ids, text } = this.buildPrompt(message);
    // Until the reply completes the slot holds an unknown mix of old and new keys/values: a reply that
    // throws or whose reader stops early must not leave slotTokens claiming the old ones (see Phi2.stream).
    const reuse = this.slotTokens;
    this.slotTokens = [];
    const it = generate(this.model.engine, this.model.tokenizer, ids, {
      ...this.params,
      stop: this.stops,
      cachedTokens: reuse,
      signal,
    });
    let next;
    try {
      next = await it.next();
      while (!next.done) {
        yield next.value;
        next = await it.next();
      }
    } finally {
      await it.return(undefined as never);
    }
    const result = next.value;
    this.slotTokens = result.tokens;
    this.lastSeed = result.seed;
    this.history.push({ user: message, reply: result.text });
    this.last = { promptIds: ids, promptText: text, generated: result.ids, reply: result.text };
    return {
      promptTokens: result.promptTokens,
      fedTokens: result.promptTokens - result.reusedTokens,
      completionTokens: result.completionTokens,
      finishReason: result.finishReason,
      seed: result.seed,
      promptTokensPerSec: result.timings.promptTokensPerSec,
      genTokensPerSec: result.timings.genTokensPerSec,
    };
  }

  /** Token ids for the next turn: incremental when possible, else rendered from the history. */
  buildPrompt(message: string): { ids: number[]; text: string } {
    const tokenizer = this.model.tokenizer;
    const contextLength = this.model.engine.contextLength;
    // Room to answer: maxTokens, at most half the context.
    const reserve = Math.min(this.params.maxTokens ?? 256, Math.floor(contextLength / 2));
    let built = this.last ? this.incremental(message) : undefined;
    while (!built || built.ids.length + reserve > contextLength) {
      if (built && this.history.length === 0) {
        throw new Error(`the message is ${built.ids.length} tokens long; with room for a ${reserve}-token reply it does not fit the ${contextLength}-token context`);
      }
      if (built) {
        this.history.shift(); // too long: forget the oldest turn and render again
        this.last = undefined;
      }
      const text = renderTranscript(this.format, this.system, this.history, message);
      built = { ids: tokenizer.encode(text), text };
    }
    return built;
  }

  /**
   * Keep the longest run of last turn's generated tokens whose text starts the wanted continuation
   * (the reply, then "\n" + the new turn), and encode only the rest. When the reply ended at the stop
   * string "\nAlice:", the model's own tokens for it are kept and only " <message>\nBob:" is new.
   */
  private incremental(message: string): { ids: number[]; text: string } {
    const last = this.last!;
    const tokenizer = this.model.tokenizer;
    const wanted = last.reply + "\n" + renderTurn(this.format, message);
    let keep = last.generated.length;
    let keptText = "";
    for (; keep > 0; keep--) {
      keptText = tokenizer.decode(last.generated.slice(0, keep));
      if (wanted.startsWith(keptText) && !keptText.includes("\uFFFD")) break;
    }
    if (keep === 0) keptText = "";
    const ids = [...last.promptIds, ...last.generated.slice(0, keep), ...tokenizer.encode(wanted.slice(keptText.length))];
    return { ids, text: last.promptText + wanted };
  }
}
