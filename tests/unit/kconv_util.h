/*
 * Helpers shared by the kconv tests (Conv, ConvTranspose, Gemm, MatMul):
 * building a node with attributes, running an op's parse/infer/scratch/eval
 * the way the executor does, and comparing outputs.
 *
 * Scratch is allocated with a guard zone behind it that must survive eval,
 * so a scratch() callback that under-declares its needs fails the test.
 */
#ifndef KCONV_UTIL_H
#define KCONV_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "evo/op.h"
#include "kernels/cpu.h"

#define KC_GUARD 256
#define KC_GUARD_BYTE 0xA5

static inline void kc_attr_int(evo_attr *a, const char *name, int64_t v)
{
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = EVO_ATTR_INT;
    a->i = v;
}

static inline void kc_attr_float(evo_attr *a, const char *name, float v)
{
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = EVO_ATTR_FLOAT;
    a->f = v;
}

static inline void kc_attr_str(evo_attr *a, const char *name, const char *s)
{
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = EVO_ATTR_STRING;
    a->s = (char *)s;
}

/* v must outlive the node. */
static inline void kc_attr_ints(evo_attr *a, const char *name, const int64_t *v, size_t n)
{
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = EVO_ATTR_INTS;
    a->ints = (int64_t *)v;
    a->count = n;
}

static inline void kc_node(evo_node *node, const char *op_type, evo_attr *attrs, int32_t n_attrs)
{
    memset(node, 0, sizeof *node);
    node->name = (char *)"test_node";
    node->op_type = (char *)op_type;
    node->domain = (char *)"";
    node->opset = 18;
    node->attrs = attrs;
    node->n_attrs = n_attrs;
}

/* A tensor view of shape dims[0..rank) (data may be NULL). */
static inline void kc_tensor(evo_tensor *t, evo_dtype dt, void *data, int32_t rank,
                             const int32_t *dims)
{
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->data = data;
    t->shape.rank = rank;
    for (int32_t i = 0; i < rank; i++)
        t->shape.dims[i] = dims[i];
}

/* Parse attributes of node with op into params (zeroed first). */
static inline evo_status kc_parse(const evo_op_def *op, const evo_node *node, void *params,
                                  evo_error *err)
{
    memset(params, 0, EVO_PARAMS_MAX);
    if (op->parse == NULL)
        return EVO_OK;
    return op->parse(node, params, err);
}

static inline evo_status kc_infer(const evo_op_def *op, const void *params, evo_tensor **in,
                                  int32_t n_in, evo_tensor *out, evo_error *err)
{
    evo_tensor *outs[1] = {out};
    evo_kctx c = {.params = params, .in = in, .n_in = n_in, .out = outs, .n_out = 1, .err = err};
    evo_error_clear(err);
    return op->infer(&c);
}

