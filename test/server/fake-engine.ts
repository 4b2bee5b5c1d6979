// A deterministic stand-in for the engine, for scheduler unit tests: it keeps each slot's tokens like a
// KV cache and returns logits that depend on the slot's whole content, so any scheduling mistake (a
// wrong startPos, a stale cached prefix, a skipped chunk) changes the text. The expected text is
// computed independently by `expectedGreedy`, which runs the same rule on the plain token list.
// fakeLoadedModel serves it with startServer (server tests that need no real model).
import assert from "node:assert/strict";
import type { Engine, ForwardItem, LoadedModel, PhiConfig } from "../../src/index.js";

export const FAKE_VOCAB = 40;
/** The fake tokenizer's EOS; the fake logits never favour it, so greedy sequences end on max_tokens (sampled ones can pick it, ~0.2% a step at temperature 1: tests that need length use ignore_eos). */
export const FAKE_EOS = FAKE_VOCAB - 1;

/** The token the fake model predicts after `context`: a hash of all of it. */
export function fakeNext(context: readonly number[]): number {
  let h = 2166136261;
  for (const t of context) h = Math.imul(h ^ (t + 1), 16777619) >>> 0;
  return h % (FAKE_VOCAB - 1);
}

function logitsFor(context: readonly number[]): Float32Array {
  const row = new Float32Array(FAKE_VOCAB);
  for (let i = 0; i < FAKE_VOCAB; i++) row[i] = -((i * 7 + context.length) % 11) / 4; // ties broken below
  row[fakeNext(context)] = 5;
  return row;
}

export function expectedGreedy(prompt: readonly number[], maxTokens: number): number[] {
  const all = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const id = fakeNext(all);
    out.push(id);
    all.push(id);
  }
  return out;
}

export class FakeEngine implements Engine {
  readonly config: PhiConfig;
  readonly threads = 1;
  readonly cache: number[][];
  /** Every forward call's items (refused ones too), for assertions on batching. */
  readonly calls: ForwardItem[][] = [];
  /** Throw on the next forward call (once). */
  failNext: Error | undefined;
  /**
   * Fail the engine for good on the next forward call, as PhiEngine does when a worker fails mid-pass:
   * that call rejects with this error, `failure` holds it, and every later call rejects with
   * "engine failed earlier: <message>".
   */
  breakNext: Error | undefined;
  private failedWith: Error | undefined;
  private busy = false;

  constructor(readonly slots: number, readonly contextLength: number, private readonly delayMs = 0) {
    this.cache = Array.from({ length: slots }, () => []);
    this.config = { vocab_size: FAKE_VOCAB } as PhiConfig;
  }

  get failure(): Error | undefined {
    return this.failedWith;
  }

  /** Fails the engine for good now, outside any forward call (as PhiEngine does when an idle worker dies). */
  breakNow(error: Error): void {
    this.failedWith ??= error;
  }

  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    assert.equal(this.busy, false, "forward calls must not overlap");
    this.busy = true;
    try {
      this.calls.push(items.map((i) => ({ ...i, tokens: [...i.tokens] })));
      if (this.failedWith) throw new Error(`engine failed earlier: ${this.failedWith.message}`, { cause: this.failedWith });
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      else await Promise.resolve();
      if (this.breakNext) {
        this.failedWith = this.breakNext;
        this.breakNext = undefined;
        throw this.failedWith;
      }
      if (this.failNext) {
        const err = this.failNext;
        this.failNext = undefined;
        throw err;
      }
      const slotsSeen = new Set<number>();
      return items.map((item) => {
        assert.ok(!slotsSeen.has(item.slot), `slot ${item.slot} twice in one batch`);
        slotsSeen.add(item.slot);
        assert.ok(item.tokens.length > 0, "empty item");
        const cache = this.cache[item.slot];
        assert.ok(item.startPos <= cache.length, `slot ${item.slot}: startPos ${item.startPos} leaves a gap after ${cache.length} cached tokens`);
        assert.ok(item.startPos + item.tokens.length <= this.contextLength, "past the context");
        cache.length = item.startPos;
        const rows: Float32Array[] = [];
        for (const t of item.tokens) {
          cache.push(t);
          if (item.allLogits) rows.push(logitsFor(cache));
        }
        if (!item.allLogits) return logitsFor(cache);
        const out = new Float32Array(rows.length * FAKE_VOCAB);
        rows.forEach((r, i) => out.set(r, i * FAKE_VOCAB));
        return out;
      });
    } finally {
      this.busy = false;
    }
  }

  async dispose(): Promise<void> {}
}

/**
 * A tokenizer for the fake vocabulary: token i is the letter 'a' + i (EOS is "<eos>"). encode maps each
 * character to one token (its code modulo 26), enough for the server's routes to run on the fake engine.
 */
export const fakeTokenizer = {
  size: FAKE_VOCAB,
  eosId: FAKE_EOS,
  tokenText(id: number): string {
    return id === FAKE_EOS ? "<eos>" : String.fromCharCode(97 + (id % 26)) + (id >= 26 ? "'" : "");
  },
  tokenBytes(id: number): Uint8Array {
    return new TextEncoder().encode(fakeTokenizer.tokenText(id));
  },
  decode(ids: readonly number[]): string {
    return ids.map((id) => fakeTokenizer.tokenText(id)).join("");
  },
  encode(text: string): number[] {
    return [...text].map((c) => c.charCodeAt(0) % 26);
  },
};

/** The fake engine and tokenizer as a loaded model, to serve with startServer (dispose does nothing). */
export function fakeLoadedModel(engine: FakeEngine): LoadedModel {
  const model = { engine, tokenizer: fakeTokenizer, config: engine.config, source: "fake", name: "fake", loadMs: 0, notices: [], dispose: async () => {} };
  return model as unknown as LoadedModel; // fakeTokenizer has what the server uses of Phi2Tokenizer
}
