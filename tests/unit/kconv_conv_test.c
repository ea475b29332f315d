/*
 * Conv: hand-computed cases per attribute (values from the ONNX operator
 * documentation or worked out by hand in the comments), fused activations,
 * fast paths (AVX2 and portable) against the reference loops on random
 * shapes, and malformed inputs rejected by parse/infer.
 */
#include "kconv_util.h"

#include "kernels/conv.h"

extern const evo_op_def evo_op_Conv;

static const evo_kernel_path kc_paths[] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE, EVO_KPATH_AVX2,
                                           EVO_KPATH_AUTO};

/* Run Conv with the given node on x/w/b under every kernel path and compare
 * with want (shape checked too). */
static void conv_expect(const evo_node *node, const float *x, int32_t xr, const int32_t *xd,
                        const float *w, const int32_t *wd, const float *b, const float *want,
                        const int32_t *yd)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, node, params, &err), EVO_OK);
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, (void *)x, xr, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, (void *)w, xr, wd);
    int32_t bd[1] = {wd[0]};
    kc_tensor(&tb, EVO_DT_FLOAT32, (void *)b, 1, bd);
    evo_tensor *in[3] = {&tx, &tw, b != NULL ? &tb : NULL};
    memset(&ty, 0, sizeof ty);
    evo_status rv = kc_infer(&evo_op_Conv, params, in, 3, &ty, &err);
    if (rv != EVO_OK)
        fail_msg("infer: %s", err.msg);
    assert_int_equal(ty.dtype, EVO_DT_FLOAT32);
    assert_int_equal(ty.shape.rank, xr);
    for (int32_t i = 0; i < xr; i++)
        assert_int_equal(ty.shape.dims[i], yd[i]);
    size_t n = kc_numel(&ty);
    float *y = malloc(n * sizeof(float) + 1);
    for (size_t p = 0; p < sizeof kc_paths / sizeof kc_paths[0]; p++) {
        evo_kernels_force_path(kc_paths[p]);
        for (size_t i = 0; i < n; i++)
            y[i] = NAN;
        ty.data = y;
        assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
        kc_expect_close(y, want, n, 1e-5f, "Conv");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(y);
}

/* Activations the fast paths fuse (Relu, Clip) and one they leave to the
 * caller (Sigmoid). */
static const evo_act kc_relu = {EVO_ACT_RELU, 0, 0}, kc_clip = {EVO_ACT_CLIP, -0.25f, 0.5f};
static const evo_act kc_sigmoid = {EVO_ACT_SIGMOID, 0, 0};

static float x25[25], x35[35], ones9[9];

static void setup_data(void)
{
    for (int i = 0; i < 35; i++)
        x35[i] = (float)i;
    for (int i = 0; i < 25; i++)
        x25[i] = (float)i;
    for (int i = 0; i < 9; i++)
        ones9[i] = 1.0f;
}

/* ONNX Conv docs: 5x5 input 0..24, 3x3 ones kernel, with and without pads. */
static void test_conv_basic(void **state)
{
    (void)state;
    setup_data();
    const int32_t xd[4] = {1, 1, 5, 5}, wd[4] = {1, 1, 3, 3};
    const int64_t ks[2] = {3, 3}, pads1[4] = {1, 1, 1, 1}, pads0[4] = {0, 0, 0, 0};
    evo_attr at[2];
    evo_node node;
    kc_attr_ints(&at[0], "kernel_shape", ks, 2);
    kc_attr_ints(&at[1], "pads", pads1, 4);
    kc_node(&node, "Conv", at, 2);
    const float want_pad[25] = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                                117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    const int32_t yd5[4] = {1, 1, 5, 5};
    conv_expect(&node, x25, 4, xd, ones9, wd, NULL, want_pad, yd5);

    kc_attr_ints(&at[1], "pads", pads0, 4);
    const float want_nopad[9] = {54, 63, 72, 99, 108, 117, 144, 153, 162};
    const int32_t yd3[4] = {1, 1, 3, 3};
    conv_expect(&node, x25, 4, xd, ones9, wd, NULL, want_nopad, yd3);
    /* No attributes at all: kernel from W, no padding. */
    kc_node(&node, "Conv", NULL, 0);
    conv_expect(&node, x25, 4, xd, ones9, wd, NULL, want_nopad, yd3);
}

