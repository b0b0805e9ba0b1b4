#include "ferry_cpu.h"
#include <stddef.h>

// FERRY_KERNELS_NEED_AVX2_FMA is defined by Package.swift exactly when FerryKernels is compiled
// for a named CPU (x86_64 hosts without FERRY_PORTABLE=1), FERRY_KERNELS_NEED_AVX512 as well
// when that CPU is skylake-avx512.
const char *ferry_kernels_unsupported_cpu(void) {
#if defined(FERRY_KERNELS_NEED_AVX2_FMA) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__builtin_cpu_supports("bmi2") || !__builtin_cpu_supports("f16c")) {
        return "this CPU lacks AVX2/FMA/BMI2/F16C, which Ferry's kernels were compiled for; "
               "rebuild with FERRY_PORTABLE=1 for a generic x86-64 build";
    }
#endif
#if defined(FERRY_KERNELS_NEED_AVX512) && (defined(__x86_64__) || defined(__i386__))
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512cd") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl")) {
        return "this CPU lacks AVX-512 (F, CD, BW, DQ, VL), which Ferry's kernels were compiled for "
               "(the building machine had it); rebuild with FERRY_KERNELS_CPU=haswell for AVX2 machines";
    }
#endif
    return NULL;
}

const char *ferry_kernels_instruction_set(void) {
#if defined(FERRY_KERNELS_NEED_AVX512)
    return "x86-64 + AVX-512 F/CD/BW/DQ/VL (skylake-avx512)";
#elif defined(FERRY_KERNELS_NEED_AVX2_FMA)
    return "x86-64 + AVX2 + FMA (haswell)";
#else
    return "generic";
#endif
}

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
void ferry_map_buffers_from(long bytes) { mallopt(M_MMAP_THRESHOLD, (int)bytes); }
void ferry_return_free_heap_pages(void) { malloc_trim(0); }
void ferry_heap_blocks(long *in_use, long *free_bytes, long *mapped) {
    struct mallinfo2 info = mallinfo2();
    *in_use = (long)info.uordblks; *free_bytes = (long)info.fordblks; *mapped = (long)info.hblkhd;
}
#else
void ferry_heap_blocks(long *in_use, long *free_bytes, long *mapped) { *in_use = 0; *free_bytes = 0; *mapped = 0; }
void ferry_return_free_heap_pages(void) {}
void ferry_map_buffers_from(long bytes) { (void)bytes; }
#endif
