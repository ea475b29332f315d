/*
 * AVX-512F Winograd F(4x4, 3x3) convolution (the algorithm and matrices
 * are in conv_wino.c), vectorized over 16 channels throughout:
 *
 *  1. X (NCHW) is transposed into a zero-padded channels-last plane per
 *     block of 16 channels, xp[c / 16][ph][pw][16], with 16 x 16 register
 *     transposes (a gather per position would cost as much as the GEMM).
 *  2. For a block of tiles, each 6x6 tile of 16 channels becomes 36
 *     vectors V[xi][tile][c] (B^T d B, shared subexpressions).
 *  3. Per xi, M[xi][tile][m] = sum_c V[xi][tile][c] U[xi][c][m]: a GEMM
 *     kernel with rows = tiles and 16, 32 or 64 output channels per row
 *     held in accumulators, V broadcast from memory.
 *  4. Each tile's 36 vectors of 16 output channels become 4x4 outputs
 *     (A^T M A) plus bias and Relu/Clip, transposed back to 16 positions
 *     per channel and stored as four rows of four.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/x86/transpose16_avx512.h"

#define WINO_FN __attribute__((target("avx512f,avx2,fma")))

/* Step 1: the padded channels-last copy of one image. */
WINO_FN static void wino_pack_input(const evo_conv_geom *g, const evo_wino_plan *p, const float *xn,
                                    float *xp)
{
    const int64_t ih = g->in[1], iw = g->in[2], pt = g->pad_b[1], pl = g->pad_b[2];
    const int64_t ph = p->ph, pw = p->pw;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t cb = 0; cb < g->c / 16; cb++) {
        float *plane = xp + cb * ph * pw * 16;
        const float *xc = xn + cb * 16 * g->in_size;
        for (int64_t r = 0; r < ph; r++) {
            float *row = plane + r * pw * 16;
            const int64_t i = r - pt;
            if (i < 0 || i >= ih) {
                for (int64_t q = 0; q < pw; q++)
                    _mm512_store_ps(row + q * 16, zero);
                continue;
            }
            for (int64_t q = 0; q < pl; q++)
                _mm512_store_ps(row + q * 16, zero);
            for (int64_t q = pl + iw; q < pw; q++)
                _mm512_store_ps(row + q * 16, zero);
            for (int64_t j0 = 0; j0 < iw; j0 += 16) {
                const int64_t nj = iw - j0 < 16 ? iw - j0 : 16;
                const __mmask16 k = (__mmask16)((1u << nj) - 1u);
                __m512 v[16];
#pragma GCC unroll 16
                for (int l = 0; l < 16; l++)
                    v[l] = _mm512_maskz_loadu_ps(k, xc + l * g->in_size + i * iw + j0);
                evo_transpose16_avx512(v);
                for (int64_t q = 0; q < nj; q++)
                    _mm512_store_ps(row + (pl + j0 + q) * 16, v[q]);
            }
        }
    }
}

/* out[k * os] = (B^T in)[k] for 6 vectors in[k * is]. */
WINO_FN static inline void wino_bt6_v(const __m512 d[6], __m512 o[6])
{
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f),
                 two = _mm512_set1_ps(2.0f);
    const __m512 d12 = _mm512_add_ps(d[1], d[2]), d1m2 = _mm512_sub_ps(d[1], d[2]);
    const __m512 d13 = _mm512_sub_ps(d[1], d[3]), d42 = _mm512_sub_ps(d[4], d[2]);
    o[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    o[1] = _mm512_fnmadd_ps(four, d12, _mm512_add_ps(d[3], d[4]));
    o[2] = _mm512_fmadd_ps(four, d1m2, _mm512_sub_ps(d[4], d[3]));
    o[3] = _mm512_fnmadd_ps(two, d13, d42);
    o[4] = _mm512_fmadd_ps(two, d13, d42);
    o[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* Step 2: V[(t * 36 + xi) * C + c] for the tiles [t0, t0 + nt): tile-major,
 * so each tile's 36 vectors are contiguous (36 planes a fixed stride apart
 * would compete for a few L1 sets). */
WINO_FN static void wino_input_transform(const evo_conv_geom *g, const evo_wino_plan *p,
                                         const float *xp, int64_t t0, int64_t nt, float *v)
{
    const int64_t pw = p->pw, C = g->c;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t ty = (t0 + t) / p->tiles_w, tx = (t0 + t) % p->tiles_w;
        for (int64_t cb = 0; cb < C / 16; cb++) {
            const float *base = xp + ((cb * p->ph + ty * 4) * pw + tx * 4) * 16;
            __m512 tmp[6][6]; /* tmp[i][j] = (B^T d)[i][j] */
#pragma GCC unroll 16
            for (int j = 0; j < 6; j++) {
                __m512 d[6], o[6];
#pragma GCC unroll 16
                for (int i = 0; i < 6; i++)
                    d[i] = _mm512_load_ps(base + (i * pw + j) * 16);
                wino_bt6_v(d, o);
#pragma GCC unroll 16
                for (int i = 0; i < 6; i++)
                    tmp[i][j] = o[i];
            }
            float *vt = v + t * 36 * C + cb * 16;
#pragma GCC unroll 16
            for (int i = 0; i < 6; i++) {
                __m512 o[6];
                wino_bt6_v(tmp[i], o);
#pragma GCC unroll 16
                for (int j = 0; j < 6; j++)
                    _mm512_store_ps(vt + (i * 6 + j) * C, o[j]);
            }
        }
    }
}

