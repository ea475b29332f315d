/*
 * AVX-512F implicit-GEMM micro-kernel for convolutions (see conv_fast.c,
 * conv_implicit): the SGEMM 8x32 register block, but row k of B is read
 * straight from the source planes at x + tab[k] (tab holds the offset of
 * input channel c, kernel row kh and column kw of reduction index k), so no
 * im2col matrix is built and nothing is packed. A (the weights) is read in
 * place, row i at a + i * lda. The 32 (or, for a tile at most 16 wide, 16)
 * columns are 32 consecutive flat positions of the source planes; the
 * tile's descriptor says which of them are outputs and where the first of
 * each 16 goes in Y: valid lanes are packed together (compress) and stored
 * with one masked store, since consecutive valid flat positions are
 * consecutive outputs. The tail applies bias and Relu/Clip.
 */
#include <immintrin.h>

#include "kernels/conv.h"

#define IMPL_FN __attribute__((target("avx512f,avx2,fma")))

IMPL_FN static inline void impl_store(float *y, __m512 v, __mmask16 valid, __mmask16 store,
                                      __m512 brow, const evo_sgemm_tail *t)
{
    v = _mm512_add_ps(v, brow);
    if (t->act == EVO_ACT_RELU) /* max_ps(v, 0) is v > 0 ? v : 0, so NaN -> 0 */
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    else if (t->act == EVO_ACT_CLIP) /* NaN stays NaN, as in evo_act_apply */
        v = _mm512_min_ps(_mm512_set1_ps(t->hi), _mm512_max_ps(_mm512_set1_ps(t->lo), v));
    if (valid == 0xFFFF)
        _mm512_storeu_ps(y, v);
    else if (valid != 0)
        _mm512_mask_storeu_ps(y, store, _mm512_maskz_compress_ps(valid, v));
}

/* Rows at or beyond mr read row mr - 1 (not stored), never past A. */
#define IMPL_OFFSETS                                                                               \
    const int64_t o0 = 0, o1 = (mr > 1 ? 1 : 0) * lda, o2 = (mr > 2 ? 2 : mr - 1) * lda;           \
    const int64_t o3 = (mr > 3 ? 3 : mr - 1) * lda, o4 = (mr > 4 ? 4 : mr - 1) * lda;              \
    const int64_t o5 = (mr > 5 ? 5 : mr - 1) * lda, o6 = (mr > 6 ? 6 : mr - 1) * lda;              \
    const int64_t o7 = (mr > 7 ? 7 : mr - 1) * lda

