/*
 * Concat: join tensors along one axis. Pure data movement, so it works for
 * every dtype with an element size: each input contributes, per outer index,
 * one contiguous run of (axis dim * inner) elements.
 */
#include <string.h>

#include "evo/op.h"

typedef struct concat_params {
    int64_t axis;
} concat_params;
_Static_assert(sizeof(concat_params) <= EVO_PARAMS_MAX, "concat params too large");

extern const evo_op_def evo_op_Concat;

static evo_status concat_parse(const evo_node *node, void *params, evo_error *err)
{
    concat_params *p = params;
    if (evo_node_attr(node, "axis") == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "Concat node '%s' lacks the required 'axis'",
                             node->name);
    if (evo_attr_get_int(node, "axis", 0, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Concat node '%s': 'axis' must be an int",
                             node->name);
    return EVO_OK;
}

static evo_status concat_infer(const evo_kctx *c)
{
    const concat_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Concat, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *first = c->in[0];
    if (evo_dtype_size(first->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Concat: dtype %s has no element size",
                             evo_dtype_name(first->dtype));
    int32_t rank = first->shape.rank, axis;
    if (rank < 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Concat: inputs must have rank >= 1");
    if (evo_op_norm_axis(p->axis, rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Concat: axis %lld is out of range for rank %d",
                             (long long)p->axis, (int)rank);
    evo_shape os = first->shape;
    int64_t total = 0;
    for (int32_t i = 0; i < c->n_in; i++) {
        const evo_tensor *t = c->in[i];
        if (t == NULL)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "Concat: input %d is missing", (int)i);
        if (t->dtype != first->dtype)
            return evo_error_set(c->err, EVO_ERR_TYPE,
                                 "Concat: input %d has dtype %s but input 0 has %s", (int)i,
                                 evo_dtype_name(t->dtype), evo_dtype_name(first->dtype));
        if (t->shape.rank != rank)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Concat: input %d has rank %d but input 0 has rank %d", (int)i,
                                 (int)t->shape.rank, (int)rank);
        for (int32_t d = 0; d < rank; d++) {
            if (d != axis && t->shape.dims[d] != first->shape.dims[d])
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "Concat: input %d has dim %d = %d but input 0 has %d", (int)i,
                                     (int)d, (int)t->shape.dims[d], (int)first->shape.dims[d]);
        }
        total += t->shape.dims[axis];
    }
    if (total > EVO_MAX_DIM)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Concat: output axis length %lld is too large",
                             (long long)total);
    os.dims[axis] = (int32_t)total;
    size_t nbytes;
    if (evo_shape_nbytes(&os, first->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Concat: output is too large");
    c->out[0]->dtype = first->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void concat_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status concat_eval(const evo_kctx *c)
{
    const concat_params *p = c->params;
    evo_tensor *out = c->out[0];
    int32_t rank = out->shape.rank, axis;
    evo_op_norm_axis(p->axis, rank, &axis);
    size_t es = evo_dtype_size(out->dtype);
    size_t outer = 1, inner = 1;
    for (int32_t d = 0; d < axis; d++)
        outer *= (size_t)out->shape.dims[d];
    for (int32_t d = axis + 1; d < rank; d++)
        inner *= (size_t)out->shape.dims[d];
    size_t out_run = (size_t)out->shape.dims[axis] * inner * es;
    unsigned char *dst = out->data;
    size_t off = 0;
    for (int32_t i = 0; i < c->n_in; i++) {
        const evo_tensor *t = c->in[i];
        size_t run = (size_t)t->shape.dims[axis] * inner * es;
        if (run == 0)
            continue;
        const unsigned char *src = t->data;
        for (size_t o = 0; o < outer; o++)
            memcpy(dst + o * out_run + off, src + o * run, run);
        off += run;
    }
    return EVO_OK;
}

const evo_op_def evo_op_Concat = {
    .name = "Concat",
    .domain = "",
    .id = 65,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = -1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = concat_parse,
    .infer = concat_infer,
    .cost = concat_cost,
    .eval = concat_eval,
};
