/* DepthToSpace (DCR, CRD), SpaceToDepth, Shape, Size, Constant,
 * ConstantOfShape, Range. */
#include "kshape_test_util.h"

static float d2s_x[48]; /* [1,8,2,3] = 0..47 */

static int d2s_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 48; i++)
        d2s_x[i] = (float)i;
    return 0;
}

static void test_depth_to_space_dcr_crd(void **state)
{
    (void)state;
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 8, 2, 3), d2s_x);
    evo_tensor *in[] = {&tx};
    kt k;
    kt_begin(&k, "DepthToSpace", 13);
    kt_int(&k, "blocksize", 2);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 2, 4, 6));
    /* the ONNX documentation example */
    const float dcr[] = {0,  12, 1,  13, 2,  14, 24, 36, 25, 37, 26, 38, 3,  15, 4,  16,
                         5,  17, 27, 39, 28, 40, 29, 41, 6,  18, 7,  19, 8,  20, 30, 42,
                         31, 43, 32, 44, 9,  21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47};
    kt_expect_f32(k.out[0], dcr, 48, 0);
    /* SpaceToDepth undoes DCR */
    evo_tensor back = *k.out[0];
    evo_tensor *in2[] = {&back};
    kt k2;
    kt_begin(&k2, "SpaceToDepth", 13);
    kt_int(&k2, "blocksize", 2);
    assert_int_equal(kt_run(&k2, in2, 1, 1), EVO_OK);
    kt_expect_shape(k2.out[0], kt_shape(4, 1, 8, 2, 3));
    kt_expect_f32(k2.out[0], d2s_x, 48, 0);
    kt_free(&k2, NULL);
    kt_free(&k, NULL);

    kt_begin(&k, "DepthToSpace", 13);
    kt_int(&k, "blocksize", 2);
    kt_str(&k, "mode", "CRD");
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const float crd[] = {0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
                         5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
                         37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47};
    kt_expect_f32(k.out[0], crd, 48, 0);
    kt_free(&k, NULL);
}

static void test_space_to_depth_hand(void **state)
{
    (void)state;
    /* [1,1,2,4] -> [1,4,1,2]: channel (i*2+j) holds x[2h+i][2w+j] */
    const uint8_t x[] = {1, 2, 3, 4, 5, 6, 7, 8};
    evo_tensor tx = kt_tensor(EVO_DT_UINT8, kt_shape(4, 1, 1, 2, 4), x);
    evo_tensor *in[] = {&tx};
    kt k;
    kt_begin(&k, "SpaceToDepth", 13);
    kt_int(&k, "blocksize", 2);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 4, 1, 2));
    const uint8_t want[] = {1, 3, 2, 4, 5, 7, 6, 8};
    kt_expect_bytes(k.out[0], want, 8);
    kt_free(&k, NULL);
}

static void test_depth_space_bad(void **state)
{
    (void)state;
    evo_tensor t3 = kt_tensor(EVO_DT_FLOAT32, kt_shape(3, 8, 2, 3), NULL);
    evo_tensor t4 = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 6, 2, 3), NULL);
    kt k;
    kt_begin(&k, "DepthToSpace", 13);
    kt_int(&k, "blocksize", 2);
    evo_tensor *in1[] = {&t3};
    assert_int_equal(kt_infer(&k, in1, 1, 1), EVO_ERR_SHAPE);
    evo_tensor *in2[] = {&t4}; /* 6 channels, not divisible by 4 */
    assert_int_equal(kt_infer(&k, in2, 1, 1), EVO_ERR_SHAPE);
    kt_begin(&k, "DepthToSpace", 13); /* blocksize is required */
    assert_int_equal(kt_infer(&k, in2, 1, 1), EVO_ERR_PARSE);
    kt_begin(&k, "SpaceToDepth", 13);
    kt_int(&k, "blocksize", 2); /* W = 3 not divisible */
    assert_int_equal(kt_infer(&k, in2, 1, 1), EVO_ERR_SHAPE);
    kt_begin(&k, "SpaceToDepth", 13);
    kt_int(&k, "blocksize", 0);
    assert_int_equal(kt_infer(&k, in2, 1, 1), EVO_ERR_PARSE);
}

