/* Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: shapes, in-place
 * aliasing, and bad input. */
#include "kshape_test_util.h"

static const float rs_x[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                             12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

static evo_status reshape_infer(kt *k, evo_shape in_shape, const int64_t *shape, int n,
                                int allowzero)
{
    static evo_tensor x, s;
    x = kt_tensor(EVO_DT_FLOAT32, in_shape, rs_x);
    s = kt_tensor(EVO_DT_INT64, kt_shape(1, n), shape);
    evo_tensor *in[] = {&x, &s};
    kt_begin(k, "Reshape", 14);
    if (allowzero)
        kt_int(k, "allowzero", 1);
    return kt_infer(k, in, 2, 1);
}

static void test_reshape_zero_and_minus_one(void **state)
{
    (void)state;
    kt k;
    const int64_t sh[] = {0, -1, 2};
    assert_int_equal(reshape_infer(&k, kt_shape(3, 2, 3, 4), sh, 3, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(3, 2, 6, 2));
    assert_int_equal(kt_eval(&k), EVO_OK);
    kt_expect_f32(k.out[0], rs_x, 24, 0);
    kt_free(&k, NULL);
    const int64_t sh2[] = {-1};
    assert_int_equal(reshape_infer(&k, kt_shape(3, 2, 3, 4), sh2, 1, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(1, 24));
}

static void test_reshape_allowzero(void **state)
{
    (void)state;
    kt k;
    /* allowzero=1: 0 is a real zero-length dim; [0,3] from [0,3] works... */
    const int64_t sh[] = {3, 0};
    assert_int_equal(reshape_infer(&k, kt_shape(2, 0, 3), sh, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 0));
    /* ...but without allowzero the 0 copies dim 1 of [0,3] -> [3,3], 9 != 0 */
    assert_int_equal(reshape_infer(&k, kt_shape(2, 0, 3), sh, 2, 0), EVO_ERR_SHAPE);
    /* allowzero with both 0 and -1 is invalid */
    const int64_t sh2[] = {0, -1};
    assert_int_equal(reshape_infer(&k, kt_shape(2, 0, 3), sh2, 2, 1), EVO_ERR_SHAPE);
}

static void test_reshape_bad(void **state)
{
    (void)state;
    kt k;
    const int64_t two_neg[] = {-1, -1}, bad_count[] = {5, 5}, neg[] = {-2, 12},
                  copy_missing[] = {24, 1, 0};
    assert_int_equal(reshape_infer(&k, kt_shape(2, 4, 6), two_neg, 2, 0), EVO_ERR_SHAPE);
    assert_int_equal(reshape_infer(&k, kt_shape(2, 4, 6), bad_count, 2, 0), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "[4,6]"));
    assert_int_equal(reshape_infer(&k, kt_shape(2, 4, 6), neg, 2, 0), EVO_ERR_SHAPE);
    assert_int_equal(reshape_infer(&k, kt_shape(2, 4, 6), copy_missing, 3, 0), EVO_ERR_SHAPE);
    /* -1 cannot divide evenly */
    const int64_t nodiv[] = {5, -1};
    assert_int_equal(reshape_infer(&k, kt_shape(2, 4, 6), nodiv, 2, 0), EVO_ERR_SHAPE);
    /* shape not constant */
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 4, 6), rs_x);
    evo_tensor s = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), NULL);
    evo_tensor *in[] = {&x, &s};
    kt_begin(&k, "Reshape", 14);
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "shape"));
}

static void test_reshape_inplace(void **state)
{
    (void)state;
    float buf[24];
    memcpy(buf, rs_x, sizeof buf);
    const int64_t sh[] = {4, 6};
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(3, 2, 3, 4), buf);
    evo_tensor s = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), sh);
    evo_tensor *in[] = {&x, &s};
    kt k;
    kt_begin(&k, "Reshape", 14);
    assert_true(k.op->flags & EVO_OP_INPLACE);
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_OK);
    k.out[0]->data = buf; /* the planner aliased output and input */
    assert_int_equal(kt_eval(&k), EVO_OK);
    kt_expect_f32(k.out[0], rs_x, 24, 0);
}

static void test_flatten(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(3, 2, 3, 4), rs_x);
    evo_tensor *in[] = {&x};
    kt k;
    const struct {
        int64_t axis;
        int a, b;
    } cases[] = {{0, 1, 24}, {1, 2, 12}, {-1, 6, 4}, {3, 24, 1}, {-3, 1, 24}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_begin(&k, "Flatten", 13);
        kt_int(&k, "axis", cases[i].axis);
        assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
        kt_expect_shape(k.out[0], kt_shape(2, cases[i].a, cases[i].b));
        kt_expect_f32(k.out[0], rs_x, 24, 0);
        kt_free(&k, NULL);
    }
    kt_begin(&k, "Flatten", 13);
    kt_int(&k, "axis", 4);
    assert_int_equal(kt_infer(&k, in, 1, 1), EVO_ERR_SHAPE);
}

