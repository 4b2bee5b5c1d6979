// The ten-line way to embed Phi-2: `const model = await Phi2.load("microsoft/phi-2")`, then
// `for await (const text of model.generate("Instruct: ...\nOutput:")) ...`. A thin facade over
// loadModel + generate that keeps one conversation's tokens in the KV cache between calls.
import { loadModel, type LoadOptions, type LoadedModel } from "./model/load.js";
import { generate, type GenerateOptions, type GenerationResult } from "./generation/generate.js";
import { formatPrompt, renderChat, type ChatMessage, type ChatNames, type PromptFormat } from "./generation/formats.js";
import { stopList } from "./generation/stops.js";
import type { PhiConfig } from "./model/config.js";
import { resolveModel, type HubOptions } from "./hub/resolve.js";
import { DEFAULT_MODEL_ID } from "./hub/select.js";

export interface Phi2LoadOptions extends LoadOptions {
  /** Hub download settings when the source is a hub id (revision, endpoint, progress). */
  hub?: HubOptions;
}

export interface Phi2GenerateOptions extends Omit<GenerateOptions, "slot" | "cachedTokens"> {
  /** Wraps the prompt in a phi-2 template and adds that format's stop strings (default "raw"). */
  format?: PromptFormat;
}

export interface Phi2ChatOptions extends Phi2GenerateOptions {
  names?: ChatNames;
}

export interface Phi2ChatResult extends GenerationResult {
  message: { role: "assistant"; content: string };
}

export class Phi2 {
  /** Ids in the KV cache after the last call: a prompt that extends them is not prefilled again. */
  private cached: number[] = [];
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(private readonly model: LoadedModel) {}

  /**
   * Loads a model: a Hugging Face folder, a .gguf file, or a hub id ("microsoft/phi-2",
   * "TheBloke/phi-2-GGUF:Q4_K_M"), downloaded into the shared hub cache when missing.
   */
  static async load(source: string = DEFAULT_MODEL_ID, options: Phi2LoadOptions = {}): Promise<Phi2> {
    const path = await resolveModel(source, options.hub);
    return new Phi2(await loadModel(path, options));
  }

  get config(): PhiConfig { return this.model.config; }
  get name(): string { return this.model.name; }
  /** Milliseconds the load took. */
  get loadMs(): number { return this.model.loadMs; }
  /** Weights held in another type than the file's (converted at load), one line each; empty when none. */
  get notices(): readonly string[] { return this.model.notices; }

  /**
   * The error that stopped the engine for good (a worker thread failed mid-pass or died), or undefined
   * while it works. Once set it stays set: the call that was running rejects with this error, and every
   * later generate / complete / chat rejects at once with an error naming it (its `cause`). tokenize and
   * detokenize still work; dispose() and load the model again to generate.
   */
  get failure(): Error | undefined { return this.model.engine.failure; }

  tokenize(text: string): number[] { return this.model.tokenizer.encode(text); }
  detokenize(ids: readonly number[]): string { return this.model.tokenizer.decode([...ids]); }

  /** Streams the text of a completion piece by piece. Abort with options.signal. */
  async *generate(prompt: string, options: Phi2GenerateOptions = {}): AsyncGenerator<string, GenerationResult, void> {
    const { format = "raw", stop = [], ...rest } = options;
    const f = formatPrompt(format, prompt);
    return yield* this.stream(f.prompt, { ...rest, stop: [...f.stop, ...stopList(stop)] });
  }

  /** The whole completion at once. */
  async complete(prompt: string, options: Phi2GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.generate(prompt, options);
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value;
  }

  /** One assistant turn after `messages`, rendered in phi-2's chat format (Alice/Bob by default). */
  async chat(messages: readonly ChatMessage[], options: Phi2ChatOptions = {}): Promise<Phi2ChatResult> {
    const { names, stop = [], ...rest } = options;
    const f = renderChat(messages, names);
    const it = this.stream(f.prompt, { ...rest, stop: [...f.stop, ...stopList(stop)] });
    let r = await it.next();
    while (!r.done) r = await it.next();
    return { ...r.value, message: { role: "assistant", content: r.value.text.trim() } };
  }

  /** Runs one generation at a time (one KV slot), reusing the cached prefix. */
  private async *stream(prompt: string, options: GenerateOptions): AsyncGenerator<string, GenerationResult, void> {
    let release!: () => void;
    const previous = this.busy;
    this.busy = new Promise<void>((r) => (release = r));
    await previous;
    try {
      const failure = this.failure;
      if (failure) {
        throw new Error(`Phi2: the engine failed earlier, load the model again to generate: ${failure.message}`, { cause: failure });
      }
      // Until this run completes, the cache holds an unknown mix of the old tokens and this run's: a
      // consumer that stops early (`break` out of the loop, which skips the catch) must not leave
      // `cached` claiming the old ones, or the next prompt would reuse keys and values it no longer has.
      const reuse = this.cached;
      this.cached = [];
      const it = generate(this.model.engine, this.model.tokenizer, prompt, { ...options, slot: 0, cachedTokens: reuse });
      try {
        let r = await it.next();
        while (!r.done) {
          yield r.value.text;
          r = await it.next();
        }
        this.cached = r.value.tokens;
        return r.value;
      } finally {
        await it.return(undefined as never); // closes the generation when the consumer stopped early
      }
    } finally {
      release();
    }
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
