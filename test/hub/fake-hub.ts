// A fake Hugging Face hub on 127.0.0.1 (random port) with the real hub's URL scheme and headers, for
// tests of anything that downloads: GET /api/models/{repo}/revision/{rev} (commit + siblings),
// HEAD/GET /{repo}/resolve/{rev}/{file} (small files: 200 with ETag = git blob sha1; LFS files: 302 to
// a CDN path with X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit), GET /cdn-lfs/{sha256} with
// Range support. Faults on demand: gated repos (401 without the token), a connection cut mid-file,
// a corrupted body. Every request is recorded so tests can check what was (not) asked. Plain HTTP by
// default; HTTPS on both ports with the `tls` option (the real hub and CDN are https:// origins).
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";

export interface FakeRepo {
  /** File path in the repository -> bytes. */
  files: Record<string, Buffer | string>;
  /** Branch/tag -> commit hash; "main" is added when absent (a random commit). */
  refs?: Record<string, string>;
  /** Files of other commits (commit -> files) for revision tests; refs must point to them. */
  commits?: Record<string, Record<string, Buffer | string>>;
  /** Requires `Authorization: Bearer {hub token}` (401 GatedRepo otherwise). */
  gated?: boolean;
  /** Renamed: the API and resolve URLs answer 307 to this id's URLs on the same host (a relative Location). */
  renamedTo?: string;
  /** Resolve URLs answer 307 to the same path on the other origin (the CDN server), without hub headers. */
  movedToOtherHost?: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  /** Which server got it: the hub's origin or the CDN's (another port, so another origin). */
  origin: "hub" | "cdn";
  /** The TLS server name (SNI) the client asked for; undefined over plain HTTP. */
  servername?: string;
}

export interface FakeHubOptions {
  /** The token gated repositories accept (default "hf_test_token"). */
  token?: string;
  /** LFS redirects use a relative Location ("/cdn-lfs/...") or an absolute one (default). */
  cdnLocation?: "absolute" | "relative";
  /**
   * Small files answer 307 to /api/resolve-cache/models/{repo}/{commit}/{file} (a relative redirect with
   * only X-Repo-Commit), as huggingface.co does today, instead of 200 at once.
   */
  resolveCache?: boolean;
  /** Serve HTTPS with this PEM key and certificate, on the hub's port and the CDN's; plain HTTP without. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /**
   * Host name in the CDN URLs the hub redirects to (default 127.0.0.1). A name only a test's proxy
   * resolves makes the client reach the CDN through that proxy, as it must reach a remote CDN.
   */
  cdnHost?: string;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/** What git (and the hub's ETag of a non-LFS file) calls a blob id: sha1("blob {size}\0" + bytes). */
export const gitBlobSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const randomCommit = () => randomBytes(20).toString("hex");

/** Weight-like files go through LFS on the real hub; small text files are plain git blobs. */
export function isLfsFile(name: string): boolean {
  return /\.(safetensors|gguf|bin|h5|msgpack|onnx)$/.test(name);
}

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  readonly token: string;
  url = "";
  /** The CDN: the same handler on another port, i.e. another origin, as cdn-lfs.huggingface.co is. */
  cdnUrl = "";
  /** Remote port of every connection either server accepted (to check they all came from a proxy). */
  readonly connections: { origin: "hub" | "cdn"; remotePort: number }[] = [];
  private readonly server: http.Server | https.Server;
  private readonly cdnServer: http.Server | https.Server;
  private readonly repos = new Map<string, { refs: Record<string, string>; commits: Map<string, Map<string, Buffer>>; gated: boolean; renamedTo?: string; movedToOtherHost?: boolean }>();
  private readonly blobs = new Map<string, Buffer>(); // sha256 -> bytes (the CDN)
  private readonly cuts = new Map<string, { afterBytes: number; times: number }>(); // sha256 -> cut the next `times` bodies after afterBytes
  private readonly corrupted = new Set<string>(); // sha256 served with one flipped byte
  private readonly expiries = new Map<string, { after: number; times: number }>(); // sha256 -> GETs served before `times` 403s
  private readonly holds = new Map<string, { afterBytes: number; reached: () => void; released: Promise<void> }>();

