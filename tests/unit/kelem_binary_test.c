/* Broadcasting binary ops (node/kernels/ref/binary.c, compare.c, logic.c,
 * prelu.c, where.c): hand-computed values per dtype, the broadcasting shapes
 * [2,3,4]+[4], [2,1,4]+[3,1], scalar and rank 0, in-place runs, integer
 * division by zero, and bad input via infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"
#include "kernels/conv.h"

extern const evo_op_def evo_op_Add;
extern const evo_op_def evo_op_Sub;

static evo_status kb_run2(const char *op, evo_tensor *a, evo_tensor *b, evo_tensor *out,
                          evo_error *err)
{
    evo_tensor *in[2] = {a, b};
    return kelem_run(op, NULL, in, 2, out, err);
}

static void test_add_broadcast_shapes(void **state)
{
    (void)state;
    float a[24], b[4] = {100, 200, 300, 400}, y[24];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i;
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 2, 3, 4), tb = KT(EVO_DT_FLOAT32, b, 4);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 2, 3, 4);
    assert_int_equal(kb_run2("Add", &ta, &tb, &ty, NULL), EVO_OK);
    for (int i = 0; i < 24; i++)
        assert_true(y[i] == (float)i + b[i % 4]);
    /* operands swapped: [4] + [2,3,4] */
    assert_int_equal(kb_run2("Sub", &tb, &ta, &ty, NULL), EVO_OK);
    for (int i = 0; i < 24; i++)
        assert_true(y[i] == b[i % 4] - (float)i);

    /* [2,1,4] + [3,1] -> [2,3,4]: y[n][j][k] = a[n][0][k] + c[j][0] */
    float a2[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c[3] = {10, 20, 30};
    evo_tensor t2 = KT(EVO_DT_FLOAT32, a2, 2, 1, 4), tc = KT(EVO_DT_FLOAT32, c, 3, 1);
    assert_int_equal(kb_run2("Add", &t2, &tc, &ty, NULL), EVO_OK);
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                assert_true(y[(n * 3 + j) * 4 + k] == a2[n * 4 + k] + c[j]);

    /* scalar (rank 0) times [2,3], both orders, and rank 0 with rank 0 */
    float s = 2.5f, m[6] = {1, 2, 3, 4, 5, 6}, z[6];
    evo_tensor ts = KT0(EVO_DT_FLOAT32, &s), tm = KT(EVO_DT_FLOAT32, m, 2, 3);
    evo_tensor tz = KT(EVO_DT_FLOAT32, z, 2, 3);
    assert_int_equal(kb_run2("Mul", &ts, &tm, &tz, NULL), EVO_OK);
    kelem_expect_f32(z, (float[]){2.5f, 5, 7.5f, 10, 12.5f, 15}, 6, 0);
    assert_int_equal(kb_run2("Div", &tm, &ts, &tz, NULL), EVO_OK);
    kelem_expect_f32(z, (float[]){0.4f, 0.8f, 1.2f, 1.6f, 2, 2.4f}, 6, 1e-7f);
    float r;
    evo_tensor tr = KT0(EVO_DT_FLOAT32, &r);
    assert_int_equal(kb_run2("Sub", &ts, &ts, &tr, NULL), EVO_OK);
    assert_true(r == 0.0f);
    /* [1] + [] is [1] */
    float one[1] = {4};
    evo_tensor t1 = KT(EVO_DT_FLOAT32, one, 1);
    tr = KT(EVO_DT_FLOAT32, &r, 1);
    assert_int_equal(kb_run2("Add", &t1, &ts, &tr, NULL), EVO_OK);
    assert_true(r == 6.5f);
    /* an empty dim gives an empty output */
    evo_tensor te = KT(EVO_DT_FLOAT32, m, 0, 3), tze = KT(EVO_DT_FLOAT32, z, 0, 3);
    assert_int_equal(kb_run2("Add", &te, &tm, &tze, NULL), EVO_ERR_SHAPE); /* 0 vs 2 */
    evo_tensor tv = KT(EVO_DT_FLOAT32, m, 3);
    assert_int_equal(kb_run2("Add", &te, &tv, &tze, NULL), EVO_OK);
}

