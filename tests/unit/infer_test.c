/* modeldb/infer.c: inference, folding of shape subgraphs, cost facts,
 * and the errors a user sees. Graphs are built by hand through the IR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "evo/modeldb.h"

typedef struct builder {
    evo_graph *g;
} builder;

static int32_t val(evo_graph *g, const char *name)
{
    int32_t v;
    assert_int_equal(evo_graph_get_or_add_value(g, name, &v), EVO_OK);
    return v;
}

static int32_t input(evo_graph *g, const char *name, evo_dtype dt, evo_shape s)
{
    int32_t v = val(g, name);
    g->values[v].flags |= EVO_VALUE_INPUT | EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    g->values[v].t.dtype = dt;
    g->values[v].t.shape = s;
    g->inputs = realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int32_t));
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void output(evo_graph *g, int32_t v)
{
    g->values[v].flags |= EVO_VALUE_OUTPUT;
    g->outputs = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int32_t));
    g->outputs[g->n_outputs++] = v;
}

static int32_t const_i64(evo_graph *g, const char *name, const int64_t *vals, int32_t n, int rank)
{
    int32_t v = val(g, name);
    int64_t *d = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(d, vals, sizeof(int64_t) * (size_t)n);
    evo_shape s = {rank, {n}};
    evo_value_set_const(g, v, EVO_DT_INT64, &s, d);
    return v;
}

static int32_t const_f32(evo_graph *g, const char *name, evo_shape s, float fill)
{
    int32_t v = val(g, name);
    int64_t n = evo_shape_numel(&s);
    float *d = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        d[i] = fill;
    evo_value_set_const(g, v, EVO_DT_FLOAT32, &s, d);
    return v;
}

static int32_t node(evo_graph *g, const char *op, const int32_t *ins, int n_in, int32_t out)
{
    int32_t n, outs[1] = {out};
    assert_int_equal(evo_graph_add_node(g, op, "", op, ins, n_in, outs, 1, &n), EVO_OK);
    g->nodes[n].opset = 13;
    return n;
}

static void add_int_attr(evo_graph *g, int32_t n, const char *name, int64_t i)
{
    evo_attr a = {0};
    a.name = strdup(name);
    a.type = EVO_ATTR_INT;
    a.i = i;
    assert_int_equal(evo_node_add_attr(g, n, &a), EVO_OK);
}

/* The ops these tests use must be linked in: a missing one is a failure. */
static bool have_ops(const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (evo_op_find("", names[i]) == NULL)
            fail_msg("op %s is not registered", names[i]);
    return true;
}

