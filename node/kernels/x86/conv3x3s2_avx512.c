/*
 * AVX-512F 3x3 stride-2 convolution with few input channels (a network's
 * stem: RGB in, 8-32 channels out), straight from NCHW (the contract of
 * evo_conv3x3s2_avx512 in conv.h).
 *
 * Why: the implicit-GEMM path (conv_fast.c, conv_implicit) first splits
 * every input row into its even and odd columns in a scratch copy, builds
 * an offset table and a descriptor per 32-wide tile, and computes the
 * padding columns of its flat layout only to drop them. With K = 27 that
 * set-up is as long as the arithmetic: tiny_vww_mbv1's 3->8 stem ran at half
 * the FMA rate. Here each output row's 16 columns are made directly: each
 * input row (channel c, kernel row kh) under them is read by four masked
 * loads (columns left of 0 and right of w - 1 are the zero padding, never
 * read), split into the three taps with three permutes, and each tap feeds
 * up to 16 output channels' accumulators (weights broadcast from memory).
 * Kernel rows above or below the input are skipped, so any pads work.
 */
#include <immintrin.h>

#include "kernels/conv.h"
#include "kernels/x86/act_avx512.h"

#define S2_FN __attribute__((target("avx512f,avx2,fma")))

/* Lanes i of a 16-float load at column b (possibly negative) that fall in
 * [0, w): the rest read as zero and are not touched. */
static inline __mmask16 s2_mask(int64_t b, int64_t w)
{
    const int64_t lo = b < 0 ? -b : 0, hi = w - b < 16 ? w - b : 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)((hi >= 16 ? 0xFFFFu : (1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* One block: output channels m0 .. m0 + mr (mr <= MB) of output row oh,
 * columns ow0 .. ow0 + 16 NV (the last vector masked to ow). MB and NV are
 * constants at every call, so the accumulators stay in registers. */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void
s2_block(const evo_conv_geom *g, const float *xn, const float *wp, int64_t mr, const float *bm,
         const evo_act *act, float *ym, int64_t oh, int64_t ow0, const int MB, const int NV)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const int64_t ih_n = g->in[1], iw_n = g->in[2], ow_n = g->out[2];
    __m512 acc[16][2];
#pragma GCC unroll 16
    for (int m = 0; m < MB; m++) {
        const __m512 b0 = _mm512_set1_ps(bm != NULL ? bm[m < mr ? m : mr - 1] : 0.0f);
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[m][v] = b0;
    }
    __mmask16 ml[2][4];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        const int64_t b = 2 * (ow0 + 16 * v) - g->pad_b[2];
        ml[v][0] = s2_mask(b, iw_n);
        ml[v][1] = s2_mask(b + 16, iw_n);
        ml[v][2] = s2_mask(b + 2, iw_n);
        ml[v][3] = s2_mask(b + 18, iw_n);
    }
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t kh = 0; kh < 3; kh++) {
            const int64_t ih = 2 * oh + kh - g->pad_b[1];
            if (ih < 0 || ih >= ih_n)
                continue; /* zero padding: adds nothing */
            const float *row = xn + c * g->in_size + ih * iw_n;
            __m512 tap[3][2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) {
                const float *p = row + 2 * (ow0 + 16 * v) - g->pad_b[2];
                const __m512 a0 = _mm512_maskz_loadu_ps(ml[v][0], p);
                const __m512 a1 = _mm512_maskz_loadu_ps(ml[v][1], p + 16);
                const __m512 a2 = _mm512_maskz_loadu_ps(ml[v][2], p + 2);
                const __m512 a3 = _mm512_maskz_loadu_ps(ml[v][3], p + 18);
                tap[0][v] = _mm512_permutex2var_ps(a0, ie, a1); /* columns 2j + b */
                tap[1][v] = _mm512_permutex2var_ps(a0, io, a1); /* 2j + b + 1 */
                tap[2][v] = _mm512_permutex2var_ps(a2, ie, a3); /* 2j + b + 2 */
            }
            const float *wk = wp + (c * 9 + kh * 3) * MB;
#pragma GCC unroll 3
            for (int kw = 0; kw < 3; kw++)
#pragma GCC unroll 16
                for (int m = 0; m < MB; m++) {
                    const __m512 wv = _mm512_set1_ps(wk[kw * MB + m]);
#pragma GCC unroll 2
                    for (int v = 0; v < NV; v++)
                        acc[m][v] = _mm512_fmadd_ps(wv, tap[kw][v], acc[m][v]);
                }
        }
    const __m512 lo = _mm512_set1_ps(act->a), hi = _mm512_set1_ps(act->b);
#pragma GCC unroll 16
    for (int m = 0; m < MB; m++) {
        if (m >= mr)
            break;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            const int64_t col = ow0 + 16 * v, left = ow_n - col;
            if (left <= 0)
                break;
            const __mmask16 st = left >= 16 ? (__mmask16)0xFFFFu : (__mmask16)((1u << left) - 1u);
            _mm512_mask_storeu_ps(ym + m * g->out_size + oh * ow_n + col, st,
                                  evo_act_avx512(acc[m][v], act->kind, lo, hi));
        }
    }
}

