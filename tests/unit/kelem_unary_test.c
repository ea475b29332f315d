/* Unary element-wise ops and activations (node/kernels/ref/unary.c,
 * activation.c, logic.c Not): values against independently computed
 * references (Python's math module in double precision), each also run in
 * place (output aliasing the input) and over 37 elements so both the block
 * loop and the remainder loop are covered; plus bad input via infer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

#define KU_N 9
#define KU_LONG 37
static const float ku_x[KU_N] = {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f, 4.0f, -10.0f};

/* Run op on ku_x (repeated to KU_LONG elements, shape [37]) out of place and
 * in place; compare both to want (repeated likewise). */
static void ku_check(const char *op, evo_graph *g, const float *want, float tol)
{
    float x[KU_LONG], w[KU_LONG], y[KU_LONG], inplace[KU_LONG];
    for (int i = 0; i < KU_LONG; i++) {
        x[i] = inplace[i] = ku_x[i % KU_N];
        w[i] = want[i % KU_N];
    }
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, KU_LONG), ty = KT(EVO_DT_FLOAT32, y, KU_LONG);
    evo_tensor *in[1] = {&tx};
    evo_error err = {0};
    assert_int_equal(kelem_run(op, g, in, 1, &ty, &err), EVO_OK);
    kelem_expect_f32(y, w, KU_LONG, tol);
    evo_tensor ta = KT(EVO_DT_FLOAT32, inplace, KU_LONG), tb = ta;
    evo_tensor *in2[1] = {&ta};
    assert_int_equal(kelem_run(op, g, in2, 1, &tb, &err), EVO_OK);
    kelem_expect_f32(inplace, w, KU_LONG, tol);
    if (g != NULL)
        evo_graph_free(g);
}

static void test_relu_family(void **state)
{
    (void)state;
    ku_check("Relu", NULL, (float[]){0, 0, 0, 0, 0.5f, 1, 2, 4, 0}, 0);
    evo_graph *g = kelem_graph("LeakyRelu", 1, 16);
    kelem_attr_float(g, "alpha", 0.1f);
    ku_check("LeakyRelu", g, (float[]){-0.3f, -0.1f, -0.05f, 0, 0.5f, 1, 2, 4, -1.0f}, 1e-7f);
    /* default alpha 0.01 */
    ku_check("LeakyRelu", NULL, (float[]){-0.03f, -0.01f, -0.005f, 0, 0.5f, 1, 2, 4, -0.1f}, 1e-7f);
    ku_check("Elu", NULL,
             (float[]){-0.950212932f, -0.632120559f, -0.39346934f, 0, 0.5f, 1, 2, 4, -0.9999546f},
             1e-6f);
    g = kelem_graph("Elu", 1, 6);
    kelem_attr_float(g, "alpha", 2.0f);
    ku_check("Elu", g,
             (float[]){-1.900425864f, -1.264241118f, -0.78693868f, 0, 0.5f, 1, 2, 4, -1.9999092f},
             1e-6f);
    ku_check("Selu", NULL,
             (float[]){-1.67056873f, -1.11133074f, -0.69175819f, 0, 0.525350511f, 1.05070102f,
                       2.10140204f, 4.20280409f, -1.75801953f},
             1e-6f);
}