  constructor(private readonly options: FakeHubOptions = {}) {
    this.token = options.token ?? "hf_test_token";
    const create = (origin: "hub" | "cdn") => {
      const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res, origin);
      const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : http.createServer(handler);
      server.on("connection", (socket: Socket) => this.connections.push({ origin, remotePort: socket.remotePort ?? 0 }));
      return server;
    };
    this.server = create("hub");
    this.cdnServer = create("cdn");
  }

  async start(): Promise<this> {
    const scheme = this.options.tls ? "https" : "http";
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `${scheme}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => this.cdnServer.listen(0, "127.0.0.1", resolve));
    this.cdnUrl = `${scheme}://${this.options.cdnHost ?? "127.0.0.1"}:${(this.cdnServer.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const server of [this.server, this.cdnServer]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Add a repository; returns the commit "main" points to. */
  addRepo(id: string, repo: FakeRepo): string {
    const refs = { ...repo.refs };
    const commits = new Map<string, Map<string, Buffer>>();
    const toBuffers = (files: Record<string, Buffer | string>) =>
      new Map(Object.entries(files).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));
    refs.main ??= randomCommit();
    commits.set(refs.main, toBuffers(repo.files));
    for (const [commit, files] of Object.entries(repo.commits ?? {})) commits.set(commit, toBuffers(files));
    for (const files of commits.values()) {
      for (const [name, bytes] of files) if (isLfsFile(name)) this.blobs.set(sha256(bytes), bytes);
    }
    this.repos.set(id, { refs, commits, gated: repo.gated ?? false, renamedTo: repo.renamedTo, movedToOtherHost: repo.movedToOtherHost });
    return refs.main;
  }

  /** The next CDN download of this content is cut after `afterBytes` body bytes. */
  cutOnce(content: Buffer, afterBytes: number): void {
    this.cutTimes(content, afterBytes, 1);
  }

  /** The next `times` CDN responses for this content are each cut after `afterBytes` body bytes. */
  cutTimes(content: Buffer, afterBytes: number, times: number): void {
    this.cuts.set(sha256(content), { afterBytes, times });
  }

  /**
   * The CDN GET of this content after `afterRequests` more is refused with 403 "Request has expired",
   * as S3 answers a signed URL past its expiry; `times` GETs in a row are refused (then the hub's next URL works).
   */
  expireOnce(content: Buffer, afterRequests = 0, times = 1): void {
    if (times <= 0) this.expiries.delete(sha256(content));
    else this.expiries.set(sha256(content), { after: afterRequests, times });
  }

  /**
   * The next CDN download of this content pauses after `afterBytes` body bytes until `release()`;
   * `reached` resolves once those bytes are sent (for tests that act in the middle of a download).
   */
  holdOnce(content: Buffer, afterBytes: number): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const released = new Promise<void>((r) => (release = r));
    this.holds.set(sha256(content), { afterBytes, reached, released });
    return { reached: reachedP, release };
  }

  /** Every CDN download of this content gets one byte flipped (same length, wrong sha256). */
  corrupt(content: Buffer): void {
    this.corrupted.add(sha256(content));
  }

  requestsTo(prefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, origin: "hub" | "cdn"): void {
    const url = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(url.pathname);
    this.requests.push({
      method: req.method ?? "", path, range: req.headers.range, authorization: req.headers.authorization, origin,
      ...(this.options.tls ? { servername: (req.socket as TLSSocket).servername || undefined } : {}),
    });
    let m: RegExpExecArray | null;
    if ((m = /^\/(?:api\/models\/)?([^/]+\/[^/]+)\//.exec(path)) && origin === "hub") {
      const moved = this.repos.get(m[1]);
      if (moved?.renamedTo) {
        const target = (req.url ?? "/").replace(`/${m[1]}/`, `/${moved.renamedTo}/`);
        return void res.writeHead(307, { location: target, "content-length": "0" }).end();
      }
      if (moved?.movedToOtherHost && !path.startsWith("/api/")) {
        return void res.writeHead(307, { location: `${this.cdnUrl}${req.url}`, "content-length": "0" }).end();
      }
    }
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path))) return this.apiInfo(req, res, m[1], m[2]);
    if ((m = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(path))) return this.cdn(req, res, m[1], origin);
    if ((m = /^\/api\/resolve-cache\/models\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(path))) return this.resolveFile(req, res, m[1], m[2], m[3], true);
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path))) return this.resolveFile(req, res, m[1], m[2], m[3], false);
    res.writeHead(404, { "x-error-code": "RepoNotFound" }).end("not found");
  }

  /** Repo lookup with the hub's auth and not-found answers; undefined when the response was sent. */
  private lookup(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string) {
    const repo = this.repos.get(id);
    if (!repo) {
      // The real hub answers 401 for unknown repos when no token is sent (private repos stay secret).
      res.writeHead(req.headers.authorization ? 404 : 401, { "x-error-code": "RepoNotFound", "x-error-message": "Repository not found" }).end();
      return undefined;
    }
    if (repo.gated && req.headers.authorization !== `Bearer ${this.token}`) {
      const status = req.headers.authorization ? 403 : 401;
      res.writeHead(status, { "x-error-code": "GatedRepo", "x-error-message": `Access to model ${id} is restricted.` }).end();
      return undefined;
    }
    const commit = repo.refs[rev] ?? (repo.commits.has(rev) ? rev : undefined);
    if (!commit) {
      res.writeHead(404, { "x-error-code": "RevisionNotFound", "x-error-message": `Invalid rev id: ${rev}` }).end();
      return undefined;
    }
    return { commit, files: repo.commits.get(commit)! };
  }

  private apiInfo(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string): void {
    const found = this.lookup(req, res, id, rev);
    if (!found) return;
    const body = JSON.stringify({
      id, modelId: id, sha: found.commit, private: false, gated: this.repos.get(id)!.gated ? "auto" : false,
      siblings: [...found.files.keys()].map((rfilename) => ({ rfilename })),
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(req.method === "HEAD" ? undefined : body);
  }

  private resolveFile(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string, file: string, fromCache: boolean): void {
    const found = this.lookup(req, res, id, rev);
    if (!found) return;
    if (this.options.resolveCache && !fromCache && found.files.has(file) && !isLfsFile(file)) {
      const target = `/api/resolve-cache/models/${id}/${found.commit}/${file.split("/").map(encodeURIComponent).join("/")}?etag=x`;
      res.writeHead(307, { location: target, "x-repo-commit": found.commit, "content-length": "0" }).end();
      return;
    }
    const bytes = found.files.get(file);
    if (!bytes) {
      res.writeHead(404, { "x-error-code": "EntryNotFound", "x-repo-commit": found.commit }).end();
      return;
    }
    if (isLfsFile(file)) {
      const sha = sha256(bytes);
      const cdnPath = `/cdn-lfs/${sha}?response-content-disposition=${encodeURIComponent(`attachment; filename="${file}";`)}`;
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${bytes.length}\n`;
      res.writeHead(302, {
        location: this.options.cdnLocation === "relative" ? cdnPath : `${this.cdnUrl}${cdnPath}`,
        "x-repo-commit": found.commit,
        "x-linked-etag": `"${sha}"`,
        "x-linked-size": String(bytes.length),
        etag: `"${gitBlobSha1(Buffer.from(pointer))}"`,
        "content-length": "0",
      }).end();
      return;
    }
    res.writeHead(200, {
      "x-repo-commit": found.commit,
      etag: `"${gitBlobSha1(bytes)}"`,
      "content-length": String(bytes.length),
      "content-type": "application/octet-stream",
    });
    res.end(req.method === "HEAD" ? undefined : bytes);
  }

  private cdn(req: http.IncomingMessage, res: http.ServerResponse, sha: string, origin: "hub" | "cdn"): void {
    let bytes = this.blobs.get(sha);
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization && req.method === "GET" && origin === "cdn") {
      // A signed CDN URL plus an Authorization header is refused by S3-like stores. (A relative
      // location stays on the hub, which takes the token like any hub URL.)
      res.writeHead(400).end("Only one auth mechanism allowed");
      return;
    }
    const expiry = this.expiries.get(sha);
    if (expiry !== undefined && req.method === "GET") {
      if (expiry.after === 0) {
        if (--expiry.times === 0) this.expiries.delete(sha);
        res.writeHead(403, { "content-type": "application/xml" }).end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
        return;
      }
      expiry.after--;
    }
    if (this.corrupted.has(sha)) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { "content-range": `bytes */${bytes.length}` }).end();
        return;
      }
    }
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      "content-length": String(body.length),
      etag: `"${sha}"`,
      "accept-ranges": "bytes",
      ...(range ? { "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (req.method === "HEAD") return void res.end();
    const hold = this.holds.get(sha);
    if (hold && hold.afterBytes < body.length) {
      this.holds.delete(sha);
      res.write(body.subarray(0, hold.afterBytes), () => {
        hold.reached();
        void hold.released.then(() => res.end(body.subarray(hold.afterBytes)));
      });
      return;
    }
    const cut = this.cuts.get(sha);
    if (cut !== undefined && cut.afterBytes < body.length) {
      if (--cut.times === 0) this.cuts.delete(sha);
      res.write(body.subarray(0, cut.afterBytes), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

export async function startFakeHub(options: FakeHubOptions = {}): Promise<FakeHub> {
  return new FakeHub(options).start();
}

/** Every file under `dir` (recursively) as repository files. */
export function repoFilesFromDir(dir: string, prefix = ""): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(out, repoFilesFromDir(full, `${prefix}${name}/`));
    else out[prefix + name] = readFileSync(full);
  }
  return out;
}

/** A safetensors file with the given F32 tensors (header JSON padded to 8 bytes, then the data). */
export function safetensorsBytes(tensors: Record<string, { shape: number[]; data: Float32Array }>): Buffer {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...parts]);
}

function randomTensor(shape: number[]): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const raw = randomBytes(n * 4);
  for (let i = 0; i < n; i++) data[i] = (raw.readUInt32LE(i * 4) / 2 ** 32 - 0.5) * 0.04;
  return { shape, data };
}

/**
 * A random tiny phi-style repository as the hub would hold it: config.json, two safetensors shards +
 * index, tokenizer_config.json, generation_config.json, and files phi2 must NOT fetch (README.md,
 * pytorch_model.bin, onnx/model.onnx). Shards are big enough (~100-200 kB) for a mid-file cut.
 */
export function tinyRepoFiles(): Record<string, Buffer> {
  const C = 64;
  const shard1 = safetensorsBytes({ "model.embed_tokens.weight": randomTensor([512, C]) });
  const shard2 = safetensorsBytes({ "lm_head.weight": randomTensor([512, C]), "lm_head.bias": randomTensor([512]) });
  const index = {
    metadata: { total_size: shard1.length + shard2.length },
    weight_map: {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "lm_head.weight": "model-00002-of-00002.safetensors",
      "lm_head.bias": "model-00002-of-00002.safetensors",
    },
  };
  const config = {
    architectures: ["PhiForCausalLM"], model_type: "phi", vocab_size: 512, hidden_size: C,
    intermediate_size: 4 * C, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2,
    partial_rotary_factor: 0.4, rope_theta: 10000.0, layer_norm_eps: 1e-5, hidden_act: "gelu_new",
    max_position_embeddings: 128, qk_layernorm: false, tie_word_embeddings: false,
    bos_token_id: 50256, eos_token_id: 50256, torch_dtype: "float32", seed: randomBytes(4).toString("hex"),
  };
  return {
    "config.json": Buffer.from(JSON.stringify(config, null, 2)),
    "generation_config.json": Buffer.from(JSON.stringify({ bos_token_id: 50256, eos_token_id: 50256 })),
    "tokenizer_config.json": Buffer.from(JSON.stringify({ tokenizer_class: "CodeGenTokenizer", model_max_length: 2048 })),
    "model-00001-of-00002.safetensors": shard1,
    "model-00002-of-00002.safetensors": shard2,
    "model.safetensors.index.json": Buffer.from(JSON.stringify(index, null, 2)),
    "README.md": Buffer.from("# tiny test model\n"),
    "pytorch_model.bin": randomBytes(4096),
    "onnx/model.onnx": randomBytes(1024),
    ".gitattributes": Buffer.from("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
  };
}

/** A GGUF-style repository: several quantizations of one model (bytes are random after the magic). */
export function tinyGgufRepoFiles(): Record<string, Buffer> {
  const gguf = () => Buffer.concat([Buffer.from("GGUF"), randomBytes(20_000)]);
  return {
    "tiny.Q4_0.gguf": gguf(),
    "tiny.Q8_0.gguf": gguf(),
    "tiny.F16.gguf": gguf(),
    "README.md": Buffer.from("# tiny GGUF\n"),
    "config.json": Buffer.from("{}"),
  };
}