#define IMPL_STEP2(r, x, y)                                                                        \
    do {                                                                                           \
        const __m512 av = _mm512_set1_ps(a[o##r + k]);                                             \
        x = _mm512_fmadd_ps(av, b0, x);                                                            \
        y = _mm512_fmadd_ps(av, b1, y);                                                            \
    } while (0)

#define IMPL_STEP1(r, x)                                                                           \
    do {                                                                                           \
        x = _mm512_fmadd_ps(_mm512_set1_ps(a[o##r + k]), b0, x);                                   \
    } while (0)

#define IMPL_BROW(r) (t->bias_row != NULL ? _mm512_set1_ps(t->bias_row[r]) : _mm512_setzero_ps())

#define IMPL_STORE2(r, x, y)                                                                       \
    do {                                                                                           \
        if ((r) < mr) {                                                                            \
            const __m512 br = IMPL_BROW(r);                                                        \
            impl_store(c + (r)*ldc + tile->off[0], x, v0, s0, br, t);                              \
            impl_store(c + (r)*ldc + tile->off[1], y, v1, s1, br, t);                              \
        }                                                                                          \
    } while (0)

#define IMPL_STORE1(r, x)                                                                          \
    do {                                                                                           \
        if ((r) < mr)                                                                              \
            impl_store(c + (r)*ldc + tile->off[0], x, v0, s0, IMPL_BROW(r), t);                    \
    } while (0)

IMPL_FN void evo_conv_implicit_avx512(int64_t kk, const float *a, int64_t lda, const float *x,
                                      const int32_t *tab, float *c, int64_t ldc, int64_t mr,
                                      const evo_conv_tile *tile, const evo_sgemm_tail *t)
{
    IMPL_OFFSETS;
    const __mmask16 v0 = tile->valid[0], v1 = tile->valid[1];
    const __mmask16 s0 = tile->store[0], s1 = tile->store[1];
    if (v1 == 0) {
        __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps(), x2 = _mm512_setzero_ps();
        __m512 x3 = _mm512_setzero_ps(), x4 = _mm512_setzero_ps(), x5 = _mm512_setzero_ps();
        __m512 x6 = _mm512_setzero_ps(), x7 = _mm512_setzero_ps();
        for (int64_t k = 0; k < kk; k++) {
            const __m512 b0 = _mm512_loadu_ps(x + tab[k]);
            IMPL_STEP1(0, x0);
            IMPL_STEP1(1, x1);
            IMPL_STEP1(2, x2);
            IMPL_STEP1(3, x3);
            IMPL_STEP1(4, x4);
            IMPL_STEP1(5, x5);
            IMPL_STEP1(6, x6);
            IMPL_STEP1(7, x7);
        }
        IMPL_STORE1(0, x0);
        IMPL_STORE1(1, x1);
        IMPL_STORE1(2, x2);
        IMPL_STORE1(3, x3);
        IMPL_STORE1(4, x4);
        IMPL_STORE1(5, x5);
        IMPL_STORE1(6, x6);
        IMPL_STORE1(7, x7);
        return;
    }
    __m512 x0 = _mm512_setzero_ps(), y0 = _mm512_setzero_ps();
    __m512 x1 = _mm512_setzero_ps(), y1 = _mm512_setzero_ps();
    __m512 x2 = _mm512_setzero_ps(), y2 = _mm512_setzero_ps();
    __m512 x3 = _mm512_setzero_ps(), y3 = _mm512_setzero_ps();
    __m512 x4 = _mm512_setzero_ps(), y4 = _mm512_setzero_ps();
    __m512 x5 = _mm512_setzero_ps(), y5 = _mm512_setzero_ps();
    __m512 x6 = _mm512_setzero_ps(), y6 = _mm512_setzero_ps();
    __m512 x7 = _mm512_setzero_ps(), y7 = _mm512_setzero_ps();
    for (int64_t k = 0; k < kk; k++) {
        const float *bp = x + tab[k];
        const __m512 b0 = _mm512_loadu_ps(bp);
        const __m512 b1 = _mm512_loadu_ps(bp + 16);
        IMPL_STEP2(0, x0, y0);
        IMPL_STEP2(1, x1, y1);
        IMPL_STEP2(2, x2, y2);
        IMPL_STEP2(3, x3, y3);
        IMPL_STEP2(4, x4, y4);
        IMPL_STEP2(5, x5, y5);
        IMPL_STEP2(6, x6, y6);
        IMPL_STEP2(7, x7, y7);
    }
    IMPL_STORE2(0, x0, y0);
    IMPL_STORE2(1, x1, y1);
    IMPL_STORE2(2, x2, y2);
    IMPL_STORE2(3, x3, y3);
    IMPL_STORE2(4, x4, y4);
    IMPL_STORE2(5, x5, y5);
    IMPL_STORE2(6, x6, y6);
    IMPL_STORE2(7, x7, y7);
}

IMPL_FN void evo_deinterleave_avx512(const float *src, int64_t n, float *even, float *odd)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 lo = _mm512_loadu_ps(src + 2 * i), hi = _mm512_loadu_ps(src + 2 * i + 16);
        _mm512_storeu_ps(even + i, _mm512_permutex2var_ps(lo, ie, hi));
        _mm512_storeu_ps(odd + i, _mm512_permutex2var_ps(lo, io, hi));
    }
    if (i < n) { /* 1..15 pairs left: masked loads of exactly 2 (n - i) floats */
        const int64_t left = 2 * (n - i);
        const __mmask16 mlo = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
        const __mmask16 mhi = (__mmask16)(left <= 16 ? 0u : (1u << (left - 16)) - 1u);
        const __mmask16 mst = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 lo = _mm512_maskz_loadu_ps(mlo, src + 2 * i);
        const __m512 hi = _mm512_maskz_loadu_ps(mhi, src + 2 * i + 16);
        _mm512_mask_storeu_ps(even + i, mst, _mm512_permutex2var_ps(lo, ie, hi));
        _mm512_mask_storeu_ps(odd + i, mst, _mm512_permutex2var_ps(lo, io, hi));
    }
}
