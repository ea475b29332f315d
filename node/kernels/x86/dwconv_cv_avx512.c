/*
 * AVX-512F depthwise convolution of small planes, vectorized over channels
 * (the contract of evo_dwconv_cv_avx512 in conv.h).
 *
 * Why: the late layers of mobile networks and keyword-spotting spectrograms
 * run depthwise 3x3 convs on planes of 3x3 to 25x5 with 64-256 channels.
 * Vectorizing over positions (the other depthwise paths) fills a few partly
 * masked vectors per channel, each tap a masked, mostly cache-line-splitting
 * load plus its mask and offset: tiny_kws_dscnn's and tiny_vww_mbv1's such
 * convs ran at 4-35 GFLOP/s. Here 16 channels share one vector instead, as
 * the KM weight layout does for dense convs: each block of 16 channels is
 * transposed (16 positions of 16 channels at a time, in registers) into a
 * zero-padded channels-last plane in scratch, every output position is then
 * bias + k_size full-width aligned FMAs with no masks, into a channels-last
 * buffer of 16 positions, transposed back to NCHW the same way when full. A 16x16
 * register transpose moves 256 values with 64 shuffles, where a gather (or
 * scatter) of one position of 16 channels costs 16 loads (stores).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/x86/act_avx512.h"
#include "kernels/x86/transpose16_avx512.h"

#define DWCV_FN __attribute__((target("avx512f,avx2,fma")))

/* Scratch layout, in floats from the (64-byte aligned) start: the padded
 * plane [ph_n][pw_n][16], the weights [k_size][16], and 16 output
 * positions [16][16] (transposed out as soon as they are made, so the
 * arena does not hold a second copy of the output). */
static int64_t dwcv_plane_floats(const evo_conv_geom *g)
{
    return (g->in[1] + g->pad_b[1] + g->pad_e[1]) * (g->in[2] + g->pad_b[2] + g->pad_e[2]) * 16;
}

size_t evo_dwconv_cv_scratch_floats(const evo_conv_geom *g)
{
    return (size_t)(dwcv_plane_floats(g) + g->k_size * 16 + 16 * 16);
}

