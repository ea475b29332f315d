/*
 * Conv with W in the EVO_CONV_W_KM layout ([C * kernel, M], set by the
 * layout pass): a hand-computed case, the fast paths (AVX-512 kernel over
 * output channels, portable loops) against the reference on shapes that
 * cross its blocks (64 channels x 4 positions, partial channel and position
 * blocks, im2col and pointwise, fused activations, batch), both equal to the
 * ONNX-layout result, and malformed KM params and shapes rejected by infer.
 */
#include "kconv_util.h"

#include "kernels/conv.h"

extern const evo_op_def evo_op_Conv;
extern const evo_op_def evo_op_ConvTranspose;

static const evo_kernel_path km_paths[] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE, EVO_KPATH_AVX2,
                                           EVO_KPATH_AUTO};

/* Params of a Conv node with the given attributes, switched to KM with the
 * given kernel dims. */
static void km_params(evo_attr *at, int32_t n_at, int32_t nsp, const int32_t *kernel,
                      evo_conv_params *p)
{
    evo_node node;
    kc_node(&node, "Conv", at, n_at);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
    memcpy(p, params, sizeof *p);
    assert_int_equal(p->w_layout, EVO_CONV_W_ONNX); /* parse never sets it */
    p->w_layout = EVO_CONV_W_KM;
    p->n_kernel = nsp;
    for (int32_t i = 0; i < nsp; i++)
        p->kernel[i] = kernel[i];
}

/* X [1, 2, 2, 2] = channels 1..4 and 5..8; W (ONNX) [3, 2, 1, 1] =
 * {1, 0}, {0, 1}, {1, -1}; B = {0.5, 0, 1}. Y by hand: x0 + 0.5, x1,
 * x0 - x1 + 1. */
static void test_km_hand(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float wkm[6] = {1, 0, 1, /* c = 0: m = 0, 1, 2 */
                          0, 1, -1};
    const float b[3] = {0.5f, 0.0f, 1.0f};
    const float want[12] = {1.5f, 2.5f, 3.5f, 4.5f, 5, 6, 7, 8, -3, -3, -3, -3};
    const int32_t xd[4] = {1, 2, 2, 2}, wd[2] = {2, 3}, bd[1] = {3}, k11[2] = {1, 1};
    evo_conv_params p;
    km_params(NULL, 0, 2, k11, &p);
    evo_tensor tx, tw, tb, ty;
    kc_tensor(&tx, EVO_DT_FLOAT32, (void *)x, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, (void *)wkm, 2, wd);
    kc_tensor(&tb, EVO_DT_FLOAT32, (void *)b, 1, bd);
    evo_tensor *in[3] = {&tx, &tw, &tb};
    memset(&ty, 0, sizeof ty);
    evo_error err;
    if (kc_infer(&evo_op_Conv, &p, in, 3, &ty, &err) != EVO_OK)
        fail_msg("infer: %s", err.msg);
    assert_int_equal(ty.shape.rank, 4);
    assert_int_equal(ty.shape.dims[1], 3);
    assert_int_equal(ty.shape.dims[2], 2);
    float y[12];
    for (size_t k = 0; k < sizeof km_paths / sizeof km_paths[0]; k++) {
        evo_kernels_force_path(km_paths[k]);
        for (int i = 0; i < 12; i++)
            y[i] = NAN;
        ty.data = y;
        assert_int_equal(kc_eval(&evo_op_Conv, &p, in, 3, &ty), EVO_OK);
        kc_expect_close(y, want, 12, 1e-6f, "KM hand case");
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
}

/* One random case: the ONNX-layout reference result, then the KM layout
 * under every path must match it. */
static void km_case(int32_t n, int32_t c, int32_t m, int32_t h, int32_t w, int32_t k,
                    int64_t stride, int64_t pad, int32_t act_kind)
{
    const int32_t xd[4] = {n, c, h, w}, wd[4] = {m, c, k, k}, bd[1] = {m};
    const int64_t st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    evo_attr at[2];
    kc_attr_ints(&at[0], "strides", st, 2);
    kc_attr_ints(&at[1], "pads", pads, 4);
    evo_node node;
    kc_node(&node, "Conv", at, 2);
    unsigned char onnx_params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, onnx_params, &err), EVO_OK);
    const evo_act act = {act_kind, act_kind == EVO_ACT_CLIP ? -0.5f : 0.1f, 0.5f};
    if (act_kind != EVO_ACT_NONE)
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, onnx_params, &act), EVO_OK);
    evo_conv_params kp;
    const int32_t kern[2] = {k, k};
    km_params(at, 2, 2, kern, &kp);
    kp.act = ((evo_conv_params *)(void *)onnx_params)->act;

    uint64_t rng = (uint64_t)(n * 1000003 + c * 1009 + m * 31 + h * 7 + k + pad);
    const size_t nx = (size_t)n * c * h * w, nw = (size_t)m * c * k * k;
    float *x = malloc(nx * 4), *wo = malloc(nw * 4), *wk = malloc(nw * 4), *b = malloc(m * 4u);
    kc_fill(x, nx, &rng);
    kc_fill(wo, nw, &rng);
    kc_fill(b, (size_t)m, &rng);
    const size_t rows = (size_t)c * k * k;
    for (size_t mi = 0; mi < (size_t)m; mi++)
        for (size_t r = 0; r < rows; r++)
            wk[r * m + mi] = wo[mi * rows + r];

    evo_tensor tx, tw, tb, tk;
    kc_tensor(&tx, EVO_DT_FLOAT32, x, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, wo, 4, wd);
    kc_tensor(&tb, EVO_DT_FLOAT32, b, 1, bd);
    const int32_t kd[2] = {(int32_t)rows, m};
    kc_tensor(&tk, EVO_DT_FLOAT32, wk, 2, kd);
    evo_tensor *in[3] = {&tx, &tw, &tb}, *ink[3] = {&tx, &tk, &tb};
    kc_layouts_agree(&evo_op_Conv, onnx_params, in, &kp, ink, km_paths,
                     sizeof km_paths / sizeof km_paths[0], 1e-4f, "KM conv");
    free(x);
    free(wo);
    free(wk);
    free(b);
}

