// The phi2 playground: talks only to this server's OpenAI-compatible endpoints, streams with
// Server-Sent Events over fetch (so a Stop button can abort), no dependencies, no CDN.
// Chat -> /v1/chat/completions with the whole conversation; QA and Code -> /v1/completions with
// phi-2's model-card formats ("Instruct: ...\nOutput:", a code prefix to complete) and their stops.

const $ = (id) => document.getElementById(id);
const EOS_TEXT = "<|endoftext|>";
// Mirrors src/generation/formats.ts (defaultStops) for the formats sent through /v1/completions.
const QA_STOPS = ["\nInstruct:", "\nOutput:", EOS_TEXT];
const CODE_STOPS = ["\nclass", "\ndef", "\n#", "\n@", "\nif", "\nprint", EOS_TEXT];
const NUMERIC = ["temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens", "seed"];
const SAVED = [...NUMERIC, "system", "api_key"];

const state = {
  mode: "chat",
  /** Chat history sent with every chat request: {role, content}. */
  messages: [],
  controller: null,
  modelId: undefined,
};

// ---------- settings ----------
for (const id of SAVED) {
  const saved = localStorage.getItem(`phi2.${id}`);
  if (saved !== null) $(id).value = saved;
  $(id).addEventListener("change", () => localStorage.setItem(`phi2.${id}`, $(id).value));
}

function samplingParams() {
  const params = {};
  for (const id of NUMERIC) {
    const raw = $(id).value.trim();
    if (raw === "") continue;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`${id} must be a number`);
    params[id] = n;
  }
  return params;
}

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

// ---------- server status ----------
async function refreshStatus() {
  const badge = $("health");
  try {
    const health = await fetch("/health").then((r) => r.json());
    badge.textContent = health.status === "ok" ? "ready" : health.status;
    badge.className = `badge ${health.status === "ok" ? "ok" : health.status === "error" ? "bad" : ""}`;
    if (health.status !== "ok") {
      setTimeout(refreshStatus, 1000);
      return;
    }
    const res = await fetch("/v1/models", { headers: headers() });
    if (res.status === 401) {
      $("model").textContent = "API key needed (see Server, right)";
      return;
    }
    const models = await res.json();
    state.modelId = models.data?.[0]?.id;
    $("model").textContent = state.modelId ?? "?";
  } catch {
    badge.textContent = "offline";
    badge.className = "badge bad";
    setTimeout(refreshStatus, 2000);
  }
}
$("api_key").addEventListener("change", refreshStatus);

// ---------- modes ----------
const PLACEHOLDERS = {
  chat: "Message (Enter sends, Shift+Enter for a new line)",
  qa: "A question or an instruction, answered as Instruct: … Output:",
  code: 'A Python signature and docstring to complete, e.g.\ndef is_prime(n):\n    """Return True if n is prime."""',
};
function setMode(mode) {
  state.mode = mode;
  for (const b of document.querySelectorAll("#modes button")) b.setAttribute("aria-selected", String(b.dataset.mode === mode));
  $("prompt").placeholder = PLACEHOLDERS[mode];
  $("prompt").classList.toggle("code-input", mode === "code");
}
for (const b of document.querySelectorAll("#modes button")) b.addEventListener("click", () => setMode(b.dataset.mode));

// ---------- rendering ----------
function addMessage(role, label) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  const head = document.createElement("div");
  head.className = "role";
  head.textContent = label;
  const content = document.createElement("div");
  content.className = "content";
  el.append(head, content);
  $("log").append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

function codeBlock(code, promptPart = "") {
  const wrap = document.createElement("div");
  wrap.className = "code";
  const pre = document.createElement("pre");
  const el = document.createElement("code");
  if (promptPart) {
    const p = document.createElement("span");
    p.className = "prompt-part";
    p.textContent = promptPart;
    el.append(p);
  }
  el.append(document.createTextNode(code));
  pre.append(el);
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy";
  copy.textContent = "Copy";
  copy.addEventListener("click", async () => {
    await copyText(promptPart + code);
    copy.textContent = "Copied";
    setTimeout(() => (copy.textContent = "Copy"), 1500);
  });
  wrap.append(copy, pre);
  return wrap;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const t = document.createElement("textarea"); // non-secure origins have no clipboard API
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
}

/** Text with ``` fenced blocks shown as code blocks (an unclosed fence while streaming counts too). */
function renderRich(container, text) {
  container.replaceChildren();
  const parts = text.split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) container.append(document.createTextNode(part));
    } else {
      const newline = part.indexOf("\n");
      const code = newline >= 0 ? part.slice(newline + 1) : part; // drop the language tag line
      container.append(codeBlock(code.replace(/\n$/, "")));
    }
  });
}

function showStats(s) {
  const parts = [`${s.tokens} tokens`];
  if (s.tokensPerSec !== undefined) parts.push(`${s.tokensPerSec.toFixed(1)} tok/s`);
  if (s.firstTokenMs !== undefined) parts.push(`first token ${Math.round(s.firstTokenMs)} ms`);
  if (s.promptTokens !== undefined) parts.push(`prompt ${s.promptTokens}`);
  parts.push(s.finish);
  $("stats").textContent = parts.join(" · ");
}

