/* Transpose (fast 2-D/NCHW paths and the generic walk) and Gather. */
#include "kshape_test_util.h"

static void test_transpose_2d_default_perm(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3, 4, 5, 6}; /* [2,3] */
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 3), x);
    evo_tensor *in[] = {&tx};
    kt k;
    kt_begin(&k, "Transpose", 13);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 2));
    const float want[] = {1, 4, 2, 5, 3, 6};
    kt_expect_f32(k.out[0], want, 6, 0);
    kt_free(&k, NULL);
}

static void test_transpose_nchw_to_nhwc(void **state)
{
    (void)state;
    /* [1,3,2,2]: c*10 + h*2 + w */
    const int16_t x[] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23};
    evo_tensor tx = kt_tensor(EVO_DT_INT16, kt_shape(4, 1, 3, 2, 2), x);
    evo_tensor *in[] = {&tx};
    kt k;
    const int64_t perm[] = {0, 2, 3, 1};
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", perm, 4);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 2, 2, 3));
    const int16_t want[] = {0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23};
    kt_expect_bytes(k.out[0], want, sizeof want);
    /* and back with NHWC -> NCHW */
    evo_tensor back = *k.out[0];
    evo_tensor *in2[] = {&back};
    kt k2;
    const int64_t perm2[] = {0, 3, 1, 2};
    kt_begin(&k2, "Transpose", 13);
    kt_ints(&k2, "perm", perm2, 4);
    assert_int_equal(kt_run(&k2, in2, 1, 1), EVO_OK);
    kt_expect_bytes(k2.out[0], x, sizeof x);
    kt_free(&k2, NULL);
    kt_free(&k, NULL);
}

/* A blocked batch transpose larger than one block against the definition. */
static void test_transpose_blocked_batch(void **state)
{
    (void)state;
    enum { B = 2, R = 37, C = 45 };
    static double x[B * R * C];
    for (int i = 0; i < B * R * C; i++)
        x[i] = i * 0.5;
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT64, kt_shape(3, B, R, C), x);
    evo_tensor *in[] = {&tx};
    kt k;
    const int64_t perm[] = {0, 2, 1};
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", perm, 3);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const double *y = k.out[0]->data;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                assert_true(y[(b * C + c) * R + r] == x[(b * R + r) * C + c]);
    kt_free(&k, NULL);
}

static void test_transpose_generic_3d(void **state)
{
    (void)state;
    /* [2,3,4] uint8 x = a*12 + b*4 + c, perm [2,0,1] -> [4,2,3] */
    uint8_t x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (uint8_t)i;
    evo_tensor tx = kt_tensor(EVO_DT_UINT8, kt_shape(3, 2, 3, 4), x);
    evo_tensor *in[] = {&tx};
    kt k;
    const int64_t perm[] = {2, 0, 1};
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", perm, 3);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(3, 4, 2, 3));
    const uint8_t want[] = {0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                            2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
    /* perm [1,0,2]: innermost axis stays, rows move as runs */
    const int64_t perm2[] = {1, 0, 2};
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", perm2, 3);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    const uint8_t want2[] = {0,  1,  2,  3,  12, 13, 14, 15, 4,  5,  6,  7,
                             16, 17, 18, 19, 8,  9,  10, 11, 20, 21, 22, 23};
    kt_expect_bytes(k.out[0], want2, sizeof want2);
    kt_free(&k, NULL);
}

static void test_transpose_bad(void **state)
{
    (void)state;
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(3, 2, 3, 4), NULL);
    evo_tensor *in[] = {&tx};
    kt k;
    const int64_t short_perm[] = {1, 0}, dup[] = {0, 0, 1}, oob[] = {0, 1, 3};
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", short_perm, 2);
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_ERR_SHAPE);
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", dup, 3);
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_ERR_SHAPE);
    kt_begin(&k, "Transpose", 13);
    kt_ints(&k, "perm", oob, 3);
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_ERR_PARSE);
}

static const float gx[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* [3,3] */

static void test_gather_axis0_negative(void **state)
{
    (void)state;
    const int64_t ind[] = {-1, 0, 1, -3};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 3), gx);
    evo_tensor ti = kt_tensor(EVO_DT_INT64, kt_shape(2, 2, 2), ind);
    evo_tensor *in[] = {&tx, &ti};
    kt k;
    kt_begin(&k, "Gather", 13);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(3, 2, 2, 3));
    const float want[] = {7, 8, 9, 1, 2, 3, 4, 5, 6, 1, 2, 3};
    kt_expect_f32(k.out[0], want, 12, 0);
    kt_free(&k, NULL);
}

static void test_gather_axis1_int32_scalar(void **state)
{
    (void)state;
    const int32_t ind[] = {2, 0};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 3), gx);
    evo_tensor ti = kt_tensor(EVO_DT_INT32, kt_shape(1, 2), ind);
    evo_tensor *in[] = {&tx, &ti};
    kt k;
    kt_begin(&k, "Gather", 13);
    kt_int(&k, "axis", -1);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 2));
    const float want[] = {3, 1, 6, 4, 9, 7};
    kt_expect_f32(k.out[0], want, 6, 0);
    kt_free(&k, NULL);
    /* scalar index drops the axis */
    const int64_t one = 1;
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(0), &one);
    evo_tensor *in2[] = {&tx, &ts};
    kt_begin(&k, "Gather", 13);
    kt_int(&k, "axis", 1);
    assert_int_equal(kt_run(&k, in2, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(1, 3));
    const float want2[] = {2, 5, 8};
    kt_expect_f32(k.out[0], want2, 3, 0);
    kt_free(&k, NULL);
}

static void test_gather_out_of_range(void **state)
{
    (void)state;
    int64_t ind[] = {0, 3};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 3), gx);
    evo_tensor ti = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), NULL); /* runtime indices */
    evo_tensor *in[] = {&tx, &ti};
    kt k;
    kt_begin(&k, "Gather", 13);
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_OK);
    ti.data = ind;
    assert_int_equal(kt_eval(&k), EVO_ERR_INVALID_ARG);
    ind[1] = -4;
    assert_int_equal(kt_eval(&k), EVO_ERR_INVALID_ARG);
    ind[1] = -3;
    assert_int_equal(kt_eval(&k), EVO_OK);
    kt_free(&k, NULL);
    /* constant bad indices are caught by infer already */
    ind[1] = 3;
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_ERR_INVALID_ARG);
    /* float indices, bad axis */
    evo_tensor tf = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 2), gx);
    evo_tensor *in2[] = {&tx, &tf};
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_TYPE);
    kt_begin(&k, "Gather", 13);
    kt_int(&k, "axis", 2);
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_ERR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transpose_2d_default_perm),
        cmocka_unit_test(test_transpose_nchw_to_nhwc),
        cmocka_unit_test(test_transpose_blocked_batch),
        cmocka_unit_test(test_transpose_generic_3d),
        cmocka_unit_test(test_transpose_bad),
        cmocka_unit_test(test_gather_axis0_negative),
        cmocka_unit_test(test_gather_axis1_int32_scalar),
        cmocka_unit_test(test_gather_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