/* Step 3 kernel: rows r < R of M[xi] at columns 16 KV, called with
 * constant R and KV so the accumulators live in registers. Each row's V is
 * broadcast from its own address, so R stays at 8 or fewer (the row
 * offsets must fit in general registers). */
#define WINO_MAX_R 8
#define WINO_MAX_KV 4
WINO_FN __attribute__((always_inline)) static inline void
wino_gemm_rows(int R, int KV, int64_t C, const float *v, int64_t ldv, const float *u, int64_t ldu,
               float *mo, int64_t ldm)
{
    __m512 acc[WINO_MAX_R][WINO_MAX_KV];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int k = 0; k < KV; k++)
            acc[r][k] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c++) {
        __m512 w[WINO_MAX_KV];
#pragma GCC unroll 16
        for (int k = 0; k < KV; k++)
            w[k] = _mm512_loadu_ps(u + c * ldu + 16 * k); /* U may be unaligned */
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            const __m512 b = _mm512_set1_ps(v[r * ldv + c]);
#pragma GCC unroll 16
            for (int k = 0; k < KV; k++)
                acc[r][k] = _mm512_fmadd_ps(b, w[k], acc[r][k]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int k = 0; k < KV; k++)
            _mm512_store_ps(mo + r * ldm + 16 * k, acc[r][k]);
}

/* The tiles x (16 KV columns) panel of M[xi] at m0: blocks of R = 32 / KV
 * rows (8 x 16, 8 x 32, 4 x 64: at most 16 accumulators), then single
 * rows. */
WINO_FN static void wino_gemm_panel(int KV, int64_t C, const float *vx, int64_t ldv,
                                    const float *ux, int64_t M, int64_t nt, float *mx, int64_t ldm)
{
    const int R = KV == 4 ? 4 : 8;
    int64_t t = 0;
    for (; t + R <= nt; t += R) {
        if (KV == 4)
            wino_gemm_rows(4, 4, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
        else if (KV == 2)
            wino_gemm_rows(8, 2, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
        else
            wino_gemm_rows(8, 1, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
    }
    for (; t < nt; t++) {
        if (KV == 4)
            wino_gemm_rows(1, 4, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
        else if (KV == 2)
            wino_gemm_rows(1, 2, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
        else
            wino_gemm_rows(1, 1, C, vx + t * ldv, ldv, ux, M, mx + t * ldm, ldm);
    }
}

WINO_FN static void wino_gemm(const evo_conv_geom *g, const float *v, const float *u, int64_t nt,
                              float *mo)
{
    const int64_t C = g->c, M = g->m;
    const int64_t ldv = 36 * C, ldm = 36 * M; /* tile-major V and M */
    for (int64_t xi = 0; xi < 36; xi++) {
        const float *vx = v + xi * C, *ux = u + xi * C * M;
        float *mx = mo + xi * M;
        /* Widest column panels first: each V broadcast then feeds more FMAs. */
        int64_t m0 = 0;
        for (int kv = WINO_MAX_KV; kv >= 1; kv /= 2)
            for (; m0 + 16 * kv <= M; m0 += 16 * kv)
                wino_gemm_panel(kv, C, vx, ldv, ux + m0, M, nt, mx + m0, ldm);
    }
}

/* o = A^T m for 6 vectors into 4. */
WINO_FN static inline void wino_at6_v(const __m512 m[6], __m512 o[4])
{
    const __m512 a12 = _mm512_add_ps(m[1], m[2]), s12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 a34 = _mm512_add_ps(m[3], m[4]), s34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a12), a34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), s34, s12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), a34, a12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), s34, s12), m[5]);
}

