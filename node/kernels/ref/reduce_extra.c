/*
 * More reductions, in their opset-18 form (axes as an optional constant
 * int64 input 1; the importer moves the axes attribute of older opsets
 * there, and one still on the node is honored too):
 *
 *   ReduceL1         sum |x|            float32, int32, int64
 *   ReduceSumSquare  sum x^2            float32, int32, int64
 *   ReduceLogSum     log(sum x)         float32
 *   ReduceLogSumExp  log(sum exp(x))    float32, computed as
 *                    max + log(sum exp(x - max)) so large inputs do not
 *                    overflow (the max goes to scratch)
 *
 * keepdims defaults to 1; empty axes reduce everything unless
 * noop_with_empty_axes=1, which makes the op the identity. Reducing an
 * empty set gives the sum's identity 0 (log: -inf). Integer sums wrap.
 *
 * Evaluation walks the input once in order with an odometer that moves the
 * output offset by each dim's output stride (0 for reduced dims).
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef enum rx_kind {
    RX_L1 = 0,
    RX_SUM_SQUARE,
    RX_LOG_SUM,
    RX_LOG_SUM_EXP,
} rx_kind;

typedef struct rx_params {
    int32_t kind;
    int32_t keepdims;
    int32_t noop_with_empty_axes;
    int32_t n_attr_axes;
    int32_t attr_axes[EVO_MAX_RANK];
} rx_params;
_Static_assert(sizeof(rx_params) <= EVO_PARAMS_MAX, "rx_params too large");

/* ---------------------------------------------------------------- parse */

static evo_status rx_parse_common(const evo_node *node, void *params, rx_kind kind, evo_error *err)
{
    rx_params *p = params;
    int64_t v;
    p->kind = (int32_t)kind;
    if (evo_attr_get_int(node, "keepdims", 1, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s node '%s': keepdims must be 0 or 1",
                             node->op_type, EVO_ELEM_NODE_NAME(node));
    p->keepdims = (int32_t)v;
    if (evo_attr_get_int(node, "noop_with_empty_axes", 0, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': noop_with_empty_axes must be 0 or 1", node->op_type,
                             EVO_ELEM_NODE_NAME(node));
    p->noop_with_empty_axes = (int32_t)v;
    int64_t axes[EVO_MAX_RANK];
    size_t n = 0;
    if (evo_attr_get_ints(node, "axes", axes, EVO_MAX_RANK, &n) != EVO_OK)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': attribute axes must be a list of at most %d ints",
                             node->op_type, EVO_ELEM_NODE_NAME(node), EVO_MAX_RANK);
    for (size_t i = 0; i < n; i++) {
        if (axes[i] < -EVO_MAX_RANK || axes[i] >= EVO_MAX_RANK)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "%s node '%s': axis %lld is out of range", node->op_type,
                                 EVO_ELEM_NODE_NAME(node), (long long)axes[i]);
        p->attr_axes[i] = (int32_t)axes[i];
    }
    p->n_attr_axes = (int32_t)n;
    return EVO_OK;
}

#define RX_PARSE_FN(NAME, KIND)                                                                    \
    static evo_status NAME(const evo_node *node, void *params, evo_error *err)                     \
    {                                                                                              \
        return rx_parse_common(node, params, KIND, err);                                           \
    }
RX_PARSE_FN(rx_parse_l1, RX_L1)
RX_PARSE_FN(rx_parse_sum_square, RX_SUM_SQUARE)
RX_PARSE_FN(rx_parse_log_sum, RX_LOG_SUM)
RX_PARSE_FN(rx_parse_log_sum_exp, RX_LOG_SUM_EXP)

/* ---------------------------------------------------------------- axes */

/* The reduced axes (kpool_reduce_axes); err may be NULL. */
static evo_status rx_axes(const evo_kctx *c, const char *op, bool mask[EVO_MAX_RANK], bool *noop)
{
    const rx_params *p = c->params;
    return kpool_reduce_axes(c, op, p->n_attr_axes, p->attr_axes, p->noop_with_empty_axes != 0,
                             mask, noop);
}

/* ---------------------------------------------------------------- infer */

