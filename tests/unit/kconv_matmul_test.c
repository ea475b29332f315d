/*
 * MatMul: numpy semantics (1-D operands, batch broadcasting) on hand cases,
 * int32/int64 (with two's complement wrap), random float shapes fast vs
 * reference, and malformed inputs.
 */
#include "kconv_util.h"

extern const evo_op_def evo_op_MatMul;

static void matmul_run(const void *a, int32_t ar, const int32_t *ad, const void *b, int32_t br,
                       const int32_t *bd, evo_dtype dt, evo_tensor *ty, void *y)
{
    evo_tensor ta, tb;
    kc_tensor(&ta, dt, (void *)a, ar, ad);
    kc_tensor(&tb, dt, (void *)b, br, bd);
    evo_tensor *in[2] = {&ta, &tb};
    evo_error err;
    memset(ty, 0, sizeof *ty);
    if (kc_infer(&evo_op_MatMul, NULL, in, 2, ty, &err) != EVO_OK)
        fail_msg("infer: %s", err.msg);
    if (y != NULL) {
        ty->data = y;
        assert_int_equal(kc_eval(&evo_op_MatMul, NULL, in, 2, ty), EVO_OK);
    }
}

static void expect_shape(const evo_tensor *t, int32_t rank, const int32_t *dims)
{
    assert_int_equal(t->shape.rank, rank);
    for (int32_t i = 0; i < rank; i++)
        assert_int_equal(t->shape.dims[i], dims[i]);
}

static void test_matmul_hand(void **state)
{
    (void)state;
    const evo_kernel_path paths[3] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE, EVO_KPATH_AUTO};
    for (int p = 0; p < 3; p++) {
        evo_kernels_force_path(paths[p]);
        evo_tensor ty;
        float y[16];
        /* 2-D: [[1 2] [3 4]] [[5 6] [7 8]] = [[19 22] [43 50]] */
        const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, w2[4] = {19, 22, 43, 50};
        const int32_t d22[2] = {2, 2};
        matmul_run(a, 2, d22, b, 2, d22, EVO_DT_FLOAT32, &ty, y);
        expect_shape(&ty, 2, d22);
        kc_expect_close(y, w2, 4, 0, "2-D");
        /* 1-D . 1-D = scalar: [1 2 3] . [4 5 6] = 32 */
        const float v1[3] = {1, 2, 3}, v2[3] = {4, 5, 6}, w0[1] = {32};
        const int32_t d3[1] = {3};
        matmul_run(v1, 1, d3, v2, 1, d3, EVO_DT_FLOAT32, &ty, y);
        assert_int_equal(ty.shape.rank, 0);
        kc_expect_close(y, w0, 1, 0, "1-D . 1-D");
        /* 1-D x 3-D: [1 2] x B(2, 2, 3) -> (2, 3); B[i] rows r0, r1: r0 + 2 r1 */
        const float b3[12] = {1, 2, 3, 4, 5, 6, 0, 1, 0, 1, 0, 1};
        const int32_t d2[1] = {2}, d223[3] = {2, 2, 3}, d23[2] = {2, 3};
        const float w13[6] = {9, 12, 15, 2, 1, 2};
        matmul_run(v1, 1, d2, b3, 3, d223, EVO_DT_FLOAT32, &ty, y);
        expect_shape(&ty, 2, d23);
        kc_expect_close(y, w13, 6, 0, "1-D x 3-D");
        /* 3-D x 1-D: A(2, 2, 3) . [1 2 3] -> (2, 2) */
        const float w31[4] = {14, 32, 2, 4};
        const int32_t d22o[2] = {2, 2};
        matmul_run(b3, 3, d223, v1, 1, d3, EVO_DT_FLOAT32, &ty, y);
        expect_shape(&ty, 2, d22o);
        kc_expect_close(y, w31, 4, 0, "3-D x 1-D");
        /* batch broadcast: A(2, 1, 1, 2) x B(3, 2, 1) -> (2, 3, 1, 1):
         * out[i][j] = A[i] . B[j] */
        const float ab[4] = {1, 2, 3, 4}, bb[6] = {1, 0, 0, 1, 1, 1};
        const int32_t dA[4] = {2, 1, 1, 2}, dB[3] = {3, 2, 1}, dY[4] = {2, 3, 1, 1};
        const float wb[6] = {1, 2, 3, 3, 4, 7};
        matmul_run(ab, 4, dA, bb, 3, dB, EVO_DT_FLOAT32, &ty, y);
        expect_shape(&ty, 4, dY);
        kc_expect_close(y, wb, 6, 0, "batch broadcast");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
}

static void test_matmul_int(void **state)
{
    (void)state;
    evo_tensor ty;
    const int32_t a[4] = {1, -2, 3, 4}, b[4] = {5, 6, 7, 8};
    const int32_t d22[2] = {2, 2};
    int32_t y[4];
    matmul_run(a, 2, d22, b, 2, d22, EVO_DT_INT32, &ty, y);
    assert_int_equal(ty.dtype, EVO_DT_INT32);
    assert_int_equal(y[0], -9);
    assert_int_equal(y[1], -10);
    assert_int_equal(y[2], 43);
    assert_int_equal(y[3], 50);
    /* 46341^2 = 2147488281 wraps to 2147488281 - 2^32 in int32. */
    const int32_t big[1] = {46341}, d11[2] = {1, 1};
    matmul_run(big, 2, d11, big, 2, d11, EVO_DT_INT32, &ty, y);
    assert_int_equal(y[0], (int32_t)(2147488281ll - 4294967296ll));
    const int64_t a64[2] = {3000000000ll, 2}, b64[2] = {3, -1};
    const int32_t d2[1] = {2};
    int64_t y64[1];
    matmul_run(a64, 1, d2, b64, 1, d2, EVO_DT_INT64, &ty, y64);
    assert_int_equal(ty.dtype, EVO_DT_INT64);
    assert_true(y64[0] == 9000000000ll - 2);
}

