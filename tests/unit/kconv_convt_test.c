/*
 * ConvTranspose: the ONNX documentation examples (values from the operator
 * docs, re-derived by hand where noted), group/bias/3-D hand cases, fast
 * path (SGEMM + col2im) against the reference on random shapes, and
 * malformed inputs.
 */
#include "kconv_util.h"

#include "kernels/conv.h"

extern const evo_op_def evo_op_ConvTranspose;

static const evo_kernel_path kc_paths[] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE, EVO_KPATH_AVX2,
                                           EVO_KPATH_AUTO};

static void convt_expect(const evo_node *node, const float *x, int32_t r, const int32_t *xd,
                         const float *w, const int32_t *wd, const float *b, int32_t nb,
                         const float *want, const int32_t *yd)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_ConvTranspose, node, params, &err), EVO_OK);
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, (void *)x, r, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, (void *)w, r, wd);
    kc_tensor(&tb, EVO_DT_FLOAT32, (void *)b, 1, &nb);
    evo_tensor *in[3] = {&tx, &tw, b != NULL ? &tb : NULL};
    memset(&ty, 0, sizeof ty);
    if (kc_infer(&evo_op_ConvTranspose, params, in, 3, &ty, &err) != EVO_OK)
        fail_msg("infer: %s", err.msg);
    assert_int_equal(ty.shape.rank, r);
    for (int32_t i = 0; i < r; i++)
        if (ty.shape.dims[i] != yd[i])
            fail_msg("output dim %d is %d, expected %d", (int)i, (int)ty.shape.dims[i], (int)yd[i]);
    size_t n = kc_numel(&ty);
    float *y = malloc(n * sizeof(float));
    for (size_t p = 0; p < 4; p++) {
        evo_kernels_force_path(kc_paths[p]);
        for (size_t i = 0; i < n; i++)
            y[i] = NAN;
        ty.data = y;
        assert_int_equal(kc_eval(&evo_op_ConvTranspose, params, in, 3, &ty), EVO_OK);
        kc_expect_close(y, want, n, 1e-5f, "ConvTranspose");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(y);
}

static float x9[9], ones18[18];

static void setup(void)
{
    for (int i = 0; i < 9; i++)
        x9[i] = (float)i;
    for (int i = 0; i < 18; i++)
        ones18[i] = 1.0f;
}

/* Two output channels that are the same, so want2 = want twice. */
static void dup2(const float *want, size_t n, float *out)
{
    memcpy(out, want, n * sizeof(float));
    memcpy(out + n, want, n * sizeof(float));
}

static void test_convt_basic(void **state)
{
    (void)state;
    setup();
    evo_node node;
    kc_node(&node, "ConvTranspose", NULL, 0);
    const float plane[25] = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                             27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
    float want[50];
    dup2(plane, 25, want);
    const int32_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3}, yd[4] = {1, 2, 5, 5};
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want, yd);

    /* 1-D: [0 1 2] with ones(3) -> [0 1 3 3 2] */
    const float x1[3] = {0, 1, 2}, want1[10] = {0, 1, 3, 3, 2, 0, 1, 3, 3, 2};
    const int32_t xd1[3] = {1, 1, 3}, wd1[3] = {1, 2, 3}, yd1[3] = {1, 2, 5};
    convt_expect(&node, x1, 3, xd1, ones18, wd1, NULL, 0, want1, yd1);
}

/* strides [3, 2] with output_shape [10, 8] (ONNX): the full output is 9x7,
 * so the last row and column are zero padding. The same result comes from
 * output_padding [1, 1], and from output_shape given with N and C. */
static void test_convt_output_shape_padding(void **state)
{
    (void)state;
    setup();
    const float row_a[8] = {0, 0, 1, 1, 3, 2, 2, 0}, row_b[8] = {3, 3, 7, 4, 9, 5, 5, 0};
    const float row_c[8] = {6, 6, 13, 7, 15, 8, 8, 0};
    float plane[80] = {0};
    for (int r = 0; r < 9; r++)
        memcpy(plane + r * 8, r < 3 ? row_a : (r < 6 ? row_b : row_c), sizeof row_a);
    float want[160];
    dup2(plane, 80, want);
    const int32_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3}, yd[4] = {1, 2, 10, 8};
    const int64_t st[2] = {3, 2}, os[2] = {10, 8}, os4[4] = {1, 2, 10, 8}, op[2] = {1, 1};
    evo_attr at[2];
    evo_node node;
    kc_attr_ints(&at[0], "strides", st, 2);
    kc_attr_ints(&at[1], "output_shape", os, 2);
    kc_node(&node, "ConvTranspose", at, 2);
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want, yd);
    kc_attr_ints(&at[1], "output_shape", os4, 4);
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want, yd);
    kc_attr_ints(&at[1], "output_padding", op, 2);
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want, yd);

    /* pads [1, 2, 1, 2] crop the full 9x7 output to rows 1..7, cols 2..4. */
    const int64_t pads[4] = {1, 2, 1, 2};
    kc_attr_ints(&at[1], "pads", pads, 4);
    const float cropped[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
    float want_c[42];
    dup2(cropped, 21, want_c);
    const int32_t yd_c[4] = {1, 2, 7, 3};
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want_c, yd_c);
}

