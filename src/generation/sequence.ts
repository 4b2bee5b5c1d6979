// One request's generation as a state machine that a caller steps: generate.ts steps one, the server's
// scheduler steps many in one batched engine.forward per token. The sequence never calls the model:
//
//   const seq = new GenerationSequence(tokenizer, promptIds, options, engine.contextLength);
//   while (!seq.done) {
//     const { tokens, startPos } = seq.nextInput();
//     const [logits] = await engine.forward([{ slot, tokens, startPos }]);
//     const step = seq.accept(logits);   // step.piece.text: print it; step.finishReason: it ended
//   }
//
// Text goes token -> StreamDetokenizer (whole UTF-8 characters only) -> StopMatcher (holds what could
// be the start of a stop string), so everything emitted is final.
import type { FinishReason, GeneratedPiece, GenerationOptions, StepResult, TokenLogprob } from "./types.js";
import { Sampler } from "./sampler.js";
import { StopMatcher, stopList } from "./stops.js";
import { StreamDetokenizer } from "../tokenizer/stream.js";

/** What a sequence needs of a tokenizer (Phi2Tokenizer has it all). */
export interface SequenceTokenizer {
  decode(ids: readonly number[]): string;
  tokenText(id: number): string;
  readonly eosId: number;
  /** Real tokens; ids >= size are never sampled. */
  readonly size: number;
}

export interface SequenceOptions extends GenerationOptions {
  /**
   * Tokens already in the KV-cache slot from an earlier request. The common prefix with the prompt is
   * not fed again (at least one prompt token always is: its logits are needed).
   */
  cachedTokens?: readonly number[];
}

export interface ModelInput {
  tokens: number[];
  startPos: number;
}

export class GenerationSequence {
  readonly promptTokens: number;
  /** Prompt tokens taken from the slot's cache instead of being fed (prefix reuse). */
  readonly reusedTokens: number;
  /** The sampler's seed (random when options.seed was undefined), to report or replay. */
  readonly seed: number;
  private readonly all: number[];
  private readonly generated: number[] = [];
  /** How many of `all` have been fed to the model (their K/V are in the slot). */
  private fed: number;
  private readonly sampler: Sampler;
  private readonly detok: StreamDetokenizer;
  private readonly stops: StopMatcher;
  private readonly maxTokens: number;
  private readonly stopOnEos: boolean;
  private readonly wantLogprobs: boolean;
  private emitted = "";
  private finish?: FinishReason;
  /** True after nextInput() until accept(): the model owes us logits. */
  private awaitingLogits = false;

