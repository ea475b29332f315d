/*
 * Conv with W in the EVO_CONV_W_WINO43 layout ([36, C, M], Winograd
 * F(4x4, 3x3) weights set by the layout pass): the weight transform and its
 * inverse, the 16 x 16 register transpose the AVX-512 kernel relies on, the
 * fast paths (AVX-512 and portable) and the reference against the
 * ONNX-layout direct convolution on shapes that cross their blocks (outputs
 * not a multiple of 4, asymmetric pads, tile blocks, 16/32/64-channel GEMM
 * kernels and their row tails, batch, fused activations), and malformed
 * Winograd params rejected by infer.
 */
#include "kconv_util.h"

#include "kernels/conv.h"
#include "kernels/cpu.h"
#if defined(EVO_HAVE_X86)
#include "kernels/x86/transpose16_avx512.h"
#endif

extern const evo_op_def evo_op_Conv;

static const evo_kernel_path wino_paths[] = {EVO_KPATH_REFERENCE, EVO_KPATH_PORTABLE,
                                             EVO_KPATH_AVX2, EVO_KPATH_AUTO};

/* The transform and its inverse give back the kernel; a known value: the
 * all-ones kernel has u[0] = (1/4 * 3 * ... ) checked through G by hand. */
static void test_wino_weight_roundtrip(void **state)
{
    (void)state;
    uint64_t rng = 7;
    for (int k = 0; k < 100; k++) {
        float g[9], u[36], back[9];
        kc_fill(g, 9, &rng);
        evo_wino43_weight(g, u);
        evo_wino43_weight_inverse(u, back);
        kc_expect_close(back, g, 9, 1e-6f, "inverse(weight(g))");
    }
    /* g = delta at the centre: G g G^T = outer(G[:,1], G[:,1]). */
    const float delta[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    const float gc[6] = {0.0f, -1.0f / 6, 1.0f / 6, 1.0f / 12, -1.0f / 12, 0.0f};
    float u[36], want[36];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            want[i * 6 + j] = gc[i] * gc[j];
    evo_wino43_weight(delta, u);
    kc_expect_close(u, want, 36, 1e-7f, "weight(delta)");
}

#if defined(EVO_HAVE_X86)
__attribute__((target("avx512f"))) static void transpose_check(void)
{
    float in[256], out[256];
    for (int i = 0; i < 256; i++)
        in[i] = (float)i;
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(in + 16 * i);
    evo_transpose16_avx512(r);
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(out + 16 * i, r[i]);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            if (out[16 * j + i] != in[16 * i + j])
                fail_msg("transpose: out[%d][%d] = %g, expected %g", j, i, (double)out[16 * j + i],
                         (double)in[16 * i + j]);
}
#endif

static void test_wino_transpose16(void **state)
{
    (void)state;
#if defined(EVO_HAVE_X86)
    if (!evo_cpu_use_avx512())
        skip();
    transpose_check();
#else
    skip();
#endif
}

/* One random case: the ONNX-layout reference result, then the Winograd
 * layout under every path must match it. */
static void wino_case(int32_t n, int32_t c, int32_t m, int32_t h, int32_t w, const int64_t pads[4],
                      int32_t act_kind)
{
    const int32_t xd[4] = {n, c, h, w}, wd[4] = {m, c, 3, 3}, bd[1] = {m};
    evo_attr at[1];
    kc_attr_ints(&at[0], "pads", pads, 4);
    evo_node node;
    kc_node(&node, "Conv", at, 1);
    unsigned char onnx_params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, onnx_params, &err), EVO_OK);
    const evo_act act = {act_kind, act_kind == EVO_ACT_CLIP ? -0.5f : 0.1f, 0.5f};
    if (act_kind != EVO_ACT_NONE)
        assert_int_equal(evo_kconv_fuse_activation(&evo_op_Conv, onnx_params, &act), EVO_OK);
    evo_conv_params wp;
    memcpy(&wp, onnx_params, sizeof wp);
    wp.w_layout = EVO_CONV_W_WINO43;
    wp.n_kernel = 2;
    wp.kernel[0] = wp.kernel[1] = 3;

    uint64_t rng = (uint64_t)(n * 1000003 + c * 1009 + m * 31 + h * 7 + w + pads[0]);
    const size_t nx = (size_t)n * c * h * w, nw = (size_t)m * c * 9;
    float *x = malloc(nx * 4), *wo = malloc(nw * 4), *u = malloc(nw * 4 * 4), *b = malloc(m * 4u);
    kc_fill(x, nx, &rng);
    kc_fill(wo, nw, &rng);
    kc_fill(b, (size_t)m, &rng);
    for (int32_t mi = 0; mi < m; mi++)
        for (int32_t ci = 0; ci < c; ci++) {
            float ut[36];
            evo_wino43_weight(wo + ((size_t)mi * c + ci) * 9, ut);
            for (int xi = 0; xi < 36; xi++)
                u[((size_t)xi * c + ci) * m + mi] = ut[xi];
        }

    evo_tensor tx, tw, tb, tu;
    kc_tensor(&tx, EVO_DT_FLOAT32, x, 4, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, wo, 4, wd);
    kc_tensor(&tb, EVO_DT_FLOAT32, b, 1, bd);
    const int32_t ud[3] = {36, c, m};
    kc_tensor(&tu, EVO_DT_FLOAT32, u, 3, ud);
    evo_tensor *in[3] = {&tx, &tw, &tb}, *inu[3] = {&tx, &tu, &tb};
    kc_layouts_agree(&evo_op_Conv, onnx_params, in, &wp, inu, wino_paths,
                     sizeof wino_paths / sizeof wino_paths[0], 1e-4f, "Winograd conv");
    free(x);
    free(wo);
    free(u);
    free(b);
}

