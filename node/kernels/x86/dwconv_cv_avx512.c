/*
 * AVX-512F depthwise convolution of small planes, vectorized over channels
 * (the contract of evo_dwconv_cv_avx512 in conv.h).
 *
 * Why: the late layers of mobile networks run depthwise 3x3 convs on 6x6 or
 * 3x3 planes with 64-256 channels. Vectorizing over positions (the other
 * depthwise paths) fills two or three partly masked vectors per channel and
 * pays its setup per channel: tiny_vww_mbv1's such convs ran at 4-23
 * GFLOP/s. Here 16 channels share one vector instead, as the KM weight
 * layout does for dense convs: each block of 16 channels is gathered into a
 * zero-padded channels-last plane in scratch (one gather per input
 * position), every output position is then bias + k_size full-width FMAs
 * with no masks, and the 16 results are scattered back to NCHW.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/conv.h"

#define DWCV_FN __attribute__((target("avx512f,avx2,fma")))

DWCV_FN static inline __m512 dwcv_act(__m512 v, int32_t act, __m512 lo, __m512 hi)
{
    if (act == EVO_ACT_RELU) /* v > 0 ? v : 0, NaN -> 0 as in evo_act_apply */
        return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == EVO_ACT_CLIP) /* NaN stays NaN */
        return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    return v;
}

size_t evo_dwconv_cv_scratch_floats(const evo_conv_geom *g)
{
    const int64_t ph_n = g->in[1] + g->pad_b[1] + g->pad_e[1];
    const int64_t pw_n = g->in[2] + g->pad_b[2] + g->pad_e[2];
    return (size_t)((ph_n * pw_n + g->k_size) * 16);
}

DWCV_FN void evo_dwconv_cv_avx512(const evo_conv_geom *g, const float *x, const float *w,
                                  const float *bias, const evo_act *act, float *y, float *scratch)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t kh = g->k[1], kw = g->k[2], sh = g->stride[1], sw = g->stride[2];
    const int64_t pt = g->pad_b[1], pl = g->pad_b[2];
    const int64_t pw_n = iw + pl + g->pad_e[2];
    const int64_t ph_n = ih + pt + g->pad_e[1];
    float *plane = scratch;               /* [ph_n][pw_n][16], 64-byte aligned */
    float *wt = plane + ph_n * pw_n * 16; /* [k_size][16] */
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i in_stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)g->in_size));
    const __m512i out_stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)g->out_size));
    const __m512i w_stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)g->k_size));
    const int32_t ak = act->kind;
    const __m512 clo = _mm512_set1_ps(act->a), chi = _mm512_set1_ps(act->b);
    /* The borders stay zero: each block writes only the interior. */
    memset(plane, 0, (size_t)(ph_n * pw_n * 16) * sizeof(float));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t c0 = 0; c0 < g->c; c0 += 16) {
            const float *xb = x + (n * g->c + c0) * g->in_size;
            for (int64_t i = 0; i < ih; i++) {
                float *row = plane + ((i + pt) * pw_n + pl) * 16;
                for (int64_t j = 0; j < iw; j++)
                    _mm512_store_ps(row + j * 16,
                                    _mm512_i32gather_ps(in_stride, xb + i * iw + j, 4));
            }
            for (int64_t t = 0; t < g->k_size; t++)
                _mm512_store_ps(wt + t * 16,
                                _mm512_i32gather_ps(w_stride, w + c0 * g->k_size + t, 4));
            const __m512 vb = bias != NULL ? _mm512_loadu_ps(bias + c0) : _mm512_setzero_ps();
            float *yb = y + (n * g->m + c0) * g->out_size;
            for (int64_t r = 0; r < oh; r++)
                for (int64_t q = 0; q < ow; q++) {
                    const float *win = plane + (r * sh * pw_n + q * sw) * 16;
                    __m512 acc = vb;
                    for (int64_t a = 0; a < kh; a++)
                        for (int64_t b = 0; b < kw; b++)
                            acc = _mm512_fmadd_ps(_mm512_load_ps(wt + (a * kw + b) * 16),
                                                  _mm512_load_ps(win + (a * pw_n + b) * 16), acc);
                    _mm512_i32scatter_ps(yb + r * ow + q, out_stride, dwcv_act(acc, ak, clo, chi),
                                         4);
                }
        }
}
