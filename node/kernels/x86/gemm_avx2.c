/*
 * AVX2+FMA SGEMM micro-kernel: a 6x16 tile of C in 12 ymm accumulators.
 *
 * Per k step it loads two 8-float vectors of packed B and broadcasts six
 * floats of packed A: 12 FMAs for 2 loads + 6 broadcasts, which keeps both
 * FMA ports busy (12 accumulators cover the 4-cycle FMA latency twice over)
 * and leaves 4 ymm registers for operands. The store applies the tail
 * (alpha, beta, bias, Relu/Clip) and writes only the tile's mr x nr part,
 * with masked loads and stores at the right edge. Only called after
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

/* One 8-float half of a row: alpha, beta * C, biases, activation. */
static inline __m256 avx2_finish(__m256 v, const float *c, __m256i mask, const float *bcol,
                                 __m256 brow, const evo_sgemm_tail *t)
{
    v = _mm256_mul_ps(v, _mm256_set1_ps(t->alpha));
    if (t->beta != 0.0f)
        v = _mm256_fmadd_ps(_mm256_set1_ps(t->beta), _mm256_maskload_ps(c, mask), v);
    v = _mm256_add_ps(v, brow);
    if (bcol != NULL)
        v = _mm256_add_ps(v, _mm256_maskload_ps(bcol, mask));
    if (t->act == EVO_ACT_RELU) /* max_ps(v, 0) is v > 0 ? v : 0, so NaN -> 0 */
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    else if (t->act == EVO_ACT_CLIP) /* NaN stays NaN, as in evo_act_apply */
        v = _mm256_min_ps(_mm256_set1_ps(t->hi), _mm256_max_ps(_mm256_set1_ps(t->lo), v));
    return v;
}

static inline void avx2_store_row(float *c, int64_t r, int64_t ldc, __m256 acc0, __m256 acc1,
                                  __m256i m0, __m256i m1, const evo_sgemm_tail *t)
{
    float *cr = c + r * ldc;
    const __m256 brow = t->bias_row != NULL ? _mm256_set1_ps(t->bias_row[r]) : _mm256_setzero_ps();
    const float *bc = t->bias_col;
    _mm256_maskstore_ps(cr, m0, avx2_finish(acc0, cr, m0, bc, brow, t));
    _mm256_maskstore_ps(cr + 8, m1,
                        avx2_finish(acc1, cr + 8, m1, bc != NULL ? bc + 8 : NULL, brow, t));
}

void evo_sgemm_ukernel_avx2(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                            int64_t mr, int64_t nr, const evo_sgemm_tail *t)
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
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
    avx2_store_row(c, 0, ldc, c00, c01, m0, m1, t);
    if (mr > 1)
        avx2_store_row(c, 1, ldc, c10, c11, m0, m1, t);
    if (mr > 2)
        avx2_store_row(c, 2, ldc, c20, c21, m0, m1, t);
    if (mr > 3)
        avx2_store_row(c, 3, ldc, c30, c31, m0, m1, t);
    if (mr > 4)
        avx2_store_row(c, 4, ldc, c40, c41, m0, m1, t);
    if (mr > 5)
        avx2_store_row(c, 5, ldc, c50, c51, m0, m1, t);
}
