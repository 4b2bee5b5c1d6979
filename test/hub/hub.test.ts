// The hub client against a fake hub: cache layout shared with huggingface_hub, resume after a cut,
// integrity checks, auth, offline mode, revisions and GGUF quant picks.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { HubError } from "../../src/hub/errors.js";
import { pullModel, resolveModel, type HubOptions } from "../../src/hub/resolve.js";
import { FakeHub, gitBlobSha1, randomCommit, startFakeHub, tinyGgufRepoFiles, tinyRepoFiles } from "./fake-hub.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const WANTED = [
  "config.json", "generation_config.json", "tokenizer_config.json", "model.safetensors.index.json",
  "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
];

function tempCache(): string {
  return mkdtempSync(join(tmpdir(), "phi2-hub-"));
}

function opts(hub: FakeHub, cacheDir: string, extra: Partial<HubOptions> = {}): HubOptions {
  return { hubUrl: hub.url, cacheDir, env: {}, progress: false, log: () => {}, retryDelayMs: 5, timeoutMs: 5000, ...extra };
}

async function rejectsWith(p: Promise<unknown>, kind: string, pattern: RegExp): Promise<HubError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HubError, `expected HubError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected a ${kind} error`);
}

for (const cdnLocation of ["absolute", "relative"] as const) {
  describe(`pull with ${cdnLocation} CDN redirects`, () => {
    let hub: FakeHub;
    const files = tinyRepoFiles();
    let commit: string;
    before(async () => {
      hub = await startFakeHub({ cdnLocation, resolveCache: cdnLocation === "relative" });
      commit = hub.addRepo("acme/tiny-phi", { files });
    });
    after(() => hub.close());

    test("lays the cache out exactly as huggingface_hub does", async () => {
      const cacheDir = tempCache();
      const result = await pullModel("acme/tiny-phi", opts(hub, cacheDir));
      const repoDir = join(cacheDir, "models--acme--tiny-phi");
      const snapshot = join(repoDir, "snapshots", commit);
      assert.equal(result.path, snapshot);
      assert.equal(result.commit, commit);
      assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), commit);
      assert.deepEqual(readdirSync(snapshot).sort(), [...WANTED].sort());
      for (const name of WANTED) {
        const pointer = join(snapshot, name);
        assert.ok(lstatSync(pointer).isSymbolicLink(), `${name} is a symlink`);
        // LFS files are stored under their sha256, plain git files under their git blob sha1.
        const etag = name.endsWith(".safetensors") ? sha256(files[name]) : gitBlobSha1(files[name]);
        assert.equal(readlinkSync(pointer), `../../blobs/${etag}`);
        assert.deepEqual(readFileSync(pointer), files[name]);
      }
      assert.deepEqual(readdirSync(join(repoDir, "blobs")).filter((b) => b.includes(".")), [], "no .incomplete left");
      const fetched = hub.requests.filter((r) => r.method === "GET" && r.path.includes("/resolve/"));
      assert.ok(!fetched.some((r) => /README|pytorch_model|onnx|gitattributes/.test(r.path)), "skips files phi2 does not read");
      assert.ok(hub.requestsTo("/acme/tiny-phi/resolve/").every((r) => r.path.includes(`/resolve/${commit}/`)), "pins files to the commit");
      if (cdnLocation === "relative") assert.ok(hub.requestsTo("/api/resolve-cache/").length >= 3, "small files came through the resolve cache");
    });

    test("a second pull only asks which commit main is", async () => {
      const cacheDir = tempCache();
      await pullModel("acme/tiny-phi", opts(hub, cacheDir));
      const before = hub.requests.length;
      const again = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
      assert.equal(again, join(cacheDir, "models--acme--tiny-phi", "snapshots", commit));
      assert.deepEqual(hub.requests.slice(before).map((r) => r.path), [`/api/models/acme/tiny-phi/revision/main`]);
    });
  });
}

