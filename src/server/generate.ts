// Drives one generation request through the scheduler and writes the answer: one JSON object, or a stream
// of SSE chunks. The two endpoints differ only in how a choice is shaped (EndpointFormat).
import type { FastifyReply } from "fastify";
import type { ServerContext, ServedModel } from "./context.js";
import { ApiError, internalError, requestTimedOut } from "./errors.js";
import { ChoiceState, openAiFinishReason, unixSeconds, usageOf, type TokenRecord } from "./responses.js";
import { RequestRun, type ChoiceEvent } from "./run.js";
import type { SequenceRequest } from "./scheduler.js";
import { SseStream } from "./sse.js";

export interface EndpointFormat {
  /** `object` of the whole response and of each stream chunk. */
  object: string;
  chunkObject: string;
  /** A chunk choice sent before any token (chat: the assistant role). */
  openingChoice?(choice: ChoiceState): object;
  onPromptLogits?(choice: ChoiceState, event: Extract<ChoiceEvent, { kind: "promptLogits" }>): void;
  /** The choice part of a stream chunk for new text/tokens; undefined = nothing worth sending. */
  streamChoice(choice: ChoiceState, text: string, records: TokenRecord[], finishReason: string | null): object | undefined;
  /** The choice in the non-streamed response. */
  finalChoice(choice: ChoiceState): object;
}

export interface GenerationJob {
  id: string;
  specs: Omit<SequenceRequest, "onEvent">[];
  choices: ChoiceState[];
  /** usage.prompt_tokens: every distinct prompt once (n choices of one prompt count it once, as OpenAI). */
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  arrivedAt: number;
  endpoint: string;
}

export async function runGeneration(
  ctx: ServerContext,
  model: ServedModel,
  reply: FastifyReply,
  job: GenerationJob,
  format: EndpointFormat,
): Promise<void> {
  void reply.header("x-request-id", job.id);
  const run = new RequestRun(job.specs, model.scheduler, job.arrivedAt);
  run.start(reply.raw, ctx.settings.timeoutMs); // 429 / 503 are thrown here, before any byte is sent
  const created = unixSeconds();
  const envelope = (object: string, choices: object[]) => ({
    id: job.id,
    object,
    created,
    model: model.id,
    system_fingerprint: "phi2",
    choices,
  });
  const sse = job.stream ? new SseStream(reply) : undefined;
  const usageField = job.includeUsage ? { usage: null } : {};
  const sendChunk = (choice: object) => sse?.send({ ...envelope(format.chunkObject, [choice]), ...usageField });
  if (sse && format.openingChoice) for (const c of job.choices) sendChunk(format.openingChoice(c));

  let failure: ApiError | undefined;
  for await (const event of run.events()) {
    const choice = job.choices[event.choice];
    switch (event.kind) {
      case "promptLogits":
        format.onPromptLogits?.(choice, event);
        break;
      case "step": {
        const added = choice.add(event.result.piece);
        const part = sse && format.streamChoice(choice, added.text, added.records, null);
        if (part) sendChunk(part);
        break;
      }
      case "finish": {
        const added = choice.add(event.result.piece, event.result.finishReason ?? "abort");
        if (!event.started && run.cause === "timeout") choice.neverStarted = true;
        choice.finishReason = choice.promptOnly ? "length" : openAiFinishReason(event.result.finishReason ?? "abort");
        if (sse && !choice.neverStarted) {
          const part = format.streamChoice(choice, added.text, added.records, choice.finishReason);
          if (part) sendChunk(part);
        }
        break;
      }
      case "error":
        // The scheduler reports an engine that failed for good as a 503 ApiError; anything else is a 500.
        failure ??= event.error instanceof ApiError ? event.error : internalError(`Generation failed: ${event.error.message}`);
        break;
    }
  }
  const timedOutInQueue = job.choices.some((c) => c.neverStarted);
  if (timedOutInQueue) failure ??= requestTimedOut(ctx.settings.timeoutMs / 1000);
  const completionTokens = job.choices.reduce((sum, c) => sum + c.completionTokens, 0);
  // A sequence cut short by the timeout or by shutdown ends with "length": the server's budget ran out.
  const usage = usageOf(job.promptTokens, completionTokens);
  ctx.metrics.requestDuration.observe((performance.now() - job.arrivedAt) / 1000);
  if (run.clientGone) {
    // Nobody to answer: take the reply out of fastify's hands so it does not try to send one.
    if (!sse) reply.hijack();
    return;
  }

  if (sse) {
    if (failure) sse.error(failure);
    else if (job.includeUsage) sse.send({ ...envelope(format.chunkObject, []), usage });
    sse.done();
    return;
  }
  if (failure) throw failure;
  await reply.send({ ...envelope(format.object, job.choices.map((c) => format.finalChoice(c))), usage });
}
