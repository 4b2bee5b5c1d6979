// Errors in OpenAI's wire shape: {"error": {"message", "type", "param", "code"}} with the HTTP status an
// OpenAI client expects, so `openai` npm raises BadRequestError, AuthenticationError, NotFoundError, ...

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: a request field is missing, of the wrong type or out of range. `param` names it ("messages[1].content"). */
export function invalidParam(param: string, message: string): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, "invalid_value");
}

export function invalidJson(detail: string): ApiError {
  return new ApiError(400, `The request body is not valid JSON: ${detail}`, "invalid_request_error", null, "invalid_json");
}

export function missingApiKey(): ApiError {
  return new ApiError(
    401,
    "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.",
    "invalid_request_error",
    null,
    "invalid_api_key",
  );
}

export function wrongApiKey(): ApiError {
  return new ApiError(401, "Incorrect API key provided.", "invalid_request_error", null, "invalid_api_key");
}

export function modelNotFound(model: string, served: string): ApiError {
  return new ApiError(
    404,
    `The model '${model}' does not exist. This server serves '${served}'.`,
    "invalid_request_error",
    "model",
    "model_not_found",
  );
}

export function routeNotFound(method: string, url: string): ApiError {
  return new ApiError(404, `Unknown route: ${method} ${url}`, "invalid_request_error", null, "not_found");
}

export function bodyTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    413,
    `The request body is larger than the server's limit of ${limitBytes} bytes.`,
    "invalid_request_error",
    null,
    "request_too_large",
  );
}

export function queueFull(queueSize: number): ApiError {
  return new ApiError(
    429,
    `The server is busy: all slots are in use and the queue of ${queueSize} waiting sequences is full. Retry later.`,
    "rate_limit_error",
    null,
    "queue_full",
    { "retry-after": "1" },
  );
}

export function contextExceeded(promptTokens: number, maxTokens: number, contextLength: number, param: string): ApiError {
  return new ApiError(
    400,
    `This model's maximum context length is ${contextLength} tokens. However, you requested ` +
      `${promptTokens + maxTokens} tokens (${promptTokens} in the prompt, ${maxTokens} for the completion). ` +
      `Please reduce the prompt or ${param}.`,
    "invalid_request_error",
    param,
    "context_length_exceeded",
  );
}

export function modelLoading(): ApiError {
  return new ApiError(503, "The model is still loading. Retry shortly.", "server_error", null, "model_loading", {
    "retry-after": "1",
  });
}

export function shuttingDown(): ApiError {
  return new ApiError(503, "The server is shutting down.", "server_error", null, "shutting_down");
}

/**
 * Sent with failures that last until the server is restarted. openai-node (and other Stainless clients)
 * retry 429 and every status >= 500 unless the response says `x-should-retry: false`.
 */
const DO_NOT_RETRY = { "x-should-retry": "false" };

/**
 * 503 for good: the engine failed (a worker trapped or died) and refuses every forward pass, so the
 * server cannot generate until it is restarted. No Retry-After, and x-should-retry: false: retrying this
 * process will not help.
 */
export function engineFailed(cause: Error): ApiError {
  return new ApiError(503, `engine failed: ${cause.message}`, "server_error", null, "engine_failed", DO_NOT_RETRY);
}

/** 500 for good: the model failed to load; nothing will change until the server is restarted. */
export function modelLoadFailed(cause: Error): ApiError {
  return new ApiError(500, `The model failed to load: ${cause.message}`, "server_error", null, "model_load_failed", DO_NOT_RETRY);
}

export function requestTimedOut(seconds: number): ApiError {
  return new ApiError(
    503,
    `The request waited longer than the server's timeout of ${seconds} s for a free slot.`,
    "server_error",
    null,
    "timeout",
    { "retry-after": "1" },
  );
}

export function internalError(message: string): ApiError {
  return new ApiError(500, message, "server_error", null, "internal_error");
}
