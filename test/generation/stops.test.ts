import { test } from "node:test";
import assert from "node:assert/strict";
import { StopMatcher } from "../../src/generation/stops.js";

/** Feeds pieces one by one; returns everything emitted (flush included unless stopped) and whether it stopped. */
function run(stops: string[], pieces: string[]): { out: string; stopped: boolean; emits: string[] } {
  const m = new StopMatcher(stops);
  const emits: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const r = m.push(p);
    emits.push(r.emit);
    stopped = r.stopped;
    if (stopped) break;
  }
  if (!stopped) emits.push(m.flush());
  return { out: emits.join(""), stopped, emits };
}

test("a stop string split across pieces stops, and neither it nor what follows is emitted", () => {
  const r = run(["\nAlice:"], ["Hello", " there", "\n", "Al", "ice", ": more", " text"]);
  assert.equal(r.out, "Hello there");
  assert.equal(r.stopped, true);
});

test("a stop string inside one piece cuts that piece", () => {
  const r = run(["STOP"], ["abc", "deSTOPfg"]);
  assert.deepEqual(r.emits, ["abc", "de"]);
  assert.equal(r.stopped, true);
});

test("text that only looks like the start of a stop is held, then released", () => {
  const m = new StopMatcher(["\nAlice:"]);
  assert.deepEqual(m.push("Hi\n"), { emit: "Hi", stopped: false });
  assert.deepEqual(m.push("Al"), { emit: "", stopped: false });
  assert.deepEqual(m.push("bert"), { emit: "\nAlbert", stopped: false });
  assert.deepEqual(m.push("\nAli"), { emit: "", stopped: false });
  assert.equal(m.flush(), "\nAli"); // the end came before the stop completed
});

test("the earliest of several stop strings wins", () => {
  const m = new StopMatcher(["world", "lo w"]);
  const r = m.push("hello world");
  assert.deepEqual(r, { emit: "hel", stopped: true });
  assert.equal(m.matched, "lo w");
});

test("after stopping nothing more comes out", () => {
  const m = new StopMatcher(["x"]);
  assert.deepEqual(m.push("ax"), { emit: "a", stopped: true });
  assert.deepEqual(m.push("more"), { emit: "", stopped: true });
  assert.equal(m.flush(), "");
});

test("no stops: text passes straight through; empty stop strings are ignored", () => {
  assert.deepEqual(run([], ["a", "b"]).emits, ["a", "b", ""]);
  assert.deepEqual(run([""], ["a", "b"]).emits, ["a", "b", ""]);
});

test("holding is minimal: only a suffix that can still become a stop", () => {
  const m = new StopMatcher(["abc"]);
  assert.deepEqual(m.push("xxab"), { emit: "xx", stopped: false });
  assert.deepEqual(m.push("d"), { emit: "abd", stopped: false });
  assert.deepEqual(m.push("aab"), { emit: "a", stopped: false }); // "aab": "a" cannot start "abc" here, "ab" can
  assert.deepEqual(m.push("c"), { emit: "", stopped: true });
});
