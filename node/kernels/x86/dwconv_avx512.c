/*
 * AVX-512F row kernel of the direct depthwise convolution (the contract of
 * evo_dwconv_rows_avx2 in conv.h): a run of interior outputs of one output
 * row (or of a flat run over a padded plane), written as bias + taps, then
 * Relu or Clip. Four zmm accumulators (64 outputs) per step keep the FMA
 * chains independent; the last 1..63 outputs use the same four vectors
 * with masked loads and stores, which touch only the lanes they need. Stride 2 takes
 * the even inputs of 32 with a two-source permute.
 */
#include <immintrin.h>

#include "kernels/conv.h"
#include "kernels/x86/act_avx512.h"

#define DW512_FN __attribute__((target("avx512f,avx2,fma")))

/* Inputs s[0], s[stride], ... s[15 * stride] of lanes under mask m; with
 * stride 2 the two loads cover s[0 .. 2 * last], last being the highest
 * lane in m. */
DW512_FN static inline __m512 dw512_load(const float *s, int64_t stride, __mmask16 m, int64_t nlane)
{
    if (stride == 1)
        return _mm512_maskz_loadu_ps(m, s);
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    if (nlane == 0)
        return _mm512_setzero_ps();
    const int64_t need = 2 * nlane - 1; /* floats s[0 .. need) */
    const __mmask16 m_lo = (__mmask16)(need >= 16 ? 0xFFFFu : (1u << need) - 1u);
    const __mmask16 m_hi = (__mmask16)(need <= 16 ? 0u : (1u << (need - 16)) - 1u);
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m_lo, s), even,
                                  _mm512_maskz_loadu_ps(m_hi, s + 16));
}

DW512_FN static inline __m512 dw512_load_full(const float *s, int64_t stride)
{
    if (stride == 1)
        return _mm512_loadu_ps(s);
    /* s[0 .. 31): the second load starts at +15 so it ends at the last input
     * needed (s[30]); its even inputs sit at odd lanes 1, 3, .. 15. */
    const __m512i pick = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16 + 1, 16 + 3, 16 + 5,
                                           16 + 7, 16 + 9, 16 + 11, 16 + 13, 16 + 15);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(s), pick, _mm512_loadu_ps(s + 15));
}

DW512_FN void evo_dwconv_rows_avx512(float *out, int64_t n, const float *in, int64_t in_row,
                                     const float *w, int64_t rows, int64_t kw, int64_t stride,
                                     int64_t dil, float bias, const evo_act *act)
{
    const __m512 vb = _mm512_set1_ps(bias);
    const int32_t ak = act->kind;
    const __m512 clo = _mm512_set1_ps(act->a), chi = _mm512_set1_ps(act->b);
    int64_t t = 0;
    for (; t + 64 <= n; t += 64) {
        __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < kw; q++) {
                const __m512 wv = _mm512_set1_ps(w[r * kw + q]);
                const float *s = in + r * in_row + q * dil + t * stride;
                a0 = _mm512_fmadd_ps(wv, dw512_load_full(s, stride), a0);
                a1 = _mm512_fmadd_ps(wv, dw512_load_full(s + 16 * stride, stride), a1);
                a2 = _mm512_fmadd_ps(wv, dw512_load_full(s + 32 * stride, stride), a2);
                a3 = _mm512_fmadd_ps(wv, dw512_load_full(s + 48 * stride, stride), a3);
            }
        _mm512_storeu_ps(out + t, evo_act_avx512(a0, ak, clo, chi));
        _mm512_storeu_ps(out + t + 16, evo_act_avx512(a1, ak, clo, chi));
        _mm512_storeu_ps(out + t + 32, evo_act_avx512(a2, ak, clo, chi));
        _mm512_storeu_ps(out + t + 48, evo_act_avx512(a3, ak, clo, chi));
    }
    if (t < n) {
        /* 1..63 outputs left: four masked vectors (some may be empty), so
         * the tap chains stay independent as in the loop above. */
        int64_t nl[4];
        __mmask16 m[4];
        for (int i = 0; i < 4; i++) {
            const int64_t left = n - t - 16 * i;
            nl[i] = left <= 0 ? 0 : (left < 16 ? left : 16);
            m[i] = (__mmask16)(nl[i] == 16 ? 0xFFFFu : (1u << nl[i]) - 1u);
        }
        __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < kw; q++) {
                const __m512 wv = _mm512_set1_ps(w[r * kw + q]);
                const float *s = in + r * in_row + q * dil + t * stride;
                a0 = _mm512_fmadd_ps(wv, dw512_load(s, stride, m[0], nl[0]), a0);
                a1 = _mm512_fmadd_ps(wv, dw512_load(s + 16 * stride, stride, m[1], nl[1]), a1);
                a2 = _mm512_fmadd_ps(wv, dw512_load(s + 32 * stride, stride, m[2], nl[2]), a2);
                a3 = _mm512_fmadd_ps(wv, dw512_load(s + 48 * stride, stride, m[3], nl[3]), a3);
            }
        _mm512_mask_storeu_ps(out + t, m[0], evo_act_avx512(a0, ak, clo, chi));
        _mm512_mask_storeu_ps(out + t + 16, m[1], evo_act_avx512(a1, ak, clo, chi));
        _mm512_mask_storeu_ps(out + t + 32, m[2], evo_act_avx512(a2, ak, clo, chi));
        _mm512_mask_storeu_ps(out + t + 48, m[3], evo_act_avx512(a3, ak, clo, chi));
    }
}