static void test_shape_and_size(void **state)
{
    (void)state;
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 2, 3, 4, 5), NULL);
    evo_tensor *in[] = {&tx};
    kt k;
    kt_begin(&k, "Shape", 13);
    assert_true(k.op->flags & EVO_OP_SHAPE_ONLY);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const int64_t all[] = {2, 3, 4, 5};
    kt_expect_i64(k.out[0], all, 4);
    kt_free(&k, NULL);
    /* opset 15 start/end, negative and clamped */
    kt_begin(&k, "Shape", 15);
    kt_int(&k, "start", -3);
    kt_int(&k, "end", -1);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const int64_t mid[] = {3, 4};
    kt_expect_i64(k.out[0], mid, 2);
    kt_free(&k, NULL);
    kt_begin(&k, "Shape", 15);
    kt_int(&k, "start", 10);
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(1, 0));
    kt_begin(&k, "Size", 13);
    assert_true(k.op->flags & EVO_OP_SHAPE_ONLY);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(0));
    const int64_t n = 120;
    kt_expect_i64(k.out[0], &n, 1);
    kt_free(&k, NULL);
}

static void test_constant(void **state)
{
    (void)state;
    kt k;
    const int64_t v[] = {3, -1, 7};
    kt_begin(&k, "Constant", 13);
    kt_ints(&k, "value_ints", v, 3);
    assert_int_equal(kt_run(&k, NULL, 0, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(1, 3));
    kt_expect_i64(k.out[0], v, 3);
    kt_free(&k, NULL);
    const float f = 2.5f;
    kt_begin(&k, "Constant", 13);
    kt_float(&k, "value_float", f);
    assert_int_equal(kt_run(&k, NULL, 0, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(0));
    kt_expect_f32(k.out[0], &f, 1, 0);
    kt_free(&k, NULL);
    const int32_t tv[] = {1, 2, 3, 4, 5, 6};
    kt_begin(&k, "Constant", 13);
    kt_tensor_attr(&k, "value", kt_tensor(EVO_DT_INT32, kt_shape(2, 2, 3), tv));
    assert_int_equal(kt_run(&k, NULL, 0, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 3));
    kt_expect_bytes(k.out[0], tv, sizeof tv);
    kt_free(&k, NULL);
    /* no value, two values, too big for params */
    kt_begin(&k, "Constant", 13);
    assert_int_equal(kt_infer(&k, NULL, 0, 1), EVO_ERR_PARSE);
    kt_begin(&k, "Constant", 13);
    kt_float(&k, "value_float", f);
    kt_int(&k, "value_int", 1);
    assert_int_equal(kt_infer(&k, NULL, 0, 1), EVO_ERR_PARSE);
    static float big[1000];
    kt_begin(&k, "Constant", 13);
    kt_tensor_attr(&k, "value", kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 1000), big));
    assert_int_equal(kt_infer(&k, NULL, 0, 1), EVO_ERR_UNSUPPORTED);
}

static void test_constant_of_shape(void **state)
{
    (void)state;
    const int64_t shape[] = {2, 3};
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), shape);
    evo_tensor *in[] = {&ts};
    kt k;
    kt_begin(&k, "ConstantOfShape", 13);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const float zeros[6] = {0};
    kt_expect_shape(k.out[0], kt_shape(2, 2, 3));
    kt_expect_f32(k.out[0], zeros, 6, 0);
    kt_free(&k, NULL);
    const int64_t seven = 7;
    kt_begin(&k, "ConstantOfShape", 13);
    kt_tensor_attr(&k, "value", kt_tensor(EVO_DT_INT64, kt_shape(1, 1), &seven));
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const int64_t sevens[] = {7, 7, 7, 7, 7, 7};
    kt_expect_i64(k.out[0], sevens, 6);
    kt_free(&k, NULL);
    /* empty shape -> scalar */
    evo_tensor te = kt_tensor(EVO_DT_INT64, kt_shape(1, 0), NULL);
    evo_tensor *in2[] = {&te};
    assert_int_equal(kt_infer(&k, in2, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(0));
    /* bad: negative dim, not constant, two-element value */
    const int64_t neg[] = {2, -3};
    evo_tensor tn = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), neg);
    evo_tensor *in3[] = {&tn};
    assert_int_equal(kt_infer(&k, in3, 1, 1), EVO_ERR_SHAPE);
    evo_tensor tc = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), NULL);
    evo_tensor *in4[] = {&tc};
    assert_int_equal(kt_infer(&k, in4, 1, 1), EVO_ERR_SHAPE);
    const int64_t two[] = {1, 2};
    kt_begin(&k, "ConstantOfShape", 13);
    kt_tensor_attr(&k, "value", kt_tensor(EVO_DT_INT64, kt_shape(1, 2), two));
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_ERR_SHAPE);
}