/* ONNX Conv docs: 7x5 input, strides 2, symmetric / no / asymmetric pads. */
static void test_conv_strides(void **state)
{
    (void)state;
    setup_data();
    const int32_t xd[4] = {1, 1, 7, 5}, wd[4] = {1, 1, 3, 3};
    const int64_t st[2] = {2, 2}, pads1[4] = {1, 1, 1, 1}, asym[4] = {1, 0, 1, 0};
    evo_attr at[2];
    evo_node node;
    kc_attr_ints(&at[0], "strides", st, 2);
    kc_attr_ints(&at[1], "pads", pads1, 4);
    kc_node(&node, "Conv", at, 2);
    const float want_pad[12] = {12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124};
    const int32_t yd_pad[4] = {1, 1, 4, 3};
    conv_expect(&node, x35, 4, xd, ones9, wd, NULL, want_pad, yd_pad);

    kc_node(&node, "Conv", at, 1);
    const float want_nopad[6] = {54, 72, 144, 162, 234, 252};
    const int32_t yd_nopad[4] = {1, 1, 3, 2};
    conv_expect(&node, x35, 4, xd, ones9, wd, NULL, want_nopad, yd_nopad);

    kc_attr_ints(&at[1], "pads", asym, 4);
    kc_node(&node, "Conv", at, 2);
    const float want_asym[8] = {21, 33, 99, 117, 189, 207, 171, 183};
    const int32_t yd_asym[4] = {1, 1, 4, 2};
    conv_expect(&node, x35, 4, xd, ones9, wd, NULL, want_asym, yd_asym);
}

/* auto_pad: ONNX's SAME_LOWER stride-2 case, and a 1-D case with an odd
 * total pad where SAME_UPPER and SAME_LOWER differ:
 * x = [1 2 3 4], w = [1 1]: SAME_UPPER pads the end -> [3 5 7 4],
 * SAME_LOWER the beginning -> [1 3 5 7], VALID -> [3 5 7]. */
static void test_conv_auto_pad(void **state)
{
    (void)state;
    setup_data();
    const int64_t st[2] = {2, 2};
    evo_attr at[2];
    evo_node node;
    kc_attr_str(&at[0], "auto_pad", "SAME_LOWER");
    kc_attr_ints(&at[1], "strides", st, 2);
    kc_node(&node, "Conv", at, 2);
    const int32_t xd[4] = {1, 1, 5, 5}, wd[4] = {1, 1, 3, 3}, yd[4] = {1, 1, 3, 3};
    const float want[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    conv_expect(&node, x25, 4, xd, ones9, wd, NULL, want, yd);

    const float x[4] = {1, 2, 3, 4}, w[2] = {1, 1};
    const int32_t xd1[3] = {1, 1, 4}, wd1[3] = {1, 1, 2}, yd4[3] = {1, 1, 4}, yd3[3] = {1, 1, 3};
    kc_attr_str(&at[0], "auto_pad", "SAME_UPPER");
    kc_node(&node, "Conv", at, 1);
    const float want_upper[4] = {3, 5, 7, 4};
    conv_expect(&node, x, 3, xd1, w, wd1, NULL, want_upper, yd4);
    kc_attr_str(&at[0], "auto_pad", "SAME_LOWER");
    const float want_lower[4] = {1, 3, 5, 7};
    conv_expect(&node, x, 3, xd1, w, wd1, NULL, want_lower, yd4);
    kc_attr_str(&at[0], "auto_pad", "VALID");
    const float want_valid[3] = {3, 5, 7};
    conv_expect(&node, x, 3, xd1, w, wd1, NULL, want_valid, yd3);
}

/* 1-D dilation 2: taps at i, i+2, i+4 of x = 1..7 with w = [1 10 100]:
 * y0 = 1 + 30 + 500, y1 = 2 + 40 + 600, y2 = 3 + 50 + 700. */
static void test_conv_dilations(void **state)
{
    (void)state;
    const float x[7] = {1, 2, 3, 4, 5, 6, 7}, w[3] = {1, 10, 100};
    const int64_t dil[1] = {2};
    evo_attr at[1];
    evo_node node;
    kc_attr_ints(&at[0], "dilations", dil, 1);
    kc_node(&node, "Conv", at, 1);
    const int32_t xd[3] = {1, 1, 7}, wd[3] = {1, 1, 3}, yd[3] = {1, 1, 3};
    const float want[3] = {531, 642, 753};
    conv_expect(&node, x, 3, xd, w, wd, NULL, want, yd);
}

/* group 2, 1x1 kernel: channel 0 feeds outputs 0-1, channel 1 outputs 2-3;
 * with bias [0, 0.5, 0, -1]. */
static void test_conv_group_bias(void **state)
{
    (void)state;
    const float x[6] = {1, 2, 3, 10, 20, 30}, w[4] = {1, 2, 3, 4}, b[4] = {0, 0.5f, 0, -1};
    evo_attr at[1];
    evo_node node;
    kc_attr_int(&at[0], "group", 2);
    kc_node(&node, "Conv", at, 1);
    const int32_t xd[3] = {1, 2, 3}, wd[3] = {4, 1, 1}, yd[3] = {1, 4, 3};
    const float want[12] = {1, 2, 3, 2.5f, 4.5f, 6.5f, 30, 60, 90, 39, 79, 119};
    conv_expect(&node, x, 3, xd, w, wd, b, want, yd);
}

/* Depthwise 3x3 with pads 1 on 4x4 planes: channel 0 is ones * ones, so
 * each output counts its in-bounds taps (4 at corners, 6 on edges, 9
 * inside); channel 1 is twos * halves, the same. Batch 2 repeats it. */
static void test_conv_depthwise(void **state)
{
    (void)state;
    float x[2 * 2 * 16], w[18];
    for (int i = 0; i < 64; i++)
        x[i] = (i / 16) % 2 == 0 ? 1.0f : 2.0f;
    for (int i = 0; i < 18; i++)
        w[i] = i < 9 ? 1.0f : 0.5f;
    const int64_t pads[4] = {1, 1, 1, 1};
    evo_attr at[2];
    evo_node node;
    kc_attr_int(&at[0], "group", 2);
    kc_attr_ints(&at[1], "pads", pads, 4);
    kc_node(&node, "Conv", at, 2);
    const float plane[16] = {4, 6, 6, 4, 6, 9, 9, 6, 6, 9, 9, 6, 4, 6, 6, 4};
    float want[64];
    for (int i = 0; i < 64; i++)
        want[i] = plane[i % 16];
    const int32_t xd[4] = {2, 2, 4, 4}, wd[4] = {2, 1, 3, 3}, yd[4] = {2, 2, 4, 4};
    conv_expect(&node, x, 4, xd, w, wd, NULL, want, yd);
}

/* 3-D: 2x2x2 input 1..8, 2x2x2 ones kernel, bias 0.5, pads 1 everywhere:
 * output 3x3x3; each output sums the input cube's in-bounds part. */
static void test_conv_3d(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0.5f};
    const int64_t pads[6] = {1, 1, 1, 1, 1, 1};
    evo_attr at[1];
    evo_node node;
    kc_attr_ints(&at[0], "pads", pads, 6);
    kc_node(&node, "Conv", at, 1);
    float want[27];
    for (int d = 0; d < 3; d++)
        for (int h = 0; h < 3; h++)
            for (int ww = 0; ww < 3; ww++) {
                float s = 0.5f;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++)
                        for (int k = 0; k < 2; k++)
                            if (d - 1 + i >= 0 && d - 1 + i < 2 && h - 1 + j >= 0 &&
                                h - 1 + j < 2 && ww - 1 + k >= 0 && ww - 1 + k < 2)
                                s += x[(d - 1 + i) * 4 + (h - 1 + j) * 2 + (ww - 1 + k)];
                want[(d * 3 + h) * 3 + ww] = s;
            }
    assert_true(want[0] == 1.5f && want[13] == 36.5f && want[1] == 3.5f); /* spot checks */
    const int32_t xd[5] = {1, 1, 2, 2, 2}, yd[5] = {1, 1, 3, 3, 3};
    conv_expect(&node, x, 5, xd, w, xd, b, want, yd);
}