/* Lanes [0, n) of a 16-lane mask. */
static inline __mmask16 dwcv_mask(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

/* The interior of the padded plane from 16 NCHW channel planes of
 * g->in_size floats, plane_at(i, j) being where input (i, j) goes. */
DWCV_FN static void dwcv_pack_input(const evo_conv_geom *g, const float *xb, float *plane,
                                    int64_t pw_n)
{
    const int64_t iw = g->in[2], n = g->in_size;
    const int64_t pt = g->pad_b[1], pl = g->pad_b[2];
    int64_t i = 0, j = 0; /* input row and column of position p0 */
    for (int64_t p0 = 0; p0 < n; p0 += 16) {
        const int64_t cnt = n - p0 < 16 ? n - p0 : 16;
        const __mmask16 m = dwcv_mask(cnt);
        __m512 r[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            r[c] = _mm512_maskz_loadu_ps(m, xb + c * n + p0);
        evo_transpose16_avx512(r);
        for (int64_t k = 0; k < cnt; k++) {
            _mm512_store_ps(plane + ((i + pt) * pw_n + j + pl) * 16, r[k]);
            if (++j == iw) {
                j = 0;
                i++;
            }
        }
    }
}

/* Outputs p0 .. p0 + cnt - 1 of 16 NCHW output planes of n floats each from
 * the channels-last buffer obuf[16][16] (rows past cnt are don't-care). */
DWCV_FN static void dwcv_unpack_output(const float *obuf, int64_t p0, int64_t cnt, int64_t n,
                                       float *yb)
{
    const __mmask16 m = dwcv_mask(cnt);
    __m512 r[16];
#pragma GCC unroll 16
    for (int k = 0; k < 16; k++)
        r[k] = _mm512_load_ps(obuf + k * 16);
    evo_transpose16_avx512(r);
#pragma GCC unroll 16
    for (int c = 0; c < 16; c++)
        _mm512_mask_storeu_ps(yb + c * n + p0, m, r[c]);
}

DWCV_FN void evo_dwconv_cv_avx512(const evo_conv_geom *g, const float *x, const float *w,
                                  const float *bias, const evo_act *act, float *y, float *scratch)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t kh = g->k[1], kw = g->k[2], sh = g->stride[1], sw = g->stride[2];
    const int64_t pw_n = iw + g->pad_b[2] + g->pad_e[2];
    const int64_t ph_n = ih + g->pad_b[1] + g->pad_e[1];
    float *plane = scratch; /* [ph_n][pw_n][16] */
    float *wt = plane + dwcv_plane_floats(g);
    float *obuf = wt + g->k_size * 16;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i w_stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)g->k_size));
    const int32_t ak = act->kind;
    const __m512 clo = _mm512_set1_ps(act->a), chi = _mm512_set1_ps(act->b);
    /* The borders stay zero: each block writes only the interior. */
    memset(plane, 0, (size_t)(ph_n * pw_n * 16) * sizeof(float));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t c0 = 0; c0 < g->c; c0 += 16) {
            dwcv_pack_input(g, x + (n * g->c + c0) * g->in_size, plane, pw_n);
            /* k_size gathers per block: small next to the planes. */
            for (int64_t t = 0; t < g->k_size; t++)
                _mm512_store_ps(wt + t * 16,
                                _mm512_i32gather_ps(w_stride, w + c0 * g->k_size + t, 4));
            const __m512 vb = bias != NULL ? _mm512_loadu_ps(bias + c0) : _mm512_setzero_ps();
            float *yb = y + (n * g->m + c0) * g->out_size;
            int64_t p0 = 0; /* first output position in obuf */
            float *o = obuf;
/* After each output position: a full buffer goes out to NCHW. */
#define DWCV_NEXT()                                                                                \
    do {                                                                                           \
        o += 16;                                                                                   \
        if (o == obuf + 256) {                                                                     \
            dwcv_unpack_output(obuf, p0, 16, g->out_size, yb);                                     \
            p0 += 16;                                                                              \
            o = obuf;                                                                              \
        }                                                                                          \
    } while (0)
            if (kh == 3 && kw == 3) {
                /* The common case with its nine weight vectors in registers. */
                const __m512 w0 = _mm512_load_ps(wt), w1 = _mm512_load_ps(wt + 16);
                const __m512 w2 = _mm512_load_ps(wt + 32), w3 = _mm512_load_ps(wt + 48);
                const __m512 w4 = _mm512_load_ps(wt + 64), w5 = _mm512_load_ps(wt + 80);
                const __m512 w6 = _mm512_load_ps(wt + 96), w7 = _mm512_load_ps(wt + 112);
                const __m512 w8 = _mm512_load_ps(wt + 128);
                const int64_t rs = pw_n * 16;
                for (int64_t r = 0; r < oh; r++)
                    for (int64_t q = 0; q < ow; q++) {
                        const float *s = plane + (r * sh * pw_n + q * sw) * 16;
                        __m512 a0 = _mm512_fmadd_ps(w0, _mm512_load_ps(s), vb);
                        __m512 a1 = _mm512_mul_ps(w1, _mm512_load_ps(s + 16));
                        __m512 a2 = _mm512_mul_ps(w2, _mm512_load_ps(s + 32));
                        a0 = _mm512_fmadd_ps(w3, _mm512_load_ps(s + rs), a0);
                        a1 = _mm512_fmadd_ps(w4, _mm512_load_ps(s + rs + 16), a1);
                        a2 = _mm512_fmadd_ps(w5, _mm512_load_ps(s + rs + 32), a2);
                        a0 = _mm512_fmadd_ps(w6, _mm512_load_ps(s + 2 * rs), a0);
                        a1 = _mm512_fmadd_ps(w7, _mm512_load_ps(s + 2 * rs + 16), a1);
                        a2 = _mm512_fmadd_ps(w8, _mm512_load_ps(s + 2 * rs + 32), a2);
                        _mm512_store_ps(o, evo_act_avx512(_mm512_add_ps(_mm512_add_ps(a0, a1), a2),
                                                          ak, clo, chi));
                        DWCV_NEXT();
                    }
            } else {
                for (int64_t r = 0; r < oh; r++)
                    for (int64_t q = 0; q < ow; q++) {
                        const float *win = plane + (r * sh * pw_n + q * sw) * 16;
                        __m512 acc = vb;
                        for (int64_t a = 0; a < kh; a++)
                            for (int64_t b = 0; b < kw; b++)
                                acc =
                                    _mm512_fmadd_ps(_mm512_load_ps(wt + (a * kw + b) * 16),
                                                    _mm512_load_ps(win + (a * pw_n + b) * 16), acc);
                        _mm512_store_ps(o, evo_act_avx512(acc, ak, clo, chi));
                        DWCV_NEXT();
                    }
            }
#undef DWCV_NEXT
            if (o != obuf)
                dwcv_unpack_output(obuf, p0, (o - obuf) / 16, g->out_size, yb);
        }
}
