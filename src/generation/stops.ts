// Stop strings over streamed text. A stop string can arrive split over several tokens ("\nAl" + "ice:"),
// so text that could be the start of a stop string is held back until it either completes the stop
// (then it and everything after it are dropped) or stops matching (then it is released).

export interface StopPush {
  /** Text safe to show now. */
  emit: string;
  /** True once a stop string has been seen; nothing more will be emitted. */
  stopped: boolean;
}

export class StopMatcher {
  private readonly stops: string[];
  private readonly longest: number;
  /** Text received but not yet emitted: a possible beginning of a stop string. */
  private held = "";
  private done = false;
  /** The stop string that ended the text, once stopped. */
  matched?: string;

  constructor(stops: readonly string[]) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
    this.longest = Math.max(0, ...this.stops.map((s) => s.length));
  }

  get stopped(): boolean {
    return this.done;
  }

  push(text: string): StopPush {
    if (this.done) return { emit: "", stopped: true };
    if (this.stops.length === 0) return { emit: text, stopped: false };
    const pending = this.held + text;
    // The earliest stop string in the pending text wins.
    let cut = -1;
    for (const stop of this.stops) {
      const at = pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.matched = stop;
      }
    }
    if (cut >= 0) {
      this.done = true;
      this.held = "";
      return { emit: pending.slice(0, cut), stopped: true };
    }
    const hold = this.partialStopSuffix(pending);
    this.held = pending.slice(pending.length - hold);
    return { emit: pending.slice(0, pending.length - hold), stopped: false };
  }

  /** Releases held text at the end of generation (it never became a stop string). */
  flush(): string {
    if (this.done) return "";
    const text = this.held;
    this.held = "";
    return text;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialStopSuffix(text: string): number {
    for (let k = Math.min(text.length, this.longest - 1); k > 0; k--) {
      const tail = text.slice(text.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  }
}

/** The `stop` option as a list: one string or a list of strings (as in the OpenAI API); anything else is refused by name. */
export function stopList(stop: unknown): string[] {
  if (stop === undefined) return [];
  if (typeof stop === "string") return [stop];
  if (Array.isArray(stop) && stop.every((s) => typeof s === "string")) return [...stop];
  throw new TypeError(`stop must be a string or an array of strings, got ${JSON.stringify(stop)}`);
}