/* Fused activations after bias: y = x + 1 through a 1x1 kernel, then act. */
static void test_conv_fused_activation(void **state)
{
    (void)state;
    const float x[5] = {-4, -2, -1, -0.5f, 3}, w[1] = {1}, b[1] = {1};
    /* y before act: -3 -1 0 0.5 4 */
    struct {
        evo_act act;
        float want[5];
    } cases[] = {
        {{EVO_ACT_RELU, 0, 0}, {0, 0, 0, 0.5f, 4}},
        {{EVO_ACT_CLIP, -0.5f, 1.0f}, {-0.5f, -0.5f, 0, 0.5f, 1}},
        {{EVO_ACT_LEAKY_RELU, 0.1f, 0}, {-0.3f, -0.1f, 0, 0.5f, 4}},
        {{EVO_ACT_SIGMOID, 0, 0}, {0.04742587f, 0.26894142f, 0.5f, 0.62245933f, 0.98201379f}},
        {{EVO_ACT_HARD_SWISH, 0, 0}, {0, -1.0f / 3.0f, 0, 0.5f * (0.5f / 6 + 0.5f), 4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evo_node node;
        kc_node(&node, "Conv", NULL, 0);
        unsigned char params[EVO_PARAMS_MAX];
        evo_error err;
        assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
        assert_int_equal(((evo_conv_params *)params)->act.kind, EVO_ACT_NONE);
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, params, &cases[i].act), EVO_OK);
        /* A second activation cannot be fused on top. */
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, params, &cases[i].act),
                         EVO_ERR_INVALID_ARG);
        evo_tensor tx, tw, tb, ty;
        const int32_t xd[3] = {1, 1, 5}, wd[3] = {1, 1, 1}, bd[1] = {1};
        kc_tensor(&tx, EVO_DT_FLOAT32, (void *)x, 3, xd);
        kc_tensor(&tw, EVO_DT_FLOAT32, (void *)w, 3, wd);
        kc_tensor(&tb, EVO_DT_FLOAT32, (void *)b, 1, bd);
        evo_tensor *in[3] = {&tx, &tw, &tb};
        memset(&ty, 0, sizeof ty);
        assert_int_equal(kc_infer(&evo_op_Conv, params, in, 3, &ty, &err), EVO_OK);
        float y[5];
        ty.data = y;
        for (size_t p = 0; p < 4; p++) {
            evo_kernels_force_path(kc_paths[p]);
            assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
            kc_expect_close(y, cases[i].want, 5, 1e-6f, "fused activation");
        }
        evo_kernels_force_path(EVO_KPATH_AUTO);
    }
    /* Ops other than Conv/Gemm, and unknown kinds, are refused. */
    extern const evo_op_def evo_op_MatMul;
    unsigned char params[EVO_PARAMS_MAX] = {0};
    evo_act bogus = {99, 0, 0};
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_MatMul, params, &kc_relu),
                     EVO_ERR_UNSUPPORTED);
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, params, &bogus), EVO_ERR_INVALID_ARG);
}

