/*
 * Each graph pass on hand-built graphs: what it rewrites (node counts,
 * fused activation in params, names of graph outputs kept), that the
 * optimized graph computes what the original does, hand-computed values,
 * and the cases where a pass must not fire (several consumers, graph
 * outputs, non-constant parameters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kernels/conv.h"
#include "pass_build.h"
#include "pass_testutil.h"

typedef evo_graph *(*pg_builder)(void);

/* Deterministic input data for every graph input. */
static int pg_feeds(const evo_graph *g, ptu_tensor *feeds)
{
    for (int32_t k = 0; k < g->n_inputs; k++) {
        const evo_value *v = &g->values[g->inputs[k]];
        ptu_tensor *t = &feeds[k];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", v->name);
        t->t.dtype = v->t.dtype;
        t->t.shape = v->t.shape;
        assert_int_equal(evo_shape_nbytes(&v->t.shape, v->t.dtype, &t->nbytes), EVO_OK);
        float *d = malloc(t->nbytes + 1);
        for (size_t i = 0; i < t->nbytes / sizeof(float); i++)
            d[i] = (float)((int)((i * 7919 + (size_t)k * 31) % 23) - 11) * 0.37f;
        t->t.data = d;
    }
    return g->n_inputs;
}

/* Build the graph twice, optimize one, and compare all outputs. Returns the
 * optimized graph (caller frees) and the report. */
static evo_graph *pg_check(pg_builder build, const evo_optimize_options *opt,
                           evo_optimize_report *rep)
{
    evo_graph *g0 = build(), *g1 = build();
    evo_error err = {0};
    if (evo_graph_optimize(g1, opt, rep, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    ptu_tensor feeds[8];
    int nf = pg_feeds(g0, feeds);
    ptu_tensor *o0 = NULL, *o1 = NULL;
    assert_int_equal(ptu_run(g0, feeds, nf, &o0, NULL), EVO_OK);
    assert_int_equal(ptu_run(g1, feeds, nf, &o1, NULL), EVO_OK);
    assert_int_equal(g0->n_outputs, g1->n_outputs);
    for (int32_t k = 0; k < g0->n_outputs; k++) {
        assert_string_equal(o0[k].name, o1[k].name); /* graph output names are stable */
        assert_true(ptu_close(&o1[k], &o0[k], 1e-4, 1e-5));
    }
    ptu_free_outs(o0, g0->n_outputs);
    ptu_free_outs(o1, g1->n_outputs);
    for (int i = 0; i < nf; i++)
        ptu_tensor_free(&feeds[i]);
    evo_graph_free(g0);
    return g1;
}

static const evo_conv_params *pg_conv(const evo_graph *g, const char *op)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].op_type, op) == 0)
            return (const evo_conv_params *)(const void *)g->nodes[i].params;
    fail_msg("no %s node", op);
    return NULL;
}

static const evo_gemm_params *pg_gemm(const evo_graph *g)
{
    return (const evo_gemm_params *)(const void *)pg_conv(g, "Gemm");
}

/* ---------------------------------------------------------------- BatchNormalization */

static void pg_bn_consts(evo_graph *g, int32_t c, const char *prefix)
{
    char n[64];
    float scale[8], bias[8], mean[8], var[8];
    for (int i = 0; i < c; i++) {
        scale[i] = 0.5f + 0.25f * (float)i;
        bias[i] = -0.2f + 0.1f * (float)i;
        mean[i] = 0.05f * (float)i - 0.1f;
        var[i] = 0.3f + 0.2f * (float)i;
    }
    int32_t d[1] = {c};
    snprintf(n, sizeof n, "%s_scale", prefix);
    pb_const(g, n, 1, d, scale);
    snprintf(n, sizeof n, "%s_bias", prefix);
    pb_const(g, n, 1, d, bias);
    snprintf(n, sizeof n, "%s_mean", prefix);
    pb_const(g, n, 1, d, mean);
    snprintf(n, sizeof n, "%s_var", prefix);
    pb_const(g, n, 1, d, var);
}

