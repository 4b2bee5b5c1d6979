// The engine on the main thread: embeds tokens, hands each forward pass to the workers (which hold
// the partitions), and collects the logits. Calls are serialized; a batch larger than the activation
// buffers is split into several passes (chunked prefill).
//
// Failure: if a worker throws during a pass (a wasm trap, a RangeError in its partition), it breaks the
// layer barrier so the other workers stop too, and once every worker has reported (all are idle again)
// the call rejects with the failing worker's error, naming the worker, its partitions and the layer.
// The engine then stops for good: every later call rejects with "engine failed earlier: <message>", and
// `failure` holds the error (the server's /health turns 503 on it).
// Carrying on would be possible mechanically, but not honestly: a kernel that trapped may already have
// written outside its buffers (weights, other slots' KV caches), and this engine promises bit-identical
// logits, so it refuses rather than risk plausible but wrong ones. A worker that dies (exits) fails the
// engine the same way. dispose() always works.
import { Worker } from "node:worker_threads";
import type { PhiConfig } from "./config.js";
import type { DType } from "../formats/tensor.js";
import type { Engine, ForwardItem } from "./engine.js";
import { Embedding } from "./embedding.js";
import { planPartitions, widestBlockDType, type ModelPlan } from "./plan.js";
import { partitionBytes, type BatchItem, type KvCacheType, type PartitionSizes } from "./partition.js";
import type { PhiWeights } from "./weights.js";
import { computeDType, type LoadQuant } from "./dtype.js";
import type { FromWorker, ToWorker, WorkerInit } from "./worker.js";
import { BARRIER_BYTES, barrierAbort } from "./barrier.js";
import { conversionNotices } from "./conversions.js";

export interface EngineOptions {
  threads: number;
  slots: number;
  contextLength: number;
  /** Most tokens per forward pass (rows of the activation buffers); longer batches are split. */
  maxTokens?: number;
  /** Quantize float weights at load. */
  quant?: LoadQuant;
  /** The KV cache's element type (default f16, as llama.cpp). */
  kvType?: KvCacheType;
  onProgress?: (fraction: number) => void;
  /**
   * Test hook, for the failure tests only: worker `worker` throws a RangeError(message) at layer `layer`
   * of its `pass`-th forward pass (1-based; a chunked call is several passes). Not reachable from
   * loadModel or the CLI.
   */
  injectFault?: { worker: number; pass: number; layer: number; message: string };
}

/** One sequence's rows in a pass, with the token ids to embed. */
interface PassItem extends BatchItem { tokens: number[] }
/** One forward pass: its rows, the rows whose logits are wanted, and which item each belongs to. */
interface Pass { T: number; items: PassItem[]; logitRows: number[]; outputs: Array<{ item: number; rows: number[] }> }
/** The pass the workers are running: how many have reported, and the first error one reported. */
interface InFlight { reported: number; error?: Error; resolve: () => void; reject: (e: Error) => void }

export class PhiEngine implements Engine {
  readonly slots: number;
  readonly contextLength: number;
  readonly threads: number;
  readonly plan: ModelPlan;
  /** Weights held in another type than their file's (see conversions.ts), one line each. */
  readonly notices: string[];
  private readonly maxTokens: number;
  /** The KV cache's element type. */
  readonly kvType: KvCacheType;
  /** Every partition's sizes but its plan: the planner's and the workers'. */
  private readonly sizes: Omit<PartitionSizes, "plan">;
  private readonly injectFault: EngineOptions["injectFault"];
  private workers: Worker[] = [];
  private barrier!: Int32Array;
  private embedding!: Embedding;
  private input!: Float32Array;
  private positions!: Int32Array;
  private logitsBuf!: Float32Array;
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight: InFlight | undefined;
  private failedWith: Error | undefined;
  private disposed = false;

  private constructor(readonly config: PhiConfig, private readonly weights: PhiWeights, o: EngineOptions) {
    this.slots = o.slots;
    this.contextLength = o.contextLength;
    this.maxTokens = o.maxTokens ?? 256;
    this.kvType = o.kvType ?? "f16";
    this.injectFault = o.injectFault;
    const sizes = this.sizes = { config, slots: o.slots, contextLength: o.contextLength, maxTokens: this.maxTokens, quant: o.quant, kvType: this.kvType };
    const held = (w: { ref: { dtype: DType }; cols: number }) => computeDType(w.ref.dtype, w.cols, o.quant);
    this.plan = planPartitions({
      config,
      threads: o.threads,
      denseDType: widestBlockDType(weights.layers.map((l) => held(l.dense_w))),
      fc2DType: widestBlockDType(weights.layers.map((l) => held(l.fc2_w))),
      partitionBytes: (plan) => partitionBytes({ ...sizes, plan }, weights, 1 << 20),
    });
    this.threads = this.plan.workers.length;
    this.notices = conversionNotices(config, weights, this.plan, o.quant);
  }

