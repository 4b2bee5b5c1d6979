// The playground in a real browser (playwright-core + Debian's chromium) against a real server on a
// tiny random model: type a prompt, watch text stream in, stop a long generation, use QA and code
// modes, copy a code block. A screenshot goes to test-artifacts/playground.png.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { PLAYGROUND_ASSETS, readPlaygroundAsset } from "../../src/index.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { makeTestModel } from "../../src/testing/make-test-model.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = fileURLToPath(new URL("../../../test-artifacts/", import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (apt-get install chromium)`;

let server: RunningServer;
let url: string;
let browser: Browser;
let page: Page;
const posted: Array<{ path: string; body: Record<string, unknown> }> = [];
const pageErrors: string[] = [];
const requestedUrls: string[] = [];

before(async () => {
  if (skip) return;
  const dir = mkdtempSync(join(tmpdir(), "phi2-web-"));
  makeTestModel({ preset: "tiny", dtype: "f32", seed: 11, out: join(dir, "model") });
  server = await startServer({ model: join(dir, "model"), port: 0, parallel: 2, threads: 1 });
  await server.ready;
  url = server.url;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run"],
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: url });
  page = await context.newPage();
  page.on("request", (r) => {
    requestedUrls.push(r.url());
    if (r.method() === "POST") posted.push({ path: new URL(r.url()).pathname, body: JSON.parse(r.postData() ?? "{}") });
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") pageErrors.push(m.text());
  });
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  await server?.shutdown(100);
});

/** Text of the last assistant message. */
const lastReply = () => page.locator(".msg.assistant .content").last().innerText();

/** Records every distinct length the last reply goes through until the stream ends. */
async function watchLengths(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { lengths: number[] };
    w.lengths = [];
    const observer = new MutationObserver(() => {
      const el = Array.from(document.querySelectorAll(".msg.assistant .content")).at(-1);
      const n = el?.textContent?.length ?? 0;
      if (w.lengths.at(-1) !== n) w.lengths.push(n);
    });
    observer.observe(document.getElementById("log")!, { childList: true, subtree: true, characterData: true });
  });
}

test("the server serves the playground's files at / without an API key, and nothing from a CDN", { skip }, async () => {
  for (const asset of PLAYGROUND_ASSETS) {
    const res = await fetch(`${url}${asset.path}`);
    assert.equal(res.status, 200, asset.path);
    assert.equal(res.headers.get("content-type"), asset.contentType);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readPlaygroundAsset(asset.path)!.body);
  }
  const html = readPlaygroundAsset("/")!.body.toString();
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, "every file is local");
});

test("chat: a typed prompt streams in, with token count and tokens/s", { skip }, async () => {
  await page.locator("#health.ok").waitFor({ timeout: 30_000 });
  assert.equal(await page.locator("#model").innerText(), "model");
  await page.fill("#max_tokens", "24");
  await page.fill("#temperature", "0");
  await watchLengths();
  await page.fill("#prompt", "Hello, who are you?");
  await page.keyboard.press("Enter");
  await page.locator("#stop:disabled").waitFor({ timeout: 30_000 });
  const lengths = await page.evaluate(() => (window as unknown as { lengths: number[] }).lengths);
  assert.ok(lengths.filter((n) => n > 0).length >= 3, `text arrived in pieces: ${lengths.join(",")}`);
  assert.ok((await lastReply()).length > 0);
  assert.match(await page.locator("#stats").innerText(), /^24 tokens · [\d.]+ tok\/s · first token \d+ ms · prompt \d+ · length$/);
  const req = posted.at(-1)!;
  assert.equal(req.path, "/v1/chat/completions");
  assert.equal(req.body.stream, true);
  assert.equal(req.body.temperature, 0);
  assert.equal(req.body.max_tokens, 24);
  assert.deepEqual(req.body.messages, [{ role: "user", content: "Hello, who are you?" }]);

  // The second turn sends the whole conversation.
  await page.fill("#prompt", "And then?");
  await page.keyboard.press("Enter");
  await page.locator("#stop:disabled").waitFor({ timeout: 30_000 });
  const messages = posted.at(-1)!.body.messages as Array<{ role: string }>;
  assert.deepEqual(messages.map((m) => m.role), ["user", "assistant", "user"]);
});

