/*
 * Building small graphs by hand for the pass, split and export tests:
 * inputs, float constants, nodes by tensor names, outputs; then validate and
 * infer. Header-only; every helper aborts the test on failure (cmocka).
 */
#ifndef EVO_TESTS_PASS_BUILD_H
#define EVO_TESTS_PASS_BUILD_H

#include <stdlib.h>
#include <string.h>

#include "evo/modeldb.h"

static inline evo_graph *pb_new(int64_t opset)
{
    evo_graph *g = evo_graph_new();
    assert_non_null(g);
    g->opsets = calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = calloc(1, 1);
    g->opsets[0].version = opset;
    g->n_opsets = 1;
    g->name = strdup("handmade");
    g->source_path = strdup("handmade.onnx");
    g->producer_name = strdup("test");
    g->inputs = malloc(16 * sizeof(int32_t));
    g->outputs = malloc(16 * sizeof(int32_t));
    return g;
}

static inline evo_shape pb_shape(int rank, const int32_t *dims)
{
    evo_shape s = {.rank = rank};
    for (int d = 0; d < rank; d++)
        s.dims[d] = dims[d];
    return s;
}

static inline int32_t pb_input(evo_graph *g, const char *name, int rank, const int32_t *dims)
{
    int32_t v;
    assert_int_equal(evo_graph_add_value(g, name, &v), EVO_OK);
    g->values[v].t.dtype = EVO_DT_FLOAT32;
    g->values[v].t.shape = pb_shape(rank, dims);
    g->values[v].flags |= EVO_VALUE_INPUT | EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    g->inputs[g->n_inputs++] = v;
    return v;
}

/* A float32 constant; vals NULL fills 0.1 * (i % 7) - 0.3 (varied, signed). */
static inline int32_t pb_const(evo_graph *g, const char *name, int rank, const int32_t *dims,
                               const float *vals)
{
    int32_t v;
    assert_int_equal(evo_graph_add_value(g, name, &v), EVO_OK);
    evo_shape s = pb_shape(rank, dims);
    int64_t n = evo_shape_numel(&s);
    float *d = malloc((size_t)n * sizeof(float) + 1);
    for (int64_t i = 0; i < n; i++)
        d[i] = vals ? vals[i] : 0.1f * (float)(i % 7) - 0.3f;
    evo_value_set_const(g, v, EVO_DT_FLOAT32, &s, d);
    return v;
}

static inline int32_t pb_scalar(evo_graph *g, const char *name, float f)
{
    return pb_const(g, name, 0, NULL, &f);
}

/* A node reading/writing tensors by name ("" = absent). */
static inline int32_t pb_node(evo_graph *g, const char *op, const char *name, const char *const *in,
                              int n_in, const char *const *out, int n_out)
{
    int32_t iv[8], ov[8];
    for (int k = 0; k < n_in; k++) {
        iv[k] = -1;
        if (in[k][0])
            assert_int_equal(evo_graph_get_or_add_value(g, in[k], &iv[k]), EVO_OK);
    }
    for (int k = 0; k < n_out; k++) {
        ov[k] = -1;
        if (out[k][0])
            assert_int_equal(evo_graph_get_or_add_value(g, out[k], &ov[k]), EVO_OK);
    }
    int32_t ni;
    assert_int_equal(evo_graph_add_node(g, op, "", name, iv, n_in, ov, n_out, &ni), EVO_OK);
    g->nodes[ni].opset = (int)g->opsets[0].version;
    return ni;
}

static inline void pb_attr_f(evo_graph *g, int32_t node, const char *name, float f)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_FLOAT;
    a.f = f;
    assert_int_equal(evo_node_add_attr(g, node, &a), EVO_OK);
}

static inline void pb_attr_i(evo_graph *g, int32_t node, const char *name, int64_t i)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_INT;
    a.i = i;
    assert_int_equal(evo_node_add_attr(g, node, &a), EVO_OK);
}

static inline void pb_attr_ints(evo_graph *g, int32_t node, const char *name, const int64_t *v,
                                int n)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_INTS;
    a.ints = malloc((size_t)n * sizeof(int64_t) + 1);
    memcpy(a.ints, v, (size_t)n * sizeof(int64_t));
    a.count = (size_t)n;
    assert_int_equal(evo_node_add_attr(g, node, &a), EVO_OK);
}

static inline void pb_output(evo_graph *g, const char *name)
{
    int32_t v = evo_graph_find_value(g, name);
    assert_true(v >= 0);
    g->values[v].flags |= EVO_VALUE_OUTPUT;
    g->outputs[g->n_outputs++] = v;
}

static inline void pb_finish(evo_graph *g)
{
    evo_error err = {0};
    if (evo_graph_validate(g, &err) != EVO_OK || evo_graph_infer(g, NULL, NULL, &err) != EVO_OK)
        fail_msg("%s", err.msg);
}

static inline int pb_count_op(const evo_graph *g, const char *op)
{
    int n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        n += strcmp(g->nodes[i].op_type, op) == 0;
    return n;
}

#endif /* EVO_TESTS_PASS_BUILD_H */
