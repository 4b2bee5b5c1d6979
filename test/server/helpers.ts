// Shared setup of the server tests: random tiny Phi-2 folders, a loaded model, servers on 127.0.0.1
// with a random port, and raw HTTP helpers for what the openai client hides (status codes, headers,
// SSE bytes).
import { after, before } from "node:test";
import OpenAI from "openai";
import { loadModel, type LoadedModel } from "../../src/index.js";
import { testModel } from "../helpers/test-models.js";
import { startServer, type RunningServer, type ServerOptions } from "../../src/server/server.js";

/**
 * A tiny random Phi-2 folder (generated once, shared by every test process). `peaked`: weights whose
 * next-token choice has a clear winner, so greedy text is decided by the model and not by float rounding
 * (for "same tokens alone or batched" checks); `plain`: the near-uniform default, where sampling with
 * different seeds gives different text.
 */
export function tinyModelDir(kind: "peaked" | "plain" = "plain"): string {
  return testModel({ preset: "tiny", dtype: "f32", seed: kind === "peaked" ? 11 : 7, peaked: kind === "peaked" });
}

/** Loads a tiny model with `slots` KV-cache slots of 256 tokens on one thread (tests run two at a time). */
export function loadTiny(kind: "peaked" | "plain", slots: number, contextLength = 256): Promise<LoadedModel> {
  return loadModel(tinyModelDir(kind), { threads: 1, slots, contextLength });
}

/** A server on 127.0.0.1:random for an already loaded model (the caller disposes the model). */
export function serve(model: LoadedModel | Promise<LoadedModel>, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  return startServer({ host: "127.0.0.1", port: 0, timeoutSeconds: 60, ...options, model });
}

export function openai(server: RunningServer, apiKey = "unused", maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries });
}

/** The fixture of useTinyServer; its fields can be read once the file's before() hook has run (in tests). */
export interface TinyServer {
  readonly model: LoadedModel;
  readonly server: RunningServer;
  /** An openai client for the server, with the server's apiKey when it has one. */
  readonly client: OpenAI;
}

/**
 * One server for a whole test file: registers before() (load a tiny model with `slots` slots, serve it
 * with `options`, make a client) and after() (shut the server down, dispose the model). Call it at the
 * top level of the file.
 */
export function useTinyServer(kind: "peaked" | "plain", slots: number, options: Partial<ServerOptions> = {}): TinyServer {
  let model: LoadedModel | undefined;
  let server: RunningServer | undefined;
  let client: OpenAI | undefined;
  before(async () => {
    model = await loadTiny(kind, slots);
    server = await serve(model, options);
    client = openai(server, options.apiKey);
  });
  after(async () => {
    try {
      await server?.shutdown(1000);
    } finally {
      await model?.dispose();
    }
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("useTinyServer: the fixture is set up in before(); read it inside tests");
    return v;
  };
  return {
    get model() { return ready(model); },
    get server() { return ready(server); },
    get client() { return ready(client); },
  };
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A request with fetch, for exact status codes and bodies. */
export async function http(
  server: RunningServer,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const res = await fetch(server.url + path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Parses a Prometheus text page into "name{labels}" -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

export async function metrics(server: RunningServer, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await http(server, "GET", "/metrics", undefined, headers);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(res.text);
}

/** Waits until `check` holds (polling), failing after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
