// Where the playground's static files are (src/web, shipped as is: tsc does not touch them) and how
// to serve them. The server registers PLAYGROUND_ASSETS as public GET routes; nothing else is served.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface PlaygroundAsset {
  /** URL path. */
  path: string;
  /** File name inside webRoot(). */
  file: string;
  contentType: string;
}

export const PLAYGROUND_ASSETS: readonly PlaygroundAsset[] = [
  { path: "/", file: "index.html", contentType: "text/html; charset=utf-8" },
  { path: "/app.js", file: "app.js", contentType: "text/javascript; charset=utf-8" },
  { path: "/style.css", file: "style.css", contentType: "text/css; charset=utf-8" },
];

let root: string | undefined;

/**
 * The src/web folder of this package. This module runs from dist/src/ (compiled) or src/ (a TS
 * runner), so walk up from it to the folder holding package.json, then into src/web.
 */
export function webRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "src", "web");
    if (existsSync(join(dir, "package.json")) && existsSync(join(candidate, "index.html"))) return (root = candidate);
    dir = dirname(dir);
  }
  throw new Error(`playground files not found: no src/web/index.html above ${fileURLToPath(import.meta.url)}`);
}

/** The bytes and content type of a playground URL path, or undefined when it is not one. */
export function readPlaygroundAsset(path: string): { body: Buffer; contentType: string } | undefined {
  const asset = PLAYGROUND_ASSETS.find((a) => a.path === path);
  if (!asset) return undefined;
  return { body: readFileSync(join(webRoot(), asset.file)), contentType: asset.contentType };
}
