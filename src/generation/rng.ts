// A small seeded PRNG so that the same seed gives the same text on every machine and Node version
// (Math.random cannot be seeded). xoshiro128** (Blackman & Vigna): 128-bit state, fast, good quality;
// the state is filled from the seed as the authors recommend: by splitmix32 for seeds 0..2^32-1 (the
// streams they always had), by splitmix64 from the seed's 64 bits (two's complement) for any other safe
// integer (the server takes OpenAI's 64-bit seeds), so that no seed repeats another's text. splitmix64 is
// a bijection of its counter: its two outputs are never both zero, the one state xoshiro cannot leave.
import { randomBytes } from "node:crypto";

export class Rng {
  private readonly s = new Uint32Array(4);
  readonly seed: number;

  /** `seed` is any safe integer; undefined draws a random one (see `seed`). */
  constructor(seed?: number) {
    this.seed = seed === undefined ? randomBytes(4).readUInt32LE(0) : Math.trunc(seed);
    const bits = BigInt.asUintN(64, BigInt(this.seed));
    if (bits <= 0xffffffffn) splitmix32(Number(bits), this.s);
    else splitmix64(bits, this.s);
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

/** Four splitmix32 outputs from x into s. */
function splitmix32(x: number, s: Uint32Array): void {
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    s[i] = (z ^ (z >>> 16)) >>> 0;
  }
}

/** Two splitmix64 outputs from x into s (low word first). */
export function splitmix64(x: bigint, s: Uint32Array): void {
  const m = (v: bigint) => BigInt.asUintN(64, v);
  for (let i = 0; i < 2; i++) {
    x = m(x + 0x9e3779b97f4a7c15n);
    let z = x;
    z = m((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = m((z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z ^= z >> 31n;
    s[2 * i] = Number(z & 0xffffffffn);
    s[2 * i + 1] = Number(z >> 32n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
