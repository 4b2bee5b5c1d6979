// Picks the next token from the model's logits. The order follows llama.cpp's default sampler chain
// (common_params_sampling: ... top_k, typical_p, top_p, min_p, xtc, temperature, dist):
//   logit bias -> penalties (repetition, presence, frequency over the last penaltyLastN tokens)
//   -> temperature 0: argmax
//   -> top-k -> top-p -> min-p, all on the probabilities at temperature 1
//   -> temperature: the survivors weighted by exp(logit / temperature) -> draw with a seeded PRNG.
// So temperature reshapes the tokens the cuts kept and never changes which ones they keep.
// Ids >= vocabLimit (phi-2's 905 padding rows of lm_head, 50295..51199) are never candidates.
import type { SamplingOptions } from "./types.js";
import { Rng } from "./rng.js";

export interface SamplerLogprobOptions {
  /** Report the chosen token's logprob. */
  logprobs?: boolean;
  /** Report this many most likely tokens with their logprobs (0 = none). */
  topLogprobs?: number;
}

export interface SampledToken {
  id: number;
  /** log-softmax at temperature 1 of the biased and penalised logits, as OpenAI reports it. */
  logprob?: number;
  /** The most likely alternatives, most likely first. */
  top?: { id: number; logprob: number }[];
}

const DEFAULT_PENALTY_LAST_N = 64;

