// Model sources: a local folder or .gguf file is used as is; a hub id ("user/repo", "user/repo:QUANT")
// is resolved to a snapshot folder (or GGUF file) in the hub cache, downloading what is missing.
// Mirrors huggingface_hub's snapshot_download: ask the hub which commit the revision is, record it in
// refs/, fetch each wanted file pinned to that commit; with no network or HF_HUB_OFFLINE, use the
// cache alone and say exactly what is missing.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fetchRepoInfo, type HubContext } from "./api.js";
import { COMMIT_HASH, RepoCache } from "./cache.js";
import { downloadToCache } from "./download.js";
import { HubError } from "./errors.js";
import { stderrProgress, type ProgressListener } from "./progress.js";
import {
  CONFIG_FILE, DEFAULT_MODEL_ID, SAFETENSORS_INDEX, parseModelSpec, pickGguf, pickHfFiles, shardsFromIndex,
} from "./select.js";
import { envFlag, hubSettings, type HubSettingsInput } from "./settings.js";

export interface HubOptions extends HubSettingsInput {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** true (default unless HF_HUB_DISABLE_PROGRESS_BARS): progress bars on stderr; false: silent; a function: events. */
  progress?: boolean | ProgressListener;
  /** Informational lines (which commit, cache fallbacks). Default: stderr. */
  log?: (line: string) => void;
  /** First wait between retries, ms (default 500, doubling). */
  retryDelayMs?: number;
  /** Idle timeout of a request, ms (default 30000). */
  timeoutMs?: number;
}

export interface ResolvedModel {
  /** What the loader opens: the snapshot folder, or the GGUF file inside it. */
  path: string;
  repo: string;
  revision: string;
  commit: string;
  /** Files of the snapshot that were fetched or found, relative to the snapshot folder. */
  files: string[];
  /** True when the hub was not asked (offline, pinned commit already cached, or hub unreachable). */
  fromCache: boolean;
}

/** A local path as is, else the downloaded (or cached) snapshot path of a hub id. */
export async function resolveModel(spec: string = DEFAULT_MODEL_ID, options: HubOptions = {}): Promise<string> {
  if (existsSync(spec)) return spec;
  try {
    return (await pullModel(spec, options)).path;
  } catch (err) {
    // "models/phi-2" may be a mistyped local path as much as a hub id: say both were tried.
    if (err instanceof HubError && /repository not found|not found, private or gated/.test(err.message)) {
      throw new HubError(`${err.message}. There is no local file or folder "${spec}" either.`, err.kind, err.status);
    }
    throw err;
  }
}