/* One random Conv: returns false if the drawn configuration is invalid
 * (infer refused it), else checks AVX2/auto and portable against ref. */
static bool conv_random_case(uint64_t *rng, int forced_kind)
{
    int nsp = (int)kc_rand_range(rng, 1, 4);
    int kind = forced_kind >= 0 ? forced_kind : (int)kc_rand_range(rng, 0, 4);
    /* kind 0: general, 1: depthwise, 2: pointwise, 3: grouped */
    if (kind == 1 && nsp == 3)
        nsp = 2;
    int64_t group = 1, c = kc_rand_range(rng, 1, 9), m = kc_rand_range(rng, 1, 20);
    if (kind == 1) {
        c = kc_rand_range(rng, 1, 12);
        group = c;
        m = c;
    } else if (kind == 3) {
        group = kc_rand_range(rng, 2, 4);
        c = group * kc_rand_range(rng, 1, 4);
        m = group * kc_rand_range(rng, 1, 5);
    }
    int32_t xd[5], wd[5];
    int64_t ks[3], st[3], dl[3], pads[6];
    xd[0] = (int32_t)kc_rand_range(rng, 1, 3);
    xd[1] = (int32_t)c;
    wd[0] = (int32_t)m;
    wd[1] = (int32_t)(c / group);
    const int max_in = nsp == 3 ? 9 : (nsp == 2 ? 40 : 90);
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = (int32_t)kc_rand_range(rng, 1, max_in);
        ks[i] = kind == 2 ? 1 : kc_rand_range(rng, 1, kind == 1 ? 6 : 5);
        st[i] = kind == 2 ? 1 : kc_rand_range(rng, 1, 4);
        dl[i] = kc_rand_range(rng, 1, 3);
        pads[i] = kind == 2 ? 0 : kc_rand_range(rng, 0, 3);
        pads[nsp + i] = kind == 2 ? 0 : kc_rand_range(rng, 0, 3);
        wd[2 + i] = (int32_t)ks[i];
    }
    evo_attr at[5];
    int na = 0;
    kc_attr_int(&at[na++], "group", group);
    kc_attr_ints(&at[na++], "strides", st, (size_t)nsp);
    kc_attr_ints(&at[na++], "dilations", dl, (size_t)nsp);
    const int ap = (int)kc_rand_range(rng, 0, 6);
    if (ap == 1)
        kc_attr_str(&at[na++], "auto_pad", "SAME_UPPER");
    else if (ap == 2)
        kc_attr_str(&at[na++], "auto_pad", "SAME_LOWER");
    else if (ap == 3 && kind != 2)
        kc_attr_str(&at[na++], "auto_pad", "VALID");
    else
        kc_attr_ints(&at[na++], "pads", pads, (size_t)(2 * nsp));
    evo_node node;
    kc_node(&node, "Conv", at, na);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
    if (kc_rand_range(rng, 0, 3) == 0) {
        evo_act act = {(int32_t)kc_rand_range(rng, 1, EVO_ACT_COUNT_), -0.25f, 0.5f};
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, params, &act), EVO_OK);
    }
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 2 + nsp, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, 2 + nsp, wd);
    const int32_t bd[1] = {(int32_t)m};
    kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 1, bd);
    const bool has_bias = kc_rand_range(rng, 0, 2) == 0;
    evo_tensor *in[3] = {&tx, &tw, has_bias ? &tb : NULL};
    memset(&ty, 0, sizeof ty);
    if (kc_infer(&evo_op_Conv, params, in, 3, &ty, &err) != EVO_OK) {
        assert_int_equal(err.code, EVO_ERR_SHAPE); /* only "kernel larger than input" */
        assert_non_null(strstr(err.msg, "larger than the padded input"));
        return false;
    }
    const size_t nx = kc_numel(&tx), nw = kc_numel(&tw), ny = kc_numel(&ty);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)m * 4);
    float *want = malloc(ny * 4 + 4), *got = malloc(ny * 4 + 4);
    kc_fill(x, nx, rng);
    kc_fill(w, nw, rng);
    kc_fill(b, (size_t)m, rng);
    tx.data = x;
    tw.data = w;
    tb.data = b;
    ty.data = want;
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
    const evo_kernel_path fast[3] = {EVO_KPATH_PORTABLE, EVO_KPATH_AVX2, EVO_KPATH_AUTO};
    for (int p = 0; p < 3; p++) {
        evo_kernels_force_path(fast[p]);
        for (size_t i = 0; i < ny; i++)
            got[i] = NAN;
        ty.data = got;
        assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
        char what[160];
        snprintf(what, sizeof what, "random conv (path %d, nsp %d, kind %d, group %lld)",
                 (int)fast[p], nsp, kind, (long long)group);
        kc_expect_close(got, want, ny, 1e-4f, what);
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(x);
    free(w);
    free(b);
    free(want);
    free(got);
    return true;
}

