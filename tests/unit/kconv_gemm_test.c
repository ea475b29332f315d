/*
 * The shared SGEMM (kernels/gemm.h) against a naive triple loop, for both
 * micro-kernels, every transpose combination, odd sizes, sub-block leading
 * dimensions, alpha/beta and the bias/activation epilogue; and the Gemm op:
 * hand-computed cases per attribute and C broadcast form, random fast vs
 * reference, fused activation, and malformed inputs.
 */
#include "kconv_util.h"

#include "kernels/conv.h"
#include "kernels/gemm.h"

extern const evo_op_def evo_op_Gemm;

/* ---------------------------------------------------------------- SGEMM API */

static void naive_gemm(const evo_sgemm_args *g, const float *c_in, float *out)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < g->k; k++) {
                const float a = g->trans_a ? g->a[k * g->lda + i] : g->a[i * g->lda + k];
                const float b = g->trans_b ? g->b[j * g->ldb + k] : g->b[k * g->ldb + j];
                s += (double)a * b;
            }
            float v = g->alpha * (float)s;
            if (g->beta != 0.0f)
                v += g->beta * c_in[i * g->ldc + j];
            if (g->epi != NULL && g->epi->bias != NULL)
                v += g->epi->bias_mode == EVO_GEMM_BIAS_ROW ? g->epi->bias[i] : g->epi->bias[j];
            if (g->epi != NULL)
                evo_act_apply(&g->epi->act, &v, 1);
            out[i * g->ldc + j] = v;
        }
}