describe("robust downloads", () => {
  let hub: FakeHub;
  let files: Record<string, Buffer>;
  before(async () => {
    hub = await startFakeHub();
    files = tinyRepoFiles();
    hub.addRepo("acme/tiny-phi", { files });
  });
  after(() => hub.close());

  test("a connection cut mid-file is resumed with a Range request and verified", async () => {
    const shard = files["model-00001-of-00002.safetensors"];
    const cutAt = Math.floor(shard.length / 2);
    hub.cutOnce(shard, cutAt);
    const cacheDir = tempCache();
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00001-of-00002.safetensors")), shard);
    const cdn = hub.requests.slice(start).filter((r) => r.path === `/cdn-lfs/${sha256(shard)}`);
    assert.equal(cdn.length, 2, "one cut download, one resumed download");
    assert.equal(cdn[0].range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? "")?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= cutAt, `resumed at ${cdn[1].range}, cut at ${cutAt}`);
    assert.ok(cdn.every((r) => r.authorization === undefined));
  });

  test("a link that keeps dropping is resumed as long as each try brings bytes (more cuts than tries in a row)", async () => {
    const shard = files["model-00001-of-00002.safetensors"];
    const cuts = 9; // DOWNLOAD_TRIES is 6
    const step = Math.floor(shard.length / (cuts + 2));
    hub.cutTimes(shard, step, cuts);
    const cacheDir = tempCache();
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00001-of-00002.safetensors")), shard);
    const gets = hub.requests.slice(start).filter((r) => r.method === "GET" && r.path === `/cdn-lfs/${sha256(shard)}`);
    assert.equal(gets.length, cuts + 1, "every cut resumed, then one complete body");
  });

  test("a signed CDN URL that expires mid-download is replaced by a fresh one from the hub, and the download resumes", async () => {
    const shard = files["model-00001-of-00002.safetensors"];
    hub.cutOnce(shard, 5000);
    hub.expireOnce(shard, 1); // the resumed GET finds the URL expired
    const cacheDir = tempCache();
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00001-of-00002.safetensors")), shard);
    const recent = hub.requests.slice(start);
    const heads = recent.filter((r) => r.method === "HEAD" && r.path.endsWith("/model-00001-of-00002.safetensors"));
    assert.equal(heads.length, 2, "the file's metadata was asked again for a fresh URL");
    const gets = recent.filter((r) => r.method === "GET" && r.path === `/cdn-lfs/${sha256(shard)}`);
    assert.deepEqual(gets.map((r) => r.range !== undefined), [false, true, true], "cut, expired, resumed");
  });

  test("a CDN that keeps refusing is named as such, not as a missing HF_TOKEN", async () => {
    const shard = files["model-00001-of-00002.safetensors"];
    hub.expireOnce(shard, 0, 100);
    try {
      const err = await rejectsWith(resolveModel("acme/tiny-phi", opts(hub, tempCache())), "network", /download server .* refused the signed URL .*HTTP 403/);
      assert.doesNotMatch(err.message, /set HF_TOKEN/);
    } finally {
      hub.expireOnce(shard, 0, 0); // times 0: stop refusing, for the tests after this one
    }
  });

  test("a partial file left by an earlier run is resumed, not restarted", async () => {
    const shard = files["model-00002-of-00002.safetensors"];
    const cacheDir = tempCache();
    const blobs = join(cacheDir, "models--acme--tiny-phi", "blobs");
    mkdirSync(blobs, { recursive: true });
    const have = 1000;
    writeFileSync(join(blobs, `${sha256(shard)}.phi2.incomplete`), shard.subarray(0, have));
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), shard);
    const cdn = hub.requests.slice(start).filter((r) => r.path === `/cdn-lfs/${sha256(shard)}`);
    assert.deepEqual(cdn.map((r) => r.range), [`bytes=${have}-`]);
  });

  test("a partial file with wrong bytes fails the sha256 check and is removed", async () => {
    const shard = files["model-00002-of-00002.safetensors"];
    const cacheDir = tempCache();
    const blobs = join(cacheDir, "models--acme--tiny-phi", "blobs");
    mkdirSync(blobs, { recursive: true });
    const bad = Buffer.from(shard.subarray(0, 1000));
    bad[500] ^= 1;
    writeFileSync(join(blobs, `${sha256(shard)}.phi2.incomplete`), bad);
    await rejectsWith(resolveModel("acme/tiny-phi", opts(hub, cacheDir)), "integrity", /sha256 mismatch/);
    assert.ok(!existsSync(join(blobs, `${sha256(shard)}.phi2.incomplete`)));
    // The next run starts over and succeeds.
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), shard);
  });

  test("a blob another live phi2 process is downloading is waited for, not fetched twice; a dead owner's lock is taken over", async () => {
    const shard = files["model-00002-of-00002.safetensors"];
    const cacheDir = tempCache();
    const blobs = join(cacheDir, "models--acme--tiny-phi", "blobs");
    mkdirSync(blobs, { recursive: true });
    const lock = join(blobs, `${sha256(shard)}.incomplete.phi2-lock`);
    const other = spawn("sleep", ["30"]);
    try {
      writeFileSync(lock, String(other.pid));
      const lines: string[] = [];
      const start = hub.requests.length;
      const pulling = resolveModel("acme/tiny-phi", opts(hub, cacheDir, { log: (l) => lines.push(l) }));
      for (let i = 0; i < 750 && !lines.some((l) => l.includes(`pid ${other.pid}`)); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(lines.some((l) => /model-00002-of-00002\.safetensors: another phi2 process .* waiting/.test(l)), lines.join("\n"));
      writeFileSync(join(blobs, sha256(shard)), shard); // the other process finishes...
      rmSync(lock); // ...and lets go
      const path = await pulling;
      assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), shard);
      assert.equal(hub.requests.slice(start).filter((r) => r.path === `/cdn-lfs/${sha256(shard)}`).length, 0);
    } finally {
      other.kill();
    }
    const dead = spawn("true");
    await new Promise((r) => dead.on("exit", r));
    const cacheDir2 = tempCache();
    const blobs2 = join(cacheDir2, "models--acme--tiny-phi", "blobs");
    mkdirSync(blobs2, { recursive: true });
    writeFileSync(join(blobs2, `${sha256(shard)}.incomplete.phi2-lock`), String(dead.pid));
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir2));
    assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), shard);
    assert.deepEqual(readdirSync(blobs2).filter((f) => f.includes("lock")), []);
  });

  test("a corrupted body is an error and leaves nothing that looks complete", async () => {
    const hub2 = await startFakeHub();
    try {
      const repoFiles = tinyRepoFiles();
      const commit = hub2.addRepo("acme/broken", { files: repoFiles });
      const shard = repoFiles["model-00001-of-00002.safetensors"];
      hub2.corrupt(shard);
      const cacheDir = tempCache();
      const err = await rejectsWith(resolveModel("acme/broken", opts(hub2, cacheDir)), "integrity", /model-00001-of-00002\.safetensors: sha256 mismatch/);
      assert.match(err.message, new RegExp(sha256(shard)));
      const repoDir = join(cacheDir, "models--acme--broken");
      assert.deepEqual(readdirSync(join(repoDir, "blobs")).filter((b) => b.startsWith(sha256(shard))), []);
      assert.ok(!existsSync(join(repoDir, "snapshots", commit, "model-00001-of-00002.safetensors")));
      // Offline, the incomplete snapshot is reported as such, never used.
      await rejectsWith(resolveModel("acme/broken", opts(hub2, cacheDir, { offline: true })), "offline", /model-00001-of-00002\.safetensors/);
    } finally {
      await hub2.close();
    }
  });
});

