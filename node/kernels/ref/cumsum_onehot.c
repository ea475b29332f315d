/*
 * CumSum and OneHot.
 *
 *   CumSum(x, axis; exclusive=0, reverse=0)  running sums along axis
 *       (float32, int32, int64; integer sums wrap). axis is an int32 or
 *       int64 scalar; it does not change the shape, so it is read at eval
 *       (and checked at infer when constant).
 *   OneHot(indices, depth, values; axis=-1)  output = indices' shape with a
 *       new dim of length depth inserted at axis; element [.., d, ..] is
 *       values[1] where indices[..] == d and values[0] elsewhere. Negative
 *       indices count from depth; indices outside [-depth, depth) give an
 *       all-off row. depth must be constant (it fixes the shape); indices
 *       and depth may be any numeric type (floats are truncated, as ONNX
 *       Runtime does).
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef struct co_params {
    int64_t axis;
    int32_t exclusive;
    int32_t reverse;
} co_params;
_Static_assert(sizeof(co_params) <= EVO_PARAMS_MAX, "co_params too large");

extern const evo_op_def evo_op_CumSum;
extern const evo_op_def evo_op_OneHot;

/* One numeric element as int64 (floats truncated; NaN and out-of-range
 * values saturate, so they never become a valid index by accident). */
