// Log-probabilities of prompt tokens, for /v1/completions with echo + logprobs (the "score this text"
// use). Generated tokens get theirs from the sampler; prompt tokens are never sampled, so we compute
// them here from the logits the engine returns for every prompt position.
import type { TokenLogprob } from "../index.js";
import type { TokenRecord, TokenTexts } from "./responses.js";

/**
 * log softmax of `row` over the real vocabulary (ids < vocabSize; padding rows of lm_head excluded),
 * returning the logprob of `chosen` and the `k` most likely ids.
 */
export function rowLogprobs(row: Float32Array, vocabSize: number, chosen: number, k: number, texts: TokenTexts): TokenRecord {
  let max = -Infinity;
  for (let i = 0; i < vocabSize; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < vocabSize; i++) sum += Math.exp(row[i] - max);
  const logZ = max + Math.log(sum);
  const top: TokenLogprob[] = [];
  if (k > 0) {
    // Partial selection: keep the k best in a small sorted array (k <= 20).
    const ids: number[] = [];
    for (let i = 0; i < vocabSize; i++) {
      if (ids.length === k && row[i] <= row[ids[k - 1]]) continue;
      let at = ids.length;
      while (at > 0 && row[ids[at - 1]] < row[i]) at--;
      ids.splice(at, 0, i);
      if (ids.length > k) ids.pop();
    }
    for (const id of ids) top.push({ id, text: texts.tokenText(id), logprob: row[id] - logZ });
  }
  return { id: chosen, logprob: row[chosen] - logZ, top };
}

/**
 * Records for prompt tokens first+1 .. first+count from the (count, vocab) logits after prompt tokens
 * first .. first+count-1; the logits after the last prompt token predict the first generated token and
 * are skipped. The caller adds the first prompt token itself (logprob null: nothing predicts it).
 */
export function promptRecords(
  logits: Float32Array,
  first: number,
  count: number,
  promptIds: readonly number[],
  rowSize: number,
  vocabSize: number,
  k: number,
  texts: TokenTexts,
): TokenRecord[] {
  const out: TokenRecord[] = [];
  for (let r = 0; r < count; r++) {
    const next = first + r + 1;
    if (next >= promptIds.length) break;
    out.push(rowLogprobs(logits.subarray(r * rowSize, (r + 1) * rowSize), vocabSize, promptIds[next], k, texts));
  }
  return out;
}
