/* Slice: clamping, negative steps, INT64 sentinels, axes, and bad input. */
#include "kshape_test_util.h"

/* x = [[0..4],[10..14],[20..24]]  shape [3,5] */
static const int32_t slice_x[] = {0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24};

static evo_status slice_run(kt *k, const int64_t *starts, const int64_t *ends, const int64_t *axes,
                            const int64_t *steps, int n)
{
    static evo_tensor x, s, e, a, st;
    x = kt_tensor(EVO_DT_INT32, kt_shape(2, 3, 5), slice_x);
    s = kt_tensor(EVO_DT_INT64, kt_shape(1, n), starts);
    e = kt_tensor(EVO_DT_INT64, kt_shape(1, n), ends);
    a = kt_tensor(EVO_DT_INT64, kt_shape(1, n), axes);
    st = kt_tensor(EVO_DT_INT64, kt_shape(1, n), steps);
    evo_tensor *in[] = {&x, &s, &e, axes ? &a : NULL, steps ? &st : NULL};
    kt_begin(k, "Slice", 13);
    return kt_run(k, in, 5, 1);
}

static void test_slice_basic(void **state)
{
    (void)state;
    kt k;
    const int64_t s[] = {1, 0}, e[] = {3, 3};
    assert_int_equal(slice_run(&k, s, e, NULL, NULL, 2), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 3));
    const int32_t want[] = {10, 11, 12, 20, 21, 22};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_slice_negative_step_full_reverse(void **state)
{
    (void)state;
    kt k;
    /* ends = INT64_MIN means "through index 0" for a negative step. */
    const int64_t s[] = {-1}, e[] = {INT64_MIN}, a[] = {1}, st[] = {-1};
    assert_int_equal(slice_run(&k, s, e, a, st, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 5));
    const int32_t want[] = {4, 3, 2, 1, 0, 14, 13, 12, 11, 10, 24, 23, 22, 21, 20};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_slice_steps_and_clamp(void **state)
{
    (void)state;
    kt k;
    /* axis -1: 1..INT64_MAX step 2 -> cols 1,3; axis 0: 100 clamps to 2, down to -100
     * (clamped to -1, i.e. through row 0) step -2 -> rows 2,0. */
    const int64_t s[] = {1, 100}, e[] = {INT64_MAX, -100}, a[] = {-1, 0}, st[] = {2, -2};
    assert_int_equal(slice_run(&k, s, e, a, st, 2), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 2));
    const int32_t want[] = {21, 23, 1, 3};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_slice_empty_result(void **state)
{
    (void)state;
    kt k;
    const int64_t s[] = {3}, e[] = {1}, a[] = {1};
    assert_int_equal(slice_run(&k, s, e, a, NULL, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 0));
    kt_free(&k, NULL);
    /* negative step with start before end is empty too */
    const int64_t s2[] = {0}, e2[] = {4}, st2[] = {-1};
    assert_int_equal(slice_run(&k, s2, e2, a, st2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 0));
    kt_free(&k, NULL);
}

static void test_slice_huge_negative_step(void **state)
{
    (void)state;
    kt k;
    const int64_t s[] = {4}, e[] = {INT64_MIN}, a[] = {1}, st[] = {INT64_MIN};
    assert_int_equal(slice_run(&k, s, e, a, st, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 1));
    const int32_t want[] = {4, 14, 24};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_slice_bad(void **state)
{
    (void)state;
    kt k;
    const int64_t s[] = {0}, e[] = {2}, a[] = {1}, zero[] = {0}, a2[] = {0, 0}, s2[] = {0, 0},
                  e2[] = {1, 1}, a5[] = {5};
    assert_int_equal(slice_run(&k, s, e, a, zero, 1), EVO_ERR_SHAPE);    /* step 0 */
    assert_int_equal(slice_run(&k, s2, e2, a2, NULL, 2), EVO_ERR_SHAPE); /* repeated axis */
    assert_int_equal(slice_run(&k, s, e, a5, NULL, 1), EVO_ERR_SHAPE);   /* axis 5 of rank 2 */
    /* starts not constant */
    evo_tensor x = kt_tensor(EVO_DT_INT32, kt_shape(2, 3, 5), slice_x);
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), NULL);
    evo_tensor te = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), e);
    evo_tensor *in[] = {&x, &ts, &te};
    kt_begin(&k, "Slice", 13);
    assert_int_equal(kt_infer(&k, in, 3, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "starts"));
    /* starts and ends of different lengths */
    evo_tensor te2 = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), e2);
    evo_tensor ts2 = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), s);
    evo_tensor *in2[] = {&x, &ts2, &te2};
    assert_int_equal(kt_infer(&k, in2, 3, 1), EVO_ERR_SHAPE);
    /* float starts */
    evo_tensor tf = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 1), s);
    evo_tensor *in3[] = {&x, &tf, &te};
    assert_int_equal(kt_infer(&k, in3, 3, 1), EVO_ERR_TYPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice_basic),
        cmocka_unit_test(test_slice_negative_step_full_reverse),
        cmocka_unit_test(test_slice_steps_and_clamp),
        cmocka_unit_test(test_slice_empty_result),
        cmocka_unit_test(test_slice_huge_negative_step),
        cmocka_unit_test(test_slice_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