/* auto_pad SAME_UPPER, strides 2 (ONNX): output = 2 * input = 6; the full
 * output is 7 wide, total padding 1 goes to the end. */
static void test_convt_auto_pad(void **state)
{
    (void)state;
    setup();
    const float plane[36] = {0, 0, 1, 1, 3, 2, 0, 0, 1,  1,  3,  2,  3, 3, 8,  5, 12, 7,
                             3, 3, 7, 4, 9, 5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
    float want[72];
    dup2(plane, 36, want);
    const int64_t st[2] = {2, 2};
    evo_attr at[2];
    evo_node node;
    kc_attr_str(&at[0], "auto_pad", "SAME_UPPER");
    kc_attr_ints(&at[1], "strides", st, 2);
    kc_node(&node, "ConvTranspose", at, 2);
    const int32_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3}, yd[4] = {1, 2, 6, 6};
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, want, yd);

    /* SAME_LOWER puts the extra pad first: the full output's row/col 0 go. */
    float full[49] = {0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    full[(2 * i + a) * 7 + 2 * j + b] += x9[i * 3 + j];
    float lower[72];
    for (int c = 0; c < 2; c++)
        for (int r = 0; r < 6; r++)
            for (int q = 0; q < 6; q++)
                lower[c * 36 + r * 6 + q] = full[(r + 1) * 7 + q + 1];
    kc_attr_str(&at[0], "auto_pad", "SAME_LOWER");
    convt_expect(&node, x9, 4, xd, ones18, wd, NULL, 0, lower, yd);
}

/* dilations [2, 2] (ONNX). */
static void test_convt_dilations(void **state)
{
    (void)state;
    const float x[9] = {3, 8, 1, 9, 5, 7, 3, 2, 6}, w[4] = {7, 2, 1, 9};
    const float want[25] = {21, 56, 13, 16, 2,  63, 35, 67, 10, 14, 24, 22, 76,
                            76, 21, 9,  5,  88, 45, 63, 3,  2,  33, 18, 54};
    const int64_t dil[2] = {2, 2};
    evo_attr at[1];
    evo_node node;
    kc_attr_ints(&at[0], "dilations", dil, 2);
    kc_node(&node, "ConvTranspose", at, 1);
    const int32_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 1, 2, 2}, yd[4] = {1, 1, 5, 5};
    convt_expect(&node, x, 4, xd, w, wd, NULL, 0, want, yd);
}

/* group 2 with bias: channel 0 [1 2] * [1 1] -> [1 3 2] + 0.5;
 * channel 1 [3 4] * [1 -1] -> [3 1 -4]. */
static void test_convt_group_bias(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, -1}, b[2] = {0.5f, 0};
    const float want[6] = {1.5f, 3.5f, 2.5f, 3, 1, -4};
    evo_attr at[1];
    evo_node node;
    kc_attr_int(&at[0], "group", 2);
    kc_node(&node, "ConvTranspose", at, 1);
    const int32_t xd[3] = {1, 2, 2}, wd[3] = {2, 1, 2}, yd[3] = {1, 2, 3};
    convt_expect(&node, x, 3, xd, w, wd, b, 2, want, yd);
}

