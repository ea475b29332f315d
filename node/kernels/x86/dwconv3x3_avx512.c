/*
 * AVX-512F depthwise 3x3 convolutions (pads 1) of one channel plane,
 * straight from NCHW: stride 1 "same" and stride 2 (the contracts of
 * evo_dwconv3x3s1_avx512 and evo_dwconv3x3s2_avx512 in conv.h).
 *
 * Why: the other depthwise paths either copy each channel into a padded
 * plane first or run one flat masked run over it, where every tap is a
 * masked load plus a mask and an offset fetched from memory: 27 loads per
 * 16 outputs, which kept tiny_vww_mbv1's 48x48 and 24x24 planes at about
 * 18 cycles per vector. Here two output rows are made at once from their
 * four input rows (12 loads for 18 FMAs, the nine weights in registers),
 * rows above and below the plane read a zero row instead of being
 * special-cased, and only the first and last vector of a row need masks
 * (the columns left of 0 and right of w - 1 are the zero padding).
 *
 * Stride 2 had the same problem and one more: the masked path first splits
 * every input row into its even and odd columns, one call per row, which
 * was half of the time of tiny_vww_mbv1's 48x48 stride-2 conv. Here each
 * input row's 32 columns under 16 outputs are two loads, split into evens
 * (tap 1) and odds (tap 2) with two permutes; tap 0 (the odd columns one
 * to the left) is the odds shifted by one lane, the lane shifted in being
 * the previous vector's last odd column (zero, the padding, at column 0).
 */
#include <immintrin.h>

#include "kernels/conv.h"
#include "kernels/x86/act_avx512.h"

#define DW3_FN __attribute__((target("avx512f,avx2,fma")))

/* bias + the nine taps (row-major, x0 x1 x2 the first input row's left,
 * centre and right), in three partial sums so the FMA chains stay short. */
__attribute__((target("avx512f,fma"), always_inline)) static inline __m512
dw3_sum9(const __m512 kv[9], __m512 vb, __m512 x0, __m512 x1, __m512 x2, __m512 x3, __m512 x4,
         __m512 x5, __m512 x6, __m512 x7, __m512 x8)
{
    __m512 s0 = _mm512_fmadd_ps(kv[0], x0, vb);
    __m512 s1 = _mm512_mul_ps(kv[1], x1);
    __m512 s2 = _mm512_mul_ps(kv[2], x2);
    s0 = _mm512_fmadd_ps(kv[3], x3, s0);
    s1 = _mm512_fmadd_ps(kv[4], x4, s1);
    s2 = _mm512_fmadd_ps(kv[5], x5, s2);
    s0 = _mm512_fmadd_ps(kv[6], x6, s0);
    s1 = _mm512_fmadd_ps(kv[7], x7, s1);
    s2 = _mm512_fmadd_ps(kv[8], x8, s2);
    return _mm512_add_ps(_mm512_add_ps(s0, s1), s2);
}

/* What a plane's kernel keeps in registers: the nine weights, the bias
 * and the Relu/Clip bounds. */
typedef struct dw3_consts {
    __m512 kv[9], vb, clo, chi;
    int32_t ak;
} dw3_consts;

__attribute__((target("avx512f"), always_inline)) static inline void
dw3_consts_init(dw3_consts *q, const float *k, float bias, const evo_act *act)
{
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++)
        q->kv[t] = _mm512_set1_ps(k[t]);
    q->vb = _mm512_set1_ps(bias);
    q->clo = _mm512_set1_ps(act->a);
    q->chi = _mm512_set1_ps(act->b);
    q->ak = act->kind;
}

