/*
 * ArgMax and ArgMin (opsets 1..13): the int64 index of the largest
 * (smallest) element along `axis`; the first such index, or the last one
 * with select_last_index=1 (opset 12+).
 *
 * The input is viewed as (outer, n, inner). With inner = 1 each row is
 * scanned contiguously. Otherwise the best values of `inner` neighbouring
 * columns are kept in scratch and the n rows are swept in memory order, so
 * no pass strides by inner.
 */
#include <string.h>

#include "evo/op.h"
#include "kpool_util.h"

typedef struct argmax_params {
    int32_t axis;
    int32_t keepdims;
    int32_t select_last_index;
} argmax_params;
_Static_assert(sizeof(argmax_params) <= EVO_PARAMS_MAX, "argmax_params too large");

static evo_status argmax_parse(const evo_node *node, void *params, evo_error *err)
{
    argmax_params *p = params;
    int64_t axis, keep, last;
    if (evo_attr_get_int(node, "axis", 0, &axis) != EVO_OK ||
        evo_attr_get_int(node, "keepdims", 1, &keep) != EVO_OK ||
        evo_attr_get_int(node, "select_last_index", 0, &last) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': axis, keepdims and select_last_index must be ints",
                             node->op_type, node->name);
    if (axis < -EVO_MAX_RANK || axis >= EVO_MAX_RANK)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': axis %lld is out of range",
                             node->op_type, node->name, (long long)axis);
    if ((keep != 0 && keep != 1) || (last != 0 && last != 1))
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': keepdims and select_last_index must be 0 or 1",
                             node->op_type, node->name);
    p->axis = (int32_t)axis;
    p->keepdims = (int32_t)keep;
    p->select_last_index = (int32_t)last;
    return EVO_OK;
}

static evo_status argmax_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    const argmax_params *p = c->params;
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "data", x)) != EVO_OK)
        return rv;
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
    case EVO_DT_INT32:
    case EVO_DT_INT64:
    case EVO_DT_INT8:
    case EVO_DT_UINT8:
        break;
    default:
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input data has dtype %s; supported: float32, int32, int64, "
                             "int8, uint8",
                             def->name, evo_dtype_name(x->dtype));
    }
    int32_t axis;
    if (evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: axis %d is out of range for an input of rank %d", def->name,
                             (int)p->axis, (int)x->shape.rank);
    evo_shape ys = {.rank = 0}, others = {.rank = 0};
    for (int32_t i = 0; i < x->shape.rank; i++) {
        if (i != axis) {
            others.dims[others.rank++] = x->shape.dims[i];
            ys.dims[ys.rank++] = x->shape.dims[i];
        } else if (p->keepdims) {
            ys.dims[ys.rank++] = 1;
        }
    }
    if (x->shape.dims[axis] == 0 && evo_shape_numel(&others) != 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: dim %d (the axis) is 0, so there is no element to pick",
                             def->name, (int)axis);
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_INT64, &ys);
}

static void argmax_split(const evo_kctx *c, int64_t *outer, int64_t *n, int64_t *inner)
{
    const argmax_params *p = c->params;
    const evo_shape *s = &c->in[0]->shape;
    int32_t axis = p->axis < 0 ? p->axis + s->rank : p->axis;
    *outer = kpool_prod(s, 0, axis);
    *n = s->dims[axis];
    *inner = kpool_prod(s, axis + 1, s->rank);
}

static size_t argmax_scratch(const evo_kctx *c)
{
    int64_t outer, n, inner;
    argmax_split(c, &outer, &n, &inner);
    /* room for `inner` best values of the widest element type */
    return inner > 1 ? (size_t)inner * sizeof(int64_t) : 0;
}

static void argmax_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_numel_u(c->in[0]);
}

