/*
 * Test harness for the kpool_*_test.c programs: builds an evo_node with
 * attributes on the stack, runs an op's parse and infer on hand-made
 * tensors, and evaluates into buffers owned by the harness. Include after
 * cmocka.h.
 */
#ifndef KPOOL_HARNESS_H
#define KPOOL_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evo/op.h"

#define KH_MAX_ATTRS 16
#define KH_MAX_IO 6
#define KH_BUF_BYTES 4096

typedef struct kh_case {
    evo_node node;
    evo_attr attrs[KH_MAX_ATTRS];
    int64_t ints[KH_MAX_ATTRS][16];
    const evo_op_def *op;
    _Alignas(16) unsigned char params[EVO_PARAMS_MAX];
    evo_tensor in[KH_MAX_IO], out[KH_MAX_IO];
    evo_tensor *inp[KH_MAX_IO], *outp[KH_MAX_IO];
    int32_t n_in, n_out;
    evo_error err;
    evo_kctx ctx;
    _Alignas(16) unsigned char outbuf[KH_MAX_IO][KH_BUF_BYTES];
    _Alignas(16) unsigned char scratch[KH_BUF_BYTES];
} kh_case;

/* Start a case for op_type at an opset, with n_out outputs (all present). */
static inline void kh_init(kh_case *k, const char *op_type, int opset, int32_t n_out)
{
    memset(k, 0, sizeof *k);
    k->node.name = (char *)"t";
    k->node.op_type = (char *)op_type;
    k->node.domain = (char *)"";
    k->node.opset = opset;
    k->node.attrs = k->attrs;
    k->op = evo_op_find("", op_type);
    assert_non_null(k->op);
    k->n_out = n_out;
    for (int32_t i = 0; i < n_out; i++)
        k->outp[i] = &k->out[i];
}

static inline evo_attr *kh_attr(kh_case *k, const char *name, evo_attr_type type)
{
    assert_true(k->node.n_attrs < KH_MAX_ATTRS);
    evo_attr *a = &k->attrs[k->node.n_attrs++];
    a->name = (char *)name;
    a->type = type;
    return a;
}

static inline void kh_int(kh_case *k, const char *name, int64_t v)
{
    kh_attr(k, name, EVO_ATTR_INT)->i = v;
}

static inline void kh_float(kh_case *k, const char *name, float v)
{
    kh_attr(k, name, EVO_ATTR_FLOAT)->f = v;
}

static inline void kh_str(kh_case *k, const char *name, const char *v)
{
    kh_attr(k, name, EVO_ATTR_STRING)->s = (char *)v;
}

static inline void kh_ints_n(kh_case *k, const char *name, const int64_t *v, size_t n)
{
    int32_t slot = k->node.n_attrs;
    evo_attr *a = kh_attr(k, name, EVO_ATTR_INTS);
    assert_true(n <= 16);
    memcpy(k->ints[slot], v, n * sizeof *v);
    a->ints = k->ints[slot];
    a->count = n;
}

#define KH_INTS(k, name, ...)                                                                      \
    kh_ints_n(k, name, (const int64_t[]){__VA_ARGS__},                                             \
              sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* dims list for kh_in: KH_DIMS(1, 1, 4, 4) expands to a pointer and a rank */
#define KH_DIMS(...)                                                                               \
    (const int32_t[]){__VA_ARGS__},                                                                \
        (int32_t)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))
#define KH_SCALAR NULL, 0

/* Input i (data borrowed, may be NULL for "not constant"). */
static inline void kh_in(kh_case *k, int32_t i, evo_dtype dt, const void *data, const int32_t *dims,
                         int32_t rank)
{
    k->in[i].dtype = dt;
    k->in[i].shape.rank = rank;
    for (int32_t j = 0; j < rank; j++)
        k->in[i].shape.dims[j] = dims[j];
    k->in[i].data = (void *)data;
    k->inp[i] = &k->in[i];
    if (i >= k->n_in)
        k->n_in = i + 1;
}

/* Mark input i absent (an optional input left out, but later ones present). */
static inline void kh_absent(kh_case *k, int32_t i)
{
    k->inp[i] = NULL;
    if (i >= k->n_in)
        k->n_in = i + 1;
}

