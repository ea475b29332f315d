/*
 * AVX-512F SGEMM micro-kernel: an 8x32 tile of C in 16 zmm accumulators.
 *
 * Per k step: two 16-float loads of packed B and eight broadcasts of packed
 * A feed 16 FMAs, so the loop is FMA-bound on both ports, and 16
 * independent accumulators cover the FMA latency. A tile at most 16 wide
 * (the right edge, or a narrow matrix) runs a half kernel with 8
 * accumulators, so narrow products do not pay for the empty half. Stores
 * apply the tail (alpha, beta, bias, Relu/Clip) and are masked to the tile's
 * mr x nr part. The _direct entry reads A in place (row-major with leading
 * dimension lda) instead of packed: packing A is a transposing copy as
 * large as the weights, which costs as much as the product itself when
 * the matrix has few columns (late, small feature maps). This file is built with -mavx2 -mfma; the
 * AVX-512 functions carry a target attribute and run only after evo_cpu_use_avx512().
 */
#include <immintrin.h>

#include "kernels/gemm.h"

#if EVO_SGEMM_MR_AVX512 != 8 || EVO_SGEMM_NR_AVX512 != 32
#error "the AVX-512 micro-kernel is written for an 8x32 register block"
#endif

#define AVX512_FN __attribute__((target("avx512f,avx2,fma")))

/* One 16-float part of a row: alpha, beta * C, biases, activation; then the
 * masked store. */
AVX512_FN static inline void avx512_store(float *c, __m512 v, __mmask16 m, const float *bcol,
                                          __m512 brow, const evo_sgemm_tail *t)
{
    v = _mm512_mul_ps(v, _mm512_set1_ps(t->alpha));
    if (t->beta != 0.0f)
        v = _mm512_fmadd_ps(_mm512_set1_ps(t->beta), _mm512_maskz_loadu_ps(m, c), v);
    v = _mm512_add_ps(v, brow);
    if (bcol != NULL)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bcol));
    if (t->act == EVO_ACT_RELU) /* max_ps(v, 0) is v > 0 ? v : 0, so NaN -> 0 */
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    else if (t->act == EVO_ACT_CLIP) /* NaN stays NaN, as in evo_act_apply */
        v = _mm512_min_ps(_mm512_set1_ps(t->hi), _mm512_max_ps(_mm512_set1_ps(t->lo), v));
    _mm512_mask_storeu_ps(c, m, v);
}

AVX512_FN static inline __m512 avx512_brow(const evo_sgemm_tail *t, int64_t r)
{
    return t->bias_row != NULL ? _mm512_set1_ps(t->bias_row[r]) : _mm512_setzero_ps();
}

