/*
 * Softmax and LogSoftmax, numerically stable (the maximum is subtracted
 * before exponentiating).
 *
 * Opset semantics: from opset 13 the op normalizes along one `axis`
 * (default -1). Before 13 the input is coerced to 2-D at `axis` (default 1)
 * and each row of the flattened trailing block dims[axis:] is normalized.
 * Both reduce to (outer, n, inner) with the normalized extent n strided by
 * inner; the legacy form always has inner = 1.
 *
 * With inner = 1 each row is contiguous. Otherwise the maxima and sums of
 * `inner` rows are kept side by side in scratch, so every pass runs along
 * contiguous memory instead of striding by inner.
 */
#include <math.h>

#include "evo/op.h"
#include "kpool_util.h"

typedef struct softmax_params {
    int32_t axis;   /* as given, normalized against the rank at infer/eval */
    int32_t legacy; /* opset < 13: flatten dims[axis:] */
} softmax_params;
_Static_assert(sizeof(softmax_params) <= EVO_PARAMS_MAX, "softmax_params too large");

static evo_status softmax_parse(const evo_node *node, void *params, evo_error *err)
{
    softmax_params *p = params;
    int64_t axis;
    p->legacy = node->opset < 13;
    if (evo_attr_get_int(node, "axis", p->legacy ? 1 : -1, &axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': axis must be an int", node->op_type,
                             node->name);
    if (axis < -EVO_MAX_RANK || axis >= EVO_MAX_RANK)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': axis %lld is out of range",
                             node->op_type, node->name, (long long)axis);
    p->axis = (int32_t)axis;
    return EVO_OK;
}

/* (outer, n, inner) for these params and shape; infer has checked the axis. */
static void softmax_split(const softmax_params *p, const evo_shape *s, int64_t *outer, int64_t *n,
                          int64_t *inner)
{
    int32_t axis = p->axis < 0 ? p->axis + s->rank : p->axis;
    *outer = kpool_prod(s, 0, axis);
    if (p->legacy) {
        *n = kpool_prod(s, axis, s->rank);
        *inner = 1;
    } else {
        *n = s->dims[axis];
        *inner = kpool_prod(s, axis + 1, s->rank);
    }
}

static evo_status softmax_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    const softmax_params *p = c->params;
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "input", x)) != EVO_OK)
        return rv;
    if (x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input has dtype %s; supported: float32", def->name,
                             evo_dtype_name(x->dtype));
    int32_t axis;
    if (evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: axis %d is out of range for an input of rank %d", def->name,
                             (int)p->axis, (int)x->shape.rank);
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_FLOAT32, &x->shape);
}

static size_t softmax_scratch(const evo_kctx *c)
{
    int64_t outer, n, inner;
    softmax_split(c->params, &c->in[0]->shape, &outer, &n, &inner);
    return inner > 1 ? (size_t)inner * 2 * sizeof(float) : 0;
}

static void softmax_cost(const evo_kctx *c, evo_op_cost *cost)
{
    /* max, subtract-and-exp, sum, scale */
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 4);
}

static void softmax_rows(const float *x, float *y, int64_t rows, int64_t n, bool log_form)
{
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        float m = x[0];
        for (int64_t j = 1; j < n; j++)
            m = x[j] > m ? x[j] : m;
        float sum = 0.0f;
        if (log_form) {
            for (int64_t j = 0; j < n; j++)
                sum += expf(x[j] - m);
            /* (x - m) - log(sum), not x - (m + log(sum)): m + log(sum)
             * would round away log(sum) when m is large */
            float ls = logf(sum);
            for (int64_t j = 0; j < n; j++)
                y[j] = (x[j] - m) - ls;
        } else {
            for (int64_t j = 0; j < n; j++) {
                float e = expf(x[j] - m);
                y[j] = e;
                sum += e;
            }
            float inv = 1.0f / sum;
            for (int64_t j = 0; j < n; j++)
                y[j] *= inv;
        }
    }
}

/* n rows of `inner` contiguous elements each, normalized column-wise. Each
 * element is read before the same element is written, so in place works. */
static void softmax_strided(const float *x, float *y, int64_t outer, int64_t n, int64_t inner,
                            float *mx, float *sm, bool log_form)
{
    for (int64_t o = 0; o < outer; o++, x += n * inner, y += n * inner) {
        for (int64_t i = 0; i < inner; i++) {
            mx[i] = x[i];
            sm[i] = 0.0f;
        }
        for (int64_t j = 1; j < n; j++) {
            const float *xj = x + j * inner;
            for (int64_t i = 0; i < inner; i++)
                mx[i] = xj[i] > mx[i] ? xj[i] : mx[i];
        }
        if (log_form) {
            for (int64_t j = 0; j < n; j++) {
                const float *xj = x + j * inner;
                for (int64_t i = 0; i < inner; i++)
                    sm[i] += expf(xj[i] - mx[i]);
            }
            for (int64_t i = 0; i < inner; i++)
                sm[i] = logf(sm[i]);
            for (int64_t j = 0; j < n; j++) {
                const float *xj = x + j * inner;
                float *yj = y + j * inner;
                for (int64_t i = 0; i < inner; i++)
                    yj[i] = (xj[i] - mx[i]) - sm[i];
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                const float *xj = x + j * inner;
                float *yj = y + j * inner;
                for (int64_t i = 0; i < inner; i++) {
                    float e = expf(xj[i] - mx[i]);
                    yj[i] = e;
                    sm[i] += e;
                }
            }
            for (int64_t i = 0; i < inner; i++)
                sm[i] = 1.0f / sm[i];
            for (int64_t j = 0; j < n; j++) {
                float *yj = y + j * inner;
                for (int64_t i = 0; i < inner; i++)
                    yj[i] *= sm[i];
            }
        }
    }
}

static evo_status softmax_eval_impl(const evo_kctx *c, bool log_form)
{
    int64_t outer, n, inner;
    softmax_split(c->params, &c->in[0]->shape, &outer, &n, &inner);
    if (n == 0 || outer == 0 || inner == 0)
        return EVO_OK;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    if (inner == 1) {
        softmax_rows(x, y, outer, n, log_form);
    } else {
        float *mx = c->scratch;
        softmax_strided(x, y, outer, n, inner, mx, mx + inner, log_form);
    }
    return EVO_OK;
}

static evo_status softmax_infer(const evo_kctx *c);
static evo_status softmax_infer_log(const evo_kctx *c);

static evo_status softmax_eval(const evo_kctx *c)
{
    return softmax_eval_impl(c, false);
}

static evo_status softmax_eval_log(const evo_kctx *c)
{
    return softmax_eval_impl(c, true);
}

const evo_op_def evo_op_Softmax = {
    .name = "Softmax",
    .domain = "",
    .id = 18,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = softmax_parse,
    .infer = softmax_infer,
    .scratch = softmax_scratch,
    .cost = softmax_cost,
    .eval = softmax_eval,
};

const evo_op_def evo_op_LogSoftmax = {
    .name = "LogSoftmax",
    .domain = "",
    .id = 19,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = softmax_parse,
    .infer = softmax_infer_log,
    .scratch = softmax_scratch,
    .cost = softmax_cost,
    .eval = softmax_eval_log,
};

static evo_status softmax_infer(const evo_kctx *c)
{
    return softmax_infer_impl(c, &evo_op_Softmax);
}

static evo_status softmax_infer_log(const evo_kctx *c)
{
    return softmax_infer_impl(c, &evo_op_LogSoftmax);
}