static void test_conv_random_fast_vs_ref(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    int ran = 0;
    for (int i = 0; i < 400; i++)
        ran += conv_random_case(&rng, i % 5 == 4 ? -1 : i % 4);
    assert_true(ran > 250); /* most draws must be valid, or the test tests little */
}

/* Shapes that cross the fast paths' internal block boundaries: SGEMM K and M
 * blocks (K > 256, M > 120), several im2col chunks, AVX2 depthwise rows of
 * 32+ outputs at strides 1 and 2, a wide 1x1, the AVX-512 implicit GEMM of
 * stride-1 convs (tiles spanning padded rows, groups, partial channel
 * blocks) and the size limit that sends a conv back to im2col. */
static void conv_big_case_batch(int32_t batch, int64_t c, int64_t m, int64_t group, int32_t h,
                                int32_t w, int64_t k, int64_t stride, int64_t pad,
                                const evo_act *act)
{
    const int32_t xd[4] = {batch, (int32_t)c, h, w};
    const int32_t wd[4] = {(int32_t)m, (int32_t)(c / group), (int32_t)k, (int32_t)k};
    const int64_t st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    evo_attr at[3];
    kc_attr_int(&at[0], "group", group);
    kc_attr_ints(&at[1], "strides", st, 2);
    kc_attr_ints(&at[2], "pads", pads, 4);
    evo_node node;
    kc_node(&node, "Conv", at, 3);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
    if (act != NULL)
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, params, act), EVO_OK);
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, 4, wd);
    const int32_t bd[1] = {(int32_t)m};
    kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 1, bd);
    evo_tensor *in[3] = {&tx, &tw, &tb};
    memset(&ty, 0, sizeof ty);
    assert_int_equal(kc_infer(&evo_op_Conv, params, in, 3, &ty, &err), EVO_OK);
    uint64_t rng = (uint64_t)(c * 31 + m * 7 + k);
    const size_t nx = kc_numel(&tx), nw = kc_numel(&tw), ny = kc_numel(&ty);
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc((size_t)m * 4);
    float *want = malloc(ny * 4), *got = malloc(ny * 4);
    kc_fill(x, nx, &rng);
    kc_fill(wt, nw, &rng);
    kc_fill(b, (size_t)m, &rng);
    tx.data = x;
    tw.data = wt;
    tb.data = b;
    ty.data = want;
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
    const evo_kernel_path fast[3] = {EVO_KPATH_PORTABLE, EVO_KPATH_AVX2, EVO_KPATH_AUTO};
    for (int p = 0; p < 3; p++) {
        evo_kernels_force_path(fast[p]);
        ty.data = got;
        assert_int_equal(kc_eval(&evo_op_Conv, params, in, 3, &ty), EVO_OK);
        kc_expect_close(got, want, ny, 1e-4f, "large conv");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(x);
    free(wt);
    free(b);
    free(want);
    free(got);
}

static void conv_big_case_act(int64_t c, int64_t m, int64_t group, int32_t h, int32_t w, int64_t k,
                              int64_t stride, int64_t pad, const evo_act *act)
{
    conv_big_case_batch(1, c, m, group, h, w, k, stride, pad, act);
}

static void conv_big_case(int64_t c, int64_t m, int64_t group, int32_t h, int32_t w, int64_t k,
                          int64_t stride, int64_t pad)
{
    conv_big_case_act(c, m, group, h, w, k, stride, pad, NULL);
}

/* The AVX-512 channel-vectorized depthwise path (whole blocks of 16
 * channels, small planes): strides, odd sizes, no padding, 5x5, planes whose
 * positions are not a multiple of the 16 a transpose moves (25x5, 20x20
 * stride 2, 7x5), several blocks and a batch, the fused activations it
 * applies itself and one it leaves to the caller. */
