/* ReduceSum/Mean/Max/Min/Prod/L2: axes as input (and attribute), keepdims,
 * negative axes, noop_with_empty_axes, empty sets, integer types, and bad
 * input through infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kpool_harness.h"

static const float kr_x23[6] = {1, 2, 3, 4, 5, 6};

/* 2x3x4 holding 0..23 */
static float kr_x234[24];

static int kr_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 24; i++)
        kr_x234[i] = (float)i;
    return 0;
}

/* A reduction of kr_x23 over the given axes (n_axes < 0: no axes input). */
static void kr_case23(kh_case *k, const char *op, const int64_t *axes, int32_t n_axes, int keepdims)
{
    kh_init(k, op, 18, 1);
    if (keepdims >= 0)
        kh_int(k, "keepdims", keepdims);
    kh_in(k, 0, EVO_DT_FLOAT32, kr_x23, KH_DIMS(2, 3));
    if (n_axes >= 0)
        kh_in(k, 1, EVO_DT_INT64, axes, (const int32_t[]){n_axes}, 1);
}

static void kr_sum_axes_keepdims(void **state)
{
    (void)state;
    kh_case k;
    static const int64_t a1[1] = {1}, a0[1] = {0}, am1[1] = {-1};
    kr_case23(&k, "ReduceSum", a1, 1, -1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 1));
    KH_F32(&k.out[0], 0, 6, 15);
    assert_int_equal(kh_flops(&k), 6);

    kr_case23(&k, "ReduceSum", a1, 1, 0);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2));
    KH_F32(&k.out[0], 0, 6, 15);

    kr_case23(&k, "ReduceSum", am1, 1, 0);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 6, 15);

    kr_case23(&k, "ReduceSum", a0, 1, 1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 3));
    KH_F32(&k.out[0], 0, 5, 7, 9);

    /* no axes input: everything */
    kr_case23(&k, "ReduceSum", NULL, -1, 1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1));
    KH_F32(&k.out[0], 0, 21);
    kr_case23(&k, "ReduceSum", NULL, -1, 0);
    kh_run(&k);
    assert_int_equal(k.out[0].shape.rank, 0);
    KH_F32(&k.out[0], 0, 21);
}

static void kr_noop_with_empty_axes(void **state)
{
    (void)state;
    kh_case k;
    /* empty axes input with noop: identity */
    kr_case23(&k, "ReduceSum", NULL, 0, 1);
    kh_int(&k, "noop_with_empty_axes", 1);
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 3));
    KH_F32(&k.out[0], 0, 1, 2, 3, 4, 5, 6);
    /* empty axes input without noop: reduce all */
    kr_case23(&k, "ReduceMax", NULL, 0, 0);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 6);
    /* absent axes with noop: identity too */
    kr_case23(&k, "ReduceMean", NULL, -1, 1);
    kh_int(&k, "noop_with_empty_axes", 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 1, 2, 3, 4, 5, 6);
}

static void kr_kinds(void **state)
{
    (void)state;
    kh_case k;
    static const int64_t a1[1] = {1}, a0[1] = {0};
    kr_case23(&k, "ReduceMean", a0, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 2.5f, 3.5f, 4.5f);
    kr_case23(&k, "ReduceMax", NULL, -1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 6);
    kr_case23(&k, "ReduceMin", a1, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 1, 4);
    kr_case23(&k, "ReduceMin", a0, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 1, 2, 3);
    kr_case23(&k, "ReduceProd", a1, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 6, 120);
    kr_case23(&k, "ReduceProd", a0, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 0, 4, 10, 18);
    kr_case23(&k, "ReduceL2", a1, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, sqrtf(14), sqrtf(77));
    kr_case23(&k, "ReduceL2", a0, 1, 1);
    kh_run(&k);
    KH_F32(&k.out[0], 1e-5f, sqrtf(17), sqrtf(29), sqrtf(45));
}