static void test_inplace_aliasing(void **state)
{
    (void)state;
    /* per-channel Mul in place: x[1,3,2,2] *= s[3,1,1] */
    float x[12], s[3] = {2, -1, 0.5f};
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i + 1);
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 1, 3, 2, 2), ts = KT(EVO_DT_FLOAT32, s, 3, 1, 1);
    evo_tensor ty = tx;
    assert_int_equal(kb_run2("Mul", &tx, &ts, &ty, NULL), EVO_OK);
    for (int i = 0; i < 12; i++)
        assert_true(x[i] == (float)(i + 1) * s[i / 4]);
    /* Add(x, x) in place over 19 elements (block + remainder) */
    float v[19];
    for (int i = 0; i < 19; i++)
        v[i] = (float)i;
    evo_tensor tv = KT(EVO_DT_FLOAT32, v, 19), tw = tv;
    assert_int_equal(kb_run2("Add", &tv, &tv, &tw, NULL), EVO_OK);
    for (int i = 0; i < 19; i++)
        assert_true(v[i] == 2.0f * (float)i);
    /* [2,3,4] - [4] in place, int32 */
    int32_t a[24], b[4] = {1, 2, 3, 4};
    for (int i = 0; i < 24; i++)
        a[i] = i * 10;
    evo_tensor ta = KT(EVO_DT_INT32, a, 2, 3, 4), tb = KT(EVO_DT_INT32, b, 4), tc = ta;
    assert_int_equal(kb_run2("Sub", &ta, &tb, &tc, NULL), EVO_OK);
    for (int i = 0; i < 24; i++)
        assert_int_equal(a[i], i * 10 - b[i % 4]);
    /* Equal on bools in place */
    uint8_t p[4] = {0, 1, 0, 1}, q[4] = {0, 0, 1, 1};
    evo_tensor tp = KT(EVO_DT_BOOL, p, 4), tq = KT(EVO_DT_BOOL, q, 4), to = tp;
    assert_int_equal(kb_run2("Equal", &tp, &tq, &to, NULL), EVO_OK);
    assert_memory_equal(p, ((uint8_t[]){1, 0, 0, 1}), 4);
}

/* Add with an activation fused by evo_kconv_fuse_activation (what the fusion
 * pass does): infer, then eval into out. */
static evo_status kb_add_act(const evo_act *act, evo_tensor *a, evo_tensor *b, evo_tensor *out,
                             evo_error *err)
{
    kelem_params p;
    memset(&p, 0, sizeof p);
    if (act != NULL) {
        evo_status rv = evo_kconv_fuse_activation(&evo_op_Add, p.bytes, act);
        if (rv != EVO_OK)
            return rv;
    }
    evo_tensor *in[2] = {a, b};
    evo_tensor inferred;
    evo_status rv = kelem_infer(&evo_op_Add, &p, in, 2, &inferred, err);
    if (rv != EVO_OK)
        return rv;
    assert_int_equal(inferred.dtype, out->dtype);
    assert_true(evo_shape_equal(&inferred.shape, &out->shape));
    evo_tensor *outs[1] = {out};
    evo_kctx c = {.params = p.bytes, .in = in, .n_in = 2, .out = outs, .n_out = 1};
    return evo_op_Add.eval(&c);
}

