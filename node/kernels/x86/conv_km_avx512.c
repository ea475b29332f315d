/*
 * AVX-512F kernel for Conv with W in the EVO_CONV_W_KM layout ([K][M],
 * output channels innermost; see conv.h and modeldb/pass_layout.c).
 *
 * On small output planes (a 6x6 map has 36 positions, a 3x3 map 9) the
 * usual kernels, which vectorize over positions, leave many lanes empty.
 * Here the vector runs over 16 output channels instead: a register block of
 * 4 positions x 64 channels (16 accumulators) takes per reduction step 4
 * weight loads and 4 broadcasts for 16 FMAs. Y is NCHW, so a block is
 * stored transposed: an in-lane 4x4 transpose turns the 4 position vectors
 * into, per channel, the 4 consecutive floats of Y it owns, which go out as
 * one 128-bit store each. Partial blocks (fewer positions or channels) go
 * through a small buffer.
 */
#include <immintrin.h>

#include "kernels/conv.h"

#define KM_FN __attribute__((target("avx512f,avx2,fma")))
#define KM_PT 4 /* positions per block */
#define KM_MV 4 /* 16-channel vectors per block */

KM_FN static inline __m512 km_epilogue(__m512 v, __m512 b, int32_t act, __m512 lo, __m512 hi)
{
    v = _mm512_add_ps(v, b);
    if (act == EVO_ACT_RELU) /* max_ps(v, 0) is v > 0 ? v : 0, so NaN -> 0 as evo_act_apply */
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    else if (act == EVO_ACT_CLIP)
        v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    return v;
}

/* The accumulation of a block of NP positions x 64 channels, written out
 * once per NP: -O2 does not unroll the generic loops in km_block, and the
 * accumulators must stay in registers. X(P) reads position P's input of
 * reduction step k: evenly spaced positions (KM_XU: one base, P * ps) or
 * positions of several output rows (KM_XB: one base per position, the
 * offsets of pos; slower by 3% on evenly spaced ones, hence two loops). */
#define KM_XU(P) br[(P)*ps]
#define KM_XB(P) bp##P[row]
#define KM_ROW(NP, P, X)                                                                           \
    if (NP > P) {                                                                                  \
        const __m512 xv = _mm512_set1_ps(X(P));                                                    \
        a##P##0 = _mm512_fmadd_ps(xv, w0, a##P##0);                                                \
        a##P##1 = _mm512_fmadd_ps(xv, w1, a##P##1);                                                \
        a##P##2 = _mm512_fmadd_ps(xv, w2, a##P##2);                                                \
        a##P##3 = _mm512_fmadd_ps(xv, w3, a##P##3);                                                \
    }
#define KM_STEP(NP, X)                                                                             \
    for (int64_t k = 0; k < kk; k++) {                                                             \
        const float *wr = wt + k * mm;                                                             \
        const __m512 w0 = _mm512_loadu_ps(wr), w1 = _mm512_loadu_ps(wr + 16);                      \
        const __m512 w2 = _mm512_loadu_ps(wr + 32), w3 = _mm512_loadu_ps(wr + 48);                 \
        const int64_t row = tab != NULL ? tab[k] : k * ldb;                                        \
        const float *br = b + row;                                                                 \
        (void)br;                                                                                  \
        KM_ROW(NP, 0, X)                                                                           \
        KM_ROW(NP, 1, X)                                                                           \
        KM_ROW(NP, 2, X)                                                                           \
        KM_ROW(NP, 3, X)                                                                           \
    }
#define KM_FULL(NP)                                                                                \
    KM_FN static void km_full##NP(int64_t kk, const float *b, int64_t ldb, const int32_t *tab,     \
                                  int64_t ps, const int64_t *po, const float *wt, int64_t mm,      \
                                  __m512 acc[KM_PT][KM_MV])                                        \
    {                                                                                              \
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;                         \
        __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;                                         \
        __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00;                                         \
        __m512 a30 = a00, a31 = a00, a32 = a00, a33 = a00;                                         \
        if (po == NULL) {                                                                          \
            KM_STEP(NP, KM_XU)                                                                     \
        } else {                                                                                   \
            const float *bp0 = b + po[0], *bp1 = b + po[NP > 1 ? 1 : 0];                           \
            const float *bp2 = b + po[NP > 2 ? 2 : 0], *bp3 = b + po[NP > 3 ? 3 : 0];              \
            (void)bp1, (void)bp2, (void)bp3;                                                       \
            KM_STEP(NP, KM_XB)                                                                     \
        }                                                                                          \
        acc[0][0] = a00, acc[0][1] = a01, acc[0][2] = a02, acc[0][3] = a03;                        \
        acc[1][0] = a10, acc[1][1] = a11, acc[1][2] = a12, acc[1][3] = a13;                        \
        acc[2][0] = a20, acc[2][1] = a21, acc[2][2] = a22, acc[2][3] = a23;                        \
        acc[3][0] = a30, acc[3][1] = a31, acc[3][2] = a32, acc[3][3] = a33;                        \
    }
