// The meeting point of the engine's workers, once per layer: a generation-counting barrier in shared
// memory. It can be broken: a worker that fails mid-pass (or the main thread, when a worker dies or the
// engine is disposed) sets the "aborted" word, and every worker waiting at the barrier, or arriving at
// it later, throws BarrierAbortedError instead of waiting for ever for a partner that will not come.
//
// Int32 words of the shared buffer:
const ARRIVALS = 0;   // workers at the barrier in this generation
const GENERATION = 1; // bumped each time everyone has arrived (and once by an abort)
const ABORTED = 2;    // 1 once the barrier is broken; stays set (the engine stops after a failure)
export const BARRIER_BYTES = 3 * 4;

export class BarrierAbortedError extends Error {
  override name = "BarrierAbortedError";
  constructor() {
    super("another engine thread failed during this forward pass");
  }
}

/** Blocks until all n workers have arrived; throws BarrierAbortedError if the barrier is broken. */
export function barrierWait(ctrl: Int32Array, n: number): void {
  const gen = Atomics.load(ctrl, GENERATION);
  // An abort stores ABORTED before it bumps GENERATION: if gen is already the bumped value, this sees it.
  if (Atomics.load(ctrl, ABORTED) !== 0) throw new BarrierAbortedError();
  if (Atomics.add(ctrl, ARRIVALS, 1) === n - 1) {
    Atomics.store(ctrl, ARRIVALS, 0);
    Atomics.add(ctrl, GENERATION, 1);
    Atomics.notify(ctrl, GENERATION);
    return;
  }
  // Spin briefly (the others are usually microseconds away), then sleep until the generation moves:
  // a normal release or an abort both bump it, so no wake-up is lost.
  for (let i = 0; i < 2000 && Atomics.load(ctrl, GENERATION) === gen; i++);
  while (Atomics.load(ctrl, GENERATION) === gen) Atomics.wait(ctrl, GENERATION, gen);
  if (Atomics.load(ctrl, ABORTED) !== 0) throw new BarrierAbortedError();
}

/** Breaks the barrier: wakes every waiter and makes every later barrierWait throw. Any thread may call it. */
export function barrierAbort(ctrl: Int32Array): void {
  Atomics.store(ctrl, ABORTED, 1);
  Atomics.add(ctrl, GENERATION, 1);
  Atomics.notify(ctrl, GENERATION);
}