/* The pattern exporters emit: y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) */
static void test_shape_subgraph_is_folded(void **state)
{
    (void)state;
    const char *ops[] = {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Relu"};
    if (!have_ops(ops, 6))
        skip();
    evo_graph *g = evo_graph_new();
    int32_t x = input(g, "x", EVO_DT_FLOAT32, (evo_shape){4, {2, 3, 4, 5}});
    int32_t r = val(g, "r");
    node(g, "Relu", &x, 1, r);
    int32_t s = val(g, "s");
    node(g, "Shape", &r, 1, s);
    int64_t zero = 0, minus1 = -1, ax0 = 0;
    int32_t gi[2] = {s, const_i64(g, "idx0", &zero, 1, 0)};
    int32_t b = val(g, "batch");
    int32_t gn = node(g, "Gather", gi, 2, b);
    add_int_attr(g, gn, "axis", 0);
    int32_t ui[2] = {b, const_i64(g, "axes0", &ax0, 1, 1)};
    int32_t bu = val(g, "batch1");
    node(g, "Unsqueeze", ui, 2, bu);
    int32_t ci[2] = {bu, const_i64(g, "minus1", &minus1, 1, 1)};
    int32_t shp = val(g, "newshape");
    int32_t cn = node(g, "Concat", ci, 2, shp);
    add_int_attr(g, cn, "axis", 0);
    int32_t ri[2] = {r, shp};
    int32_t y = val(g, "y");
    node(g, "Reshape", ri, 2, y);
    output(g, y);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(evo_graph_infer(g, NULL, NULL, &err), EVO_OK);
    evo_value *yv = &g->values[y];
    assert_int_equal(yv->t.shape.rank, 2);
    assert_int_equal(yv->t.shape.dims[0], 2);
    assert_int_equal(yv->t.shape.dims[1], 60);
    /* the whole shape computation became constants */
    assert_true(g->values[s].flags & EVO_VALUE_CONST);
    assert_true(g->values[shp].flags & EVO_VALUE_CONST);
    const int64_t *sd = g->values[shp].t.data;
    assert_int_equal(sd[0], 2);
    assert_int_equal(sd[1], -1);
    /* folded nodes cost nothing; the Relu does */
    evo_op_cost c;
    assert_int_equal(evo_graph_node_cost(g, gn, &c), EVO_OK);
    assert_int_equal(c.flops, 0);
    assert_int_equal(evo_graph_node_cost(g, 0, &c), EVO_OK);
    assert_int_equal(c.flops, 120);
    assert_int_equal(c.in_bytes, 480);
    assert_int_equal(c.out_bytes, 480);
    evo_graph_free(g);
}

static void test_conv_flops(void **state)
{
    (void)state;
    const char *ops[] = {"Conv"};
    if (!have_ops(ops, 1))
        skip();
    evo_graph *g = evo_graph_new();
    int32_t x = input(g, "x", EVO_DT_FLOAT32, (evo_shape){4, {1, 3, 32, 32}});
    int32_t w = const_f32(g, "w", (evo_shape){4, {16, 3, 3, 3}}, 0.5f);
    int32_t bb = const_f32(g, "b", (evo_shape){1, {16}}, 0.0f);
    int32_t ins[3] = {x, w, bb};
    int32_t y = val(g, "y");
    int32_t n = node(g, "Conv", ins, 3, y);
    evo_attr p = {0};
    p.name = strdup("pads");
    p.type = EVO_ATTR_INTS;
    p.count = 4;
    p.ints = calloc(4, sizeof(int64_t));
    for (int i = 0; i < 4; i++)
        p.ints[i] = 1;
    assert_int_equal(evo_node_add_attr(g, n, &p), EVO_OK);
    output(g, y);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(evo_graph_infer(g, NULL, NULL, &err), EVO_OK);
    assert_int_equal(g->values[y].t.shape.dims[1], 16);
    assert_int_equal(g->values[y].t.shape.dims[2], 32);
    evo_op_cost c;
    assert_int_equal(evo_graph_node_cost(g, n, &c), EVO_OK);
    /* 2 * 16 out channels * 32*32 positions * 3*3*3 taps */
    assert_int_equal(c.flops, 2ull * 16 * 32 * 32 * 27);
    assert_int_equal(c.param_bytes, (16 * 27 + 16) * 4);
    evo_graph_free(g);
}

static void test_unsupported_op_is_named(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    g->source_path = strdup("m.onnx");
    int32_t x = input(g, "x", EVO_DT_FLOAT32, (evo_shape){1, {4}});
    int32_t y = val(g, "y");
    int32_t ins[1] = {x}, outs[1] = {y};
    int32_t n;
    assert_int_equal(evo_graph_add_node(g, "FancyOp", "com.example", "f1", ins, 1, outs, 1, &n),
                     EVO_OK);
    output(g, y);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(evo_graph_infer(g, NULL, NULL, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "m.onnx"));
    assert_non_null(strstr(err.msg, "com.example.FancyOp"));
    assert_non_null(strstr(err.msg, "'f1'"));
    /* inspect mode goes on, keeping the file's declared shape */
    g->values[y].flags |= EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    g->values[y].t.dtype = EVO_DT_FLOAT32;
    g->values[y].t.shape = (evo_shape){1, {4}};
    evo_import_options opt = {.allow_unsupported = true};
    evo_infer_report rep;
    assert_int_equal(evo_graph_infer(g, &opt, &rep, &err), EVO_OK);
    assert_int_equal(rep.unsupported_nodes, 1);
    assert_int_equal(rep.unresolved_nodes, 0);
    evo_graph_free(g);
}

static void test_unbound_input_and_bad_shapes(void **state)
{
    (void)state;
    const char *ops[] = {"Add"};
    if (!have_ops(ops, 1))
        skip();
    evo_graph *g = evo_graph_new();
    g->source_path = strdup("m.onnx");
    int32_t a = input(g, "a", EVO_DT_FLOAT32, (evo_shape){2, {2, 3}});
    int32_t b = input(g, "b", EVO_DT_FLOAT32, (evo_shape){2, {4, 3}});
    int32_t ins[2] = {a, b};
    int32_t y = val(g, "y");
    node(g, "Add", ins, 2, y);
    output(g, y);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(evo_graph_infer(g, NULL, NULL, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "m.onnx: node 'Add' (Add)"));
    g->values[b].t.shape.dims[0] = -1;
    assert_int_equal(evo_graph_infer(g, NULL, NULL, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "not bound"));
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_subgraph_is_folded),
        cmocka_unit_test(test_conv_flops),
        cmocka_unit_test(test_unsupported_op_is_named),
        cmocka_unit_test(test_unbound_input_and_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
