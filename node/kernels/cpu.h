/*
 * Run-time selection of kernel implementations.
 *
 * Optimized kernels for an ISA (node/kernels/x86/) are compiled with extra
 * instruction-set flags and may only run after the CPU has been asked whether
 * it supports them. Everything that dispatches goes through evo_kpath(), so
 * that a test (or a user chasing a numerical difference) can force the
 * portable fast path or the plain reference loops process-wide.
 */
#ifndef EVO_KERNELS_CPU_H
#define EVO_KERNELS_CPU_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum evo_kernel_path {
    EVO_KPATH_AUTO = 0,      /* the fastest path this CPU supports (default) */
    EVO_KPATH_PORTABLE = 1,  /* blocked/packed C kernels, no ISA extensions */
    EVO_KPATH_REFERENCE = 2, /* straightforward loops: the truth for tests */
    EVO_KPATH_AVX2 = 3       /* AVX2+FMA kernels even where AVX-512 ones would run */
} evo_kernel_path;

/* Force a path process-wide (configuration, like the log level: set it
 * before running models, not while they run). */
void evo_kernels_force_path(evo_kernel_path path);
evo_kernel_path evo_kernels_forced_path(void);

/* True when x86 AVX2+FMA kernels are compiled in, the CPU supports them and
 * no portable or reference path is forced (AUTO or AVX2). */
bool evo_cpu_use_avx2(void);
/* True when the AVX-512F kernels may run: compiled in, supported by the CPU
 * and the OS, and the path is AUTO. Implies evo_cpu_use_avx2(). */
bool evo_cpu_use_avx512(void);

#ifdef __cplusplus
}
#endif
#endif /* EVO_KERNELS_CPU_H */