function checkNumber(name: string, value: number | undefined, min: number, max = Infinity, integer = false): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${String(value)}`);
  }
}

export class Sampler {
  readonly temperature: number;
  /** The seed in use (drawn at random when options.seed was undefined). */
  readonly seed: number;
  private readonly rng: Rng;
  private readonly vocabLimit: number;
  private readonly bias: [number, number][];
  /** Scratch copy of the logits we modify, (vocabLimit). */
  private work: Float32Array;
  private probs: Float64Array;

  constructor(
    private readonly options: SamplingOptions & SamplerLogprobOptions,
    vocabLimit: number,
  ) {
    if (!Number.isInteger(vocabLimit) || vocabLimit <= 0) throw new RangeError(`vocabLimit must be a positive integer, got ${vocabLimit}`);
    checkNumber("temperature", options.temperature, 0);
    checkNumber("topK", options.topK, 0, Infinity, true);
    checkNumber("topP", options.topP, 0, 1);
    checkNumber("minP", options.minP, 0, 1);
    checkNumber("repetitionPenalty", options.repetitionPenalty, Number.MIN_VALUE);
    checkNumber("presencePenalty", options.presencePenalty, -Infinity);
    checkNumber("frequencyPenalty", options.frequencyPenalty, -Infinity);
    checkNumber("penaltyLastN", options.penaltyLastN, -1, Infinity, true);
    checkNumber("topLogprobs", options.topLogprobs, 0, Infinity, true);
    if (options.seed !== undefined && !Number.isFinite(options.seed)) throw new RangeError(`seed must be a finite number, got ${options.seed}`);
    this.vocabLimit = vocabLimit;
    this.temperature = options.temperature ?? 1;
    this.rng = new Rng(options.seed);
    this.seed = this.rng.seed;
    this.bias = Object.entries(options.logitBias ?? {}).map(([id, b]) => {
      const n = Number(id);
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`logitBias key must be a token id, got ${JSON.stringify(id)}`);
      if (typeof b !== "number" || Number.isNaN(b)) throw new RangeError(`logitBias[${id}] must be a number, got ${String(b)}`);
      return [n, b];
    });
    this.work = new Float32Array(vocabLimit);
    this.probs = new Float64Array(vocabLimit);
  }

  /**
   * Picks a token. `logits` is one row of the model's output (vocab_size floats, at least vocabLimit
   * of them are read); `history` is the tokens already in the context (prompt and generated), which the
   * penalties look at.
   */
  sample(logits: Float32Array, history: readonly number[]): SampledToken {
    const n = Math.min(this.vocabLimit, logits.length);
    const l = this.work.subarray(0, n);
    l.set(logits.subarray(0, n));
    for (const [id, b] of this.bias) if (id < n) l[id] += b;
    this.applyPenalties(l, history);

    const id = this.temperature <= 0 ? greedy(l) : this.draw(l);
    const result: SampledToken = { id };
    if (this.options.logprobs || (this.options.topLogprobs ?? 0) > 0) {
      const lse = logSumExp(l);
      result.logprob = l[id] - lse;
      const k = this.options.topLogprobs ?? 0;
      if (k > 0) result.top = topIndices(l, k).map((i) => ({ id: i, logprob: l[i] - lse }));
    }
    return result;
  }

  /** CTRL-style repetition penalty, then OpenAI presence/frequency penalties, over the last N tokens. */
  private applyPenalties(l: Float32Array, history: readonly number[]): void {
    const rep = this.options.repetitionPenalty ?? 1;
    const presence = this.options.presencePenalty ?? 0;
    const frequency = this.options.frequencyPenalty ?? 0;
    if (rep === 1 && presence === 0 && frequency === 0) return;
    const lastN = this.options.penaltyLastN ?? DEFAULT_PENALTY_LAST_N;
    if (lastN === 0) return;
    const window = lastN < 0 ? history : history.slice(Math.max(0, history.length - lastN));
    const counts = new Map<number, number>();
    for (const t of window) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, count] of counts) {
      if (t < 0 || t >= l.length) continue;
      let v = l[t];
      if (rep !== 1) v = v > 0 ? v / rep : v * rep;
      v -= frequency * count + presence;
      l[t] = v;
    }
  }

  /** top-k, top-p, min-p at temperature 1, then one draw among the survivors at the temperature. */
  private draw(l: Float32Array): number {
    const n = l.length;
    const topK = this.options.topK ?? 0;
    const topP = this.options.topP ?? 1;
    const minP = this.options.minP ?? 0;
    const invT = 1 / this.temperature;
    const best = greedy(l);
    const max = l[best];
    // an infinite logit (a +Infinity bias) outweighs everything, and a temperature so small that its
    // inverse overflows leaves only the best token: both are greedy (exp would give NaN or 0 weights)
    if (max === Infinity || !Number.isFinite(invT)) return best;

    const p = this.probs.subarray(0, n);
    const cuts = topK > 0 || topP < 1 || minP > 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((l[i] - max) * (cuts ? 1 : invT)); // NaN logits count as impossible
      p[i] = e > 0 ? e : 0;
      sum += p[i];
    }
    if (!cuts) return this.pick(p, null, sum);

    let candidates: number[];
    if (topK > 0 && topK < n) {
      candidates = topIndices(p, topK, true);
    } else {
      // Only tokens that can survive get sorted. Without top-k, a token whose probability is at most
      // (1 - topP) / n can never be in the nucleus (the tokens above it already hold at least topP of
      // the mass), and one below minP times the best (whose weight here is exp(0) = 1) is cut by min-p
      // anyway; so a typical distribution sorts a few hundred tokens instead of 50 000.
      const nucleusFloor = topP < 1 ? ((1 - topP) / n) * sum : 0;
      candidates = [];
      for (let i = 0; i < n; i++) if (p[i] > nucleusFloor && p[i] >= minP) candidates.push(i);
      if (candidates.length === 0) candidates = [argmax(l)];
      candidates.sort((a, b) => p[b] - p[a] || a - b);
    }

    if (topK > 0 && candidates.length > topK) candidates.length = topK;
    if (topP < 1) {
      // Without top-k the nucleus is taken over the whole distribution (the floor only skipped tokens
      // that cannot be in it); after top-k, over the k survivors renormalised.
      let total = sum;
      if (topK > 0 && topK < n) {
        total = 0;
        for (const i of candidates) total += p[i];
      }
      let cum = 0;
      let keep = 0;
      while (keep < candidates.length) {
        cum += p[candidates[keep++]];
        if (cum >= topP * total) break;
      }
      candidates.length = keep;
    }
    if (minP > 0) {
      const threshold = minP * p[candidates[0]];
      let keep = 1;
      while (keep < candidates.length && p[candidates[keep]] >= threshold) keep++;
      candidates.length = keep;
    }
    // temperature last: the survivors' weights at it
    let kept = 0;
    for (const i of candidates) {
      if (invT !== 1) {
        const e = Math.exp((l[i] - max) * invT);
        p[i] = e > 0 ? e : 0;
      }
      kept += p[i];
    }
    return this.pick(p, candidates, kept);
  }

  /** Draws from weights p over `ids` (or all ids), whose weights add up to `total`. */
  private pick(p: Float64Array, ids: number[] | null, total: number): number {
    const r = this.rng.next() * total;
    let cum = 0;
    if (ids) {
      for (const i of ids) {
        cum += p[i];
        if (r < cum) return i;
      }
      return ids[ids.length - 1];
    }
    let last = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === 0) continue;
      cum += p[i];
      last = i;
      if (r < cum) return i;
    }
    return last; // rounding: r landed past the accumulated sum
  }
}

/** argmax, refusing logits that leave nothing to choose (all -Infinity or NaN). */
function greedy(l: Float32Array): number {
  const best = argmax(l);
  if (!(l[best]! > -Infinity)) throw new Error("every token is masked: nothing to sample");
  return best;
}

/** Index of the largest value; the lowest index on ties; NaN never wins. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > bestValue) {
      bestValue = values[i];
      best = i;
    }
  }
  return best;
}

function logSumExp(l: Float32Array): number {
  const max = l[argmax(l)];
  let sum = 0;
  for (let i = 0; i < l.length; i++) {
    const e = Math.exp(l[i] - max);
    if (e > 0) sum += e;
  }
  return max + Math.log(sum);
}

/**
 * Indices of the k largest values, largest first, the lower index first on ties; -Infinity and NaN are
 * left out, and so are zeros when the values are weights. k is small (top-k, top logprobs): one scan,
 * inserting into a sorted list.
 */
function topIndices(l: ArrayLike<number>, k: number, weights = false): number[] {
  const top: number[] = [];
  for (let i = 0; i < l.length; i++) {
    const v = l[i];
    if (!(v > -Infinity) || (weights && v === 0)) continue;
    if (top.length === k && v <= l[top[k - 1]]) continue;
    let j = Math.min(top.length, k - 1);
    top[j] = i;
    while (j > 0 && l[top[j - 1]] < v) {
      top[j] = top[j - 1];
      top[j - 1] = i;
      j--;
    }
  }
  return top;
}