static void test_km_fast_vs_ref(void **state)
{
    (void)state;
    km_case(1, 128, 128, 6, 6, 1, 1, 0, EVO_ACT_RELU); /* vww 6x6 pointwise: full blocks */
    km_case(1, 256, 256, 3, 3, 1, 1, 0, EVO_ACT_CLIP); /* 3x3 map: a 1-position tail */
    km_case(1, 32, 64, 8, 8, 1, 1, 0, EVO_ACT_NONE);   /* 8x8 short reduction */
    km_case(1, 16, 70, 5, 5, 3, 1, 1, EVO_ACT_RELU);   /* im2col, 64 + 6 channels, 25 positions */
    km_case(2, 8, 16, 7, 6, 3, 2, 1, EVO_ACT_LEAKY_RELU); /* batch, stride 2, act after */
    km_case(1, 24, 130, 2, 3, 1, 1, 0, EVO_ACT_CLIP);     /* 2 x 64 + 2 channels, 6 positions */
    km_case(1, 5, 17, 1, 1, 1, 1, 0, EVO_ACT_SIGMOID);    /* 1 position, 16 + 1 channels */
    km_case(1, 40, 48, 4, 4, 3, 1, 0, EVO_ACT_NONE);      /* 2x2 output, 48 channels */
    /* long reductions (K up to 576) over more positions */
    km_case(1, 64, 64, 8, 8, 3, 1, 1, EVO_ACT_RELU);  /* resnet8's 8x8 3x3 */
    km_case(1, 24, 70, 6, 6, 3, 1, 1, EVO_ACT_CLIP);  /* 64 + 6 channels, 32 + 4 positions */
    km_case(2, 200, 40, 3, 6, 1, 1, 0, EVO_ACT_NONE); /* 32 + 8 channels, 16 + 2 positions */
    /* M = 32: 8 positions x 32 channels blocks */
    km_case(1, 16, 32, 16, 16, 3, 1, 1, EVO_ACT_RELU);  /* resnet8's 16x16 */
    km_case(1, 16, 32, 16, 16, 3, 2, 1, EVO_ACT_CLIP);  /* stride 2: rows of 8 */
    km_case(1, 16, 32, 16, 16, 1, 2, 0, EVO_ACT_NONE);  /* 1x1 stride 2: X read in place */
    km_case(2, 16, 64, 9, 7, 1, 2, 0, EVO_ACT_SIGMOID); /* the same, batch, odd sides */
    km_case(1, 16, 32, 10, 10, 3, 1, 0, EVO_ACT_RELU);  /* unpadded 3x3: X read in place */
    km_case(2, 16, 64, 11, 9, 3, 2, 0, EVO_ACT_CLIP);   /* the same, stride 2, batch */
    km_case(1, 24, 96, 4, 5, 1, 1, 0, EVO_ACT_RELU);    /* pointwise 64 + 32, 16 + 4 positions */
    /* Rows not a multiple of 4 wide with whole 64-channel blocks: one call,
     * 4-position blocks spanning rows (tiny_kws_dscnn's 5-wide stem). */
    km_case(1, 1, 64, 49, 10, 3, 2, 1, EVO_ACT_RELU);  /* 25x5 out, 31 blocks + 1 */
    km_case(2, 3, 128, 11, 13, 3, 1, 1, EVO_ACT_CLIP); /* 11x13, 2 x 64 channels, batch */
    km_case(1, 8, 64, 7, 7, 3, 2, 0, EVO_ACT_SIGMOID); /* 3x3 out, unpadded, act after */
}

