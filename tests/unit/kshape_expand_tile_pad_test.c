/* Expand, Tile and Pad (constant/reflect/edge/wrap, negative pads, axes). */
#include "kshape_test_util.h"

static void test_expand(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3}; /* [3,1] */
    const int64_t shape[] = {2, 1, 2};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 1), x);
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(1, 3), shape);
    evo_tensor *in[] = {&tx, &ts};
    kt k;
    kt_begin(&k, "Expand", 13);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(3, 2, 3, 2));
    const float want[] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3};
    kt_expect_f32(k.out[0], want, 12, 0);
    kt_free(&k, NULL);
    /* a target of 1s keeps the input's dims (bidirectional) */
    const int64_t ones[] = {1, 1};
    const int8_t xi[] = {1, 2, 3, 4, 5, 6};
    evo_tensor txi = kt_tensor(EVO_DT_INT8, kt_shape(2, 2, 3), xi);
    evo_tensor to = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), ones);
    evo_tensor *in2[] = {&txi, &to};
    kt_begin(&k, "Expand", 13);
    assert_int_equal(kt_run(&k, in2, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 3));
    kt_expect_bytes(k.out[0], xi, 6);
    kt_free(&k, NULL);
}

static void test_expand_bad(void **state)
{
    (void)state;
    const int64_t four[] = {4}, neg[] = {-2};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 2, 3), NULL);
    evo_tensor t4 = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), four);
    evo_tensor tn = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), neg);
    evo_tensor tc = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), NULL);
    kt k;
    kt_begin(&k, "Expand", 13);
    evo_tensor *in1[] = {&tx, &t4};
    assert_int_equal(kt_infer(&k, in1, 2, 1), EVO_ERR_SHAPE);
    evo_tensor *in2[] = {&tx, &tn};
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_SHAPE);
    evo_tensor *in3[] = {&tx, &tc};
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "constant"));
}

static void test_tile(void **state)
{
    (void)state;
    const int32_t x[] = {1, 2, 3, 4};
    const int64_t rep[] = {2, 3};
    evo_tensor tx = kt_tensor(EVO_DT_INT32, kt_shape(2, 2, 2), x);
    evo_tensor tr = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), rep);
    evo_tensor *in[] = {&tx, &tr};
    kt k;
    kt_begin(&k, "Tile", 13);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 4, 6));
    const int32_t want[] = {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
}

static void test_tile_bad(void **state)
{
    (void)state;
    const int64_t huge[] = {(int64_t)1 << 31, 1}, neg[] = {1, -1}, short_rep[] = {2};
    evo_tensor tx = kt_tensor(EVO_DT_INT32, kt_shape(2, 2, 2), NULL);
    evo_tensor th = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), huge);
    evo_tensor tn = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), neg);
    evo_tensor ts = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), short_rep);
    evo_tensor tc = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), NULL);
    kt k;
    kt_begin(&k, "Tile", 13);
    evo_tensor *in1[] = {&tx, &th};
    assert_int_equal(kt_infer(&k, in1, 2, 1), EVO_ERR_LIMIT);
    evo_tensor *in2[] = {&tx, &tn};
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_SHAPE);
    evo_tensor *in3[] = {&tx, &ts};
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    evo_tensor *in4[] = {&tx, &tc};
    assert_int_equal(kt_infer(&k, in4, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "repeats"));
    /* 65536 x 65536 x 4 bytes: each dim fits but the byte count is huge */
    const int64_t big[] = {65536, 65536};
    evo_tensor t1 = kt_tensor(EVO_DT_INT32, kt_shape(2, 1, 1), NULL);
    evo_tensor tb = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), big);
    evo_tensor *in5[] = {&t1, &tb};
    evo_status rv = kt_infer(&k, in5, 2, 1);
    /* 16 GiB fits size_t on 64-bit hosts; then the shape is legal */
    if (sizeof(size_t) < 8)
        assert_int_equal(rv, EVO_ERR_LIMIT);
    else
        assert_int_equal(rv, EVO_OK);
}

static const float pad_x[] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f}; /* [3,2] */

static evo_status pad_run(kt *k, const char *mode, const int64_t *pads, int n_pads,
                          const float *value, const int64_t *axes, int n_axes)
{
    static evo_tensor x, p, v, a;
    x = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 2), pad_x);
    p = kt_tensor(EVO_DT_INT64, kt_shape(1, n_pads), pads);
    v = kt_tensor(EVO_DT_FLOAT32, kt_shape(0), value);
    a = kt_tensor(EVO_DT_INT64, kt_shape(1, n_axes), axes);
    evo_tensor *in[] = {&x, &p, value ? &v : NULL, axes ? &a : NULL};
    kt_begin(k, "Pad", 18);
    if (mode)
        kt_str(k, "mode", mode);
    return kt_run(k, in, 4, 1);
}

static void test_pad_modes(void **state)
{
    (void)state;
    const int64_t pads[] = {0, 2, 0, 0};
    kt k;
    assert_int_equal(pad_run(&k, NULL, pads, 4, NULL, NULL, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 4));
    const float w_const[] = {0, 0, 1.0f, 1.2f, 0, 0, 2.3f, 3.4f, 0, 0, 4.5f, 5.7f};
    kt_expect_f32(k.out[0], w_const, 12, 0);
    kt_free(&k, NULL);
    assert_int_equal(pad_run(&k, "reflect", pads, 4, NULL, NULL, 0), EVO_OK);
    const float w_refl[] = {1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f};
    kt_expect_f32(k.out[0], w_refl, 12, 0);
    kt_free(&k, NULL);
    assert_int_equal(pad_run(&k, "edge", pads, 4, NULL, NULL, 0), EVO_OK);
    const float w_edge[] = {1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f};
    kt_expect_f32(k.out[0], w_edge, 12, 0);
    kt_free(&k, NULL);
    const int64_t wpads[] = {2, 1, 1, 1};
    assert_int_equal(pad_run(&k, "wrap", wpads, 4, NULL, NULL, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 6, 4));
    const float w_wrap[] = {3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f,
                            3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f};
    kt_expect_f32(k.out[0], w_wrap, 24, 0);
    kt_free(&k, NULL);
}