/* 3x3 taps with the weights in registers: one output vector per call. */
#define DW512_TAPS3(ACC, S, M, NL)                                                                 \
    do {                                                                                           \
        ACC = _mm512_fmadd_ps(w0, dw512_load((S), stride, M, NL), ACC);                            \
        ACC = _mm512_fmadd_ps(w1, dw512_load((S) + dil, stride, M, NL), ACC);                      \
        ACC = _mm512_fmadd_ps(w2, dw512_load((S) + 2 * dil, stride, M, NL), ACC);                  \
        ACC = _mm512_fmadd_ps(w3, dw512_load((S) + in_row, stride, M, NL), ACC);                   \
        ACC = _mm512_fmadd_ps(w4, dw512_load((S) + in_row + dil, stride, M, NL), ACC);             \
        ACC = _mm512_fmadd_ps(w5, dw512_load((S) + in_row + 2 * dil, stride, M, NL), ACC);         \
        ACC = _mm512_fmadd_ps(w6, dw512_load((S) + 2 * in_row, stride, M, NL), ACC);               \
        ACC = _mm512_fmadd_ps(w7, dw512_load((S) + 2 * in_row + dil, stride, M, NL), ACC);         \
        ACC = _mm512_fmadd_ps(w8, dw512_load((S) + 2 * in_row + 2 * dil, stride, M, NL), ACC);     \
    } while (0)

