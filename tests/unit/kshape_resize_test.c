/* Resize / Upsample: nearest rounding modes, linear with half_pixel,
 * align_corners, asymmetric, cubic, tf_crop_and_resize, sizes with
 * keep_aspect_ratio_policy, legacy opsets, bad input. Expected values are
 * hand-computed (several match the ONNX operator documentation examples). */
#include "kshape_test_util.h"

static const float r22[] = {1, 2, 3, 4};             /* [1,1,2,2] */
static const float r24[] = {1, 2, 3, 4, 5, 6, 7, 8}; /* [1,1,2,4] */

/* Resize-13+ with (X, roi=absent, scales) */
static evo_status resize_scales(kt *k, const float *x, evo_shape xs, const float *scales,
                                int n_scales)
{
    static evo_tensor tx, ts;
    tx = kt_tensor(EVO_DT_FLOAT32, xs, x);
    ts = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, n_scales), scales);
    evo_tensor *in[] = {&tx, NULL, &ts};
    return kt_run(k, in, 3, 1);
}

static void test_linear_half_pixel(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 2};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    assert_int_equal(resize_scales(&k, r22, kt_shape(4, 1, 1, 2, 2), sc, 4), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 1, 4, 4));
    const float want[] = {1,    1.25f, 1.75f, 2,    1.5f, 1.75f, 2.25f, 2.5f,
                          2.5f, 2.75f, 3.25f, 3.5f, 3,    3.25f, 3.75f, 4};
    kt_expect_f32(k.out[0], want, 16, 1e-6f);
    kt_free(&k, NULL);
}

static void test_linear_align_corners(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 2};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    kt_str(&k, "coordinate_transformation_mode", "align_corners");
    assert_int_equal(resize_scales(&k, r22, kt_shape(4, 1, 1, 2, 2), sc, 4), EVO_OK);
    const float t = 1.0f / 3, u = 2.0f / 3;
    const float want[] = {1,         1 + t, 1 + u, 2,     1 + 2 * t, 2,     2 + t, 2 + u,
                          1 + 2 * u, 2 + u, 3,     3 + t, 3,         3 + t, 3 + u, 4};
    kt_expect_f32(k.out[0], want, 16, 1e-5f);
    kt_free(&k, NULL);
}

static void test_linear_asymmetric(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 2};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    kt_str(&k, "coordinate_transformation_mode", "asymmetric");
    assert_int_equal(resize_scales(&k, r22, kt_shape(4, 1, 1, 2, 2), sc, 4), EVO_OK);
    const float want[] = {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4};
    kt_expect_f32(k.out[0], want, 16, 1e-6f);
    kt_free(&k, NULL);
}

static void test_linear_downsample(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 0.6f, 0.6f};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    assert_int_equal(resize_scales(&k, r24, kt_shape(4, 1, 1, 2, 4), sc, 4), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 1, 1, 2));
    const float want[] = {2.6666665f, 4.3333331f};
    kt_expect_f32(k.out[0], want, 2, 1e-5f);
    kt_free(&k, NULL);
    /* the same with nearest (round_prefer_floor, half_pixel) */
    kt_begin(&k, "Resize", 13);
    assert_int_equal(resize_scales(&k, r24, kt_shape(4, 1, 1, 2, 4), sc, 4), EVO_OK);
    const float want_n[] = {1, 3};
    kt_expect_f32(k.out[0], want_n, 2, 0);
    kt_free(&k, NULL);
}

static void test_nearest_upsample_half_pixel(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 3};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "nearest");
    assert_int_equal(resize_scales(&k, r22, kt_shape(4, 1, 1, 2, 2), sc, 4), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 1, 4, 6));
    const float want[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    kt_expect_f32(k.out[0], want, 24, 0);
    kt_free(&k, NULL);
}

/* 1-D [10, 20] with asymmetric coordinates: x_orig = o / scale. */
static void nearest_mode_case(const char *mode, float scale, const float *want, int n)
{
    const float x[] = {10, 20};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "coordinate_transformation_mode", "asymmetric");
    kt_str(&k, "nearest_mode", mode);
    assert_int_equal(resize_scales(&k, x, kt_shape(1, 2), &scale, 1), EVO_OK);
    kt_expect_f32(k.out[0], want, (size_t)n, 0);
    kt_free(&k, NULL);
}

