/* The element-wise ops added in unary_extra.c, activation_extra.c,
 * binary_extra.c and castlike.c: hand-computed values (including the edge
 * cases each file comment promises) and bad input in parse and infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

static void test_trig_round(void **state)
{
    (void)state;
    float x[6] = {0, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f}, y[6];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 6), ty = KT(EVO_DT_FLOAT32, y, 6);
    evo_tensor *in[1] = {&tx};
    /* halves round to even */
    assert_int_equal(kelem_run("Round", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0, 0, -0.0f, 2, 2, -2}, 6, 0);
    assert_int_equal(kelem_run("Atan", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0, 0.4636476f, -0.4636476f, 0.9827937f, 1.1902899f, -1.1902899f},
                     6, 1e-6f);
    assert_int_equal(kelem_run("Cosh", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 1.1276260f, 1.1276260f, 2.3524096f, 6.1322895f, 6.1322895f}, 6,
                     1e-6f);
    /* outside the domain: NaN; at the pole: inf */
    float d[3] = {2, 1, -1}, e[3];
    evo_tensor td = KT(EVO_DT_FLOAT32, d, 3), te = KT(EVO_DT_FLOAT32, e, 3);
    evo_tensor *ind[1] = {&td};
    assert_int_equal(kelem_run("Asin", NULL, ind, 1, &te, NULL), EVO_OK);
    kelem_expect_f32(e, (float[]){NAN, 1.5707964f, -1.5707964f}, 3, 1e-6f);
    assert_int_equal(kelem_run("Atanh", NULL, ind, 1, &te, NULL), EVO_OK);
    kelem_expect_f32(e, (float[]){NAN, INFINITY, -INFINITY}, 3, 0);
    /* integers are refused as unsupported */
    int32_t i[1] = {1}, io[1];
    evo_tensor ti = KT(EVO_DT_INT32, i, 1), tio = KT(EVO_DT_INT32, io, 1);
    evo_tensor *ini[1] = {&ti};
    evo_error err = {0};
    assert_int_equal(kelem_run("Tan", NULL, ini, 1, &tio, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int32"));
}

static void test_isnan_isinf(void **state)
{
    (void)state;
    float x[5] = {1, NAN, INFINITY, -INFINITY, 0};
    uint8_t y[5];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 5), ty = KT(EVO_DT_BOOL, y, 5);
    evo_tensor *in[1] = {&tx};
    assert_int_equal(kelem_run("IsNaN", NULL, in, 1, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 0, 0}), 5);
    assert_int_equal(kelem_run("IsInf", NULL, in, 1, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 0, 1, 1, 0}), 5);
    evo_graph *g = kelem_graph("IsInf", 1, 20);
    kelem_attr_int(g, "detect_positive", 0);
    assert_int_equal(kelem_run("IsInf", g, in, 1, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 0, 0, 1, 0}), 5);
    evo_graph_free(g);
    /* a flag other than 0/1 */
    g = kelem_graph("IsInf", 1, 20);
    kelem_attr_int(g, "detect_negative", 2);
    evo_error err = {0};
    assert_int_equal(kelem_run("IsInf", g, in, 1, &ty, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "detect_negative"));
    evo_graph_free(g);
}