static void sgemm_case(uint64_t *rng, int64_t m, int64_t n, int64_t k, bool ta, bool tb)
{
    const int64_t pad = kc_rand_range(rng, 0, 3); /* leading dims larger than needed */
    evo_sgemm_args g = {
        .trans_a = ta,
        .trans_b = tb,
        .m = m,
        .n = n,
        .k = k,
        .alpha = kc_rand_range(rng, 0, 2) ? 1.0f : -0.75f,
        .beta = (float)kc_rand_range(rng, 0, 3) * 0.5f,
        .lda = (ta ? m : k) + pad,
        .ldb = (tb ? k : n) + pad,
        .ldc = n + pad,
    };
    const size_t na = (size_t)((ta ? k : m) * g.lda), nb = (size_t)((tb ? n : k) * g.ldb);
    const size_t nc = (size_t)(m * g.ldc);
    float *a = malloc(na * 4 + 4), *b = malloc(nb * 4 + 4), *c0 = malloc(nc * 4 + 4);
    float *want = malloc(nc * 4 + 4), *got = malloc(nc * 4 + 4),
          *bias = malloc(4 * (size_t)(m + n));
    kc_fill(a, na, rng);
    kc_fill(b, nb, rng);
    kc_fill(c0, nc, rng);
    kc_fill(bias, (size_t)(m + n), rng);
    evo_gemm_epilogue epi = {.bias = bias,
                             .bias_mode = (int32_t)kc_rand_range(rng, 0, 3),
                             .act = {(int32_t)kc_rand_range(rng, 0, EVO_ACT_COUNT_), -0.5f, 0.5f}};
    if (epi.bias_mode == EVO_GEMM_BIAS_NONE)
        epi.bias = NULL;
    g.a = a;
    g.b = b;
    g.epi = kc_rand_range(rng, 0, 4) ? &epi : NULL;
    memcpy(want, c0, nc * 4);
    g.c = want;
    naive_gemm(&g, c0, want);
    const size_t sb = evo_sgemm_scratch_bytes(m, n, k);
    unsigned char *scratch = malloc(sb + KC_GUARD);
    const evo_kernel_path paths[3] = {EVO_KPATH_PORTABLE, EVO_KPATH_AVX2, EVO_KPATH_AUTO};
    for (int p = 0; p < 3; p++) {
        evo_kernels_force_path(paths[p]);
        memcpy(got, c0, nc * 4);
        if (g.beta == 0.0f) /* beta 0: C must not be read, NaN must not leak */
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    got[i * g.ldc + j] = NAN;
        memset(scratch + sb, KC_GUARD_BYTE, KC_GUARD);
        g.c = got;
        evo_sgemm(&g, scratch, sb);
        for (size_t i = 0; i < KC_GUARD; i++)
            assert_int_equal(scratch[sb + i], KC_GUARD_BYTE);
        char what[128];
        snprintf(what, sizeof what, "sgemm %lldx%lldx%lld ta=%d tb=%d path %d", (long long)m,
                 (long long)n, (long long)k, ta, tb, p);
        /* The padding columns of C must be untouched. */
        kc_expect_close(got, want, nc, 1e-4f, what);
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(scratch);
    free(a);
    free(b);
    free(c0);
    free(want);
    free(got);
    free(bias);
}

static void test_sgemm_random(void **state)
{
    (void)state;
    uint64_t rng = 4242;
    for (int i = 0; i < 300; i++) {
        const int64_t m = kc_rand_range(&rng, 1, 40), n = kc_rand_range(&rng, 1, 70);
        const int64_t k = kc_rand_range(&rng, 0, 50);
        sgemm_case(&rng, m, n, k, kc_rand_range(&rng, 0, 2), kc_rand_range(&rng, 0, 2));
    }
}

/* Sizes around the block sizes (MC 120, KC 256, NC 1024) and the register
 * block (6x16). */
static void test_sgemm_blocks(void **state)
{
    (void)state;
    uint64_t rng = 99;
    const int64_t shapes[][3] = {{6, 16, 1},      {7, 17, 3},     {121, 33, 257}, {120, 1024, 256},
                                 {13, 1030, 300}, {250, 50, 520}, {1, 300, 700},  {2, 2000, 40}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++)
            sgemm_case(&rng, shapes[i][0], shapes[i][1], shapes[i][2], t & 1, t >> 1);
}

static void test_act_apply(void **state)
{
    (void)state;
    float x[4] = {-2, -0.5f, 0.5f, 7};
    evo_act clip = {EVO_ACT_CLIP, -1, 6};
    evo_act_apply(&clip, x, 4);
    const float want[4] = {-1, -0.5f, 0.5f, 6};
    kc_expect_close(x, want, 4, 0, "clip");
    evo_act none = {EVO_ACT_NONE, 0, 0}, bad = {EVO_ACT_COUNT_, 0, 0};
    evo_act_apply(&none, x, 4);
    kc_expect_close(x, want, 4, 0, "none");
    assert_true(evo_act_valid(&none));
    assert_false(evo_act_valid(&bad));
}

/* ---------------------------------------------------------------- Gemm op */

/* Run Gemm with attributes on a (ar0 x ar1), b (br0 x br1) and optional c
 * of rank cr, under every path, against want (m x n). */
static void gemm_expect(const evo_node *node, const float *a, const int32_t *ad, const float *b,
                        const int32_t *bd, const float *c, int32_t cr, const int32_t *cd,
                        const float *want, int32_t m, int32_t n, const evo_act *act)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Gemm, node, params, &err), EVO_OK);
    if (act != NULL)
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Gemm, params, act), EVO_OK);
    evo_tensor ta, tb, tc, ty;
    kc_tensor(&ta, EVO_DT_FLOAT32, (void *)a, 2, ad);
    kc_tensor(&tb, EVO_DT_FLOAT32, (void *)b, 2, bd);
    kc_tensor(&tc, EVO_DT_FLOAT32, (void *)c, cr, cd);
    evo_tensor *in[3] = {&ta, &tb, c != NULL ? &tc : NULL};
    memset(&ty, 0, sizeof ty);
    if (kc_infer(&evo_op_Gemm, params, in, c != NULL ? 3 : 2, &ty, &err) != EVO_OK)
        fail_msg("infer: %s", err.msg);
    assert_int_equal(ty.shape.rank, 2);
    assert_int_equal(ty.shape.dims[0], m);
    assert_int_equal(ty.shape.dims[1], n);
    float y[64];
    const evo_kernel_path paths[4] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE, EVO_KPATH_AVX2,
                                      EVO_KPATH_AUTO};
    for (int p = 0; p < 4; p++) {
        evo_kernels_force_path(paths[p]);
        for (int i = 0; i < 64; i++)
            y[i] = NAN;
        ty.data = y;
        assert_int_equal(kc_eval(&evo_op_Gemm, params, in, c != NULL ? 3 : 2, &ty), EVO_OK);
        kc_expect_close(y, want, (size_t)(m * n), 1e-6f, "Gemm");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
}

