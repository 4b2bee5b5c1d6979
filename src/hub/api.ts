// The two hub questions huggingface_hub asks before downloading (hf_api.repo_info and
// file_download.get_hf_file_metadata): which files does this revision hold, and what are one
// file's commit, etag, size and download location.
import { HubError } from "./errors.js";
import { header, httpRequest, isTransientStatus, readText, withRetries, type HttpResponse } from "./http.js";
import type { HubSettings } from "./settings.js";

export interface HubContext {
  settings: HubSettings;
  /** First wait between retries (doubles each try). */
  retryDelayMs: number;
  /** Idle timeout of one request. */
  timeoutMs: number;
  /** Informational lines (waiting for a lock, falling back to the cache). */
  log?: (line: string) => void;
}

export interface RepoInfo {
  /** Commit hash the revision points to. */
  sha: string;
  /** Every file of the repository at that commit, by path ("rfilename"). */
  files: string[];
}

export interface FileMetadata {
  /** X-Repo-Commit: the commit the file was resolved at. */
  commit: string;
  /** Normalised X-Linked-Etag (sha256 of an LFS file) or ETag (git blob sha1 of a regular file). */
  etag: string;
  /** X-Linked-Size or Content-Length: bytes of the real file (not of an LFS pointer). */
  size?: number;
  /**
   * Where to GET the bytes: the resolve URL itself, or the URL it redirects to (the CDN for an LFS
   * file, where the token must not go; the hub's resolve-cache or a renamed repository, where it must).
   */
  location: string;
}

export interface RepoRef {
  repo: string;
  revision?: string;
  file?: string;
}

export function authHeaders(settings: HubSettings): Record<string, string> {
  return settings.token ? { authorization: `Bearer ${settings.token}` } : {};
}

export function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/**
 * The Authorization header for a request to `url`: the token on the hub's own origin only. huggingface_hub
 * keeps Authorization on a redirect within one host and drops it for another: the token is for the hub,
 * and a signed CDN URL refuses a second credential.
 */
export function hubAuth(settings: HubSettings, url: string): Record<string, string> {
  return sameOrigin(url, settings.endpoint) ? authHeaders(settings) : {};
}

/** hf_hub_url: {endpoint}/{repo}/resolve/{revision}/{file}, revision fully escaped, file per segment. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const path = file.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** Turn a failed response into a message that tells the user what to do. */
export function statusError(res: HttpResponse, ref: RepoRef, tokenSent: boolean): HubError {
  const code = header(res.headers, "x-error-code");
  const hubMessage = header(res.headers, "x-error-message");
  const what = ref.file ? `${ref.repo}/${ref.file}` : ref.repo;
  const detail = hubMessage ? ` (hub says: ${hubMessage})` : "";
  if (res.status === 401 || res.status === 403) {
    const fix = tokenSent
      ? `the HF_TOKEN sent was refused: request access on ${ref.repo}'s model page and check the token has read permission`
      : `if the repository is gated or private, accept its terms on its model page and set HF_TOKEN to an access token (https://huggingface.co/settings/tokens)`;
    const kind = code === "GatedRepo" ? "is gated" : tokenSent ? "access denied" : "not found, private or gated";
    return new HubError(`${what}: ${kind} (HTTP ${res.status})${detail}; ${fix}`, "auth", res.status);
  }
  if (res.status === 404) {
    if (code === "RevisionNotFound") {
      return new HubError(`${ref.repo}: revision "${ref.revision}" not found${detail}`, "not-found", 404);
    }
    if (code === "EntryNotFound" || (ref.file && code !== "RepoNotFound")) {
      return new HubError(`${ref.repo}: file "${ref.file}" not found at revision ${ref.revision}${detail}`, "not-found", 404);
    }
    return new HubError(`${ref.repo}: repository not found on the hub${detail} (is the name right? user/repo)`, "not-found", 404);
  }
  const err = new HubError(`${what}: unexpected HTTP ${res.status} from ${res.url}${detail}`, "http", res.status);
  // Transient statuses are retried like network errors.
  return isTransientStatus(res.status) ? new HubError(err.message, "network", res.status) : err;
}

/** Redirects an API call follows: a renamed repository answers one 307 to its new name. */
const API_REDIRECTS = 5;

/**
 * GET {endpoint}/api/models/{repo}/revision/{revision}: the commit and its file list. Redirects are
 * followed (a renamed repository's API URL answers 307 to the new name, as requests would follow it
 * for huggingface_hub), the token kept on the hub's origin only.
 */
