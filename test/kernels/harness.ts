// Test helpers for the kernel tests: a deterministic RNG, a bump allocator over a kernel memory,
// and a closeness check that reports the worst element.
import assert from "node:assert/strict";
import { createKernelMemory, instantiateKernels, kernelModule, type KernelVariant, type Kernels } from "../../src/kernels/wasm.js";

/** Both builds: tests of kernels that use multiply-add run on each. */
export const VARIANTS: KernelVariant[] = ["baseline", "relaxed"];

/** mulberry32: deterministic uniform [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Float32Array of n values uniform in [lo, hi). */
export function randomF32(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

/** A kernel instance on its own memory plus a bump allocator (16-byte aligned, never freed). */
export class Arena {
  readonly k: Kernels;
  readonly memory: WebAssembly.Memory;
  private top: number;

  constructor(bytes = 16 << 20, variant?: KernelVariant) {
    this.memory = createKernelMemory(bytes);
    this.k = instantiateKernels(this.memory, kernelModule(variant));
    this.top = this.k.reservedBytes;
  }

  alloc(bytes: number): number {
    const ptr = this.top;
    this.top = ptr + Math.ceil(Math.max(bytes, 1) / 16) * 16 + 16; // 16-byte gap catches overruns
    if (this.top > this.memory.buffer.byteLength) {
      this.memory.grow(Math.ceil((this.top - this.memory.buffer.byteLength) / 65536));
    }
    return ptr;
  }

  /** Allocates and copies a typed array into memory; returns its pointer. */
  put(a: Float32Array | Uint16Array | Int32Array): number {
    const ptr = this.alloc(a.byteLength);
    new Uint8Array(this.memory.buffer, ptr, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return ptr;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n).slice();
  }

  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n).slice();
  }
}

/**
 * Asserts |got[i] - want[i]| <= tol[i] (or a scalar tol) for every i; names the worst element.
 */
export function assertClose(got: Float32Array, want: ArrayLike<number>, tol: ArrayLike<number> | number, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < got.length; i++) {
    const t = typeof tol === "number" ? tol : tol[i]!;
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= t)) {
      const ratio = Number.isNaN(err) ? Infinity : err / t;
      if (ratio > worstRatio || worst < 0) {
        worst = i;
        worstRatio = ratio;
      }
    }
  }
  if (worst >= 0) {
    const t = typeof tol === "number" ? tol : tol[worst]!;
    assert.fail(`${label}: element ${worst} got ${got[worst]} want ${want[worst]} (tolerance ${t}, ${worstRatio.toFixed(1)}x over)`);
  }
}

/** The f32 unit roundoff. */
export const EPS32 = 2 ** -24;
