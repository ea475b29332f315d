/* core/graph.c: the IR container, name lookup, validation, dim binding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/graph.h"

static int32_t add_value(evo_graph *g, const char *name)
{
    int32_t v;
    assert_int_equal(evo_graph_add_value(g, name, &v), EVO_OK);
    return v;
}

static int32_t add_node(evo_graph *g, const char *op, int32_t in0, int32_t in1, int32_t out)
{
    int32_t ins[2] = {in0, in1}, outs[1] = {out}, n;
    assert_int_equal(evo_graph_add_node(g, op, "", op, ins, in1 == -2 ? 1 : 2, outs, 1, &n),
                     EVO_OK);
    return n;
}

static void test_name_lookup_scales(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "t%d", i);
        assert_int_equal(add_value(g, name), i);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof name, "t%d", i);
        assert_int_equal(evo_graph_find_value(g, name), i);
    }
    assert_int_equal(evo_graph_find_value(g, "nope"), -1);
    int32_t v;
    assert_int_equal(evo_graph_add_value(g, "t17", &v), EVO_ERR_GRAPH);
    assert_int_equal(evo_graph_get_or_add_value(g, "t17", &v), EVO_OK);
    assert_int_equal(v, 17);
    evo_graph_free(g);
}

/* x -> A -> a ; (a, w) -> B -> b ; defined in reverse file order */
static void test_topological_order(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = add_value(g, "x"), a = add_value(g, "a"), b = add_value(g, "b");
    int32_t w = add_value(g, "w");
    g->values[x].flags |= EVO_VALUE_INPUT;
    float *wd = malloc(4);
    *wd = 2.0f;
    evo_shape s = {1, {1}};
    evo_value_set_const(g, w, EVO_DT_FLOAT32, &s, wd);
    int32_t nb = add_node(g, "B", a, w, b);
    int32_t na = add_node(g, "A", x, -2, a);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    assert_int_equal(g->n_order, 2);
    assert_int_equal(g->order[0], na);
    assert_int_equal(g->order[1], nb);
    assert_int_equal(g->values[b].producer, nb);
    evo_graph_free(g);
}

static void test_cycle_is_reported(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t a = add_value(g, "a"), b = add_value(g, "b");
    add_node(g, "A", b, -2, a);
    add_node(g, "B", a, -2, b);
    g->source_path = strdup("cyc.onnx");
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "cycle"));
    assert_non_null(strstr(err.msg, "cyc.onnx"));
    evo_graph_free(g);
}

static void test_undefined_and_double_definition(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = add_value(g, "x"), y = add_value(g, "ghost"), z = add_value(g, "z");
    g->values[x].flags |= EVO_VALUE_INPUT;
    add_node(g, "Add", x, y, z);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "'ghost'"));
    evo_graph_free(g);

    g = evo_graph_new();
    x = add_value(g, "x");
    z = add_value(g, "z");
    g->values[x].flags |= EVO_VALUE_INPUT;
    add_node(g, "Relu", x, -2, z);
    add_node(g, "Neg", x, -2, z);
    assert_int_equal(evo_graph_validate(g, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "defined twice"));
    evo_graph_free(g);

    /* a node may not overwrite a graph input */
    g = evo_graph_new();
    x = add_value(g, "x");
    g->values[x].flags |= EVO_VALUE_INPUT;
    add_node(g, "Relu", x, -2, x);
    assert_int_equal(evo_graph_validate(g, &err), EVO_ERR_GRAPH);
    evo_graph_free(g);
}

static void test_optional_inputs_are_minus_one(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = add_value(g, "x"), y = add_value(g, "y");
    g->values[x].flags |= EVO_VALUE_INPUT;
    int32_t ins[3] = {x, -1, -1}, outs[1] = {y};
    assert_int_equal(evo_graph_add_node(g, "Clip", "", "c", ins, 3, outs, 1, NULL), EVO_OK);
    evo_error err;
    assert_int_equal(evo_graph_validate(g, &err), EVO_OK);
    evo_graph_free(g);
}

static void test_bind_dims(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = add_value(g, "x");
    evo_value *v = &g->values[x];
    v->flags |= EVO_VALUE_INPUT | EVO_VALUE_HAS_SHAPE | EVO_VALUE_HAS_TYPE;
    v->t.dtype = EVO_DT_FLOAT32;
    v->t.shape = (evo_shape){3, {-1, -1, 8}};
    v->dim_params = calloc(EVO_MAX_RANK, sizeof(char *));
    v->dim_params[0] = strdup("batch");
    v->dim_params[1] = strdup("seq");
    for (int d = 2; d < EVO_MAX_RANK; d++)
        v->dim_params[d] = strdup("");
    g->inputs = malloc(sizeof(int32_t));
    g->inputs[0] = x;
    g->n_inputs = 1;
    evo_error err;
    /* seq unbound: error naming it */
    assert_int_equal(evo_graph_bind_dims(g, NULL, 0, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "--dim seq=VALUE"));
    evo_dim_binding neg = {"seq", -4};
    assert_int_equal(evo_graph_bind_dims(g, &neg, 1, &err), EVO_ERR_INVALID_ARG);
    evo_dim_binding b = {"seq", 16};
    g->values[x].t.shape = (evo_shape){3, {-1, -1, 8}};
    assert_int_equal(evo_graph_bind_dims(g, &b, 1, &err), EVO_OK);
    /* unbound batch defaults to 1 */
    assert_int_equal(g->values[x].t.shape.dims[0], 1);
    assert_int_equal(g->values[x].t.shape.dims[1], 16);
    evo_graph_free(g);
}

static void test_attribute_readers(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = add_value(g, "x"), y = add_value(g, "y");
    int32_t n = add_node(g, "Conv", x, -2, y);
    evo_attr a = {0};
    a.name = strdup("group");
    a.type = EVO_ATTR_INT;
    a.i = 4;
    assert_int_equal(evo_node_add_attr(g, n, &a), EVO_OK);
    evo_attr p = {0};
    p.name = strdup("pads");
    p.type = EVO_ATTR_INTS;
    p.count = 4;
    p.ints = malloc(4 * sizeof(int64_t));
    for (int i = 0; i < 4; i++)
        p.ints[i] = i;
    assert_int_equal(evo_node_add_attr(g, n, &p), EVO_OK);
    const evo_node *node = &g->nodes[n];
    int64_t v;
    assert_int_equal(evo_attr_get_int(node, "group", 1, &v), EVO_OK);
    assert_int_equal(v, 4);
    assert_int_equal(evo_attr_get_int(node, "missing", 9, &v), EVO_OK);
    assert_int_equal(v, 9);
    float f;
    assert_int_equal(evo_attr_get_float(node, "pads", 0, &f), EVO_ERR_TYPE);
    int64_t buf[8];
    size_t cnt;
    assert_int_equal(evo_attr_get_ints(node, "pads", buf, 8, &cnt), EVO_OK);
    assert_int_equal(cnt, 4);
    assert_int_equal(buf[3], 3);
    assert_int_equal(evo_attr_get_ints(node, "pads", buf, 2, &cnt), EVO_ERR_LIMIT);
    const char *s;
    assert_int_equal(evo_attr_get_string(node, "auto_pad", "NOTSET", &s), EVO_OK);
    assert_string_equal(s, "NOTSET");
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_lookup_scales),
        cmocka_unit_test(test_topological_order),
        cmocka_unit_test(test_cycle_is_reported),
        cmocka_unit_test(test_undefined_and_double_definition),
        cmocka_unit_test(test_optional_inputs_are_minus_one),
        cmocka_unit_test(test_bind_dims),
        cmocka_unit_test(test_attribute_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