static void test_nearest_modes(void **state)
{
    (void)state;
    /* scale 2: x_orig = 0, .5, 1, 1.5 */
    const float pf2[] = {10, 10, 20, 20}, pc2[] = {10, 20, 20, 20};
    nearest_mode_case("round_prefer_floor", 2, pf2, 4);
    nearest_mode_case("round_prefer_ceil", 2, pc2, 4);
    /* scale 3: x_orig = 0, .33, .67, 1, 1.33, 1.67 */
    const float fl3[] = {10, 10, 10, 20, 20, 20}, ce3[] = {10, 20, 20, 20, 20, 20},
                pf3[] = {10, 10, 20, 20, 20, 20};
    nearest_mode_case("floor", 3, fl3, 6);
    nearest_mode_case("ceil", 3, ce3, 6);
    nearest_mode_case("round_prefer_floor", 3, pf3, 6);
}

static void test_nearest_int8_sizes_not_larger(void **state)
{
    (void)state;
    const int8_t x[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t sizes[] = {1, 3}, axes[] = {2, 3};
    evo_tensor tx = kt_tensor(EVO_DT_INT8, kt_shape(4, 1, 1, 2, 4), x);
    evo_tensor tz = kt_tensor(EVO_DT_INT64, kt_shape(1, 2), sizes);
    evo_tensor *in[] = {&tx, NULL, NULL, &tz};
    kt k;
    kt_begin(&k, "Resize", 18);
    kt_ints(&k, "axes", axes, 2);
    kt_str(&k, "keep_aspect_ratio_policy", "not_larger");
    assert_int_equal(kt_run(&k, in, 4, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 1, 1, 2));
    const int8_t want[] = {1, 3};
    kt_expect_bytes(k.out[0], want, 2);
    kt_free(&k, NULL);
    /* stretch: exactly the sizes */
    kt_begin(&k, "Resize", 18);
    kt_ints(&k, "axes", axes, 2);
    assert_int_equal(kt_infer(&k, in, 4, 1), EVO_OK);
    kt_expect_shape(k.out[0], kt_shape(4, 1, 1, 1, 3));
}

static void test_cubic(void **state)
{
    (void)state;
    const float x[] = {0, 1, 2, 3}, sc = 2;
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "cubic");
    kt_str(&k, "coordinate_transformation_mode", "asymmetric");
    assert_int_equal(resize_scales(&k, x, kt_shape(1, 4), &sc, 1), EVO_OK);
    const float *y = k.out[0]->data;
    /* o=1: x=.5, taps (-1->0, 0, 1, 2) weights -.09375, .59375, .59375, -.09375 */
    assert_float_equal(y[1], 0.40625f, 1e-6f);
    assert_float_equal(y[3], 1.5f, 1e-6f);
    assert_float_equal(y[2], 1.0f, 1e-6f);
    kt_free(&k, NULL);
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "cubic");
    kt_str(&k, "coordinate_transformation_mode", "asymmetric");
    kt_int(&k, "exclude_outside", 1);
    assert_int_equal(resize_scales(&k, x, kt_shape(1, 4), &sc, 1), EVO_OK);
    y = k.out[0]->data;
    assert_float_equal(y[1], 0.40625f / 1.09375f, 1e-6f);
    kt_free(&k, NULL);
}

static void test_tf_crop_and_resize(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3, 4}, roi[] = {0, 1.5f};
    const int64_t sizes[] = {4};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), x);
    evo_tensor tr = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 2), roi);
    evo_tensor tz = kt_tensor(EVO_DT_INT64, kt_shape(1, 1), sizes);
    evo_tensor *in[] = {&tx, &tr, NULL, &tz};
    kt k;
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    kt_str(&k, "coordinate_transformation_mode", "tf_crop_and_resize");
    kt_float(&k, "extrapolation_value", 10);
    assert_int_equal(kt_run(&k, in, 4, 1), EVO_OK);
    /* x_orig = 1.5 * o: 0, 1.5, 3, 4.5 (outside) */
    const float want[] = {1, 2.5f, 4, 10};
    kt_expect_f32(k.out[0], want, 4, 1e-6f);
    kt_free(&k, NULL);
}