/* Lanes [0, n) of a 16-lane mask. */
static inline __mmask16 dw3_mask(int64_t n)
{
    return n <= 0 ? 0 : (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

/* The three taps of one input row for the 16 outputs at column c: columns
 * c - 1, c and c + 1 under their masks (left of 0 and right of w - 1 read
 * as zero). Masked-off lanes are not read, so row - 1 is never touched. */
#define DW3_ROW(ROW, L, C, R)                                                                      \
    const __m512 L = _mm512_maskz_loadu_ps(ml, (ROW) + c - 1);                                     \
    const __m512 C = _mm512_maskz_loadu_ps(mc, (ROW) + c);                                         \
    const __m512 R = _mm512_maskz_loadu_ps(mr, (ROW) + c + 1)

DW3_FN void evo_dwconv3x3s1_avx512(float *y, const float *x, int64_t h, int64_t w, const float *k,
                                   float bias, const evo_act *act, const float *zero_row)
{
    dw3_consts q;
    dw3_consts_init(&q, k, bias, act);
    for (int64_t r = 0; r < h; r += 2) {
        /* Input rows r - 1 .. r + 2 (those outside the plane read zeros);
         * with an odd h the last pass makes only row r. */
        const bool two = r + 1 < h;
        const float *i0 = r > 0 ? x + (r - 1) * w : zero_row;
        const float *i1 = x + r * w;
        const float *i2 = r + 1 < h ? x + (r + 1) * w : zero_row;
        const float *i3 = r + 2 < h ? x + (r + 2) * w : zero_row;
        float *o0 = y + r * w, *o1 = o0 + w;
        for (int64_t c = 0; c < w; c += 16) {
            const __mmask16 mc = dw3_mask(w - c);
            const __mmask16 ml = (__mmask16)(c == 0 ? mc & 0xFFFEu : mc);
            const __mmask16 mr = dw3_mask(w - c - 1);
            DW3_ROW(i0, a0, a1, a2);
            DW3_ROW(i1, b0, b1, b2);
            DW3_ROW(i2, c0, c1, c2);
            /* Row r from input rows 0..2. */
            _mm512_mask_storeu_ps(
                o0 + c, mc,
                evo_act_avx512(dw3_sum9(q.kv, q.vb, a0, a1, a2, b0, b1, b2, c0, c1, c2), q.ak,
                               q.clo, q.chi));
            if (!two)
                continue;
            /* Row r + 1 from input rows 1..3. */
            DW3_ROW(i3, d0, d1, d2);
            _mm512_mask_storeu_ps(
                o1 + c, mc,
                evo_act_avx512(dw3_sum9(q.kv, q.vb, b0, b1, b2, c0, c1, c2, d0, d1, d2), q.ak,
                               q.clo, q.chi));
        }
    }
}

/* The stride-2 taps of one input row for 16 outputs from s (the row at
 * column 2c): columns 2c - 1, 2c, 2c + 1 (+ 2 per lane) as *left, *ev and
 * *od; *prev (the previous vector's odds) supplies column 2c - 1. */
__attribute__((target("avx512f"), always_inline)) static inline void
dw3_s2_taps(const float *s, __mmask16 ma, __mmask16 mb, __m512i even, __m512i odd, __m512 *prev,
            __m512 *left, __m512 *ev, __m512 *od)
{
    const __m512 lo = _mm512_maskz_loadu_ps(ma, s), hi = _mm512_maskz_loadu_ps(mb, s + 16);
    *ev = _mm512_permutex2var_ps(lo, even, hi);
    *od = _mm512_permutex2var_ps(lo, odd, hi);
    *left = _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(*od), _mm512_castps_si512(*prev), 15));
    *prev = *od;
}

DW3_FN void evo_dwconv3x3s2_avx512(float *y, int64_t oh, int64_t ow, const float *x, int64_t h,
                                   int64_t w, const float *k, float bias, const evo_act *act,
                                   const float *zero_row)
{
    dw3_consts q;
    dw3_consts_init(&q, k, bias, act);
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t r = 0; r < oh; r++) {
        /* Input rows 2r - 1 .. 2r + 1; those outside the plane read zeros. */
        const float *i0 = r > 0 ? x + (2 * r - 1) * w : zero_row;
        const float *i1 = 2 * r < h ? x + 2 * r * w : zero_row;
        const float *i2 = 2 * r + 1 < h ? x + (2 * r + 1) * w : zero_row;
        __m512 p0 = _mm512_setzero_ps(), p1 = p0, p2 = p0; /* previous odds per row */
        float *o = y + r * ow;
        for (int64_t c = 0; c < ow; c += 16) {
            /* Input columns 2c .. 2c + 31, those past w - 1 read as zero. */
            const __mmask16 ma = dw3_mask(w - 2 * c), mb = dw3_mask(w - 2 * c - 16);
            __m512 l0, e0, d0, l1, e1, d1, l2, e2, d2;
            dw3_s2_taps(i0 + 2 * c, ma, mb, even, odd, &p0, &l0, &e0, &d0);
            dw3_s2_taps(i1 + 2 * c, ma, mb, even, odd, &p1, &l1, &e1, &d1);
            dw3_s2_taps(i2 + 2 * c, ma, mb, even, odd, &p2, &l2, &e2, &d2);
            _mm512_mask_storeu_ps(
                o + c, dw3_mask(ow - c),
                evo_act_avx512(dw3_sum9(q.kv, q.vb, l0, e0, d0, l1, e1, d1, l2, e2, d2), q.ak,
                               q.clo, q.chi));
        }
    }
}
