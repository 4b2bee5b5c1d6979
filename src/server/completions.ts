// POST /v1/completions: prompt(s) in, text_completion out (OpenAI's legacy completions API).
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerContext, ServedModel } from "./context.js";
import { contextExceeded } from "./errors.js";
import { runGeneration, type EndpointFormat } from "./generate.js";
import { promptRecords } from "./logprobs.js";
import { parseCompletionRequest, type CompletionRequest } from "./openai.js";
import { ChoiceState, completionLogprobs, newId, textLength, type TokenRecord } from "./responses.js";

/** OpenAI's default max_tokens for /v1/completions. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/** Per-choice echo state: the prompt text (and its token records) not yet sent, and the text offset so far. */
interface EchoState {
  promptText: string;
  promptRecords: TokenRecord[];
  echoPending: boolean;
  offset: number;
}

function completionFormat(model: ServedModel, req: CompletionRequest, echoes: EchoState[], prompts: number[][], promptOf: number[]): EndpointFormat {
  const texts = model.tokenizer;
  const withLogprobs = req.logprobs !== null;
  const withTop = (req.logprobs ?? 0) > 0;
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
      if (state.echoPending) {
        text = state.promptText + text;
        records = [...state.promptRecords, ...records];
        state.echoPending = false;
      }
      if (text === "" && records.length === 0 && finishReason === null) return undefined;
      const logprobs = withLogprobs ? completionLogprobs(records, texts, state.offset, withTop) : null;
      state.offset += textLength(records, texts);
      return { index: choice.index, text, logprobs, finish_reason: finishReason };
    },
    finalChoice(choice) {
      const state = echoes[choice.index];
      const records = [...state.promptRecords, ...choice.records];
      return {
        index: choice.index,
        text: (req.echo ? state.promptText : "") + choice.text,
        logprobs: withLogprobs ? completionLogprobs(records, texts, 0, withTop) : null,
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
    for (let j = 0; j < req.n; j++) {
      const index = choices.length;
      choices.push(new ChoiceState(index, prompts[p].length, tokenizer, req.options.stopOnEos ?? true));
      promptOf.push(p);
      // The first prompt token has no logprob: nothing before it predicts it.
      const first: TokenRecord[] = echoLogprobs ? [{ id: prompts[p][0], logprob: null, top: [] }] : [];
      echoes.push({ promptText, promptRecords: first, echoPending: req.echo, offset: 0 });
      // n choices of one request differ: each gets its own seed derived from the request's.
      const seed = req.options.seed === undefined ? undefined : req.options.seed + j;
      specs.push({ promptIds: prompts[p], options: { ...req.options, maxTokens, seed }, promptLogits: echoLogprobs });
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