#define AVX512_STEP2(r, x, y)                                                                      \
    do {                                                                                           \
        const __m512 av = _mm512_set1_ps(pa[o##r]);                                                \
        x = _mm512_fmadd_ps(av, b0, x);                                                            \
        y = _mm512_fmadd_ps(av, b1, y);                                                            \
    } while (0)

#define AVX512_STORE2(r, x, y)                                                                     \
    do {                                                                                           \
        if ((r) < mr) {                                                                            \
            const __m512 br = avx512_brow(t, r);                                                   \
            avx512_store(c + (r)*ldc, x, m0, t->bias_col, br, t);                                  \
            avx512_store(c + (r)*ldc + 16, y, m1, t->bias_col != NULL ? t->bias_col + 16 : NULL,   \
                         br, t);                                                                   \
        }                                                                                          \
    } while (0)

#define AVX512_STEP1(r, x)                                                                         \
    do {                                                                                           \
        x = _mm512_fmadd_ps(_mm512_set1_ps(pa[o##r]), b0, x);                                      \
    } while (0)

#define AVX512_STORE1(r, x)                                                                        \
    do {                                                                                           \
        if ((r) < mr)                                                                              \
            avx512_store(c + (r)*ldc, x, m0, t->bias_col, avx512_brow(t, r), t);                   \
    } while (0)

/* Element (r, k) of the A panel is pa[r * rs + k * ks]: packed A has rs 1,
 * ks 8; A read in place (row-major, not packed) has rs lda, ks 1. Rows at
 * or beyond mr read row mr - 1 instead (their results are not stored), so
 * unpacked A is never read past its last row. */
#define AVX512_OFFSETS                                                                             \
    const int64_t o0 = 0, o1 = (mr > 1 ? 1 : 0) * rs, o2 = (mr > 2 ? 2 : mr - 1) * rs;             \
    const int64_t o3 = (mr > 3 ? 3 : mr - 1) * rs, o4 = (mr > 4 ? 4 : mr - 1) * rs;                \
    const int64_t o5 = (mr > 5 ? 5 : mr - 1) * rs, o6 = (mr > 6 ? 6 : mr - 1) * rs;                \
    const int64_t o7 = (mr > 7 ? 7 : mr - 1) * rs

/* nr <= 16: only the first 16 columns of each packed B row matter. */
AVX512_FN static void avx512_half(int64_t kc, const float *pa, int64_t rs, int64_t ks,
                                  const float *pb, float *c, int64_t ldc, int64_t mr, int64_t nr,
                                  const evo_sgemm_tail *t)
{
    AVX512_OFFSETS;
    __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps(), x2 = _mm512_setzero_ps();
    __m512 x3 = _mm512_setzero_ps(), x4 = _mm512_setzero_ps(), x5 = _mm512_setzero_ps();
    __m512 x6 = _mm512_setzero_ps(), x7 = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, pa += ks, pb += 32) {
        const __m512 b0 = _mm512_load_ps(pb);
        AVX512_STEP1(0, x0);
        AVX512_STEP1(1, x1);
        AVX512_STEP1(2, x2);
        AVX512_STEP1(3, x3);
        AVX512_STEP1(4, x4);
        AVX512_STEP1(5, x5);
        AVX512_STEP1(6, x6);
        AVX512_STEP1(7, x7);
    }
    const __mmask16 m0 = (__mmask16)((1u << nr) - 1u);
    AVX512_STORE1(0, x0);
    AVX512_STORE1(1, x1);
    AVX512_STORE1(2, x2);
    AVX512_STORE1(3, x3);
    AVX512_STORE1(4, x4);
    AVX512_STORE1(5, x5);
    AVX512_STORE1(6, x6);
    AVX512_STORE1(7, x7);
}

AVX512_FN static void avx512_full(int64_t kc, const float *pa, int64_t rs, int64_t ks,
                                  const float *pb, float *c, int64_t ldc, int64_t mr, int64_t nr,
                                  const evo_sgemm_tail *t)
{
    if (nr <= 16) {
        avx512_half(kc, pa, rs, ks, pb, c, ldc, mr, nr, t);
        return;
    }
    AVX512_OFFSETS;
    __m512 x0 = _mm512_setzero_ps(), y0 = _mm512_setzero_ps();
    __m512 x1 = _mm512_setzero_ps(), y1 = _mm512_setzero_ps();
    __m512 x2 = _mm512_setzero_ps(), y2 = _mm512_setzero_ps();
    __m512 x3 = _mm512_setzero_ps(), y3 = _mm512_setzero_ps();
    __m512 x4 = _mm512_setzero_ps(), y4 = _mm512_setzero_ps();
    __m512 x5 = _mm512_setzero_ps(), y5 = _mm512_setzero_ps();
    __m512 x6 = _mm512_setzero_ps(), y6 = _mm512_setzero_ps();
    __m512 x7 = _mm512_setzero_ps(), y7 = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, pa += ks, pb += 32) {
        /* Packed B strips start on 64-byte boundaries (see gemm.c). */
        const __m512 b0 = _mm512_load_ps(pb);
        const __m512 b1 = _mm512_load_ps(pb + 16);
        AVX512_STEP2(0, x0, y0);
        AVX512_STEP2(1, x1, y1);
        AVX512_STEP2(2, x2, y2);
        AVX512_STEP2(3, x3, y3);
        AVX512_STEP2(4, x4, y4);
        AVX512_STEP2(5, x5, y5);
        AVX512_STEP2(6, x6, y6);
        AVX512_STEP2(7, x7, y7);
    }
    const __mmask16 m0 = 0xFFFF;
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : (1u << (nr - 16)) - 1u);
    AVX512_STORE2(0, x0, y0);
    AVX512_STORE2(1, x1, y1);
    AVX512_STORE2(2, x2, y2);
    AVX512_STORE2(3, x3, y3);
    AVX512_STORE2(4, x4, y4);
    AVX512_STORE2(5, x5, y5);
    AVX512_STORE2(6, x6, y6);
    AVX512_STORE2(7, x7, y7);
}

AVX512_FN void evo_sgemm_ukernel_avx512(int64_t kc, const float *pa, const float *pb, float *c,
                                        int64_t ldc, int64_t mr, int64_t nr,
                                        const evo_sgemm_tail *t)
{
    avx512_full(kc, pa, 1, EVO_SGEMM_MR_AVX512, pb, c, ldc, mr, nr, t);
}

AVX512_FN void evo_sgemm_ukernel_avx512_direct(int64_t kc, const float *a, int64_t lda,
                                               const float *pb, float *c, int64_t ldc, int64_t mr,
                                               int64_t nr, const evo_sgemm_tail *t)
{
    avx512_full(kc, a, lda, 1, pb, c, ldc, mr, nr, t);
}

/* Dot products of a with four rows of B at once: four accumulators hide the
 * FMA latency and each load of a feeds four FMAs. Columns beyond 16 * (k /
 * 16) use masked loads. */
AVX512_FN void evo_sgemv_bt_avx512(int64_t n, int64_t k, const float *a, const float *b,
                                   int64_t ldb, float *c, float alpha, float beta)
{
    const __mmask16 tail = (__mmask16)((1u << (k % 16)) - 1u);
    const int64_t k16 = k / 16 * 16;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *b0 = b + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        int64_t q = 0;
        for (; q < k16; q += 16) {
            const __m512 av = _mm512_loadu_ps(a + q);
            s0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b0 + q), s0);
            s1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b1 + q), s1);
            s2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b2 + q), s2);
            s3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b3 + q), s3);
        }
        if (tail != 0) {
            const __m512 av = _mm512_maskz_loadu_ps(tail, a + q);
            s0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b0 + q), s0);
            s1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b1 + q), s1);
            s2 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b2 + q), s2);
            s3 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(tail, b3 + q), s3);
        }
        const float r[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
                            _mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3)};
        for (int i = 0; i < 4; i++)
            c[j + i] = beta == 0.0f ? alpha * r[i] : alpha * r[i] + beta * c[j + i];
    }
    for (; j < n; j++) {
        const float *bj = b + j * ldb;
        __m512 s0 = _mm512_setzero_ps();
        int64_t q = 0;
        for (; q < k16; q += 16)
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + q), _mm512_loadu_ps(bj + q), s0);
        if (tail != 0)
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + q),
                                 _mm512_maskz_loadu_ps(tail, bj + q), s0);
        const float r = _mm512_reduce_add_ps(s0);
        c[j] = beta == 0.0f ? alpha * r : alpha * r + beta * c[j];
    }
}
