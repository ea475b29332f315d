/* Clip, the variadic Max/Min/Sum/Mean and Cast (node/kernels/ref/clip.c,
 * variadic.c, cast.c): hand-computed values, in-place runs (including a
 * variadic input repeated at the aliased position), Cast rounding and
 * truncation, float16 round trips, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

static void test_clip(void **state)
{
    (void)state;
    float x[10] = {-2, -0.5f, 0, 0.5f, 2, NAN, -INFINITY, INFINITY, 1, -1}, y[10];
    float lo = -1, hi = 1;
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 5), ty = KT(EVO_DT_FLOAT32, y, 2, 5);
    evo_tensor tlo = KT0(EVO_DT_FLOAT32, &lo), thi = KT(EVO_DT_FLOAT32, &hi, 1);
    evo_tensor *in[3] = {&tx, &tlo, &thi};
    assert_int_equal(kelem_run("Clip", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-1, -0.5f, 0, 0.5f, 1, NAN, -1, 1, 1, -1}, 10, 0);
    /* no bounds: a copy */
    assert_int_equal(kelem_run("Clip", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, x, 10, 0);
    /* only max (min absent in the middle) */
    evo_tensor *in_max[3] = {&tx, NULL, &thi};
    assert_int_equal(kelem_run("Clip", NULL, in_max, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-2, -0.5f, 0, 0.5f, 1, NAN, -INFINITY, 1, 1, -1}, 10, 0);
    /* min > max: everything becomes max */
    float lo2 = 3;
    evo_tensor tlo2 = KT0(EVO_DT_FLOAT32, &lo2);
    evo_tensor *in_swap[3] = {&tx, &tlo2, &thi};
    assert_int_equal(kelem_run("Clip", NULL, in_swap, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 1, 1, 1, 1, NAN, 1, 1, 1, 1}, 10, 0);
    /* in place, int8 with only min */
    int8_t v[9] = {-128, -5, 0, 5, 127, -1, 1, -100, 100}, vmin = -2;
    evo_tensor tv = KT(EVO_DT_INT8, v, 9), tvmin = KT0(EVO_DT_INT8, &vmin), tvo = tv;
    evo_tensor *in_i8[2] = {&tv, &tvmin};
    assert_int_equal(kelem_run("Clip", NULL, in_i8, 2, &tvo, NULL), EVO_OK);
    assert_memory_equal(v, ((int8_t[]){-2, -2, 0, 5, 127, -1, 1, -2, 100}), 9);
    /* uint8 and int64 */
    uint8_t u[3] = {0, 100, 255}, ulo = 10, uhi = 200, uo[3];
    evo_tensor tu = KT(EVO_DT_UINT8, u, 3), tul = KT0(EVO_DT_UINT8, &ulo);
    evo_tensor tuh = KT0(EVO_DT_UINT8, &uhi), tuo = KT(EVO_DT_UINT8, uo, 3);
    evo_tensor *in_u8[3] = {&tu, &tul, &tuh};
    assert_int_equal(kelem_run("Clip", NULL, in_u8, 3, &tuo, NULL), EVO_OK);
    assert_memory_equal(uo, ((uint8_t[]){10, 100, 200}), 3);
    int64_t l[3] = {INT64_MIN, 0, INT64_MAX}, lhi = 7, lo3[3];
    evo_tensor tl = KT(EVO_DT_INT64, l, 3), tlh = KT0(EVO_DT_INT64, &lhi);
    evo_tensor tlo3 = KT(EVO_DT_INT64, lo3, 3);
    evo_tensor *in_i64[3] = {&tl, NULL, &tlh};
    assert_int_equal(kelem_run("Clip", NULL, in_i64, 3, &tlo3, NULL), EVO_OK);
    assert_memory_equal(lo3, ((int64_t[]){INT64_MIN, 0, 7}), sizeof lo3);
    /* bad: non-scalar bound, mismatched bound type, bool input */
    evo_error err = {0};
    float two[2] = {0, 1};
    evo_tensor ttwo = KT(EVO_DT_FLOAT32, two, 2);
    evo_tensor *bad1[3] = {&tx, &ttwo, NULL};
    assert_int_equal(kelem_run("Clip", NULL, bad1, 3, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "min"));
    evo_tensor *bad2[3] = {&tx, &tvmin, NULL};
    assert_int_equal(kelem_run("Clip", NULL, bad2, 2, &ty, &err), EVO_ERR_TYPE);
    uint8_t bb[1];
    evo_tensor tbb = KT(EVO_DT_BOOL, bb, 1);
    evo_tensor *bad3[1] = {&tbb};
    assert_int_equal(kelem_run("Clip", NULL, bad3, 1, &ty, &err), EVO_ERR_UNSUPPORTED);
}

