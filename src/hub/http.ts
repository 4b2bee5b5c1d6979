// A tiny HTTP client over node:http/https (no fetch): downloads need raw bytes (no transparent
// decompression, so Content-Length means file bytes), manual redirects (the Authorization header must
// not follow an LFS redirect to the CDN) and an idle timeout that also covers a stalled body.
import http from "node:http";
import https from "node:https";
import { HubError } from "./errors.js";
import { proxyAgent, type ProxySettings } from "./proxy.js";

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body stream; consume it or call `discard()`. */
  body: http.IncomingMessage;
  url: string;
  discard(): void;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Proxy variables of the environment (HubSettings.proxy): the request goes through the proxy they name. */
  proxy?: ProxySettings;
  /** Idle time (no bytes either way) before the request fails with a network error. */
  timeoutMs?: number;
}

export const USER_AGENT = "phi2/0.1 (node; hub-client)";

/** One request, no redirects followed. Rejects only on network errors; any status resolves. */
export function httpRequest(method: "GET" | "HEAD", url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  const headers = { "user-agent": USER_AGENT, "accept-encoding": "identity", ...options.headers };
  return new Promise((resolve, reject) => {
    const agent = options.proxy ? proxyAgent(url, options.proxy) : undefined;
    const req = transport.request(target, { method, headers, ...(agent ? { agent } : {}) }, (res) => {
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: res,
        url,
        discard: () => {
          res.resume();
          res.on("error", () => {});
        },
      });
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => {
      req.destroy(Object.assign(new Error(`no data for ${options.timeoutMs ?? 30_000} ms`), { code: "ETIMEDOUT" }));
    });
    req.on("error", (err) => reject(networkError(url, err)));
    req.end();
  });
}

/** OpenSSL's verdicts for a certificate chain that ends in a CA this process does not trust. */
const UNTRUSTED_CERT_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_UNTRUSTED",
]);

export function networkError(url: string, err: unknown): HubError {
  if (err instanceof HubError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` ${e.message}` : ""}` : String(e.message ?? err);
  // Node trusts only its own CA bundle, not the system's: behind a TLS-inspecting proxy or with a
  // private mirror the user has to name the CA, and the bare OpenSSL code does not say how.
  const untrusted = e.code !== undefined && UNTRUSTED_CERT_CODES.has(e.code);
  const hint = untrusted
    ? " (the server's certificate is not signed by a CA that Node trusts; if a proxy or mirror uses its own CA, set NODE_EXTRA_CA_CERTS to that CA's PEM file)"
    : "";
  return new HubError(`cannot reach ${url}: ${reason}${hint}`, "network", undefined, { permanent: untrusted });
}

/** Single value of a header (first one if repeated), or undefined. */
export function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Read a (small) body fully as text. */
export async function readText(res: HttpResponse, limitBytes = 64 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      res.body.destroy();
      throw new HubError(`${res.url}: response larger than ${limitBytes} bytes`, "http", res.status);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statuses worth another try: rate limiting and server-side hiccups. */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/**
 * Run `attempt` until it succeeds or fails `tries` times in a row without progress, waiting baseDelayMs,
 * 2x, 4x... between tries, while it fails with a network error (HubError kind "network"). Other errors,
 * and permanent network ones (an untrusted certificate), are thrown at once.
 */
export async function withRetries<T>(
  tries: number, baseDelayMs: number, attempt: (n: number) => Promise<T>, progressed?: () => boolean,
): Promise<T> {
  // `tries` counts failures in a row: an attempt that made progress (bytes of a download arrived)
  // starts the count and the backoff again, as huggingface_hub's http_get does, so a long download on a
  // flaky link is not given up after a fixed number of cuts.
  let failures = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof HubError) || err.kind !== "network" || err.permanent) throw err;
      failures = progressed?.() ? 1 : failures + 1;
      if (failures >= tries) throw err;
      await sleep(Math.min(baseDelayMs * 2 ** (failures - 1), 10_000));
    }
  }
}