/* A = [[1 2 3] [4 5 6]], B = [[1 0] [0 1] [1 1]]: A B = [[4 5] [10 11]]. */
static const float ga[6] = {1, 2, 3, 4, 5, 6}, ga_t[6] = {1, 4, 2, 5, 3, 6};
static const float gb[6] = {1, 0, 0, 1, 1, 1}, gb_t[6] = {1, 0, 1, 0, 1, 1};
static const int32_t ad[2] = {2, 3}, ad_t[2] = {3, 2}, bd[2] = {3, 2}, bd_t[2] = {2, 3};

static void test_gemm_attributes(void **state)
{
    (void)state;
    evo_node node;
    evo_attr at[4];
    const float ab[4] = {4, 5, 10, 11};
    kc_node(&node, "Gemm", NULL, 0);
    gemm_expect(&node, ga, ad, gb, bd, NULL, 0, NULL, ab, 2, 2, NULL);
    kc_attr_int(&at[0], "transA", 1);
    kc_node(&node, "Gemm", at, 1);
    gemm_expect(&node, ga_t, ad_t, gb, bd, NULL, 0, NULL, ab, 2, 2, NULL);
    kc_attr_int(&at[1], "transB", 1);
    kc_node(&node, "Gemm", at, 2);
    gemm_expect(&node, ga_t, ad_t, gb_t, bd_t, NULL, 0, NULL, ab, 2, 2, NULL);
    /* alpha 2, beta 0.5, C = [[1 2] [3 4]]: 2 AB + C / 2 */
    const float c[4] = {1, 2, 3, 4}, want[4] = {8.5f, 11, 21.5f, 24};
    const int32_t cd[2] = {2, 2};
    kc_attr_float(&at[2], "alpha", 2.0f);
    kc_attr_float(&at[3], "beta", 0.5f);
    kc_node(&node, "Gemm", at, 4);
    gemm_expect(&node, ga_t, ad_t, gb_t, bd_t, c, 2, cd, want, 2, 2, NULL);
    /* beta 0: C is ignored */
    kc_attr_float(&at[3], "beta", 0.0f);
    const float want_b0[4] = {8, 10, 20, 22};
    gemm_expect(&node, ga_t, ad_t, gb_t, bd_t, c, 2, cd, want_b0, 2, 2, NULL);
}

static void test_gemm_c_broadcast(void **state)
{
    (void)state;
    evo_node node;
    kc_node(&node, "Gemm", NULL, 0);
    const float s[1] = {10}, row[2] = {1, 2}, col[2] = {1, 2};
    const int32_t d1[1] = {1}, d2[1] = {2}, d11[2] = {1, 1}, d12[2] = {1, 2}, d21[2] = {2, 1};
    const float w_s[4] = {14, 15, 20, 21}, w_row[4] = {5, 7, 11, 13}, w_col[4] = {5, 6, 12, 13};
    gemm_expect(&node, ga, ad, gb, bd, s, 0, NULL, w_s, 2, 2, NULL);    /* scalar */
    gemm_expect(&node, ga, ad, gb, bd, s, 1, d1, w_s, 2, 2, NULL);      /* [1] */
    gemm_expect(&node, ga, ad, gb, bd, s, 2, d11, w_s, 2, 2, NULL);     /* [1,1] */
    gemm_expect(&node, ga, ad, gb, bd, row, 1, d2, w_row, 2, 2, NULL);  /* [N] */
    gemm_expect(&node, ga, ad, gb, bd, row, 2, d12, w_row, 2, 2, NULL); /* [1,N] */
    gemm_expect(&node, ga, ad, gb, bd, col, 2, d21, w_col, 2, 2, NULL); /* [M,1] */
    /* M == 1 (the GEMV path) with a bias row and beta 2 */
    evo_attr at[1];
    kc_attr_float(&at[0], "beta", 2.0f);
    kc_node(&node, "Gemm", at, 1);
    const int32_t a1d[2] = {1, 3};
    const float want1[2] = {4 + 2, 5 + 4};
    gemm_expect(&node, ga, a1d, gb, bd, row, 1, d2, want1, 1, 2, NULL);
}