/* x[1,2,5,5] -> Conv(w[3,2,3,3], b[3], pads 1) -> BN -> y */
static evo_graph *pg_conv_bn(bool with_bias)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 5, 5});
    pb_const(g, "w", 4, (int32_t[]){3, 2, 3, 3}, NULL);
    pb_const(g, "b", 1, (int32_t[]){3}, (float[]){0.5f, -1.0f, 2.0f});
    pg_bn_consts(g, 3, "bn");
    const char *ci[] = {"x", "w", "b"};
    int32_t conv = pb_node(g, "Conv", "conv", ci, with_bias ? 3 : 2, (const char *[]){"c"}, 1);
    pb_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    int32_t bn = pb_node(g, "BatchNormalization", "bn",
                         (const char *[]){"c", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, 5,
                         (const char *[]){"y"}, 1);
    pb_attr_f(g, bn, "epsilon", 1e-3f);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static evo_graph *pg_conv_bn_bias(void)
{
    return pg_conv_bn(true);
}

static evo_graph *pg_conv_bn_nobias(void)
{
    return pg_conv_bn(false);
}

static void test_bn_conv(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_conv_bn_bias, NULL, &rep);
    assert_int_equal(rep.batchnorms_folded, 1);
    assert_int_equal(g->n_nodes, 1);
    assert_string_equal(g->nodes[0].op_type, "Conv");
    assert_int_equal(g->nodes[0].n_inputs, 3);
    assert_string_equal(g->values[g->nodes[0].outputs[0]].name, "y");
    /* the BN statistics and the old weights are gone with their data */
    assert_int_equal(evo_graph_find_value(g, "bn_scale"), -1);
    assert_int_equal(evo_graph_find_value(g, "w"), -1);
    assert_int_equal(evo_graph_find_value(g, "c"), -1);
    evo_graph_free(g);
    g = pg_check(pg_conv_bn_nobias, NULL, &rep);
    assert_int_equal(rep.batchnorms_folded, 1);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(g->nodes[0].n_inputs, 3); /* a bias was added */
    evo_graph_free(g);
}

/* Hand-computed: x = 2, w = 3 (1x1 conv, no bias): conv = 6; BN with scale
 * 2, B 1, mean 1, var 3, eps 1: s = 2 / sqrt(4) = 1, so w' = 3, b' = (0 -
 * 1) * 1 + 1 = 0 and y = (6 - 1) * 1 + 1 = 6. */
static void test_bn_hand_computed(void **state)
{
    (void)state;
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 1, 1, 1});
    pb_const(g, "w", 4, (int32_t[]){1, 1, 1, 1}, (float[]){3.0f});
    pb_const(g, "s", 1, (int32_t[]){1}, (float[]){2.0f});
    pb_const(g, "B", 1, (int32_t[]){1}, (float[]){1.0f});
    pb_const(g, "m", 1, (int32_t[]){1}, (float[]){1.0f});
    pb_const(g, "v", 1, (int32_t[]){1}, (float[]){3.0f});
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    int32_t bn = pb_node(g, "BatchNormalization", "bn", (const char *[]){"c", "s", "B", "m", "v"},
                         5, (const char *[]){"y"}, 1);
    pb_attr_f(g, bn, "epsilon", 1.0f);
    pb_output(g, "y");
    pb_finish(g);
    evo_error err = {0};
    assert_int_equal(evo_graph_optimize(g, NULL, NULL, &err), EVO_OK);
    assert_int_equal(g->n_nodes, 1);
    const evo_node *n = &g->nodes[0];
    const float *w = g->values[n->inputs[1]].t.data;
    const float *b = g->values[n->inputs[2]].t.data;
    assert_float_equal(w[0], 3.0f, 1e-6);
    assert_float_equal(b[0], 0.0f, 1e-6);
    ptu_tensor x = {.name = "x", .t = {.dtype = EVO_DT_FLOAT32}, .nbytes = 4};
    x.t.shape = pb_shape(4, (int32_t[]){1, 1, 1, 1});
    float two = 2.0f;
    x.t.data = &two;
    ptu_tensor *o = NULL;
    assert_int_equal(ptu_run(g, &x, 1, &o, NULL), EVO_OK);
    assert_float_equal(((float *)o[0].t.data)[0], 6.0f, 1e-6);
    ptu_free_outs(o, 1);
    evo_graph_free(g);
}