  constructor(
    private readonly tokenizer: SequenceTokenizer,
    promptIds: readonly number[],
    private readonly options: SequenceOptions,
    private readonly contextLength: number,
  ) {
    if (promptIds.length === 0) throw new Error("the prompt is empty: at least one token is needed to generate from");
    if (promptIds.length > contextLength) {
      throw new Error(`the prompt has ${promptIds.length} tokens but the context holds only ${contextLength}`);
    }
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= tokenizer.size) {
        throw new RangeError(`prompt token id ${id} is not in the vocabulary (0..${tokenizer.size - 1})`);
      }
    }
    const maxTokens = options.maxTokens ?? Infinity;
    if (!(maxTokens >= 1) || (maxTokens !== Infinity && !Number.isInteger(maxTokens))) {
      throw new RangeError(`maxTokens must be a positive integer, got ${String(options.maxTokens)}`);
    }
    this.maxTokens = maxTokens;
    this.stopOnEos = options.stopOnEos ?? true;
    this.wantLogprobs = !!options.logprobs || (options.topLogprobs ?? 0) > 0;
    this.sampler = new Sampler(options, tokenizer.size);
    this.seed = this.sampler.seed;
    this.detok = new StreamDetokenizer(tokenizer);
    this.stops = new StopMatcher(stopList(options.stop));
    this.all = [...promptIds];
    this.promptTokens = promptIds.length;
    this.reusedTokens = commonPrefix(options.cachedTokens ?? [], promptIds, promptIds.length - 1);
    this.fed = this.reusedTokens;
  }

  get done(): boolean {
    return this.finish !== undefined;
  }

  get finishReason(): FinishReason | undefined {
    return this.finish;
  }

  /** Ids sampled so far (including a final EOS). */
  get generatedIds(): number[] {
    return [...this.generated];
  }

  get completionTokens(): number {
    return this.generated.length;
  }

  /** The stop string that ended the sequence (finish "stop"). */
  get matchedStop(): string | undefined {
    return this.stops.matched;
  }

  /** All text emitted so far (stop strings excluded). */
  get text(): string {
    return this.emitted;
  }

  /** Ids whose K/V are in the slot now, in order: pass as `cachedTokens` to reuse them next time. */
  get tokens(): number[] {
    return this.all.slice(0, this.fed);
  }

  /** The tokens to feed next and the position of the first: the (rest of the) prompt, then one by one. */
  nextInput(): ModelInput {
    if (this.finish) throw new Error(`the sequence has finished (${this.finish}): nothing more to feed`);
    if (this.awaitingLogits) throw new Error("nextInput() called twice: accept() the logits of the previous input first");
    const startPos = this.fed;
    const tokens = this.all.slice(this.fed);
    this.fed = this.all.length;
    this.awaitingLogits = true;
    return { tokens, startPos };
  }

  /** Takes the logits of the last fed token, samples, and reports the new text and whether it ended. */
  accept(logits: Float32Array): StepResult {
    if (this.finish) throw new Error(`the sequence has finished (${this.finish})`);
    if (!this.awaitingLogits) throw new Error("accept() without nextInput(): feed the model first");
    if (logits.length < this.tokenizer.size) {
      throw new RangeError(`logits have ${logits.length} entries, fewer than the ${this.tokenizer.size} tokens of the vocabulary`);
    }
    this.awaitingLogits = false;
    const sampled = this.sampler.sample(logits, this.all);
    const id = sampled.id;
    this.all.push(id);
    this.generated.push(id);

    const piece: GeneratedPiece = { id, text: "" };
    if (this.wantLogprobs && sampled.logprob !== undefined) {
      piece.logprob = this.logprobOf(id, sampled.logprob);
      if (sampled.top) piece.topLogprobs = sampled.top.map((t) => this.logprobOf(t.id, t.logprob));
    }

    let finish: FinishReason | undefined;
    if (this.stopOnEos && id === this.tokenizer.eosId) {
      finish = "eos"; // the EOS token's own text is not output
    } else {
      piece.text = this.stops.push(this.detok.push(id)).emit;
      if (this.stops.stopped) finish = "stop";
      else if (this.generated.length >= this.maxTokens) finish = "length";
      else if (this.all.length > this.contextLength) finish = "context"; // no position left to feed `id`
    }
    if (finish) piece.text += this.release(finish);
    this.emitted += piece.text;
    return finish ? { piece, finishReason: finish } : { piece };
  }

  /**
   * Ends the sequence now (client gone, signal aborted). Text still held back (an incomplete character
   * or a possible start of a stop string) was never confirmed and is dropped, so `text` stays equal to
   * the pieces emitted so far.
   */
  abort(): void {
    if (this.finish) return;
    this.awaitingLogits = false;
    this.finish = "abort";
  }

  /** Ends with `reason` and returns whatever the detokenizer and stop matcher still held. */
  private release(reason: FinishReason): string {
    this.finish = reason;
    if (this.stops.stopped) return "";
    const tail = this.stops.push(this.detok.flush());
    if (tail.stopped) this.finish = "stop";
    return tail.emit + this.stops.flush();
  }

  private logprobOf(id: number, logprob: number): TokenLogprob {
    return { id, text: this.tokenizer.tokenText(id), logprob };
  }
}

/** Length of the common prefix of a and b, at most `limit`. */
function commonPrefix(a: readonly number[], b: readonly number[], limit: number): number {
  let n = 0;
  while (n < limit && n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