static void test_legacy_upsample_and_resize10(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 3};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 1, 2, 2), r22);
    evo_tensor ts = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), sc);
    evo_tensor *in[] = {&tx, &ts};
    kt k;
    kt_begin(&k, "Upsample", 9);
    assert_int_equal(kt_run(&k, in, 2, 1), EVO_OK);
    const float want[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    kt_expect_f32(k.out[0], want, 24, 0);
    kt_free(&k, NULL);
    /* Upsample linear uses asymmetric coordinates */
    const float sc2[] = {1, 1, 2, 2};
    evo_tensor ts2 = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), sc2);
    evo_tensor *in2[] = {&tx, &ts2};
    kt_begin(&k, "Upsample", 9);
    kt_str(&k, "mode", "linear");
    assert_int_equal(kt_run(&k, in2, 2, 1), EVO_OK);
    const float want_l[] = {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4};
    kt_expect_f32(k.out[0], want_l, 16, 1e-6f);
    kt_free(&k, NULL);
    /* Resize-10 downsampling rounds up ("simple" nearest): [[1,3]] */
    const float sc3[] = {1, 1, 0.6f, 0.6f};
    evo_tensor tx3 = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 1, 2, 4), r24);
    evo_tensor ts3 = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), sc3);
    evo_tensor *in3[] = {&tx3, &ts3};
    kt_begin(&k, "Resize", 10);
    assert_int_equal(kt_run(&k, in3, 2, 1), EVO_OK);
    const float want3[] = {1, 3};
    kt_expect_f32(k.out[0], want3, 2, 0);
    kt_free(&k, NULL);
}

static void test_resize_bad(void **state)
{
    (void)state;
    const float sc[] = {1, 1, 2, 2}, neg[] = {1, 1, -2, 2}, huge[] = {1, 1, 1e10f, 1};
    const int64_t sizes[] = {1, 1, 4, 4}, sizes3[] = {1, 4, 4};
    evo_tensor tx = kt_tensor(EVO_DT_FLOAT32, kt_shape(4, 1, 1, 2, 2), r22);
    evo_tensor ts = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), sc);
    evo_tensor tz = kt_tensor(EVO_DT_INT64, kt_shape(1, 4), sizes);
    evo_tensor tz3 = kt_tensor(EVO_DT_INT64, kt_shape(1, 3), sizes3);
    evo_tensor tn = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), neg);
    evo_tensor th = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), huge);
    evo_tensor tc = kt_tensor(EVO_DT_FLOAT32, kt_shape(1, 4), NULL);
    kt k;
    kt_begin(&k, "Resize", 13);
    evo_tensor *both[] = {&tx, NULL, &ts, &tz};
    assert_int_equal(kt_infer(&k, both, 4, 1), EVO_ERR_SHAPE);
    evo_tensor *none[] = {&tx};
    assert_int_equal(kt_infer(&k, none, 1, 1), EVO_ERR_SHAPE);
    evo_tensor *wrong_len[] = {&tx, NULL, NULL, &tz3};
    assert_int_equal(kt_infer(&k, wrong_len, 4, 1), EVO_ERR_SHAPE);
    evo_tensor *negs[] = {&tx, NULL, &tn};
    assert_int_equal(kt_infer(&k, negs, 3, 1), EVO_ERR_SHAPE);
    evo_tensor *huges[] = {&tx, NULL, &th};
    assert_int_equal(kt_infer(&k, huges, 3, 1), EVO_ERR_LIMIT);
    evo_tensor *runtime[] = {&tx, NULL, &tc};
    assert_int_equal(kt_infer(&k, runtime, 3, 1), EVO_ERR_SHAPE);
    assert_non_null(strstr(k.err.msg, "scales"));
    /* linear on int8 is refused */
    evo_tensor ti = kt_tensor(EVO_DT_INT8, kt_shape(4, 1, 1, 2, 2), NULL);
    evo_tensor *ints[] = {&ti, NULL, &ts};
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "linear");
    assert_int_equal(kt_infer(&k, ints, 3, 1), EVO_ERR_TYPE);
    kt_begin(&k, "Resize", 13);
    kt_str(&k, "mode", "area");
    evo_tensor *ok[] = {&tx, NULL, &ts};
    assert_int_equal(kt_infer(&k, ok, 3, 1), EVO_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_half_pixel),
        cmocka_unit_test(test_linear_align_corners),
        cmocka_unit_test(test_linear_asymmetric),
        cmocka_unit_test(test_linear_downsample),
        cmocka_unit_test(test_nearest_upsample_half_pixel),
        cmocka_unit_test(test_nearest_modes),
        cmocka_unit_test(test_nearest_int8_sizes_not_larger),
        cmocka_unit_test(test_cubic),
        cmocka_unit_test(test_tf_crop_and_resize),
        cmocka_unit_test(test_legacy_upsample_and_resize10),
        cmocka_unit_test(test_resize_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