static void kr_multi_axes(void **state)
{
    (void)state;
    kh_case k;
    /* axes 0 and 2 of 2x3x4 (i*12 + j*4 + l): sum over i, l = 60 + 32 j */
    static const int64_t a02[2] = {2, 0};
    kh_init(&k, "ReduceSum", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x234, KH_DIMS(2, 3, 4));
    kh_in(&k, 1, EVO_DT_INT64, a02, KH_DIMS(2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 3, 1));
    KH_F32(&k.out[0], 0, 60, 92, 124);
    /* the middle axis (the kept last run is combined element-wise):
     * 36 i + 12 + 3 l */
    static const int64_t a1[1] = {-2};
    kh_init(&k, "ReduceSum", 13, 1);
    kh_int(&k, "keepdims", 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x234, KH_DIMS(2, 3, 4));
    kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(2, 4));
    KH_F32(&k.out[0], 0, 12, 15, 18, 21, 48, 51, 54, 57);
    /* size-1 dims between reduced ones: [2,1,3,4] over axes 0, 2 */
    kh_init(&k, "ReduceMax", 18, 1);
    static const int64_t a02b[2] = {0, 2};
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x234, KH_DIMS(2, 1, 3, 4));
    kh_in(&k, 1, EVO_DT_INT64, a02b, KH_DIMS(2));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 1, 1, 4));
    KH_F32(&k.out[0], 0, 20, 21, 22, 23);
}

static void kr_attr_axes(void **state)
{
    (void)state;
    kh_case k;
    /* an old-opset node whose axes attribute was not moved to an input */
    kh_init(&k, "ReduceMean", 13, 1);
    KH_INTS(&k, "axes", 1);
    kh_int(&k, "keepdims", 0);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x23, KH_DIMS(2, 3));
    kh_run(&k);
    KH_F32(&k.out[0], 1e-6f, 2, 5);
    /* both attribute and input: refused */
    static const int64_t a1[1] = {1};
    kh_init(&k, "ReduceMean", 13, 1);
    KH_INTS(&k, "axes", 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x23, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_GRAPH);
}