static evo_status rx_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    const rx_params *p = c->params;
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "data", x)) != EVO_OK)
        return rv;
    bool is_log = p->kind == RX_LOG_SUM || p->kind == RX_LOG_SUM_EXP;
    bool ok = x->dtype == EVO_DT_FLOAT32 ||
              (!is_log && (x->dtype == EVO_DT_INT32 || x->dtype == EVO_DT_INT64));
    if (!ok)
        return evo_error_set(
            c->err, EVO_ERR_UNSUPPORTED, "%s: input data has type %s; evo supports %s", def->name,
            evo_dtype_name(x->dtype), is_log ? "float32" : "float32, int32 and int64");
    bool mask[EVO_MAX_RANK], noop;
    if ((rv = rx_axes(c, def->name, mask, &noop)) != EVO_OK)
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

static size_t rx_scratch(const evo_kctx *c)
{
    const rx_params *p = c->params;
    if (p->kind != RX_LOG_SUM_EXP)
        return 0;
    return (size_t)kpool_numel_u(c->out[0]) * sizeof(float);
}

static void rx_cost(const evo_kctx *c, evo_op_cost *cost)
{
    const rx_params *p = c->params;
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), p->kind == RX_LOG_SUM_EXP ? 10 : 2);
}

/* ---------------------------------------------------------------- eval */

/* Output stride of each input dim (0 where reduced). */
static void rx_ostrides(const evo_shape *xs, const bool mask[EVO_MAX_RANK],
                        int64_t ostride[EVO_MAX_RANK])
{
    int64_t s = 1;
    for (int32_t d = xs->rank - 1; d >= 0; d--) {
        ostride[d] = mask[d] ? 0 : s;
        if (!mask[d])
            s *= xs->dims[d];
    }
}