static void test_wino_fast_vs_ref(void **state)
{
    (void)state;
    const int64_t same[4] = {1, 1, 1, 1}, valid[4] = {0, 0, 0, 0}, skew[4] = {0, 2, 1, 0};
    wino_case(1, 16, 16, 32, 32, same, EVO_ACT_RELU);      /* resnet8's first stage: 64 tiles */
    wino_case(1, 32, 32, 16, 16, same, EVO_ACT_NONE);      /* 32-channel kernel, 16 tiles */
    wino_case(1, 64, 64, 8, 8, same, EVO_ACT_CLIP);        /* 64-channel kernel, 4 tiles */
    wino_case(2, 16, 48, 7, 9, same, EVO_ACT_RELU);        /* batch, partial tiles, 32 + 16 */
    wino_case(1, 32, 112, 10, 13, valid, EVO_ACT_NONE);    /* 64 + 32 + 16, 8 x 11 output */
    wino_case(1, 16, 16, 11, 6, skew, EVO_ACT_LEAKY_RELU); /* asymmetric pads, act after */
    wino_case(1, 64, 16, 3, 3, same, EVO_ACT_SIGMOID);     /* a single partial tile */
    wino_case(1, 16, 16, 70, 70, same, EVO_ACT_NONE);      /* several tile blocks */
    /* channels not multiples of 16: the portable kernel everywhere */
    wino_case(1, 3, 5, 9, 9, same, EVO_ACT_RELU);
    wino_case(1, 20, 24, 6, 8, valid, EVO_ACT_CLIP);
}

/* Infer a Conv with params p, X dims xd and W dims wd (rank wr); expect
 * `code` and `fragment` in the message. */
static void test_wino_bad_input(void **state)
{
    (void)state;
    evo_node node;
    kc_node(&node, "Conv", NULL, 0);
    unsigned char params[EVO_PARAMS_MAX];
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_Conv, &node, params, &err), EVO_OK);
    evo_conv_params p;
    memcpy(&p, params, sizeof p);
    p.w_layout = EVO_CONV_W_WINO43;
    p.n_kernel = 2;
    p.kernel[0] = p.kernel[1] = 3;
    const int32_t xd[4] = {1, 16, 8, 8}, ok[3] = {36, 16, 32};
    const int32_t x3[3] = {1, 16, 8};
    kc_conv_expect_error(&p, 3, x3, 3, ok, EVO_ERR_SHAPE, "4-D X");
    const int32_t w_rank2[2] = {36, 16};
    kc_conv_expect_error(&p, 4, xd, 2, w_rank2, EVO_ERR_SHAPE, "[36, C = 16, M]");
    const int32_t w35[3] = {35, 16, 32}, wc[3] = {36, 8, 32}, wm0[3] = {36, 16, 0};
    kc_conv_expect_error(&p, 4, xd, 3, w35, EVO_ERR_SHAPE, "[36, C = 16, M]");
    kc_conv_expect_error(&p, 4, xd, 3, wc, EVO_ERR_SHAPE, "[36, C = 16, M]");
    kc_conv_expect_error(&p, 4, xd, 3, wm0, EVO_ERR_SHAPE, "[36, C = 16, M]");
    evo_conv_params q = p;
    q.kernel[1] = 5;
    kc_conv_expect_error(&q, 4, xd, 3, ok, EVO_ERR_SHAPE, "kernel_shape {3, 3}");
    q = p;
    q.group = 2;
    kc_conv_expect_error(&q, 4, xd, 3, ok, EVO_ERR_SHAPE, "group 1");
    q = p;
    q.n_strides = 2;
    q.strides[0] = q.strides[1] = 2;
    kc_conv_expect_error(&q, 4, xd, 3, ok, EVO_ERR_SHAPE, "strides and dilations 1");
    q = p;
    q.n_dilations = 2;
    q.dilations[0] = q.dilations[1] = 2;
    kc_conv_expect_error(&q, 4, xd, 3, ok, EVO_ERR_SHAPE, "strides and dilations 1");
    /* the valid one: 8x8 valid conv -> 6x6 */
    evo_tensor ty;
    assert_int_equal(kc_conv_infer(&p, 4, xd, 3, ok, &ty, &err), EVO_OK);
    assert_int_equal(ty.shape.dims[1], 32);
    assert_int_equal(ty.shape.dims[2], 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wino_weight_roundtrip),
        cmocka_unit_test(test_wino_transpose16),
        cmocka_unit_test(test_wino_fast_vs_ref),
        cmocka_unit_test(test_wino_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