static void test_conv_depthwise_channel_vectors(void **state)
{
    (void)state;
    conv_big_case(64, 64, 64, 25, 5, 3, 1, 1);
    conv_big_case(32, 32, 32, 20, 20, 3, 2, 1);
    conv_big_case(16, 16, 16, 16, 16, 3, 1, 1);
    conv_big_case_batch(3, 32, 32, 32, 9, 7, 3, 1, 1, NULL);
    conv_big_case_batch(2, 16, 16, 16, 5, 3, 3, 2, 0, NULL);
    conv_big_case(64, 64, 64, 6, 6, 3, 1, 1);
    conv_big_case(128, 128, 128, 3, 3, 3, 1, 1);
    conv_big_case(64, 64, 64, 12, 12, 3, 2, 1);
    conv_big_case(32, 32, 32, 7, 5, 3, 2, 1);
    conv_big_case(48, 48, 48, 4, 4, 3, 1, 0);
    conv_big_case(16, 16, 16, 8, 8, 5, 1, 2);
    conv_big_case_act(64, 64, 64, 6, 6, 3, 1, 1, &kc_relu);
    conv_big_case_act(32, 32, 32, 6, 6, 3, 2, 1, &kc_clip);
    conv_big_case_act(16, 16, 16, 5, 5, 3, 1, 1, &kc_sigmoid);
}

/* The AVX-512 3x3 row kernels (pads 1, stride 1 on planes a vector wide,
 * stride 2 on any): the activations they fuse and one they leave, a batch. */
static void test_conv_depthwise_3x3_rows(void **state)
{
    (void)state;
    conv_big_case_act(8, 8, 8, 48, 48, 3, 1, 1, &kc_relu);
    conv_big_case_act(8, 8, 8, 24, 40, 3, 2, 1, &kc_clip);
    conv_big_case_act(4, 4, 4, 19, 21, 3, 1, 1, &kc_sigmoid);
    conv_big_case_act(4, 4, 4, 19, 21, 3, 2, 1, &kc_sigmoid);
    conv_big_case_batch(2, 8, 8, 8, 20, 33, 3, 2, 1, &kc_clip);
    conv_big_case_batch(3, 4, 4, 4, 9, 18, 3, 1, 1, &kc_relu);
}

/* The AVX-512 3x3 stride-2 stem kernel (C <= 4, M <= 64): channel blocks of
 * 16 and 8 and a partial one (M = 5, 13, 24), rows of 48 (a 32-wide and a
 * 16-wide block), of 6 and of 17 (one lane past a vector), pads 0, 1 and
 * 2, odd sizes, a batch, the activations it fuses and one it leaves, and
 * M = 65 (past its limit: the implicit path). */
static void test_conv_stem_3x3s2(void **state)
{
    (void)state;
    conv_big_case_act(3, 8, 1, 96, 96, 3, 2, 1, &kc_relu);
    conv_big_case_act(3, 32, 1, 37, 45, 3, 2, 1, &kc_clip);
    conv_big_case(1, 5, 1, 9, 9, 3, 2, 0);
    conv_big_case(4, 13, 1, 20, 70, 3, 2, 1);
    conv_big_case(2, 64, 1, 10, 34, 3, 2, 1);
    conv_big_case(3, 24, 1, 33, 33, 3, 2, 2);
    conv_big_case(3, 8, 1, 12, 12, 3, 2, 1);
    conv_big_case(3, 65, 1, 16, 16, 3, 2, 1);
    conv_big_case_batch(2, 3, 16, 1, 15, 31, 3, 2, 1, &kc_sigmoid);
}

/* The AVX-512 short-reduction pointwise kernel (C <= 32, C * M <= 4096):
 * 8-channel blocks whole and partial (M = 5, 13), planes of 32-position
 * blocks plus a 1..16 tail (35, 15, 2304), a batch, the activations it fuses
 * and one it leaves, and C = 33 and C * M = 4352 (past its limits: SGEMM). */
static void test_conv_pointwise_short_k(void **state)
{
    (void)state;
    conv_big_case_act(8, 16, 1, 48, 48, 1, 1, 0, &kc_relu);
    conv_big_case_act(16, 32, 1, 24, 24, 1, 1, 0, &kc_clip);
    conv_big_case(32, 32, 1, 7, 5, 1, 1, 0);
    conv_big_case(3, 5, 1, 5, 3, 1, 1, 0);
    conv_big_case(24, 13, 1, 9, 9, 1, 1, 0);
    conv_big_case_batch(2, 16, 24, 1, 6, 7, 1, 1, 0, &kc_sigmoid);
    conv_big_case(33, 16, 1, 8, 8, 1, 1, 0);
    conv_big_case(32, 136, 1, 6, 6, 1, 1, 0);
}