KM_FULL(1)
KM_FULL(2)
KM_FULL(3)
KM_FULL(4)

/* One block: positions p0 .. p0 + np (np <= KM_PT) at b + p * ps, or at
 * b + po[p] when po is not NULL; channels m0 .. m0 + mc (mc <= 64). np is
 * a compile-time constant at every call, so the position loops unroll and
 * the accumulators stay in registers. */
KM_FN static inline __attribute__((always_inline)) void
km_block(const int np, int64_t kk, const float *b, int64_t ldb, const int32_t *tab, int64_t ps,
         const int64_t *po, const float *wt, int64_t mm, int64_t mc, const float *bias, int32_t act,
         __m512 lo, __m512 hi, float *y, int64_t ldy)
{
    __mmask16 mk[KM_MV];
    for (int v = 0; v < KM_MV; v++) {
        const int64_t left = mc - 16 * v;
        mk[v] = left >= 16 ? (__mmask16)0xFFFF
                           : (left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u));
    }
    __m512 acc[KM_PT][KM_MV];
    for (int p = 0; p < KM_PT; p++)
        for (int v = 0; v < KM_MV; v++)
            acc[p][v] = _mm512_setzero_ps();
    const int nv = (int)((mc + 15) / 16);
    if (mc == 16 * KM_MV) {
        switch (np) {
        case 4:
            km_full4(kk, b, ldb, tab, ps, po, wt, mm, acc);
            break;
        case 3:
            km_full3(kk, b, ldb, tab, ps, po, wt, mm, acc);
            break;
        case 2:
            km_full2(kk, b, ldb, tab, ps, po, wt, mm, acc);
            break;
        default:
            km_full1(kk, b, ldb, tab, ps, po, wt, mm, acc);
            break;
        }
    } else {
        for (int64_t k = 0; k < kk; k++) {
            const float *wr = wt + k * mm;
            __m512 wv[KM_MV];
            for (int v = 0; v < KM_MV; v++)
                wv[v] = v < nv ? _mm512_maskz_loadu_ps(mk[v], wr + 16 * v) : _mm512_setzero_ps();
            const float *br = b + (tab != NULL ? tab[k] : k * ldb);
            for (int p = 0; p < np; p++) {
                const __m512 xv = _mm512_set1_ps(br[po != NULL ? po[p] : p * ps]);
                for (int v = 0; v < KM_MV; v++)
                    if (v < nv)
                        acc[p][v] = _mm512_fmadd_ps(xv, wv[v], acc[p][v]);
            }
        }
    }
    for (int v = 0; v < nv; v++) {
        const __m512 bv =
            bias != NULL ? _mm512_maskz_loadu_ps(mk[v], bias + 16 * v) : _mm512_setzero_ps();
        for (int p = 0; p < np; p++)
            acc[p][v] = km_epilogue(acc[p][v], bv, act, lo, hi);
    }
    if (np == KM_PT) {
        /* Full position block: transpose 4x4 within each 128-bit lane, so
         * lane L of r[i] holds channel 16 v + 4 L + i at the 4 positions. */
        for (int v = 0; v < nv; v++) {
            const __m512 t0 = _mm512_unpacklo_ps(acc[0][v], acc[1][v]);
            const __m512 t1 = _mm512_unpackhi_ps(acc[0][v], acc[1][v]);
            const __m512 t2 = _mm512_unpacklo_ps(acc[2][v], acc[3][v]);
            const __m512 t3 = _mm512_unpackhi_ps(acc[2][v], acc[3][v]);
            __m512 r[4];
            r[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
            r[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
            r[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
            r[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
            float *yv = y + 16 * v * ldy;
            const int64_t left = mc - 16 * v;
            if (left >= 16) {
                for (int i = 0; i < 4; i++) {
                    _mm_storeu_ps(yv + (0 + i) * ldy, _mm512_castps512_ps128(r[i]));
                    _mm_storeu_ps(yv + (4 + i) * ldy, _mm512_extractf32x4_ps(r[i], 1));
                    _mm_storeu_ps(yv + (8 + i) * ldy, _mm512_extractf32x4_ps(r[i], 2));
                    _mm_storeu_ps(yv + (12 + i) * ldy, _mm512_extractf32x4_ps(r[i], 3));
                }
            } else {
                _Alignas(64) float lanes[4][16];
                for (int i = 0; i < 4; i++)
                    _mm512_store_ps(lanes[i], r[i]);
                for (int64_t j = 0; j < left; j++)
                    _mm_storeu_ps(yv + j * ldy, _mm_load_ps(&lanes[j % 4][4 * (j / 4)]));
            }
        }
    } else {
        _Alignas(64) float buf[KM_PT][16 * KM_MV];
        for (int p = 0; p < np; p++)
            for (int v = 0; v < nv; v++)
                _mm512_store_ps(&buf[p][16 * v], acc[p][v]);
        for (int64_t j = 0; j < mc; j++)
            for (int p = 0; p < np; p++)
                y[j * ldy + p] = buf[p][j];
    }
}

/* Store 4 position vectors (a[p] lane j = channel j at position p) as 16
 * runs of 4 floats, channel j at y + j * ldy. */
KM_FN static inline void km_store4x16(float *y, int64_t ldy, __m512 a0, __m512 a1, __m512 a2,
                                      __m512 a3)
{
    const __m512 t0 = _mm512_unpacklo_ps(a0, a1), t1 = _mm512_unpackhi_ps(a0, a1);
    const __m512 t2 = _mm512_unpacklo_ps(a2, a3), t3 = _mm512_unpackhi_ps(a2, a3);
    __m512 r[4];
    r[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    r[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    r[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    r[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    for (int i = 0; i < 4; i++) {
        _mm_storeu_ps(y + (0 + i) * ldy, _mm512_castps512_ps128(r[i]));
        _mm_storeu_ps(y + (4 + i) * ldy, _mm512_extractf32x4_ps(r[i], 1));
        _mm_storeu_ps(y + (8 + i) * ldy, _mm512_extractf32x4_ps(r[i], 2));
        _mm_storeu_ps(y + (12 + i) * ldy, _mm512_extractf32x4_ps(r[i], 3));
    }
}

/* A block of 8 positions x 32 channels, for M = 32 (a 64-channel block
 * would be half empty). */
KM_FN static void km_narrow8(int64_t kk, const float *b, int64_t ldb, const int32_t *tab,
                             int64_t ps, const float *wt, int64_t mm, const float *bias,
                             int32_t kind, __m512 lo, __m512 hi, float *y, int64_t ldy)
{
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m512 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    __m512 a60 = a00, a61 = a00, a70 = a00, a71 = a00;
    for (int64_t k = 0; k < kk; k++) {
        const __m512 w0 = _mm512_loadu_ps(wt + k * mm), w1 = _mm512_loadu_ps(wt + k * mm + 16);
        const float *br = b + (tab != NULL ? tab[k] : k * ldb);
        __m512 xv = _mm512_set1_ps(br[0]);
        a00 = _mm512_fmadd_ps(xv, w0, a00);
        a01 = _mm512_fmadd_ps(xv, w1, a01);
        xv = _mm512_set1_ps(br[ps]);
        a10 = _mm512_fmadd_ps(xv, w0, a10);
        a11 = _mm512_fmadd_ps(xv, w1, a11);
        xv = _mm512_set1_ps(br[2 * ps]);
        a20 = _mm512_fmadd_ps(xv, w0, a20);
        a21 = _mm512_fmadd_ps(xv, w1, a21);
        xv = _mm512_set1_ps(br[3 * ps]);
        a30 = _mm512_fmadd_ps(xv, w0, a30);
        a31 = _mm512_fmadd_ps(xv, w1, a31);
        xv = _mm512_set1_ps(br[4 * ps]);
        a40 = _mm512_fmadd_ps(xv, w0, a40);
        a41 = _mm512_fmadd_ps(xv, w1, a41);
        xv = _mm512_set1_ps(br[5 * ps]);
        a50 = _mm512_fmadd_ps(xv, w0, a50);
        a51 = _mm512_fmadd_ps(xv, w1, a51);
        xv = _mm512_set1_ps(br[6 * ps]);
        a60 = _mm512_fmadd_ps(xv, w0, a60);
        a61 = _mm512_fmadd_ps(xv, w1, a61);
        xv = _mm512_set1_ps(br[7 * ps]);
        a70 = _mm512_fmadd_ps(xv, w0, a70);
        a71 = _mm512_fmadd_ps(xv, w1, a71);
    }
    const __m512 b0 = bias != NULL ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias != NULL ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    km_store4x16(y, ldy, km_epilogue(a00, b0, kind, lo, hi), km_epilogue(a10, b0, kind, lo, hi),
                 km_epilogue(a20, b0, kind, lo, hi), km_epilogue(a30, b0, kind, lo, hi));
    km_store4x16(y + 4, ldy, km_epilogue(a40, b0, kind, lo, hi), km_epilogue(a50, b0, kind, lo, hi),
                 km_epilogue(a60, b0, kind, lo, hi), km_epilogue(a70, b0, kind, lo, hi));
    km_store4x16(y + 16 * ldy, ldy, km_epilogue(a01, b1, kind, lo, hi),
                 km_epilogue(a11, b1, kind, lo, hi), km_epilogue(a21, b1, kind, lo, hi),
                 km_epilogue(a31, b1, kind, lo, hi));
    km_store4x16(y + 16 * ldy + 4, ldy, km_epilogue(a41, b1, kind, lo, hi),
                 km_epilogue(a51, b1, kind, lo, hi), km_epilogue(a61, b1, kind, lo, hi),
                 km_epilogue(a71, b1, kind, lo, hi));
}

KM_FN void evo_conv_km_avx512(int64_t kk, const float *b, int64_t ldb, const int32_t *tab,
                              int64_t ps, const int32_t *pos, int64_t np, const float *wt,
                              int64_t mm, const float *bias, const evo_act *act, float *y,
                              int64_t ldy)
{
    const int32_t kind = act->kind;
    const __m512 lo = _mm512_set1_ps(act->a), hi = _mm512_set1_ps(act->b);
    int64_t po[KM_PT];
    for (int64_t m0 = 0; m0 < mm; m0 += 16 * KM_MV) {
        const int64_t mc = mm - m0 < 16 * KM_MV ? mm - m0 : 16 * KM_MV;
        const float *bm = bias != NULL ? bias + m0 : NULL;
        float *ym = y + m0 * ldy;
        int64_t p0 = 0;
        if (pos != NULL) { /* positions anywhere: one base per position */
            for (; p0 < np; p0 += KM_PT) {
                const int64_t n = np - p0 < KM_PT ? np - p0 : KM_PT;
                for (int64_t p = 0; p < n; p++)
                    po[p] = pos[p0 + p];
                const float *wm = wt + m0;
                float *yp = ym + p0;
                if (n == 4)
                    km_block(4, kk, b, ldb, tab, 0, po, wm, mm, mc, bm, kind, lo, hi, yp, ldy);
                else if (n == 3)
                    km_block(3, kk, b, ldb, tab, 0, po, wm, mm, mc, bm, kind, lo, hi, yp, ldy);
                else if (n == 2)
                    km_block(2, kk, b, ldb, tab, 0, po, wm, mm, mc, bm, kind, lo, hi, yp, ldy);
                else
                    km_block(1, kk, b, ldb, tab, 0, po, wm, mm, mc, bm, kind, lo, hi, yp, ldy);
            }
            continue;
        }
        if (mc == 32)
            for (; p0 + 8 <= np; p0 += 8)
                km_narrow8(kk, b + p0 * ps, ldb, tab, ps, wt + m0, mm, bm, kind, lo, hi, ym + p0,
                           ldy);
        for (; p0 + KM_PT <= np; p0 += KM_PT)
            km_block(KM_PT, kk, b + p0 * ps, ldb, tab, ps, NULL, wt + m0, mm, mc, bm, kind, lo, hi,
                     ym + p0, ldy);
        switch (np - p0) {
        case 3:
            km_block(3, kk, b + p0 * ps, ldb, tab, ps, NULL, wt + m0, mm, mc, bm, kind, lo, hi,
                     ym + p0, ldy);
            break;
        case 2:
            km_block(2, kk, b + p0 * ps, ldb, tab, ps, NULL, wt + m0, mm, mc, bm, kind, lo, hi,
                     ym + p0, ldy);
            break;
        case 1:
            km_block(1, kk, b + p0 * ps, ldb, tab, ps, NULL, wt + m0, mm, mc, bm, kind, lo, hi,
                     ym + p0, ldy);
            break;
        default:
            break;
        }
    }
}
