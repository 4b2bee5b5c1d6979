// POST /v1/chat/completions: messages rendered into Phi-2's chat format ("Alice: ...\nBob:"), generation
// stops at the next user turn; answers shaped as chat.completion / chat.completion.chunk.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerContext, ServedModel } from "./context.js";
import { contextExceeded } from "./errors.js";
import { stopList } from "../generation/stops.js";
import { runGeneration, type EndpointFormat } from "./generate.js";
import { parseChatRequest, type ChatRequest } from "./openai.js";
import { ChoiceState, chatLogprobs, newId } from "./responses.js";

function chatFormat(model: ServedModel, req: ChatRequest): EndpointFormat {
  const texts = model.tokenizer;
  return {
    object: "chat.completion",
    chunkObject: "chat.completion.chunk",
    openingChoice(choice) {
      return { index: choice.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null };
    },
    streamChoice(choice, text, records, finishReason) {
      if (text === "" && records.length === 0 && finishReason === null) return undefined;
      return {
        index: choice.index,
        delta: text === "" ? {} : { content: text },
        logprobs: req.logprobs && records.length > 0 ? chatLogprobs(records, texts) : null,
        finish_reason: finishReason,
      };
    },
    finalChoice(choice) {
      return {
        index: choice.index,
        message: { role: "assistant", content: choice.text, refusal: null },
        logprobs: req.logprobs ? chatLogprobs(choice.records, texts) : null,
        finish_reason: choice.finishReason,
      };
    },
  };
}

export async function handleChat(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const arrivedAt = performance.now();
  const model = ctx.ready();
  const req = parseChatRequest(request.body, { vocabSize: model.tokenizer.size, maxSequences: ctx.settings.maxSequencesPerRequest });
  ctx.checkModelName(model, req.model);
  const names = {
    user: req.userName ?? ctx.settings.chatNames.user,
    assistant: req.assistantName ?? ctx.settings.chatNames.assistant,
  };
  const rendered = model.renderChat(req.messages, names);
  const promptIds = model.tokenizer.encode(rendered.prompt);
  // Without max_tokens a reply may run to the end of the context, as OpenAI's chat API does.
  const maxTokens = req.maxTokens ?? model.contextLength - promptIds.length;
  if (maxTokens < 1 || promptIds.length + maxTokens > model.contextLength) {
    throw contextExceeded(promptIds.length, Math.max(1, maxTokens), model.contextLength, req.maxTokensParam);
  }
  const stop = [...rendered.stop, ...stopList(req.options.stop)];
  const choices: ChoiceState[] = [];
  const specs = [];
  for (let j = 0; j < req.n; j++) {
    choices.push(new ChoiceState(j, promptIds.length, model.tokenizer, req.options.stopOnEos ?? true));
    const seed = req.options.seed === undefined ? undefined : req.options.seed + j;
    specs.push({ promptIds, options: { ...req.options, stop, maxTokens, seed } });
  }
  await runGeneration(
    ctx,
    model,
    reply,
    {
      id: newId("chatcmpl"),
      specs,
      choices,
      promptTokens: promptIds.length,
      stream: req.stream,
      includeUsage: req.includeUsage,
      arrivedAt,
      endpoint: "/v1/chat/completions",
    },
    chatFormat(model, req),
  );
}