/* Visit every input element in order with o = its output offset. */
#define RX_WALK(XS, OSTRIDE, N, I, O, BODY)                                                        \
    do {                                                                                           \
        int64_t idx_[EVO_MAX_RANK] = {0}, O = 0;                                                   \
        for (int64_t I = 0; I < (N); I++) {                                                        \
            BODY;                                                                                  \
            for (int32_t d_ = (XS)->rank - 1; d_ >= 0; d_--) {                                     \
                O += (OSTRIDE)[d_];                                                                \
                if (++idx_[d_] < (XS)->dims[d_])                                                   \
                    break;                                                                         \
                O -= (OSTRIDE)[d_] * (XS)->dims[d_];                                               \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define RX_INT_SUMS(SFX, T, U)                                                                     \
    static void rx_run_##SFX(const evo_shape *xs, const int64_t *ostride, int64_t n, int64_t m,    \
                             const T *x, T *y, bool square)                                        \
    {                                                                                              \
        for (int64_t i = 0; i < m; i++)                                                            \
            y[i] = 0;                                                                              \
        RX_WALK(xs, ostride, n, i, o, {                                                            \
            U v = (U)x[i];                                                                         \
            U t = square ? v * v : (x[i] < 0 ? (U)0 - v : v);                                      \
            y[o] = (T)((U)y[o] + t);                                                               \
        });                                                                                        \
    }
RX_INT_SUMS(i32, int32_t, uint32_t)
RX_INT_SUMS(i64, int64_t, uint64_t)

static void rx_run_f32(const evo_shape *xs, const int64_t *ostride, int64_t n, int64_t m,
                       const float *x, float *y, rx_kind kind, float *maxbuf)
{
    if (kind == RX_LOG_SUM_EXP) {
        for (int64_t i = 0; i < m; i++)
            maxbuf[i] = -INFINITY;
        RX_WALK(xs, ostride, n, i, o, maxbuf[o] = x[i] > maxbuf[o] ? x[i] : maxbuf[o]);
    }
    for (int64_t i = 0; i < m; i++)
        y[i] = 0.0f;
    switch (kind) {
    case RX_L1:
        RX_WALK(xs, ostride, n, i, o, y[o] += fabsf(x[i]));
        break;
    case RX_SUM_SQUARE:
        RX_WALK(xs, ostride, n, i, o, y[o] += x[i] * x[i]);
        break;
    case RX_LOG_SUM:
        RX_WALK(xs, ostride, n, i, o, y[o] += x[i]);
        for (int64_t i = 0; i < m; i++)
            y[i] = logf(y[i]);
        break;
    case RX_LOG_SUM_EXP:
        /* An infinite max (or an empty set) is the result itself; this also
         * avoids inf - inf = NaN in the exponent. */
        RX_WALK(xs, ostride, n, i, o, if (isfinite(maxbuf[o])) y[o] += expf(x[i] - maxbuf[o]));
        for (int64_t i = 0; i < m; i++)
            y[i] = isfinite(maxbuf[i]) ? maxbuf[i] + logf(y[i]) : maxbuf[i];
        break;
    }
}

static evo_status rx_eval(const evo_kctx *c)
{
    const rx_params *p = c->params;
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    bool mask[EVO_MAX_RANK], noop;
    if (rx_axes(c, "Reduce", mask, &noop) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these axes */
    int64_t n = evo_shape_numel(&x->shape), m = evo_shape_numel(&y->shape);
    if (noop) {
        /* The identity of the element function: |x|, x^2, log x, x. */
        if (x->dtype != EVO_DT_FLOAT32) {
            int64_t *o64 = y->data;
            int32_t *o32 = y->data;
            for (int64_t i = 0; i < n; i++) {
                if (x->dtype == EVO_DT_INT64) {
                    uint64_t v = (uint64_t)((const int64_t *)x->data)[i];
                    o64[i] = (int64_t)(p->kind == RX_SUM_SQUARE ? v * v
                                       : (int64_t)v < 0         ? 0 - v
                                                                : v);
                } else {
                    uint32_t v = (uint32_t)((const int32_t *)x->data)[i];
                    o32[i] = (int32_t)(p->kind == RX_SUM_SQUARE ? v * v
                                       : (int32_t)v < 0         ? 0 - v
                                                                : v);
                }
            }
            return EVO_OK;
        }
        const float *xf = x->data;
        float *yf = y->data;
        for (int64_t i = 0; i < n; i++) {
            float v = xf[i];
            yf[i] = p->kind == RX_L1           ? fabsf(v)
                    : p->kind == RX_SUM_SQUARE ? v * v
                    : p->kind == RX_LOG_SUM    ? logf(v)
                                               : v;
        }
        return EVO_OK;
    }
    int64_t ostride[EVO_MAX_RANK];
    rx_ostrides(&x->shape, mask, ostride);
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
        if (p->kind == RX_LOG_SUM_EXP && c->scratch_bytes < (size_t)m * sizeof(float))
            return EVO_ERR_INTERNAL;
        rx_run_f32(&x->shape, ostride, n, m, x->data, y->data, (rx_kind)p->kind, c->scratch);
        break;
    case EVO_DT_INT32:
        rx_run_i32(&x->shape, ostride, n, m, x->data, y->data, p->kind == RX_SUM_SQUARE);
        break;
    case EVO_DT_INT64:
        rx_run_i64(&x->shape, ostride, n, m, x->data, y->data, p->kind == RX_SUM_SQUARE);
        break;
    default:
        return EVO_ERR_INTERNAL;
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- definitions */

#define RX_OP(NAME, ID, PARSE)                                                                     \
    static evo_status rx_infer_##NAME(const evo_kctx *c);                                          \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = ID,                                                                                  \
        .min_inputs = 1,                                                                           \
        .max_inputs = 2,                                                                           \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .parse = PARSE,                                                                            \
        .infer = rx_infer_##NAME,                                                                  \
        .scratch = rx_scratch,                                                                     \
        .cost = rx_cost,                                                                           \
        .eval = rx_eval,                                                                           \
    };                                                                                             \
    static evo_status rx_infer_##NAME(const evo_kctx *c)                                           \
    {                                                                                              \
        return rx_infer_impl(c, &evo_op_##NAME);                                                   \
    }

RX_OP(ReduceL1, 116, rx_parse_l1)
RX_OP(ReduceSumSquare, 117, rx_parse_sum_square)
RX_OP(ReduceLogSum, 118, rx_parse_log_sum)
RX_OP(ReduceLogSumExp, 119, rx_parse_log_sum_exp)
