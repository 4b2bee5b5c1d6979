// Continuous batching. Every active sequence holds one KV-cache slot of the engine; one loop runs
// batched forward passes: each step carries the next token of every decoding sequence plus chunks of
// the prompts of sequences that just got a slot (chunked prefill with a per-step token budget, so a long
// new prompt never stalls the others' decoding for more than one budget's worth of work). Sequences join
// and leave between steps. Waiting sequences sit in a bounded FIFO queue; when it is full, submit throws
// 429.
//
// Prefix reuse: after a sequence ends, its slot keeps the record of which tokens its KV cache holds. A new
// sequence takes the free slot whose cached tokens share the longest prefix with its prompt, and only the
// rest of the prompt is prefilled (multi-turn chat re-sends the whole conversation each turn).
//
// Chunked prefill and prefix reuse are the same mechanism seen from the generation side: the
// GenerationSequence is created when the rest of the prompt fits in the step, and is told that everything
// before it is already cached (cachedTokens), whether it came from an earlier request or an earlier chunk.
//
// Engine failure: an engine error fails only the sequences of that batch, unless the engine has failed for
// good (engine.failure is set: a worker trapped or died). Then every running and queued sequence fails
// with a 503 "engine failed: ..." ApiError, and submit refuses new ones with it. The first time the
// scheduler sees the failure (in a step, a submit, or a /health or /metrics read of engineFailure) it
// reports it once through onEngineFailure (the server logs it).
import type { Engine, ForwardItem, GenerationOptions, StepResult } from "../index.js";
import { engineFailed, queueFull, shuttingDown } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

/** What the scheduler needs from a generation state machine (GenerationSequence implements it). */
export interface StepSequence {
  /** Tokens to feed next and the position of the first; the first call returns the uncached prompt rest. */
  nextInput(): { tokens: number[]; startPos: number };
  /** Next-token logits (vocab_size floats) after the last fed token -> the sampled piece / finish. */
  accept(logits: Float32Array): StepResult;
}

/** Makes a generation state machine; `cachedTokens` (a prefix of promptIds) are already in the slot. */
export type SequenceFactory = (promptIds: number[], options: GenerationOptions, cachedTokens: number[]) => StepSequence;

/** Events of one sequence, in order: optional promptLogits, steps, then exactly one finish. */
export type SequenceEvent =
  | { kind: "promptLogits"; /** (count, vocab) logits after prompt tokens first..first+count-1 */ logits: Float32Array; first: number; count: number }
  | { kind: "step"; result: StepResult }
  | { kind: "finish"; result: StepResult; /** false when it never got a slot (aborted in the queue) */ started: boolean }
  | { kind: "error"; error: Error };

export interface SequenceRequest {
  promptIds: number[];
  options: GenerationOptions;
  /** Also return the logits after every prompt token (echo + logprobs); disables prefix reuse. */
  promptLogits?: boolean;
  onEvent(event: SequenceEvent): void;
}

export interface SchedulerOptions {
  /** Sequences that may wait for a slot; more -> 429. */
  queueSize: number;
  /** Tokens per forward step (decode tokens + prefill chunks). */
  stepTokenBudget?: number;
  metrics?: ServerMetrics;
  /** Called once, the first time the scheduler sees that the engine has failed for good (Engine.failure). */
  onEngineFailure?: (failure: Error) => void;
}

type Phase = "queued" | "prefill" | "decode" | "done";

interface Sequence {
  request: SequenceRequest;
  signal?: AbortSignal;
  phase: Phase;
  slot: number;
  /** Prompt tokens already in the slot's KV cache. */
  fed: number;
  generation?: StepSequence;
  queuedAt: number;
  arrivedAt: number;
  generated: number;
  /** Set by abortAll (shutdown): ends the sequence before the next step, like an aborted signal. */
  cancelled: boolean;
}