static void test_conv_block_boundaries(void **state)
{
    (void)state;
    conv_big_case(40, 130, 1, 30, 37, 3, 1, 1);  /* K = 360 > KC, M = 130 > MC, 3 chunks */
    conv_big_case(24, 16, 1, 36, 36, 3, 2, 1);   /* strided im2col */
    conv_big_case(48, 40, 1, 20, 70, 1, 1, 0);   /* pointwise, N = 1400 > NC */
    conv_big_case(32, 32, 32, 45, 75, 3, 1, 1);  /* depthwise 3x3, rows of 75 */
    conv_big_case(16, 16, 16, 47, 83, 3, 2, 1);  /* depthwise 3x3 stride 2 */
    conv_big_case(8, 8, 8, 40, 77, 5, 1, 2);     /* depthwise 5x5 */
    conv_big_case(8, 8, 8, 40, 81, 5, 2, 2);     /* depthwise 5x5 stride 2 */
    conv_big_case(3, 20, 1, 50, 50, 7, 2, 3);    /* stem-like 7x7 stride 2 */
    conv_big_case(16, 20, 2, 33, 33, 3, 1, 1);   /* implicit GEMM: groups, M % 8 != 0 */
    conv_big_case(8, 8, 1, 9, 9, 3, 1, 0);       /* implicit GEMM without padding */
    conv_big_case(6, 12, 2, 70, 75, 3, 2, 1);    /* implicit GEMM stride 2, rows of 38 */
    conv_big_case(64, 16, 1, 70, 70, 3, 1, 1);   /* padded input too large for implicit GEMM */
    conv_big_case(32, 64, 1, 16, 16, 3, 2, 1);   /* implicit stride 2 by phases, 8x8 out */
    conv_big_case(8, 8, 1, 96, 96, 3, 2, 1);     /* implicit stride 2, rows of 48 */
    conv_big_case(5, 9, 1, 17, 13, 3, 2, 1);     /* implicit stride 2, odd input sizes */
    conv_big_case(4, 8, 1, 15, 15, 5, 2, 2);     /* implicit stride 2, 5x5 taps */
    conv_big_case(64, 64, 1, 8, 8, 3, 1, 1);     /* implicit stride 1, 8x8: tiles over rows */
    conv_big_case(40, 40, 40, 25, 5, 3, 1, 1);   /* depthwise masked run, rows of 5 */
    conv_big_case(24, 24, 24, 12, 12, 3, 2, 1);  /* depthwise 3x3 stride 2 rows, one vector */
    conv_big_case(24, 24, 24, 13, 7, 3, 2, 1);   /* 3x3 stride 2 rows, odd input sizes */
    conv_big_case(16, 16, 16, 48, 48, 3, 2, 1);  /* 3x3 stride 2 rows, plane too big for channels */
    conv_big_case(8, 8, 8, 17, 16, 3, 1, 1);     /* 3x3 stride 1 row pairs, odd rows, one vector */
    conv_big_case(8, 8, 8, 6, 33, 3, 1, 1);      /* 3x3 stride 1 row pairs, a 1-lane last vector */
    conv_big_case(8, 8, 8, 15, 15, 5, 2, 2);     /* masked stride 2, 5x5 taps */
    conv_big_case(8, 8, 8, 11, 9, 5, 1, 2);      /* masked stride 1, 5x5 taps */
    conv_big_case(120, 120, 120, 6, 6, 3, 2, 1); /* 3x3 stride 2 rows, 3x3 output */
}

/* Run parse + infer on a node and expect `code` with a message. */
static void conv_expect_error(const evo_node *node, int32_t xr, const int32_t *xd, int32_t wr,
                              const int32_t *wd, const int32_t *bd, evo_dtype dt, evo_status code,
                              const char *fragment)
{
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    evo_error_clear(&err);
    evo_status rv = kc_parse(&evo_op_Conv, node, params, &err);
    if (rv == EVO_OK) {
        evo_tensor tx, tw, tb, ty;
        kc_tensor(&tx, dt, NULL, xr, xd);
        kc_tensor(&tw, EVO_DT_FLOAT32, NULL, wr, wd);
        if (bd != NULL)
            kc_tensor(&tb, EVO_DT_FLOAT32, NULL, 1, bd);
        evo_tensor *in[3] = {&tx, &tw, bd != NULL ? &tb : NULL};
        memset(&ty, 0, sizeof ty);
        rv = kc_infer(&evo_op_Conv, params, in, 3, &ty, &err);
    }
    if (rv != code)
        fail_msg("[%s] expected status %d, got %d (%s)", fragment, (int)code, (int)rv, err.msg);
    assert_int_equal(err.code, code);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
}

