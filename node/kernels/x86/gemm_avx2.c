/*
 * AVX2+FMA SGEMM micro-kernel: a 6x16 tile of C in 12 ymm accumulators.
 *
 * Per k step it loads two 8-float vectors of packed B and broadcasts six
 * floats of packed A: 12 FMAs for 2 loads + 6 broadcasts, which keeps both
 * FMA ports busy (12 accumulators cover the 4-cycle FMA latency twice over)
 * and leaves 4 ymm registers for operands. Only called after
 * evo_cpu_use_avx2() said yes; this file is compiled with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "kernels/gemm.h"

#if EVO_SGEMM_MR != 6 || EVO_SGEMM_NR != 16
#error "the AVX2 micro-kernel is written for a 6x16 register block"
#endif

#define AVX2_ROW_STEP(r, acc0, acc1)                                                               \
    do {                                                                                           \
        const __m256 av = _mm256_broadcast_ss(pa + (r));                                           \
        acc0 = _mm256_fmadd_ps(av, b0, acc0);                                                      \
        acc1 = _mm256_fmadd_ps(av, b1, acc1);                                                      \
    } while (0)

#define AVX2_ROW_STORE(r, acc0, acc1)                                                              \
    do {                                                                                           \
        float *cr = c + (r)*ldc;                                                                   \
        __m256 v0 = _mm256_mul_ps(acc0, va);                                                       \
        __m256 v1 = _mm256_mul_ps(acc1, va);                                                       \
        if (beta != 0.0f) {                                                                        \
            v0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v0);                                     \
            v1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), v1);                                 \
        }                                                                                          \
        _mm256_storeu_ps(cr, v0);                                                                  \
        _mm256_storeu_ps(cr + 8, v1);                                                              \
    } while (0)

void evo_sgemm_ukernel_avx2(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                            float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        /* Packed B strips start on 64-byte boundaries (see gemm.c). */
        const __m256 b0 = _mm256_load_ps(pb);
        const __m256 b1 = _mm256_load_ps(pb + 8);
        AVX2_ROW_STEP(0, c00, c01);
        AVX2_ROW_STEP(1, c10, c11);
        AVX2_ROW_STEP(2, c20, c21);
        AVX2_ROW_STEP(3, c30, c31);
        AVX2_ROW_STEP(4, c40, c41);
        AVX2_ROW_STEP(5, c50, c51);
        pa += 6;
        pb += 16;
    }
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    AVX2_ROW_STORE(0, c00, c01);
    AVX2_ROW_STORE(1, c10, c11);
    AVX2_ROW_STORE(2, c20, c21);
    AVX2_ROW_STORE(3, c30, c31);
    AVX2_ROW_STORE(4, c40, c41);
    AVX2_ROW_STORE(5, c50, c51);
}