static void test_pad_reflect_rows(void **state)
{
    (void)state;
    /* reflect on axis 0 (outer rows) by 2 before and 1 after: rows 2,1,0,1,2,1 */
    const int64_t pads[] = {2, 0, 1, 0};
    kt k;
    assert_int_equal(pad_run(&k, "reflect", pads, 4, NULL, NULL, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 6, 2));
    const float want[] = {4.5f, 5.7f, 2.3f, 3.4f, 1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f, 2.3f, 3.4f};
    kt_expect_f32(k.out[0], want, 12, 0);
    kt_free(&k, NULL);
}

static void test_pad_negative_value_axes(void **state)
{
    (void)state;
    kt k;
    /* crop the first row and the last column, pad one column of 9 in front */
    const int64_t pads[] = {-1, 1, 0, -1};
    const float nine = 9.0f;
    assert_int_equal(pad_run(&k, NULL, pads, 4, &nine, NULL, 0), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 2, 2));
    const float want[] = {9, 2.3f, 9, 4.5f};
    kt_expect_f32(k.out[0], want, 4, 0);
    kt_free(&k, NULL);
    /* axes = [-1]: pads apply to the last axis only */
    const int64_t pads2[] = {1, 0}, axes[] = {-1};
    assert_int_equal(pad_run(&k, "edge", pads2, 2, NULL, axes, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(2, 3, 3));
    const float want2[] = {1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 5.7f};
    kt_expect_f32(k.out[0], want2, 9, 0);
    kt_free(&k, NULL);
}

static void test_pad_int_constant(void **state)
{
    (void)state;
    const int32_t x[] = {5, 6}, seven = 7;
    const int64_t pads[] = {1, 2};
    evo_tensor tx = kt_tensor(EVO_DT_INT32, kt_shape(1, 2), x);
    evo_tensor tp = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), pads);
    evo_tensor tv = kt_tensor(EVO_DT_INT32, kt_shape(0), &seven);
    evo_tensor *in[] = {&tx, &tp, &tv};
    kt k;
    kt_begin(&k, "Pad", 13);
    assert_int_equal(kt_run(&k, in, 3, 1), EVO_OK);
    const int32_t want[] = {7, 5, 6, 7, 7};
    kt_expect_bytes(k.out[0], want, sizeof want);
    kt_free(&k, NULL);
    /* wrong constant type */
    const float f = 1.0f;
    evo_tensor tf = kt_tensor(EVO_DT_FLOAT32, kt_shape(0), &f);
    evo_tensor *in2[] = {&tx, &tp, &tf};
    assert_int_equal(kt_infer(&k, in2, 3, 1), EVO_ERR_SHAPE);
}

static void test_pad_bad(void **state)
{
    (void)state;
    kt k;
    const int64_t short_pads[] = {1, 1}, crop[] = {-2, 0, -2, 0}, dup_axes[] = {0, 0},
                  pads4[] = {1, 1, 1, 1};
    assert_int_equal(pad_run(&k, NULL, short_pads, 2, NULL, NULL, 0), EVO_ERR_SHAPE);
    assert_int_equal(pad_run(&k, NULL, crop, 4, NULL, NULL, 0), EVO_ERR_SHAPE);
    assert_int_equal(pad_run(&k, NULL, pads4, 4, NULL, dup_axes, 2), EVO_ERR_SHAPE);
    kt_begin(&k, "Pad", 18);
    kt_str(&k, "mode", "mirror");
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 3, 2), pad_x);
    evo_tensor tp = kt_tensor(EVO_DT_INT64, kt_shape(1, 4), pads4);
    evo_tensor *in[] = {&tx, &tp};
    assert_int_equal(kt_infer(&k, in, 2, 1), EVO_ERR_UNSUPPORTED);
    /* pads not constant */
    evo_tensor tn = kt_tensor(EVO_DT_INT64, kt_shape(1, 4), NULL);
    evo_tensor *in2[] = {&tx, &tn};
    kt_begin(&k, "Pad", 18);
    assert_int_equal(kt_infer(&k, in2, 2, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "pads"));
    /* edge-padding an empty axis has nothing to copy */
    evo_tensor te = kt_tensor(EVO_DT_FLOAT32, kt_shape(2, 0, 2), NULL);
    evo_tensor *in3[] = {&te, &tp};
    kt_begin(&k, "Pad", 18);
    kt_str(&k, "mode", "edge");
    assert_int_equal(kt_infer(&k, in3, 2, 1), EVO_ERR_SHAPE);
    /* absurd pads */
    const int64_t huge[] = {0, (int64_t)1 << 40, 0, 0};
    assert_int_equal(pad_run(&k, NULL, huge, 4, NULL, NULL, 0), EVO_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_bad),
        cmocka_unit_test(test_tile),
        cmocka_unit_test(test_tile_bad),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_pad_reflect_rows),
        cmocka_unit_test(test_pad_negative_value_axes),
        cmocka_unit_test(test_pad_int_constant),
        cmocka_unit_test(test_pad_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
