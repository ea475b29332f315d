/*
 * Tile: repeat the input along each axis by the constant `repeats` input
 * (one non-negative entry per axis). Eval builds each output row from its
 * input row, copied `repeats[last]` times.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Tile;

static int64_t tile_rep(const evo_tensor *t, int32_t i)
{
    return t->dtype == EVO_DT_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static evo_status tile_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Tile, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *rt = c->in[1];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Tile: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    if (rt->dtype != EVO_DT_INT64 && rt->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Tile: input 'repeats' must be int64");
    int32_t rank = x->shape.rank;
    if (rt->shape.rank != 1 || rt->shape.dims[0] != rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Tile: input 'repeats' must be 1-D with %d entries (the input rank)",
                             (int)rank);
    if (rank > 0 && rt->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Tile: input 'repeats' must be a constant to infer shapes");
    evo_shape os = {.rank = rank};
    for (int32_t d = 0; d < rank; d++) {
        int64_t r = tile_rep(rt, d);
        if (r < 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Tile: repeats[%d] = %lld is negative",
                                 (int)d, (long long)r);
        int64_t dim = x->shape.dims[d];
        if (dim != 0 && r > EVO_MAX_DIM / dim)
            return evo_error_set(c->err, EVO_ERR_LIMIT,
                                 "Tile: axis %d would have %lld x %lld elements, too many", (int)d,
                                 (long long)dim, (long long)r);
        os.dims[d] = (int32_t)(dim * r);
    }
    size_t nbytes;
    if (evo_shape_nbytes(&os, x->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Tile: output is too large");
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void tile_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

static evo_status tile_eval(const evo_kctx *c)
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
    int64_t istride[EVO_MAX_RANK];
    int64_t s = 1;
    for (int32_t d = rank - 1; d >= 0; d--) {
        istride[d] = s;
        s *= x->shape.dims[d];
    }
    int32_t last = rank - 1;
    int64_t n_last = os->dims[last], in_last = x->shape.dims[last];
    size_t in_run = (size_t)in_last * es;
    int64_t rows = numel / n_last;
    int64_t idx[EVO_MAX_RANK] = {0};
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int32_t d = 0; d < last; d++)
            off += (idx[d] % x->shape.dims[d]) * istride[d];
        for (int64_t k = 0; k < n_last / in_last; k++, dst += in_run)
            memcpy(dst, src + (size_t)off * es, in_run);
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++idx[d] < os->dims[d])
                break;
            idx[d] = 0;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Tile = {
    .name = "Tile",
    .domain = "",
    .id = 75,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = tile_infer,
    .cost = tile_cost,
    .eval = tile_eval,
};
