/*
 * Packed, cache-blocked SGEMM (see gemm.h) and the fused activations.
 *
 * Blocking (Goto/BLIS): for each NC-wide column panel of B and each KC-deep
 * slice of K, the KC x NC block of op(B) is packed into NR-wide strips; then
 * for each MC-tall block of op(A) the MC x KC block is packed into MR-tall
 * strips, and the micro-kernel walks the MR x NR tiles. A packed B strip
 * (KC x NR floats = 16 KB) stays in L1 while the A block (MC x KC = 120 KB)
 * streams from L2. Edge tiles run the micro-kernel into a local tile and copy
 * the valid part out, so the micro-kernels only handle full tiles.
 */
#include "kernels/gemm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu.h"

#define GEMM_MR EVO_SGEMM_MR
#define GEMM_NR EVO_SGEMM_NR
/* Measured on the development machine (48 KB L1d, 2 MB L2 per core); any
 * multiple of MR / NR is correct. */
#define GEMM_KC 256
#define GEMM_MC 120
#define GEMM_NC 1024

/* ---------------------------------------------------------------- activations */

bool evo_act_valid(const evo_act *act)
{
    return act->kind >= EVO_ACT_NONE && act->kind < EVO_ACT_COUNT_;
}

void evo_act_apply(const evo_act *act, float *x, size_t n)
{
    switch (act->kind) {
    case EVO_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case EVO_ACT_CLIP: {
        const float lo = act->a, hi = act->b;
        for (size_t i = 0; i < n; i++) {
            float v = x[i] < lo ? lo : x[i];
            x[i] = v > hi ? hi : v;
        }
        break;
    }
    case EVO_ACT_LEAKY_RELU: {
        const float alpha = act->a;
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    }
    case EVO_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case EVO_ACT_HARD_SWISH:
        for (size_t i = 0; i < n; i++) {
            float g = x[i] * (1.0f / 6.0f) + 0.5f;
            g = g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
            x[i] = x[i] * g;
        }
        break;
    default: /* EVO_ACT_NONE */
        break;
    }
}

void evo_act_apply_unfused(const evo_act *act, float *x, size_t n)
{
    if (act->kind != EVO_ACT_NONE && act->kind != EVO_ACT_RELU && act->kind != EVO_ACT_CLIP)
        evo_act_apply(act, x, n);
}

/* ---------------------------------------------------------------- portable micro-kernel */

void evo_sgemm_ukernel_portable(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                                int64_t mr, int64_t nr, const evo_sgemm_tail *t)
{
    float acc[GEMM_MR][GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *a = pa + k * GEMM_MR;
        const float *b = pb + k * GEMM_NR;
        for (int i = 0; i < GEMM_MR; i++) {
            const float ai = a[i];
            for (int j = 0; j < GEMM_NR; j++)
                acc[i][j] += ai * b[j];
        }
    }
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float br = t->bias_row != NULL ? t->bias_row[i] : 0.0f;
        for (int64_t j = 0; j < nr; j++) {
            float v = t->alpha * acc[i][j];
            if (t->beta != 0.0f)
                v += t->beta * ci[j];
            v += br;
            if (t->bias_col != NULL)
                v += t->bias_col[j];
            if (t->act == EVO_ACT_RELU)
                v = v > 0.0f ? v : 0.0f;
            else if (t->act == EVO_ACT_CLIP) {
                v = v < t->lo ? t->lo : v;
                v = v > t->hi ? t->hi : v;
            }
            ci[j] = v;
        }
    }
}

/* ---------------------------------------------------------------- packing */

static int64_t gemm_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t gemm_round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* Pack op(A)[i0 .. i0+mc)[k0 .. k0+kc) into MR-row strips: strip s holds, for
 * each k, MR consecutive floats (rows beyond mc are zero). */
