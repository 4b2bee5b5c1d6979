// The seeded PRNG: every safe integer seed has its own stream (the server takes OpenAI's 64-bit seeds).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng, splitmix64 } from "../../src/generation/rng.js";

const draws = (seed: number, n = 8): number[] => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.nextUint32());
};

test("splitmix64 gives the reference outputs (Vigna's splitmix64.c, seed 1234567)", () => {
  const s = new Uint32Array(4);
  splitmix64(1234567n, s);
  const word = (i: number) => (BigInt(s[2 * i + 1]!) << 32n) | BigInt(s[2 * i]!);
  assert.equal(word(0), 6457827717110365317n);
  assert.equal(word(1), 3203168211198807973n);
});

test("seeds that agree in their low 32 bits give different streams; the same seed the same stream", () => {
  const seeds = [0, 1, 2 ** 32 + 1, 2 ** 32, -1, 2 ** 32 - 1, 2 ** 53 - 1, -(2 ** 53 - 1), 5 * 2 ** 32 + 5];
  const streams = seeds.map((s) => draws(s).join(","));
  assert.equal(new Set(streams).size, seeds.length, "every seed its own stream");
  seeds.forEach((s, i) => assert.equal(draws(s).join(","), streams[i], `seed ${s} replays`));
  for (const s of seeds) {
    const d = draws(s, 64);
    assert.ok(new Set(d).size > 60, `seed ${s}: the stream moves (${d.slice(0, 4)})`);
  }
  assert.equal(new Rng(2 ** 40 + 3).seed, 2 ** 40 + 3, "the seed in use is the one given");
});