static void test_matmul_random(void **state)
{
    (void)state;
    uint64_t rng = 2024;
    for (int it = 0; it < 150; it++) {
        int32_t ad[5], bd[5];
        const int32_t ar = (int32_t)kc_rand_range(&rng, 1, 5),
                      br = (int32_t)kc_rand_range(&rng, 1, 5);
        const int32_t m = (int32_t)kc_rand_range(&rng, 1, 40),
                      n = (int32_t)kc_rand_range(&rng, 1, 40);
        const int32_t k = (int32_t)kc_rand_range(&rng, 1, 80);
        /* batch dims: 1 or a shared size, so they broadcast */
        const int32_t bsz[2] = {(int32_t)kc_rand_range(&rng, 2, 4),
                                (int32_t)kc_rand_range(&rng, 2, 4)};
        for (int32_t i = 0; i < ar - 2; i++)
            ad[i] = kc_rand_range(&rng, 0, 2) ? bsz[(ar - 2 - i) % 2] : 1;
        for (int32_t i = 0; i < br - 2; i++)
            bd[i] = kc_rand_range(&rng, 0, 2) ? bsz[(br - 2 - i) % 2] : 1;
        if (ar == 1)
            ad[0] = k;
        else {
            ad[ar - 2] = m;
            ad[ar - 1] = k;
        }
        if (br == 1)
            bd[0] = k;
        else {
            bd[br - 2] = k;
            bd[br - 1] = n;
        }
        evo_tensor ta, tb, ty;
        kc_tensor(&ta, EVO_DT_FLOAT32, NULL, ar, ad);
        kc_tensor(&tb, EVO_DT_FLOAT32, NULL, br, bd);
        const size_t na = kc_numel(&ta), nb = kc_numel(&tb);
        float *a = malloc(na * 4), *b = malloc(nb * 4);
        kc_fill(a, na, &rng);
        kc_fill(b, nb, &rng);
        matmul_run(a, ar, ad, b, br, bd, EVO_DT_FLOAT32, &ty, NULL);
        const size_t ny = kc_numel(&ty);
        float *want = malloc(ny * 4 + 4), *got = malloc(ny * 4 + 4);
        evo_kernels_force_path(EVO_KPATH_REFERENCE);
        matmul_run(a, ar, ad, b, br, bd, EVO_DT_FLOAT32, &ty, want);
        for (int p = 0; p < 3; p++) {
            evo_kernels_force_path(p == 0 ? EVO_KPATH_PORTABLE
                                          : (p == 1 ? EVO_KPATH_AVX2 : EVO_KPATH_AUTO));
            matmul_run(a, ar, ad, b, br, bd, EVO_DT_FLOAT32, &ty, got);
            kc_expect_close(got, want, ny, 1e-4f, "random MatMul");
        }
        evo_kernels_force_path(EVO_KPATH_AUTO);
        free(a);
        free(b);
        free(want);
        free(got);
    }
}

static void matmul_expect_error(int32_t ar, const int32_t *ad, evo_dtype adt, int32_t br,
                                const int32_t *bd, evo_dtype bdt, evo_status code,
                                const char *fragment)
{
    evo_tensor ta, tb, ty;
    kc_tensor(&ta, adt, NULL, ar, ad);
    kc_tensor(&tb, bdt, NULL, br, bd);
    evo_tensor *in[2] = {&ta, &tb};
    evo_error err;
    memset(&ty, 0, sizeof ty);
    evo_status rv = kc_infer(&evo_op_MatMul, NULL, in, 2, &ty, &err);
    if (rv != code)
        fail_msg("[%s] expected status %d, got %d (%s)", fragment, (int)code, (int)rv, err.msg);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
}

static void test_matmul_bad_input(void **state)
{
    (void)state;
    const int32_t d23[2] = {2, 3}, d43[2] = {4, 3}, d2[1] = {2};
    const int32_t d234[3] = {2, 3, 4}, d345[3] = {3, 4, 5};
    const evo_dtype f = EVO_DT_FLOAT32;
    matmul_expect_error(2, d23, f, 2, d43, f, EVO_ERR_SHAPE, "inner dimensions");
    matmul_expect_error(2, d23, f, 1, d2, f, EVO_ERR_SHAPE, "inner dimensions");
    matmul_expect_error(3, d234, f, 3, d345, f, EVO_ERR_SHAPE, "do not broadcast");
    matmul_expect_error(0, NULL, f, 1, d2, f, EVO_ERR_SHAPE, "rank >= 1");
    matmul_expect_error(2, d23, f, 2, d23, EVO_DT_INT32, EVO_ERR_TYPE, "differ");
    matmul_expect_error(2, d23, EVO_DT_UINT8, 2, d23, EVO_DT_UINT8, EVO_ERR_TYPE, "not supported");
}

static void test_matmul_cost(void **state)
{
    (void)state;
    const int32_t ad[3] = {4, 8, 16}, bd[2] = {16, 32};
    evo_tensor ta, tb;
    kc_tensor(&ta, EVO_DT_FLOAT32, NULL, 3, ad);
    kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 2, bd);
    evo_tensor *in[2] = {&ta, &tb};
    evo_kctx c = {.in = in, .n_in = 2};
    evo_op_cost cost = {0};
    evo_op_MatMul.cost(&c, &cost);
    assert_int_equal(cost.flops, 2ull * 4 * 8 * 16 * 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_hand),   cmocka_unit_test(test_matmul_int),
        cmocka_unit_test(test_matmul_random), cmocka_unit_test(test_matmul_bad_input),
        cmocka_unit_test(test_matmul_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
