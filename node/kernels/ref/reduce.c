/*
 * Reductions: ReduceMean, ReduceMax, ReduceMin, ReduceSum, ReduceProd,
 * ReduceL2 in their newest form (opset 18; ReduceSum 13): the axes are an
 * optional int64 input 1 that must be constant, keepdims defaults to 1, and
 * empty axes reduce everything unless noop_with_empty_axes=1 (then the op
 * is the identity). The importer moves the axes attribute of older opsets to
 * input 1; an axes attribute that is still on the node is honored as well.
 *
 * Evaluation plan: size-1 dims are dropped and neighbouring dims that are
 * both reduced or both kept are merged, leaving at most EVO_MAX_RANK
 * alternating runs. The input is walked in contiguous rows of the last run;
 * an odometer over the other runs moves the output offset once per row. A
 * reduced last run folds each row to one value; a kept last run combines the
 * row element-wise into a row of the output. Integer sums and products wrap
 * (computed in uint64) instead of overflowing.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "evo/op.h"
#include "kpool_util.h"

typedef enum reduce_kind {
    REDUCE_SUM = 0,
    REDUCE_MEAN,
    REDUCE_MAX,
    REDUCE_MIN,
    REDUCE_PROD,
    REDUCE_L2,
} reduce_kind;

typedef struct reduce_params {
    int32_t kind;
    int32_t keepdims;
    int32_t noop_with_empty_axes;
    int32_t n_attr_axes; /* axes left as an attribute (old opsets), else 0 */
    int32_t attr_axes[EVO_MAX_RANK];
} reduce_params;
_Static_assert(sizeof(reduce_params) <= EVO_PARAMS_MAX, "reduce_params too large");

/* The merged iteration space (see the file comment). */
typedef struct reduce_plan {
    int32_t m;                     /* runs, >= 1 */
    int64_t dims[EVO_MAX_RANK];    /* run lengths */
    bool red[EVO_MAX_RANK];        /* run is reduced */
    int64_t ostride[EVO_MAX_RANK]; /* output stride of a kept run, 0 if reduced */
    int64_t rows;                  /* product of all runs but the last */
    int64_t count;                 /* input elements folded into each output */
    int64_t out_numel;
} reduce_plan;

/* ---------------------------------------------------------------- parse */

