// `phi2 pull` from an https:// hub through HTTPS_PROXY, the way a user behind a corporate proxy pulls
// from huggingface.co: the hub's origin, and the CDN's after the LFS redirect, are each tunnelled with
// CONNECT, TLS end to end. Hub and CDN are reached under names only the proxy resolves (fakehub.test,
// cdn.fakehub.test), so a request that skipped the proxy could not reach them; the CLI trusts the
// fixture certificate through NODE_EXTRA_CA_CERTS, as a user adds a private CA.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { phi2CleanEnv } from "../helpers/cli.js";
import { startFakeHub, tinyRepoFiles, type FakeHub } from "./fake-hub.js";

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/hub/fixtures/${name}`, import.meta.url));
const CERT = fixture("fakehub-cert.pem");

/** `phi2 pull -q ...args` in a child with only PATH and `env` as its environment. */
const runPull = (args: string[], env: NodeJS.ProcessEnv) => phi2CleanEnv(["pull", "-q", ...args], env);

let hub: FakeHub;
let commit: string;
const files = tinyRepoFiles();
let proxy: http.Server;
let proxyUrl = "";
let hubUrl = "";
let hostPorts: Record<string, number> = {};
/** host:port of every CONNECT the proxy was asked for. */
const connects: string[] = [];
/** Any request to the proxy that was not a CONNECT (answered 405). */
const plain: string[] = [];
/** Local ports of the proxy's connections to hub and CDN: every connection they accept must be one. */
const tunnelPorts = new Set<number>();
const sockets = new Set<Duplex>();

before(async () => {
  hub = await startFakeHub({ tls: { key: readFileSync(fixture("fakehub-key.pem")), cert: readFileSync(CERT) }, cdnHost: "cdn.fakehub.test" });
  commit = hub.addRepo("acme/tiny-phi", { files, gated: true });
  hostPorts = { "fakehub.test": Number(new URL(hub.url).port), "cdn.fakehub.test": Number(new URL(hub.cdnUrl).port) };
  hubUrl = `https://fakehub.test:${hostPorts["fakehub.test"]}`;
  proxy = http.createServer((req, res) => {
    plain.push(`${req.method} ${req.url}`);
    res.writeHead(405).end();
  });
  proxy.on("connect", (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const target = req.url ?? "";
    connects.push(target);
    const m = /^([a-z.]+):(\d+)$/.exec(target);
    if (!m || !Object.hasOwn(hostPorts, m[1]) || hostPorts[m[1]] !== Number(m[2])) {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = net.connect(hostPorts[m[1]], "127.0.0.1", () => {
      tunnelPorts.add(upstream.localPort ?? -1);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  proxy.close();
  await hub.close();
});

test("phi2 pull from an https hub through HTTPS_PROXY: CONNECT to hub and CDN, TLS to each, token to the hub only", async () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-https-proxy-"));
  const r = await runPull(["acme/tiny-phi"], {
    HF_HOME: home, HF_ENDPOINT: hubUrl, HTTPS_PROXY: proxyUrl, HF_TOKEN: hub.token, NODE_EXTRA_CA_CERTS: CERT,
  });
  assert.equal(r.code, 0, r.stderr);
  const snapshot = join(home, "hub", "models--acme--tiny-phi", "snapshots", commit);
  assert.equal(r.stdout, snapshot + "\n");
  const got = readdirSync(snapshot).sort();
  assert.ok(got.includes("model-00001-of-00002.safetensors") && got.includes("model-00002-of-00002.safetensors"), got.join(", "));
  for (const name of got) assert.deepEqual(readFileSync(join(snapshot, name)), files[name], name);

  // Through the proxy, and only through it: CONNECTs to both origins, nothing in plain, and every
  // connection hub and CDN accepted came out of one of the proxy's tunnels.
  const hubHost = `fakehub.test:${hostPorts["fakehub.test"]}`;
  const cdnHost = `cdn.fakehub.test:${hostPorts["cdn.fakehub.test"]}`;
  assert.ok(connects.includes(hubHost) && connects.includes(cdnHost), connects.join("\n"));
  assert.deepEqual(connects.filter((c) => c !== hubHost && c !== cdnHost), []);
  assert.deepEqual(plain, []);
  assert.ok(hub.connections.length > 0);
  for (const c of hub.connections) assert.ok(tunnelPorts.has(c.remotePort), `${c.origin} connection from port ${c.remotePort} bypassed the proxy`);

  // TLS to the right name on each origin; the token went to the hub (a gated repo) and not to the CDN.
  const toHub = hub.requests.filter((q) => q.origin === "hub");
  const toCdn = hub.requests.filter((q) => q.origin === "cdn");
  assert.ok(toHub.some((q) => q.path === "/api/models/acme/tiny-phi/revision/main"));
  assert.equal(toCdn.filter((q) => q.method === "GET").length, 2, "both shards came from the CDN");
  for (const q of toHub) assert.deepEqual([q.servername, q.authorization], ["fakehub.test", `Bearer ${hub.token}`], q.path);
  for (const q of toCdn) assert.deepEqual([q.servername, q.authorization], ["cdn.fakehub.test", undefined], q.path);
});

test("without the CA (no NODE_EXTRA_CA_CERTS) phi2 pull fails at once (no retries), in one line that names the certificate", async () => {
  const home = mkdtempSync(join(tmpdir(), "phi2-https-proxy-"));
  const requestsBefore = hub.requests.length;
  const connectsBefore = connects.length;
  const r = await runPull(["acme/tiny-phi", "--hub-url", hubUrl], { HF_HOME: home, HTTPS_PROXY: proxyUrl, HF_TOKEN: hub.token });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /^error: cannot reach https:\/\/fakehub\.test:\d+\/api\/models\/acme\/tiny-phi\/revision\/main: .*self-signed certificate/);
  assert.match(r.stderr, /NODE_EXTRA_CA_CERTS/);
  assert.deepEqual(connects.slice(connectsBefore), [`fakehub.test:${hostPorts["fakehub.test"]}`], "one tunnel: an untrusted certificate is not retried");
  assert.equal(hub.requests.length, requestsBefore, "no request got past the TLS handshake");
});