static void test_add_fused_activation(void **state)
{
    (void)state;
    const evo_act relu = {EVO_ACT_RELU, 0.0f, 0.0f};
    const evo_act relu6 = {EVO_ACT_CLIP, 0.0f, 6.0f};
    /* same shape, 19 elements (two blocks + remainder): a[i] = i - 9, b[i] = 2 - i/2 */
    float a[19], b[19], y[19];
    for (int i = 0; i < 19; i++) {
        a[i] = (float)i - 9.0f;
        b[i] = 2.0f - 0.5f * (float)i;
    }
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 19), tb = KT(EVO_DT_FLOAT32, b, 19);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 19);
    assert_int_equal(kb_add_act(&relu, &ta, &tb, &ty, NULL), EVO_OK);
    /* a + b = 0.5 i - 7: negative up to i = 13, 0 at i = 14, then 0.5 .. 2 */
    const float want_relu[19] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5f, 1, 1.5f, 2};
    kelem_expect_f32(y, want_relu, 19, 0);
    /* Clip(0, 6) of a + b2 with b2[i] = i - 4: 2 i - 13 */
    float b2[19];
    for (int i = 0; i < 19; i++)
        b2[i] = (float)i - 4.0f;
    evo_tensor tb2 = KT(EVO_DT_FLOAT32, b2, 19);
    assert_int_equal(kb_add_act(&relu6, &ta, &tb2, &ty, NULL), EVO_OK);
    const float want_clip[19] = {0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    kelem_expect_f32(y, want_clip, 19, 0);

    /* broadcast [1,2,2,3] + [2,1,1]: per-channel bias, Relu */
    float x[12], s[2] = {-5.0f, 1.0f}, z[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 1, 2, 2, 3), ts = KT(EVO_DT_FLOAT32, s, 2, 1, 1);
    evo_tensor tz = KT(EVO_DT_FLOAT32, z, 1, 2, 2, 3);
    assert_int_equal(kb_add_act(&relu, &tx, &ts, &tz, NULL), EVO_OK);
    kelem_expect_f32(z, (float[]){0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12}, 12, 0);
    /* the scalar operand first: [] + [1,2,2,3] */
    float m = -3.0f;
    evo_tensor tm = KT0(EVO_DT_FLOAT32, &m);
    assert_int_equal(kb_add_act(&relu, &tm, &tx, &tz, NULL), EVO_OK);
    kelem_expect_f32(z, (float[]){0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, 12, 0);

    /* in place: out aliases input 0 (the executor's residual Add), 19 elements */
    float v[19], w[19];
    for (int i = 0; i < 19; i++) {
        v[i] = (float)i - 9.0f;
        w[i] = 2.0f - 0.5f * (float)i;
    }
    evo_tensor tv = KT(EVO_DT_FLOAT32, v, 19), tw = KT(EVO_DT_FLOAT32, w, 19), to = tv;
    assert_int_equal(kb_add_act(&relu, &tv, &tw, &to, NULL), EVO_OK);
    kelem_expect_f32(v, want_relu, 19, 0);
    /* and aliasing input 1 with Clip(0, 6) */
    for (int i = 0; i < 19; i++)
        v[i] = (float)i - 9.0f;
    for (int i = 0; i < 19; i++)
        w[i] = (float)i - 4.0f;
    to = tw;
    assert_int_equal(kb_add_act(&relu6, &tv, &tw, &to, NULL), EVO_OK);
    kelem_expect_f32(w, want_clip, 19, 0);

    /* without an activation Add keeps negative sums */
    assert_int_equal(kb_add_act(NULL, &ta, &tb, &ty, NULL), EVO_OK);
    assert_true(y[0] == -7.0f && y[18] == 2.0f);
}

static void test_add_fused_activation_bad(void **state)
{
    (void)state;
    float a[4] = {1, 2, 3, 4}, y[4];
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 4), ty = KT(EVO_DT_FLOAT32, y, 4);
    evo_tensor *in[2] = {&ta, &ta};
    evo_tensor inferred;
    evo_error err;
    kelem_params p;
    /* params as an untrusted compact model could carry them */
    const int32_t bad_kinds[] = {
        -1, EVO_ACT_LEAKY_RELU, EVO_ACT_SIGMOID, EVO_ACT_HARD_SWISH, EVO_ACT_COUNT_, 1000};
    for (size_t k = 0; k < sizeof bad_kinds / sizeof bad_kinds[0]; k++) {
        memset(&p, 0, sizeof p);
        evo_add_params ap = {{bad_kinds[k], 0.0f, 0.0f}};
        memcpy(p.bytes, &ap, sizeof ap);
        evo_error_clear(&err);
        assert_int_equal(kelem_infer(&evo_op_Add, &p, in, 2, &inferred, &err), EVO_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, "Add"));
    }
    /* a NaN Clip bound */
    memset(&p, 0, sizeof p);
    evo_add_params nanclip = {{EVO_ACT_CLIP, 0.0f, NAN}};
    memcpy(p.bytes, &nanclip, sizeof nanclip);
    assert_int_equal(kelem_infer(&evo_op_Add, &p, in, 2, &inferred, &err), EVO_ERR_INVALID_ARG);
    /* an activation on an integer Add */
    int32_t ia[4] = {1, -2, 3, -4}, iy[4];
    evo_tensor tia = KT(EVO_DT_INT32, ia, 4), tiy = KT(EVO_DT_INT32, iy, 4);
    const evo_act relu = {EVO_ACT_RELU, 0.0f, 0.0f};
    assert_int_equal(kb_add_act(&relu, &tia, &tia, &tiy, &err), EVO_ERR_TYPE);
    /* the fusion entry point refuses what Add cannot run, and a second act */
    const evo_act sig = {EVO_ACT_SIGMOID, 0.0f, 0.0f};
    memset(&p, 0, sizeof p);
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_Add, p.bytes, &sig), EVO_ERR_UNSUPPORTED);
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_Add, p.bytes, &relu), EVO_OK);
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_Add, p.bytes, &relu), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_kconv_fuse_activation(&evo_op_Sub, p.bytes, &relu), EVO_ERR_UNSUPPORTED);
    (void)ty;
}