static evo_status reduce_parse_common(const evo_node *node, void *params, reduce_kind kind,
                                      evo_error *err)
{
    reduce_params *p = params;
    int64_t v;
    p->kind = (int32_t)kind;
    if (evo_attr_get_int(node, "keepdims", 1, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': keepdims must be 0 or 1",
                             node->op_type, node->name);
    p->keepdims = (int32_t)v;
    if (evo_attr_get_int(node, "noop_with_empty_axes", 0, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': noop_with_empty_axes must be 0 or 1", node->op_type,
                             node->name);
    p->noop_with_empty_axes = (int32_t)v;
    int64_t axes[EVO_MAX_RANK];
    size_t n = 0;
    evo_status rv = evo_attr_get_ints(node, "axes", axes, EVO_MAX_RANK, &n);
    if (rv != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': attribute axes must be a list of at most %d ints",
                             node->op_type, node->name, EVO_MAX_RANK);
    for (size_t i = 0; i < n; i++) {
        if (axes[i] < -EVO_MAX_RANK || axes[i] >= EVO_MAX_RANK)
            return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': axis %lld is out of range",
                                 node->op_type, node->name, (long long)axes[i]);
        p->attr_axes[i] = (int32_t)axes[i];
    }
    p->n_attr_axes = (int32_t)n;
    return EVO_OK;
}

#define REDUCE_PARSE_FN(NAME, KIND)                                                                \
    static evo_status NAME(const evo_node *node, void *params, evo_error *err)                     \
    {                                                                                              \
        return reduce_parse_common(node, params, KIND, err);                                       \
    }
REDUCE_PARSE_FN(reduce_parse_sum, REDUCE_SUM)
REDUCE_PARSE_FN(reduce_parse_mean, REDUCE_MEAN)
REDUCE_PARSE_FN(reduce_parse_max, REDUCE_MAX)
REDUCE_PARSE_FN(reduce_parse_min, REDUCE_MIN)
REDUCE_PARSE_FN(reduce_parse_prod, REDUCE_PROD)
REDUCE_PARSE_FN(reduce_parse_l2, REDUCE_L2)

/* ---------------------------------------------------------------- axes and plan */

/* The reduced axes (kpool_reduce_axes); err may be NULL. */
static evo_status reduce_axes(const evo_kctx *c, const char *op, bool mask[EVO_MAX_RANK],
                              bool *noop)
{
    const reduce_params *p = c->params;
    return kpool_reduce_axes(c, op, p->n_attr_axes, p->attr_axes, p->noop_with_empty_axes != 0,
                             mask, noop);
}

static void reduce_make_plan(const evo_shape *xs, const bool mask[EVO_MAX_RANK], reduce_plan *pl)
{
    int32_t m = 0;
    pl->count = 1;
    pl->out_numel = 1;
    for (int32_t i = 0; i < xs->rank; i++) {
        int64_t d = xs->dims[i];
        if (mask[i])
            pl->count *= d;
        else
            pl->out_numel *= d;
        if (d == 1)
            continue;
        if (m > 0 && pl->red[m - 1] == mask[i]) {
            pl->dims[m - 1] *= d;
        } else {
            pl->dims[m] = d;
            pl->red[m] = mask[i];
            m++;
        }
    }
    if (m == 0) {
        pl->dims[0] = 1;
        pl->red[0] = false;
        m = 1;
    }
    pl->m = m;
    int64_t s = 1;
    for (int32_t i = m - 1; i >= 0; i--) {
        pl->ostride[i] = pl->red[i] ? 0 : s;
        if (!pl->red[i])
            s *= pl->dims[i];
    }
    pl->rows = 1;
    for (int32_t i = 0; i < m - 1; i++)
        pl->rows *= pl->dims[i];
}

/* ---------------------------------------------------------------- kernels */

/* Per element type T (with W the type sums and products are computed in):
 * fill the output with the identity, fold the input in, finish mean/L2. */
#define REDUCE_DEFINE(SFX, T, W, LOWEST, HIGHEST, IS_FLOAT)                                        \
    static void reduce_run_##SFX(const reduce_plan *pl, const T *x, T *y, reduce_kind kind)        \
    {                                                                                              \
        T init = kind == REDUCE_MAX    ? (LOWEST)                                                  \
                 : kind == REDUCE_MIN  ? (HIGHEST)                                                 \
                 : kind == REDUCE_PROD ? (T)1                                                      \
                                       : (T)0;                                                     \
        for (int64_t i = 0; i < pl->out_numel; i++)                                                \
            y[i] = init;                                                                           \
        int64_t idx[EVO_MAX_RANK] = {0}, o = 0, len = pl->dims[pl->m - 1];                         \
        bool red = pl->red[pl->m - 1];                                                             \
        for (int64_t r = 0; r < pl->rows; r++, x += len) {                                         \
            T *yo = y + o;                                                                         \
            switch (kind) {                                                                        \
            case REDUCE_SUM:                                                                       \
            case REDUCE_MEAN:                                                                      \
                if (red) {                                                                         \
                    W a = 0;                                                                       \
                    for (int64_t i = 0; i < len; i++)                                              \
                        a += (W)x[i];                                                              \
                    *yo = (T)((W)*yo + a);                                                         \
                } else {                                                                           \
                    for (int64_t i = 0; i < len; i++)                                              \
                        yo[i] = (T)((W)yo[i] + (W)x[i]);                                           \
                }                                                                                  \
                break;                                                                             \
            case REDUCE_L2:                                                                        \
                if (red) {                                                                         \
                    W a = 0;                                                                       \
                    for (int64_t i = 0; i < len; i++)                                              \
                        a += (W)x[i] * (W)x[i];                                                    \
                    *yo = (T)((W)*yo + a);                                                         \
                } else {                                                                           \
                    for (int64_t i = 0; i < len; i++)                                              \
                        yo[i] = (T)((W)yo[i] + (W)x[i] * (W)x[i]);                                 \
                }                                                                                  \
                break;                                                                             \
            case REDUCE_PROD:                                                                      \
                if (red) {                                                                         \
                    W a = 1;                                                                       \
                    for (int64_t i = 0; i < len; i++)                                              \
                        a *= (W)x[i];                                                              \
                    *yo = (T)((W)*yo * a);                                                         \
                } else {                                                                           \
                    for (int64_t i = 0; i < len; i++)                                              \
                        yo[i] = (T)((W)yo[i] * (W)x[i]);                                           \
                }                                                                                  \
                break;                                                                             \
            case REDUCE_MAX:                                                                       \
                if (red) {                                                                         \
                    T a = *yo;                                                                     \
                    for (int64_t i = 0; i < len; i++)                                              \
                        a = x[i] > a ? x[i] : a;                                                   \
                    *yo = a;                                                                       \
                } else {                                                                           \
                    for (int64_t i = 0; i < len; i++)                                              \
                        yo[i] = x[i] > yo[i] ? x[i] : yo[i];                                       \
                }                                                                                  \
                break;                                                                             \
            case REDUCE_MIN:                                                                       \
                if (red) {                                                                         \
                    T a = *yo;                                                                     \
                    for (int64_t i = 0; i < len; i++)                                              \
                        a = x[i] < a ? x[i] : a;                                                   \
                    *yo = a;                                                                       \
                } else {                                                                           \
                    for (int64_t i = 0; i < len; i++)                                              \
                        yo[i] = x[i] < yo[i] ? x[i] : yo[i];                                       \
                }                                                                                  \
                break;                                                                             \
            }                                                                                      \
            for (int32_t k = pl->m - 2; k >= 0; k--) {                                             \
                o += pl->ostride[k];                                                               \
                if (++idx[k] < pl->dims[k])                                                        \
                    break;                                                                         \
                o -= pl->ostride[k] * pl->dims[k];                                                 \
                idx[k] = 0;                                                                        \
            }                                                                                      \
        }                                                                                          \
        if (kind == REDUCE_MEAN && IS_FLOAT) {                                                     \
            for (int64_t i = 0; i < pl->out_numel; i++)                                            \
                y[i] = (T)(y[i] / (T)pl->count);                                                   \
        } else if (kind == REDUCE_MEAN && pl->count > 0) {                                         \
            for (int64_t i = 0; i < pl->out_numel; i++)                                            \
                y[i] = (T)((int64_t)y[i] / pl->count);                                             \
        } else if (kind == REDUCE_L2) {                                                            \
            for (int64_t i = 0; i < pl->out_numel; i++) {                                          \
                double v = (double)y[i]; /* a wrapped int sum can be < 0 */                        \
                y[i] = IS_FLOAT ? (T)sqrt(v) : v > 0 ? (T)sqrt(v) : (T)0;                          \
            }                                                                                      \
        }                                                                                          \
    }

REDUCE_DEFINE(f32, float, float, -INFINITY, INFINITY, 1)
REDUCE_DEFINE(i32, int32_t, uint64_t, INT32_MIN, INT32_MAX, 0)
REDUCE_DEFINE(i64, int64_t, uint64_t, INT64_MIN, INT64_MAX, 0)
REDUCE_DEFINE(i8, int8_t, uint64_t, INT8_MIN, INT8_MAX, 0)
REDUCE_DEFINE(u8, uint8_t, uint64_t, 0, UINT8_MAX, 0)

/* ---------------------------------------------------------------- infer / eval */

static evo_status reduce_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    const reduce_params *p = c->params;
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "data", x)) != EVO_OK)
        return rv;
    bool minmax = p->kind == REDUCE_MAX || p->kind == REDUCE_MIN;
    bool ok = x->dtype == EVO_DT_FLOAT32 || x->dtype == EVO_DT_INT32 || x->dtype == EVO_DT_INT64 ||
              (minmax && (x->dtype == EVO_DT_INT8 || x->dtype == EVO_DT_UINT8));
    if (!ok)
        return evo_error_set(
            c->err, EVO_ERR_UNSUPPORTED, "%s: input data has dtype %s; supported: %s", def->name,
            evo_dtype_name(x->dtype),
            minmax ? "float32, int32, int64, int8, uint8" : "float32, int32, int64");
    bool mask[EVO_MAX_RANK], noop;
    if ((rv = reduce_axes(c, def->name, mask, &noop)) != EVO_OK)
        return rv;
    evo_shape ys = {.rank = 0};
    for (int32_t i = 0; i < x->shape.rank; i++) {
        if (!mask[i])
            ys.dims[ys.rank++] = x->shape.dims[i];
        else if (p->keepdims)
            ys.dims[ys.rank++] = 1;
    }
    return kpool_set_out(c, def->name, c->out[0], x->dtype, &ys);
}

