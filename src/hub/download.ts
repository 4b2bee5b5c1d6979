// One file into the cache, the way hf_hub_download does it, plus the checks it leaves out:
// bytes go to blobs/{etag}.phi2.incomplete (resumed with a Range request after a cut, within this run
// and across runs), then the size and, for LFS files, the sha256 are checked against what the hub
// announced before the file is renamed to blobs/{etag} and linked from the snapshot. A file that
// fails the check is deleted: nothing that looks complete is ever wrong.
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";
import { fetchFileMetadata, hubAuth, sameOrigin, statusError, type FileMetadata, type HubContext } from "./api.js";
import type { RepoCache } from "./cache.js";
import { HubError } from "./errors.js";
import { header, httpRequest, networkError, withRetries, type HttpResponse } from "./http.js";
import { withFileLock } from "./lock.js";
import type { ProgressListener } from "./progress.js";

/**
 * Tries in a row without a byte of progress before a file is given up (each try resumes where the last
 * one stopped; a try that brought bytes starts the count again).
 */
const DOWNLOAD_TRIES = 6;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Downloads of the same blob started concurrently in this process share one promise. */
const inFlight = new Map<string, Promise<void>>();

/**
 * Make `snapshots/{commit}/{file}` present and return its path. A pointer that already resolves is
 * trusted (snapshots are immutable and only verified blobs are ever linked).
 */
export async function downloadToCache(
  ctx: HubContext, cache: RepoCache, commit: string, file: string, onProgress?: ProgressListener,
): Promise<string> {
  if (cache.hasFile(commit, file)) return cache.pointerPath(commit, file);
  const meta = await fetchFileMetadata(ctx, cache.repo, commit, file);
  const blob = cache.blobPath(meta.etag);
  const complete = () => existsSync(blob) && (meta.size === undefined || statSync(blob).size === meta.size);
  if (!complete()) {
    let pending = inFlight.get(blob);
    if (!pending) {
      const lock = cache.lockPath(meta.etag);
      const onWait = (pid: number) => ctx.log?.(`${file}: another phi2 process (pid ${pid}) is downloading it; waiting`);
      // Once we hold the lock, the other process may have finished the blob for us.
      pending = withFileLock(lock, async () => (complete() ? undefined : fetchBlob(ctx, cache, commit, meta, file, onProgress)), onWait)
        .finally(() => inFlight.delete(blob));
      inFlight.set(blob, pending);
    }
    await pending;
  }
  return cache.linkPointer(commit, file, meta.etag);
}

