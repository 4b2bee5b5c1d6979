// Corporate proxies: Node's http does not read HTTPS_PROXY / HTTP_PROXY / NO_PROXY (curl, Python's
// requests and huggingface_hub do), so without this a user behind a proxy could not download at all.
// The variables are read as curl reads them; the tunnelling itself is https-proxy-agent's (CONNECT) and
// http-proxy-agent's (absolute-form requests).
import type { Agent } from "node:http";
import { HttpProxyAgent } from "http-proxy-agent";
import { HttpsProxyAgent } from "https-proxy-agent";

export interface ProxySettings {
  /** Proxy for https:// URLs (HTTPS_PROXY, else ALL_PROXY). */
  https?: string;
  /** Proxy for http:// URLs (HTTP_PROXY, else ALL_PROXY). */
  http?: string;
  /** NO_PROXY entries: host names, .domain suffixes, host:port, or "*". */
  noProxy: string[];
}

function envVar(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
}

export function proxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  const all = envVar(env, "all_proxy");
  return {
    https: envVar(env, "https_proxy") ?? all,
    http: envVar(env, "http_proxy") ?? all,
    noProxy: (envVar(env, "no_proxy") ?? "").split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter((e) => e !== ""),
  };
}

/** A loopback host is always reached directly: a proxy elsewhere cannot reach this machine's loopback. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || /^127\./.test(host) || host === "[::1]" || host === "::1";
}

/** The proxy URL to use for `url`, or undefined to connect directly. */
export function proxyForUrl(url: string, settings: ProxySettings): string | undefined {
  const target = new URL(url);
  const proxy = target.protocol === "https:" ? settings.https : settings.http;
  if (!proxy) return undefined;
  const host = target.hostname.toLowerCase();
  if (isLoopback(host)) return undefined;
  const port = target.port || (target.protocol === "https:" ? "443" : "80");
  for (const entry of settings.noProxy) {
    if (entry === "*") return undefined;
    const [name, entryPort] = entry.split(/:(?=\d+$)/) as [string, string | undefined];
    if (entryPort !== undefined && entryPort !== port) continue;
    const domain = name.replace(/^\*?\./, "");
    if (host === domain || host.endsWith(`.${domain}`)) return undefined;
  }
  return proxy;
}

const agents = new Map<string, Agent>();

/** The agent that sends a request for `url` through its proxy, or undefined for a direct connection. */
export function proxyAgent(url: string, settings: ProxySettings): Agent | undefined {
  const proxy = proxyForUrl(url, settings);
  if (!proxy) return undefined;
  const https = new URL(url).protocol === "https:";
  const key = `${https ? "https" : "http"} ${proxy}`;
  let agent = agents.get(key);
  if (!agent) {
    let proxyUrl: URL;
    try {
      proxyUrl = new URL(proxy.includes("://") ? proxy : `http://${proxy}`);
    } catch {
      throw new Error(`proxy "${proxy}" (from ${https ? "HTTPS_PROXY" : "HTTP_PROXY"} or ALL_PROXY) is not a URL`);
    }
    agent = https ? new HttpsProxyAgent(proxyUrl) : new HttpProxyAgent(proxyUrl);
    agents.set(key, agent);
  }
  return agent;
}