describe("access, revisions, errors", () => {
  let hub: FakeHub;
  let mainCommit: string;
  const devCommit = randomCommit();
  const devFiles = tinyRepoFiles();
  before(async () => {
    hub = await startFakeHub();
    hub.addRepo("acme/gated-phi", { files: tinyRepoFiles(), gated: true });
    mainCommit = hub.addRepo("acme/branchy", { files: tinyRepoFiles(), refs: { dev: devCommit }, commits: { [devCommit]: devFiles } });
    hub.addRepo("acme/bin-only", { files: { "config.json": "{}", "pytorch_model.bin": Buffer.alloc(100) } });
  });
  after(() => hub.close());

  test("a gated repo without a token names HF_TOKEN; with it, the download works and the token stays off the CDN", async () => {
    const cacheDir = tempCache();
    await rejectsWith(resolveModel("acme/gated-phi", opts(hub, cacheDir)), "auth", /gated.*HF_TOKEN/s);
    await rejectsWith(resolveModel("acme/gated-phi", opts(hub, cacheDir, { env: { HF_TOKEN: "wrong" } })), "auth", /403.*HF_TOKEN/s);
    const start = hub.requests.length;
    const path = await resolveModel("acme/gated-phi", opts(hub, cacheDir, { env: { HF_TOKEN: hub.token } }));
    assert.ok(existsSync(join(path, "config.json")));
    const recent = hub.requests.slice(start);
    assert.ok(recent.filter((r) => r.path.startsWith("/api/") || r.path.includes("/resolve/")).every((r) => r.authorization === `Bearer ${hub.token}`));
    assert.ok(recent.filter((r) => r.path.startsWith("/cdn-lfs/")).every((r) => r.authorization === undefined));
    // once cached, a missing or revoked token still gets the cached snapshot (huggingface_hub does so too), with a note
    const lines: string[] = [];
    assert.equal(await resolveModel("acme/gated-phi", opts(hub, cacheDir, { log: (l: string) => lines.push(l) })), path);
    assert.match(lines.join("\n"), /gated.*HF_TOKEN.*; using the cached snapshot/s);
    assert.equal(await resolveModel("acme/gated-phi", opts(hub, cacheDir, { env: { HF_TOKEN: "revoked" } })), path);
  });

  test("--revision resolves a branch to its commit and records refs/{branch}", async () => {
    const cacheDir = tempCache();
    const result = await pullModel("acme/branchy", opts(hub, cacheDir, { revision: "dev" }));
    assert.equal(result.commit, devCommit);
    assert.notEqual(devCommit, mainCommit);
    assert.equal(readFileSync(join(cacheDir, "models--acme--branchy", "refs", "dev"), "utf8"), devCommit);
    assert.deepEqual(readFileSync(join(result.path, "config.json")), devFiles["config.json"]);
    // A pinned commit that is cached needs no request at all.
    const start = hub.requests.length;
    assert.equal(await resolveModel("acme/branchy", opts(hub, cacheDir, { revision: devCommit })), result.path);
    assert.equal(hub.requests.length, start);
    await rejectsWith(resolveModel("acme/branchy", opts(hub, cacheDir, { revision: "nope" })), "not-found", /revision "nope" not found/);
  });

  test("unknown repos, .bin-only repos and bad specs get clear errors", async () => {
    const cacheDir = tempCache();
    await rejectsWith(resolveModel("acme/missing", opts(hub, cacheDir, { env: { HF_TOKEN: "x" } })), "not-found", /acme\/missing: repository not found/);
    await rejectsWith(resolveModel("acme/missing", opts(hub, cacheDir)), "auth", /not found, private or gated.*no local file or folder "acme\/missing" either/s);
    await rejectsWith(resolveModel("acme/bin-only", opts(hub, cacheDir)), "unsupported", /only PyTorch/);
    await rejectsWith(resolveModel("./no/such/dir/model", opts(hub, cacheDir)), "spec", /neither an existing local path nor a hub id/);
  });

  test("a local folder or file is returned as is, without asking the hub", async () => {
    const dir = tempCache();
    const start = hub.requests.length;
    assert.equal(await resolveModel(dir, opts(hub, dir)), dir);
    assert.equal(hub.requests.length, start);
  });
});