/* parse then infer; returns the first failing status (message in k->err). */
static inline evo_status kh_prepare(kh_case *k)
{
    evo_status rv = EVO_OK;
    if (k->op->parse != NULL)
        rv = k->op->parse(&k->node, k->params, &k->err);
    if (rv != EVO_OK)
        return rv;
    k->ctx.params = k->params;
    k->ctx.in = k->inp;
    k->ctx.n_in = k->n_in;
    k->ctx.out = k->outp;
    k->ctx.n_out = k->n_out;
    k->ctx.err = &k->err;
    rv = k->op->infer(&k->ctx);
    if (rv == EVO_OK)
        assert_int_equal(k->err.code, EVO_OK);
    else
        assert_true(strlen(k->err.msg) > 0); /* every failure explains itself */
    return rv;
}

/* prepare (must succeed) and evaluate into the harness buffers. */
static inline void kh_run(kh_case *k)
{
    evo_status rv = kh_prepare(k);
    if (rv != EVO_OK)
        printf("unexpected failure: %s\n", k->err.msg);
    assert_int_equal(rv, EVO_OK);
    for (int32_t i = 0; i < k->n_out; i++) {
        size_t nbytes;
        if (k->outp[i] == NULL)
            continue;
        assert_int_equal(evo_shape_nbytes(&k->out[i].shape, k->out[i].dtype, &nbytes), EVO_OK);
        assert_true(nbytes <= KH_BUF_BYTES);
        memset(k->outbuf[i], 0xA5, KH_BUF_BYTES); /* garbage, so unwritten outputs show */
        k->out[i].data = k->outbuf[i];
    }
    size_t sb = k->op->scratch != NULL ? k->op->scratch(&k->ctx) : 0;
    assert_true(sb <= KH_BUF_BYTES);
    k->ctx.scratch = sb > 0 ? k->scratch : NULL;
    k->ctx.scratch_bytes = sb;
    k->ctx.err = NULL;
    assert_int_equal(k->op->eval(&k->ctx), EVO_OK);
    k->ctx.err = &k->err;
}

static inline uint64_t kh_flops(kh_case *k)
{
    evo_op_cost cost = {0};
    assert_non_null(k->op->cost);
    k->op->cost(&k->ctx, &cost);
    return cost.flops;
}

static inline void kh_expect_shape(const evo_tensor *t, const int32_t *dims, int32_t rank)
{
    assert_int_equal(t->shape.rank, rank);
    for (int32_t i = 0; i < rank; i++)
        assert_int_equal(t->shape.dims[i], dims[i]);
}

static inline void kh_expect_f32(const evo_tensor *t, const float *want, size_t n, float tol)
{
    assert_int_equal(t->dtype, EVO_DT_FLOAT32);
    assert_int_equal(evo_shape_numel(&t->shape), (int64_t)n);
    const float *got = t->data;
    for (size_t i = 0; i < n; i++) {
        bool ok = (isinf(want[i]) && got[i] == want[i]) || (isnan(want[i]) && isnan(got[i])) ||
                  fabsf(got[i] - want[i]) <= tol;
        if (!ok)
            printf("element %zu: got %.8g, want %.8g\n", i, got[i], want[i]);
        assert_true(ok);
    }
}

static inline void kh_expect_i64(const evo_tensor *t, const int64_t *want, size_t n)
{
    assert_int_equal(t->dtype, EVO_DT_INT64);
    assert_int_equal(evo_shape_numel(&t->shape), (int64_t)n);
    const int64_t *got = t->data;
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i])
            printf("element %zu: got %lld, want %lld\n", i, (long long)got[i], (long long)want[i]);
        assert_true(got[i] == want[i]);
    }
}

#define KH_F32(t, tol, ...)                                                                        \
    kh_expect_f32(t, (const float[]){__VA_ARGS__},                                                 \
                  sizeof((const float[]){__VA_ARGS__}) / sizeof(float), tol)
#define KH_I64(t, ...)                                                                             \
    kh_expect_i64(t, (const int64_t[]){__VA_ARGS__},                                               \
                  sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

#endif /* KPOOL_HARNESS_H */