static void reduce_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_numel_u(c->in[0]);
}

static evo_status reduce_eval(const evo_kctx *c)
{
    const reduce_params *p = c->params;
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    bool mask[EVO_MAX_RANK], noop;
    if (reduce_axes(c, "Reduce", mask, &noop) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these axes */
    if (noop) {
        size_t nbytes;
        if (evo_shape_nbytes(&x->shape, x->dtype, &nbytes) != EVO_OK)
            return EVO_ERR_INTERNAL;
        if (y->data != x->data && nbytes > 0)
            memcpy(y->data, x->data, nbytes);
        return EVO_OK;
    }
    reduce_plan pl;
    reduce_make_plan(&x->shape, mask, &pl);
    if (kpool_prod(&x->shape, 0, x->shape.rank) == 0)
        pl.rows = 0; /* only the identity fill and the finish run */
    reduce_kind kind = (reduce_kind)p->kind;
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
        reduce_run_f32(&pl, x->data, y->data, kind);
        break;
    case EVO_DT_INT32:
        reduce_run_i32(&pl, x->data, y->data, kind);
        break;
    case EVO_DT_INT64:
        reduce_run_i64(&pl, x->data, y->data, kind);
        break;
    case EVO_DT_INT8:
        reduce_run_i8(&pl, x->data, y->data, kind);
        break;
    case EVO_DT_UINT8:
        reduce_run_u8(&pl, x->data, y->data, kind);
        break;
    default:
        return EVO_ERR_TYPE;
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- definitions */

#define REDUCE_OP(NAME, ID, PARSE)                                                                 \
    static evo_status reduce_infer_##NAME(const evo_kctx *c);                                      \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = ID,                                                                                  \
        .min_inputs = 1,                                                                           \
        .max_inputs = 2,                                                                           \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .parse = PARSE,                                                                            \
        .infer = reduce_infer_##NAME,                                                              \
        .cost = reduce_cost,                                                                       \
        .eval = reduce_eval,                                                                       \
    };                                                                                             \
    static evo_status reduce_infer_##NAME(const evo_kctx *c)                                       \
    {                                                                                              \
        return reduce_infer_impl(c, &evo_op_##NAME);                                               \
    }

REDUCE_OP(ReduceMean, 57, reduce_parse_mean)
REDUCE_OP(ReduceMax, 58, reduce_parse_max)
REDUCE_OP(ReduceMin, 59, reduce_parse_min)
REDUCE_OP(ReduceSum, 60, reduce_parse_sum)
REDUCE_OP(ReduceProd, 61, reduce_parse_prod)
REDUCE_OP(ReduceL2, 62, reduce_parse_l2)
