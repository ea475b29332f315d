/* MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool: hand-computed
 * cases for each attribute, and bad input through parse/infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kpool_harness.h"

/* 4x4 plane holding 1..16 row by row */
static const float kp_x16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void kp_maxpool_2d_default(void **state)
{
    (void)state;
    kh_case k;
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2, 2);
    KH_INTS(&k, "strides", 2, 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, kp_x16, KH_DIMS(1, 1, 4, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 2, 2));
    KH_F32(&k.out[0], 0, 6, 8, 14, 16);
    /* one op per window element per output */
    assert_int_equal(kh_flops(&k), 4 * 4);
}

static void kp_maxpool_ceil_mode(void **state)
{
    (void)state;
    kh_case k;
    /* kernel 3, stride 2 on 4x4: floor gives 1x1, ceil 2x2 with clipped windows */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 3, 3);
    KH_INTS(&k, "strides", 2, 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, kp_x16, KH_DIMS(1, 1, 4, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 1, 1));
    KH_F32(&k.out[0], 0, 11);

    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 3, 3);
    KH_INTS(&k, "strides", 2, 2);
    kh_int(&k, "ceil_mode", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kp_x16, KH_DIMS(1, 1, 4, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 2, 2));
    KH_F32(&k.out[0], 0, 11, 12, 15, 16);
}

static void kp_ceil_last_window_rule(void **state)
{
    (void)state;
    kh_case k;
    /* in 4, k 2, s 2, pads 0+1: ceil((4+1-2)/2)+1 = 3, but the third window
     * would start at 4, in the end padding, so it is dropped */
    static const float x[4] = {1, 5, 2, 7};
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "strides", 2);
    KH_INTS(&k, "pads", 0, 1);
    kh_int(&k, "ceil_mode", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 2));
    KH_F32(&k.out[0], 0, 5, 7);

    /* begin pad 1: windows start at -1, 1, 3; the last one starts inside the
     * input and runs past it: count_include_pad counts only taps inside the
     * padded extent [-1, 4) */
    static const float y[4] = {1, 2, 3, 4};
    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "strides", 2);
    KH_INTS(&k, "pads", 1, 0);
    kh_int(&k, "ceil_mode", 1);
    kh_int(&k, "count_include_pad", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, y, KH_DIMS(1, 1, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 3));
    KH_F32(&k.out[0], 1e-6f, 0.5f, 2.5f, 4.0f);

    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "strides", 2);
    KH_INTS(&k, "pads", 1, 0);
    kh_int(&k, "ceil_mode", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, y, KH_DIMS(1, 1, 4));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 1.0f, 2.5f, 4.0f);
}

static void kp_same_upper_lower(void **state)
{
    (void)state;
    kh_case k;
    static const float x[4] = {1, 2, 3, 4};
    /* k 2, s 1: out 4, one pad element: at the end (UPPER) or start (LOWER) */
    const char *modes[2] = {"SAME_UPPER", "SAME_LOWER"};
    const float want_max[2][4] = {{2, 3, 4, 4}, {1, 2, 3, 4}};
    const float want_avg[2][4] = {{1.5f, 2.5f, 3.5f, 4}, {1, 1.5f, 2.5f, 3.5f}};
    for (int m = 0; m < 2; m++) {
        kh_init(&k, "MaxPool", 12, 1);
        KH_INTS(&k, "kernel_shape", 2);
        kh_str(&k, "auto_pad", modes[m]);
        kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
        kh_run(&k);
        kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 4));
        kh_expect_f32(&k.out[0], want_max[m], 4, 0);

        kh_init(&k, "AveragePool", 11, 1);
        KH_INTS(&k, "kernel_shape", 2);
        kh_str(&k, "auto_pad", modes[m]);
        kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
        kh_run(&k);
        kh_expect_f32(&k.out[0], want_avg[m], 4, 1e-6f);
    }
    /* SAME with stride 2: out = ceil(5 / 2) = 3, total pad (3-1)*2+3-5 = 2 */
    static const float x5[5] = {1, 2, 3, 4, 5};
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 3);
    KH_INTS(&k, "strides", 2);
    kh_str(&k, "auto_pad", "SAME_UPPER");
    kh_in(&k, 0, EVO_DT_FLOAT32, x5, KH_DIMS(1, 1, 5));
    kh_run(&k);
    KH_F32(&k.out[0], 0, 2, 4, 5);
    /* VALID ignores pads */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 3);
    KH_INTS(&k, "strides", 2);
    kh_str(&k, "auto_pad", "VALID");
    kh_in(&k, 0, EVO_DT_FLOAT32, x5, KH_DIMS(1, 1, 5));
    kh_run(&k);
    KH_F32(&k.out[0], 0, 3, 5);
}

static void kp_dilations(void **state)
{
    (void)state;
    kh_case k;
    static const float x[6] = {3, 1, 4, 1, 5, 9};
    /* taps i and i+2 */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "dilations", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 6));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 4));
    KH_F32(&k.out[0], 0, 4, 1, 5, 9);
    /* AveragePool dilations (opset 19) */
    kh_init(&k, "AveragePool", 19, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "dilations", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 6));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 3.5f, 1, 4.5f, 5);
}

