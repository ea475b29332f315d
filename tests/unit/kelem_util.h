/*
 * Helpers for the element-wise kernel tests (kelem_*_test.c): build tensors
 * and nodes by hand, then run an op's parse, infer and eval the way the
 * executor would. Include after <cmocka.h>.
 */
#ifndef KELEM_UTIL_H
#define KELEM_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evo/graph.h"
#include "evo/op.h"

/* A tensor view over `data` with the given dims (KT0 for rank 0). */
static inline evo_tensor kelem_tensor(evo_dtype dt, void *data, int32_t rank, const int32_t *dims)
{
    evo_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.data = data;
    t.shape.rank = rank;
    for (int32_t i = 0; i < rank; i++)
        t.shape.dims[i] = dims[i];
    return t;
}
#define KT(dt, data, ...)                                                                          \
    kelem_tensor(dt, data, (int32_t)(sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)),          \
                 (int32_t[]){__VA_ARGS__})
#define KT0(dt, data) kelem_tensor(dt, data, 0, NULL)

/* A graph holding one node of op_type with n_in inputs, to attach
 * attributes to and hand to parse. Free with evo_graph_free. */
static inline evo_graph *kelem_graph(const char *op_type, int32_t n_in, int opset)
{
    evo_graph *g = evo_graph_new();
    assert_non_null(g);
    int32_t ins[8], out, node;
    char name[16];
    for (int32_t i = 0; i < n_in; i++) {
        name[0] = 'i';
        name[1] = (char)('0' + i);
        name[2] = '\0';
        assert_int_equal(evo_graph_add_value(g, name, &ins[i]), EVO_OK);
    }
    assert_int_equal(evo_graph_add_value(g, "y", &out), EVO_OK);
    assert_int_equal(evo_graph_add_node(g, op_type, "", "n0", ins, n_in, &out, 1, &node), EVO_OK);
    g->nodes[node].opset = opset;
    return g;
}

static inline void kelem_attr_float(evo_graph *g, const char *name, float v)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_FLOAT;
    a.f = v;
    assert_int_equal(evo_node_add_attr(g, 0, &a), EVO_OK);
}

static inline void kelem_attr_int(evo_graph *g, const char *name, int64_t v)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_INT;
    a.i = v;
    assert_int_equal(evo_node_add_attr(g, 0, &a), EVO_OK);
}

static inline void kelem_attr_string(evo_graph *g, const char *name, const char *v)
{
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_STRING;
    a.s = strdup(v);
    assert_int_equal(evo_node_add_attr(g, 0, &a), EVO_OK);
}

typedef struct kelem_params {
    _Alignas(8) unsigned char bytes[EVO_PARAMS_MAX];
} kelem_params;

/* Parse: the node of g (or a bare node without attributes when g is NULL). */
static inline evo_status kelem_parse(const evo_op_def *op, evo_graph *g, kelem_params *p,
                                     evo_error *err)
{
    memset(p, 0, sizeof *p);
    if (op->parse == NULL)
        return EVO_OK;
    if (g != NULL)
        return op->parse(&g->nodes[0], p->bytes, err);
    evo_node bare;
    memset(&bare, 0, sizeof bare);
    bare.name = (char *)"n0";
    bare.op_type = (char *)op->name;
    bare.domain = (char *)"";
    bare.opset = 18;
    return op->parse(&bare, p->bytes, err);
}

/* Infer into *inferred (dtype and shape of output 0). */
static inline evo_status kelem_infer(const evo_op_def *op, const kelem_params *p, evo_tensor **in,
                                     int32_t n_in, evo_tensor *inferred, evo_error *err)
{
    memset(inferred, 0, sizeof *inferred);
    evo_tensor *outs[1] = {inferred};
    evo_kctx c = {.params = p->bytes, .in = in, .n_in = n_in, .out = outs, .n_out = 1, .err = err};
    return op->infer(&c);
}

/* Parse, infer, check that the inferred output matches out's dtype and
 * shape, then eval into out->data. Returns the first failing status. */
static inline evo_status kelem_run(const char *op_type, evo_graph *g, evo_tensor **in, int32_t n_in,
                                   evo_tensor *out, evo_error *err)
{
    const evo_op_def *op = evo_op_find("", op_type);
    assert_non_null(op);
    kelem_params p;
    evo_status rv = kelem_parse(op, g, &p, err);
    if (rv != EVO_OK)
        return rv;
    evo_tensor inferred;
    if ((rv = kelem_infer(op, &p, in, n_in, &inferred, err)) != EVO_OK)
        return rv;
    assert_int_equal(inferred.dtype, out->dtype);
    assert_true(evo_shape_equal(&inferred.shape, &out->shape));
    evo_tensor *outs[1] = {out};
    evo_kctx c = {.params = p.bytes, .in = in, .n_in = n_in, .out = outs, .n_out = 1};
    return op->eval(&c);
}

/* Element comparisons with a tolerance relative to the magnitude. */
static inline void kelem_expect_f32(const float *got, const float *want, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            if (!isnan(got[i]))
                fail_msg("element %zu: got %.9g, want NaN", i, (double)got[i]);
            continue;
        }
        float d = fabsf(got[i] - want[i]);
        float lim = tol * (1.0f + fabsf(want[i]));
        if (!(d <= lim) && !(got[i] == want[i]))
            fail_msg("element %zu: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
    }
}

#endif /* KELEM_UTIL_H */