DW512_FN void evo_dwconv_plane_avx512(float *out, int64_t rows_out, int64_t n, int64_t out_row,
                                      const float *in, int64_t in_step, int64_t in_row,
                                      const float *w, int64_t kh, int64_t kw, int64_t stride,
                                      int64_t dil, float bias, const evo_act *act)
{
    if (kh != 3 || kw != 3) {
        for (int64_t r = 0; r < rows_out; r++)
            evo_dwconv_rows_avx512(out + r * out_row, n, in + r * in_step, in_row, w, kh, kw,
                                   stride, dil, bias, act);
        return;
    }
    const __m512 vb = _mm512_set1_ps(bias);
    const int32_t ak = act->kind;
    const __m512 clo = _mm512_set1_ps(act->a), chi = _mm512_set1_ps(act->b);
    const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]), w2 = _mm512_set1_ps(w[2]);
    const __m512 w3 = _mm512_set1_ps(w[3]), w4 = _mm512_set1_ps(w[4]), w5 = _mm512_set1_ps(w[5]);
    const __m512 w6 = _mm512_set1_ps(w[6]), w7 = _mm512_set1_ps(w[7]), w8 = _mm512_set1_ps(w[8]);
    for (int64_t r = 0; r < rows_out; r++) {
        float *o = out + r * out_row;
        const float *x = in + r * in_step;
        int64_t t = 0;
        for (; t + 32 <= n; t += 32) {
            __m512 a0 = vb, a1 = vb;
            const float *s0 = x + t * stride, *s1 = s0 + 16 * stride;
            DW512_TAPS3(a0, s0, 0xFFFF, 16);
            DW512_TAPS3(a1, s1, 0xFFFF, 16);
            _mm512_storeu_ps(o + t, evo_act_avx512(a0, ak, clo, chi));
            _mm512_storeu_ps(o + t + 16, evo_act_avx512(a1, ak, clo, chi));
        }
        for (; t < n; t += 16) {
            const int64_t nl = n - t < 16 ? n - t : 16;
            const __mmask16 m = (__mmask16)(nl == 16 ? 0xFFFFu : (1u << nl) - 1u);
            __m512 a0 = vb;
            DW512_TAPS3(a0, x + t * stride, m, nl);
            _mm512_mask_storeu_ps(o + t, m, evo_act_avx512(a0, ak, clo, chi));
        }
    }
}

/* ---------------------------------------------------------------- masked flat runs */

DW512_FN void evo_dwconv_masks_avx512(uint16_t *masks, int64_t n_out, int64_t ow, int64_t s,
                                      int64_t ih, int64_t iw, int64_t kh, int64_t kw, int64_t pt,
                                      int64_t pl, int64_t dil)
{
    int32_t r0[16], c0[16];
    for (int j = 0; j < 16; j++) {
        r0[j] = (int32_t)(j / ow);
        c0[j] = (int32_t)(j % ow);
    }
    __m512i r = _mm512_loadu_si512(r0), c = _mm512_loadu_si512(c0);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vow = _mm512_set1_epi32((int32_t)ow), one = _mm512_set1_epi32(1);
    const __m512i vih = _mm512_set1_epi32((int32_t)ih), viw = _mm512_set1_epi32((int32_t)iw);
    const __m512i v16 = _mm512_set1_epi32(16);
    const int64_t nvec = (n_out + 15) / 16, nt = kh * kw;
    for (int64_t v = 0; v < nvec; v++) {
        const __mmask16 live =
            _mm512_cmplt_epi32_mask(_mm512_add_epi32(lane, _mm512_set1_epi32((int32_t)(16 * v))),
                                    _mm512_set1_epi32((int32_t)n_out));
        const __m512i ir = _mm512_sub_epi32(_mm512_mullo_epi32(r, _mm512_set1_epi32((int32_t)s)),
                                            _mm512_set1_epi32((int32_t)pt));
        const __m512i ic = _mm512_sub_epi32(_mm512_mullo_epi32(c, _mm512_set1_epi32((int32_t)s)),
                                            _mm512_set1_epi32((int32_t)pl));
        uint16_t *mv = masks + v * nt;
        for (int64_t a = 0; a < kh; a++) {
            /* Unsigned compare: a negative row is a huge unsigned one. */
            const __mmask16 rm = _mm512_mask_cmplt_epu32_mask(
                live, _mm512_add_epi32(ir, _mm512_set1_epi32((int32_t)(a * dil))), vih);
            for (int64_t b = 0; b < kw; b++)
                mv[a * kw + b] = (uint16_t)_mm512_mask_cmplt_epu32_mask(
                    rm, _mm512_add_epi32(ic, _mm512_set1_epi32((int32_t)(b * dil))), viw);
        }
        c = _mm512_add_epi32(c, v16);
        for (__mmask16 m = _mm512_cmpge_epi32_mask(c, vow); m != 0;
             m = _mm512_cmpge_epi32_mask(c, vow)) {
            c = _mm512_mask_sub_epi32(c, m, c, vow);
            r = _mm512_mask_add_epi32(r, m, r, one);
        }
    }
}

