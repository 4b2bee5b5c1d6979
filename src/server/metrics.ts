// Prometheus text exposition (format 0.0.4) without a dependency: counters, gauges and histograms with
// labels, rendered on GET /metrics. Names follow Prometheus conventions (_total, _seconds).

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return "{" + keys.map((k) => `${k}="${escape(labels[k])}"`).join(",") + "}";
}

function formatNumber(x: number): string {
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  if (Number.isNaN(x)) return "NaN";
  return String(x);
}

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(by = 1, labels: Labels = {}): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${formatNumber(value)}`);
    return lines;
  }
}

export class Gauge implements Metric {
  private value = 0;
  /** A gauge is either set directly or read from a callback at render time. */
  constructor(readonly name: string, readonly help: string, private readonly read?: () => number) {}

  set(value: number): void {
    this.value = value;
  }

  get(): number {
    return this.read ? this.read() : this.value;
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${formatNumber(this.get())}`];
  }
}

export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) this.counts[i]++;
  }

  getCount(): number {
    return this.count;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    // Buckets are cumulative: counts[i] already counts every value <= buckets[i].
    for (let i = 0; i < this.buckets.length; i++) {
      lines.push(`${this.name}_bucket{le="${formatNumber(this.buckets[i])}"} ${this.counts[i]}`);
    }
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${formatNumber(this.sum)}`);
    lines.push(`${this.name}_count ${this.count}`);
    return lines;
  }
}

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Every metric the server exports. Gauges that mirror scheduler state read it at render time. */
export class ServerMetrics {
  readonly requests = new Counter("phi2_requests_total", "HTTP requests answered, by endpoint and status code.");
  readonly promptTokens = new Counter("phi2_prompt_tokens_total", "Prompt tokens of admitted sequences.");
  readonly prefilledTokens = new Counter(
    "phi2_prefill_tokens_total",
    "Prompt tokens actually run through the model (prompt tokens minus those reused from a slot's cache).",
  );
  readonly cachedPromptTokens = new Counter(
    "phi2_prompt_cache_tokens_total",
    "Prompt tokens reused from a slot's KV cache (prefix reuse) instead of being prefilled.",
  );
  readonly generatedTokens = new Counter("phi2_generation_tokens_total", "Tokens generated (completion tokens).");
  readonly sequences = new Counter("phi2_sequences_total", "Finished sequences, by finish reason.");
  readonly forwardSteps = new Counter("phi2_forward_steps_total", "Batched engine forward passes.");
  readonly rejected = new Counter("phi2_rejected_total", "Requests refused because the queue was full.");
  readonly queueDepth: Gauge;
  readonly activeSequences: Gauge;
  readonly engineFailed: Gauge;
  readonly tokensPerSecond = new Gauge(
    "phi2_generation_tokens_per_second",
    "Generated tokens per second over the last completed forward steps (all sequences together).",
  );
  readonly requestDuration = new Histogram(
    "phi2_request_duration_seconds",
    "Time from request arrival to the last byte of a generation request.",
    LATENCY_BUCKETS,
  );
  readonly timeToFirstToken = new Histogram(
    "phi2_time_to_first_token_seconds",
    "Time from request arrival to the first generated token of a sequence.",
    LATENCY_BUCKETS,
  );
  readonly queueWait = new Histogram(
    "phi2_queue_wait_seconds",
    "Time a sequence waited in the queue for a slot.",
    LATENCY_BUCKETS,
  );
  readonly batchSize = new Histogram(
    "phi2_batch_sequences",
    "Sequences in one batched forward pass.",
    [1, 2, 4, 8, 16, 32, 64],
  );

  constructor(queueDepth: () => number, active: () => number, engineFailed: () => boolean = () => false) {
    this.queueDepth = new Gauge("phi2_queue_depth", "Sequences waiting for a free slot.", queueDepth);
    this.activeSequences = new Gauge("phi2_active_sequences", "Sequences holding a slot (prefilling or decoding).", active);
    this.engineFailed = new Gauge(
      "phi2_engine_failed",
      "1 once the engine has failed for good (a worker failed; generation requests get 503 until a restart), else 0.",
      () => (engineFailed() ? 1 : 0),
    );
  }

  render(): string {
    const metrics: Metric[] = [
      this.requests, this.promptTokens, this.prefilledTokens, this.cachedPromptTokens, this.generatedTokens,
      this.sequences, this.forwardSteps, this.rejected, this.queueDepth, this.activeSequences, this.engineFailed, this.tokensPerSecond,
      this.requestDuration, this.timeToFirstToken, this.queueWait, this.batchSize,
    ];
    return metrics.flatMap((m) => m.render()).join("\n") + "\n";
  }
}