static void test_gemm_fused_activation(void **state)
{
    (void)state;
    evo_node node;
    evo_attr at[1];
    kc_attr_float(&at[0], "alpha", -1.0f);
    kc_node(&node, "Gemm", at, 1);
    const float c[2] = {6, 0}; /* -AB + c = [[2 -5] [-4 -11]] */
    const int32_t cd[1] = {2};
    const evo_act relu = {EVO_ACT_RELU, 0, 0}, leaky = {EVO_ACT_LEAKY_RELU, 0.5f, 0};
    const float w_relu[4] = {2, 0, 0, 0}, w_leaky[4] = {2, -2.5f, -2, -5.5f};
    gemm_expect(&node, ga, ad, gb, bd, c, 1, cd, w_relu, 2, 2, &relu);
    gemm_expect(&node, ga, ad, gb, bd, c, 1, cd, w_leaky, 2, 2, &leaky);
}

/* Random Gemm ops, fast vs reference. */
static void test_gemm_random(void **state)
{
    (void)state;
    uint64_t rng = 31337;
    for (int it = 0; it < 120; it++) {
        const int32_t m = (int32_t)kc_rand_range(&rng, 1, 70),
                      n = (int32_t)kc_rand_range(&rng, 1, 90);
        const int32_t k = (int32_t)kc_rand_range(&rng, 1, 300);
        const int ta = (int)kc_rand_range(&rng, 0, 2), tb = (int)kc_rand_range(&rng, 0, 2);
        evo_attr at[4];
        kc_attr_int(&at[0], "transA", ta);
        kc_attr_int(&at[1], "transB", tb);
        kc_attr_float(&at[2], "alpha", 0.5f + (float)kc_rand_range(&rng, 0, 3));
        kc_attr_float(&at[3], "beta", (float)kc_rand_range(&rng, 0, 3) * 0.5f);
        evo_node node;
        kc_node(&node, "Gemm", at, 4);
        unsigned char params[EVO_PARAMS_MAX];
        evo_error err;
        assert_int_equal(kc_parse(&evo_op_Gemm, &node, params, &err), EVO_OK);
        const int32_t adim[2] = {ta ? k : m, ta ? m : k}, bdim[2] = {tb ? n : k, tb ? k : n};
        /* C forms: none, scalar, [N], [M,1], [1,N], [M,N] */
        const int cf = (int)kc_rand_range(&rng, 0, 6);
        int32_t cd[2] = {1, 1}, cr = 2;
        if (cf == 1)
            cr = 0;
        else if (cf == 2) {
            cr = 1;
            cd[0] = n;
        } else if (cf == 3)
            cd[0] = m;
        else if (cf == 4)
            cd[1] = n;
        else if (cf == 5) {
            cd[0] = m;
            cd[1] = n;
        }
        float *a = malloc((size_t)(m * k) * 4), *b = malloc((size_t)(k * n) * 4);
        float *c = malloc((size_t)(m * n) * 4), *want = malloc((size_t)(m * n) * 4);
        float *got = malloc((size_t)(m * n) * 4);
        kc_fill(a, (size_t)(m * k), &rng);
        kc_fill(b, (size_t)(k * n), &rng);
        kc_fill(c, (size_t)(m * n), &rng);
        evo_tensor tA, tB, tC, ty;
        kc_tensor(&tA, EVO_DT_FLOAT32, a, 2, adim);
        kc_tensor(&tB, EVO_DT_FLOAT32, b, 2, bdim);
        kc_tensor(&tC, EVO_DT_FLOAT32, c, cr, cd);
        evo_tensor *in[3] = {&tA, &tB, cf != 0 ? &tC : NULL};
        memset(&ty, 0, sizeof ty);
        assert_int_equal(kc_infer(&evo_op_Gemm, params, in, 3, &ty, &err), EVO_OK);
        evo_kernels_force_path(EVO_KPATH_REFERENCE);
        ty.data = want;
        assert_int_equal(kc_eval(&evo_op_Gemm, params, in, 3, &ty), EVO_OK);
        for (int p = 0; p < 3; p++) {
            evo_kernels_force_path(p == 0 ? EVO_KPATH_PORTABLE
                                          : (p == 1 ? EVO_KPATH_AVX2 : EVO_KPATH_AUTO));
            ty.data = got;
            assert_int_equal(kc_eval(&evo_op_Gemm, params, in, 3, &ty), EVO_OK);
            kc_expect_close(got, want, (size_t)(m * n), 1e-4f, "random Gemm");
        }
        evo_kernels_force_path(EVO_KPATH_AUTO);
        free(a);
        free(b);
        free(c);
        free(want);
        free(got);
    }
}

