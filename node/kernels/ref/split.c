/*
 * Split: cut a tensor into pieces along one axis. The piece lengths come from
 * the optional constant `split` input, else from the opset-18 `num_outputs`
 * attribute (ceil-sized chunks, the last one smaller), else an equal split
 * over the node's outputs. Pure data movement for every sized dtype.
 */
#include <string.h>

#include "evo/op.h"

typedef struct split_params {
    int64_t axis;
    int64_t num_outputs; /* 0 = attribute absent */
} split_params;
_Static_assert(sizeof(split_params) <= EVO_PARAMS_MAX, "split params too large");

extern const evo_op_def evo_op_Split;

static evo_status split_parse(const evo_node *node, void *params, evo_error *err)
{
    split_params *p = params;
    if (evo_attr_get_int(node, "axis", 0, &p->axis) != EVO_OK ||
        evo_attr_get_int(node, "num_outputs", 0, &p->num_outputs) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "Split node '%s': 'axis' and 'num_outputs' must be ints", node->name);
    if (evo_node_attr(node, "num_outputs") != NULL && p->num_outputs < 1)
        return evo_error_set(err, EVO_ERR_PARSE, "Split node '%s': num_outputs must be >= 1",
                             node->name);
    return EVO_OK;
}

static int64_t split_int_at(const evo_tensor *t, int64_t i)
{
    return t->dtype == EVO_DT_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static bool split_has_sizes(const evo_kctx *c)
{
    return c->n_in > 1 && c->in[1] != NULL && evo_shape_numel(&c->in[1]->shape) > 0;
}

/* Length of piece i along an axis of length dim; infer has checked it. */
static int64_t split_piece(const evo_kctx *c, int64_t dim, int32_t i)
{
    const split_params *p = c->params;
    if (split_has_sizes(c))
        return split_int_at(c->in[1], i);
    if (p->num_outputs > 0) {
        int64_t chunk = (dim + p->num_outputs - 1) / p->num_outputs;
        return i + 1 < c->n_out ? chunk : dim - chunk * (c->n_out - 1);
    }
    return dim / c->n_out;
}

static evo_status split_infer(const evo_kctx *c)
{
    const split_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Split, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Split: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    int32_t axis;
    if (evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Split: axis %lld is out of range for rank %d",
                             (long long)p->axis, (int)x->shape.rank);
    int64_t dim = x->shape.dims[axis];
    if (split_has_sizes(c)) {
        const evo_tensor *s = c->in[1];
        if (s->dtype != EVO_DT_INT64 && s->dtype != EVO_DT_INT32)
            return evo_error_set(c->err, EVO_ERR_TYPE, "Split: input 'split' must be int64");
        if (s->data == NULL)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Split: input 'split' must be a constant to infer shapes");
        if (s->shape.rank != 1 || s->shape.dims[0] != c->n_out)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Split: input 'split' must be 1-D with one entry per output (%d)",
                                 (int)c->n_out);
        int64_t sum = 0;
        for (int32_t i = 0; i < c->n_out; i++) {
            int64_t v = split_int_at(s, i);
            if (v < 0 || v > dim)
                return evo_error_set(c->err, EVO_ERR_SHAPE, "Split: split[%d] = %lld is invalid",
                                     (int)i, (long long)v);
            sum += v;
        }
        if (sum != dim)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Split: split sums to %lld but the axis has length %lld",
                                 (long long)sum, (long long)dim);
    } else if (p->num_outputs > 0) {
        if (p->num_outputs != c->n_out)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Split: num_outputs is %lld but the node has %d outputs",
                                 (long long)p->num_outputs, (int)c->n_out);
        int64_t chunk = (dim + p->num_outputs - 1) / p->num_outputs;
        if (dim - chunk * (c->n_out - 1) < 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Split: axis length %lld cannot be split into %d chunks",
                                 (long long)dim, (int)c->n_out);
    } else if (dim % c->n_out != 0) {
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Split: axis length %lld is not divisible by %d outputs",
                             (long long)dim, (int)c->n_out);
    }
    for (int32_t i = 0; i < c->n_out; i++) {
        if (c->out[i] == NULL)
            continue;
        c->out[i]->dtype = x->dtype;
        c->out[i]->shape = x->shape;
        c->out[i]->shape.dims[axis] = (int32_t)split_piece(c, dim, i);
    }
    return EVO_OK;
}

static void split_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status split_eval(const evo_kctx *c)
{
    const split_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int32_t axis;
    evo_op_norm_axis(p->axis, x->shape.rank, &axis);
    size_t es = evo_dtype_size(x->dtype);
    size_t outer = 1, inner = 1;
    for (int32_t d = 0; d < axis; d++)
        outer *= (size_t)x->shape.dims[d];
    for (int32_t d = axis + 1; d < x->shape.rank; d++)
        inner *= (size_t)x->shape.dims[d];
    int64_t dim = x->shape.dims[axis];
    size_t in_run = (size_t)dim * inner * es;
    const unsigned char *src = x->data;
    size_t off = 0;
    for (int32_t i = 0; i < c->n_out; i++) {
        size_t run = (size_t)split_piece(c, dim, i) * inner * es;
        if (c->out[i] != NULL && run > 0) {
            unsigned char *dst = c->out[i]->data;
            for (size_t o = 0; o < outer; o++)
                memcpy(dst + o * run, src + o * in_run + off, run);
        }
        off += run;
    }
    return EVO_OK;
}

const evo_op_def evo_op_Split = {
    .name = "Split",
    .domain = "",
    .id = 66,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = -1,
    .parse = split_parse,
    .infer = split_infer,
    .cost = split_cost,
    .eval = split_eval,
};
