/* Softmax and LogSoftmax: axis handling in both opset forms, numerical
 * stability, in-place evaluation, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kpool_harness.h"

/* softmax([1, 2, 3]) and of [1, 1] / [2, 1] / [3, 1] pairs */
#define KS_S1 0.09003057f
#define KS_S2 0.24472847f
#define KS_S3 0.66524096f
#define KS_E1 0.73105858f /* e / (e + 1) */
#define KS_E2 0.88079708f /* e^2 / (e^2 + 1) */

static const float ks_x23[6] = {1, 2, 3, 1, 1, 1};

static void ks_last_axis(void **state)
{
    (void)state;
    kh_case k;
    kh_init(&k, "Softmax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 3));
    KH_F32(&k.out[0], 1e-6f, KS_S1, KS_S2, KS_S3, 1 / 3.0f, 1 / 3.0f, 1 / 3.0f);
    assert_int_equal(kh_flops(&k), 24);

    kh_init(&k, "LogSoftmax", 13, 1);
    kh_int(&k, "axis", -1);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, logf(KS_S1), logf(KS_S2), logf(KS_S3), -logf(3), -logf(3), -logf(3));
}

static void ks_inner_axis(void **state)
{
    (void)state;
    kh_case k;
    /* axis 0 of 2x3: columns [1,1], [2,1], [3,1] (the strided path) */
    kh_init(&k, "Softmax", 13, 1);
    kh_int(&k, "axis", 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 0.5f, KS_E1, KS_E2, 0.5f, 1 - KS_E1, 1 - KS_E2);

    kh_init(&k, "LogSoftmax", 13, 1);
    kh_int(&k, "axis", -2);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, logf(0.5f), logf(KS_E1), logf(KS_E2), logf(0.5f), logf(1 - KS_E1),
           logf(1 - KS_E2));

    /* in place on the strided path */
    float buf[6];
    memcpy(buf, ks_x23, sizeof buf);
    kh_init(&k, "Softmax", 13, 1);
    kh_int(&k, "axis", 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, buf, KH_DIMS(2, 3));
    kh_run(&k);
    k.out[0].data = buf;
    k.ctx.err = NULL;
    assert_int_equal(k.op->eval(&k.ctx), EVO_OK);
    KH_F32(&k.out[0], 1e-6f, 0.5f, KS_E1, KS_E2, 0.5f, 1 - KS_E1, 1 - KS_E2);
}

static void ks_legacy_flatten(void **state)
{
    (void)state;
    kh_case k;
    static const float x[4] = {1, 2, 3, 4};
    /* opset 11, default axis 1 on [1, 2, 2]: one row of 4 */
    kh_init(&k, "Softmax", 11, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 2, 2));
    KH_F32(&k.out[0], 1e-6f, 0.0320586f, 0.08714432f, 0.23688282f, 0.64391426f);
    /* opset 13, default axis -1: rows [1, 2] and [3, 4] */
    kh_init(&k, "Softmax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 1 - KS_E1, KS_E1, 1 - KS_E1, KS_E1);
    /* opset 1 LogSoftmax, axis 2 on [1, 2, 2]: rows of 2 as well */
    kh_init(&k, "LogSoftmax", 1, 1);
    kh_int(&k, "axis", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(1, 2, 2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, logf(1 - KS_E1), logf(KS_E1), logf(1 - KS_E1), logf(KS_E1));
    /* opset 11, axis 0: the whole tensor is one row */
    kh_init(&k, "LogSoftmax", 11, 1);
    kh_int(&k, "axis", 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(2, 2));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, logf(0.0320586f), logf(0.08714432f), logf(0.23688282f),
           logf(0.64391426f));
}

static void ks_large_values(void **state)
{
    (void)state;
    kh_case k;
    /* exp(1000) overflows float; subtracting the max keeps it finite */
    static const float x[3] = {1000, 1001, 1002};
    kh_init(&k, "Softmax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, KS_S1, KS_S2, KS_S3);
    kh_init(&k, "LogSoftmax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, x, KH_DIMS(3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, logf(KS_S1), logf(KS_S2), logf(KS_S3));
}

static void ks_bad_input(void **state)
{
    (void)state;
    kh_case k;
    kh_init(&k, "Softmax", 13, 1);
    kh_int(&k, "axis", 2);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "axis"));
    kh_init(&k, "LogSoftmax", 11, 1);
    kh_int(&k, "axis", -3);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_DIMS(2, 3));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kh_init(&k, "Softmax", 13, 1);
    kh_in(&k, 0, EVO_DT_INT32, ks_x23, KH_DIMS(2, 3));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    kh_init(&k, "Softmax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, ks_x23, KH_SCALAR);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kh_init(&k, "Softmax", 13, 1);
    kh_float(&k, "axis", 1.0f);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ks_last_axis),      cmocka_unit_test(ks_inner_axis),
        cmocka_unit_test(ks_legacy_flatten), cmocka_unit_test(ks_large_values),
        cmocka_unit_test(ks_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
