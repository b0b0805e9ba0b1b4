#ifndef FERRY_CPU_H
#define FERRY_CPU_H

/// NULL when this CPU runs the instructions FerryKernels was compiled for, otherwise a sentence
/// naming what is missing. This file is compiled for the generic target, so calling it is safe
/// on any CPU; call it before the first FerryKernels call (which would otherwise die of SIGILL).
const char *ferry_kernels_unsupported_cpu(void);

/// The instruction set FerryKernels was compiled for ("x86-64 + AVX2 + FMA" or "generic").
const char *ferry_kernels_instruction_set(void);

/// Makes buffers of `bytes` or more get their own mapping, returned to the system when freed
/// (glibc's mallopt M_MMAP_THRESHOLD; a no-op elsewhere). glibc otherwise raises its threshold
/// as large buffers are freed, and weights replaced during import and optimization then stay
/// in the heap as holes that count in the process's memory.
void ferry_map_buffers_from(long bytes);

/// Gives the system back the heap's free pages, wherever they are in the heap (glibc's
/// malloc_trim; a no-op elsewhere). glibc returns heap memory only from the heap's top, so the
/// many small blocks a parse frees stay in the process's memory without it.
void ferry_return_free_heap_pages(void);

/// malloc's bytes in small blocks in use, free in its heaps, and in buffers with mappings of
/// their own (glibc's mallinfo2; zeros elsewhere), for `FERRY_TRACE_MEMORY`.
void ferry_heap_blocks(long *in_use, long *free_bytes, long *mapped);

#endif