static int64_t co_read_i64(const evo_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case EVO_DT_FLOAT32: {
        float v = ((const float *)t->data)[i];
        if (!(v > -9.2e18f && v < 9.2e18f))
            return v > 0 ? INT64_MAX : INT64_MIN;
        return (int64_t)v;
    }
    case EVO_DT_INT32:
        return ((const int32_t *)t->data)[i];
    case EVO_DT_INT64:
        return ((const int64_t *)t->data)[i];
    case EVO_DT_INT8:
        return ((const int8_t *)t->data)[i];
    case EVO_DT_UINT8:
        return ((const uint8_t *)t->data)[i];
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- CumSum */

static evo_status co_parse_cumsum(const evo_node *node, void *params, evo_error *err)
{
    co_params *p = params;
    int64_t ex, rev;
    if (evo_attr_get_int(node, "exclusive", 0, &ex) != EVO_OK ||
        evo_attr_get_int(node, "reverse", 0, &rev) != EVO_OK || (ex != 0 && ex != 1) ||
        (rev != 0 && rev != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "CumSum node '%s': exclusive and reverse must be 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    p->exclusive = (int32_t)ex;
    p->reverse = (int32_t)rev;
    return EVO_OK;
}

static evo_status co_infer_cumsum(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_CumSum, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *ax = c->in[1];
    if ((rv = kpool_check_tensor(c, "CumSum", "x", x)) != EVO_OK)
        return rv;
    if (x->dtype != EVO_DT_FLOAT32 && x->dtype != EVO_DT_INT32 && x->dtype != EVO_DT_INT64)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "CumSum: x has type %s; evo supports float32, int32 and int64",
                             evo_dtype_name(x->dtype));
    if ((ax->dtype != EVO_DT_INT32 && ax->dtype != EVO_DT_INT64) ||
        evo_shape_numel(&ax->shape) != 1 || ax->shape.rank > 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "CumSum: axis must be an int32 or int64 scalar");
    if (x->shape.rank < 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "CumSum: x must have rank >= 1");
    if (ax->data != NULL) {
        int32_t a;
        int64_t v = co_read_i64(ax, 0);
        if (evo_op_norm_axis(v, x->shape.rank, &a) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "CumSum: axis %lld is out of range for rank %d", (long long)v,
                                 (int)x->shape.rank);
    }
    return kpool_set_out(c, "CumSum", c->out[0], x->dtype, &x->shape);
}

/* Lines of n elements at stride `inner`; W is the accumulator type. */
#define CO_CUMSUM(SFX, T, W)                                                                       \
    static void co_cumsum_##SFX(const T *x, T *y, int64_t outer, int64_t n, int64_t inner,         \
                                bool exclusive, bool reverse)                                      \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            for (int64_t in = 0; in < inner; in++) {                                               \
                const T *xl = x + o * n * inner + in;                                              \
                T *yl = y + o * n * inner + in;                                                    \
                W acc = 0;                                                                         \
                for (int64_t s = 0; s < n; s++) {                                                  \
                    int64_t i = (reverse ? n - 1 - s : s) * inner;                                 \
                    W v = (W)xl[i];                                                                \
                    if (exclusive) {                                                               \
                        yl[i] = (T)acc;                                                            \
                        acc += v;                                                                  \
                    } else {                                                                       \
                        acc += v;                                                                  \
                        yl[i] = (T)acc;                                                            \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
CO_CUMSUM(f32, float, float)
CO_CUMSUM(i32, int32_t, uint32_t)
CO_CUMSUM(i64, int64_t, uint64_t)

static evo_status co_eval_cumsum(const evo_kctx *c)
{
    const co_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int32_t axis;
    if (evo_op_norm_axis(co_read_i64(c->in[1], 0), x->shape.rank, &axis) != EVO_OK)
        return EVO_ERR_INVALID_ARG; /* a computed axis out of range */
    int64_t outer = kpool_prod(&x->shape, 0, axis), n = x->shape.dims[axis];
    int64_t inner = kpool_prod(&x->shape, axis + 1, x->shape.rank);
    bool ex = p->exclusive != 0, rev = p->reverse != 0;
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
        co_cumsum_f32(x->data, c->out[0]->data, outer, n, inner, ex, rev);
        break;
    case EVO_DT_INT32:
        co_cumsum_i32(x->data, c->out[0]->data, outer, n, inner, ex, rev);
        break;
    case EVO_DT_INT64:
        co_cumsum_i64(x->data, c->out[0]->data, outer, n, inner, ex, rev);
        break;
    default:
        return EVO_ERR_INTERNAL;
    }
    return EVO_OK;
}

static void co_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_numel_u(c->out[0]);
}

/* In place: each element is read before it is written (same index). */
const evo_op_def evo_op_CumSum = {
    .name = "CumSum",
    .domain = "",
    .id = 123,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = co_parse_cumsum,
    .infer = co_infer_cumsum,
    .cost = co_cost,
    .eval = co_eval_cumsum,
};

/* ---------------------------------------------------------------- OneHot */

static evo_status co_parse_onehot(const evo_node *node, void *params, evo_error *err)
{
    if (evo_attr_get_int(node, "axis", -1, &((co_params *)params)->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "OneHot node '%s': axis must be an int",
                             EVO_ELEM_NODE_NAME(node));
    return EVO_OK;
}

static evo_status co_infer_onehot(const evo_kctx *c)
{
    const co_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_OneHot, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *ind = c->in[0], *depth = c->in[1], *vals = c->in[2];
    if ((rv = kpool_check_tensor(c, "OneHot", "indices", ind)) != EVO_OK)
        return rv;
    for (int32_t i = 0; i < 2; i++)
        if (!evo_elem_dt_in(EVO_ELEM_DT_NUMERIC, c->in[i]->dtype))
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "OneHot: %s has type %s; evo supports float32, int32, int64, "
                                 "int8 and uint8",
                                 i == 0 ? "indices" : "depth", evo_dtype_name(c->in[i]->dtype));
    if (!evo_dtype_is_supported(vals->dtype) || evo_dtype_size(vals->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "OneHot: values has type %s, which evo cannot compute with",
                             evo_dtype_name(vals->dtype));
    if (evo_shape_numel(&depth->shape) != 1 || depth->shape.rank > 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "OneHot: depth must be a scalar");
    if (evo_shape_numel(&vals->shape) != 2 || vals->shape.rank != 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "OneHot: values must be a 1-D tensor of 2 elements [off, on]");
    if (depth->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "OneHot: depth must be a constant (its value fixes the output "
                             "shape)");
    int64_t d = co_read_i64(depth, 0);
    if (d < 1 || d > EVO_MAX_DIM)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "OneHot: depth %lld is not in 1..%lld",
                             (long long)d, (long long)EVO_MAX_DIM);
    int32_t r = ind->shape.rank;
    if (r + 1 > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "OneHot: output rank %d exceeds %d",
                             (int)(r + 1), EVO_MAX_RANK);
    int32_t axis;
    if (evo_op_norm_axis(p->axis, r + 1, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "OneHot: axis %lld is out of range for an output of rank %d",
                             (long long)p->axis, (int)(r + 1));
    evo_shape ys = {.rank = r + 1};
    for (int32_t i = 0, k = 0; i < r + 1; i++)
        ys.dims[i] = i == axis ? (int32_t)d : ind->shape.dims[k++];
    return kpool_set_out(c, "OneHot", c->out[0], vals->dtype, &ys);
}

static evo_status co_eval_onehot(const evo_kctx *c)
{
    const co_params *p = c->params;
    const evo_tensor *ind = c->in[0], *vals = c->in[2];
    const evo_shape *ys = &c->out[0]->shape;
    int32_t axis;
    if (evo_op_norm_axis(p->axis, ys->rank, &axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t depth = ys->dims[axis];
    int64_t outer = kpool_prod(ys, 0, axis), inner = kpool_prod(ys, axis + 1, ys->rank);
    size_t es = evo_dtype_size(vals->dtype);
    const unsigned char *off = vals->data, *on = off + es;
    unsigned char *y = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t d = 0; d < depth; d++) {
            unsigned char *row = y + (size_t)((o * depth + d) * inner) * es;
            for (int64_t in = 0; in < inner; in++) {
                int64_t v = co_read_i64(ind, o * inner + in);
                if (v < 0 && v >= -depth)
                    v += depth;
                memcpy(row + (size_t)in * es, v == d ? on : off, es);
            }
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_OneHot = {
    .name = "OneHot",
    .domain = "",
    .id = 124,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = co_parse_onehot,
    .infer = co_infer_onehot,
    .cost = co_cost,
    .eval = co_eval_onehot,
};