static void test_integer_arithmetic(void **state)
{
    (void)state;
    int32_t a[7] = {7, -7, 7, -7, 5, INT32_MIN, 0}, b[7] = {2, 2, -2, -2, 0, -1, 0}, y[7];
    evo_tensor ta = KT(EVO_DT_INT32, a, 7), tb = KT(EVO_DT_INT32, b, 7),
               ty = KT(EVO_DT_INT32, y, 7);
    assert_int_equal(kb_run2("Div", &ta, &tb, &ty, NULL), EVO_OK);
    /* truncation toward zero; x / 0 = 0; INT_MIN / -1 wraps */
    assert_memory_equal(y, ((int32_t[]){3, -3, -3, 3, 0, INT32_MIN, 0}), sizeof y);
    assert_int_equal(kb_run2("Add", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int32_t[]){9, -5, 5, -9, 5, INT32_MAX, 0}), sizeof y);

    int8_t c[4] = {127, -128, -128, 100}, d[4] = {1, -1, 0, 3}, e[4];
    evo_tensor tc = KT(EVO_DT_INT8, c, 4), td = KT(EVO_DT_INT8, d, 4), te = KT(EVO_DT_INT8, e, 4);
    assert_int_equal(kb_run2("Add", &tc, &td, &te, NULL), EVO_OK);
    assert_memory_equal(e, ((int8_t[]){-128, 127, -128, 103}), 4);
    assert_int_equal(kb_run2("Div", &tc, &td, &te, NULL), EVO_OK);
    assert_memory_equal(e, ((int8_t[]){127, -128, 0, 33}), 4);
    assert_int_equal(kb_run2("Mul", &tc, &td, &te, NULL), EVO_OK);
    assert_memory_equal(e, ((int8_t[]){127, -128, 0, 44}), 4); /* 300 wraps to 44 */

    uint8_t u[3] = {250, 7, 9}, v[3] = {10, 2, 0}, w[3];
    evo_tensor tu = KT(EVO_DT_UINT8, u, 3), tv = KT(EVO_DT_UINT8, v, 3),
               tw = KT(EVO_DT_UINT8, w, 3);
    assert_int_equal(kb_run2("Add", &tu, &tv, &tw, NULL), EVO_OK);
    assert_memory_equal(w, ((uint8_t[]){4, 9, 9}), 3);
    assert_int_equal(kb_run2("Sub", &tu, &tv, &tw, NULL), EVO_OK);
    assert_memory_equal(w, ((uint8_t[]){240, 5, 9}), 3);
    assert_int_equal(kb_run2("Div", &tu, &tv, &tw, NULL), EVO_OK);
    assert_memory_equal(w, ((uint8_t[]){25, 3, 0}), 3);

    int64_t g[3] = {INT64_MAX, -9, 6}, h = -3, k[3];
    evo_tensor tg = KT(EVO_DT_INT64, g, 3), th = KT0(EVO_DT_INT64, &h), tk = KT(EVO_DT_INT64, k, 3);
    assert_int_equal(kb_run2("Div", &tg, &th, &tk, NULL), EVO_OK);
    assert_memory_equal(k, ((int64_t[]){INT64_MAX / -3, 3, -2}), sizeof k);
    assert_int_equal(kb_run2("Mul", &tg, &th, &tk, NULL), EVO_OK);
    assert_memory_equal(k, ((int64_t[]){(int64_t)((uint64_t)INT64_MAX * (uint64_t)-3), 27, -18}),
                        sizeof k);
}