static void gemm_pack_a(const evo_sgemm_args *g, int64_t i0, int64_t k0, int64_t mc, int64_t kc,
                        int64_t MR, float *dst)
{
    for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t mr = gemm_min(MR, mc - ir);
        float *d = dst + ir * kc;
        if (g->trans_a) {
            /* op(A)[i][k] = A[k][i]: MR contiguous floats per k. */
            const float *s = g->a + k0 * g->lda + i0 + ir;
            for (int64_t k = 0; k < kc; k++, s += g->lda, d += MR) {
                int64_t i = 0;
                for (; i < mr; i++)
                    d[i] = s[i];
                for (; i < MR; i++)
                    d[i] = 0.0f;
            }
        } else {
            for (int64_t i = 0; i < MR; i++) {
                if (i < mr) {
                    const float *s = g->a + (i0 + ir + i) * g->lda + k0;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * MR + i] = s[k];
                } else {
                    for (int64_t k = 0; k < kc; k++)
                        d[k * MR + i] = 0.0f;
                }
            }
        }
    }
}

/* Pack op(B)[k0 .. k0+kc)[j0 .. j0+nc) into NR-column strips (NR is 16 or
 * 32): strip s holds, for each k, NR consecutive floats (columns beyond nc
 * are zero). */
static void gemm_pack_b(const evo_sgemm_args *g, int64_t k0, int64_t j0, int64_t kc, int64_t nc,
                        int64_t NR, float *dst)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t nr = gemm_min(NR, nc - jr);
        float *d = dst + jr * kc;
        if (!g->trans_b) {
            const float *s = g->b + k0 * g->ldb + j0 + jr;
            if (nr == 16 && NR == 16) {
                for (int64_t k = 0; k < kc; k++, s += g->ldb, d += 16)
                    memcpy(d, s, 16 * sizeof(float));
            } else if (nr == 32 && NR == 32) {
                for (int64_t k = 0; k < kc; k++, s += g->ldb, d += 32)
                    memcpy(d, s, 32 * sizeof(float));
            } else {
                for (int64_t k = 0; k < kc; k++, s += g->ldb, d += NR) {
                    int64_t j = 0;
                    for (; j < nr; j++)
                        d[j] = s[j];
                    for (; j < NR; j++)
                        d[j] = 0.0f;
                }
            }
        } else {
            /* op(B)[k][j] = B[j][k]: each column of the strip is a row of B. */
            for (int64_t j = 0; j < NR; j++) {
                if (j < nr) {
                    const float *s = g->b + (j0 + jr + j) * g->ldb + k0;
                    for (int64_t k = 0; k < kc; k++)
                        d[k * NR + j] = s[k];
                } else {
                    for (int64_t k = 0; k < kc; k++)
                        d[k * NR + j] = 0.0f;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- epilogue */

/* Bias and activation on the finished tile C[i0..i0+mr)[j0..j0+nr). */
static void gemm_epilogue(const evo_gemm_epilogue *e, float *c, int64_t ldc, int64_t i0, int64_t j0,
                          int64_t mr, int64_t nr)
{
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (e->bias != NULL && e->bias_mode == EVO_GEMM_BIAS_ROW) {
            const float bv = e->bias[i0 + i];
            for (int64_t j = 0; j < nr; j++)
                ci[j] += bv;
        } else if (e->bias != NULL && e->bias_mode == EVO_GEMM_BIAS_COL) {
            const float *bv = e->bias + j0;
            for (int64_t j = 0; j < nr; j++)
                ci[j] += bv[j];
        }
        if (e->act.kind != EVO_ACT_NONE)
            evo_act_apply(&e->act, ci, (size_t)nr);
    }
}

/* ---------------------------------------------------------------- drivers */

static float gemm_op_a(const evo_sgemm_args *g, int64_t i, int64_t k)
{
    return g->trans_a ? g->a[k * g->lda + i] : g->a[i * g->lda + k];
}

/* C = beta * C (+ epilogue): the product is empty (k == 0) or alpha == 0. */
static void gemm_scale_only(const evo_sgemm_args *g)
{
    for (int64_t i = 0; i < g->m; i++) {
        float *ci = g->c + i * g->ldc;
        for (int64_t j = 0; j < g->n; j++)
            ci[j] = g->beta == 0.0f ? 0.0f : g->beta * ci[j];
    }
    if (g->epi != NULL)
        gemm_epilogue(g->epi, g->c, g->ldc, 0, 0, g->m, g->n);
}

/* One row of op(A) times op(B) when B is not transposed: packing B would
 * cost as much as the product, so stream B's rows (axpy form, which
 * compilers vectorize) straight into C. */
static void gemm_row_times_b(const evo_sgemm_args *g, int64_t i)
{
    float *ci = g->c + i * g->ldc;
    if (g->beta == 0.0f)
        memset(ci, 0, (size_t)g->n * sizeof(float));
    else if (g->beta != 1.0f)
        for (int64_t j = 0; j < g->n; j++)
            ci[j] *= g->beta;
    for (int64_t k = 0; k < g->k; k++) {
        const float av = g->alpha * gemm_op_a(g, i, k);
        const float *bk = g->b + k * g->ldb;
        for (int64_t j = 0; j < g->n; j++)
            ci[j] += av * bk[j];
    }
}

/* One row of op(A) times B^T: each output is a dot product of two
 * contiguous rows. */
static void gemm_row_times_bt(const evo_sgemm_args *g, int64_t i)
{
    float *ci = g->c + i * g->ldc;
    for (int64_t j = 0; j < g->n; j++) {
        const float *bj = g->b + j * g->ldb;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int64_t k = 0;
        if (!g->trans_a) {
            const float *ai = g->a + i * g->lda;
            for (; k + 4 <= g->k; k += 4) {
                s0 += ai[k] * bj[k];
                s1 += ai[k + 1] * bj[k + 1];
                s2 += ai[k + 2] * bj[k + 2];
                s3 += ai[k + 3] * bj[k + 3];
            }
        }
        for (; k < g->k; k++)
            s0 += gemm_op_a(g, i, k) * bj[k];
        const float s = g->alpha * ((s0 + s1) + (s2 + s3));
        ci[j] = g->beta == 0.0f ? s : s + g->beta * ci[j];
    }
}

/* A micro-kernel and the block sizes around it. */
typedef void (*gemm_direct_fn)(int64_t kc, const float *a, int64_t lda, const float *pb, float *c,
                               int64_t ldc, int64_t mr, int64_t nr, const evo_sgemm_tail *t);

typedef struct gemm_impl {
    evo_sgemm_ukernel fn;
    int64_t mr, nr, mc;    /* mc: a multiple of mr */
    gemm_direct_fn direct; /* reads non-transposed A in place; NULL: always pack A */
} gemm_impl;

static gemm_impl gemm_select(void)
{
#if defined(EVO_HAVE_X86)
    if (evo_cpu_use_avx512())
        return (gemm_impl){evo_sgemm_ukernel_avx512, EVO_SGEMM_MR_AVX512, EVO_SGEMM_NR_AVX512, 128,
                           evo_sgemm_ukernel_avx512_direct};
    if (evo_cpu_use_avx2())
        return (gemm_impl){evo_sgemm_ukernel_avx2, GEMM_MR, GEMM_NR, GEMM_MC, NULL};
#endif
    return (gemm_impl){evo_sgemm_ukernel_portable, GEMM_MR, GEMM_NR, GEMM_MC, NULL};
}

/* Scratch of one implementation: packed A block, then the packed B panel on
 * a 64-byte boundary, plus alignment slack. */
static size_t gemm_impl_scratch(const gemm_impl *im, int64_t m, int64_t n, int64_t k)
{
    const int64_t mc = gemm_round_up(gemm_min(m > 0 ? m : 1, im->mc), im->mr);
    const int64_t kc = gemm_min(k > 0 ? k : 1, GEMM_KC);
    const int64_t nc = gemm_round_up(gemm_min(n > 0 ? n : 1, GEMM_NC), im->nr);
    return (size_t)(gemm_round_up(mc * kc, 16) + kc * nc) * sizeof(float) + 64;
}

size_t evo_sgemm_scratch_bytes(int64_t m, int64_t n, int64_t k)
{
    /* Enough for every implementation: the path may be forced after the
     * executor sized the scratch. */
    gemm_impl p = {evo_sgemm_ukernel_portable, GEMM_MR, GEMM_NR, GEMM_MC, NULL};
    size_t bytes = gemm_impl_scratch(&p, m, n, k);
#if defined(EVO_HAVE_X86)
    gemm_impl w = {evo_sgemm_ukernel_avx512, EVO_SGEMM_MR_AVX512, EVO_SGEMM_NR_AVX512, 128, NULL};
    const size_t wb = gemm_impl_scratch(&w, m, n, k);
    if (wb > bytes)
        bytes = wb;
#endif
    return bytes;
}

void evo_sgemm(const evo_sgemm_args *g, void *scratch, size_t scratch_bytes)
{
    const int64_t m = g->m, n = g->n, k = g->k;
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || g->alpha == 0.0f) {
        gemm_scale_only(g);
        return;
    }
    if (m == 1) {
        bool done = false;
#if defined(EVO_HAVE_X86)
        if (g->trans_b && !g->trans_a && evo_cpu_use_avx512()) {
            evo_sgemv_bt_avx512(n, k, g->a, g->b, g->ldb, g->c, g->alpha, g->beta);
            done = true;
        }
#endif
        if (!done && g->trans_b)
            gemm_row_times_bt(g, 0);
        else if (!done)
            gemm_row_times_b(g, 0);
        if (g->epi != NULL)
            gemm_epilogue(g->epi, g->c, g->ldc, 0, 0, 1, n);
        return;
    }
    (void)scratch_bytes; /* sized by evo_sgemm_scratch_bytes; trusted like all eval inputs */

    const gemm_impl im = gemm_select();
    const int64_t MR = im.mr, NR = im.nr;
    const int64_t mc_max = gemm_round_up(gemm_min(m, im.mc), MR);
    const int64_t kc_max = gemm_min(k, GEMM_KC);
    float *pa = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *pb = pa + gemm_round_up(mc_max * kc_max, 16);

    /* Relu and Clip run in the micro-kernel; other activations after it. */
    const evo_gemm_epilogue *e = g->epi;
    const bool direct_a = im.direct != NULL && !g->trans_a;
    const int32_t act = e != NULL ? e->act.kind : EVO_ACT_NONE;
    const bool act_in_kernel = act == EVO_ACT_RELU || act == EVO_ACT_CLIP;
    const evo_act late_act = {act_in_kernel ? EVO_ACT_NONE : act, e != NULL ? e->act.a : 0.0f,
                              e != NULL ? e->act.b : 0.0f};
    const float *bias_row = e != NULL && e->bias_mode == EVO_GEMM_BIAS_ROW ? e->bias : NULL;
    const float *bias_col = e != NULL && e->bias_mode == EVO_GEMM_BIAS_COL ? e->bias : NULL;

    for (int64_t jc = 0; jc < n; jc += GEMM_NC) {
        const int64_t nc = gemm_min(GEMM_NC, n - jc);
        for (int64_t pc = 0; pc < k; pc += GEMM_KC) {
            const int64_t kc = gemm_min(GEMM_KC, k - pc);
            const bool last = pc + kc == k;
            evo_sgemm_tail t = {.alpha = g->alpha, .beta = pc == 0 ? g->beta : 1.0f};
            if (last) {
                t.act = act_in_kernel ? act : EVO_ACT_NONE;
                t.lo = e != NULL ? e->act.a : 0.0f;
                t.hi = e != NULL ? e->act.b : 0.0f;
            }
            gemm_pack_b(g, pc, jc, kc, nc, NR, pb);
            for (int64_t ic = 0; ic < m; ic += im.mc) {
                const int64_t mc = gemm_min(im.mc, m - ic);
                if (!direct_a)
                    gemm_pack_a(g, ic, pc, mc, kc, MR, pa);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = gemm_min(NR, nc - jr);
                    t.bias_col = last && bias_col != NULL ? bias_col + jc + jr : NULL;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = gemm_min(MR, mc - ir);
                        float *ct = g->c + (ic + ir) * g->ldc + jc + jr;
                        t.bias_row = last && bias_row != NULL ? bias_row + ic + ir : NULL;
                        if (direct_a)
                            im.direct(kc, g->a + (ic + ir) * g->lda + pc, g->lda, pb + jr * kc, ct,
                                      g->ldc, mr, nr, &t);
                        else
                            im.fn(kc, pa + ir * kc, pb + jr * kc, ct, g->ldc, mr, nr, &t);
                        if (last && late_act.kind != EVO_ACT_NONE)
                            for (int64_t i = 0; i < mr; i++)
                                evo_act_apply(&late_act, ct + i * g->ldc, (size_t)nr);
                    }
                }
            }
        }
    }
}
