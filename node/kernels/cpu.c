/* Run-time CPU feature detection and kernel path selection (see cpu.h). */
#include "kernels/cpu.h"

static evo_kernel_path cpu_forced_path = EVO_KPATH_AUTO;

void evo_kernels_force_path(evo_kernel_path path)
{
    cpu_forced_path = path;
}

evo_kernel_path evo_kernels_forced_path(void)
{
    return cpu_forced_path;
}

bool evo_cpu_use_avx2(void)
{
    if (cpu_forced_path != EVO_KPATH_AUTO && cpu_forced_path != EVO_KPATH_AVX2)
        return false;
#if defined(__x86_64__) && defined(EVO_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
    /* libgcc/compiler-rt fill the feature table in a constructor, so the
     * query is a load and a bit test; no need to cache it here. */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool evo_cpu_use_avx512(void)
{
    if (cpu_forced_path != EVO_KPATH_AUTO)
        return false;
#if defined(__x86_64__) && defined(EVO_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
    /* The feature bits include the OS check (XCR0 saves the zmm state). */
    return __builtin_cpu_supports("avx512f") && evo_cpu_use_avx2();
#else
    return false;
#endif
}
