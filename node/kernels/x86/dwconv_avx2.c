/*
 * AVX2+FMA row kernel of the direct depthwise convolution (see conv.h and
 * conv_fast.c): a run of interior outputs of one output row, all taps in
 * bounds, written as bias + taps, then Relu or Clip if asked (no read of
 * the output, so no store-to-load stall on it). Four vectors (32 outputs) per step so that the
 * chain of FMAs per accumulator does not serialize on FMA latency; the last 1..7 outputs use masked
 * loads and stores. Stride 2 gathers the even inputs with two loads and a shuffle; the second load
 * starts at +7, not +8, so it never reads past the last input the run needs.
 */
#include <immintrin.h>

#include "kernels/conv.h"

static inline __m256 dw_load(const float *s, int64_t stride)
{
    if (stride == 1)
        return _mm256_loadu_ps(s);
    const __m256 lo = _mm256_loadu_ps(s);     /* s0 .. s7 */
    const __m256 hi = _mm256_loadu_ps(s + 7); /* s7 .. s14: evens at odd lanes */
    /* per 128-bit lane: lo[0], lo[2], hi[1], hi[3] -> s0 s2 s8 s10 | s4 s6 s12 s14 */
    const __m256 mix = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mix), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Relu or Clip on a finished vector, with evo_act_apply's NaN behavior:
 * max_ps(v, 0) is v > 0 ? v : 0 (NaN -> 0); Clip keeps NaN. */
static inline __m256 dw_act(__m256 v, int32_t act, __m256 lo, __m256 hi)
{
    if (act == EVO_ACT_RELU)
        return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == EVO_ACT_CLIP)
        return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    return v;
}

void evo_dwconv_rows_avx2(float *out, int64_t n, const float *in, int64_t in_row, const float *w,
                          int64_t rows, int64_t kw, int64_t stride, int64_t dil, float bias,
                          const evo_act *act)
{
    const __m256 vb = _mm256_set1_ps(bias);
    const int32_t ak = act->kind;
    const __m256 clo = _mm256_set1_ps(act->a), chi = _mm256_set1_ps(act->b);
    int64_t t = 0;
    for (; t + 32 <= n; t += 32) {
        __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < kw; q++) {
                const __m256 wv = _mm256_broadcast_ss(w + r * kw + q);
                const float *s = in + r * in_row + q * dil + t * stride;
                a0 = _mm256_fmadd_ps(wv, dw_load(s, stride), a0);
                a1 = _mm256_fmadd_ps(wv, dw_load(s + 8 * stride, stride), a1);
                a2 = _mm256_fmadd_ps(wv, dw_load(s + 16 * stride, stride), a2);
                a3 = _mm256_fmadd_ps(wv, dw_load(s + 24 * stride, stride), a3);
            }
        _mm256_storeu_ps(out + t, dw_act(a0, ak, clo, chi));
        _mm256_storeu_ps(out + t + 8, dw_act(a1, ak, clo, chi));
        _mm256_storeu_ps(out + t + 16, dw_act(a2, ak, clo, chi));
        _mm256_storeu_ps(out + t + 24, dw_act(a3, ak, clo, chi));
    }
    for (; t + 8 <= n; t += 8) {
        __m256 a0 = vb;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < kw; q++) {
                const __m256 wv = _mm256_broadcast_ss(w + r * kw + q);
                a0 = _mm256_fmadd_ps(wv, dw_load(in + r * in_row + q * dil + t * stride, stride),
                                     a0);
            }
        _mm256_storeu_ps(out + t, dw_act(a0, ak, clo, chi));
    }
    if (t < n) {
        /* 1..7 outputs left: masked loads read only the inputs they need
         * (masked-off lanes are not accessed, so no read past the row). */
        const int64_t left = n - t, last = (left - 1) * stride; /* last input offset */
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m_out = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane);
        const __m256i m_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)last + 1), lane);
        const __m256i m_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)last + 1 - 7), lane);
        __m256 a0 = vb;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < kw; q++) {
                const __m256 wv = _mm256_broadcast_ss(w + r * kw + q);
                const float *s = in + r * in_row + q * dil + t * stride;
                __m256 v;
                if (stride == 1) {
                    v = _mm256_maskload_ps(s, m_out);
                } else {
                    const __m256 lo = _mm256_maskload_ps(s, m_lo);
                    const __m256 hi = _mm256_maskload_ps(s + 7, m_hi);
                    const __m256 mix = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0));
                    v = _mm256_castpd_ps(
                        _mm256_permute4x64_pd(_mm256_castps_pd(mix), _MM_SHUFFLE(3, 1, 2, 0)));
                }
                a0 = _mm256_fmadd_ps(wv, v, a0);
            }
        _mm256_maskstore_ps(out + t, m_out, dw_act(a0, ak, clo, chi));
    }
}