static void test_pow(void **state)
{
    (void)state;
    float a[4] = {2, 3, -2, 4}, b[4] = {3, 2, 2, 0.5f}, y[10];
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 4), tb = KT(EVO_DT_FLOAT32, b, 4);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 4);
    assert_int_equal(kb_run2("Pow", &ta, &tb, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){8, 9, 4, 2}, 4, 1e-7f);
    /* scalar exponent 2 (the squaring path) and 3, over 10 elements */
    float x[10], two = 2.0f, three = 3.0f;
    for (int i = 0; i < 10; i++)
        x[i] = (float)i - 4.5f;
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 10), t2 = KT0(EVO_DT_FLOAT32, &two);
    ty = KT(EVO_DT_FLOAT32, y, 10);
    assert_int_equal(kb_run2("Pow", &tx, &t2, &ty, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(y[i] == x[i] * x[i]);
    evo_tensor t3 = KT(EVO_DT_FLOAT32, &three, 1);
    assert_int_equal(kb_run2("Pow", &tx, &t3, &ty, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_true(fabsf(y[i] - x[i] * x[i] * x[i]) <= 1e-6f * fabsf(y[i]));
    /* float base, int64 exponent */
    int64_t e[2] = {-1, 10};
    evo_tensor te = KT(EVO_DT_INT64, e, 2), t22 = KT(EVO_DT_FLOAT32, a, 2);
    ty = KT(EVO_DT_FLOAT32, y, 2);
    assert_int_equal(kb_run2("Pow", &t22, &te, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0.5f, 59049}, 2, 0);
    /* int32 ^ int32: wraps, negative exponents truncate */
    int32_t ib[7] = {2, 3, -2, 1, -1, 0, 2}, ie[7] = {10, 3, 3, -2, -3, -1, 31}, iy[7];
    evo_tensor tib = KT(EVO_DT_INT32, ib, 7), tie = KT(EVO_DT_INT32, ie, 7);
    evo_tensor tiy = KT(EVO_DT_INT32, iy, 7);
    assert_int_equal(kb_run2("Pow", &tib, &tie, &tiy, NULL), EVO_OK);
    assert_memory_equal(iy, ((int32_t[]){1024, 27, -8, 1, -1, 0, INT32_MIN}), sizeof iy);
    /* int64 ^ float32: truncated, saturated */
    int64_t lb[3] = {4, 2, 10}, ly[3];
    float fe[3] = {0.5f, 70.0f, -1.0f};
    evo_tensor tlb = KT(EVO_DT_INT64, lb, 3), tfe = KT(EVO_DT_FLOAT32, fe, 3);
    evo_tensor tly = KT(EVO_DT_INT64, ly, 3);
    assert_int_equal(kb_run2("Pow", &tlb, &tfe, &tly, NULL), EVO_OK);
    assert_memory_equal(ly, ((int64_t[]){2, INT64_MAX, 0}), sizeof ly);
}

static void test_compare_and_logic(void **state)
{
    (void)state;
    float a[4] = {1, 2, NAN, 3}, b[4] = {1, 3, NAN, 2};
    uint8_t y[6];
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 4), tb = KT(EVO_DT_FLOAT32, b, 4);
    evo_tensor ty = KT(EVO_DT_BOOL, y, 4);
    assert_int_equal(kb_run2("Equal", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 0, 0, 0}), 4);
    assert_int_equal(kb_run2("Greater", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 0, 0, 1}), 4);
    assert_int_equal(kb_run2("Less", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 0}), 4);
    assert_int_equal(kb_run2("GreaterOrEqual", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 0, 0, 1}), 4);
    assert_int_equal(kb_run2("LessOrEqual", &ta, &tb, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 1, 0, 0}), 4);
    /* int64 [2,3] > [3] */
    int64_t m[6] = {1, 5, 9, -1, 5, 10}, v[3] = {0, 5, 9};
    evo_tensor tm = KT(EVO_DT_INT64, m, 2, 3), tv = KT(EVO_DT_INT64, v, 3);
    ty = KT(EVO_DT_BOOL, y, 2, 3);
    assert_int_equal(kb_run2("Greater", &tm, &tv, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 0, 0, 0, 0, 1}), 6);
    /* uint8 and int8 order */
    uint8_t u[2] = {200, 1}, w[2] = {100, 2};
    evo_tensor tu = KT(EVO_DT_UINT8, u, 2), tw = KT(EVO_DT_UINT8, w, 2);
    ty = KT(EVO_DT_BOOL, y, 2);
    assert_int_equal(kb_run2("Less", &tu, &tw, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1}), 2);
    int8_t s[2] = {-100, 1}, t[2] = {100, 1};
    evo_tensor ts = KT(EVO_DT_INT8, s, 2), tt = KT(EVO_DT_INT8, t, 2);
    assert_int_equal(kb_run2("LessOrEqual", &ts, &tt, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 1}), 2);
    /* bools: Equal, And, Or with [2,2] and [2] */
    uint8_t p[4] = {0, 1, 0, 1}, q[2] = {0, 1};
    evo_tensor tp = KT(EVO_DT_BOOL, p, 2, 2), tq = KT(EVO_DT_BOOL, q, 2);
    ty = KT(EVO_DT_BOOL, y, 2, 2);
    assert_int_equal(kb_run2("And", &tp, &tq, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 1}), 4);
    assert_int_equal(kb_run2("Or", &tp, &tq, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 1}), 4);
    uint8_t p2[4] = {1, 1, 0, 0};
    evo_tensor tp2 = KT(EVO_DT_BOOL, p2, 2, 2);
    assert_int_equal(kb_run2("Or", &tp2, &tq, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 1, 0, 1}), 4);
    assert_int_equal(kb_run2("And", &tp2, &tq, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 0}), 4);
    assert_int_equal(kb_run2("Equal", &tp2, &tq, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 1, 0}), 4);
}

