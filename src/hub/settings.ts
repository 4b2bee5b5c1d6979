// Where the hub is, where the cache is, which token to send: resolved from options first, then the
// same environment variables huggingface_hub reads (constants.py), so both tools share one cache.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { proxySettings, type ProxySettings } from "./proxy.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export interface HubSettingsInput {
  /** Hub base URL (`--hub-url`); default HF_ENDPOINT or https://huggingface.co. */
  hubUrl?: string;
  /** Access token; default HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the file `huggingface-cli login` writes. */
  token?: string;
  /** Hub cache folder; default HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Use the cache only; default HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE. */
  offline?: boolean;
  /** Environment to read (default process.env); tests pass their own. */
  env?: NodeJS.ProcessEnv;
}

export interface HubSettings {
  endpoint: string;
  token?: string;
  cacheDir: string;
  offline: boolean;
  /** HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY of the environment. */
  proxy: ProxySettings;
}

/** huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case. */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value.trim().toUpperCase());
}

function hfHome(env: NodeJS.ProcessEnv): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  const xdgCache = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), ".cache");
  return join(xdgCache, "huggingface");
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE;
  return explicit ? expandHome(explicit) : join(hfHome(env), "hub");
}

function tokenFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  // `||` as constants.py's `or`: an empty HF_TOKEN="" falls through to HUGGING_FACE_HUB_TOKEN.
  const fromVar = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromVar && fromVar.trim()) return fromVar.trim();
  const tokenPath = env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : join(hfHome(env), "token");
  if (existsSync(tokenPath)) {
    const saved = readFileSync(tokenPath, "utf8").trim();
    if (saved) return saved;
  }
  return undefined;
}

export function hubSettings(input: HubSettingsInput = {}): HubSettings {
  const env = input.env ?? process.env;
  const endpoint = (input.hubUrl ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(endpoint)) {
    throw new Error(`hub URL must start with http:// or https:// (got "${endpoint}" from ${input.hubUrl ? "--hub-url" : "HF_ENDPOINT"})`);
  }
  return {
    endpoint,
    token: input.token ?? tokenFromEnv(env),
    cacheDir: input.cacheDir ?? hubCacheDir(env),
    // constants.py: is_true(HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE), so a set HF_HUB_OFFLINE wins.
    offline: input.offline ?? envFlag(env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE),
    proxy: proxySettings(env),
  };
}
