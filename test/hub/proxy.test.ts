// Downloads through a proxy named by HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, NO_PROXY obeyed as curl does.
// The proxy here is a small forwarding HTTP proxy on loopback; the hub is reached under a name that only
// the proxy knows (fakehub.test), so a request that skipped the proxy could not reach it at all.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resolveModel, type HubOptions } from "../../src/hub/resolve.js";
import { HubError } from "../../src/hub/errors.js";
import { proxyForUrl, proxySettings } from "../../src/hub/proxy.js";
import { startFakeHub, tinyRepoFiles, type FakeHub } from "./fake-hub.js";

let hub: FakeHub;
let proxy: http.Server;
let proxyUrl = "";
/** Absolute-form request targets the proxy forwarded. */
const forwarded: string[] = [];

before(async () => {
  hub = await startFakeHub();
  hub.addRepo("acme/tiny-phi", { files: tinyRepoFiles() });
  const hubPort = new URL(hub.url).port;
  proxy = http.createServer((req, res) => {
    forwarded.push(req.url ?? "");
    const target = new URL(req.url ?? "/");
    // fakehub.test is this proxy's name for the hub: the client never resolves it
    const upstream = http.request(
      { host: target.hostname === "fakehub.test" ? "127.0.0.1" : target.hostname, port: target.port || hubPort, path: target.pathname + target.search, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
after(() => {
  hub.close();
  proxy.close();
});

function opts(env: NodeJS.ProcessEnv): HubOptions {
  const cacheDir = mkdtempSync(join(tmpdir(), "phi2-proxy-"));
  return { hubUrl: `http://fakehub.test:${new URL(hub.url).port}`, cacheDir, env, progress: false, log: () => {}, retryDelayMs: 5, timeoutMs: 5000 };
}

test("HTTP_PROXY (any case) carries the hub's requests; the download completes", async () => {
  const before = forwarded.length;
  const path = await resolveModel("acme/tiny-phi", opts({ http_proxy: proxyUrl }));
  assert.ok(existsSync(join(path, "config.json")));
  const seen = forwarded.slice(before);
  assert.ok(seen.some((u) => u.startsWith(`http://fakehub.test:${new URL(hub.url).port}/api/models/acme/tiny-phi/`)), seen.join("\n"));
});

test("NO_PROXY naming the host sends it directly (here: unreachable, which proves the bypass)", async () => {
  const before = forwarded.length;
  await assert.rejects(resolveModel("acme/tiny-phi", opts({ HTTP_PROXY: proxyUrl, NO_PROXY: "example.org, .test" })), (e: unknown) => {
    assert.ok(e instanceof HubError && e.kind === "network", String(e));
    assert.match(e.message, /fakehub\.test/);
    return true;
  });
  assert.equal(forwarded.length, before, "nothing went through the proxy");
});

test("which proxy a URL takes: scheme, ALL_PROXY, NO_PROXY entries, loopback", () => {
  const s = proxySettings({ HTTPS_PROXY: "http://p:3128", ALL_PROXY: "http://all:1", NO_PROXY: "internal.corp,.lan, mirror:8443" });
  assert.equal(proxyForUrl("https://huggingface.co/api/models", s), "http://p:3128");
  assert.equal(proxyForUrl("http://huggingface.co/x", s), "http://all:1", "http:// falls back to ALL_PROXY");
  assert.equal(proxyForUrl("https://internal.corp/x", s), undefined);
  assert.equal(proxyForUrl("https://hub.internal.corp/x", s), undefined, "a name covers its subdomains");
  assert.equal(proxyForUrl("https://nas.lan/x", s), undefined);
  assert.equal(proxyForUrl("https://mirror:8443/x", s), undefined);
  assert.equal(proxyForUrl("https://mirror/x", s), "http://p:3128", "host:port matches that port only");
  assert.equal(proxyForUrl("https://notinternal.corp/x", s), "http://p:3128");
  assert.equal(proxyForUrl("http://127.0.0.1:8080/x", s), undefined, "loopback is always direct");
  assert.equal(proxyForUrl("http://localhost/x", s), undefined);
  assert.equal(proxyForUrl("https://huggingface.co/", proxySettings({ HTTPS_PROXY: "http://p:1", no_proxy: "*" })), undefined);
  assert.equal(proxyForUrl("https://huggingface.co/", proxySettings({})), undefined);
});