static void test_squeeze(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 6, 1, 4), rs_x);
    kt k;
    /* no axes: all 1s go */
    evo_tensor *in1[] = {&x};
    kt_begin(&k, "Squeeze", 13);
    assert_int_equal(kt_run(&k, in1, 1, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 6, 4));
    kt_expect_f32(k.out[0], rs_x, 24, 0);
    kt_free(&k, NULL);
    /* axes [-2] only */
    const int64_t ax[] = {-2}, bad[] = {1}, dup[] = {0, -4};
    evo_tensor ta = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), ax);
    evo_tensor *in2[] = {&x, &ta};
    kt_begin(&k, "Squeeze", 13);
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(3, 1, 6, 4));
    /* squeezing a dim of 6 is an error */
    evo_tensor tb = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), bad);
    evo_tensor *in3[] = {&x, &tb};
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "not 1"));
    evo_tensor td = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), dup);
    evo_tensor *in4[] = {&x, &td};
    assert_int_equal(kt_infer(&k, in4, 2, 1), EVO_ERR_SHAPE);
    evo_tensor tn = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), NULL);
    evo_tensor *in5[] = {&x, &tn};
    assert_int_equal(kt_infer(&k, in5, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "axes"));
}

static void test_unsqueeze(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 6, 4), rs_x);
    kt k;
    const int64_t ax[] = {-1, 0}, dup[] = {1, 1}, oob[] = {4};
    evo_tensor ta = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), ax);
    evo_tensor *in[] = {&x, &ta};
    kt_begin(&k, "Unsqueeze", 13);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 6, 4, 1));
    kt_expect_f32(k.out[0], rs_x, 24, 0);
    kt_free(&k, NULL);
    evo_tensor td = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), dup);
    evo_tensor *in2[] = {&x, &td};
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_SHAPE);
    evo_tensor to = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), oob);
    evo_tensor *in3[] = {&x, &to};
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    /* rank overflow: rank 7 + 2 > 8 */
    evo_tensor big = kt_tensor(EVO_DT_FLOAT32, kt_shape(7, 1, 1, 1, 1, 1, 1, 24), rs_x);
    evo_tensor *in4[] = {&big, &ta};
    assert_int_equal(kt_infer(&k, in4, 2, 1), EVO_ERR_LIMIT);
}

static void test_identity_and_dropout(void **state)
{
    (void)state;
    evo_tensor x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 3), rs_x);
    evo_tensor *in[] = {&x};
    kt k;
    kt_begin(&k, "Identity", 16);
    assert_int_equal(kt_run(&k, in, 1, 1), EVO_OK);
    kt_expect_f32(k.out[0], rs_x, 6, 0);
    kt_free(&k, NULL);

    /* opset 13: bool mask of ones */
    const float ratio = 0.5f;
    const unsigned char tm_false = 0, tm_true = 1;
    evo_tensor r = kt_tensor(EVO_DT_FLOAT32, kt_shape(0), &ratio);
    evo_tensor tf = kt_tensor(EVO_DT_BOOL, kt_shape(0), &tm_false);
    evo_tensor *in2[] = {&x, &r, &tf};
    kt_begin(&k, "Dropout", 13);
    assert_int_equal(kt_run(&k, in2, 3, 2), EVO_OK);
    kt_expect_f32(k.out[0], rs_x, 6, 0);
    assert_int_equal(k.out[1]->dtype, EVO_DT_BOOL);
    const unsigned char ones[6] = {1, 1, 1, 1, 1, 1};
    kt_expect_bytes(k.out[1], ones, 6);
    kt_free(&k, NULL);

    /* opset 7: the mask has the input's type */
    kt_begin(&k, "Dropout", 7);
    assert_int_equal(kt_run(&k, in, 1, 2), EVO_OK);
    const float fones[6] = {1, 1, 1, 1, 1, 1};
    kt_expect_f32(k.out[1], fones, 6, 0);
    kt_free(&k, NULL);

    /* training mode is refused */
    evo_tensor tt = kt_tensor(EVO_DT_BOOL, kt_shape(0), &tm_true);
    evo_tensor *in3[] = {&x, &r, &tt};
    kt_begin(&k, "Dropout", 13);
    assert_int_equal(kt_infer(&k, in3, 3, 1), EVO_ERR_UNSUPPORTED);

    /* in place */
    float buf[6];
    memcpy(buf, rs_x, sizeof buf);
    evo_tensor xb = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 3), buf);
    evo_tensor *in4[] = {&xb};
    kt_begin(&k, "Dropout", 13);
    assert_true(k.op->flags & EVO_OP_INPLACE);
    assert_int_equal(kt_infer(&k, in4, 1, 1), EVO_OK);
    k.out[0]->data = buf;
    assert_int_equal(kt_eval(&k), EVO_OK);
    kt_expect_f32(k.out[0], rs_x, 6, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape_zero_and_minus_one),
        cmocka_unit_test(test_reshape_allowzero),
        cmocka_unit_test(test_reshape_bad),
        cmocka_unit_test(test_reshape_inplace),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_squeeze),
        cmocka_unit_test(test_unsqueeze),
        cmocka_unit_test(test_identity_and_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
