/*
 * Shared helpers of the kshape_* unit tests: build an evo_node by hand (no
 * graph needed), parse its params with the op's parse, run infer, allocate
 * the outputs at the inferred shapes and run eval, just as the executor does.
 */
#ifndef KSHAPE_TEST_UTIL_H
#define KSHAPE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evo/op.h"

#define KT_MAX_ATTRS 8
#define KT_MAX_IO 8

typedef struct kt {
    const evo_op_def *op;
    evo_node node;
    evo_attr attrs[KT_MAX_ATTRS];
    int64_t ints[KT_MAX_ATTRS][16];
    float floats[KT_MAX_ATTRS][16];
    _Alignas(16) unsigned char params[EVO_PARAMS_MAX];
    evo_tensor *in[KT_MAX_IO];
    evo_tensor *out[KT_MAX_IO];
    int32_t n_in, n_out;
    evo_tensor outs[KT_MAX_IO];
    void *scratch;
    evo_error err;
} kt;

static inline evo_shape kt_shape(int rank, ...)
{
    evo_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        s.dims[i] = va_arg(ap, int);
    va_end(ap);
    return s;
}

static inline evo_tensor kt_tensor(evo_dtype dt, evo_shape s, const void *data)
{
    evo_tensor t;
    t.dtype = dt;
    t.shape = s;
    t.data = (void *)data;
    return t;
}

/* Start a node of op_type at opset; the op must be registered. */
static inline void kt_begin(kt *k, const char *op_type, int opset)
{
    memset(k, 0, sizeof *k);
    k->op = evo_op_find("", op_type);
    assert_non_null(k->op);
    k->node.name = (char *)"test";
    k->node.op_type = (char *)op_type;
    k->node.domain = (char *)"";
    k->node.opset = opset;
    k->node.attrs = k->attrs;
}

static inline evo_attr *kt_attr(kt *k, const char *name, evo_attr_type type)
{
    assert_true(k->node.n_attrs < KT_MAX_ATTRS);
    evo_attr *a = &k->attrs[k->node.n_attrs++];
    a->name = (char *)name;
    a->type = type;
    return a;
}

static inline void kt_int(kt *k, const char *name, int64_t v)
{
    kt_attr(k, name, EVO_ATTR_INT)->i = v;
}

static inline void kt_float(kt *k, const char *name, float v)
{
    kt_attr(k, name, EVO_ATTR_FLOAT)->f = v;
}

static inline void kt_str(kt *k, const char *name, const char *v)
{
    kt_attr(k, name, EVO_ATTR_STRING)->s = (char *)v;
}

static inline void kt_ints(kt *k, const char *name, const int64_t *v, size_t n)
{
    int idx = k->node.n_attrs;
    evo_attr *a = kt_attr(k, name, EVO_ATTR_INTS);
    assert_true(n <= 16);
    memcpy(k->ints[idx], v, n * sizeof *v);
    a->ints = k->ints[idx];
    a->count = n;
}

static inline void kt_floats(kt *k, const char *name, const float *v, size_t n)
{
    int idx = k->node.n_attrs;
    evo_attr *a = kt_attr(k, name, EVO_ATTR_FLOATS);
    assert_true(n <= 16);
    memcpy(k->floats[idx], v, n * sizeof *v);
    a->floats = k->floats[idx];
    a->count = n;
}

static inline void kt_tensor_attr(kt *k, const char *name, evo_tensor t)
{
    kt_attr(k, name, EVO_ATTR_TENSOR)->tensor = t;
}

static inline evo_kctx kt_ctx(kt *k)
{
    evo_kctx c;
    memset(&c, 0, sizeof c);
    c.params = k->params;
    c.in = k->in;
    c.n_in = k->n_in;
    c.out = k->out;
    c.n_out = k->n_out;
    c.err = &k->err;
    return c;
}

/* Parse and infer with inputs `in` (NULL entries = absent) and n_out outputs
 * (all present unless absent_out has a true entry). */