/* Infer a Conv with params p, X dims xd (rank 4) and W dims wd (rank wr);
 * expect `code` and `fragment` in the message. */
static void test_km_bad_input(void **state)
{
    (void)state;
    const int32_t xd[4] = {1, 4, 6, 6}, k33[2] = {3, 3};
    evo_conv_params p;
    km_params(NULL, 0, 2, k33, &p);
    const int32_t ok[2] = {36, 16};
    /* W must be 2-D */
    const int32_t w4[4] = {16, 4, 3, 3};
    kc_conv_expect_error(&p, 4, xd, 4, w4, EVO_ERR_SHAPE, "rank 2");
    /* rows must be C * kernel */
    const int32_t rows_bad[2] = {35, 16};
    kc_conv_expect_error(&p, 4, xd, 2, rows_bad, EVO_ERR_SHAPE, "expected C * kernel = 36");
    /* group 1 only */
    evo_conv_params q = p;
    q.group = 2;
    kc_conv_expect_error(&q, 4, xd, 2, ok, EVO_ERR_SHAPE, "group 1");
    /* kernel_shape must be complete and positive */
    q = p;
    q.n_kernel = 0;
    kc_conv_expect_error(&q, 4, xd, 2, ok, EVO_ERR_SHAPE, "kernel_shape");
    q = p;
    q.kernel[1] = 0;
    kc_conv_expect_error(&q, 4, xd, 2, ok, EVO_ERR_SHAPE, "must be >= 1");
    /* huge kernel dims must not overflow the row count */
    q = p;
    q.kernel[0] = INT32_MAX;
    q.kernel[1] = INT32_MAX;
    kc_conv_expect_error(&q, 4, xd, 2, ok, EVO_ERR_SHAPE, "expected C * kernel");
    /* zero output channels */
    const int32_t m0[2] = {36, 0};
    kc_conv_expect_error(&p, 4, xd, 2, m0, EVO_ERR_SHAPE, "must be >= 1");
    /* unknown layouts */
    q = p;
    q.w_layout = 7;
    kc_conv_expect_error(&q, 4, xd, 2, ok, EVO_ERR_SHAPE, "unknown weight layout 7");
    /* ConvTranspose has no KM layout */
    evo_shape xs = {.rank = 4, .dims = {1, 4, 6, 6}}, ws = {.rank = 2, .dims = {36, 16}};
    evo_conv_geom g;
    evo_error err;
    evo_error_clear(&err);
    assert_int_equal(evo_conv_transpose_resolve(&p, &xs, &ws, &g, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "not supported"));
    /* and the valid one passes */
    evo_tensor ty;
    assert_int_equal(kc_conv_infer(&p, 4, xd, 2, ok, &ty, &err), EVO_OK);
    assert_int_equal(ty.shape.dims[1], 16);
    assert_int_equal(ty.shape.dims[2], 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_km_hand),
        cmocka_unit_test(test_km_fast_vs_ref),
        cmocka_unit_test(test_km_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
