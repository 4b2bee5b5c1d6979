// One HTTP generation request = one or more sequences (prompts × n) in the scheduler. RequestRun bridges
// their callbacks to an async iterator the route handler consumes, and ties their life to the request:
// a client that goes away or a request that runs past the server's timeout aborts every sequence.
import type { ServerResponse } from "node:http";
import type { Scheduler, SequenceEvent, SequenceRequest } from "./scheduler.js";

export type ChoiceEvent = SequenceEvent & { choice: number };

export type AbortCause = "client" | "timeout";

export class RequestRun {
  private readonly pending: ChoiceEvent[] = [];
  private wake: (() => void) | undefined;
  private open: number;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  cause: AbortCause | undefined;

  constructor(specs: Omit<SequenceRequest, "onEvent">[], private readonly scheduler: Scheduler, private readonly arrivedAt: number) {
    this.open = specs.length;
    this.requests = specs.map((spec, choice) => ({
      ...spec,
      onEvent: (event: SequenceEvent) => {
        this.pending.push({ ...event, choice });
        if (event.kind === "finish" || event.kind === "error") this.open--;
        this.wake?.();
      },
    }));
  }

  private readonly requests: SequenceRequest[];

  /** Queues the sequences (throws 429/503 from the scheduler before anything is sent). */
  start(response: ServerResponse, timeoutMs: number): void {
    this.scheduler.submit(this.requests, this.controller.signal, this.arrivedAt);
    // 'close' on the response fires when the connection ends; before the response finished, the client left.
    response.on("close", () => {
      if (!response.writableFinished) this.abort("client");
    });
    if (response.destroyed || response.socket?.destroyed) this.abort("client"); // gone before we listened
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => this.abort("timeout"), timeoutMs);
      this.timer.unref();
    }
  }

  abort(cause: AbortCause): void {
    if (this.controller.signal.aborted) return;
    this.cause = cause;
    this.controller.abort(cause);
  }

  get clientGone(): boolean {
    return this.cause === "client";
  }

  /** Every event of every sequence, in arrival order, until all have finished. */
  async *events(): AsyncGenerator<ChoiceEvent> {
    try {
      for (;;) {
        while (this.pending.length > 0) yield this.pending.shift()!;
        if (this.open === 0) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      clearTimeout(this.timer);
      // A consumer that stops early (write error) must not leave sequences running.
      if (this.open > 0) this.abort("client");
    }
  }
}
