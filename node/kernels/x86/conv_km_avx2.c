/*
 * AVX2 kernel for Conv with W in the EVO_CONV_W_KM layout (see
 * conv_km_avx512.c for the idea): blocks of 4 positions x 16 output
 * channels (8 accumulators, two 8-channel vectors per position), stored
 * through an in-lane 4x4 transpose as one 128-bit store per channel; the
 * 1..3 positions left over go one at a time. A last block of fewer than 16
 * channels takes a scalar loop (M is rarely not a multiple of 16).
 */
#include <immintrin.h>

#include "kernels/conv.h"

#define KMA_FN __attribute__((target("avx2,fma")))

KMA_FN static inline __m256 kma_epilogue(__m256 v, __m256 b, int32_t act, __m256 lo, __m256 hi)
{
    v = _mm256_add_ps(v, b);
    if (act == EVO_ACT_RELU) /* max_ps(v, 0) is v > 0 ? v : 0, so NaN -> 0 as evo_act_apply */
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    else if (act == EVO_ACT_CLIP)
        v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    return v;
}

/* Store 4 position vectors of 8 channels (a[p] lane j = channel j at
 * position p) as 8 runs of 4 floats, channel j at y + j * ldy. */
KMA_FN static inline void kma_store4x8(float *y, int64_t ldy, __m256 a0, __m256 a1, __m256 a2,
                                       __m256 a3)
{
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    const __m256 r0 =
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    const __m256 r1 =
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    const __m256 r2 =
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
    const __m256 r3 =
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
    _mm_storeu_ps(y + 0 * ldy, _mm256_castps256_ps128(r0));
    _mm_storeu_ps(y + 1 * ldy, _mm256_castps256_ps128(r1));
    _mm_storeu_ps(y + 2 * ldy, _mm256_castps256_ps128(r2));
    _mm_storeu_ps(y + 3 * ldy, _mm256_castps256_ps128(r3));
    _mm_storeu_ps(y + 4 * ldy, _mm256_extractf128_ps(r0, 1));
    _mm_storeu_ps(y + 5 * ldy, _mm256_extractf128_ps(r1, 1));
    _mm_storeu_ps(y + 6 * ldy, _mm256_extractf128_ps(r2, 1));
    _mm_storeu_ps(y + 7 * ldy, _mm256_extractf128_ps(r3, 1));
}

/* Scalar block: positions np, channels mc, bias and Relu/Clip applied. */
static void kma_edge(int64_t kk, const float *b, int64_t ldb, int64_t np, const float *wt,
                     int64_t mm, int64_t mc, const float *bias, const evo_act *act, float *y,
                     int64_t ldy)
{
    for (int64_t j = 0; j < mc; j++)
        for (int64_t p = 0; p < np; p++) {
            float s = bias != NULL ? bias[j] : 0.0f;
            for (int64_t k = 0; k < kk; k++)
                s += b[k * ldb + p] * wt[k * mm + j];
            if (act->kind == EVO_ACT_RELU)
                s = s > 0.0f ? s : 0.0f;
            else if (act->kind == EVO_ACT_CLIP)
                s = s < act->a ? act->a : (s > act->b ? act->b : s);
            y[j * ldy + p] = s;
        }
}

KMA_FN void evo_conv_km_avx2(int64_t kk, const float *b, int64_t ldb, int64_t np, const float *wt,
                             int64_t mm, const float *bias, const evo_act *act, float *y,
                             int64_t ldy)
{
    const int32_t kind = act->kind;
    const __m256 lo = _mm256_set1_ps(act->a), hi = _mm256_set1_ps(act->b);
    for (int64_t m0 = 0; m0 < mm; m0 += 16) {
        const int64_t mc = mm - m0 < 16 ? mm - m0 : 16;
        const float *bm = bias != NULL ? bias + m0 : NULL;
        float *ym = y + m0 * ldy;
        int64_t p0 = 0;
        if (mc == 16) {
            for (; p0 + 4 <= np; p0 += 4) {
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
                __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
                for (int64_t k = 0; k < kk; k++) {
                    const float *wr = wt + k * mm + m0;
                    const __m256 w0 = _mm256_loadu_ps(wr), w1 = _mm256_loadu_ps(wr + 8);
                    const float *br = b + k * ldb + p0;
                    __m256 xv = _mm256_broadcast_ss(br);
                    a00 = _mm256_fmadd_ps(xv, w0, a00);
                    a01 = _mm256_fmadd_ps(xv, w1, a01);
                    xv = _mm256_broadcast_ss(br + 1);
                    a10 = _mm256_fmadd_ps(xv, w0, a10);
                    a11 = _mm256_fmadd_ps(xv, w1, a11);
                    xv = _mm256_broadcast_ss(br + 2);
                    a20 = _mm256_fmadd_ps(xv, w0, a20);
                    a21 = _mm256_fmadd_ps(xv, w1, a21);
                    xv = _mm256_broadcast_ss(br + 3);
                    a30 = _mm256_fmadd_ps(xv, w0, a30);
                    a31 = _mm256_fmadd_ps(xv, w1, a31);
                }
                const __m256 b0 = bm != NULL ? _mm256_loadu_ps(bm) : _mm256_setzero_ps();
                const __m256 b1 = bm != NULL ? _mm256_loadu_ps(bm + 8) : _mm256_setzero_ps();
                kma_store4x8(ym + p0, ldy, kma_epilogue(a00, b0, kind, lo, hi),
                             kma_epilogue(a10, b0, kind, lo, hi),
                             kma_epilogue(a20, b0, kind, lo, hi),
                             kma_epilogue(a30, b0, kind, lo, hi));
                kma_store4x8(ym + 8 * ldy + p0, ldy, kma_epilogue(a01, b1, kind, lo, hi),
                             kma_epilogue(a11, b1, kind, lo, hi),
                             kma_epilogue(a21, b1, kind, lo, hi),
                             kma_epilogue(a31, b1, kind, lo, hi));
            }
        }
        for (; mc == 16 && p0 < np; p0++) { /* leftover positions one at a time */
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            for (int64_t k = 0; k < kk; k++) {
                const float *wr = wt + k * mm + m0;
                const __m256 xv = _mm256_broadcast_ss(b + k * ldb + p0);
                a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wr), a0);
                a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wr + 8), a1);
            }
            const __m256 b0 = bm != NULL ? _mm256_loadu_ps(bm) : _mm256_setzero_ps();
            const __m256 b1 = bm != NULL ? _mm256_loadu_ps(bm + 8) : _mm256_setzero_ps();
            float out[16];
            _mm256_storeu_ps(out, kma_epilogue(a0, b0, kind, lo, hi));
            _mm256_storeu_ps(out + 8, kma_epilogue(a1, b1, kind, lo, hi));
            for (int j = 0; j < 16; j++)
                ym[j * ldy + p0] = out[j];
        }
        if (p0 < np)
            kma_edge(kk, b + p0, ldb, np - p0, wt + m0, mm, mc, bm, act, ym + p0, ldy);
    }
}