/* Run eval with out->data already allocated; checks the scratch guard. */
static inline evo_status kc_eval(const evo_op_def *op, const void *params, evo_tensor **in,
                                 int32_t n_in, evo_tensor *out)
{
    evo_tensor *outs[1] = {out};
    evo_kctx c = {.params = params, .in = in, .n_in = n_in, .out = outs, .n_out = 1};
    size_t sb = op->scratch != NULL ? op->scratch(&c) : 0;
    unsigned char *raw = malloc(sb + KC_GUARD + 16);
    assert_non_null(raw);
    /* 16-byte aligned as the executor promises. */
    unsigned char *scratch = (unsigned char *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
    memset(scratch + sb, KC_GUARD_BYTE, KC_GUARD);
    c.scratch = sb > 0 ? scratch : NULL;
    c.scratch_bytes = sb;
    evo_status rv = op->eval(&c);
    for (size_t i = 0; i < KC_GUARD; i++)
        if (scratch[sb + i] != KC_GUARD_BYTE)
            fail_msg("%s wrote past its declared scratch (%zu bytes)", op->name, sb);
    free(raw);
    return rv;
}

static inline uint32_t kc_rand_u32(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* Uniform in [lo, hi). */
static inline int64_t kc_rand_range(uint64_t *state, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(kc_rand_u32(state) % (uint32_t)(hi - lo));
}

static inline void kc_fill(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(kc_rand_u32(state) % 20001u) / 10000.0f - 1.0f;
}

/* Fail unless |got - want| <= tol * (1 + |want|) everywhere. */
static inline void kc_expect_close(const float *got, const float *want, size_t n, float tol,
                                   const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const float d = fabsf(got[i] - want[i]);
        if (!(d <= tol * (1.0f + fabsf(want[i]))))
            fail_msg("%s: element %zu is %.7g, expected %.7g", what, i, (double)got[i],
                     (double)want[i]);
    }
}

static inline size_t kc_numel(const evo_tensor *t)
{
    int64_t n = evo_shape_numel(&t->shape);
    assert_true(n >= 0);
    return (size_t)n;
}

/* The same op under two weight layouts: params/in is the ONNX-layout
 * original, alt_params/alt_in the relaid one (3 inputs each). Both must
 * infer the same output shape, and under every one of the n_paths kernel
 * paths the relaid op must match the original's reference result within
 * tol. Leaves the path at EVO_KPATH_AUTO. */
static inline void kc_layouts_agree(const evo_op_def *op, const void *params, evo_tensor **in,
                                    const void *alt_params, evo_tensor **alt_in,
                                    const evo_kernel_path *paths, size_t n_paths, float tol,
                                    const char *what)
{
    evo_tensor ty, tya;
    memset(&ty, 0, sizeof ty);
    memset(&tya, 0, sizeof tya);
    evo_error err;
    assert_int_equal(kc_infer(op, params, in, 3, &ty, &err), EVO_OK);
    if (kc_infer(op, alt_params, alt_in, 3, &tya, &err) != EVO_OK)
        fail_msg("%s infer: %s", what, err.msg);
    assert_true(evo_shape_equal(&ty.shape, &tya.shape));
    const size_t ny = kc_numel(&ty);
    float *want = malloc(ny * 4), *got = malloc(ny * 4);
    assert_non_null(want);
    assert_non_null(got);
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    ty.data = want;
    assert_int_equal(kc_eval(op, params, in, 3, &ty), EVO_OK);
    for (size_t p = 0; p < n_paths; p++) {
        evo_kernels_force_path(paths[p]);
        for (size_t i = 0; i < ny; i++)
            got[i] = NAN;
        tya.data = got;
        assert_int_equal(kc_eval(op, alt_params, alt_in, 3, &tya), EVO_OK);
        kc_expect_close(got, want, ny, tol, what);
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(want);
    free(got);
}

/* Conv shape inference on a float32 X [xr: xd] and W [wr: wd] (no bias)
 * with already parsed params p: the status, *y's shape and err. */
static inline evo_status kc_conv_infer(const void *p, int32_t xr, const int32_t *xd, int32_t wr,
                                       const int32_t *wd, evo_tensor *y, evo_error *err)
{
    extern const evo_op_def evo_op_Conv;
    evo_tensor tx, tw;
    kc_tensor(&tx, EVO_DT_FLOAT32, NULL, xr, xd);
    kc_tensor(&tw, EVO_DT_FLOAT32, NULL, wr, wd);
    evo_tensor *in[3] = {&tx, &tw, NULL};
    memset(y, 0, sizeof *y);
    evo_error_clear(err);
    return kc_infer(&evo_op_Conv, p, in, 3, y, err);
}

/* The same must fail with status code and a message containing fragment. */
static inline void kc_conv_expect_error(const void *p, int32_t xr, const int32_t *xd, int32_t wr,
                                        const int32_t *wd, evo_status code, const char *fragment)
{
    evo_tensor y;
    evo_error err;
    evo_status rv = kc_conv_infer(p, xr, xd, wr, wd, &y, &err);
    if (rv != code)
        fail_msg("[%s] expected status %d, got %d (%s)", fragment, (int)code, (int)rv, err.msg);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
}

#endif /* KCONV_UTIL_H */