/* Gemm a[2,4] x B (transB on/off) + C (beta 0.5) -> BN over the 3 columns. */
static evo_graph *pg_gemm_bn(bool trans_b, int c_rank)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "a", 2, (int32_t[]){2, 4});
    if (trans_b)
        pb_const(g, "wt", 2, (int32_t[]){3, 4}, NULL);
    else
        pb_const(g, "wt", 2, (int32_t[]){4, 3}, NULL);
    if (c_rank == 1)
        pb_const(g, "cc", 1, (int32_t[]){3}, (float[]){1.0f, 2.0f, 3.0f});
    else if (c_rank == 2)
        pb_const(g, "cc", 2, (int32_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    pg_bn_consts(g, 3, "bn");
    int32_t gm = pb_node(g, "Gemm", "fc", (const char *[]){"a", "wt", "cc"}, c_rank ? 3 : 2,
                         (const char *[]){"h"}, 1);
    pb_attr_i(g, gm, "transB", trans_b);
    pb_attr_f(g, gm, "beta", 0.5f);
    pb_attr_f(g, gm, "alpha", 1.5f);
    pb_node(g, "BatchNormalization", "bn",
            (const char *[]){"h", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, 5,
            (const char *[]){"y"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"y"}, 1, (const char *[]){"z"}, 1);
    pb_output(g, "z");
    pb_finish(g);
    return g;
}

static evo_graph *pg_gemm_bn_t1(void)
{
    return pg_gemm_bn(true, 1);
}
static evo_graph *pg_gemm_bn_t0(void)
{
    return pg_gemm_bn(false, 2);
}
static evo_graph *pg_gemm_bn_noc(void)
{
    return pg_gemm_bn(true, 0);
}

static void test_bn_gemm(void **state)
{
    (void)state;
    pg_builder builders[] = {pg_gemm_bn_t1, pg_gemm_bn_t0, pg_gemm_bn_noc};
    for (size_t b = 0; b < 3; b++) {
        evo_optimize_report rep;
        evo_graph *g = pg_check(builders[b], NULL, &rep);
        assert_int_equal(rep.batchnorms_folded, 1);
        assert_int_equal(rep.activations_fused, 1); /* the Relu after the BN */
        assert_int_equal(g->n_nodes, 1);
        assert_int_equal(pg_gemm(g)->act.kind, EVO_ACT_RELU);
        assert_float_equal(pg_gemm(g)->beta, 1.0f, 0.0f);
        evo_graph_free(g);
    }
}

/* The conv output is also a graph output: BN must stay. */
static evo_graph *pg_bn_conv_output(void)
{
    evo_graph *g = pg_conv_bn(true);
    pb_output(g, "c");
    return g;
}

/* The conv output has a second consumer. */
static evo_graph *pg_bn_two_consumers(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pg_bn_consts(g, 2, "bn");
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "BatchNormalization", "bn",
            (const char *[]){"c", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, 5,
            (const char *[]){"y"}, 1);
    pb_node(g, "Add", "add", (const char *[]){"y", "c"}, 2, (const char *[]){"z"}, 1);
    pb_output(g, "z");
    pb_finish(g);
    return g;
}

/* BN scale is a graph input (not constant). */
static evo_graph *pg_bn_dynamic_scale(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_input(g, "scale", 1, (int32_t[]){2});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pg_bn_consts(g, 2, "bn");
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "BatchNormalization", "bn",
            (const char *[]){"c", "scale", "bn_bias", "bn_mean", "bn_var"}, 5,
            (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* BN after something that is not a Conv/Gemm (an Add). */
static evo_graph *pg_bn_after_add(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pg_bn_consts(g, 2, "bn");
    pb_node(g, "Add", "add", (const char *[]){"x", "x"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "BatchNormalization", "bn",
            (const char *[]){"c", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, 5,
            (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_bn_must_not_fire(void **state)
{
    (void)state;
    pg_builder builders[] = {pg_bn_conv_output, pg_bn_two_consumers, pg_bn_dynamic_scale,
                             pg_bn_after_add};
    for (size_t b = 0; b < 4; b++) {
        evo_optimize_report rep;
        evo_graph *g = pg_check(builders[b], NULL, &rep);
        assert_int_equal(rep.batchnorms_folded, 0);
        assert_int_equal(pb_count_op(g, "BatchNormalization"), 1);
        evo_graph_free(g);
    }
}

/* ---------------------------------------------------------------- activation fusion */

static const char *pg_act_op;

/* x -> Conv -> <activation> -> y */
static evo_graph *pg_conv_act(void)
{
    evo_graph *g = pb_new(14);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){3, 2, 3, 3}, NULL);
    pb_const(g, "b", 1, (int32_t[]){3}, (float[]){0.1f, -0.2f, 0.3f});
    pb_scalar(g, "lo", 0.0f);
    pb_scalar(g, "hi", 0.6f);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3, (const char *[]){"c"}, 1);
    if (strcmp(pg_act_op, "Clip") == 0) {
        pb_node(g, "Clip", "act", (const char *[]){"c", "lo", "hi"}, 3, (const char *[]){"y"}, 1);
    } else if (strcmp(pg_act_op, "ClipMin") == 0) {
        pb_node(g, "Clip", "act", (const char *[]){"c", "lo"}, 2, (const char *[]){"y"}, 1);
    } else if (strcmp(pg_act_op, "ClipMax") == 0) {
        pb_node(g, "Clip", "act", (const char *[]){"c", "", "hi"}, 3, (const char *[]){"y"}, 1);
    } else {
        int32_t a =
            pb_node(g, pg_act_op, "act", (const char *[]){"c"}, 1, (const char *[]){"y"}, 1);
        if (strcmp(pg_act_op, "LeakyRelu") == 0)
            pb_attr_f(g, a, "alpha", 0.2f);
    }
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_fuse_each_activation(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        int kind;
        float a, b;
    } cases[] = {
        {"Relu", EVO_ACT_RELU, 0, 0},
        {"Clip", EVO_ACT_CLIP, 0.0f, 0.6f},
        {"ClipMin", EVO_ACT_CLIP, 0.0f, INFINITY},
        {"ClipMax", EVO_ACT_CLIP, -INFINITY, 0.6f},
        {"LeakyRelu", EVO_ACT_LEAKY_RELU, 0.2f, 0},
        {"Sigmoid", EVO_ACT_SIGMOID, 0, 0},
        {"HardSwish", EVO_ACT_HARD_SWISH, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pg_act_op = cases[k].op;
        evo_optimize_report rep;
        evo_graph *g = pg_check(pg_conv_act, NULL, &rep);
        assert_int_equal(rep.activations_fused, 1);
        assert_int_equal(g->n_nodes, 1);
        const evo_conv_params *p = pg_conv(g, "Conv");
        assert_int_equal(p->act.kind, cases[k].kind);
        if (cases[k].kind == EVO_ACT_CLIP || cases[k].kind == EVO_ACT_LEAKY_RELU)
            assert_true(p->act.a == cases[k].a);
        if (cases[k].kind == EVO_ACT_CLIP)
            assert_true(p->act.b == cases[k].b);
        assert_string_equal(g->values[g->nodes[0].outputs[0]].name, "y");
        evo_graph_free(g);
    }
    /* switched off: nothing fuses */
    pg_act_op = "Relu";
    evo_optimize_options off = {.no_fuse_activation = true};
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_conv_act, &off, &rep);
    assert_int_equal(rep.activations_fused, 0);
    assert_int_equal(g->n_nodes, 2);
    evo_graph_free(g);
}

/* Conv output is also a graph output. */
static evo_graph *pg_act_conv_output(void)
{
    pg_act_op = "Relu";
    evo_graph *g = pg_conv_act();
    pb_output(g, "c");
    return g;
}

/* Conv output feeds the Relu and an Add. */
static evo_graph *pg_act_two_consumers(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"c"}, 1, (const char *[]){"r"}, 1);
    pb_node(g, "Add", "add", (const char *[]){"r", "c"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* Clip's min comes from a graph input: not known when fusing. */
static evo_graph *pg_act_dynamic_clip(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_input(g, "lo", 0, NULL);
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Clip", "clip", (const char *[]){"c", "lo"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* Relu after a MatMul (not Conv/Gemm): stays. */
static evo_graph *pg_act_after_matmul(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 2, (int32_t[]){2, 3});
    pb_const(g, "w", 2, (int32_t[]){3, 2}, NULL);
    pb_node(g, "MatMul", "mm", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"c"}, 1, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_fuse_must_not_fire(void **state)
{
    (void)state;
    pg_builder builders[] = {pg_act_conv_output, pg_act_two_consumers, pg_act_dynamic_clip,
                             pg_act_after_matmul};
    for (size_t b = 0; b < 4; b++) {
        evo_optimize_report rep;
        evo_graph *g = pg_check(builders[b], NULL, &rep);
        assert_int_equal(rep.activations_fused, 0);
        assert_int_equal(g->n_nodes, 2 + (b == 1));
        evo_graph_free(g);
    }
}

/* Conv -> Relu -> Relu: only the first fuses (one activation per node). */
static evo_graph *pg_act_double(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Sigmoid", "s", (const char *[]){"c"}, 1, (const char *[]){"r"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"r"}, 1, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_fuse_once(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_act_double, NULL, &rep);
    assert_int_equal(rep.activations_fused, 1);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(pg_conv(g, "Conv")->act.kind, EVO_ACT_SIGMOID);
    evo_graph_free(g);
}

/* ---------------------------------------------------------------- Add + activation */

/* Residual block tail: x -> Conv -> c; Add(c, x) -> s -> pg_res_act -> y.
 * pg_res_shared also feeds s to a Mul; pg_res_s_out makes s a graph output. */
static const char *pg_res_act = "Relu";
static bool pg_res_shared, pg_res_s_out;

static evo_graph *pg_res_block(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Add", "add", (const char *[]){"c", "x"}, 2, (const char *[]){"s"}, 1);
    if (strcmp(pg_res_act, "Clip") == 0) {
        pb_scalar(g, "lo", 0.0f);
        pb_scalar(g, "hi", 6.0f);
        pb_node(g, "Clip", "act", (const char *[]){"s", "lo", "hi"}, 3, (const char *[]){"y"}, 1);
    } else {
        pb_node(g, pg_res_act, "act", (const char *[]){"s"}, 1, (const char *[]){"y"}, 1);
    }
    pb_output(g, "y");
    if (pg_res_shared) {
        pb_node(g, "Mul", "mul", (const char *[]){"s", "x"}, 2, (const char *[]){"m"}, 1);
        pb_output(g, "m");
    }
    if (pg_res_s_out)
        pb_output(g, "s");
    pb_finish(g);
    return g;
}

static const evo_add_params *pg_add(const evo_graph *g)
{
    return (const evo_add_params *)(const void *)pg_conv(g, "Add");
}

static void test_fuse_into_add(void **state)
{
    (void)state;
    evo_optimize_report rep;
    pg_res_shared = pg_res_s_out = false;
    pg_res_act = "Relu";
    evo_graph *g = pg_check(pg_res_block, NULL, &rep);
    assert_int_equal(rep.activations_fused, 1);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(pg_add(g)->act.kind, EVO_ACT_RELU);
    assert_int_equal(pg_conv(g, "Conv")->act.kind, EVO_ACT_NONE);
    /* the Add now writes the graph output y */
    int32_t y = g->outputs[0];
    assert_string_equal(g->values[y].name, "y");
    assert_string_equal(g->nodes[g->values[y].producer].op_type, "Add");
    evo_graph_free(g);

    pg_res_act = "Clip"; /* Relu6 */
    g = pg_check(pg_res_block, NULL, &rep);
    assert_int_equal(rep.activations_fused, 1);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(pg_add(g)->act.kind, EVO_ACT_CLIP);
    assert_true(pg_add(g)->act.a == 0.0f && pg_add(g)->act.b == 6.0f);
    evo_graph_free(g);
    pg_res_act = "Relu";
}

static void test_fuse_into_add_must_not_fire(void **state)
{
    (void)state;
    evo_optimize_report rep;
    /* Sigmoid: Add carries only Relu and Clip */
    pg_res_shared = pg_res_s_out = false;
    pg_res_act = "Sigmoid";
    evo_graph *g = pg_check(pg_res_block, NULL, &rep);
    assert_int_equal(rep.activations_fused, 0);
    assert_int_equal(g->n_nodes, 3);
    assert_int_equal(pg_add(g)->act.kind, EVO_ACT_NONE);
    evo_graph_free(g);
    /* the sum has a second consumer */
    pg_res_act = "Relu";
    pg_res_shared = true;
    g = pg_check(pg_res_block, NULL, &rep);
    assert_int_equal(rep.activations_fused, 0);
    assert_int_equal(g->n_nodes, 4);
    assert_int_equal(pg_add(g)->act.kind, EVO_ACT_NONE);
    evo_graph_free(g);
    /* the sum is a graph output */
    pg_res_shared = false;
    pg_res_s_out = true;
    g = pg_check(pg_res_block, NULL, &rep);
    assert_int_equal(rep.activations_fused, 0);
    assert_int_equal(g->n_nodes, 3);
    assert_int_equal(pg_add(g)->act.kind, EVO_ACT_NONE);
    evo_graph_free(g);
    pg_res_s_out = false;
    /* switched off */
    evo_optimize_options off = {.no_fuse_activation = true};
    g = pg_check(pg_res_block, &off, &rep);
    assert_int_equal(rep.activations_fused, 0);
    assert_int_equal(g->n_nodes, 3);
    evo_graph_free(g);
}

/* ---------------------------------------------------------------- Identity / Dropout */

/* x -> Identity -> a -> Relu -> r -> Identity -> y (graph output), and
 * x -> Dropout(ratio const) -> d -> Add(r, d) -> z (graph output). */
static evo_graph *pg_identities(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 2, (int32_t[]){3, 4});
    pb_scalar(g, "ratio", 0.5f);
    pb_node(g, "Identity", "id1", (const char *[]){"x"}, 1, (const char *[]){"a"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"a"}, 1, (const char *[]){"r"}, 1);
    pb_node(g, "Identity", "id2", (const char *[]){"r"}, 1, (const char *[]){"y"}, 1);
    pb_node(g, "Dropout", "drop", (const char *[]){"x", "ratio"}, 2, (const char *[]){"d", "mask"},
            2);
    pb_node(g, "Add", "add", (const char *[]){"r", "d"}, 2, (const char *[]){"z"}, 1);
    pb_output(g, "y");
    pb_output(g, "z");
    pb_finish(g);
    return g;
}

static void test_identity_removal(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_identities, NULL, &rep);
    assert_int_equal(rep.identities_removed, 3);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(pb_count_op(g, "Identity") + pb_count_op(g, "Dropout"), 0);
    /* The Relu now writes the graph output y; the Add reads y and x. */
    int32_t y = evo_graph_find_value(g, "y");
    assert_true(y >= 0);
    assert_string_equal(g->nodes[g->values[y].producer].op_type, "Relu");
    assert_int_equal(evo_graph_find_value(g, "r"), -1);
    assert_int_equal(evo_graph_find_value(g, "ratio"), -1); /* constant freed */
    evo_graph_free(g);
}

/* Identity from a graph input straight to a graph output; Dropout whose
 * mask is a graph output: both stay. */
static evo_graph *pg_identity_kept(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 2, (int32_t[]){3, 4});
    pb_node(g, "Identity", "id", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pb_node(g, "Relu", "relu", (const char *[]){"x"}, 1, (const char *[]){"r"}, 1);
    pb_node(g, "Dropout", "drop", (const char *[]){"r"}, 1, (const char *[]){"d", "mask"}, 2);
    pb_output(g, "y");
    pb_output(g, "d");
    pb_output(g, "mask");
    pb_finish(g);
    return g;
}

static void test_identity_must_not_fire(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_identity_kept, NULL, &rep);
    assert_int_equal(rep.identities_removed, 0);
    assert_int_equal(g->n_nodes, 3);
    evo_graph_free(g);
}

/* ---------------------------------------------------------------- dead code */

/* A branch nobody reads: Conv with its own weights -> Add -> dangling. */
static evo_graph *pg_dead_branch(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_const(g, "w_dead", 4, (int32_t[]){5, 2, 3, 3}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"y"}, 1);
    pb_node(g, "Conv", "dead_conv", (const char *[]){"x", "w_dead"}, 2, (const char *[]){"dc"}, 1);
    pb_node(g, "Add", "dead_add", (const char *[]){"dc", "dc"}, 2, (const char *[]){"dr"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_dead_code(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_dead_branch, NULL, &rep);
    assert_int_equal(rep.dead_nodes_removed, 2);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(evo_graph_find_value(g, "w_dead"), -1);
    assert_int_equal(g->n_inputs, 1);
    evo_graph_free(g);
    /* switched off: both stay */
    evo_optimize_options off = {.no_dead_code = true};
    g = pg_check(pg_dead_branch, &off, &rep);
    assert_int_equal(rep.dead_nodes_removed, 0);
    assert_int_equal(g->n_nodes, 3);
    evo_graph_free(g);
}

/* ---------------------------------------------------------------- bad input */

/* ---------------------------------------------------------------- weight layout */

/* x[1,8,6,6] -> Conv(w[64,8,3,3], b, pads 1) -> Relu -> c1 -> Conv(w2[32,64,1,1])
 * -> y: the first Conv (36 positions, M = 64) gets the KM layout, the
 * second (M = 32, but rows of 6, not whole 8-position blocks) keeps W. */
static evo_graph *pg_layout(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 8, 6, 6});
    pb_const(g, "w", 4, (int32_t[]){64, 8, 3, 3}, NULL);
    pb_const(g, "b", 1, (int32_t[]){64}, NULL);
    pb_const(g, "w2", 4, (int32_t[]){32, 64, 1, 1}, NULL);
    int32_t conv =
        pb_node(g, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3, (const char *[]){"c"}, 1);
    pb_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_node(g, "Relu", "relu", (const char *[]){"c"}, 1, (const char *[]){"c1"}, 1);
    pb_node(g, "Conv", "conv2", (const char *[]){"c1", "w2"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* x[1,4,20,20] -> Conv(w[64,4,3,3], pads 1) -> y: 400 positions, too many. */
static evo_graph *pg_layout_big(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 4, 20, 20});
    pb_const(g, "w", 4, (int32_t[]){64, 4, 3, 3}, NULL);
    int32_t conv =
        pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"y"}, 1);
    pb_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* x[1,512,3,3] -> Conv(w[512,512,1,1]) -> y: W of 1 MiB, too large. */
static evo_graph *pg_layout_heavy(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 512, 3, 3});
    pb_const(g, "w", 4, (int32_t[]){512, 512, 1, 1}, NULL);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* x[1,8,8,8] -> Conv(w[32,8,3,3], pads 1) -> y: M = 32 with rows of 8
 * (C = 8 is no Winograd case). */
static evo_graph *pg_layout_half(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 8, 8, 8});
    pb_const(g, "w", 4, (int32_t[]){32, 8, 3, 3}, NULL);
    int32_t conv =
        pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"y"}, 1);
    pb_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* x[1,16,12,10] -> Conv(w[32,16,3,3], b, pads 1) -> Relu -> Conv(w2
 * [16,32,3,3], strides 2) -> y: the first is a Winograd case, the second
 * (stride 2) is not. */