static void test_prelu(void **state)
{
    (void)state;
    float x[8] = {-1, 2, -3, 4, -1, 2, -3, 4}, s[2] = {0.5f, -2}, y[8];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 1, 2, 2, 2), ts = KT(EVO_DT_FLOAT32, s, 2, 1, 1);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 1, 2, 2, 2);
    assert_int_equal(kb_run2("PRelu", &tx, &ts, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-0.5f, 2, -1.5f, 4, 2, 2, 6, 4}, 8, 0);
    ty = tx; /* in place */
    assert_int_equal(kb_run2("PRelu", &tx, &ts, &ty, NULL), EVO_OK);
    kelem_expect_f32(x, (float[]){-0.5f, 2, -1.5f, 4, 2, 2, 6, 4}, 8, 0);
    int32_t xi[3] = {-4, 0, 4}, si = 3, yi[3];
    evo_tensor txi = KT(EVO_DT_INT32, xi, 3), tsi = KT0(EVO_DT_INT32, &si);
    evo_tensor tyi = KT(EVO_DT_INT32, yi, 3);
    assert_int_equal(kb_run2("PRelu", &txi, &tsi, &tyi, NULL), EVO_OK);
    assert_memory_equal(yi, ((int32_t[]){-12, 0, 4}), sizeof yi);
    /* slope must broadcast to X unidirectionally */
    evo_error err = {0};
    float big[4];
    evo_tensor tbig = KT(EVO_DT_FLOAT32, big, 2, 2), tsmall = KT(EVO_DT_FLOAT32, s, 2);
    evo_tensor out = KT(EVO_DT_FLOAT32, y, 2);
    assert_int_equal(kb_run2("PRelu", &tsmall, &tbig, &out, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "[2,2]"));
    evo_tensor t3 = KT(EVO_DT_FLOAT32, big, 3);
    assert_int_equal(kb_run2("PRelu", &tbig, &t3, &out, &err), EVO_ERR_SHAPE);
}

