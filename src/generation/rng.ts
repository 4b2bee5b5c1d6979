// A small seeded PRNG so that the same seed gives the same text on every machine and Node version
// (Math.random cannot be seeded). xoshiro128** (Blackman & Vigna): 128-bit state, fast, good quality;
// the state is filled from the 32-bit seed by splitmix32 as the authors recommend.
import { randomBytes } from "node:crypto";

export class Rng {
  private readonly s = new Uint32Array(4);
  readonly seed: number;

  /** `seed` is any integer (taken modulo 2^32); undefined draws a random one (see `seed`). */
  constructor(seed?: number) {
    this.seed = seed === undefined ? randomBytes(4).readUInt32LE(0) : Number(BigInt.asUintN(32, BigInt(Math.trunc(seed))));
    let x = this.seed;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Next 32 random bits. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