static void kr_integers(void **state)
{
    (void)state;
    kh_case k;
    static const int32_t xi[6] = {1, -2, 3, 4, 5, -6};
    static const int64_t a1[1] = {1};
    kh_init(&k, "ReduceSum", 13, 1);
    kh_in(&k, 0, EVO_DT_INT32, xi, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
    kh_run(&k);
    assert_int_equal(k.out[0].dtype, EVO_DT_INT32);
    const int32_t *y = k.out[0].data;
    assert_int_equal(y[0], 2);
    assert_int_equal(y[1], 3);

    kh_init(&k, "ReduceProd", 18, 1);
    kh_in(&k, 0, EVO_DT_INT32, xi, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
    kh_run(&k);
    y = k.out[0].data;
    assert_int_equal(y[0], -6);
    assert_int_equal(y[1], -120);

    /* integer mean truncates like ONNX Runtime: 2/3 -> 0, 3/3 -> 1 */
    kh_init(&k, "ReduceMean", 18, 1);
    kh_in(&k, 0, EVO_DT_INT32, xi, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
    kh_run(&k);
    y = k.out[0].data;
    assert_int_equal(y[0], 0);
    assert_int_equal(y[1], 1);

    static const int64_t xl[4] = {INT64_MIN, 5, -1, INT64_MAX};
    static const int64_t a0[1] = {0};
    kh_init(&k, "ReduceMax", 18, 1);
    kh_in(&k, 0, EVO_DT_INT64, xl, KH_DIMS(2, 2));
    kh_in(&k, 1, EVO_DT_INT64, a0, KH_DIMS(1));
    kh_run(&k);
    KH_I64(&k.out[0], -1, INT64_MAX);
    kh_init(&k, "ReduceMin", 18, 1);
    kh_in(&k, 0, EVO_DT_INT64, xl, KH_DIMS(2, 2));
    kh_run(&k);
    KH_I64(&k.out[0], INT64_MIN);

    static const uint8_t xu[4] = {7, 200, 3, 255};
    kh_init(&k, "ReduceMin", 18, 1);
    kh_int(&k, "keepdims", 0);
    kh_in(&k, 0, EVO_DT_UINT8, xu, KH_DIMS(4));
    kh_run(&k);
    assert_int_equal(((const uint8_t *)k.out[0].data)[0], 3);

    static const int32_t xs[2] = {3, 4};
    kh_init(&k, "ReduceL2", 18, 1);
    kh_in(&k, 0, EVO_DT_INT32, xs, KH_DIMS(2));
    kh_run(&k);
    assert_int_equal(((const int32_t *)k.out[0].data)[0], 5);
}

static void kr_empty_set(void **state)
{
    (void)state;
    kh_case k;
    static const float none[1] = {0};
    static const int64_t a1[1] = {1};
    const char *ops[5] = {"ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceL2"};
    const float want[5] = {0, 1, -INFINITY, INFINITY, 0};
    for (int i = 0; i < 5; i++) {
        kh_init(&k, ops[i], 18, 1);
        kh_in(&k, 0, EVO_DT_FLOAT32, none, KH_DIMS(2, 0));
        kh_in(&k, 1, EVO_DT_INT64, a1, KH_DIMS(1));
        kh_run(&k);
        kh_expect_shape(&k.out[0], KH_DIMS(2, 1));
        const float w2[2] = {want[i], want[i]};
        kh_expect_f32(&k.out[0], w2, 2, 0);
    }
    /* a zero dim that is kept: empty output */
    static const int64_t a0[1] = {0};
    kh_init(&k, "ReduceSum", 18, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, none, KH_DIMS(2, 0));
    kh_in(&k, 1, EVO_DT_INT64, a0, KH_DIMS(1));
    kh_run(&k);
    kh_expect_shape(&k.out[0], KH_DIMS(1, 0));
}

static void kr_bad_input(void **state)
{
    (void)state;
    kh_case k;
    static const int64_t a2[1] = {2}, dup[2] = {1, -1}, am3[1] = {-3};
    kr_case23(&k, "ReduceSum", a2, 1, 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "axis 2"));
    kr_case23(&k, "ReduceSum", am3, 1, 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    kr_case23(&k, "ReduceMean", dup, 2, 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "twice"));
    /* axes not constant */
    kr_case23(&k, "ReduceMax", NULL, 1, 1);
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "constant"));
    /* axes int32; axes of rank 2 */
    static const int32_t a32[1] = {1};
    kh_init(&k, "ReduceSum", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x23, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT32, a32, KH_DIMS(1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_TYPE);
    kh_init(&k, "ReduceSum", 13, 1);
    kh_in(&k, 0, EVO_DT_FLOAT32, kr_x23, KH_DIMS(2, 3));
    kh_in(&k, 1, EVO_DT_INT64, a2, KH_DIMS(1, 1));
    assert_int_equal(kh_prepare(&k), EVO_ERR_SHAPE);
    /* bool data; int8 into ReduceSum (only Max/Min take 8-bit) */
    kh_init(&k, "ReduceMax", 18, 1);
    kh_in(&k, 0, EVO_DT_BOOL, kr_x23, KH_DIMS(2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    kh_init(&k, "ReduceSum", 13, 1);
    kh_in(&k, 0, EVO_DT_INT8, kr_x23, KH_DIMS(2));
    assert_int_equal(kh_prepare(&k), EVO_ERR_UNSUPPORTED);
    /* keepdims 2 */
    kh_init(&k, "ReduceSum", 13, 1);
    kh_int(&k, "keepdims", 2);
    assert_int_equal(kh_prepare(&k), EVO_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kr_sum_axes_keepdims),
        cmocka_unit_test(kr_noop_with_empty_axes),
        cmocka_unit_test(kr_kinds),
        cmocka_unit_test(kr_multi_axes),
        cmocka_unit_test(kr_attr_axes),
        cmocka_unit_test(kr_integers),
        cmocka_unit_test(kr_empty_set),
        cmocka_unit_test(kr_bad_input),
    };
    return cmocka_run_group_tests(tests, kr_setup, NULL);
}
