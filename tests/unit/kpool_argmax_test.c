/* ArgMax and ArgMin: axes, keepdims, select_last_index, element types, and
 * bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kpool_harness.h"

/* [[1, 3, 3], [2, 0, 2]] */
static const float ka_x[6] = {1, 3, 3, 2, 0, 2};

static void ka_case(kh_case *k, const char *op, int64_t axis, int keepdims, int last)
{
    kh_init(k, op, 13, 1);
    kh_int(k, "axis", axis);
    if (keepdims >= 0)
        kh_int(k, "keepdims", keepdims);
    if (last >= 0)
        kh_int(k, "select_last_index", last);
    kh_in(k, 0, EVO_DT_FLOAT32, ka_x, KH_DIMS(2, 3));
}

static void ka_last_axis(void **state)
{
    (void)state;
    kh_case k;
    ka_case(&k, "ArgMax", 1, -1, -1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 1));
    KH_I64(&k.out[0], 1, 0);
    assert_int_equal(kh_flops(&k), 6);
    ka_case(&k, "ArgMax", -1, 0, 1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2));
    KH_I64(&k.out[0], 2, 2);
    ka_case(&k, "ArgMin", 1, 1, 0);
    kh_run(&k);
    KH_I64(&k.out[0], 0, 1);
    ka_case(&k, "ArgMin", 1, 1, 1);
    kh_run(&k);
    KH_I64(&k.out[0], 0, 1);
}

static void ka_outer_axis(void **state)
{
    (void)state;
    kh_case k;
    /* axis 0 (the strided path): columns [1,2], [3,0], [3,2] */
    ka_case(&k, "ArgMax", 0, 1, 0);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 3));
    KH_I64(&k.out[0], 1, 0, 0);
    ka_case(&k, "ArgMin", -2, 0, 0);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(3));
    KH_I64(&k.out[0], 0, 1, 1);
    /* ties along axis 0 */
    static const float tie[4] = {5, 1, 5, 1};
    kh_init(&k, "ArgMax", 12, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, tie, KH_DIMS(2, 2));
    kh_run(&k);
    KH_I64(&k.out[0], 0, 0);
    kh_init(&k, "ArgMax", 12, 1);
    kh_int(&k, "select_last_index", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, tie, KH_DIMS(2, 2));
    kh_run(&k);
    KH_I64(&k.out[0], 1, 1);
    kh_init(&k, "ArgMin", 12, 1);
    kh_int(&k, "select_last_index", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, tie, KH_DIMS(2, 2));
    kh_run(&k);
    KH_I64(&k.out[0], 1, 1);
}

static void ka_types(void **state)
{
    (void)state;
    kh_case k;
    static const int8_t x8[4] = {-5, 7, -128, 7};
    kh_init(&k, "ArgMax", 13, 1);
    kh_in(&k, 0, EVO_DT_INT8, x8, KH_DIMS(4));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1));
    KH_I64(&k.out[0], 1);
    kh_init(&k, "ArgMin", 13, 1);
    kh_in(&k, 0, EVO_DT_INT8, x8, KH_DIMS(4));
    kh_run(&k);
    KH_I64(&k.out[0], 2);
    static const uint8_t xu[3] = {200, 255, 3};
    kh_init(&k, "ArgMax", 13, 1);
    kh_in(&k, 0, EVO_DT_UINT8, xu, KH_DIMS(3));
    kh_run(&k);
    KH_I64(&k.out[0], 1);
    static const int64_t xl[4] = {INT64_MAX, 0, INT64_MIN, INT64_MIN};
    kh_init(&k, "ArgMin", 13, 1);
    kh_int(&k, "select_last_index", 1);
    kh_in(&k, 0, EVO_DT_INT64, xl, KH_DIMS(4));
    kh_run(&k);
    KH_I64(&k.out[0], 3);
    static const int32_t xi[6] = {1, 9, 8, 2, 3, 7}; /* [3, 2], axis 1 per row */
    kh_init(&k, "ArgMax", 13, 1);
    kh_int(&k, "axis", 1);
    kh_int(&k, "keepdims", 0);
    kh_in(&k, 0, EVO_DT_INT32, xi, KH_DIMS(3, 2));
    kh_run(&k);
    KH_I64(&k.out[0], 1, 0, 1);
}

static void ka_bad_input(void **state)
{
    (void)state;
    kh_case k;
    ka_case(&k, "ArgMax", 2, 1, 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "axis"));
    ka_case(&k, "ArgMin", -3, 1, 0);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    ka_case(&k, "ArgMax", 0, 1, 2);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
    kh_init(&k, "ArgMax", 13, 1);
    kh_in(&k, 0, EVO_DT_BOOL, ka_x, KH_DIMS(2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* nothing to pick along an empty axis */
    kh_init(&k, "ArgMax", 13, 1);
    kh_int(&k, "axis", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, ka_x, KH_DIMS(2, 0));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    /* a scalar has no axis */
    kh_init(&k, "ArgMax", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, ka_x, KH_SCALAR);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ka_last_axis),
        cmocka_unit_test(ka_outer_axis),
        cmocka_unit_test(ka_types),
        cmocka_unit_test(ka_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