static void gemm_expect_error(const evo_node *node, int32_t ar, const int32_t *adim, int32_t br,
                              const int32_t *bdim, int32_t cr, const int32_t *cdim, evo_dtype dt,
                              evo_status code, const char *fragment)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    evo_error_clear(&err);
    evo_status rv = kc_parse(&evo_op_Gemm, node, params, &err);
    if (rv == EVO_OK) {
        evo_tensor ta, tb, tc, ty;
        kc_tensor(&ta, dt, NULL, ar, adim);
        kc_tensor(&tb, EVO_DT_FLOAT32, NULL, br, bdim);
        kc_tensor(&tc, EVO_DT_FLOAT32, NULL, cr, cdim);
        evo_tensor *in[3] = {&ta, &tb, cdim != NULL ? &tc : NULL};
        memset(&ty, 0, sizeof ty);
        rv = kc_infer(&evo_op_Gemm, params, in, 3, &ty, &err);
    }
    if (rv != code)
        fail_msg("[%s] expected status %d, got %d (%s)", fragment, (int)code, (int)rv, err.msg);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
}

static void test_gemm_bad_input(void **state)
{
    (void)state;
    evo_node node;
    kc_node(&node, "Gemm", NULL, 0);
    const int32_t a23[2] = {2, 3}, b32[2] = {3, 2}, b42[2] = {4, 2}, a3[3] = {1, 2, 3};
    const int32_t c3[1] = {3}, c32[2] = {3, 2}, c222[3] = {2, 2, 2};
    gemm_expect_error(&node, 3, a3, 2, b32, 0, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "2-D");
    gemm_expect_error(&node, 2, a23, 2, b42, 0, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "inner");
    gemm_expect_error(&node, 2, a23, 2, b32, 1, c3, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "broadcast");
    gemm_expect_error(&node, 2, a23, 2, b32, 2, c32, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "broadcast");
    gemm_expect_error(&node, 2, a23, 2, b32, 3, c222, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "rank <= 2");
    gemm_expect_error(&node, 2, a23, 2, b32, 0, NULL, EVO_DT_INT64, EVO_ERR_TYPE, "float32");
    evo_attr at[1];
    kc_attr_str(&at[0], "alpha", "x");
    kc_node(&node, "Gemm", at, 1);
    gemm_expect_error(&node, 2, a23, 2, b32, 0, NULL, EVO_DT_FLOAT32, EVO_ERR_TYPE, "alpha");
}

static void test_gemm_cost(void **state)
{
    (void)state;
    evo_node node;
    kc_node(&node, "Gemm", NULL, 0);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Gemm, &node, params, &err), EVO_OK);
    const int32_t a[2] = {7, 512}, b[2] = {512, 1000};
    evo_tensor ta, tb;
    kc_tensor(&ta, EVO_DT_FLOAT32, NULL, 2, a);
    kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 2, b);
    evo_tensor *in[2] = {&ta, &tb};
    evo_kctx c = {.params = params, .in = in, .n_in = 2};
    evo_op_cost cost = {0};
    evo_op_Gemm.cost(&c, &cost);
    assert_int_equal(cost.flops, 2ull * 7 * 512 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_random),     cmocka_unit_test(test_sgemm_blocks),
        cmocka_unit_test(test_act_apply),        cmocka_unit_test(test_gemm_attributes),
        cmocka_unit_test(test_gemm_c_broadcast), cmocka_unit_test(test_gemm_fused_activation),
        cmocka_unit_test(test_gemm_random),      cmocka_unit_test(test_gemm_bad_input),
        cmocka_unit_test(test_gemm_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
