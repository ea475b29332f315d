/*
 * Expand: broadcast the input to the bidirectional broadcast of its shape and
 * the constant `shape` input (a 1 in `shape` keeps the input's dim). Eval
 * walks the output rows; a broadcast innermost axis replicates one element,
 * otherwise a row is one contiguous copy.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Expand;

static evo_status expand_target(const evo_kctx *c, evo_shape *os)
{
    const evo_tensor *x = c->in[0], *st = c->in[1];
    if (st->dtype != EVO_DT_INT64 && st->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Expand: input 'shape' must be int64");
    if (st->shape.rank != 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Expand: input 'shape' must be 1-D");
    int32_t n = st->shape.dims[0];
    if (n > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Expand: target rank %d exceeds %d", (int)n,
                             EVO_MAX_RANK);
    if (n > 0 && st->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Expand: input 'shape' must be a constant to infer shapes");
    evo_shape want = {.rank = n};
    for (int32_t i = 0; i < n; i++) {
        int64_t v = st->dtype == EVO_DT_INT32 ? ((const int32_t *)st->data)[i]
                                              : ((const int64_t *)st->data)[i];
        if (v < 0 || v > EVO_MAX_DIM)
            return evo_error_set(c->err, v < 0 ? EVO_ERR_SHAPE : EVO_ERR_LIMIT,
                                 "Expand: shape[%d] = %lld is invalid", (int)i, (long long)v);
        want.dims[i] = (int32_t)v;
    }
    if (evo_shape_broadcast(&x->shape, &want, os) != EVO_OK) {
        char a[96], b[96];
        evo_shape_format(&x->shape, a, sizeof a);
        evo_shape_format(&want, b, sizeof b);
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Expand: cannot broadcast %s to %s", a, b);
    }
    return EVO_OK;
}

static evo_status expand_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Expand, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Expand: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    evo_shape os;
    if ((rv = expand_target(c, &os)) != EVO_OK)
        return rv;
    size_t nbytes;
    if (evo_shape_nbytes(&os, x->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Expand: output is too large");
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void expand_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status expand_eval(const evo_kctx *c)
{
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    const evo_shape *os = &y->shape;
    size_t es = evo_dtype_size(x->dtype);
    int64_t numel = evo_shape_numel(os);
    if (numel <= 0)
        return EVO_OK;
    int32_t rank = os->rank;
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return EVO_OK;
    }
    /* Input strides aligned to the output's axes; 0 where broadcast. */
    int64_t istride[EVO_MAX_RANK];
    int64_t s = 1;
    for (int32_t d = rank - 1; d >= 0; d--) {
        int32_t xd = x->shape.rank - rank + d;
        int32_t dim = xd >= 0 ? x->shape.dims[xd] : 1;
        istride[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
    int32_t last = rank - 1;
    int64_t n_last = os->dims[last];
    int64_t rows = numel / n_last;
    int64_t idx[EVO_MAX_RANK] = {0};
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int32_t d = 0; d < last; d++)
            off += idx[d] * istride[d];
        const unsigned char *row = src + (size_t)off * es;
        if (istride[last] != 0) {
            memcpy(dst, row, (size_t)n_last * es);
            dst += (size_t)n_last * es;
        } else if (es == 1) {
            memset(dst, row[0], (size_t)n_last);
            dst += n_last;
        } else {
            for (int64_t i = 0; i < n_last; i++, dst += es)
                memcpy(dst, row, es);
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++idx[d] < os->dims[d])
                break;
            idx[d] = 0;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Expand = {
    .name = "Expand",
    .domain = "",
    .id = 74,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = expand_infer,
    .cost = expand_cost,
    .eval = expand_eval,
};