/* Channel blocks: 16 output channels (one vector of 16 columns each) while
 * 16 remain, the rest 8 at a time over two vectors (32 columns) and one for
 * a row's last 16 or fewer columns: 16 accumulators wherever possible, each
 * tap vector feeding 16 FMAs. */
static int64_t s2_block_rows(int64_t left)
{
    return left >= 16 ? 16 : left > 8 ? 8 : left;
}

/* Rows outermost, so the input rows under one output row stay in L1 across
 * the channel blocks. The weights are first repacked (on the stack: K <= 36,
 * M <= EVO_CONV3X3S2_MAX_M) so that one block's weights of one tap are
 * adjacent: the broadcasts then share one base register, where the 16
 * rows of W at their own offsets did not fit the general registers. */
S2_FN void evo_conv3x3s2_avx512(const evo_conv_geom *g, const float *x, const float *w,
                                const float *bias, const evo_act *act, float *y)
{
    const int64_t kc = g->cg * 9, ow_n = g->out[2];
    float wpk[EVO_CONV3X3S2_MAX_C * 9 * (EVO_CONV3X3S2_MAX_M + 16)];
    /* Block at m0 (width MB: 16 or 8) at wpk + m0 * kc, [k][MB]; rows past
     * the block's last channel repeat it (computed, never stored). */
    for (int64_t m0 = 0; m0 < g->m;) {
        const int64_t mr = s2_block_rows(g->m - m0), mb = mr == 16 ? 16 : 8;
        for (int64_t k = 0; k < kc; k++)
            for (int64_t m = 0; m < mb; m++)
                wpk[m0 * kc + k * mb + m] = w[(m0 + (m < mr ? m : mr - 1)) * kc + k];
        m0 += mr;
    }
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * g->c * g->in_size;
        float *yn = y + n * g->m * g->out_size;
        for (int64_t oh = 0; oh < g->out[1]; oh++)
            for (int64_t m0 = 0; m0 < g->m;) {
                const int64_t mr = s2_block_rows(g->m - m0);
                const float *wp = wpk + m0 * kc;
                const float *bm = bias != NULL ? bias + m0 : NULL;
                float *ym = yn + m0 * g->out_size;
                int64_t ow0 = 0;
                if (mr == 16)
                    for (; ow0 < ow_n; ow0 += 16)
                        s2_block(g, xn, wp, 16, bm, act, ym, oh, ow0, 16, 1);
                for (; ow_n - ow0 > 16; ow0 += 32)
                    s2_block(g, xn, wp, mr, bm, act, ym, oh, ow0, 8, 2);
                if (ow0 < ow_n)
                    s2_block(g, xn, wp, mr, bm, act, ym, oh, ow0, 8, 1);
                m0 += mr;
            }
    }
}
