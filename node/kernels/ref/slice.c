/*
 * Slice (opset 10+ form): starts, ends and optional axes and steps arrive as
 * constant int32/int64 inputs. Infer and eval share one planner that clamps
 * per the ONNX spec (negative indices count from the end; starts/ends clamp
 * to [0, dim] for positive steps and [-1, dim-1] for negative ones, so
 * INT64_MAX / INT64_MIN act as "to the end"). Eval copies contiguous runs
 * when the innermost step is 1.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Slice;

typedef struct slice_plan {
    int64_t start[EVO_MAX_RANK];
    int64_t step[EVO_MAX_RANK];
    evo_shape shape;
} slice_plan;

static int64_t slice_int_at(const evo_tensor *t, int64_t i)
{
    return t->dtype == EVO_DT_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static evo_status slice_check_param(const evo_kctx *c, int32_t idx, const char *name,
                                    int64_t *count)
{
    const evo_tensor *t = c->in[idx];
    if (t->dtype != EVO_DT_INT64 && t->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Slice: input '%s' must be int32 or int64",
                             name);
    if (t->shape.rank != 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Slice: input '%s' must be 1-D", name);
    if (t->data == NULL && t->shape.dims[0] > 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Slice: input '%s' must be a constant to infer shapes", name);
    *count = t->shape.dims[0];
    return EVO_OK;
}

static bool slice_present(const evo_kctx *c, int32_t idx)
{
    return c->n_in > idx && c->in[idx] != NULL;
}

/* Clamp start/end for one axis and compute the element count. */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *out_start,
                       int64_t *out_count)
{
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    int64_t span;
    if (step > 0) {
        start = start < 0 ? 0 : (start > dim ? dim : start);
        end = end < 0 ? 0 : (end > dim ? dim : end);
        span = end - start;
    } else {
        start = start < 0 ? 0 : (start > dim - 1 ? dim - 1 : start);
        end = end < -1 ? -1 : (end > dim - 1 ? dim - 1 : end);
        span = start - end;
    }
    /* Any |step| beyond the axis length gives at most one element; bounding
     * it keeps the arithmetic away from INT64_MIN. */
    uint64_t mag = step > 0 ? (uint64_t)step : (uint64_t)0 - (uint64_t)step;
    if (mag > ((uint64_t)1 << 40))
        mag = (uint64_t)1 << 40;
    if (dim == 0)
        span = 0;
    *out_start = start;
    *out_count = span <= 0 ? 0 : (span + (int64_t)mag - 1) / (int64_t)mag;
}

static evo_status slice_make_plan(const evo_kctx *c, slice_plan *pl)
{
    const evo_tensor *x = c->in[0];
    int32_t rank = x->shape.rank;
    int64_t n_starts, n_ends, n_axes = 0, n_steps = 0;
    evo_status rv;
    if ((rv = slice_check_param(c, 1, "starts", &n_starts)) != EVO_OK ||
        (rv = slice_check_param(c, 2, "ends", &n_ends)) != EVO_OK)
        return rv;
    if (slice_present(c, 3) && (rv = slice_check_param(c, 3, "axes", &n_axes)) != EVO_OK)
        return rv;
    if (slice_present(c, 4) && (rv = slice_check_param(c, 4, "steps", &n_steps)) != EVO_OK)
        return rv;
    if (n_ends != n_starts || (slice_present(c, 3) && n_axes != n_starts) ||
        (slice_present(c, 4) && n_steps != n_starts))
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Slice: starts, ends, axes and steps must have the same length");
    if (n_starts > rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Slice: %lld slice entries for a tensor of rank %d",
                             (long long)n_starts, (int)rank);
    pl->shape = x->shape;
    for (int32_t d = 0; d < rank; d++) {
        pl->start[d] = 0;
        pl->step[d] = 1;
    }
    bool seen[EVO_MAX_RANK] = {false};
    for (int64_t i = 0; i < n_starts; i++) {
        int64_t a = slice_present(c, 3) ? slice_int_at(c->in[3], i) : i;
        int32_t axis;
        if (evo_op_norm_axis(a, rank, &axis) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Slice: axis %lld is out of range for rank %d", (long long)a,
                                 (int)rank);
        if (seen[axis])
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Slice: axis %d is repeated", (int)axis);
        seen[axis] = true;
        int64_t step = slice_present(c, 4) ? slice_int_at(c->in[4], i) : 1;
        if (step == 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Slice: step for axis %d is 0", (int)axis);
        int64_t start, count;
        slice_axis(x->shape.dims[axis], slice_int_at(c->in[1], i), slice_int_at(c->in[2], i), step,
                   &start, &count);
        pl->start[axis] = start;
        pl->step[axis] = step;
        pl->shape.dims[axis] = (int32_t)count;
    }
    return EVO_OK;
}

static evo_status slice_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Slice, c);
    if (rv != EVO_OK)
        return rv;
    if (evo_dtype_size(c->in[0]->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Slice: dtype %s has no element size",
                             evo_dtype_name(c->in[0]->dtype));
    slice_plan pl;
    if ((rv = slice_make_plan(c, &pl)) != EVO_OK)
        return rv;
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = pl.shape;
    return EVO_OK;
}

static void slice_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status slice_eval(const evo_kctx *c)
{
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    slice_plan pl;
    evo_status rv = slice_make_plan(c, &pl);
    if (rv != EVO_OK)
        return rv;
    int64_t numel = evo_shape_numel(&pl.shape);
    if (numel <= 0)
        return EVO_OK;
    size_t es = evo_dtype_size(x->dtype);
    int32_t rank = x->shape.rank;
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return EVO_OK;
    }
    int64_t stride[EVO_MAX_RANK];
    int64_t s = 1;
    for (int32_t d = rank - 1; d >= 0; d--) {
        stride[d] = s;
        s *= x->shape.dims[d];
    }
    int32_t last = rank - 1;
    int64_t n_last = pl.shape.dims[last];
    int64_t step_last = pl.step[last] * stride[last];
    int64_t rows = numel / n_last;
    int64_t idx[EVO_MAX_RANK] = {0};
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = pl.start[last] * stride[last];
        for (int32_t d = 0; d < last; d++)
            off += (pl.start[d] + idx[d] * pl.step[d]) * stride[d];
        if (step_last == 1) {
            memcpy(dst, src + off * (int64_t)es, (size_t)n_last * es);
            dst += (size_t)n_last * es;
        } else {
            for (int64_t i = 0; i < n_last; i++, dst += es)
                memcpy(dst, src + (off + i * step_last) * (int64_t)es, es);
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++idx[d] < pl.shape.dims[d])
                break;
            idx[d] = 0;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Slice = {
    .name = "Slice",
    .domain = "",
    .id = 67,
    .flags = 0,
    .min_inputs = 3,
    .max_inputs = 5,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = slice_infer,
    .cost = slice_cost,
    .eval = slice_eval,
};
