/* Concat and Split: hand-computed cases, opset-18 num_outputs, bad input. */
#include "kshape_test_util.h"

static void test_concat_axis1(void **state)
{
    (void)state;
    const float a[] = {1, 2, 3, 4};        /* [2,2] */
    const float b[] = {5, 6, 7, 8, 9, 10}; /* [2,3] */
    evo_tensor ta = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 2), a);
    evo_tensor tb = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 3), b);
    evo_tensor *in[] = {&ta, &tb};
    kt k;
    kt_begin(&k, "Concat", 13);
    kt_int(&k, "axis", -1);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 5));
    const float want[] = {1, 2, 5, 6, 7, 3, 4, 8, 9, 10};
    kt_expect_f32(k.out[0], want, 10, 0);
    kt_free(&k, NULL);
}

static void test_concat_axis0_int8_with_empty(void **state)
{
    (void)state;
    const int8_t a[] = {1, 2, 3};
    const int8_t c[] = {4, 5, 6, 7, 8, 9};
    evo_tensor ta = kt_tensor(EVO_DT_INT8, kt_shape(2, 1, 3), a);
    evo_tensor tb = kt_tensor(EVO_DT_INT8, kt_shape(2, 0, 3), NULL);
    evo_tensor tc = kt_tensor(EVO_DT_INT8, kt_shape(2, 2, 3), c);
    evo_tensor *in[] = {&ta, &tb, &tc};
    kt k;
    kt_begin(&k, "Concat", 13);
    kt_int(&k, "axis", 0);
    assert_int_equal(kt_run(&k, in, 3, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 3));
    const int8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_concat_bad(void **state)
{
    (void)state;
    evo_tensor ta = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 2), NULL);
    evo_tensor tb = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 3), NULL);
    evo_tensor tc = kt_tensor(EVO_DT_INT32, kt_shape(2, 2, 3), NULL);
    evo_tensor *in1[] = {&ta, &tb};
    evo_tensor *in2[] = {&ta, &tc};
    kt k;
    kt_begin(&k, "Concat", 13);
    kt_int(&k, "axis", 1);
    assert_int_equal(kt_infer(&k, in1, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "Concat"));
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_TYPE);
    kt_begin(&k, "Concat", 13);
    kt_int(&k, "axis", 2);
    evo_tensor *in3[] = {&ta, &ta};
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    kt_begin(&k, "Concat", 13); /* axis is required */
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_PARSE);
}

static const float split_x[] = {0, 1, 2, 3, 4, 10, 11, 12, 13, 14}; /* [2,5] */

static void test_split_sizes(void **state)
{
    (void)state;
    const int64_t sp[] = {2, 3};
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 5), split_x);
    evo_tensor s = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), sp);
    evo_tensor *in[] = {&x, &s};
    kt k;
    kt_begin(&k, "Split", 13);
    kt_int(&k, "axis", 1);
    assert_int_equal(kt_run(&k, in, 2, 2), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 2));
    kt_expect_shape(k.out[1], kt_shape(2, 2, 3));
    const float w0[] = {0, 1, 10, 11}, w1[] = {2, 3, 4, 12, 13, 14};
    kt_expect_f32(k.out[0], w0, 4, 0);
    kt_expect_f32(k.out[1], w1, 6, 0);
    kt_free(&k, NULL);
}

static void test_split_equal_axis0(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 5), split_x);
    evo_tensor *in[] = {&x};
    kt k;
    kt_begin(&k, "Split", 13);
    assert_int_equal(kt_run(&k, in, 1, 2), EVO_OK);
    kt_expect_shape(k.out[1], kt_shape(2, 1, 5));
    kt_expect_f32(k.out[0], split_x, 5, 0);
    kt_expect_f32(k.out[1], split_x + 5, 5, 0);
    kt_free(&k, NULL);
    /* 5 is not divisible by 2 without num_outputs */
    kt_begin(&k, "Split", 13);
    kt_int(&k, "axis", -1);
    assert_int_equal(kt_infer(&k, in, 1, 2), EVO_ERR_SHAPE);
}

static void test_split_num_outputs(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 5), split_x);
    evo_tensor *in[] = {&x};
    kt k;
    kt_begin(&k, "Split", 18);
    kt_int(&k, "axis", 1);
    kt_int(&k, "num_outputs", 3);
    assert_int_equal(kt_run(&k, in, 1, 3), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 2));
    kt_expect_shape(k.out[1], kt_shape(2, 2, 2));
    kt_expect_shape(k.out[2], kt_shape(2, 2, 1));
    const float w1[] = {2, 3, 12, 13}, w2[] = {4, 14};
    kt_expect_f32(k.out[1], w1, 4, 0);
    kt_expect_f32(k.out[2], w2, 2, 0);
    kt_free(&k, NULL);
    kt_begin(&k, "Split", 18);
    kt_int(&k, "num_outputs", 3);
    assert_int_equal(kt_infer(&k, in, 1, 2), EVO_ERR_SHAPE); /* count mismatch */
}

static void test_split_bad(void **state)
{
    (void)state;
    const int64_t bad_sum[] = {2, 2}, neg[] = {6, -1};
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 5), split_x);
    evo_tensor s1 = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), bad_sum);
    evo_tensor s2 = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), neg);
    evo_tensor s3 = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), NULL); /* not constant */
    kt k;
    kt_begin(&k, "Split", 13);
    kt_int(&k, "axis", 1);
    evo_tensor *in1[] = {&x, &s1};
    assert_int_equal(kt_infer(&k, in1, 2, 2), EVO_ERR_SHAPE);
    evo_tensor *in2[] = {&x, &s2};
    assert_int_equal(kt_infer(&k, in2, 2, 2), EVO_ERR_SHAPE);
    evo_tensor *in3[] = {&x, &s3};
    assert_int_equal(kt_infer(&k, in3, 2, 2), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "split"));
    evo_tensor *in4[] = {&x, &s1};
    assert_int_equal(kt_infer(&k, in4, 2, 3), EVO_ERR_SHAPE); /* 2 sizes, 3 outputs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat_axis1),
        cmocka_unit_test(test_concat_axis0_int8_with_empty),
        cmocka_unit_test(test_concat_bad),
        cmocka_unit_test(test_split_sizes),
        cmocka_unit_test(test_split_equal_axis0),
        cmocka_unit_test(test_split_num_outputs),
        cmocka_unit_test(test_split_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