/* Step 4 for the tiles [t0, t0 + nt) of image yn. */
WINO_FN static void wino_output_transform(const evo_conv_geom *g, const evo_wino_plan *p,
                                          const float *mo, int64_t t0, int64_t nt,
                                          const float *bias, const evo_act *act, float *yn)
{
    const int64_t M = g->m, oh = g->out[1], ow = g->out[2];
    const int32_t ak = act->kind;
    const __m512 lo = _mm512_set1_ps(act->a), hi = _mm512_set1_ps(act->b);
    for (int64_t t = 0; t < nt; t++) {
        const int64_t ty = (t0 + t) / p->tiles_w, tx = (t0 + t) % p->tiles_w;
        const int64_t rows = oh - ty * 4 < 4 ? oh - ty * 4 : 4;
        const int64_t cols = ow - tx * 4 < 4 ? ow - tx * 4 : 4;
        for (int64_t mb = 0; mb < M / 16; mb++) {
            const float *mt = mo + t * 36 * M + mb * 16;
            const __m512 vb = bias != NULL ? _mm512_loadu_ps(bias + mb * 16) : _mm512_setzero_ps();
            /* out[r * 4 + c] = sum_i A^T[r][i] s[i][c] with s[i] = A^T on row i
             * of M, accumulated row by row: 16 accumulators instead of 24
             * intermediates keeps everything in registers. */
            __m512 out[16];
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++)
                out[q] = vb;
#pragma GCC unroll 16
            for (int i = 0; i < 6; i++) {
                __m512 row[6], sr[4];
#pragma GCC unroll 16
                for (int j = 0; j < 6; j++)
                    row[j] = _mm512_load_ps(mt + (i * 6 + j) * M);
                wino_at6_v(row, sr);
/* Column i of A^T: (1, 0, 0, 0) for i = 0, (0, 0, 0, 1) for 5,
 * else (1, +-1, 1, +-1) * (1, 2^k, 4^k, 8^k). */
#pragma GCC unroll 16
                for (int c = 0; c < 4; c++) {
                    if (i == 0) {
                        out[c] = _mm512_add_ps(out[c], sr[c]);
                    } else if (i == 5) {
                        out[12 + c] = _mm512_add_ps(out[12 + c], sr[c]);
                    } else {
                        const float f = i <= 2 ? 1.0f : 2.0f, sg = i % 2 == 1 ? 1.0f : -1.0f;
                        out[c] = _mm512_add_ps(out[c], sr[c]);
                        out[4 + c] = _mm512_fmadd_ps(_mm512_set1_ps(sg * f), sr[c], out[4 + c]);
                        out[8 + c] = _mm512_fmadd_ps(_mm512_set1_ps(f * f), sr[c], out[8 + c]);
                        out[12 + c] =
                            _mm512_fmadd_ps(_mm512_set1_ps(sg * f * f * f), sr[c], out[12 + c]);
                    }
                }
            }
            if (ak == EVO_ACT_RELU) { /* NaN -> 0 as in evo_act_apply */
#pragma GCC unroll 16
                for (int q = 0; q < 16; q++)
                    out[q] = _mm512_max_ps(out[q], _mm512_setzero_ps());
            } else if (ak == EVO_ACT_CLIP) { /* NaN stays NaN */
#pragma GCC unroll 16
                for (int q = 0; q < 16; q++)
                    out[q] = _mm512_min_ps(hi, _mm512_max_ps(lo, out[q]));
            }
            evo_transpose16_avx512(out); /* out[k]: the 4 x 4 tile of channel k */
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++) {
                float *yk = yn + (mb * 16 + k) * g->out_size + ty * 4 * ow + tx * 4;
                /* Row i is the vector's 128-bit lane i. */
                if (rows == 4 && cols == 4) {
                    _mm_storeu_ps(yk, _mm512_castps512_ps128(out[k]));
                    _mm_storeu_ps(yk + ow, _mm512_extractf32x4_ps(out[k], 1));
                    _mm_storeu_ps(yk + 2 * ow, _mm512_extractf32x4_ps(out[k], 2));
                    _mm_storeu_ps(yk + 3 * ow, _mm512_extractf32x4_ps(out[k], 3));
                } else { /* an edge tile */
                    float buf[16];
                    _mm512_storeu_ps(buf, out[k]);
                    for (int64_t i = 0; i < rows; i++)
                        for (int64_t j = 0; j < cols; j++)
                            yk[i * ow + j] = buf[i * 4 + j];
                }
            }
        }
    }
}

WINO_FN void evo_conv_wino_avx512(const evo_conv_geom *g, const evo_wino_plan *p, const float *x,
                                  const float *u, const float *bias, const evo_act *act, float *y,
                                  float *scratch)
{
    float *xp = scratch, *v = xp + p->xp_floats, *mo = v + p->v_floats;
    for (int64_t n = 0; n < g->n; n++) {
        wino_pack_input(g, p, x + n * g->c * g->in_size, xp);
        float *yn = y + n * g->m * g->out_size;
        for (int64_t t0 = 0; t0 < p->tiles; t0 += p->block) {
            const int64_t nt = p->tiles - t0 < p->block ? p->tiles - t0 : p->block;
            wino_input_transform(g, p, xp, t0, nt, v);
            wino_gemm(g, v, u, nt, mo);
            wino_output_transform(g, p, mo, t0, nt, bias, act, yn);
        }
    }
}