interface SlotState {
  busy: boolean;
  /** Tokens whose keys/values the slot's cache holds, positions 0..tokens.length-1. */
  tokens: number[];
  lastUsed: number;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Scheduler {
  private readonly slots: SlotState[];
  private readonly queue: Sequence[] = [];
  private readonly active: Sequence[] = [];
  private readonly budget: number;
  private looping = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private useCounter = 0;
  private failureReported = false;
  /** Recent (time, tokens) of completed steps, for the tokens/s gauge. */
  private recentSteps: { at: number; tokens: number }[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly createSequence: SequenceFactory,
    private readonly options: SchedulerOptions,
  ) {
    this.slots = Array.from({ length: engine.slots }, () => ({ busy: false, tokens: [], lastUsed: 0 }));
    this.budget = Math.max(1, options.stepTokenBudget ?? 256);
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get activeCount(): number {
    return this.active.length;
  }

  get slotCount(): number {
    return this.slots.length;
  }

  /** The error that stopped the engine for good (Engine.failure); undefined while it works. */
  get engineFailure(): Error | undefined {
    return this.checkEngine();
  }

  /** engine.failure; the first time it is set, also reports it through options.onEngineFailure. */
  private checkEngine(): Error | undefined {
    const failure = this.engine.failure;
    if (failure && !this.failureReported) {
      this.failureReported = true;
      try {
        this.options.onEngineFailure?.(failure);
      } catch {
        // A logger that throws must not take the scheduler down with it.
      }
    }
    return failure;
  }

  /** Tokens each slot's cache holds now (for tests and debugging). */
  cachedTokens(slot: number): readonly number[] {
    return this.slots[slot].tokens;
  }

  /**
   * Queues sequences (all or none). Throws 429 when the queue cannot take them all, 503 after close() or
   * once the engine has failed. An aborted `signal` ends them: queued ones at once, running ones before
   * the next step.
   */
  submit(requests: SequenceRequest[], signal?: AbortSignal, arrivedAt = performance.now()): void {
    if (this.closed) throw shuttingDown();
    const failure = this.checkEngine();
    if (failure) throw engineFailed(failure);
    const freeSlots = this.slots.filter((s) => !s.busy).length;
    const waitingAfter = this.queue.length + requests.length - freeSlots;
    if (waitingAfter > this.options.queueSize) {
      this.options.metrics?.rejected.inc();
      throw queueFull(this.options.queueSize);
    }
    const now = performance.now();
    const sequences = requests.map(
      (request): Sequence => ({ request, signal, phase: "queued", slot: -1, fed: 0, queuedAt: now, arrivedAt, generated: 0, cancelled: false }),
    );
    this.queue.push(...sequences);
    signal?.addEventListener("abort", () => this.dropQueued(sequences), { once: true });
    if (signal?.aborted) this.dropQueued(sequences);
    this.kick();
  }

  /** Refuses new work from now on; resolves when every queued and running sequence has ended or the wait is over. */
  async drain(maxWaitMs: number): Promise<boolean> {
    this.closed = true;
    if (this.queue.length === 0 && this.active.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), maxWaitMs)));
    const finished = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    if (!finished) this.abortAll();
    return finished;
  }

  /** Ends every sequence now (finish reason "abort"); their slots are freed before the next step. */
  abortAll(): void {
    for (const seq of [...this.queue]) this.finish(seq, { finishReason: "abort" });
    for (const seq of this.active) seq.cancelled = true;
    this.kick();
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private dropQueued(sequences: Sequence[]): void {
    for (const seq of sequences) if (seq.phase === "queued") this.finish(seq, { finishReason: "abort" });
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.endAborted();
        if (this.failAllIfEngineFailed()) break;
        this.admit();
        if (this.active.length === 0) break;
        try {
          await this.step();
        } catch (err) {
          // A bug, not an engine error (those are handled in step): fail what runs rather than crash the
          // server; the slots' cache records may be wrong, so forget them.
          for (const seq of [...this.active]) {
            this.slots[seq.slot].tokens = [];
            this.fail(seq, asError(err));
          }
        }
        // Let HTTP handlers run between steps (new requests, closed sockets) even when forward resolves
        // without touching the event loop.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.looping = false;
      if (this.active.length === 0 && this.queue.length === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  /** When the engine has failed for good, fails every running and queued sequence with the 503 saying so. */
  private failAllIfEngineFailed(): boolean {
    const failure = this.checkEngine();
    if (!failure) return false;
    const error = engineFailed(failure);
    for (const seq of [...this.active, ...this.queue]) {
      if (seq.phase !== "queued") this.slots[seq.slot].tokens = [];
      this.fail(seq, error);
    }
    return true;
  }

  private endAborted(): void {
    for (const seq of [...this.active]) if (seq.cancelled || seq.signal?.aborted) this.finish(seq, { finishReason: "abort" });
  }

  /** Gives free slots to queued sequences, FIFO; each takes the free slot with the longest cached prefix. */
  private admit(): void {
    while (this.queue.length > 0) {
      const free = this.slots.map((s, i) => i).filter((i) => !this.slots[i].busy);
      if (free.length === 0) return;
      const seq = this.queue.shift()!;
      const prompt = seq.request.promptIds;
      let best = free[0];
      let bestPrefix = -1;
      for (const i of free) {
        const prefix = commonPrefix(this.slots[i].tokens, prompt);
        // Ties go to the least recently used slot, keeping recently used caches for their next turn.
        if (prefix > bestPrefix || (prefix === bestPrefix && this.slots[i].lastUsed < this.slots[best].lastUsed)) {
          best = i;
          bestPrefix = prefix;
        }
      }
      // At least one prompt token must be run to get logits for the first generated token.
      const reuse = seq.request.promptLogits ? 0 : Math.min(bestPrefix, prompt.length - 1);
      const slot = this.slots[best];
      slot.busy = true;
      slot.lastUsed = ++this.useCounter;
      slot.tokens = slot.tokens.slice(0, reuse);
      seq.slot = best;
      seq.fed = reuse;
      seq.phase = "prefill";
      this.active.push(seq);
      const metrics = this.options.metrics;
      if (metrics) {
        metrics.queueWait.observe((performance.now() - seq.queuedAt) / 1000);
        metrics.promptTokens.inc(prompt.length);
        metrics.cachedPromptTokens.inc(reuse);
      }
    }
  }

  private async step(): Promise<void> {
    interface Planned {
      seq: Sequence;
      item: ForwardItem;
      /** Last chunk of the prompt or a decode token: its logits go to generation.accept. */
      sample: boolean;
    }
    const planned: Planned[] = [];
    let budget = this.budget;
    const broken: { seq: Sequence; error: Error }[] = [];
    for (const seq of this.active) {
      if (seq.phase !== "decode") continue;
      let input: { tokens: number[]; startPos: number };
      try {
        input = seq.generation!.nextInput();
      } catch (err) {
        broken.push({ seq, error: asError(err) });
        continue;
      }
      planned.push({ seq, item: { slot: seq.slot, tokens: input.tokens, startPos: input.startPos }, sample: true });
      budget -= input.tokens.length;
    }
    let prefillTokens = 0;
    for (const seq of this.active) {
      if (seq.phase !== "prefill") continue;
      // Even when the decoders alone use up the budget, the oldest prefill makes some progress each step.
      const allowance = prefillTokens === 0 && budget <= 0 ? Math.min(32, this.budget) : budget;
      if (allowance <= 0) break;
      const prompt = seq.request.promptIds;
      const remaining = prompt.length - seq.fed;
      const allLogits = seq.request.promptLogits === true;
      if (remaining <= allowance) {
        let input: { tokens: number[]; startPos: number };
        try {
          seq.generation = this.createSequence(prompt, seq.request.options, prompt.slice(0, seq.fed));
          input = seq.generation.nextInput();
          if (input.startPos !== seq.fed || input.startPos + input.tokens.length !== prompt.length) {
            throw new Error(
              `generation sequence asked to feed positions ${input.startPos}..${input.startPos + input.tokens.length} ` +
                `but the slot holds ${seq.fed} of ${prompt.length} prompt tokens`,
            );
          }
        } catch (err) {
          broken.push({ seq, error: asError(err) });
          continue;
        }
        planned.push({ seq, item: { slot: seq.slot, tokens: input.tokens, startPos: input.startPos, allLogits }, sample: true });
        budget -= input.tokens.length;
        prefillTokens += input.tokens.length;
      } else {
        const tokens = prompt.slice(seq.fed, seq.fed + allowance);
        planned.push({ seq, item: { slot: seq.slot, tokens, startPos: seq.fed, allLogits }, sample: false });
        budget -= tokens.length;
        prefillTokens += tokens.length;
      }
    }
    for (const { seq, error } of broken) this.fail(seq, error);
    if (planned.length === 0) return;

    let results: Float32Array[];
    try {
      results = await this.engine.forward(planned.map((p) => p.item));
      if (results.length !== planned.length) {
        throw new Error(`engine.forward returned ${results.length} results for ${planned.length} items`);
      }
    } catch (err) {
      // The caches of the slots in this batch are in an unknown state: forget them and fail their sequences.
      // If the engine failed for good, say so (the loop then fails everyone else too).
      const failure = this.checkEngine();
      const error = failure ? engineFailed(failure) : asError(err);
      for (const p of planned) {
        this.slots[p.seq.slot].tokens = [];
        this.fail(p.seq, error);
      }
      return;
    }

    const metrics = this.options.metrics;
    metrics?.forwardSteps.inc();
    metrics?.batchSize.observe(planned.length);
    metrics?.prefilledTokens.inc(prefillTokens);
    const vocab = this.engine.config.vocab_size;
    let generatedThisStep = 0;
    for (let i = 0; i < planned.length; i++) {
      const { seq, item, sample } = planned[i];
      const slot = this.slots[seq.slot];
      slot.tokens = slot.tokens.slice(0, item.startPos).concat(item.tokens);
      if (seq.phase === "done") continue; // aborted while the step ran: its slot record is still right
      let logits = results[i];
      if (item.allLogits) {
        seq.request.onEvent({ kind: "promptLogits", logits, first: item.startPos, count: item.tokens.length });
        logits = logits.subarray((item.tokens.length - 1) * vocab, item.tokens.length * vocab);
      }
      if (seq.phase === "prefill") seq.fed = item.startPos + item.tokens.length;
      if (!sample) continue;
      seq.phase = "decode";
      let result: StepResult;
      try {
        result = seq.generation!.accept(logits);
      } catch (err) {
        this.fail(seq, asError(err));
        continue;
      }
      if (result.piece) {
        if (seq.generated === 0) metrics?.timeToFirstToken.observe((performance.now() - seq.arrivedAt) / 1000);
        seq.generated++;
        generatedThisStep++;
      }
      if (result.finishReason) this.finish(seq, result);
      else seq.request.onEvent({ kind: "step", result });
    }
    if (metrics) {
      metrics.generatedTokens.inc(generatedThisStep);
      this.updateRate(generatedThisStep);
    }
  }

  /** tokens/s over the steps of the last 10 s. */
  private updateRate(tokens: number): void {
    const now = performance.now();
    this.recentSteps.push({ at: now, tokens });
    while (this.recentSteps.length > 1 && now - this.recentSteps[0].at > 10_000) this.recentSteps.shift();
    const first = this.recentSteps[0];
    const span = (now - first.at) / 1000;
    const total = this.recentSteps.reduce((sum, s) => sum + s.tokens, 0) - first.tokens;
    if (span > 0) this.options.metrics?.tokensPerSecond.set(total / span);
  }

  private release(seq: Sequence): void {
    if (seq.phase === "queued") {
      const at = this.queue.indexOf(seq);
      if (at >= 0) this.queue.splice(at, 1);
    } else if (seq.phase !== "done") {
      const at = this.active.indexOf(seq);
      if (at >= 0) this.active.splice(at, 1);
      this.slots[seq.slot].busy = false;
    }
    seq.phase = "done";
  }

  private finish(seq: Sequence, result: StepResult): void {
    if (seq.phase === "done") return;
    const started = seq.phase !== "queued";
    this.release(seq);
    this.options.metrics?.sequences.inc(1, { finish_reason: result.finishReason ?? "abort" });
    seq.request.onEvent({ kind: "finish", result, started });
  }

  private fail(seq: Sequence, error: Error): void {
    if (seq.phase === "done") return;
    this.release(seq);
    this.options.metrics?.sequences.inc(1, { finish_reason: "error" });
    seq.request.onEvent({ kind: "error", error });
  }
}
