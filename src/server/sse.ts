// Server-sent events as OpenAI streams them: `data: {json}\n\n` per chunk, `data: [DONE]\n\n` at the end,
// and an `data: {"error": {...}}` event when a stream must end early (the openai client raises it).
import type { FastifyReply } from "fastify";
import type { ApiError } from "./errors.js";

export class SseStream {
  private ended = false;

  constructor(private readonly reply: FastifyReply) {
    // From here on we write the response ourselves; fastify's serialisation and hooks step aside.
    reply.hijack();
    // The headers set on the reply so far (CORS, x-request-id) go out too: hijack() skips fastify's sending.
    reply.raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string | string[]>),
      "access-control-allow-origin": "*",
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
  }

  /** False once the client has gone; writes are then dropped. */
  get writable(): boolean {
    return !this.ended && !this.reply.raw.destroyed && this.reply.raw.writable;
  }

  send(data: unknown): void {
    if (this.writable) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  error(err: ApiError): void {
    this.send(err.body());
  }

  done(): void {
    if (!this.writable) return;
    this.reply.raw.end("data: [DONE]\n\n");
    this.ended = true;
  }
}