static void test_conv_bad_input(void **state)
{
    (void)state;
    evo_node node;
    evo_attr at[2];
    const int32_t x4[4] = {1, 4, 8, 8}, w4[4] = {6, 4, 3, 3}, w3[3] = {6, 4, 3};
    kc_node(&node, "Conv", NULL, 0);
    /* wrong W rank */
    conv_expect_error(&node, 4, x4, 3, w3, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "rank");
    /* X rank too small */
    conv_expect_error(&node, 2, x4, 2, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "rank >= 3");
    /* channel mismatch: W wants 3 input channels, X has 4 */
    const int32_t w_bad_c[4] = {6, 3, 3, 3};
    conv_expect_error(&node, 4, x4, 4, w_bad_c, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "input channels");
    /* group does not divide C */
    kc_attr_int(&at[0], "group", 3);
    kc_node(&node, "Conv", at, 1);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "does not divide C");
    /* group does not divide M */
    kc_attr_int(&at[0], "group", 4);
    const int32_t w_m5[4] = {5, 1, 3, 3};
    conv_expect_error(&node, 4, x4, 4, w_m5, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "output channels");
    /* group 0 */
    kc_attr_int(&at[0], "group", 0);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "group");
    /* negative pads */
    const int64_t negpads[4] = {-1, 0, 0, 0};
    kc_attr_ints(&at[0], "pads", negpads, 4);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "pads must be >= 0");
    /* wrong pads count */
    kc_attr_ints(&at[0], "pads", negpads, 2);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "pads has 2");
    /* kernel larger than the padded input */
    const int32_t x_small[4] = {1, 4, 2, 8};
    kc_node(&node, "Conv", NULL, 0);
    conv_expect_error(&node, 4, x_small, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "larger than the padded input");
    /* ... also when dilation makes it so */
    const int64_t dil[2] = {4, 1};
    kc_attr_ints(&at[0], "dilations", dil, 2);
    kc_node(&node, "Conv", at, 1);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE,
                      "larger than the padded input");
    /* zero stride */
    const int64_t st0[2] = {1, 0};
    kc_attr_ints(&at[0], "strides", st0, 2);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "strides[1]");
    /* kernel_shape disagrees with W */
    const int64_t ks[2] = {3, 5};
    kc_attr_ints(&at[0], "kernel_shape", ks, 2);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "kernel_shape[1]");
    /* bias of the wrong length */
    const int32_t bd[1] = {5};
    kc_node(&node, "Conv", NULL, 0);
    conv_expect_error(&node, 4, x4, 4, w4, bd, EVO_DT_FLOAT32, EVO_ERR_SHAPE, "bias");
    /* integer input: a type evo does not implement Conv for */
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_INT32, EVO_ERR_UNSUPPORTED, "float32");
    /* four spatial dims */
    const int32_t x6[6] = {1, 1, 2, 2, 2, 2}, w6[6] = {1, 1, 1, 1, 1, 1};
    conv_expect_error(&node, 6, x6, 6, w6, NULL, EVO_DT_FLOAT32, EVO_ERR_UNSUPPORTED,
                      "spatial dims");
    /* unknown auto_pad (parse) */
    kc_attr_str(&at[0], "auto_pad", "SAME");
    kc_node(&node, "Conv", at, 1);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_PARSE, "auto_pad");
    /* attribute of the wrong type (parse) */
    kc_attr_str(&at[0], "strides", "2");
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_TYPE, "strides");
    /* too many strides entries for evo (parse) */
    const int64_t st4[4] = {1, 1, 1, 1};
    kc_attr_ints(&at[0], "strides", st4, 4);
    conv_expect_error(&node, 4, x4, 4, w4, NULL, EVO_DT_FLOAT32, EVO_ERR_UNSUPPORTED, "strides");
    /* missing W */
    kc_node(&node, "Conv", NULL, 0);
    {
        unsigned char params[EVO_PARAMS_MAX];
        evo_error err;
        assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
        evo_tensor tx, ty;
        kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 4, x4);
        evo_tensor *in[2] = {&tx, NULL};
        assert_int_equal(kc_infer(&evo_op_Conv, params, in, 2, &ty, &err), EVO_ERR_GRAPH);
    }
}

/* Cost: 2 * N * M * out_spatial * C/group * kernel. */
static void test_conv_cost(void **state)
{
    (void)state;
    evo_node node;
    evo_attr at[1];
    const int64_t pads[4] = {1, 1, 1, 1};
    kc_attr_ints(&at[0], "pads", pads, 4);
    kc_node(&node, "Conv", at, 1);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
    const int32_t xd[4] = {1, 64, 56, 56}, wd[4] = {64, 64, 3, 3};
    evo_tensor tx, tw;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, 4, wd);
    evo_tensor *in[2] = {&tx, &tw};
    evo_kctx c = {.params = params, .in = in, .n_in = 2};
    evo_op_cost cost = {0};
    evo_op_Conv.cost(&c, &cost);
    assert_int_equal(cost.flops, 2ull * 64 * 56 * 56 * 64 * 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_basic),
        cmocka_unit_test(test_conv_strides),
        cmocka_unit_test(test_conv_auto_pad),
        cmocka_unit_test(test_conv_dilations),
        cmocka_unit_test(test_conv_group_bias),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_depthwise_channel_vectors),
        cmocka_unit_test(test_conv_depthwise_3x3_rows),
        cmocka_unit_test(test_conv_stem_3x3s2),
        cmocka_unit_test(test_conv_pointwise_short_k),
        cmocka_unit_test(test_conv_3d),
        cmocka_unit_test(test_conv_fused_activation),
        cmocka_unit_test(test_conv_random_fast_vs_ref),
        cmocka_unit_test(test_conv_block_boundaries),
        cmocka_unit_test(test_conv_bad_input),
        cmocka_unit_test(test_conv_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