// ---------- streaming ----------
/** Parses an SSE body into JSON events until "data: [DONE]". */
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    return body.error?.message ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/**
 * POST a streaming request; calls onText(piece) as text arrives. Returns the stats. Throws on HTTP
 * errors; an abort (Stop) ends quietly with finish "stopped".
 */
async function stream(path, body, onText) {
  state.controller = new AbortController();
  const started = performance.now();
  let firstAt;
  let lastAt;
  let pieces = 0;
  let usage;
  let finish = "done";
  try {
    const res = await fetch(path, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal: state.controller.signal,
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    for await (const event of sseEvents(res)) {
      if (event.error) throw new Error(event.error.message ?? "server error");
      if (event.usage) usage = event.usage;
      const choice = event.choices?.[0];
      if (!choice) continue;
      const text = choice.delta?.content ?? choice.text ?? "";
      if (text) {
        lastAt = performance.now();
        firstAt ??= lastAt;
        pieces++;
        onText(text);
        if (usage === undefined) showStats({ tokens: pieces, finish: "streaming…" });
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  } catch (err) {
    if (err.name !== "AbortError") throw err;
    finish = "stopped";
  } finally {
    state.controller = null;
  }
  const tokens = usage?.completion_tokens ?? pieces;
  const seconds = firstAt !== undefined && lastAt > firstAt ? (lastAt - firstAt) / 1000 : undefined;
  return {
    tokens,
    // Tokens after the first, over the time after the first: the decode speed, prefill excluded.
    tokensPerSec: seconds ? Math.max(tokens - 1, 1) / seconds : undefined,
    firstTokenMs: firstAt !== undefined ? firstAt - started : undefined,
    promptTokens: usage?.prompt_tokens,
    finish,
  };
}

// ---------- sending ----------
function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function send() {
  const text = $("prompt").value;
  if (!text.trim() || state.controller) return;
  let params;
  try {
    params = samplingParams();
  } catch (err) {
    $("stats").textContent = err.message;
    return;
  }
  $("prompt").value = "";
  setBusy(true);
  const mode = state.mode;
  const user = addMessage("user", mode === "chat" ? "you" : mode === "qa" ? "instruct" : "code prompt");
  if (mode === "code") user.querySelector(".content").append(codeBlock(text));
  else user.querySelector(".content").textContent = text;
  const reply = addMessage("assistant streaming", mode === "chat" ? "phi-2" : mode === "qa" ? "output" : "completion");
  const content = reply.querySelector(".content");
  let out = "";
  const common = { ...(state.modelId ? { model: state.modelId } : {}), ...params };
  try {
    let stats;
    if (mode === "chat") {
      const system = $("system").value.trim();
      const messages = [...(system ? [{ role: "system", content: system }] : []), ...state.messages, { role: "user", content: text }];
      state.messages.push({ role: "user", content: text });
      stats = await stream("/v1/chat/completions", { ...common, messages }, (piece) => {
        out += piece;
        renderRich(content, out.trimStart());
        reply.scrollIntoView({ block: "end" });
      });
      state.messages.push({ role: "assistant", content: out.trim() });
    } else if (mode === "qa") {
      stats = await stream("/v1/completions", { ...common, prompt: `Instruct: ${text.trim()}\nOutput:`, stop: QA_STOPS }, (piece) => {
        out += piece;
        renderRich(content, out.trimStart());
        reply.scrollIntoView({ block: "end" });
      });
    } else {
      stats = await stream("/v1/completions", { ...common, prompt: text, stop: CODE_STOPS }, (piece) => {
        out += piece;
        content.replaceChildren(codeBlock(out, text));
        reply.scrollIntoView({ block: "end" });
      });
    }
    showStats(stats);
    if (!out) content.textContent = stats.finish === "stopped" ? "(stopped)" : "(no text)";
  } catch (err) {
    const e = document.createElement("div");
    e.className = "error";
    e.textContent = err.message;
    content.append(e);
    $("stats").textContent = "error";
    if (mode === "chat" && state.messages.at(-1)?.role === "user") state.messages.pop();
  } finally {
    reply.classList.remove("streaming");
    setBusy(false);
    $("prompt").focus();
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  void send();
});
$("prompt").addEventListener("keydown", (e) => {
  // Enter sends (except in code mode, where Enter is a new line and Ctrl/Cmd+Enter sends).
  const sendKey = state.mode === "code" ? e.key === "Enter" && (e.ctrlKey || e.metaKey) : e.key === "Enter" && !e.shiftKey;
  if (sendKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
$("stop").addEventListener("click", () => state.controller?.abort());
$("settings-form").addEventListener("submit", (e) => e.preventDefault()); // Enter in a field must not reload
$("clear").addEventListener("click", () => {
  state.controller?.abort();
  state.messages = [];
  $("log").replaceChildren();
  $("stats").textContent = "";
});

setMode("chat");
void refreshStatus();