static void test_variadic(void **state)
{
    (void)state;
    float a[3] = {1, 5, NAN}, b[2] = {2, 4}, s = 3, y[6];
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 3), tb = KT(EVO_DT_FLOAT32, b, 2, 1);
    evo_tensor ts = KT0(EVO_DT_FLOAT32, &s), ty = KT(EVO_DT_FLOAT32, y, 2, 3);
    evo_tensor *in[3] = {&ta, &tb, &ts};
    /* [3], [2,1], [] -> [2,3] */
    assert_int_equal(kelem_run("Max", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){3, 5, NAN, 4, 5, NAN}, 6, 0);
    assert_int_equal(kelem_run("Min", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 2, NAN, 1, 3, NAN}, 6, 0);
    assert_int_equal(kelem_run("Sum", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){6, 10, NAN, 8, 12, NAN}, 6, 0);
    assert_int_equal(kelem_run("Mean", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){2, 10.0f / 3, NAN, 8.0f / 3, 4, NAN}, 6, 1e-7f);
    /* one input: a copy */
    ty = KT(EVO_DT_FLOAT32, y, 3);
    assert_int_equal(kelem_run("Mean", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, a, 3, 0);
    /* integers */
    int32_t i1[4] = {1, -5, 7, 0}, i2[4] = {2, -6, 7, INT32_MIN}, io[4];
    evo_tensor t1 = KT(EVO_DT_INT32, i1, 4), t2 = KT(EVO_DT_INT32, i2, 4);
    evo_tensor to = KT(EVO_DT_INT32, io, 4);
    evo_tensor *ini[2] = {&t1, &t2};
    assert_int_equal(kelem_run("Max", NULL, ini, 2, &to, NULL), EVO_OK);
    assert_memory_equal(io, ((int32_t[]){2, -5, 7, 0}), sizeof io);
    assert_int_equal(kelem_run("Min", NULL, ini, 2, &to, NULL), EVO_OK);
    assert_memory_equal(io, ((int32_t[]){1, -6, 7, INT32_MIN}), sizeof io);
    uint8_t u1[2] = {200, 3}, u2[2] = {100, 4}, uo[2];
    evo_tensor tu1 = KT(EVO_DT_UINT8, u1, 2), tu2 = KT(EVO_DT_UINT8, u2, 2);
    evo_tensor tuo = KT(EVO_DT_UINT8, uo, 2);
    evo_tensor *inu[2] = {&tu1, &tu2};
    assert_int_equal(kelem_run("Max", NULL, inu, 2, &tuo, NULL), EVO_OK);
    assert_memory_equal(uo, ((uint8_t[]){200, 4}), 2);
}