async function fetchBlob(
  ctx: HubContext, cache: RepoCache, commit: string, firstMeta: FileMetadata, file: string, onProgress?: ProgressListener,
): Promise<void> {
  let meta = firstMeta; // its location is replaced when a signed CDN URL expires
  const blob = cache.blobPath(meta.etag);
  const incomplete = cache.incompletePath(meta.etag);
  mkdirSync(dirname(blob), { recursive: true });
  // Only LFS etags are content hashes we can check (sha256 of the file); a git etag is sha1 of a
  // "blob <size>\0" header plus the bytes and is left to the size check, as huggingface_hub does.
  const expectedSha = SHA256_HEX.test(meta.etag) ? meta.etag : undefined;

  let have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (meta.size !== undefined && have > meta.size) {
    rmSync(incomplete);
    have = 0;
  }
  let hash = createHash("sha256");
  if (have > 0 && expectedSha) await hashFilePrefix(incomplete, hash);
  const resumedFrom = have;
  const report = (done: boolean) => onProgress?.({ file, downloaded: have, total: meta.size, resumedFrom, done });
  report(false);

  let haveBefore = have;
  await withRetries(DOWNLOAD_TRIES, ctx.retryDelayMs, async () => {
    haveBefore = have;
    if (meta.size !== undefined && have === meta.size) return;
    const { res, tokenSent, url } = await getFollowingRedirects(ctx, meta, have);
    const restart = () => {
      rmSync(incomplete, { force: true });
      have = 0;
      hash = createHash("sha256");
    };
    if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(header(res.headers, "content-range") ?? "")?.[1];
      if (start === undefined || Number(start) !== have) {
        res.discard();
        restart();
        throw new HubError(`${file}: server resumed at the wrong offset (${start ?? "no Content-Range"}); starting over`, "network");
      }
    } else if (res.status === 200) {
      if (have > 0) restart(); // the server ignored our Range: the body is the whole file
    } else if (res.status === 416) {
      res.discard();
      restart();
      throw new HubError(`${file}: server refused to resume (HTTP 416); starting over`, "network");
    } else if (!sameOrigin(url, ctx.settings.endpoint) && [401, 403, 410].includes(res.status)) {
      // A signed CDN URL expires (after an hour or so): a long download with retries can outlive it.
      // That is no access problem of the repository: ask the hub for a fresh URL and try again.
      res.discard();
      const fresh = await fetchFileMetadata(ctx, cache.repo, commit, file);
      if (fresh.etag !== meta.etag) {
        throw new HubError(`${file}: the hub now names another version (etag ${fresh.etag}, was ${meta.etag}) at commit ${commit}`, "integrity");
      }
      meta = fresh;
      throw new HubError(
        `${file}: the download server ${new URL(url).origin} refused the signed URL the hub gave (HTTP ${res.status}: ` +
          `expired or revoked; not a repository access problem, so not about HF_TOKEN)`,
        "network",
        res.status,
      );
    } else {
      res.discard();
      throw statusError(res, { repo: cache.repo, file }, tokenSent);
    }
    await appendBody(res, incomplete, meta, file, (chunk) => {
      hash.update(chunk);
      have += chunk.length;
      report(false);
    });
    if (meta.size !== undefined && have < meta.size) {
      throw new HubError(`${file}: connection closed at ${have} of ${meta.size} bytes`, "network");
    }
  }, () => have > haveBefore);

  if (meta.size !== undefined && have !== meta.size) {
    rmSync(incomplete, { force: true });
    throw new HubError(`${file}: downloaded ${have} bytes but the hub announced ${meta.size}; removed the partial file, run again`, "integrity");
  }
  if (expectedSha) {
    const actual = hash.digest("hex");
    if (actual !== expectedSha) {
      rmSync(incomplete, { force: true });
      throw new HubError(
        `${file}: sha256 mismatch (expected ${expectedSha}, got ${actual}); the corrupt download was removed, run again`,
        "integrity",
      );
    }
  }
  // The checks above are over the bytes we received, not the file: another program appending to the
  // same partial file (a second downloader that does not see our lock) leaves received bytes that
  // hash right inside a file that is not the blob. Only a file of exactly the announced size is kept.
  const onDisk = existsSync(incomplete) ? statSync(incomplete).size : -1;
  if (onDisk !== have) {
    rmSync(incomplete, { force: true });
    throw new HubError(
      `${file}: the partial file ${incomplete} holds ${onDisk < 0 ? "nothing (it was removed)" : `${onDisk} bytes`} ` +
        `but ${have} were downloaded; another program wrote to it at the same time. Removed it, run again`,
      "integrity",
    );
  }
  renameSync(incomplete, blob);
  report(true);
}

/**
 * GET the bytes from `have` on, following redirects; the token goes to the hub's origin only (a gated
 * repo's small files come from the hub's resolve-cache and need it), never to the CDN.
 */
async function getFollowingRedirects(
  ctx: HubContext, meta: FileMetadata, have: number,
): Promise<{ res: HttpResponse; tokenSent: boolean; url: string }> {
  let url = meta.location;
  let auth = hubAuth(ctx.settings, url);
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = { ...auth };
    if (have > 0) headers.range = `bytes=${have}-`;
    const res = await httpRequest("GET", url, { headers, timeoutMs: ctx.timeoutMs, proxy: ctx.settings.proxy });
    const location = header(res.headers, "location");
    if (res.status >= 300 && res.status < 400 && location) {
      res.discard();
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) auth = {};
      url = next.toString();
      continue;
    }
    return { res, tokenSent: auth.authorization !== undefined, url };
  }
  throw new HubError(`${meta.location}: too many redirects`, "http");
}

/** Append the body to `path`, each chunk written before it is counted (so a cut never skips bytes). */
async function appendBody(
  res: HttpResponse, path: string, meta: FileMetadata, file: string, onChunk: (chunk: Buffer) => void,
): Promise<void> {
  const fh = await open(path, "a");
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      try {
        await fh.write(chunk);
      } catch (err) {
        throw new HubError(`cannot write ${path}: ${(err as Error).message}`, "io");
      }
      onChunk(chunk);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof HubError) throw err;
    throw networkError(`${meta.location} (${file})`, err);
  } finally {
    await fh.close();
  }
}

function hashFilePrefix(path: string, hash: Hash): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve())
      .on("error", reject);
  });
}