/* 3-D: ones(2x2x2) through ones(2x2x2): y = c(d) c(h) c(w), c = [1 2 1]. */
static void test_convt_3d(void **state)
{
    (void)state;
    const float x[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float c[3] = {1, 2, 1};
    float want[27];
    for (int d = 0; d < 3; d++)
        for (int h = 0; h < 3; h++)
            for (int w = 0; w < 3; w++)
                want[(d * 3 + h) * 3 + w] = c[d] * c[h] * c[w];
    evo_node node;
    kc_node(&node, "ConvTranspose", NULL, 0);
    const int32_t xd[5] = {1, 1, 2, 2, 2}, yd[5] = {1, 1, 3, 3, 3};
    convt_expect(&node, x, 5, xd, x, xd, NULL, 0, want, yd);
}

static bool convt_random_case(uint64_t *rng)
{
    const int nsp = (int)kc_rand_range(rng, 1, 4);
    const int64_t group = kc_rand_range(rng, 1, 4);
    const int64_t c = group * kc_rand_range(rng, 1, 5), mg = kc_rand_range(rng, 1, 6);
    int32_t xd[5], wd[5];
    int64_t st[3], dl[3], pads[6], opad[3];
    xd[0] = (int32_t)kc_rand_range(rng, 1, 3);
    xd[1] = (int32_t)c;
    wd[0] = (int32_t)c;
    wd[1] = (int32_t)mg;
    const int max_in = nsp == 3 ? 6 : (nsp == 2 ? 20 : 60);
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = (int32_t)kc_rand_range(rng, 1, max_in);
        wd[2 + i] = (int32_t)kc_rand_range(rng, 1, 5);
        st[i] = kc_rand_range(rng, 1, 4);
        dl[i] = kc_rand_range(rng, 1, 3);
        pads[i] = kc_rand_range(rng, 0, 3);
        pads[nsp + i] = kc_rand_range(rng, 0, 3);
        opad[i] = kc_rand_range(rng, 0, st[i]);
    }
    evo_attr at[6];
    int na = 0;
    kc_attr_int(&at[na++], "group", group);
    kc_attr_ints(&at[na++], "strides", st, (size_t)nsp);
    kc_attr_ints(&at[na++], "dilations", dl, (size_t)nsp);
    kc_attr_ints(&at[na++], "output_padding", opad, (size_t)nsp);
    if (kc_rand_range(rng, 0, 4) == 0)
        kc_attr_str(&at[na++], "auto_pad", kc_rand_range(rng, 0, 2) ? "SAME_UPPER" : "SAME_LOWER");
    else
        kc_attr_ints(&at[na++], "pads", pads, (size_t)(2 * nsp));
    evo_node node;
    kc_node(&node, "ConvTranspose", at, na);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_ConvTranspose, &node, params, &err), EVO_OK);
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 2 + nsp, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, 2 + nsp, wd);
    const int32_t m = (int32_t)(mg * group);
    kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 1, &m);
    evo_tensor *in[3] = {&tx, &tw, kc_rand_range(rng, 0, 2) ? &tb : NULL};
    memset(&ty, 0, sizeof ty);
    if (kc_infer(&evo_op_ConvTranspose, params, in, 3, &ty, &err) != EVO_OK) {
        assert_non_null(strstr(err.msg, "remove the whole output"));
        return false;
    }
    const size_t nx = kc_numel(&tx), nw = kc_numel(&tw), ny = kc_numel(&ty);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)m * 4);
    float *want = malloc(ny * 4), *got = malloc(ny * 4);
    kc_fill(x, nx, rng);
    kc_fill(w, nw, rng);
    kc_fill(b, (size_t)m, rng);
    tx.data = x;
    tw.data = w;
    tb.data = b;
    ty.data = want;
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    assert_int_equal(kc_eval(&evo_op_ConvTranspose, params, in, 3, &ty), EVO_OK);
    for (int p = 1; p < 4; p++) {
        evo_kernels_force_path(kc_paths[p]);
        for (size_t i = 0; i < ny; i++)
            got[i] = NAN;
        ty.data = got;
        assert_int_equal(kc_eval(&evo_op_ConvTranspose, params, in, 3, &ty), EVO_OK);
        kc_expect_close(got, want, ny, 1e-4f, "random ConvTranspose");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(x);
    free(w);
    free(b);
    free(want);
    free(got);
    return true;
}

static void test_convt_random_fast_vs_ref(void **state)
{
    (void)state;
    uint64_t rng = 777;
    int ran = 0;
    for (int i = 0; i < 250; i++)
        ran += convt_random_case(&rng);
    assert_true(ran > 180);
}

