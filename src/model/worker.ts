// A worker thread: owns one or more partitions (each its own wasm memory), loads their weights from
// the files, then runs its share of every forward pass. Workers meet at one barrier per layer to
// exchange partial sums through shared memory.
import { parentPort, workerData } from "node:worker_threads";
import { Partition, type BatchItem, type PartitionSizes } from "./partition.js";
import { FileReader } from "./weight-io.js";
import type { PhiWeights } from "./weights.js";
import type { PartitionPlan } from "./plan.js";

export interface WorkerInit {
  sizes: Omit<PartitionSizes, "plan">;
  plans: PartitionPlan[];          // this worker's partitions
  partitionCount: number;          // all partitions, all workers
  workerCount: number;
  weights: PhiWeights;
  shared: {
    barrier: SharedArrayBuffer;    // Int32[2]: arrivals, generation
    input: SharedArrayBuffer;      // (maxTokens, C) f32 embedded tokens
    positions: SharedArrayBuffer;  // (maxTokens) i32
    exchange: SharedArrayBuffer;   // (2, partitions, maxTokens, C) f32 partial sums, double-buffered by layer parity
    logits: SharedArrayBuffer;     // (maxTokens, vocab) f32
  };
}

export type ToWorker = { type: "forward"; T: number; items: BatchItem[]; logitRows: number[] } | { type: "exit" };
export type FromWorker =
  | { type: "progress" }
  | { type: "ready" }
  | { type: "done" }
  | { type: "error"; message: string };

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

function barrier(ctrl: Int32Array, n: number): void {
  const gen = Atomics.load(ctrl, 1);
  if (Atomics.add(ctrl, 0, 1) === n - 1) {
    Atomics.store(ctrl, 0, 0);
    Atomics.add(ctrl, 1, 1);
    Atomics.notify(ctrl, 1);
  } else {
    // Spin briefly (the others are usually microseconds away), then sleep.
    for (let i = 0; i < 2000; i++) if (Atomics.load(ctrl, 1) !== gen) return;
    while (Atomics.load(ctrl, 1) === gen) Atomics.wait(ctrl, 1, gen);
  }
}

let parts: Partition[] = [];
try {
  const io = new FileReader();
  const progress = () => post({ type: "progress" });
  parts = init.plans.map((plan) => new Partition({ ...init.sizes, plan }, init.weights));
  for (const p of parts) p.load(io, progress);
  io.close();
  post({ type: "ready" });
} catch (e) {
  post({ type: "error", message: e instanceof Error ? e.message : String(e) });
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

function forward(T: number, items: BatchItem[], logitRows: number[]): void {
  for (const p of parts) p.begin(input, positions, T);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const slot = exchange[l & 1]!;
    for (const p of parts) slot[p.sizes.plan.index]!.set(p.layer(l, T, items));
    barrier(ctrl, init.workerCount);
    for (const p of parts) p.reduce(l, T, slot);
  }
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
    post({ type: "error", message: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
