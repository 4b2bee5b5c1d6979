// The hub cache layout of huggingface_hub (file_download.py), byte for byte, so a model pulled by
// phi2 is found by transformers and vice versa:
//
//   {cache}/models--{user}--{repo}/
//     blobs/{etag}                      the file's bytes (etag = sha256 for LFS files, git sha1 otherwise)
//     blobs/{etag}.incomplete           huggingface_hub's download in progress (phi2 never touches it)
//     blobs/{etag}.phi2.incomplete      phi2's download in progress (never read as a model file)
//     refs/{revision}                   the commit hash a branch or tag pointed to when last resolved
//     snapshots/{commit}/{file}         relative symlink -> ../../blobs/{etag}
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

export class RepoCache {
  /** models--{user}--{repo} inside the cache folder. */
  readonly root: string;

  constructor(readonly cacheDir: string, readonly repo: string) {
    this.root = join(cacheDir, ["models", ...repo.split("/")].join("--"));
  }

  blobPath(etag: string): string {
    return join(this.root, "blobs", etag);
  }

  /**
   * phi2's partial file. Not huggingface_hub's {etag}.incomplete: its lock is a flock() on
   * {cache}/.locks/models--{user}--{repo}/{etag}.lock, which phi2 cannot take from Node, so a phi2 and a
   * transformers download of the same file at once would interleave their bytes in one file. Separate
   * partial files cannot mix; the final rename to blobs/{etag} is atomic and both produce the same bytes.
   */
  incompletePath(etag: string): string {
    return this.blobPath(etag) + ".phi2.incomplete";
  }

  /** Between phi2 processes (named as before the partial file moved, so older phi2s still see it). */
  lockPath(etag: string): string {
    return this.blobPath(etag) + ".incomplete.phi2-lock";
  }

  snapshotDir(commit: string): string {
    return join(this.root, "snapshots", commit);
  }

  pointerPath(commit: string, file: string): string {
    return join(this.snapshotDir(commit), ...file.split("/"));
  }

  /** Commit hash for a revision: the revision itself when it is one, else what refs/{revision} says. */
  commitFor(revision: string): string | undefined {
    if (COMMIT_HASH.test(revision)) return revision;
    const refPath = join(this.root, "refs", revision);
    if (!existsSync(refPath)) return undefined;
    const commit = readFileSync(refPath, "utf8").trim();
    return commit || undefined;
  }

  /** Record which commit a branch/tag resolved to (huggingface_hub writes the bare hash, no newline). */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const refPath = join(this.root, "refs", revision);
    if (existsSync(refPath) && readFileSync(refPath, "utf8") === commit) return;
    mkdirSync(dirname(refPath), { recursive: true });
    writeFileSync(refPath, commit);
  }

  /**
   * Make snapshots/{commit}/{file} a relative symlink to the blob (replacing whatever was there). The
   * link is made under a private name and renamed over the pointer, which is atomic: two processes
   * linking the same file at once (outside any lock) both succeed instead of one getting EEXIST, and
   * a reader never sees the pointer missing.
   */
  linkPointer(commit: string, file: string, etag: string): string {
    const pointer = this.pointerPath(commit, file);
    mkdirSync(dirname(pointer), { recursive: true });
    const temp = `${pointer}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
    symlinkSync(relative(dirname(pointer), this.blobPath(etag)), temp);
    try {
      renameSync(temp, pointer);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    return pointer;
  }

  /** A pointer is usable when it exists and (if a symlink) its blob exists too. */
  hasFile(commit: string, file: string): boolean {
    return existsSync(this.pointerPath(commit, file));
  }
}