describe("GGUF repositories", () => {
  let hub: FakeHub;
  const files = tinyGgufRepoFiles();
  let commit: string;
  before(async () => {
    hub = await startFakeHub();
    commit = hub.addRepo("acme/tiny-GGUF", { files });
  });
  after(() => hub.close());

  test("user/repo:QUANT downloads only that file and returns its path", async () => {
    const cacheDir = tempCache();
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-GGUF:q8_0", opts(hub, cacheDir));
    assert.equal(path, join(cacheDir, "models--acme--tiny-GGUF", "snapshots", commit, "tiny.Q8_0.gguf"));
    assert.deepEqual(readFileSync(path), files["tiny.Q8_0.gguf"]);
    const gets = hub.requests.slice(start).filter((r) => r.method === "GET" && !r.path.startsWith("/api/"));
    assert.deepEqual(gets.map((r) => r.path), [`/cdn-lfs/${sha256(files["tiny.Q8_0.gguf"])}`]);
    // Offline, the same pick is found in the cache.
    assert.equal(await resolveModel("acme/tiny-GGUF:Q8_0", opts(hub, cacheDir, { env: { HF_HUB_OFFLINE: "1" } })), path);
  });

  test("an unknown quant lists the available ones; no quant and no Q4_K_M takes the first file and says so", async () => {
    const cacheDir = tempCache();
    await rejectsWith(resolveModel("acme/tiny-GGUF:Q5_K_M", opts(hub, cacheDir)), "not-found", /Q5_K_M.*available: F16, Q4_0, Q8_0/);
    const lines: string[] = [];
    const start = hub.requests.length;
    const path = await resolveModel("acme/tiny-GGUF", opts(hub, cacheDir, { log: (l) => lines.push(l) }));
    assert.ok(path.endsWith("tiny.F16.gguf"), path);
    assert.ok(lines.some((l) => /^acme\/tiny-GGUF has no Q4_K_M; using F16 \(tiny\.F16\.gguf\), its first GGUF file.*acme\/tiny-GGUF:QUANT \(available: F16, Q4_0, Q8_0\)/.test(l)), lines.join("\n"));
    const gets = hub.requests.slice(start).filter((r) => r.method === "GET" && !r.path.startsWith("/api/"));
    assert.equal(gets.length, 1, "only that file is downloaded");
  });
});