test("the Stop button ends a long generation and the text stops growing", { skip }, async () => {
  await page.fill("#max_tokens", "1500");
  await page.fill("#prompt", "Tell me a very long story.");
  await page.click("#send");
  await page.waitForFunction(() => (Array.from(document.querySelectorAll(".msg.assistant .content")).at(-1)?.textContent?.length ?? 0) > 20);
  await page.click("#stop");
  await page.locator("#stop:disabled").waitFor({ timeout: 10_000 });
  assert.match(await page.locator("#stats").innerText(), /stopped$/);
  const tokens = Number(/^(\d+) tokens/.exec(await page.locator("#stats").innerText())?.[1]);
  assert.ok(tokens > 0 && tokens < 1500, `stopped after ${tokens} tokens`);
  const text = await lastReply();
  await page.waitForTimeout(500);
  assert.equal(await lastReply(), text, "no more text after Stop");
  // The server is free again: /health shows no slot busy once the abort reached it.
  for (let i = 0; i < 50; i++) {
    const health = (await (await fetch(`${server.url}/health`)).json()) as { slots_processing: number };
    if (health.slots_processing === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const health = (await (await fetch(`${server.url}/health`)).json()) as { slots_processing: number };
  assert.equal(health.slots_processing, 0);
});

test("QA and code modes use the model-card formats; code blocks have a working copy button", { skip }, async () => {
  await page.fill("#max_tokens", "16");
  await page.click('#modes button[data-mode="qa"]');
  await page.fill("#prompt", "What is a prime number?");
  await page.keyboard.press("Enter");
  await page.locator("#stop:disabled").waitFor({ timeout: 30_000 });
  let req = posted.at(-1)!;
  assert.equal(req.path, "/v1/completions");
  assert.equal(req.body.prompt, "Instruct: What is a prime number?\nOutput:");
  assert.ok((req.body.stop as string[]).includes("\nInstruct:"));

  await page.click('#modes button[data-mode="code"]');
  const code = 'def is_prime(n):\n    """Return True if n is prime."""\n';
  await page.fill("#prompt", code);
  await page.keyboard.press("Control+Enter");
  await page.locator("#stop:disabled").waitFor({ timeout: 30_000 });
  req = posted.at(-1)!;
  assert.equal(req.body.prompt, code);
  assert.ok((req.body.stop as string[]).includes("\ndef"));
  const block = page.locator(".msg.assistant .code").last();
  const shown = await block.locator("pre").innerText();
  assert.ok(shown.startsWith(code.trimEnd()), "the completion is shown after its prompt");
  await block.locator("button.copy").click();
  await page.locator(".msg.assistant .code button.copy", { hasText: "Copied" }).last().waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, shown);

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "playground.png"), fullPage: true });
  assert.deepEqual(pageErrors, [], "no errors or warnings in the browser console");
  assert.deepEqual(requestedUrls.filter((u) => !u.startsWith(url) && !u.startsWith("data:")), [], "the page only talks to its server");
});

test("chat replies render fenced code as a copyable block; server errors are shown in the reply", { skip }, async () => {
  // A canned stream (the tiny model writes no code): exercises the SSE parser and the chat renderer.
  const deltas = ["Here you are:\n``", "`python\nprint(", "'hi')\n```\nThat is all."];
  const events = [
    { choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] },
    ...deltas.map((content) => ({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })),
    { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
    { choices: [], usage: { prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 } },
  ];
  const body = events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join("") + "data: [DONE]\n\n";
  await page.route("**/v1/chat/completions", (route) => route.fulfill({ status: 200, contentType: "text/event-stream", body }));
  try {
    await page.click('#modes button[data-mode="chat"]');
    await page.fill("#prompt", "Show me code");
    await page.keyboard.press("Enter");
    await page.locator("#stop:disabled").waitFor();
    const reply = page.locator(".msg.assistant").last();
    assert.equal(await reply.locator(".code pre").innerText(), "print('hi')");
    assert.match(await reply.locator(".content").innerText(), /^Here you are:\n/);
    assert.match(await reply.locator(".content").innerText(), /That is all\.$/);
    assert.match(await page.locator("#stats").innerText(), /^9 tokens .*prompt 7 · stop$/);
    await reply.locator("button.copy").click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "print('hi')");

    await page.unroute("**/v1/chat/completions");
    await page.route("**/v1/chat/completions", (route) =>
      route.fulfill({ status: 400, contentType: "application/json", body: JSON.stringify({ error: { message: "'temperature' must be at most 2.", type: "invalid_request_error" } }) }));
    await page.fill("#prompt", "again");
    await page.keyboard.press("Enter");
    await page.locator("#stop:disabled").waitFor();
    assert.equal(await page.locator(".msg.assistant .error").last().innerText(), "'temperature' must be at most 2.");
  } finally {
    await page.unroute("**/v1/chat/completions");
  }
  // The failed turn is not kept: the next request carries only the successful exchanges.
  await page.fill("#max_tokens", "4");
  await page.fill("#prompt", "last");
  await page.keyboard.press("Enter");
  await page.locator("#stop:disabled").waitFor({ timeout: 30_000 });
  const messages = posted.at(-1)!.body.messages as Array<{ role: string; content: string }>;
  assert.deepEqual(messages.slice(-3).map((m) => m.content), ["Show me code", "Here you are:\n```python\nprint('hi')\n```\nThat is all.", "last"]);
  pageErrors.splice(0); // the 400 above is logged by the browser on purpose
});