static evo_graph *pg_layout_wino(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 16, 12, 10});
    pb_const(g, "w", 4, (int32_t[]){32, 16, 3, 3}, NULL);
    pb_const(g, "b", 1, (int32_t[]){32}, NULL);
    pb_const(g, "w2", 4, (int32_t[]){16, 32, 3, 3}, NULL);
    int32_t conv =
        pb_node(g, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3, (const char *[]){"c"}, 1);
    pb_attr_ints(g, conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_node(g, "Relu", "relu", (const char *[]){"c"}, 1, (const char *[]){"c1"}, 1);
    int32_t conv2 =
        pb_node(g, "Conv", "conv2", (const char *[]){"c1", "w2"}, 2, (const char *[]){"y"}, 1);
    pb_attr_ints(g, conv2, "strides", (int64_t[]){2, 2}, 2);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void test_layout_wino(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_layout_wino, NULL, &rep); /* same outputs as unoptimized */
    assert_int_equal(g->n_nodes, 2);
    const evo_conv_params *p1 = (const evo_conv_params *)(const void *)g->nodes[0].params;
    const evo_conv_params *p2 = (const evo_conv_params *)(const void *)g->nodes[1].params;
    assert_int_equal(p1->w_layout, EVO_CONV_W_WINO43);
    assert_int_equal(p1->n_kernel, 2);
    assert_int_equal(p1->kernel[0], 3);
    assert_int_equal(p1->act.kind, EVO_ACT_RELU);
    assert_int_not_equal(p2->w_layout, EVO_CONV_W_WINO43);
    /* U[xi][c][m] = (G W[m][c] G^T)[xi], W filled by pb_const's rule */
    const evo_value *w = &g->values[g->nodes[0].inputs[1]];
    assert_int_equal(w->t.shape.rank, 3);
    assert_int_equal(w->t.shape.dims[0], 36);
    assert_int_equal(w->t.shape.dims[1], 16);
    assert_int_equal(w->t.shape.dims[2], 32);
    const float *u = w->t.data;
    for (int m = 0; m < 32; m++)
        for (int c = 0; c < 16; c++) {
            float k[9], want[36];
            for (int t = 0; t < 9; t++)
                k[t] = 0.1f * (float)((m * 144 + c * 9 + t) % 7) - 0.3f;
            evo_wino43_weight(k, want);
            for (int xi = 0; xi < 36; xi++)
                assert_float_equal(u[(xi * 16 + c) * 32 + m], want[xi], 1e-7f);
        }
    assert_int_equal(evo_graph_find_value(g, "w"), -1); /* the old layout is gone */
    evo_graph_free(g);
}

