// Snapshot pointers made by two processes at the same instant. The other process is staged
// synchronously from inside our first symlinkSync (fs.symlinkSync patched for the test).
import assert from "node:assert/strict";
import fs, { mkdtempSync, readdirSync, readlinkSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RepoCache } from "../../src/hub/cache.js";

test("two processes linking the same snapshot file at once both succeed, leaving one link to the blob", () => {
  const cache = new RepoCache(mkdtempSync(join(tmpdir(), "phi2-cache-")), "acme/tiny");
  const commit = "a".repeat(40);
  const etag = "b".repeat(64);
  const realSymlink = fs.symlinkSync;
  let fired = false;
  fs.symlinkSync = function (...args: Parameters<typeof realSymlink>) {
    if (!fired) {
      fired = true; // we are about to create the link: the other process does it first
      cache.linkPointer(commit, "config.json", etag);
    }
    return realSymlink.apply(fs, args);
  } as typeof realSymlink;
  syncBuiltinESMExports();
  try {
    assert.equal(cache.linkPointer(commit, "config.json", etag), cache.pointerPath(commit, "config.json"));
  } finally {
    fs.symlinkSync = realSymlink;
    syncBuiltinESMExports();
  }
  assert.ok(fired, "the race was staged");
  assert.equal(readlinkSync(cache.pointerPath(commit, "config.json")), `../../blobs/${etag}`);
  assert.deepEqual(readdirSync(cache.snapshotDir(commit)), ["config.json"], "no temp link left");
});
