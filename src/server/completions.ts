// POST /v1/completions: prompt(s) in, text_completion out (OpenAI's legacy completions API).
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerContext, ServedModel } from "./context.js";
import { contextExceeded } from "./errors.js";
import { runGeneration, type EndpointFormat } from "./generate.js";
import { promptRecords } from "./logprobs.js";
import { parseCompletionRequest, type CompletionRequest } from "./openai.js";
import { ChoiceState, completionLogprobs, newId, tokenOffsets, type TokenRecord } from "./responses.js";

/** OpenAI's default max_tokens for /v1/completions. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/** Per-choice echo state: the prompt text and its token records (with where each token starts in it), not yet sent. */
interface EchoState {
  promptText: string;
  promptRecords: TokenRecord[];
  promptOffsets: number[];
  echoPending: boolean;
}

/**
 * The records a choice's logprobs list, with text_offset into the returned text: the echoed prompt's
 * (when `withPrompt`), then the generated tokens', whose offsets count from the end of an echoed prompt.
 */
function withOffsets(state: EchoState, generated: TokenRecord[], withPrompt: boolean, echo: boolean): TokenRecord[] {
  const out = withPrompt
    ? state.promptRecords.map((r, i) => ({ ...r, offset: Math.min(state.promptOffsets[i] ?? 0, state.promptText.length) }))
    : [];
  const shift = echo ? state.promptText.length : 0;
  for (const r of generated) out.push({ ...r, offset: (r.offset ?? 0) + shift });
  return out;
}

function completionFormat(model: ServedModel, req: CompletionRequest, echoes: EchoState[], prompts: number[][], promptOf: number[]): EndpointFormat {
  const texts = model.tokenizer;
  const withLogprobs = req.logprobs !== null;
  return {
    object: "text_completion",
    chunkObject: "text_completion",
    onPromptLogits(choice, event) {
      const prompt = prompts[promptOf[choice.index]];
      const state = echoes[choice.index];
      state.promptRecords.push(
        ...promptRecords(event.logits, event.first, event.count, prompt, model.logitsRowSize, texts.size, req.logprobs ?? 0, texts),
      );
    },
    streamChoice(choice, text, records, finishReason) {
      const state = echoes[choice.index];
      records = withOffsets(state, records, state.echoPending, req.echo);
      if (state.echoPending) {
        text = state.promptText + text;
        state.echoPending = false;
      }
      if (text === "" && records.length === 0 && finishReason === null) return undefined;
      const logprobs = withLogprobs ? completionLogprobs(records, texts) : null;
      return { index: choice.index, text, logprobs, finish_reason: finishReason };
    },
    finalChoice(choice) {
      const state = echoes[choice.index];
      const records = withOffsets(state, choice.records, true, req.echo);
      return {
        index: choice.index,
        text: (req.echo ? state.promptText : "") + choice.text,
        logprobs: withLogprobs ? completionLogprobs(records, texts) : null,
        finish_reason: choice.finishReason,
      };
    },
  };
}

export async function handleCompletion(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const arrivedAt = performance.now();
  const model = ctx.ready();
  const req = parseCompletionRequest(request.body, { vocabSize: model.tokenizer.size, maxSequences: ctx.settings.maxSequencesPerRequest });
  ctx.checkModelName(model, req.model);
  const tokenizer = model.tokenizer;
  // An empty prompt starts from <|endoftext|>, as GPT-2 style models generate unconditionally.
  const prompts = req.prompts.map((p) => {
    const ids = typeof p === "string" ? tokenizer.encode(p) : p;
    return ids.length > 0 ? ids : [tokenizer.eosId];
  });
  const maxTokens = req.maxTokens ?? DEFAULT_COMPLETION_MAX_TOKENS;
  for (const ids of prompts) {
    if (ids.length + maxTokens > model.contextLength) {
      throw contextExceeded(ids.length, maxTokens, model.contextLength, "max_tokens");
    }
  }
  const echoLogprobs = req.echo && req.logprobs !== null;
  const choices: ChoiceState[] = [];
  const echoes: EchoState[] = [];
  const promptOf: number[] = [];
  const specs = [];
  for (let p = 0; p < prompts.length; p++) {
    const promptText = typeof req.prompts[p] === "string" ? (req.prompts[p] as string) : tokenizer.decode(prompts[p]);
    const promptOffsets = echoLogprobs ? tokenOffsets(prompts[p], tokenizer) : [];
    for (let j = 0; j < req.n; j++) {
      const index = choices.length;
      choices.push(new ChoiceState(index, prompts[p].length, tokenizer, req.options.stopOnEos ?? true, maxTokens === 0));
      promptOf.push(p);
      // The first prompt token has no logprob: nothing before it predicts it.
      const first: TokenRecord[] = echoLogprobs ? [{ id: prompts[p][0], logprob: null, top: [] }] : [];
      echoes.push({ promptText, promptRecords: first, promptOffsets, echoPending: req.echo });
      // n choices of one request differ: each gets its own seed derived from the request's.
      const seed = req.options.seed === undefined ? undefined : req.options.seed + j;
      specs.push({ promptIds: prompts[p], options: { ...req.options, maxTokens: Math.max(1, maxTokens), seed }, promptLogits: echoLogprobs });
    }
  }
  await runGeneration(
    ctx,
    model,
    reply,
    {
      id: newId("cmpl"),
      specs,
      choices,
      promptTokens: prompts.reduce((sum, ids) => sum + ids.length, 0),
      stream: req.stream,
      includeUsage: req.includeUsage,
      arrivedAt,
      endpoint: "/v1/completions",
    },
    completionFormat(model, req, echoes, prompts, promptOf),
  );
}
