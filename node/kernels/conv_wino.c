/*
 * Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016): the weight transforms, the
 * portable kernel and the choice between it and the AVX-512 one.
 *
 * A 3x3 stride-1 conv computes each 4x4 output tile from a 6x6 input tile
 * d as Y = A^T [(G g G^T) . (B^T d B)] A, summed over input channels. The
 * elementwise product becomes, per transformed position xi (36 of them),
 * a GEMM over channels: M[xi][tile][m] = sum_c V[xi][tile][c] U[xi][c][m].
 * That is 36 multiply-adds per 16 outputs instead of 144: 2.25x fewer than
 * direct convolution, for transforms that cost O(C + M) per tile.
 *
 *        | 4  0 -5  0  1  0 |        | 1/4    0     0  |
 *        | 0 -4 -4  1  1  0 |        | -1/6 -1/6  -1/6 |        | 1 1  1 1  1 0 |
 *  B^T = | 0  4 -4 -1  1  0 |    G = | -1/6  1/6  -1/6 |  A^T = | 0 1 -1 2 -2 0 |
 *        | 0 -2 -1  2  1  0 |        | 1/24  1/12  1/6 |        | 0 1  1 4  4 0 |
 *        | 0  2 -1 -2  1  0 |        | 1/24 -1/12  1/6 |        | 0 1 -1 8 -8 1 |
 *        | 0  4  0 -5  0  1 |        |  0     0     1  |
 *
 * Why by hand: no packaged library does Winograd convolution in C for
 * NCHW float tensors without allocating (NNPACK is not in Debian, and
 * oneDNN is C++ with its own memory model); the kernel must also build
 * for Cortex-M. F(4x4, 3x3) keeps the fp32 error near 1e-6 relative on
 * real activations (measured against the reference in kconv_wino_test);
 * larger tiles lose digits quickly.
 */
#include <string.h>

#include "kernels/conv.h"
#include "kernels/cpu.h"

/* ---------------------------------------------------------------- transforms */

/* u = G g for one column of 3 (stride gs) into 6 (stride us). */
static void wino_g3(const float *g, int gs, float *u, int us)
{
    const float g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    u[0] = g0 / 4.0f;
    u[us] = -(g0 + g1 + g2) / 6.0f;
    u[2 * us] = -(g0 - g1 + g2) / 6.0f;
    u[3 * us] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
    u[4 * us] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
    u[5 * us] = g2;
}

void evo_wino43_weight(const float g[9], float u[EVO_WINO43_XI])
{
    float h[18]; /* G g: 6 rows x 3 */
    for (int j = 0; j < 3; j++)
        wino_g3(g + j, 3, h + j, 3);
    for (int i = 0; i < 6; i++) /* (G g) G^T: row i of h transformed */
        wino_g3(h + i * 3, 1, u + i * 6, 1);
}

/* The left inverse of G: rows 0 and 5 of G are (1/4, 0, 0) and (0, 0, 1),
 * so g0 = 4 u0, g2 = u5 and row 1 gives g1 = -6 u1 - g0 - g2. */
static void wino_g3_inverse(const float *u, int us, float *g, int gs)
{
    const float g0 = 4.0f * u[0], g2 = u[5 * us];
    g[0] = g0;
    g[gs] = -6.0f * u[us] - g0 - g2;
    g[2 * gs] = g2;
}

void evo_wino43_weight_inverse(const float u[EVO_WINO43_XI], float g[9])
{
    float h[18]; /* u = G h with h = g G^T (6 x 3) ... first undo G on columns */
    for (int j = 0; j < 6; j++) {
        float col[3];
        wino_g3_inverse(u + j, 6, col, 1);
        for (int i = 0; i < 3; i++)
            h[i * 6 + j] = col[i]; /* h is 3 x 6: g G^T */
    }
    for (int i = 0; i < 3; i++)
        wino_g3_inverse(h + i * 6, 1, g + i * 3, 1);
}

/* v = B^T d for one column of 6 (strides ds, vs). */
static void wino_bt6(const float *d, int ds, float *v, int vs)
{
    const float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds],
                d5 = d[5 * ds];
    v[0] = 4.0f * d0 - 5.0f * d2 + d4;
    v[vs] = (d3 + d4) - 4.0f * (d1 + d2);
    v[2 * vs] = (d4 - d3) + 4.0f * (d1 - d2);
    v[3 * vs] = (d4 - d2) - 2.0f * (d1 - d3);
    v[4 * vs] = (d4 - d2) + 2.0f * (d1 - d3);
    v[5 * vs] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* o = A^T m for one column of 6 into 4. */
static void wino_at6(const float *m, int ms, float *o, int os)
{
    const float m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms],
                m5 = m[5 * ms];
    o[0] = m0 + m1 + m2 + m3 + m4;
    o[os] = (m1 - m2) + 2.0f * (m3 - m4);
    o[2 * os] = (m1 + m2) + 4.0f * (m3 + m4);
    o[3 * os] = (m1 - m2) + 8.0f * (m3 - m4) + m5;
}

/* ---------------------------------------------------------------- portable kernel */

/* One image's tile at (ty, tx): V[c * 36 + xi] for every channel, reading
 * X with bounds checks (the tile may hang over the padding). */