DW512_FN void evo_dwconv_masked_avx512(float *y, int64_t n_out, const float *src,
                                       const int64_t *off, const float *w, int64_t nt,
                                       const uint16_t *masks, float bias, const evo_act *act)
{
    const __m512 vb = _mm512_set1_ps(bias);
    const int32_t ak = act->kind;
    const __m512 clo = _mm512_set1_ps(act->a), chi = _mm512_set1_ps(act->b);
    const int64_t nvec = (n_out + 15) / 16;
    /* Tap t of output t0 reads src + off[t] + t0: the address is formed as
     * an integer, since for masked-off lanes it may lie outside src. */
    const uintptr_t base = (uintptr_t)src;
#define DW_SRC(t, v) ((const float *)(base + (uintptr_t)((off[t] + 16 * (v)) * 4)))
    int64_t v = 0;
    if (nt == 9) {
        const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]);
        const __m512 w2 = _mm512_set1_ps(w[2]), w3 = _mm512_set1_ps(w[3]);
        const __m512 w4 = _mm512_set1_ps(w[4]), w5 = _mm512_set1_ps(w[5]);
        const __m512 w6 = _mm512_set1_ps(w[6]), w7 = _mm512_set1_ps(w[7]);
        const __m512 w8 = _mm512_set1_ps(w[8]);
        for (; v < nvec; v++) {
            const uint16_t *m = masks + v * 9;
            __m512 a0 = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m[0], DW_SRC(0, v)), vb);
            __m512 a1 = _mm512_mul_ps(w1, _mm512_maskz_loadu_ps(m[1], DW_SRC(1, v)));
            __m512 a2 = _mm512_mul_ps(w2, _mm512_maskz_loadu_ps(m[2], DW_SRC(2, v)));
            a0 = _mm512_fmadd_ps(w3, _mm512_maskz_loadu_ps(m[3], DW_SRC(3, v)), a0);
            a1 = _mm512_fmadd_ps(w4, _mm512_maskz_loadu_ps(m[4], DW_SRC(4, v)), a1);
            a2 = _mm512_fmadd_ps(w5, _mm512_maskz_loadu_ps(m[5], DW_SRC(5, v)), a2);
            a0 = _mm512_fmadd_ps(w6, _mm512_maskz_loadu_ps(m[6], DW_SRC(6, v)), a0);
            a1 = _mm512_fmadd_ps(w7, _mm512_maskz_loadu_ps(m[7], DW_SRC(7, v)), a1);
            a2 = _mm512_fmadd_ps(w8, _mm512_maskz_loadu_ps(m[8], DW_SRC(8, v)), a2);
            const __m512 acc =
                evo_act_avx512(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), ak, clo, chi);
            const int64_t left = n_out - 16 * v;
            _mm512_mask_storeu_ps(y + 16 * v, (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1u),
                                  acc);
        }
        return;
    }
    for (; v < nvec; v++) {
        const uint16_t *m = masks + v * nt;
        __m512 a0 = vb, a1 = _mm512_setzero_ps();
        int64_t t = 0;
        for (; t + 2 <= nt; t += 2) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(m[t], DW_SRC(t, v)),
                                 a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(w[t + 1]),
                                 _mm512_maskz_loadu_ps(m[t + 1], DW_SRC(t + 1, v)), a1);
        }
        if (t < nt)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(m[t], DW_SRC(t, v)),
                                 a0);
        const __m512 acc = evo_act_avx512(_mm512_add_ps(a0, a1), ak, clo, chi);
        const int64_t left = n_out - 16 * v;
        _mm512_mask_storeu_ps(y + 16 * v, (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1u),
                              acc);
    }
#undef DW_SRC
}