static void test_variadic_inplace(void **state)
{
    (void)state;
    /* Sum(x, y, x) with the output on x's buffer: 2x + y, not 3x + y etc. */
    float x[10], yv[10];
    for (int i = 0; i < 10; i++) {
        x[i] = (float)i;
        yv[i] = 100.0f;
    }
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 10), tyv = KT(EVO_DT_FLOAT32, yv, 10), to = tx;
    evo_tensor *in[3] = {&tx, &tyv, &tx};
    assert_int_equal(kelem_run("Sum", NULL, in, 3, &to, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(x[i] == 2.0f * (float)i + 100.0f);
    /* Mean(x, x) in place is x */
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    evo_tensor *in2[2] = {&tx, &tx};
    assert_int_equal(kelem_run("Mean", NULL, in2, 2, &to, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(x[i] == (float)i);
    /* Max(x, s, x) in place with a broadcast scalar */
    float s = 4.5f;
    evo_tensor ts = KT0(EVO_DT_FLOAT32, &s);
    evo_tensor *in3[3] = {&tx, &ts, &tx};
    assert_int_equal(kelem_run("Max", NULL, in3, 3, &to, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(x[i] == ((float)i > 4.5f ? (float)i : 4.5f));
    /* Mean(x, y) in place */
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    evo_tensor *in4[2] = {&tx, &tyv};
    assert_int_equal(kelem_run("Mean", NULL, in4, 2, &to, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(x[i] == ((float)i + 100.0f) / 2.0f);
}

static void test_variadic_bad(void **state)
{
    (void)state;
    evo_error err = {0};
    float f[3];
    int32_t k[3];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 3), tk = KT(EVO_DT_INT32, k, 3), out;
    evo_tensor t2 = KT(EVO_DT_FLOAT32, f, 2);
    kelem_params p;
    memset(&p, 0, sizeof p);
    evo_tensor *mixed[3] = {&tf, &tf, &tk};
    assert_int_equal(kelem_infer(evo_op_find("", "Max"), &p, mixed, 3, &out, &err), EVO_ERR_TYPE);
    assert_non_null(strstr(err.msg, "int32"));
    evo_tensor *shapes[3] = {&tf, &tf, &t2};
    assert_int_equal(kelem_infer(evo_op_find("", "Sum"), &p, shapes, 3, &out, &err), EVO_ERR_SHAPE);
    evo_tensor *ints[2] = {&tk, &tk};
    assert_int_equal(kelem_infer(evo_op_find("", "Sum"), &p, ints, 2, &out, &err),
                     EVO_ERR_UNSUPPORTED);
    evo_tensor *holes[2] = {&tf, NULL};
    assert_int_equal(kelem_infer(evo_op_find("", "Min"), &p, holes, 2, &out, &err), EVO_ERR_GRAPH);
    assert_int_equal(kelem_infer(evo_op_find("", "Min"), &p, holes, 0, &out, &err), EVO_ERR_GRAPH);
}

/* Cast through a graph node with attribute to. */
static evo_status kc_cast(evo_dtype to, evo_tensor *x, evo_tensor *y, evo_error *err)
{
    evo_graph *g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", to);
    evo_tensor *in[1] = {x};
    evo_status rv = kelem_run("Cast", g, in, 1, y, err);
    evo_graph_free(g);
    return rv;
}

static void test_cast_float_to_int(void **state)
{
    (void)state;
    float f[9] = {1.9f, -1.9f, 2.5f, -0.0f, NAN, 3e9f, -3e9f, 2147483520.0f, -2147483648.0f};
    int32_t i[9];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 9), ti = KT(EVO_DT_INT32, i, 9);
    assert_int_equal(kc_cast(EVO_DT_INT32, &tf, &ti, NULL), EVO_OK);
    /* truncation toward zero; NaN -> 0; out of range saturates */
    assert_memory_equal(
        i, ((int32_t[]){1, -1, 2, 0, 0, INT32_MAX, INT32_MIN, 2147483520, INT32_MIN}), sizeof i);
    float g[4] = {-3.7f, 255.9f, 300.0f, 7.99f};
    uint8_t u[4];
    evo_tensor tg = KT(EVO_DT_FLOAT32, g, 4), tu = KT(EVO_DT_UINT8, u, 4);
    assert_int_equal(kc_cast(EVO_DT_UINT8, &tg, &tu, NULL), EVO_OK);
    assert_memory_equal(u, ((uint8_t[]){0, 255, 255, 7}), 4);
    int8_t s[4];
    evo_tensor ts = KT(EVO_DT_INT8, s, 4);
    assert_int_equal(kc_cast(EVO_DT_INT8, &tg, &ts, NULL), EVO_OK);
    assert_memory_equal(s, ((int8_t[]){-3, 127, 127, 7}), 4);
    int64_t l[4];
    evo_tensor tl = KT(EVO_DT_INT64, l, 4);
    assert_int_equal(kc_cast(EVO_DT_INT64, &tg, &tl, NULL), EVO_OK);
    assert_memory_equal(l, ((int64_t[]){-3, 255, 300, 7}), sizeof l);
    float h[4] = {0, -0.0f, 0.1f, NAN};
    uint8_t b[4];
    evo_tensor th = KT(EVO_DT_FLOAT32, h, 4), tb = KT(EVO_DT_BOOL, b, 4);
    assert_int_equal(kc_cast(EVO_DT_BOOL, &th, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((uint8_t[]){0, 0, 1, 1}), 4);
}

static void test_cast_integers_and_bool(void **state)
{
    (void)state;
    int64_t l[4] = {300, -129, 255, -1};
    int8_t s[4];
    uint8_t u[4];
    evo_tensor tl = KT(EVO_DT_INT64, l, 4), ts = KT(EVO_DT_INT8, s, 4), tu = KT(EVO_DT_UINT8, u, 4);
    assert_int_equal(kc_cast(EVO_DT_INT8, &tl, &ts, NULL), EVO_OK);
    assert_memory_equal(s, ((int8_t[]){44, 127, -1, -1}), 4); /* low bits */
    assert_int_equal(kc_cast(EVO_DT_UINT8, &tl, &tu, NULL), EVO_OK);
    assert_memory_equal(u, ((uint8_t[]){44, 127, 255, 255}), 4);
    int32_t i[2] = {16777217, -7};
    float f[2];
    evo_tensor ti = KT(EVO_DT_INT32, i, 2), tf = KT(EVO_DT_FLOAT32, f, 2);
    assert_int_equal(kc_cast(EVO_DT_FLOAT32, &ti, &tf, NULL), EVO_OK);
    assert_true(f[0] == 16777216.0f && f[1] == -7.0f);
    uint8_t b[3] = {0, 1, 5};
    float bf[3];
    int64_t bl[3];
    evo_tensor tb = KT(EVO_DT_BOOL, b, 3), tbf = KT(EVO_DT_FLOAT32, bf, 3);
    evo_tensor tbl = KT(EVO_DT_INT64, bl, 3);
    assert_int_equal(kc_cast(EVO_DT_FLOAT32, &tb, &tbf, NULL), EVO_OK);
    kelem_expect_f32(bf, (float[]){0, 1, 1}, 3, 0);
    assert_int_equal(kc_cast(EVO_DT_INT64, &tb, &tbl, NULL), EVO_OK);
    assert_memory_equal(bl, ((int64_t[]){0, 1, 1}), sizeof bl);
    int32_t z[3] = {0, -4, 9};
    uint8_t zb[3];
    evo_tensor tz = KT(EVO_DT_INT32, z, 3), tzb = KT(EVO_DT_BOOL, zb, 3);
    assert_int_equal(kc_cast(EVO_DT_BOOL, &tz, &tzb, NULL), EVO_OK);
    assert_memory_equal(zb, ((uint8_t[]){0, 1, 1}), 3);
    /* same type, in place: unchanged */
    evo_tensor tz2 = tz;
    assert_int_equal(kc_cast(EVO_DT_INT32, &tz, &tz2, NULL), EVO_OK);
    assert_memory_equal(z, ((int32_t[]){0, -4, 9}), sizeof z);
}

static void test_cast_float16(void **state)
{
    (void)state;
    float f[10] = {1.0f, 0.1f, 65504.0f, 70000.0f, 1e-8f, -2.5f, 6e-8f, -INFINITY, 0.5f, 2049.0f};
    uint16_t h[10];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 10), th = KT(EVO_DT_FLOAT16, h, 10);
    assert_int_equal(kc_cast(EVO_DT_FLOAT16, &tf, &th, NULL), EVO_OK);
    /* 2049 is halfway between 2048 and 2050: ties to even (2048) */
    assert_memory_equal(h,
                        ((uint16_t[]){0x3C00, 0x2E66, 0x7BFF, 0x7C00, 0x0000, 0xC100, 0x0001,
                                      0xFC00, 0x3800, 0x6800}),
                        sizeof h);
    float back[10];
    evo_tensor tb = KT(EVO_DT_FLOAT32, back, 10);
    assert_int_equal(kc_cast(EVO_DT_FLOAT32, &th, &tb, NULL), EVO_OK);
    kelem_expect_f32(back,
                     (float[]){1.0f, 0.0999755859375f, 65504.0f, INFINITY, 0.0f, -2.5f,
                               5.9604644775390625e-08f, -INFINITY, 0.5f, 2048.0f},
                     10, 0);
    int32_t i[10];
    evo_tensor ti = KT(EVO_DT_INT32, i, 10);
    assert_int_equal(kc_cast(EVO_DT_INT32, &th, &ti, NULL), EVO_OK);
    assert_memory_equal(i, ((int32_t[]){1, 0, 65504, INT32_MAX, 0, -2, 0, INT32_MIN, 0, 2048}),
                        sizeof i);
    int64_t l[2] = {3, -70000};
    uint16_t lh[2];
    evo_tensor tl = KT(EVO_DT_INT64, l, 2), tlh = KT(EVO_DT_FLOAT16, lh, 2);
    assert_int_equal(kc_cast(EVO_DT_FLOAT16, &tl, &tlh, NULL), EVO_OK);
    assert_memory_equal(lh, ((uint16_t[]){0x4200, 0xFC00}), sizeof lh);
}

static void test_cast_bad(void **state)
{
    (void)state;
    evo_error err = {0};
    kelem_params p;
    const evo_op_def *cast = evo_op_find("", "Cast");
    evo_graph *g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", EVO_DT_FLOAT64);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "float64"));
    assert_non_null(strstr(err.msg, "n0"));
    evo_graph_free(g);
    g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", EVO_DT_STRING);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
    g = kelem_graph("Cast", 1, 19);
    kelem_attr_int(g, "to", 17); /* float8e4m3fn */
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
    g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", 99);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", 0);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    g = kelem_graph("Cast", 1, 13);
    kelem_attr_float(g, "to", 1.0f);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_ERR_TYPE);
    evo_graph_free(g);
    assert_int_equal(kelem_parse(cast, NULL, &p, &err), EVO_ERR_INVALID_ARG); /* no 'to' */
    /* input of a type evo does not compute with */
    g = kelem_graph("Cast", 1, 13);
    kelem_attr_int(g, "to", EVO_DT_FLOAT32);
    assert_int_equal(kelem_parse(cast, g, &p, &err), EVO_OK);
    evo_graph_free(g);
    double d[1];
    evo_tensor td = KT(EVO_DT_FLOAT64, d, 1), out;
    evo_tensor *in[1] = {&td};
    assert_int_equal(kelem_infer(cast, &p, in, 1, &out, &err), EVO_ERR_UNSUPPORTED);
    /* params that did not come from parse are checked again */
    memset(&p, 0, sizeof p);
    p.bytes[0] = 11;
    float f[1];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 1);
    in[0] = &tf;
    assert_int_equal(kelem_infer(cast, &p, in, 1, &out, &err), EVO_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_variadic_inplace),
        cmocka_unit_test(test_variadic_bad),
        cmocka_unit_test(test_cast_float_to_int),
        cmocka_unit_test(test_cast_integers_and_bool),
        cmocka_unit_test(test_cast_float16),
        cmocka_unit_test(test_cast_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