describe("offline and unreachable hub", () => {
  test("HF_HUB_OFFLINE uses a cache laid out by huggingface_hub and names what is missing", async () => {
    // Build the cache by hand from huggingface_hub's documented layout (not with our own writer).
    const cacheDir = tempCache();
    const commit = randomCommit();
    const repoDir = join(cacheDir, "models--acme--py-made");
    const files = tinyRepoFiles();
    mkdirSync(join(repoDir, "blobs"), { recursive: true });
    mkdirSync(join(repoDir, "refs"));
    mkdirSync(join(repoDir, "snapshots", commit), { recursive: true });
    writeFileSync(join(repoDir, "refs", "main"), commit);
    for (const name of WANTED) {
      const etag = sha256(files[name]);
      writeFileSync(join(repoDir, "blobs", etag), files[name]);
      symlinkSync(`../../blobs/${etag}`, join(repoDir, "snapshots", commit, name));
    }
    const env = { HF_HUB_OFFLINE: "1", HF_HUB_CACHE: cacheDir };
    const noNetwork: HubOptions = { env, progress: false, log: () => {}, hubUrl: "http://127.0.0.1:9" };
    assert.equal(await resolveModel("acme/py-made", noNetwork), join(repoDir, "snapshots", commit));

    rmSync(join(repoDir, "blobs", sha256(files["model-00002-of-00002.safetensors"]))); // dangling pointer
    await rejectsWith(resolveModel("acme/py-made", noNetwork), "offline", /HF_HUB_OFFLINE.*missing model-00002-of-00002\.safetensors/s);
    await rejectsWith(resolveModel("acme/never-seen", noNetwork), "offline", /refs\/main/);
  });

  test("an unreachable hub falls back to a complete cache, else says both", async () => {
    const hub = await startFakeHub();
    hub.addRepo("acme/tiny-phi", { files: tinyRepoFiles() });
    const cacheDir = tempCache();
    const first = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    const url = hub.url;
    await hub.close();
    const lines: string[] = [];
    const o: HubOptions = { hubUrl: url, cacheDir, env: {}, progress: false, log: (l) => lines.push(l), retryDelayMs: 1 };
    assert.equal(await resolveModel("acme/tiny-phi", o), first);
    assert.match(lines.join("\n"), /cannot reach .*using the cached snapshot/);
    await rejectsWith(resolveModel("acme/other", o), "network", /cannot reach.*refs\/main/s);
  });
});