  static async start(config: PhiConfig, weights: PhiWeights, o: EngineOptions): Promise<PhiEngine> {
    const e = new PhiEngine(config, weights, o);
    await e.boot(o.onProgress);
    return e;
  }

  private async boot(onProgress?: (f: number) => void): Promise<void> {
    const C = this.config.hidden_size, V = this.config.vocab_size, T = this.maxTokens;
    const P = this.plan.partitions.length;
    const shared = {
      barrier: new SharedArrayBuffer(BARRIER_BYTES),
      input: new SharedArrayBuffer(T * C * 4),
      positions: new SharedArrayBuffer(T * 4),
      exchange: new SharedArrayBuffer(2 * P * T * C * 4),
      logits: new SharedArrayBuffer(T * V * 4),
    };
    this.barrier = new Int32Array(shared.barrier);
    this.input = new Float32Array(shared.input);
    this.positions = new Int32Array(shared.positions);
    this.logitsBuf = new Float32Array(shared.logits);

    // Progress: every partition reports once per layer loaded (and once for lm_head).
    const totalSteps = P * (this.config.num_hidden_layers + 1);
    let loaded = 0;
    const ready = this.plan.workers.map((indices, index) => new Promise<void>((resolve, reject) => {
      const fault = this.injectFault?.worker === index ? this.injectFault : undefined;
      const init: WorkerInit = {
        index, sizes: this.sizes, plans: indices.map((i) => this.plan.partitions[i]!), partitionCount: P,
        workerCount: this.plan.workers.length, weights: this.weights, shared,
        fault: fault && { pass: fault.pass, layer: fault.layer, message: fault.message },
      };
      // execArgv: [] so options meant for the main script (e.g. --input-type) do not break the worker.
      const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: init, execArgv: [] });
      this.workers.push(w);
      w.on("message", (m: FromWorker) => {
        if (m.type === "progress") {
          onProgress?.(Math.min(1, ++loaded / totalSteps));
        } else if (m.type === "ready") resolve();
        else if (m.type === "done" || m.type === "aborted") this.reported();
        else if (m.type === "error") {
          const err = remoteError(m.message, m.stack);
          if (this.inFlight) this.reported(err);
          else { // while loading
            reject(err);
            this.fail(err);
          }
        }
      });
      // The worker died (an uncaught error, or it exited): it will not report, so fail at once.
      w.on("error", (err) => { reject(err); this.fail(err); });
      w.on("exit", (code) => {
        if (code !== 0 && !this.disposed) {
          const err = new Error(`engine worker ${index} exited with code ${code}`);
          reject(err);
          this.fail(err);
        }
      });
    }));
    try {
      this.embedding = new Embedding(this.weights.embed);
      await Promise.all(ready);
    } catch (e) {
      await this.dispose();
      throw e;
    }
  }

  /** Fails the engine now (a worker died): release the others from the barrier, reject the pass. */
  private fail(e: Error): void {
    if (this.disposed) return;
    this.failedWith ??= e;
    if (this.barrier) barrierAbort(this.barrier);
    const pass = this.inFlight;
    this.inFlight = undefined;
    pass?.reject(e);
  }

  /** A worker finished its share of the pass (done, aborted, or failed with `error`). */
  private reported(error?: Error): void {
    const pass = this.inFlight;
    if (!pass) return;
    if (error) {
      pass.error ??= error;
      this.failedWith ??= error;
    }
    if (++pass.reported < this.workers.length) return;
    this.inFlight = undefined;
    // "aborted" with no error reported means the main thread broke the barrier: this.failedWith says why.
    const err = pass.error ?? this.failedWith;
    if (err) pass.reject(err);
    else pass.resolve();
  }

  /** The error that stopped the engine for good (see the top of this file); undefined while it works. */
  get failure(): Error | undefined {
    return this.failedWith;
  }

  forward(items: ForwardItem[]): Promise<Float32Array[]> {
    const run = this.queue.then(() => this.forwardNow(items));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private validate(items: ForwardItem[]): void {
    const seen = new Set<number>();
    for (const it of items) {
      if (!Number.isInteger(it.slot) || it.slot < 0 || it.slot >= this.slots) {
        throw new RangeError(`slot ${it.slot} is outside 0..${this.slots - 1}`);
      }
      if (seen.has(it.slot)) throw new RangeError(`slot ${it.slot} appears twice in one batch`);
      seen.add(it.slot);
      if (it.tokens.length === 0) throw new RangeError(`slot ${it.slot}: no tokens to process`);
      if (it.startPos < 0 || it.startPos + it.tokens.length > this.contextLength) {
        throw new RangeError(
          `slot ${it.slot}: positions ${it.startPos}..${it.startPos + it.tokens.length - 1} exceed the context of ${this.contextLength} tokens`,
        );
      }
    }
  }

  /** Splits items into passes of at most maxTokens rows (a long prompt spans several passes). */
  private passes(items: ForwardItem[]): Pass[] {
    const passes: Pass[] = [];
    let cur: Pass = { T: 0, items: [], logitRows: [], outputs: [] };
    items.forEach((it, index) => {
      let done = 0;
      while (done < it.tokens.length) {
        if (cur.T === this.maxTokens) {
          passes.push(cur);
          cur = { T: 0, items: [], logitRows: [], outputs: [] };
        }
        const len = Math.min(it.tokens.length - done, this.maxTokens - cur.T);
        const last = done + len === it.tokens.length;
        const rows: number[] = [];
        if (it.allLogits) for (let i = 0; i < len; i++) rows.push(cur.T + i);
        else if (last) rows.push(cur.T + len - 1);
        if (rows.length) {
          cur.outputs.push({ item: index, rows: rows.map((_, i) => cur.logitRows.length + i) });
          cur.logitRows.push(...rows);
        }
        cur.items.push({ slot: it.slot, row: cur.T, len, startPos: it.startPos + done, tokens: it.tokens.slice(done, done + len) });
        cur.T += len;
        done += len;
      }
    });
    if (cur.T > 0) passes.push(cur);
    return passes;
  }

  private async forwardNow(items: ForwardItem[]): Promise<Float32Array[]> {
    if (this.disposed) throw new Error("engine is disposed");
    if (this.failedWith) throw new Error(`engine failed earlier: ${this.failedWith.message}`, { cause: this.failedWith });
    this.validate(items);
    const V = this.config.vocab_size;
    const results = items.map((it) => new Float32Array((it.allLogits ? it.tokens.length : 1) * V));
    const filled = items.map(() => 0);
    for (const pass of this.passes(items)) {
      for (const it of pass.items) {
        this.embedding.lookup(it.tokens, this.input, it.row);
        for (let i = 0; i < it.len; i++) this.positions[it.row + i] = it.startPos + i;
      }
      const items2: BatchItem[] = pass.items.map(({ slot, row, len, startPos }) => ({ slot, row, len, startPos }));
      await new Promise<void>((resolve, reject) => {
        this.inFlight = { reported: 0, resolve, reject };
        const msg: ToWorker = { type: "forward", T: pass.T, items: items2, logitRows: pass.logitRows };
        for (const w of this.workers) w.postMessage(msg);
      });
      for (const out of pass.outputs) {
        for (const r of out.rows) {
          results[out.item]!.set(this.logitsBuf.subarray(r * V, (r + 1) * V), filled[out.item]! * V);
          filled[out.item]!++;
        }
      }
    }
    return results;
  }

  async dispose(): Promise<void> {
    if (!this.disposed && this.inFlight) {
      this.inFlight.reject(new Error("engine disposed during a forward pass"));
      this.inFlight = undefined;
    }
    this.disposed = true;
    if (this.barrier) barrierAbort(this.barrier); // no worker stays in Atomics.wait
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/** An Error for a worker's report, carrying the worker's stack (the main thread's would say nothing). */
function remoteError(message: string, stack?: string): Error {
  const err = new Error(message);
  const frames = stack?.split("\n").filter((line) => /^\s+at /.test(line));
  if (frames?.length) err.stack = [`Error: ${message}`, ...frames].join("\n");
  return err;
}