static void test_layout_conv(void **state)
{
    (void)state;
    evo_optimize_report rep;
    evo_graph *g = pg_check(pg_layout, NULL, &rep); /* same outputs as unoptimized */
    assert_int_equal(g->n_nodes, 2);
    const evo_node *c1 = &g->nodes[0], *c2 = &g->nodes[1];
    assert_string_equal(c1->name, "conv");
    const evo_conv_params *p1 = (const evo_conv_params *)(const void *)c1->params;
    const evo_conv_params *p2 = (const evo_conv_params *)(const void *)c2->params;
    assert_int_equal(p1->w_layout, EVO_CONV_W_KM);
    assert_int_equal(p1->n_kernel, 2);
    assert_int_equal(p1->kernel[0], 3);
    assert_int_equal(p1->kernel[1], 3);
    assert_int_equal(p1->act.kind, EVO_ACT_RELU); /* the fusion is kept */
    assert_int_equal(p2->w_layout, EVO_CONV_W_ONNX);
    /* W_km[(c * 9 + t) * 64 + m] = W[m][c][t], W filled by pb_const's rule */
    const evo_value *w = &g->values[c1->inputs[1]];
    assert_int_equal(w->t.shape.rank, 2);
    assert_int_equal(w->t.shape.dims[0], 72);
    assert_int_equal(w->t.shape.dims[1], 64);
    const float *km = w->t.data;
    for (int r = 0; r < 72; r++)
        for (int m = 0; m < 64; m++) {
            const int i = m * 72 + r;
            assert_float_equal(km[r * 64 + m], 0.1f * (float)(i % 7) - 0.3f, 1e-7f);
        }
    assert_int_equal(evo_graph_find_value(g, "w"), -1); /* the old layout is gone */
    evo_graph_free(g);

    g = pg_check(pg_layout_big, NULL, &rep);
    assert_int_equal(pg_conv(g, "Conv")->w_layout, EVO_CONV_W_ONNX);
    assert_int_equal(g->values[g->nodes[0].inputs[1]].t.shape.rank, 4);
    evo_graph_free(g);
    g = pg_check(pg_layout_heavy, NULL, &rep);
    assert_int_equal(pg_conv(g, "Conv")->w_layout, EVO_CONV_W_ONNX);
    evo_graph_free(g);
    g = pg_check(pg_layout_half, NULL, &rep);
    assert_int_equal(pg_conv(g, "Conv")->w_layout, EVO_CONV_W_KM);
    assert_int_equal(g->values[g->nodes[0].inputs[1]].t.shape.dims[0], 72);
    evo_graph_free(g);
}

static void test_bad_input(void **state)
{
    (void)state;
    evo_error err = {0};
    assert_int_equal(evo_graph_optimize(NULL, NULL, NULL, &err), EVO_ERR_INVALID_ARG);
    /* not inferred: values without facts */
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 2, (int32_t[]){3, 4});
    pb_node(g, "Relu", "relu", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    assert_int_equal(evo_graph_optimize(g, NULL, NULL, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(evo_graph_optimize(g, NULL, NULL, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'y'"));
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_conv),
        cmocka_unit_test(test_bn_hand_computed),
        cmocka_unit_test(test_bn_gemm),
        cmocka_unit_test(test_bn_must_not_fire),
        cmocka_unit_test(test_fuse_each_activation),
        cmocka_unit_test(test_fuse_must_not_fire),
        cmocka_unit_test(test_fuse_once),
        cmocka_unit_test(test_fuse_into_add),
        cmocka_unit_test(test_fuse_into_add_must_not_fire),
        cmocka_unit_test(test_identity_removal),
        cmocka_unit_test(test_identity_must_not_fire),
        cmocka_unit_test(test_dead_code),
        cmocka_unit_test(test_layout_conv),
        cmocka_unit_test(test_layout_wino),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