static inline evo_status kt_infer(kt *k, evo_tensor **in, int n_in, int n_out)
{
    evo_error_clear(&k->err);
    k->n_in = n_in;
    k->n_out = n_out;
    for (int i = 0; i < n_in; i++)
        k->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        memset(&k->outs[i], 0, sizeof k->outs[i]);
        k->out[i] = &k->outs[i];
    }
    memset(k->params, 0, sizeof k->params);
    evo_status rv = EVO_OK;
    if (k->op->parse != NULL && (rv = k->op->parse(&k->node, k->params, &k->err)) != EVO_OK)
        return rv;
    evo_kctx c = kt_ctx(k);
    return k->op->infer(&c);
}

/* Allocate outputs at their inferred shapes and scratch, then eval. */
static inline evo_status kt_eval(kt *k)
{
    for (int i = 0; i < k->n_out; i++) {
        if (k->out[i] == NULL || k->out[i]->data != NULL)
            continue;
        size_t nbytes = 0;
        assert_int_equal(evo_shape_nbytes(&k->out[i]->shape, k->out[i]->dtype, &nbytes), EVO_OK);
        k->out[i]->data = calloc(1, nbytes + 16);
        assert_non_null(k->out[i]->data);
    }
    evo_kctx c = kt_ctx(k);
    c.err = NULL;
    size_t sb = k->op->scratch != NULL ? k->op->scratch(&c) : 0;
    k->scratch = sb > 0 ? aligned_alloc(16, (sb + 15) / 16 * 16) : NULL;
    c.scratch = k->scratch;
    c.scratch_bytes = sb;
    return k->op->eval(&c);
}

static inline evo_status kt_run(kt *k, evo_tensor **in, int n_in, int n_out)
{
    evo_status rv = kt_infer(k, in, n_in, n_out);
    if (rv != EVO_OK)
        return rv;
    return kt_eval(k);
}

/* Free what kt_eval allocated (outputs it allocated and scratch). */
static inline void kt_free(kt *k, const void *keep)
{
    for (int i = 0; i < k->n_out; i++) {
        if (k->out[i] != NULL && k->out[i]->data != keep)
            free(k->out[i]->data);
        if (k->out[i] != NULL)
            k->out[i]->data = NULL;
    }
    free(k->scratch);
    k->scratch = NULL;
}

static inline void kt_expect_shape(const evo_tensor *t, evo_shape s)
{
    assert_int_equal(t->shape.rank, s.rank);
    for (int i = 0; i < s.rank; i++)
        assert_int_equal(t->shape.dims[i], s.dims[i]);
}

static inline void kt_expect_f32(const evo_tensor *t, const float *want, size_t n, float tol)
{
    assert_int_equal(t->dtype, EVO_DT_FLOAT32);
    assert_int_equal(evo_shape_numel(&t->shape), (int64_t)n);
    const float *got = t->data;
    for (size_t i = 0; i < n; i++) {
        float d = got[i] - want[i];
        if (d < 0)
            d = -d;
        if (d > tol)
            fail_msg("element %zu: got %.7g want %.7g", i, (double)got[i], (double)want[i]);
    }
}

static inline void kt_expect_i64(const evo_tensor *t, const int64_t *want, size_t n)
{
    assert_int_equal(t->dtype, EVO_DT_INT64);
    assert_int_equal(evo_shape_numel(&t->shape), (int64_t)n);
    const int64_t *got = t->data;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("element %zu: got %lld want %lld", i, (long long)got[i], (long long)want[i]);
}

static inline void kt_expect_bytes(const evo_tensor *t, const void *want, size_t nbytes)
{
    size_t have = 0;
    assert_int_equal(evo_shape_nbytes(&t->shape, t->dtype, &have), EVO_OK);
    assert_int_equal(have, nbytes);
    assert_memory_equal(t->data, want, nbytes);
}

#endif