static void test_relu_integer_and_nan(void **state)
{
    (void)state;
    int32_t a[5] = {-5, 0, 7, INT32_MIN, INT32_MAX}, b[5];
    evo_tensor ta = KT(EVO_DT_INT32, a, 5), tb = KT(EVO_DT_INT32, b, 5);
    evo_tensor *in[1] = {&ta};
    assert_int_equal(kelem_run("Relu", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((int32_t[]){0, 0, 7, 0, INT32_MAX}), sizeof b);
    int8_t c[3] = {-128, 3, 127}, d[3];
    evo_tensor tc = KT(EVO_DT_INT8, c, 3), td = KT(EVO_DT_INT8, d, 3);
    in[0] = &tc;
    assert_int_equal(kelem_run("Relu", NULL, in, 1, &td, NULL), EVO_OK);
    assert_memory_equal(d, ((int8_t[]){0, 3, 127}), sizeof d);
    float f[2] = {NAN, -INFINITY}, o[2];
    evo_tensor tf = KT(EVO_DT_FLOAT32, f, 2), to = KT(EVO_DT_FLOAT32, o, 2);
    in[0] = &tf;
    assert_int_equal(kelem_run("Relu", NULL, in, 1, &to, NULL), EVO_OK);
    assert_true(isnan(o[0]));
    assert_true(o[1] == 0.0f);
}

static void test_sigmoids(void **state)
{
    (void)state;
    ku_check("Sigmoid", NULL,
             (float[]){0.0474258732f, 0.268941421f, 0.377540669f, 0.5f, 0.622459331f, 0.731058579f,
                       0.880797078f, 0.98201379f, 4.53978687e-05f},
             2e-6f);
    evo_graph *g = kelem_graph("HardSigmoid", 1, 6);
    kelem_attr_float(g, "alpha", 0.5f);
    kelem_attr_float(g, "beta", 0.25f);
    ku_check("HardSigmoid", g, (float[]){0, 0, 0, 0.25f, 0.5f, 0.75f, 1, 1, 0}, 1e-7f);
    /* defaults 0.2, 0.5 */
    ku_check("HardSigmoid", NULL, (float[]){0, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.9f, 1, 0}, 1e-7f);
    ku_check("HardSwish", NULL,
             (float[]){0, -0.333333333f, -0.208333333f, 0, 0.291666667f, 0.666666667f, 1.66666667f,
                       4, 0},
             1e-6f);
}

static void test_tanh_gelu_soft(void **state)
{
    (void)state;
    ku_check("Tanh", NULL,
             (float[]){-0.995054754f, -0.761594156f, -0.462117157f, 0, 0.462117157f, 0.761594156f,
                       0.96402758f, 0.9993293f, -1.0f},
             1e-6f);
    ku_check("Gelu", NULL,
             (float[]){-0.00404969409f, -0.158655254f, -0.154268769f, 0, 0.345731231f, 0.841344746f,
                       1.95449974f, 3.99987332f, 0},
             1e-6f);
    evo_graph *g = kelem_graph("Gelu", 1, 20);
    kelem_attr_string(g, "approximate", "tanh");
    ku_check("Gelu", g,
             (float[]){-0.00363739208f, -0.158808009f, -0.15428599f, 0, 0.34571401f, 0.841191991f,
                       1.95459769f, 3.99992975f, 0},
             1e-6f);
    ku_check("Softplus", NULL,
             (float[]){0.0485873516f, 0.313261688f, 0.474076984f, 0.693147181f, 0.974076984f,
                       1.31326169f, 2.12692801f, 4.01814993f, 4.53988992e-05f},
             1e-6f);
    ku_check("Softsign", NULL,
             (float[]){-0.75f, -0.5f, -0.333333333f, 0, 0.333333333f, 0.5f, 0.666666667f, 0.8f,
                       -0.909090909f},
             1e-7f);
}

static void test_math(void **state)
{
    (void)state;
    ku_check("Exp", NULL,
             (float[]){0.0497870684f, 0.367879441f, 0.60653066f, 1, 1.64872127f, 2.71828183f,
                       7.3890561f, 54.59815f, 4.53999298e-05f},
             1e-6f);
    ku_check("Erf", NULL,
             (float[]){-0.99997791f, -0.842700793f, -0.520499878f, 0, 0.520499878f, 0.842700793f,
                       0.995322265f, 0.999999985f, -1},
             1e-6f);
    ku_check("Sin", NULL,
             (float[]){-0.141120008f, -0.841470985f, -0.479425539f, 0, 0.479425539f, 0.841470985f,
                       0.909297427f, -0.756802495f, 0.544021111f},
             1e-6f);
    ku_check("Cos", NULL,
             (float[]){-0.989992497f, 0.540302306f, 0.877582562f, 1, 0.877582562f, 0.540302306f,
                       -0.416146837f, -0.653643621f, -0.839071529f},
             1e-6f);
    ku_check("Sqrt", NULL, (float[]){NAN, NAN, NAN, 0, 0.707106781f, 1, 1.41421356f, 2, NAN},
             1e-7f);
    ku_check("Log", NULL,
             (float[]){NAN, NAN, NAN, -INFINITY, -0.693147181f, 0, 0.693147181f, 1.38629436f, NAN},
             1e-7f);
    ku_check("Reciprocal", NULL,
             (float[]){-0.333333333f, -1, -2, INFINITY, 2, 1, 0.5f, 0.25f, -0.1f}, 1e-7f);
    ku_check("Floor", NULL, (float[]){-3, -1, -1, 0, 0, 1, 2, 4, -10}, 0);
    ku_check("Ceil", NULL, (float[]){-3, -1, -0.0f, 0, 1, 1, 2, 4, -10}, 0);
    ku_check("Abs", NULL, (float[]){3, 1, 0.5f, 0, 0.5f, 1, 2, 4, 10}, 0);
    ku_check("Neg", NULL, (float[]){3, 1, 0.5f, -0.0f, -0.5f, -1, -2, -4, 10}, 0);
    ku_check("Sign", NULL, (float[]){-1, -1, -1, 0, 1, 1, 1, 1, -1}, 0);
}

static void test_integer_abs_neg_sign(void **state)
{
    (void)state;
    int64_t a[4] = {-5, 0, 9, INT64_MIN}, b[4];
    evo_tensor ta = KT(EVO_DT_INT64, a, 2, 2), tb = KT(EVO_DT_INT64, b, 2, 2);
    evo_tensor *in[1] = {&ta};
    assert_int_equal(kelem_run("Abs", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((int64_t[]){5, 0, 9, INT64_MIN}), sizeof b); /* wraps */
    assert_int_equal(kelem_run("Neg", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((int64_t[]){5, 0, -9, INT64_MIN}), sizeof b);
    assert_int_equal(kelem_run("Sign", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((int64_t[]){-1, 0, 1, -1}), sizeof b);

    int8_t c[3] = {-128, -7, 100}, d[3];
    evo_tensor tc = KT0(EVO_DT_INT8, c), td = KT0(EVO_DT_INT8, d); /* rank 0: one element */
    in[0] = &tc;
    assert_int_equal(kelem_run("Neg", NULL, in, 1, &td, NULL), EVO_OK);
    assert_int_equal(d[0], -128);
    tc = KT(EVO_DT_INT8, c, 3);
    td = KT(EVO_DT_INT8, d, 3);
    assert_int_equal(kelem_run("Abs", NULL, in, 1, &td, NULL), EVO_OK);
    assert_memory_equal(d, ((int8_t[]){-128, 7, 100}), sizeof d);

    int32_t e[3] = {-3, 0, 3}, f[3];
    evo_tensor te = KT(EVO_DT_INT32, e, 3), tf = KT(EVO_DT_INT32, f, 3);
    in[0] = &te;
    assert_int_equal(kelem_run("Sign", NULL, in, 1, &tf, NULL), EVO_OK);
    assert_memory_equal(f, ((int32_t[]){-1, 0, 1}), sizeof f);
}

static void test_not(void **state)
{
    (void)state;
    uint8_t a[10] = {0, 1, 0, 0, 1, 1, 1, 0, 1, 2}, b[10];
    evo_tensor ta = KT(EVO_DT_BOOL, a, 10), tb = KT(EVO_DT_BOOL, b, 10);
    evo_tensor *in[1] = {&ta};
    assert_int_equal(kelem_run("Not", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(b, ((uint8_t[]){1, 0, 1, 1, 0, 0, 0, 1, 0, 0}), sizeof b);
    tb = ta; /* in place */
    assert_int_equal(kelem_run("Not", NULL, in, 1, &tb, NULL), EVO_OK);
    assert_memory_equal(a, ((uint8_t[]){1, 0, 1, 1, 0, 0, 0, 1, 0, 0}), sizeof a);
}

static void test_bad_input(void **state)
{
    (void)state;
    evo_error err = {0};
    int64_t a[2] = {1, 2};
    float f[2] = {1, 2};
    evo_tensor ti = KT(EVO_DT_INT64, a, 2), tf = KT(EVO_DT_FLOAT32, f, 2), out;
    evo_tensor *in[1] = {&ti};
    kelem_params p;
    /* float-only op on int64 */
    const evo_op_def *sig = evo_op_find("", "Sigmoid");
    assert_int_equal(kelem_parse(sig, NULL, &p, &err), EVO_OK);
    assert_int_equal(kelem_infer(sig, &p, in, 1, &out, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Sigmoid"));
    assert_non_null(strstr(err.msg, "int64"));
    assert_non_null(strstr(err.msg, "float32"));
    /* Neg is for signed types only */
    uint8_t u[1] = {1};
    evo_tensor tu = KT(EVO_DT_UINT8, u, 1);
    in[0] = &tu;
    const evo_op_def *neg = evo_op_find("", "Neg");
    assert_int_equal(kelem_infer(neg, &p, in, 1, &out, &err), EVO_ERR_UNSUPPORTED);
    /* Not wants bool */
    in[0] = &tf;
    const evo_op_def *not_op = evo_op_find("", "Not");
    assert_int_equal(kelem_infer(not_op, &p, in, 1, &out, &err), EVO_ERR_UNSUPPORTED);
    /* arity */
    evo_tensor *two[2] = {&tf, &tf};
    assert_int_equal(kelem_infer(sig, &p, two, 2, &out, &err), EVO_ERR_GRAPH);
    /* missing input */
    evo_tensor *none[1] = {NULL};
    assert_int_equal(kelem_infer(sig, &p, none, 1, &out, &err), EVO_ERR_GRAPH);
    /* invalid shape */
    evo_tensor bad = tf;
    bad.shape.rank = EVO_MAX_RANK + 1;
    in[0] = &bad;
    assert_int_equal(kelem_infer(sig, &p, in, 1, &out, &err), EVO_ERR_SHAPE);
    bad = tf;
    bad.shape.dims[0] = -1;
    assert_int_equal(kelem_infer(sig, &p, in, 1, &out, &err), EVO_ERR_SHAPE);
    /* bad attributes */
    evo_graph *g = kelem_graph("Gelu", 1, 20);
    kelem_attr_string(g, "approximate", "fast");
    assert_int_equal(kelem_parse(evo_op_find("", "Gelu"), g, &p, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "fast"));
    evo_graph_free(g);
    g = kelem_graph("LeakyRelu", 1, 16);
    kelem_attr_string(g, "alpha", "x");
    assert_int_equal(kelem_parse(evo_op_find("", "LeakyRelu"), g, &p, &err), EVO_ERR_TYPE);
    evo_graph_free(g);
}

static void test_cost_and_flags(void **state)
{
    (void)state;
    float f[6];
    evo_tensor t = KT(EVO_DT_FLOAT32, f, 2, 3);
    evo_tensor *io[1] = {&t};
    evo_kctx c = {.in = io, .n_in = 1, .out = io, .n_out = 1};
    evo_op_cost cost = {0};
    evo_op_find("", "Relu")->cost(&c, &cost);
    assert_int_equal(cost.flops, 6);
    evo_op_find("", "Exp")->cost(&c, &cost);
    assert_true(cost.flops >= 6 * 4);
    const char *ops[] = {"Relu", "Sigmoid", "Tanh", "Abs", "Not", "Gelu", "Sqrt"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        assert_true(evo_op_find("", ops[i])->flags & EVO_OP_INPLACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_family),
        cmocka_unit_test(test_relu_integer_and_nan),
        cmocka_unit_test(test_sigmoids),
        cmocka_unit_test(test_tanh_gelu_soft),
        cmocka_unit_test(test_math),
        cmocka_unit_test(test_integer_abs_neg_sign),
        cmocka_unit_test(test_not),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_cost_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
