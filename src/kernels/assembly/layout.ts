// Memory layout contract between the kernels and their caller.

import { groupRows16 } from "./_linear";

/**
 * First byte the caller may use, 16-byte aligned. Everything below belongs to the module's static
 * data (constants and the linear kernels' weight panel), which is (re)written when an instance is
 * created on a memory.
 */
export function kernel_reserved_bytes(): usize {
  return (__heap_base + 15) & ~15;
}

/**
 * Puts N rows of K bf16 or f16 weights, just loaded row-major at w, into the grouped layout that
 * linear_bf16 / linear_f16 read (in place; see _linear.ts); tmp: 8·K bytes. A no-op when K % 8 != 0.
 */
export function group_rows_16bit(w: usize, N: i32, K: i32, tmp: usize): void {
  groupRows16(w, N, K, tmp);
}