static void test_where(void **state)
{
    (void)state;
    /* cond [2,1], X [2,2], Y scalar */
    uint8_t c[2] = {1, 0};
    float x[4] = {1, 2, 3, 4}, ys = -1, y[4];
    evo_tensor tc = KT(EVO_DT_BOOL, c, 2, 1), tx = KT(EVO_DT_FLOAT32, x, 2, 2);
    evo_tensor tys = KT0(EVO_DT_FLOAT32, &ys), ty = KT(EVO_DT_FLOAT32, y, 2, 2);
    evo_tensor *in[3] = {&tc, &tx, &tys};
    assert_int_equal(kelem_run("Where", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 2, -1, -1}, 4, 0);
    /* all dense, int64, 10 elements */
    uint8_t c2[10] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 0};
    int64_t a[10], b[10], o[10];
    for (int i = 0; i < 10; i++) {
        a[i] = i;
        b[i] = -i;
    }
    evo_tensor tc2 = KT(EVO_DT_BOOL, c2, 10), ta = KT(EVO_DT_INT64, a, 10);
    evo_tensor tb = KT(EVO_DT_INT64, b, 10), to = KT(EVO_DT_INT64, o, 10);
    evo_tensor *in2[3] = {&tc2, &ta, &tb};
    assert_int_equal(kelem_run("Where", NULL, in2, 3, &to, NULL), EVO_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(o[i], c2[i] ? i : -i);
    /* float16 (moved by size) with cond [3] against X [2,3] and Y [2,1] */
    uint8_t c3[3] = {0, 1, 0};
    uint16_t hx[6] = {1, 2, 3, 4, 5, 6}, hy[2] = {70, 80}, ho[6];
    evo_tensor tc3 = KT(EVO_DT_BOOL, c3, 3), thx = KT(EVO_DT_FLOAT16, hx, 2, 3);
    evo_tensor thy = KT(EVO_DT_FLOAT16, hy, 2, 1), tho = KT(EVO_DT_FLOAT16, ho, 2, 3);
    evo_tensor *in3[3] = {&tc3, &thx, &thy};
    assert_int_equal(kelem_run("Where", NULL, in3, 3, &tho, NULL), EVO_OK);
    assert_memory_equal(ho, ((uint16_t[]){70, 2, 70, 80, 5, 80}), sizeof ho);
    /* bool values in place (output aliases the condition) */
    uint8_t bc[3] = {1, 0, 1}, bx[3] = {0, 0, 0}, by[3] = {1, 1, 0};
    evo_tensor tbc = KT(EVO_DT_BOOL, bc, 3), tbx = KT(EVO_DT_BOOL, bx, 3);
    evo_tensor tby = KT(EVO_DT_BOOL, by, 3), tbo = tbc;
    evo_tensor *in4[3] = {&tbc, &tbx, &tby};
    assert_int_equal(kelem_run("Where", NULL, in4, 3, &tbo, NULL), EVO_OK);
    assert_memory_equal(bc, ((uint8_t[]){0, 1, 0}), 3);
    /* bad: float condition, mismatched X/Y, unbroadcastable */
    evo_error err = {0};
    evo_tensor *bad1[3] = {&tx, &tx, &tx};
    assert_int_equal(kelem_run("Where", NULL, bad1, 3, &ty, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Where"));
    evo_tensor *bad2[3] = {&tc, &tx, &ta};
    assert_int_equal(kelem_run("Where", NULL, bad2, 3, &ty, &err), EVO_ERR_TYPE);
    evo_tensor *bad3[3] = {&tc2, &tx, &tx};
    assert_int_equal(kelem_run("Where", NULL, bad3, 3, &ty, &err), EVO_ERR_SHAPE);
}

static void test_bad_input(void **state)
{
    (void)state;
    evo_error err = {0};
    float f[6];
    int64_t l[6];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 2, 3), tl = KT(EVO_DT_INT64, l, 2, 3), out;
    kelem_params p;
    memset(&p, 0, sizeof p);
    const evo_op_def *add = evo_op_find("", "Add");
    evo_tensor *in[2] = {&tf, &tl};
    assert_int_equal(kelem_infer(add, &p, in, 2, &out, &err), EVO_ERR_TYPE);
    assert_non_null(strstr(err.msg, "Add"));
    assert_non_null(strstr(err.msg, "float32"));
    assert_non_null(strstr(err.msg, "int64"));
    evo_tensor tv = KT(EVO_DT_FLOAT32, f, 4);
    in[1] = &tv;
    assert_int_equal(kelem_infer(add, &p, in, 2, &out, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "[2,3]"));
    assert_non_null(strstr(err.msg, "[4]"));
    /* unsupported dtype (bool arithmetic, float16 compute) */
    uint8_t b[6];
    evo_tensor tb = KT(EVO_DT_BOOL, b, 2, 3);
    in[0] = in[1] = &tb;
    assert_int_equal(kelem_infer(add, &p, in, 2, &out, &err), EVO_ERR_UNSUPPORTED);
    evo_tensor th = KT(EVO_DT_FLOAT16, b, 3);
    in[0] = in[1] = &th;
    assert_int_equal(kelem_infer(evo_op_find("", "Mul"), &p, in, 2, &out, &err),
                     EVO_ERR_UNSUPPORTED);
    /* double is not something evo computes with */
    evo_tensor td = KT(EVO_DT_FLOAT64, l, 3);
    in[0] = in[1] = &td;
    assert_int_equal(kelem_infer(add, &p, in, 2, &out, &err), EVO_ERR_UNSUPPORTED);
    /* And on floats; Greater on bools; Pow with a uint8 base */
    in[0] = in[1] = &tf;
    assert_int_equal(kelem_infer(evo_op_find("", "And"), &p, in, 2, &out, &err),
                     EVO_ERR_UNSUPPORTED);
    in[0] = in[1] = &tb;
    assert_int_equal(kelem_infer(evo_op_find("", "Greater"), &p, in, 2, &out, &err),
                     EVO_ERR_UNSUPPORTED);
    evo_tensor tu = KT(EVO_DT_UINT8, b, 2, 3);
    in[0] = &tu;
    in[1] = &tf;
    assert_int_equal(kelem_infer(evo_op_find("", "Pow"), &p, in, 2, &out, &err),
                     EVO_ERR_UNSUPPORTED);
    /* arity */
    assert_int_equal(kelem_infer(add, &p, in, 1, &out, &err), EVO_ERR_GRAPH);
    /* rank above the limit after broadcasting is caught as a shape error */
    evo_tensor big = tf;
    big.shape.rank = EVO_MAX_RANK + 1;
    in[0] = &big;
    in[1] = &tf;
    assert_int_equal(kelem_infer(add, &p, in, 2, &out, &err), EVO_ERR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_broadcast_shapes),
        cmocka_unit_test(test_inplace_aliasing),
        cmocka_unit_test(test_add_fused_activation),
        cmocka_unit_test(test_add_fused_activation_bad),
        cmocka_unit_test(test_integer_arithmetic),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_compare_and_logic),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