static void kp_indices_storage_order(void **state)
{
    (void)state;
    kh_case k;
    /* two channels of 2x3; kernel 2x2, stride 1 -> 1x2 per channel */
    static const float x[12] = {1, 6, 2, 5, 3, 4, 7, 8, 9, 10, 11, 12};
    kh_init(&k, "MaxPool", 12, 2);
    KH_INTS(&k, "kernel_shape", 2, 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2, 3));
    kh_run(&k);
    kh_expect_shape(&k.out[1], KH_DIMS(1, 2, 1, 2));
    KH_F32(&k.out[0], 0, 6, 6, 11, 12);
    /* row major: c*H*W + h*W + w */
    KH_I64(&k.out[1], 1, 1, 10, 11);

    kh_init(&k, "MaxPool", 12, 2);
    KH_INTS(&k, "kernel_shape", 2, 2);
    kh_int(&k, "storage_order", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2, 3));
    kh_run(&k);
    /* column major: c*H*W + h + w*H */
    KH_I64(&k.out[1], 2, 2, 9, 11);

    /* optional Indices left out: only Y */
    kh_init(&k, "MaxPool", 12, 2);
    KH_INTS(&k, "kernel_shape", 2, 2);
    k.outp[1] = NULL;
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2, 3));
    kh_run(&k);
    KH_F32(&k.out[0], 0, 6, 6, 11, 12);
}

static void kp_maxpool_3d(void **state)
{
    (void)state;
    kh_case k;
    /* 2x2x2 cube, max at (d, h, w) = (1, 1, 0) */
    static const float x[8] = {1, 2, 3, 4, 5, 6, 9, 8};
    kh_init(&k, "MaxPool", 12, 2);
    KH_INTS(&k, "kernel_shape", 2, 2, 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 2, 2, 2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 1, 1, 1));
    KH_F32(&k.out[0], 0, 9);
    KH_I64(&k.out[1], 6);
    kh_init(&k, "MaxPool", 12, 2);
    KH_INTS(&k, "kernel_shape", 2, 2, 2);
    kh_int(&k, "storage_order", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 2, 2, 2));
    kh_run(&k);
    /* d + h * D + w * D * H */
    KH_I64(&k.out[1], 3);
}

static void kp_maxpool_int8(void **state)
{
    (void)state;
    kh_case k;
    static const int8_t x[4] = {-7, -3, -100, -128};
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_in(&k, 0, EVO_DT_INT8, x, KH_DIMS(1, 1, 4));
    kh_run(&k);
    assert_int_equal(k.out[0].dtype, EVO_DT_INT8);
    const int8_t *y = k.out[0].data;
    assert_int_equal(y[0], -3);
    assert_int_equal(y[1], -3);
    assert_int_equal(y[2], -100);
}

static void kp_avgpool_pads(void **state)
{
    (void)state;
    kh_case k;
    static const float x[4] = {1, 2, 3, 4};
    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 2, 2);
    KH_INTS(&k, "pads", 1, 1, 1, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 2, 2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 3, 3));
    KH_F32(&k.out[0], 1e-6f, 1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4);

    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 2, 2);
    KH_INTS(&k, "pads", 1, 1, 1, 1);
    kh_int(&k, "count_include_pad", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 2, 2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1);

    /* asymmetric pads: begin 0, end 1 on the last dim only */
    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 1, 2);
    KH_INTS(&k, "pads", 0, 0, 0, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 2, 2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 2, 2));
    KH_F32(&k.out[0], 1e-6f, 1.5f, 2, 3.5f, 4);
}

static void kp_global(void **state)
{
    (void)state;
    kh_case k;
    static const float x[8] = {1, 2, 3, 4, -1, -2, -3, -4};
    kh_init(&k, "GlobalAveragePool", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2, 2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 2, 1, 1));
    KH_F32(&k.out[0], 1e-6f, 2.5f, -2.5f);
    assert_int_equal(kh_flops(&k), 8);

    kh_init(&k, "GlobalMaxPool", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(2, 1, 4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 1, 1));
    KH_F32(&k.out[0], 0, 4, -1);
}

static void kp_bad_input(void **state)
{
    (void)state;
    kh_case k;
    static const float x[64] = {0};

    /* kernel_shape has 2 dims, X has 1 spatial dim */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2, 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "rank"));

    /* kernel_shape missing */
    kh_init(&k, "AveragePool", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);

    /* strides of the wrong length, zero stride, negative pad */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2, 2);
    KH_INTS(&k, "strides", 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "strides", 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    KH_INTS(&k, "pads", -1, 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);

    /* unknown auto_pad; bad ceil_mode */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_str(&k, "auto_pad", "SAME");
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_int(&k, "ceil_mode", 2);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);

    /* four spatial dims */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 1, 1, 1, 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);

    /* kernel larger than the padded input */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 5);
    KH_INTS(&k, "pads", 0, 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);

    /* int32 X; int8 into AveragePool */
    static const int32_t xi[4] = {0};
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_in(&k, 0, EVO_DT_INT32, xi, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    kh_init(&k, "AveragePool", 11, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_in(&k, 0, EVO_DT_INT8, xi, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);

    /* AveragePool has no Indices output */
    kh_init(&k, "AveragePool", 11, 2);
    KH_INTS(&k, "kernel_shape", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_GRAPH);

    /* global pools need rank >= 3 and non-empty spatial dims */
    kh_init(&k, "GlobalAveragePool", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kh_init(&k, "GlobalMaxPool", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 4, 0));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);

    /* negative dim in X */
    kh_init(&k, "MaxPool", 12, 1);
    KH_INTS(&k, "kernel_shape", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, -1, 4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kp_maxpool_2d_default),
        cmocka_unit_test(kp_maxpool_ceil_mode),
        cmocka_unit_test(kp_ceil_last_window_rule),
        cmocka_unit_test(kp_same_upper_lower),
        cmocka_unit_test(kp_dilations),
        cmocka_unit_test(kp_indices_storage_order),
        cmocka_unit_test(kp_maxpool_3d),
        cmocka_unit_test(kp_maxpool_int8),
        cmocka_unit_test(kp_avgpool_pads),
        cmocka_unit_test(kp_global),
        cmocka_unit_test(kp_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