static evo_status range_run(kt *k, evo_dtype dt, const void *s, const void *l, const void *d)
{
    static evo_tensor ts, tl, td;
    ts = kt_tensor(dt, kt_shape(0), s);
    tl = kt_tensor(dt, kt_shape(0), l);
    td = kt_tensor(dt, kt_shape(0), d);
    evo_tensor *in[] = {&ts, &tl, &td};
    kt_begin(k, "Range", 11);
    return kt_run(k, in, 3, 1);
}

static void test_range(void **state)
{
    (void)state;
    kt k;
    const int64_t s = 10, l = 4, d = -3;
    assert_int_equal(range_run(&k, EVO_DT_INT64, &s, &l, &d), EVO_OK);
    const int64_t want[] = {10, 7};
    kt_expect_i64(k.out[0], want, 2);
    kt_free(&k, NULL);
    const int32_t si = 1, li = 5, di = 2;
    assert_int_equal(range_run(&k, EVO_DT_INT32, &si, &li, &di), EVO_OK);
    const int32_t wanti[] = {1, 3};
    kt_expect_bytes(k.out[0], wanti, sizeof wanti);
    kt_free(&k, NULL);
    const float sf = 0.0f, lf = 1.0f, df = 0.25f;
    assert_int_equal(range_run(&k, EVO_DT_FLOAT32, &sf, &lf, &df), EVO_OK);
    const float wantf[] = {0, 0.25f, 0.5f, 0.75f};
    kt_expect_f32(k.out[0], wantf, 4, 0);
    kt_free(&k, NULL);
    /* empty when limit is behind start */
    assert_int_equal(range_run(&k, EVO_DT_FLOAT32, &lf, &sf, &df), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(1, 0));
    kt_free(&k, NULL);
    /* extremes: no overflow in the count */
    const int64_t lo = INT64_MIN, hi = INT64_MAX, step = INT64_MAX;
    assert_int_equal(range_run(&k, EVO_DT_INT64, &lo, &hi, &step), EVO_OK);
    const int64_t wantx[] = {INT64_MIN, -1, INT64_MAX - 1};
    kt_expect_i64(k.out[0], wantx, 3);
    kt_free(&k, NULL);
}

static void test_range_bad(void **state)
{
    (void)state;
    kt k;
    const int64_t s = 0, l = 10, zero = 0, one = 1, big = (int64_t)1 << 40;
    assert_int_equal(range_run(&k, EVO_DT_INT64, &s, &l, &zero), EVO_ERR_INVALID_ARG);
    assert_int_equal(range_run(&k, EVO_DT_INT64, &s, &big, &one), EVO_ERR_LIMIT);
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(0), &s);
    evo_tensor tl = kt_tensor(EVO_DT_INT64, kt_shape(0), NULL);
    evo_tensor td = kt_tensor(EVO_DT_INT64, kt_shape(0), &one);
    evo_tensor *in[] = {&ts, &tl, &td};
    kt_begin(&k, "Range", 11);
    assert_int_equal(kt_infer(&k, in, 3, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "Range output size depends on runtime values"));
    const float f = 1.0f;
    evo_tensor tf = kt_tensor(EVO_DT_FLOAT32, kt_shape(0), &f);
    evo_tensor *mixed[] = {&ts, &tf, &td};
    assert_int_equal(kt_infer(&k, mixed, 3, 1), EVO_ERR_TYPE);
    const float inf = 1.0f / 0.0f;
    evo_tensor tinf = kt_tensor(EVO_DT_FLOAT32, kt_shape(0), &inf);
    evo_tensor *infs[] = {&tf, &tinf, &tf};
    assert_int_equal(kt_infer(&k, infs, 3, 1), EVO_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_to_space_dcr_crd),
        cmocka_unit_test(test_space_to_depth_hand),
        cmocka_unit_test(test_depth_space_bad),
        cmocka_unit_test(test_shape_and_size),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_constant_of_shape),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_range_bad),
    };
    return cmocka_run_group_tests(tests, d2s_setup, NULL);
}
