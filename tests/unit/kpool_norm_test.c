/* BatchNormalization, InstanceNormalization, LRN: hand-computed cases and
 * bad input through parse/infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kpool_harness.h"

static const float kn_x[4] = {1, 2, 3, 4}; /* N=1, C=2, 1x2 per channel */
static const float kn_scale[2] = {1, 2}, kn_bias[2] = {0, 1};
static const float kn_mean[2] = {1, 2}, kn_var[2] = {3, 0};

static void kn_bn_setup(kh_case *k, int opset, int32_t n_out)
{
    kh_init(k, "BatchNormalization", opset, n_out);
    kh_float(k, "epsilon", 1.0f);
    kh_in(k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(1, 2, 1, 2));
    kh_in(k, 1, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_in(k, 2, EVO_DT_FLOAT32, kn_bias, KH_DIMS(2));
    kh_in(k, 3, EVO_DT_FLOAT32, kn_mean, KH_DIMS(2));
    kh_in(k, 4, EVO_DT_FLOAT32, kn_var, KH_DIMS(2));
}

static void kn_batchnorm(void **state)
{
    (void)state;
    kh_case k;
    /* ch0: (x - 1) / sqrt(3 + 1) * 1 + 0; ch1: (x - 2) / sqrt(0 + 1) * 2 + 1 */
    kn_bn_setup(&k, 15, 1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 2, 1, 2));
    KH_F32(&k.out[0], 1e-6f, 0, 0.5f, 3, 5);
    assert_int_equal(kh_flops(&k), 8);
    assert_true(k.op->flags & EVO_OP_INPLACE);

    /* in place: output aliasing X */
    float buf[4];
    memcpy(buf, kn_x, sizeof buf);
    k.in[0].data = buf;
    k.out[0].data = buf;
    k.ctx.err = NULL;
    assert_int_equal(k.op->eval(&k.ctx), EVO_OK);
    KH_F32(&k.out[0], 1e-6f, 0, 0.5f, 3, 5);

    /* rank 2 (N, C) and the default epsilon 1e-5 */
    static const float x2[2] = {1, 2};
    kh_init(&k, "BatchNormalization", 9, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x2, KH_DIMS(1, 2));
    kh_in(&k, 1, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_in(&k, 2, EVO_DT_FLOAT32, kn_bias, KH_DIMS(2));
    kh_in(&k, 3, EVO_DT_FLOAT32, kn_bias, KH_DIMS(2));
    kh_in(&k, 4, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-4f, 1.0f / sqrtf(1 + 1e-5f), 2 * (2 - 1) / sqrtf(2 + 1e-5f) + 1);
}

static void kn_batchnorm_bad(void **state)
{
    (void)state;
    kh_case k;
    /* scale of the wrong length */
    static const float s3[3] = {1, 1, 1};
    kn_bn_setup(&k, 15, 1);
    kh_in(&k, 1, EVO_DT_FLOAT32, s3, KH_DIMS(3));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "scale"));
    /* var of rank 2 */
    kn_bn_setup(&k, 15, 1);
    kh_in(&k, 4, EVO_DT_FLOAT32, kn_var, KH_DIMS(1, 2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "input_var"));
    /* int32 mean */
    kn_bn_setup(&k, 15, 1);
    kh_in(&k, 3, EVO_DT_INT32, kn_mean, KH_DIMS(2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* training mode */
    kn_bn_setup(&k, 15, 1);
    kh_int(&k, "training_mode", 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* old-opset training outputs present */
    kn_bn_setup(&k, 9, 5);
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* ... but absent optional outputs are fine */
    kn_bn_setup(&k, 9, 5);
    for (int i = 1; i < 5; i++)
        k.outp[i] = NULL;
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 0, 0.5f, 3, 5);
    /* spatial=0 (opset 7) */
    kn_bn_setup(&k, 7, 1);
    kh_int(&k, "spatial", 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* X of rank 1; missing input */
    kn_bn_setup(&k, 15, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(4));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kn_bn_setup(&k, 15, 1);
    k.n_in = 4;
    assert_int_equal(kh_prepare(&k), EVO_ERR_GRAPH);
}

static void kn_instancenorm(void **state)
{
    (void)state;
    kh_case k;
    /* one plane 1, 2, 3, 4: mean 2.5, variance 1.25 */
    static const float sc[1] = {2}, b[1] = {1};
    kh_init(&k, "InstanceNormalization", 6, 1);
    kh_float(&k, "epsilon", 0.0f);
    kh_in(&k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(1, 1, 4));
    kh_in(&k, 1, EVO_DT_FLOAT32, sc, KH_DIMS(1));
    kh_in(&k, 2, EVO_DT_FLOAT32, b, KH_DIMS(1));
    kh_run(&k);
    float r = 1.0f / sqrtf(1.25f);
    KH_F32(&k.out[0], 1e-5f, 1 - 3 * r, 1 - r, 1 + r, 1 + 3 * r);

    /* two channels of 1x2: [1, 2] and [3, 4]; each normalizes to -1, 1 */
    kh_init(&k, "InstanceNormalization", 6, 1);
    kh_float(&k, "epsilon", 0.0f);
    kh_in(&k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(1, 2, 1, 2));
    kh_in(&k, 1, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_in(&k, 2, EVO_DT_FLOAT32, kn_bias, KH_DIMS(2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, -1, 1, -1, 3);

    /* bad: rank 2, B of the wrong length */
    kh_init(&k, "InstanceNormalization", 6, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(2, 2));
    kh_in(&k, 1, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_in(&k, 2, EVO_DT_FLOAT32, kn_bias, KH_DIMS(2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kh_init(&k, "InstanceNormalization", 6, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kn_x, KH_DIMS(1, 2, 2));
    kh_in(&k, 1, EVO_DT_FLOAT32, kn_scale, KH_DIMS(2));
    kh_in(&k, 2, EVO_DT_FLOAT32, kn_bias, KH_DIMS(1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "B"));
}

static void kn_lrn(void **state)
{
    (void)state;
    kh_case k;
    static const float x[3] = {1, 2, 3}; /* N=1, C=3, 1x1 */
    /* size 2: window c .. c+1 (floor(1/2) before, ceil(1/2) after);
     * alpha/size = 1.5, beta 1, bias 1 */
    kh_init(&k, "LRN", 13, 1);
    kh_int(&k, "size", 2);
    kh_float(&k, "alpha", 3.0f);
    kh_float(&k, "beta", 1.0f);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 3, 1, 1));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 1 / 8.5f, 2 / 20.5f, 3 / 14.5f);

    /* size 3: window c-1 .. c+1; alpha/size = 1, beta 0.5 */
    kh_init(&k, "LRN", 13, 1);
    kh_int(&k, "size", 3);
    kh_float(&k, "alpha", 3.0f);
    kh_float(&k, "beta", 0.5f);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 3, 1, 1));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 1 / sqrtf(6), 2 / sqrtf(15), 3 / sqrtf(14));

    /* bad: size missing or 0; int8 X */
    kh_init(&k, "LRN", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 3, 1, 1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "LRN", 13, 1);
    kh_int(&k, "size", 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "LRN", 13, 1);
    kh_int(&k, "size", 3);
    kh_in(&k, 0, EVO_DT_INT8, x, KH_DIMS(1, 3, 1, 1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kn_batchnorm),
        cmocka_unit_test(kn_batchnorm_bad),
        cmocka_unit_test(kn_instancenorm),
        cmocka_unit_test(kn_lrn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