/* One (outer, n, inner) sweep for element type T with comparison BETTER(v, best). */
#define ARGMAX_SWEEP(T, BETTER)                                                                    \
    do {                                                                                           \
        const T *xs = x;                                                                           \
        T *best = scratch;                                                                         \
        for (int64_t o = 0; o < outer; o++, xs += n * inner, y += inner) {                         \
            if (inner == 1) {                                                                      \
                T b = xs[0];                                                                       \
                int64_t bi = 0;                                                                    \
                for (int64_t j = 1; j < n; j++) {                                                  \
                    if (BETTER(xs[j], b)) {                                                        \
                        b = xs[j];                                                                 \
                        bi = j;                                                                    \
                    }                                                                              \
                }                                                                                  \
                y[0] = bi;                                                                         \
                continue;                                                                          \
            }                                                                                      \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                best[i] = xs[i];                                                                   \
                y[i] = 0;                                                                          \
            }                                                                                      \
            for (int64_t j = 1; j < n; j++) {                                                      \
                const T *xj = xs + j * inner;                                                      \
                for (int64_t i = 0; i < inner; i++) {                                              \
                    if (BETTER(xj[i], best[i])) {                                                  \
                        best[i] = xj[i];                                                           \
                        y[i] = j;                                                                  \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define ARGMAX_GT(v, b) ((v) > (b))
#define ARGMAX_GE(v, b) ((v) >= (b))
#define ARGMAX_LT(v, b) ((v) < (b))
#define ARGMAX_LE(v, b) ((v) <= (b))

#define ARGMAX_DEFINE(SFX, T)                                                                      \
    static void argmax_run_##SFX(const T *x, int64_t *y, int64_t outer, int64_t n, int64_t inner,  \
                                 void *scratch, bool is_min, bool last)                            \
    {                                                                                              \
        if (!is_min && !last)                                                                      \
            ARGMAX_SWEEP(T, ARGMAX_GT);                                                            \
        else if (!is_min)                                                                          \
            ARGMAX_SWEEP(T, ARGMAX_GE);                                                            \
        else if (!last)                                                                            \
            ARGMAX_SWEEP(T, ARGMAX_LT);                                                            \
        else                                                                                       \
            ARGMAX_SWEEP(T, ARGMAX_LE);                                                            \
    }

ARGMAX_DEFINE(f32, float)
ARGMAX_DEFINE(i32, int32_t)
ARGMAX_DEFINE(i64, int64_t)
ARGMAX_DEFINE(i8, int8_t)
ARGMAX_DEFINE(u8, uint8_t)

static evo_status argmax_eval_impl(const evo_kctx *c, bool is_min)
{
    const argmax_params *p = c->params;
    int64_t outer, n, inner;
    argmax_split(c, &outer, &n, &inner);
    if (n == 0 || outer == 0 || inner == 0)
        return EVO_OK;
    const void *x = c->in[0]->data;
    int64_t *y = c->out[0]->data;
    bool last = p->select_last_index != 0;
    switch (c->in[0]->dtype) {
    case EVO_DT_FLOAT32:
        argmax_run_f32(x, y, outer, n, inner, c->scratch, is_min, last);
        break;
    case EVO_DT_INT32:
        argmax_run_i32(x, y, outer, n, inner, c->scratch, is_min, last);
        break;
    case EVO_DT_INT64:
        argmax_run_i64(x, y, outer, n, inner, c->scratch, is_min, last);
        break;
    case EVO_DT_INT8:
        argmax_run_i8(x, y, outer, n, inner, c->scratch, is_min, last);
        break;
    case EVO_DT_UINT8:
        argmax_run_u8(x, y, outer, n, inner, c->scratch, is_min, last);
        break;
    default:
        return EVO_ERR_TYPE;
    }
    return EVO_OK;
}

static evo_status argmax_infer(const evo_kctx *c);
static evo_status argmax_infer_min(const evo_kctx *c);

static evo_status argmax_eval(const evo_kctx *c)
{
    return argmax_eval_impl(c, false);
}

static evo_status argmax_eval_min(const evo_kctx *c)
{
    return argmax_eval_impl(c, true);
}

const evo_op_def evo_op_ArgMax = {
    .name = "ArgMax",
    .domain = "",
    .id = 63,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = argmax_parse,
    .infer = argmax_infer,
    .scratch = argmax_scratch,
    .cost = argmax_cost,
    .eval = argmax_eval,
};

const evo_op_def evo_op_ArgMin = {
    .name = "ArgMin",
    .domain = "",
    .id = 64,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = argmax_parse,
    .infer = argmax_infer_min,
    .scratch = argmax_scratch,
    .cost = argmax_cost,
    .eval = argmax_eval_min,
};

static evo_status argmax_infer(const evo_kctx *c)
{
    return argmax_infer_impl(c, &evo_op_ArgMax);
}

static evo_status argmax_infer_min(const evo_kctx *c)
{
    return argmax_infer_impl(c, &evo_op_ArgMin);
}