/* A large case: several col2im chunks and SGEMM blocks (M' = 64 * 9). */
static void test_convt_large(void **state)
{
    (void)state;
    const int32_t xd[4] = {1, 96, 33, 40}, wd[4] = {96, 64, 3, 3};
    const int64_t st[2] = {2, 2}, pads[4] = {1, 1, 1, 1}, op[2] = {1, 1};
    evo_attr at[3];
    kc_attr_ints(&at[0], "strides", st, 2);
    kc_attr_ints(&at[1], "pads", pads, 4);
    kc_attr_ints(&at[2], "output_padding", op, 2);
    evo_node node;
    kc_node(&node, "ConvTranspose", at, 3);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_ConvTranspose, &node, params, &err), EVO_OK);
    evo_tensor tx, tw, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, 4, wd);
    evo_tensor *in[2] = {&tx, &tw};
    memset(&ty, 0, sizeof ty);
    assert_int_equal(kc_infer(&evo_op_ConvTranspose, params, in, 2, &ty, &err), EVO_OK);
    assert_int_equal(ty.shape.dims[2], 66);
    assert_int_equal(ty.shape.dims[3], 80);
    uint64_t rng = 99;
    const size_t nx = kc_numel(&tx), nw = kc_numel(&tw), ny = kc_numel(&ty);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *want = malloc(ny * 4), *got = malloc(ny * 4);
    kc_fill(x, nx, &rng);
    kc_fill(w, nw, &rng);
    tx.data = x;
    tw.data = w;
    ty.data = want;
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    assert_int_equal(kc_eval(&evo_op_ConvTranspose, params, in, 2, &ty), EVO_OK);
    evo_kernels_force_path(EVO_KPATH_AUTO);
    ty.data = got;
    assert_int_equal(kc_eval(&evo_op_ConvTranspose, params, in, 2, &ty), EVO_OK);
    kc_expect_close(got, want, ny, 1e-4f, "large ConvTranspose");
    free(x);
    free(w);
    free(want);
    free(got);
}

static void convt_expect_error(const evo_node *node, int32_t r, const int32_t *xd, int32_t wr,
                               const int32_t *wd, evo_status code, const char *fragment)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    evo_error_clear(&err);
    evo_status rv = kc_parse(&evo_op_ConvTranspose, node, params, &err);
    if (rv == EVO_OK) {
        evo_tensor tx, tw, ty;
        kc_tensor(&tx, EVO_DT_FLOAT32, NULL, r, xd);
        kc_tensor(&tw, EVO_DT_FLOAT32, NULL, wr, wd);
        evo_tensor *in[2] = {&tx, &tw};
        memset(&ty, 0, sizeof ty);
        rv = kc_infer(&evo_op_ConvTranspose, params, in, 2, &ty, &err);
    }
    if (rv != code)
        fail_msg("[%s] expected status %d, got %d (%s)", fragment, (int)code, (int)rv, err.msg);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
}

static void test_convt_bad_input(void **state)
{
    (void)state;
    evo_node node;
    evo_attr at[2];
    const int32_t xd[4] = {1, 4, 5, 5}, wd[4] = {4, 2, 3, 3};
    kc_node(&node, "ConvTranspose", NULL, 0);
    const int32_t wd_bad[4] = {3, 2, 3, 3};
    convt_expect_error(&node, 4, xd, 4, wd_bad, EVO_ERR_SHAPE, "W's first dim");
    const int32_t wd3[3] = {4, 2, 3};
    convt_expect_error(&node, 4, xd, 3, wd3, EVO_ERR_SHAPE, "rank");
    kc_attr_int(&at[0], "group", 3);
    kc_node(&node, "ConvTranspose", at, 1);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "does not divide C");
    const int64_t neg[2] = {-1, 0};
    kc_attr_ints(&at[0], "output_padding", neg, 2);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "output_padding[0]");
    const int64_t big_pads[4] = {4, 4, 4, 4};
    kc_attr_ints(&at[0], "pads", big_pads, 4);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "remove the whole output");
    const int64_t negp[4] = {0, -1, 0, 0};
    kc_attr_ints(&at[0], "pads", negp, 4);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "pads must be >= 0");
    const int64_t os3[3] = {5, 5, 5};
    kc_attr_ints(&at[0], "output_shape", os3, 3);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "output_shape has 3");
    const int64_t os0[2] = {0, 5};
    kc_attr_ints(&at[0], "output_shape", os0, 2);
    convt_expect_error(&node, 4, xd, 4, wd, EVO_ERR_SHAPE, "must be >= 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convt_basic),
        cmocka_unit_test(test_convt_output_shape_padding),
        cmocka_unit_test(test_convt_auto_pad),
        cmocka_unit_test(test_convt_dilations),
        cmocka_unit_test(test_convt_group_bias),
        cmocka_unit_test(test_convt_3d),
        cmocka_unit_test(test_convt_random_fast_vs_ref),
        cmocka_unit_test(test_convt_large),
        cmocka_unit_test(test_convt_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
