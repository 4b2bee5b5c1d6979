// A worker thread: owns one or more partitions (each its own wasm memory), loads their weights from
// the files, then runs its share of every forward pass. Workers meet at one barrier per layer to
// exchange partial sums through shared memory. A worker whose pass throws breaks the barrier first, so
// the others stop at it (reporting "aborted") instead of waiting there for ever; every worker then
// reports once per pass and is idle again.
import { parentPort, workerData } from "node:worker_threads";
import { BarrierAbortedError, barrierAbort, barrierWait } from "./barrier.js";
import { Partition, type BatchItem, type PartitionSizes } from "./partition.js";
import { FileReader } from "./weight-io.js";
import type { PhiWeights } from "./weights.js";
import type { PartitionPlan } from "./plan.js";

export interface WorkerInit {
  index: number;                   // this worker's number, for error messages
  sizes: Omit<PartitionSizes, "plan">;
  plans: PartitionPlan[];          // this worker's partitions
  partitionCount: number;          // all partitions, all workers
  workerCount: number;
  weights: PhiWeights;
  shared: {
    barrier: SharedArrayBuffer;    // BARRIER_BYTES: see barrier.ts
    input: SharedArrayBuffer;      // (maxTokens, C) f32 embedded tokens
    positions: SharedArrayBuffer;  // (maxTokens) i32
    exchange: SharedArrayBuffer;   // (2, partitions, maxTokens, C) f32 partial sums, double-buffered by layer parity
    logits: SharedArrayBuffer;     // (maxTokens, vocab) f32
  };
  /**
   * Test hook (EngineOptions.injectFault): throw a RangeError with this message at layer `layer` of this
   * worker's `pass`-th forward pass (1-based), where its partitions' layer would run. Unset in normal use.
   */
  fault?: { pass: number; layer: number; message: string };
}

export type ToWorker = { type: "forward"; T: number; items: BatchItem[]; logitRows: number[] } | { type: "exit" };
export type FromWorker =
  | { type: "progress" }
  | { type: "ready" }
  | { type: "done" }
  /** This pass stopped at the barrier because another worker failed (that worker reports the error). */
  | { type: "aborted" }
  /** Loading, or this worker's share of a pass, threw; `message` names the worker, partitions and layer. */
  | { type: "error"; message: string; stack?: string };

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

const describe = (e: unknown) => e instanceof Error ? `${e.name}: ${e.message}` : String(e);
const partitionNames = `partition${init.plans.length === 1 ? "" : "s"} ${init.plans.map((p) => p.index).join(", ")}`;

let parts: Partition[] = [];
try {
  const io = new FileReader();
  const progress = () => post({ type: "progress" });
  parts = init.plans.map((plan) => new Partition({ ...init.sizes, plan }, init.weights));
  for (const p of parts) p.load(io, progress);
  io.close();
  post({ type: "ready" });
} catch (e) {
  post({ type: "error", message: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined });
}

const { config, maxTokens } = init.sizes;
const C = config.hidden_size, V = config.vocab_size;
const ctrl = new Int32Array(init.shared.barrier);
const input = new Float32Array(init.shared.input);
const positions = new Int32Array(init.shared.positions);
const logits = new Float32Array(init.shared.logits);
const exchange = [0, 1].map((parity) =>
  Array.from({ length: init.partitionCount }, (_, p) =>
    new Float32Array(init.shared.exchange, ((parity * init.partitionCount + p) * maxTokens * C) * 4, maxTokens * C)));

let passes = 0;
/** Where this worker's current pass is, for the error message if it throws. */
let stage = "";

function forward(T: number, items: BatchItem[], logitRows: number[]): void {
  passes++;
  stage = "setup";
  for (const p of parts) p.begin(input, positions, T);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    stage = `layer ${l}`;
    const slot = exchange[l & 1]!;
    if (init.fault && init.fault.pass === passes && init.fault.layer === l) throw new RangeError(init.fault.message);
    for (const p of parts) slot[p.sizes.plan.index]!.set(p.layer(l, T, items));
    barrierWait(ctrl, init.workerCount);
    for (const p of parts) p.reduce(l, T, slot);
  }
  stage = "logits";
  if (logitRows.length === 0) return;
  for (const p of parts) {
    const { start, end } = p.sizes.plan.vocab;
    const vp = end - start;
    const out = p.logits(logitRows);
    for (let r = 0; r < logitRows.length; r++) logits.set(out.subarray(r * vp, (r + 1) * vp), r * V + start);
  }
}

port.on("message", (m: ToWorker) => {
  if (m.type === "exit") {
    port.close();
    return;
  }
  try {
    forward(m.T, m.items, m.logitRows);
    post({ type: "done" });
  } catch (e) {
    if (e instanceof BarrierAbortedError) {
      post({ type: "aborted" });
      return;
    }
    // Release the workers waiting for this one at the barrier before reporting.
    barrierAbort(ctrl);
    post({
      type: "error",
      message: `engine worker ${init.index} (${partitionNames}) failed in ${stage}: ${describe(e)}`,
      stack: e instanceof Error ? e.stack : undefined,
    });
  }
});
