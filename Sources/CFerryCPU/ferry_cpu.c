#include "ferry_cpu.h"
#include <stddef.h>

// FERRY_KERNELS_NEED_AVX2_FMA is defined by Package.swift exactly when FerryKernels is compiled
// with `-target-cpu haswell` (x86_64 hosts without FERRY_PORTABLE=1).
const char *ferry_kernels_unsupported_cpu(void) {
#if defined(FERRY_KERNELS_NEED_AVX2_FMA) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__builtin_cpu_supports("bmi2") || !__builtin_cpu_supports("f16c")) {
        return "this CPU lacks AVX2/FMA/BMI2/F16C, which Ferry's kernels were compiled for; "
               "rebuild with FERRY_PORTABLE=1 for a generic x86-64 build";
    }
#endif
    return NULL;
}

const char *ferry_kernels_instruction_set(void) {
#if defined(FERRY_KERNELS_NEED_AVX2_FMA)
    return "x86-64 + AVX2 + FMA (haswell)";
#else
    return "generic";
#endif
}

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
void ferry_map_buffers_from(long bytes) { mallopt(M_MMAP_THRESHOLD, (int)bytes); }
#else
void ferry_map_buffers_from(long bytes) { (void)bytes; }
#endif
