/*
 * Gather: pick slices of `data` along `axis` by int32/int64 indices
 * (negative ones count from the end). Output shape is
 * data[:axis] + indices + data[axis+1:]. Index values are data, so they are
 * checked at eval: an out-of-range index is EVO_ERR_INVALID_ARG and nothing is
 * read out of bounds.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Gather;

typedef struct gather_params {
    int64_t axis;
} gather_params;
_Static_assert(sizeof(gather_params) <= EVO_PARAMS_MAX, "gather params too large");

static evo_status gather_parse(const evo_node *node, void *params, evo_error *err)
{
    gather_params *p = params;
    if (evo_attr_get_int(node, "axis", 0, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Gather node '%s': 'axis' must be an int",
                             node->name);
    return EVO_OK;
}

static evo_status gather_infer(const evo_kctx *c)
{
    const gather_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Gather, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *ind = c->in[1];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Gather: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    if (ind->dtype != EVO_DT_INT32 && ind->dtype != EVO_DT_INT64)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Gather: indices must be int32 or int64, not %s",
                             evo_dtype_name(ind->dtype));
    int32_t r = x->shape.rank, q = ind->shape.rank, axis;
    if (r < 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Gather: data must have rank >= 1");
    if (evo_op_norm_axis(p->axis, r, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Gather: axis %lld is out of range for rank %d",
                             (long long)p->axis, (int)r);
    if (q + r - 1 > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Gather: output rank %d exceeds %d",
                             (int)(q + r - 1), EVO_MAX_RANK);
    evo_shape os = {.rank = q + r - 1};
    int32_t k = 0;
    for (int32_t d = 0; d < axis; d++)
        os.dims[k++] = x->shape.dims[d];
    for (int32_t d = 0; d < q; d++)
        os.dims[k++] = ind->shape.dims[d];
    for (int32_t d = axis + 1; d < r; d++)
        os.dims[k++] = x->shape.dims[d];
    size_t nbytes;
    if (evo_shape_nbytes(&os, x->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Gather: output is too large");
    /* Constant indices can be checked now, giving the error before any run. */
    if (ind->data != NULL) {
        int64_t n = evo_shape_numel(&ind->shape), dim = x->shape.dims[axis];
        for (int64_t i = 0; i < n; i++) {
            int64_t v = ind->dtype == EVO_DT_INT32 ? ((const int32_t *)ind->data)[i]
                                                   : ((const int64_t *)ind->data)[i];
            if (v < -dim || v >= dim)
                return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                     "Gather: index %lld is out of range for axis length %lld",
                                     (long long)v, (long long)dim);
        }
    }
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void gather_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status gather_eval(const evo_kctx *c)
{
    const gather_params *p = c->params;
    const evo_tensor *x = c->in[0], *ind = c->in[1];
    int32_t axis;
    evo_op_norm_axis(p->axis, x->shape.rank, &axis);
    size_t es = evo_dtype_size(x->dtype);
    size_t outer = 1, inner = 1;
    for (int32_t d = 0; d < axis; d++)
        outer *= (size_t)x->shape.dims[d];
    for (int32_t d = axis + 1; d < x->shape.rank; d++)
        inner *= (size_t)x->shape.dims[d];
    int64_t dim = x->shape.dims[axis];
    int64_t n = evo_shape_numel(&ind->shape);
    /* Check every index before writing, so a bad one leaves no partial output. */
    for (int64_t i = 0; i < n; i++) {
        int64_t v = ind->dtype == EVO_DT_INT32 ? ((const int32_t *)ind->data)[i]
                                               : ((const int64_t *)ind->data)[i];
        if (v < -dim || v >= dim)
            return EVO_ERR_INVALID_ARG;
    }
    size_t run = inner * es;
    const unsigned char *src = x->data;
    unsigned char *dst = c->out[0]->data;
    for (size_t o = 0; o < outer; o++) {
        const unsigned char *base = src + o * (size_t)dim * run;
        for (int64_t i = 0; i < n; i++, dst += run) {
            int64_t v = ind->dtype == EVO_DT_INT32 ? ((const int32_t *)ind->data)[i]
                                                   : ((const int64_t *)ind->data)[i];
            if (v < 0)
                v += dim;
            memcpy(dst, base + (size_t)v * run, run);
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Gather = {
    .name = "Gather",
    .domain = "",
    .id = 73,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gather_parse,
    .infer = gather_infer,
    .cost = gather_cost,
    .eval = gather_eval,
};