static void test_activations(void **state)
{
    (void)state;
    float x[5] = {-2, -0.5f, 0, 0.5f, 3}, y[5];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 5), ty = KT(EVO_DT_FLOAT32, y, 5);
    evo_tensor *in[1] = {&tx};
    /* Celu alpha=2: 2 (exp(x/2) - 1) for x <= 0 */
    evo_graph *g = kelem_graph("Celu", 1, 12);
    kelem_attr_float(g, "alpha", 2.0f);
    assert_int_equal(kelem_run("Celu", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-1.2642411f, -0.4423984f, 0, 0.5f, 3}, 5, 1e-6f);
    evo_graph_free(g);
    /* ThresholdedRelu default alpha 1: strictly greater */
    float t[3] = {1, 1.5f, NAN}, to[3];
    evo_tensor tt = KT(EVO_DT_FLOAT32, t, 3), tto = KT(EVO_DT_FLOAT32, to, 3);
    evo_tensor *int_[1] = {&tt};
    assert_int_equal(kelem_run("ThresholdedRelu", NULL, int_, 1, &tto, NULL), EVO_OK);
    kelem_expect_f32(to, (float[]){0, 1.5f, 0}, 3, 0);
    /* Shrink lambd 1, bias 0.5 */
    g = kelem_graph("Shrink", 1, 9);
    kelem_attr_float(g, "lambd", 1.0f);
    kelem_attr_float(g, "bias", 0.5f);
    assert_int_equal(kelem_run("Shrink", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-1.5f, 0, 0, 0, 2.5f}, 5, 0);
    evo_graph_free(g);
    /* Mish(x) = x tanh(ln(1 + e^x)); large x stays finite */
    float m[3] = {1, -1, 100}, mo[3];
    evo_tensor tm = KT(EVO_DT_FLOAT32, m, 3), tmo = KT(EVO_DT_FLOAT32, mo, 3);
    evo_tensor *inm[1] = {&tm};
    assert_int_equal(kelem_run("Mish", NULL, inm, 1, &tmo, NULL), EVO_OK);
    kelem_expect_f32(mo, (float[]){0.8650984f, -0.3034014f, 100}, 3, 1e-6f);
    /* Swish alpha 2: x / (1 + e^(-2x)) */
    g = kelem_graph("Swish", 1, 24);
    kelem_attr_float(g, "alpha", 2.0f);
    assert_int_equal(kelem_run("Swish", g, inm, 1, &tmo, NULL), EVO_OK);
    kelem_expect_f32(mo, (float[]){0.8807971f, -0.1192029f, 100}, 3, 1e-6f);
    evo_graph_free(g);
    /* bad: Celu alpha 0, non-finite Shrink bias */
    evo_error err = {0};
    g = kelem_graph("Celu", 1, 12);
    kelem_attr_float(g, "alpha", 0.0f);
    assert_int_equal(kelem_run("Celu", g, in, 1, &ty, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "alpha"));
    evo_graph_free(g);
    g = kelem_graph("Shrink", 1, 9);
    kelem_attr_float(g, "bias", INFINITY);
    assert_int_equal(kelem_run("Shrink", g, in, 1, &ty, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
}

static void test_mod(void **state)
{
    (void)state;
    int32_t a[6] = {7, -7, 7, -7, 5, INT32_MIN}, b[6] = {3, 3, -3, -3, 0, -1}, y[6];
    evo_tensor ta = KT(EVO_DT_INT32, a, 6), tb = KT(EVO_DT_INT32, b, 6);
    evo_tensor ty = KT(EVO_DT_INT32, y, 6);
    evo_tensor *in[2] = {&ta, &tb};
    /* fmod=0: the divisor's sign; zero divisor and INT_MIN % -1 give 0 */
    assert_int_equal(kelem_run("Mod", NULL, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int32_t[]){1, 2, -2, -1, 0, 0}), sizeof y);
    evo_graph *g = kelem_graph("Mod", 2, 13);
    kelem_attr_int(g, "fmod", 1);
    assert_int_equal(kelem_run("Mod", g, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int32_t[]){1, -1, 1, -1, 0, 0}), sizeof y);
    /* float fmod, broadcast scalar divisor */
    float f[3] = {5.5f, -5.5f, 1}, fd = 2, fy[3];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 3), tfd = KT0(EVO_DT_FLOAT32, &fd);
    evo_tensor tfy = KT(EVO_DT_FLOAT32, fy, 3);
    evo_tensor *inf[2] = {&tf, &tfd};
    assert_int_equal(kelem_run("Mod", g, inf, 2, &tfy, NULL), EVO_OK);
    kelem_expect_f32(fy, (float[]){1.5f, -1.5f, 1}, 3, 0);
    evo_graph_free(g);
    /* bad: float without fmod, mixed types, fmod 2 */
    evo_error err = {0};
    assert_int_equal(kelem_run("Mod", NULL, inf, 2, &tfy, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "fmod"));
    evo_tensor *mixed[2] = {&ta, &tfd};
    assert_int_equal(kelem_run("Mod", NULL, mixed, 2, &ty, &err), EVO_ERR_TYPE);
    g = kelem_graph("Mod", 2, 13);
    kelem_attr_int(g, "fmod", 2);
    assert_int_equal(kelem_run("Mod", g, in, 2, &ty, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
}

static void test_xor_bitshift(void **state)
{
    (void)state;
    uint8_t a[4] = {0, 0, 1, 1}, b[4] = {0, 1, 0, 2}, y[4];
    evo_tensor ta = KT(EVO_DT_BOOL, a, 4), tb = KT(EVO_DT_BOOL, b, 4), ty = KT(EVO_DT_BOOL, y, 4);
    evo_tensor *in[2] = {&ta, &tb};
    assert_int_equal(kelem_run("Xor", NULL, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 1, 0}), 4);
    uint8_t x[4] = {1, 0x81, 255, 16}, s[4] = {1, 1, 8, 2}, z[4];
    evo_tensor tx = KT(EVO_DT_UINT8, x, 4), ts = KT(EVO_DT_UINT8, s, 4);
    evo_tensor tz = KT(EVO_DT_UINT8, z, 4);
    evo_tensor *ins[2] = {&tx, &ts};
    evo_graph *g = kelem_graph("BitShift", 2, 11);
    kelem_attr_string(g, "direction", "LEFT");
    assert_int_equal(kelem_run("BitShift", g, ins, 2, &tz, NULL), EVO_OK);
    assert_memory_equal(z, ((uint8_t[]){2, 2, 0, 64}), 4);
    evo_graph_free(g);
    g = kelem_graph("BitShift", 2, 11);
    kelem_attr_string(g, "direction", "RIGHT");
    assert_int_equal(kelem_run("BitShift", g, ins, 2, &tz, NULL), EVO_OK);
    assert_memory_equal(z, ((uint8_t[]){0, 0x40, 0, 4}), 4);
    evo_graph_free(g);
    /* bad: missing direction, int32 data, Xor on floats */
    evo_error err = {0};
    assert_int_equal(kelem_run("BitShift", NULL, ins, 2, &tz, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "direction"));
    int32_t i[1] = {1}, io[1];
    evo_tensor ti = KT(EVO_DT_INT32, i, 1), tio = KT(EVO_DT_INT32, io, 1);
    evo_tensor *ini[2] = {&ti, &ti};
    g = kelem_graph("BitShift", 2, 11);
    kelem_attr_string(g, "direction", "LEFT");
    assert_int_equal(kelem_run("BitShift", g, ini, 2, &tio, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
    float f[1] = {1}, fo[1];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 1), tfo = KT(EVO_DT_BOOL, fo, 1);
    evo_tensor *inf[2] = {&tf, &tf};
    assert_int_equal(kelem_run("Xor", NULL, inf, 2, &tfo, &err), EVO_ERR_UNSUPPORTED);
}

static void test_castlike(void **state)
{
    (void)state;
    float x[4] = {1.9f, -1.9f, 300, NAN};
    int8_t like = 0, y[4];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 2), tl = KT0(EVO_DT_INT8, &like);
    evo_tensor ty = KT(EVO_DT_INT8, y, 2, 2);
    evo_tensor *in[2] = {&tx, &tl};
    /* Cast's rules: truncate, saturate, NaN -> 0 */
    assert_int_equal(kelem_run("CastLike", NULL, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int8_t[]){1, -1, 127, 0}), 4);
    /* the target's shape does not matter */
    float like_f[3];
    float fy[4];
    evo_tensor tlf = KT(EVO_DT_FLOAT32, like_f, 3), tfy = KT(EVO_DT_FLOAT32, fy, 2, 2);
    evo_tensor *same[2] = {&tx, &tlf};
    assert_int_equal(kelem_run("CastLike", NULL, same, 2, &tfy, NULL), EVO_OK);
    kelem_expect_f32(fy, x, 4, 0);
    /* bad: a target type evo cannot cast to, one input only */
    double dl = 0;
    evo_tensor td = KT0(EVO_DT_FLOAT64, &dl);
    evo_tensor *bad[2] = {&tx, &td};
    evo_error err = {0};
    assert_int_equal(kelem_run("CastLike", NULL, bad, 2, &ty, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "float64"));
    assert_int_equal(kelem_run("CastLike", NULL, in, 1, &ty, &err), EVO_ERR_GRAPH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trig_round),   cmocka_unit_test(test_isnan_isinf),
        cmocka_unit_test(test_activations),  cmocka_unit_test(test_mod),
        cmocka_unit_test(test_xor_bitshift), cmocka_unit_test(test_castlike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
