// Memory layout contract between the kernels and their caller.

/**
 * First byte the caller may use, 16-byte aligned. Everything below belongs to the module's static
 * data (constants and the linear kernels' weight panel), which is (re)written when an instance is
 * created on a memory.
 */
export function kernel_reserved_bytes(): usize {
  return (__heap_base + 15) & ~15;
}