static void wino_input_tile(const evo_conv_geom *g, const float *xn, int64_t ty, int64_t tx,
                            float *v)
{
    const int64_t ih = g->in[1], iw = g->in[2];
    const int64_t y0 = ty * 4 - g->pad_b[1], x0 = tx * 4 - g->pad_b[2];
    for (int64_t c = 0; c < g->c; c++) {
        const float *xc = xn + c * g->in_size;
        float d[36], t[36];
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 6; j++) {
                const int64_t yy = y0 + i, xx = x0 + j;
                d[i * 6 + j] = yy >= 0 && yy < ih && xx >= 0 && xx < iw ? xc[yy * iw + xx] : 0.0f;
            }
        for (int j = 0; j < 6; j++) /* columns: B^T d */
            wino_bt6(d + j, 6, t + j, 6);
        for (int i = 0; i < 6; i++) /* rows: (B^T d) B */
            wino_bt6(t + i * 6, 1, v + c * 36 + i * 6, 1);
    }
}

static void wino_portable(const evo_conv_geom *g, const float *x, const float *u, const float *bias,
                          float *y, float *scratch)
{
    const int64_t oh = g->out[1], ow = g->out[2], C = g->c, M = g->m;
    const int64_t th = (oh + 3) / 4, tw = (ow + 3) / 4;
    float *v = scratch;     /* [C][36] */
    float *mx = v + C * 36; /* [36][M] */
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * C * g->in_size;
        float *yn = y + n * M * g->out_size;
        for (int64_t ty = 0; ty < th; ty++)
            for (int64_t tx = 0; tx < tw; tx++) {
                wino_input_tile(g, xn, ty, tx, v);
                memset(mx, 0, (size_t)(36 * M) * sizeof(float));
                for (int64_t xi = 0; xi < 36; xi++) {
                    float *mrow = mx + xi * M;
                    for (int64_t c = 0; c < C; c++) {
                        const float vc = v[c * 36 + xi];
                        const float *urow = u + (xi * C + c) * M;
                        for (int64_t m = 0; m < M; m++) /* contiguous: vectorizes */
                            mrow[m] += vc * urow[m];
                    }
                }
                for (int64_t m = 0; m < M; m++) {
                    float mt[36], t[24], o[16];
                    for (int xi = 0; xi < 36; xi++)
                        mt[xi] = mx[xi * M + m];
                    for (int j = 0; j < 6; j++) /* A^T m: 4 x 6 */
                        wino_at6(mt + j, 6, t + j, 6);
                    for (int i = 0; i < 4; i++) /* (A^T m) A: 4 x 4 */
                        wino_at6(t + i * 6, 1, o + i * 4, 1);
                    const float b = bias != NULL ? bias[m] : 0.0f;
                    float *ym = yn + m * g->out_size;
                    for (int64_t i = 0; i < 4 && ty * 4 + i < oh; i++)
                        for (int64_t j = 0; j < 4 && tx * 4 + j < ow; j++)
                            ym[(ty * 4 + i) * ow + tx * 4 + j] = o[i * 4 + j] + b;
                }
            }
    }
}

/* ---------------------------------------------------------------- dispatch */

#if defined(EVO_HAVE_X86)
/* Floats of V and M per GEMM pass: 512 KiB keeps both in L2 next to U. */
#define WINO_BLOCK_FLOATS ((int64_t)1 << 17)

void evo_wino_plan_make(const evo_conv_geom *g, evo_wino_plan *p)
{
    p->tiles_h = (g->out[1] + 3) / 4;
    p->tiles_w = (g->out[2] + 3) / 4;
    p->tiles = p->tiles_h * p->tiles_w;
    p->ph = p->tiles_h * 4 + 2;
    p->pw = p->tiles_w * 4 + 2;
    int64_t block = WINO_BLOCK_FLOATS / (36 * (g->c + g->m));
    if (block >= 16)
        block -= block % 16; /* whole row blocks of the GEMM kernels */
    if (block < 1)
        block = 1;
    p->block = block < p->tiles ? block : p->tiles;
    p->xp_floats = (g->c * p->ph * p->pw + 15) / 16 * 16;
    p->v_floats = 36 * p->block * g->c;
    p->m_floats = 36 * p->block * g->m;
}

static bool wino_avx512_ok(const evo_conv_geom *g)
{
    return g->c % 16 == 0 && g->m % 16 == 0;
}
#endif

size_t evo_conv_wino_scratch(const evo_conv_geom *g)
{
    size_t bytes = (size_t)(36 * (g->c + g->m)) * sizeof(float);
#if defined(EVO_HAVE_X86)
    if (wino_avx512_ok(g)) {
        evo_wino_plan p;
        evo_wino_plan_make(g, &p);
        const size_t vb = (size_t)(p.xp_floats + p.v_floats + p.m_floats) * sizeof(float) + 64;
        bytes = vb > bytes ? vb : bytes;
    }
#endif
    return bytes;
}

void evo_conv_wino(const evo_conv_geom *g, const float *x, const float *u, const float *bias,
                   const evo_act *act, float *y, void *scratch)
{
#if defined(EVO_HAVE_X86)
    if (evo_cpu_use_avx512() && wino_avx512_ok(g)) {
        evo_wino_plan p;
        evo_wino_plan_make(g, &p);
        float *s = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        evo_conv_wino_avx512(g, &p, x, u, bias, act, y, s);
        evo_act_apply_unfused(act, y, (size_t)(g->n * g->m * g->out_size));
        return;
    }
#endif
    wino_portable(g, x, u, bias, y, (float *)scratch);
    if (act->kind != EVO_ACT_NONE)
        evo_act_apply(act, y, (size_t)(g->n * g->m * g->out_size));
}
