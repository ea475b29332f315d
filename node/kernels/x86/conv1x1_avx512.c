/*
 * AVX-512F pointwise (1x1, stride 1, no pads) convolution with a short
 * reduction, straight from NCHW (the contract of evo_conv1x1_smallk_avx512
 * in conv.h).
 *
 * Why: the general path runs the SGEMM, which packs the whole input plane
 * into panels first. With K = 8 or 16 input channels (tiny_vww_mbv1's first
 * pointwise convs, 48x48 and 24x24 maps) that packing copies as many bytes
 * as the arithmetic reads, and the kernel ran at 40 % of the FMA peak. Here
 * a block of 16 positions of each input channel is one load straight from
 * X, feeding 8 output channels' accumulators, the weights broadcast from a
 * copy of W packed channel-major on the stack (8 weights of one input
 * channel adjacent, so every broadcast shares one base register).
 */
#include <immintrin.h>

#include "kernels/conv.h"
#include "kernels/x86/act_avx512.h"

/* Output channels m0 .. m0 + mr (mr <= 8) at positions p .. p + 16 NV
 * (lanes past np masked: st[v]). wp: the block's weights, [k][8]. */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void
pw_block(const float *xp, int64_t ldx, int64_t kk, const float *wp, int64_t mr, const float *bm,
         const evo_act *act, float *yp, int64_t ldy, const __mmask16 st[2], const int NV)
{
    __m512 acc[8][2];
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++) {
        const __m512 b = _mm512_set1_ps(bm != NULL ? bm[m < mr ? m : mr - 1] : 0.0f);
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[m][v] = b;
    }
    for (int64_t k = 0; k < kk; k++) {
        __m512 xv[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            xv[v] = _mm512_maskz_loadu_ps(st[v], xp + k * ldx + 16 * v);
#pragma GCC unroll 8
        for (int m = 0; m < 8; m++) {
            const __m512 wv = _mm512_set1_ps(wp[k * 8 + m]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc[m][v] = _mm512_fmadd_ps(wv, xv[v], acc[m][v]);
        }
    }
    const __m512 lo = _mm512_set1_ps(act->a), hi = _mm512_set1_ps(act->b);
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++) {
        if (m >= mr)
            break;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(yp + m * ldy + 16 * v, st[v],
                                  evo_act_avx512(acc[m][v], act->kind, lo, hi));
    }
}

static __mmask16 pw_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xFFFFu : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u);
}

/* Blocks of 8 output channels x 32 positions (16 accumulators; per input
 * channel two loads of X and eight broadcasts feed 16 FMAs), a last block
 * of 16 or fewer positions one vector wide. Positions outermost: 32
 * positions of all K input channels (at most 8 KiB) stay in L1 while every
 * channel block reads them. */
__attribute__((target("avx512f,avx2,fma"))) void
evo_conv1x1_smallk_avx512(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                          const evo_act *act, float *y)
{
    const int64_t kk = g->c, np = g->out_size;
    float wpk[EVO_CONV1X1_SMALLK_MAX_W];
    /* Block at m0 (every 8 channels) at wpk + m0 * kk, [k][8]; rows past
     * the last channel repeat it (computed, never stored). */
    for (int64_t m0 = 0; m0 < g->m; m0 += 8) {
        const int64_t mr = g->m - m0 < 8 ? g->m - m0 : 8;
        for (int64_t k = 0; k < kk; k++)
            for (int64_t m = 0; m < 8; m++)
                wpk[m0 * kk + k * 8 + m] = w[(m0 + (m < mr ? m : mr - 1)) * kk + k];
    }
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * g->c * g->in_size;
        float *yn = y + n * g->m * g->out_size;
        for (int64_t p = 0; p < np; p += 32) {
            const __mmask16 st[2] = {pw_mask(np - p), pw_mask(np - p - 16)};
            for (int64_t m0 = 0; m0 < g->m; m0 += 8) {
                const int64_t mr = g->m - m0 < 8 ? g->m - m0 : 8;
                const float *bm = bias != NULL ? bias + m0 : NULL;
                if (np - p > 16)
                    pw_block(xn + p, g->in_size, kk, wpk + m0 * kk, mr, bm, act, yn + m0 * np + p,
                             np, st, 2);
                else
                    pw_block(xn + p, g->in_size, kk, wpk + m0 * kk, mr, bm, act, yn + m0 * np + p,
                             np, st, 1);
            }
        }
    }
}