describe("the token across redirects", () => {
  let hub: FakeHub;
  before(async () => {
    hub = await startFakeHub({ resolveCache: true });
    hub.addRepo("acme/gated-small", { files: tinyRepoFiles(), gated: true });
    hub.addRepo("acme/moved", { files: tinyRepoFiles(), movedToOtherHost: true });
    hub.addRepo("acme/old-name", { files: {}, renamedTo: "acme/gated-small" });
  });
  after(() => hub.close());

  test("a gated repo's small files, sent through the hub's resolve-cache, get the token (same origin); the CDN never does", async () => {
    const cacheDir = tempCache();
    const start = hub.requests.length;
    const path = await resolveModel("acme/gated-small", opts(hub, cacheDir, { env: { HF_TOKEN: hub.token } }));
    assert.ok(existsSync(join(path, "config.json")));
    const recent = hub.requests.slice(start);
    const cached = recent.filter((r) => r.path.startsWith("/api/resolve-cache/"));
    assert.ok(cached.length >= 3 && cached.every((r) => r.authorization === `Bearer ${hub.token}`));
    assert.ok(recent.filter((r) => r.origin === "cdn").every((r) => r.authorization === undefined));
  });

  test("a refused token on a same-origin hop says the token was refused, not that none was set", async () => {
    await rejectsWith(resolveModel("acme/gated-small", opts(hub, tempCache(), { env: { HF_TOKEN: "wrong" } })), "auth", /HF_TOKEN sent was refused/);
  });

  test("a renamed gated repository is followed to its new name, API call included, the token kept on the hub", async () => {
    const start = hub.requests.length;
    const path = await resolveModel("acme/old-name", opts(hub, tempCache(), { env: { HF_TOKEN: hub.token } }));
    assert.ok(existsSync(join(path, "config.json")));
    const recent = hub.requests.slice(start);
    assert.ok(recent.some((r) => r.path.startsWith("/api/models/acme/gated-small/")), "the API redirect was followed");
    assert.ok(recent.filter((r) => r.origin === "hub").every((r) => r.authorization === `Bearer ${hub.token}`));
  });

  test("a redirect to another host never carries the token, on HEAD or GET", async () => {
    const start = hub.requests.length;
    const path = await resolveModel("acme/moved", opts(hub, tempCache(), { env: { HF_TOKEN: hub.token } }));
    assert.ok(existsSync(join(path, "config.json")));
    const foreign = hub.requests.slice(start).filter((r) => r.origin === "cdn");
    assert.ok(foreign.some((r) => r.method === "HEAD" && r.path.includes("/resolve/")), "the HEAD followed the redirect");
    assert.deepEqual(foreign.filter((r) => r.authorization !== undefined).map((r) => `${r.method} ${r.path}`), []);
  });
});

describe("concurrent writers", () => {
  let hub: FakeHub;
  const files = tinyRepoFiles();
  before(async () => {
    hub = await startFakeHub();
    hub.addRepo("acme/tiny-phi", { files });
  });
  after(() => hub.close());

  test("bytes appended to our partial file by another program are caught before it becomes the blob", async () => {
    const shard = files["model-00001-of-00002.safetensors"];
    const held = hub.holdOnce(shard, 1000);
    const cacheDir = tempCache();
    const blobs = join(cacheDir, "models--acme--tiny-phi", "blobs");
    const pulling = resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    await held.reached;
    let partial: string | undefined;
    for (let i = 0; i < 200 && !partial; i++) {
      partial = readdirSync(blobs).find((f) => f.startsWith(sha256(shard)) && f.endsWith(".incomplete"));
      if (!partial) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(partial, "a partial file appeared");
    appendFileSync(join(blobs, partial), Buffer.alloc(500, 1)); // the other writer
    held.release();
    await rejectsWith(pulling, "integrity", /another program wrote to it/);
    assert.deepEqual(readdirSync(blobs).filter((b) => b.startsWith(sha256(shard))), [], "neither a wrong blob nor the partial file is left");
  });
});

test("huggingface_hub's partial file (blobs/{etag}.incomplete, which it may be writing now) is neither used nor touched", async () => {
  const hub = await startFakeHub();
  try {
    const files = tinyRepoFiles();
    hub.addRepo("acme/tiny-phi", { files });
    const shard = files["model-00002-of-00002.safetensors"];
    const cacheDir = tempCache();
    const blobs = join(cacheDir, "models--acme--tiny-phi", "blobs");
    mkdirSync(blobs, { recursive: true });
    const pythons = join(blobs, `${sha256(shard)}.incomplete`);
    const theirs = Buffer.alloc(1000, 7); // whatever transformers has written so far
    writeFileSync(pythons, theirs);
    const path = await resolveModel("acme/tiny-phi", opts(hub, cacheDir));
    assert.deepEqual(readFileSync(join(path, "model-00002-of-00002.safetensors")), shard);
    assert.deepEqual(readFileSync(pythons), theirs);
  } finally {
    await hub.close();
  }
});