/** Download a hub model into the cache (or find it there). */
export async function pullModel(spec: string = DEFAULT_MODEL_ID, options: HubOptions = {}): Promise<ResolvedModel> {
  const { repo, quant } = parseModelSpec(spec);
  const settings = hubSettings(options);
  const revision = options.revision ?? "main";
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const progress = options.progress ?? !envFlag((options.env ?? process.env).HF_HUB_DISABLE_PROGRESS_BARS);
  const onProgress = progress === false ? undefined : typeof progress === "function" ? progress : stderrProgress();
  const ctx: HubContext = { settings, retryDelayMs: options.retryDelayMs ?? 500, timeoutMs: options.timeoutMs ?? 30_000, log };
  const cache = new RepoCache(settings.cacheDir, repo);

  if (settings.offline) {
    const found = fromCache(cache, repo, revision, quant);
    if ("missing" in found) {
      throw new HubError(
        `offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE) is on and ${spec} (revision ${revision}) is not complete in the cache ${cache.root}: ` +
          `missing ${found.missing.join(", ")}. Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE to download it (phi2 pull ${spec}).`,
        "offline",
      );
    }
    return found;
  }
  // A pinned commit that is fully cached needs no network at all (snapshots never change).
  if (COMMIT_HASH.test(revision)) {
    const found = fromCache(cache, repo, revision, quant);
    if (!("missing" in found)) return found;
  }

  let info;
  try {
    info = await fetchRepoInfo(ctx, repo, revision);
  } catch (err) {
    // Unreachable hub, or refused access (a private repo's token missing or revoked, as huggingface_hub
    // treats any HTTP error here): a complete cached snapshot of that revision still serves.
    if (!(err instanceof HubError) || (err.kind !== "network" && err.kind !== "auth")) throw err;
    const found = fromCache(cache, repo, revision, quant);
    if ("missing" in found) {
      if (err.kind === "auth") throw err;
      throw new HubError(`${err.message}; and the cache ${cache.root} lacks ${found.missing.join(", ")}`, "network");
    }
    log(`${err.message}; using the cached snapshot ${found.commit.slice(0, 10)} of ${repo}`);
    return found;
  }
  cache.writeRef(revision, info.sha);

  const wantsGguf = quant !== undefined || !info.files.some((f) => f.endsWith(".safetensors"));
  let files: string[];
  let entry: string | undefined;
  if (wantsGguf && info.files.some((f) => /\.gguf$/i.test(f))) {
    const choice = pickGguf(repo, info.files, quant);
    if (choice.note) log(choice.note);
    files = choice.files;
    entry = choice.entry;
  } else if (quant !== undefined) {
    throw new HubError(`${repo} has no .gguf files, so "${spec}" cannot pick one (drop ":${quant}" to use its safetensors)`, "not-found");
  } else {
    const choice = pickHfFiles(repo, info.files);
    files = choice.files;
  }
  log(`${repo}: revision ${revision} is commit ${info.sha.slice(0, 10)}; cache ${cache.root}`);
  for (const file of files) await downloadToCache(ctx, cache, info.sha, file, onProgress);
  if (files.includes(SAFETENSORS_INDEX)) {
    const indexText = readFileSync(cache.pointerPath(info.sha, SAFETENSORS_INDEX), "utf8");
    const shards = shardsFromIndex(repo, indexText, info.files);
    for (const shard of shards) await downloadToCache(ctx, cache, info.sha, shard, onProgress);
    files = [...files, ...shards];
  }
  const path = entry ? cache.pointerPath(info.sha, entry) : cache.snapshotDir(info.sha);
  return { path, repo, revision, commit: info.sha, files, fromCache: false };
}

/** Relative paths of the usable files (pointers whose blob exists) of a snapshot folder. */
function snapshotFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const entries = readdirSync(dir, { recursive: true, encoding: "utf8" });
  return entries.map((e) => e.split("\\").join("/")).filter((e) => existsSync(join(dir, e)) && !e.endsWith("/"));
}

/** The cached snapshot of `revision`, or the list of what is missing from it. */
export function fromCache(
  cache: RepoCache, repo: string, revision: string, quant: string | undefined,
): ResolvedModel | { missing: string[] } {
  const commit = cache.commitFor(revision);
  if (!commit) return { missing: [`refs/${revision} (nothing of revision "${revision}" was ever downloaded)`] };
  const dir = cache.snapshotDir(commit);
  const present = snapshotFiles(dir);
  if (present.length === 0) return { missing: [`snapshots/${commit}/ (empty or absent)`] };
  const base = { repo, revision, commit, fromCache: true };

  const hasGguf = present.some((f) => /\.gguf$/i.test(f));
  if (quant !== undefined || (hasGguf && !present.includes(CONFIG_FILE))) {
    try {
      const choice = pickGguf(repo, present, quant);
      return { ...base, path: join(dir, choice.entry), files: choice.files };
    } catch {
      return { missing: [quant ? `a GGUF file for quantization ${quant}` : "a .gguf file"] };
    }
  }
  const missing: string[] = [];
  if (!present.includes(CONFIG_FILE)) missing.push(CONFIG_FILE);
  let weights: string[];
  if (present.includes(SAFETENSORS_INDEX)) {
    let shards: string[];
    try {
      shards = shardsFromIndex(repo, readFileSync(join(dir, SAFETENSORS_INDEX), "utf8"), undefined);
    } catch (err) {
      return { missing: [`a readable ${SAFETENSORS_INDEX} (${(err as Error).message})`] };
    }
    missing.push(...shards.filter((s) => !present.includes(s)));
    weights = [SAFETENSORS_INDEX, ...shards];
  } else {
    weights = present.filter((f) => !f.includes("/") && f.endsWith(".safetensors"));
    if (weights.length === 0) missing.push("*.safetensors weights");
  }
  if (missing.length) return { missing };
  return { ...base, path: dir, files: present };
}