export async function fetchRepoInfo(ctx: HubContext, repo: string, revision: string): Promise<RepoInfo> {
  const { settings } = ctx;
  const start = `${settings.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  return withRetries(3, ctx.retryDelayMs, async () => {
    let url = start;
    let res: HttpResponse;
    let auth: Record<string, string>;
    for (let hop = 0; ; hop++) {
      auth = hubAuth(settings, url);
      res = await httpRequest("GET", url, { headers: { ...auth, accept: "application/json" }, timeoutMs: ctx.timeoutMs, proxy: ctx.settings.proxy });
      const location = header(res.headers, "location");
      if (res.status < 300 || res.status >= 400 || location === undefined) break;
      res.discard();
      if (hop === API_REDIRECTS) throw new HubError(`${start}: more than ${API_REDIRECTS} redirects`, "http", res.status);
      url = new URL(location, url).toString();
    }
    if (res.status !== 200) {
      res.discard();
      throw statusError(res, { repo, revision }, auth.authorization !== undefined);
    }
    const text = await readText(res);
    let info: { sha?: unknown; siblings?: Array<{ rfilename?: unknown }> };
    try {
      info = JSON.parse(text);
    } catch {
      throw new HubError(`${url}: answer is not JSON (is ${settings.endpoint} a Hugging Face hub?)`, "http", res.status);
    }
    if (typeof info.sha !== "string" || !Array.isArray(info.siblings)) {
      throw new HubError(`${url}: answer lacks "sha" or "siblings" (is ${settings.endpoint} a Hugging Face hub?)`, "http", res.status);
    }
    const files = info.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string");
    return { sha: info.sha, files };
  });
}

/** huggingface_hub strips the quotes (and a weak-validator prefix) to use an etag as a file name. */
export function normaliseEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, "").replace(/^"|"$/g, "") || undefined;
}

/** A Location without scheme and host ("/api/resolve-cache/...") stays on the hub. */
function isRelativeLocation(location: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//");
}

/**
 * HEAD the resolve URL as get_hf_file_metadata does: relative redirects (a renamed repository, the
 * hub's resolve-cache for small files) are followed, an absolute one (an LFS file on the CDN) is not:
 * its Location is where the bytes are, and that 302 carries the metadata. Hub headers seen on an
 * earlier hop fill in what a later one lacks.
 */
export async function fetchFileMetadata(ctx: HubContext, repo: string, revision: string, file: string): Promise<FileMetadata> {
  const { settings } = ctx;
  const resolveAt = resolveUrl(settings.endpoint, repo, revision, file);
  return withRetries(3, ctx.retryDelayMs, async () => {
    let url = resolveAt;
    let commit: string | undefined;
    let linkedEtag: string | undefined;
    let linkedSize: string | undefined;
    for (let hop = 0; hop < 10; hop++) {
      // Only the hub's own origin ever sees the token, whatever host a redirect points to.
      const auth = hubAuth(settings, url);
      const res = await httpRequest("HEAD", url, { headers: auth, timeoutMs: ctx.timeoutMs, proxy: ctx.settings.proxy });
      res.discard();
      if (res.status >= 400) throw statusError(res, { repo, revision, file }, auth.authorization !== undefined);
      commit = header(res.headers, "x-repo-commit") ?? commit;
      linkedEtag = header(res.headers, "x-linked-etag") ?? linkedEtag;
      linkedSize = header(res.headers, "x-linked-size") ?? linkedSize;
      const location = header(res.headers, "location");
      const isRedirect = res.status >= 300 && res.status < 400 && location !== undefined;
      const hubHeaders = header(res.headers, "x-repo-commit") !== undefined || header(res.headers, "x-linked-etag") !== undefined;
      if (isRedirect && (isRelativeLocation(location!) || !hubHeaders)) {
        url = new URL(location!, url).toString();
        continue;
      }
      if (!commit) {
        throw new HubError(`${url}: no X-Repo-Commit header; ${settings.endpoint} does not look like a Hugging Face hub`, "http", res.status);
      }
      const etag = normaliseEtag(linkedEtag ?? header(res.headers, "etag"));
      if (!etag) throw new HubError(`${url}: no ETag header; cannot cache the file reproducibly`, "http", res.status);
      const sizeText = linkedSize ?? header(res.headers, "content-length");
      const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
      const bytesAt = isRedirect ? new URL(location!, url).toString() : url;
      return { commit, etag, size, location: bytesAt };
    }
    throw new HubError(`${repo}/${file}: too many redirects`, "http");
  });
}
