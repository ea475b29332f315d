/*
 * Normalizations over the channel dim of N x C x D1 ... tensors:
 * BatchNormalization (inference form), InstanceNormalization and LRN.
 *
 * BatchNormalization folds its four per-channel inputs into one scale and
 * shift per channel, computed when the channel starts, so the hot loop is a
 * single multiply-add per element and runs in place. Training mode (opset
 * 14's training_mode=1, or the running-statistics outputs of older opsets)
 * is refused: evo runs inference only.
 */
#include <math.h>

#include "evo/op.h"
#include "kpool_util.h"

typedef struct norm_params {
    float epsilon;
    /* LRN */
    int32_t size;
    float alpha, beta, bias;
} norm_params;
_Static_assert(sizeof(norm_params) <= EVO_PARAMS_MAX, "norm_params too large");

/* ---------------------------------------------------------------- shared checks */

/* X must be float32 with rank >= min_rank; *channels receives dims[1]. */
static evo_status norm_check_x(const evo_kctx *c, const char *op, int32_t min_rank)
{
    const evo_tensor *x = c->in[0];
    evo_status rv = kpool_check_tensor(c, op, "X", x);
    if (rv != EVO_OK)
        return rv;
    if (x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input X has dtype %s; supported: float32", op,
                             evo_dtype_name(x->dtype));
    if (x->shape.rank < min_rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input X must have rank >= %d (N, C, ...), got rank %d", op,
                             (int)min_rank, (int)x->shape.rank);
    return EVO_OK;
}

/* A per-channel parameter input: float32 of shape [C]. */
static evo_status norm_check_channel_input(const evo_kctx *c, const char *op, int32_t idx,
                                           const char *role)
{
    const evo_tensor *t = c->in[idx];
    int32_t ch = c->in[0]->shape.dims[1];
    evo_status rv = kpool_check_tensor(c, op, role, t);
    if (rv != EVO_OK)
        return rv;
    if (t->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input %s has dtype %s, expected float32", op, role,
                             evo_dtype_name(t->dtype));
    if (t->shape.rank != 1 || t->shape.dims[0] != ch) {
        char buf[96];
        evo_shape_format(&t->shape, buf, sizeof buf);
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input %s has shape %s, expected [%d] (one value per channel "
                             "of X)",
                             op, role, buf, (int)ch);
    }
    return EVO_OK;
}

static evo_status norm_parse_epsilon(const evo_node *node, const char *op, norm_params *p,
                                     evo_error *err)
{
    if (evo_attr_get_float(node, "epsilon", 1e-5f, &p->epsilon) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': epsilon must be a float", op,
                             node->name);
    if (!(p->epsilon >= 0.0f))
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': epsilon must be >= 0", op,
                             node->name);
    return EVO_OK;
}

/* ---------------------------------------------------------------- BatchNormalization */

static evo_status norm_bn_parse(const evo_node *node, void *params, evo_error *err)
{
    norm_params *p = params;
    int64_t v = 0;
    evo_status rv = norm_parse_epsilon(node, "BatchNormalization", p, err);
    if (rv != EVO_OK)
        return rv;
    if (evo_attr_get_int(node, "training_mode", 0, &v) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "BatchNormalization node '%s': training_mode must be an int",
                             node->name);
    if (v != 0)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "BatchNormalization node '%s': training_mode=1 is not supported "
                             "(evo runs inference only)",
                             node->name);
    /* opsets 7 and 8: spatial=0 means per-element statistics of shape C x D1 ... */
    if (evo_attr_get_int(node, "spatial", 1, &v) != EVO_OK || v != 1)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "BatchNormalization node '%s': only spatial=1 is supported",
                             node->name);
    return EVO_OK;
}

static const char *const norm_bn_roles[5] = {"X", "scale", "B", "input_mean", "input_var"};

static evo_status norm_bn_infer(const evo_kctx *c);

static evo_status norm_bn_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 1; i < c->n_out; i++)
        if (c->out[i] != NULL)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "BatchNormalization: output %d (running or saved statistics) "
                                 "exists only in training; evo runs inference only",
                                 (int)i);
    if ((rv = norm_check_x(c, def->name, 2)) != EVO_OK)
        return rv;
    for (int32_t i = 1; i < 5; i++)
        if ((rv = norm_check_channel_input(c, def->name, i, norm_bn_roles[i])) != EVO_OK)
            return rv;
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_FLOAT32, &c->in[0]->shape);
}

static void norm_bn_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 2);
}

static evo_status norm_bn_eval(const evo_kctx *c)
{
    const norm_params *p = c->params;
    const evo_shape *xs = &c->in[0]->shape;
    int64_t n = xs->dims[0], ch = xs->dims[1], inner = kpool_prod(xs, 2, xs->rank);
    const float *x = c->in[0]->data;
    const float *scale = c->in[1]->data, *bias = c->in[2]->data;
    const float *mean = c->in[3]->data, *var = c->in[4]->data;
    float *y = c->out[0]->data;
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = 0; k < ch; k++) {
            float a = scale[k] / sqrtf(var[k] + p->epsilon);
            float s = bias[k] - mean[k] * a;
            for (int64_t i = 0; i < inner; i++)
                y[i] = x[i] * a + s;
            x += inner;
            y += inner;
        }
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- InstanceNormalization */

static evo_status norm_in_parse(const evo_node *node, void *params, evo_error *err)
{
    return norm_parse_epsilon(node, "InstanceNormalization", params, err);
}

static evo_status norm_in_infer(const evo_kctx *c);

static evo_status norm_in_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    if ((rv = norm_check_x(c, def->name, 3)) != EVO_OK ||
        (rv = norm_check_channel_input(c, def->name, 1, "scale")) != EVO_OK ||
        (rv = norm_check_channel_input(c, def->name, 2, "B")) != EVO_OK)
        return rv;
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_FLOAT32, &c->in[0]->shape);
}

static void norm_in_cost(const evo_kctx *c, evo_op_cost *cost)
{
    /* mean: 1, variance: 2, normalize: 2 */
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 5);
}

static evo_status norm_in_eval(const evo_kctx *c)
{
    const norm_params *p = c->params;
    const evo_shape *xs = &c->in[0]->shape;
    int64_t n = xs->dims[0], ch = xs->dims[1], inner = kpool_prod(xs, 2, xs->rank);
    const float *x = c->in[0]->data;
    const float *scale = c->in[1]->data, *bias = c->in[2]->data;
    float *y = c->out[0]->data;
    if (inner == 0)
        return EVO_OK;
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = 0; k < ch; k++) {
            /* two passes in double: exact enough for large planes, and the
             * variance cannot go negative as with E[x^2] - E[x]^2 */
            double sum = 0.0;
            for (int64_t i = 0; i < inner; i++)
                sum += x[i];
            double mean = sum / (double)inner, sq = 0.0;
            for (int64_t i = 0; i < inner; i++) {
                double d = x[i] - mean;
                sq += d * d;
            }
            float a = (float)(scale[k] / sqrt(sq / (double)inner + p->epsilon));
            float s = (float)(bias[k] - mean * a);
            for (int64_t i = 0; i < inner; i++)
                y[i] = x[i] * a + s;
            x += inner;
            y += inner;
        }
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- LRN */

static evo_status norm_lrn_parse(const evo_node *node, void *params, evo_error *err)
{
    norm_params *p = params;
    int64_t size = 0;
    if (evo_attr_get_int(node, "size", 0, &size) != EVO_OK || size < 1 || size > INT32_MAX)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "LRN node '%s': attribute size (an int >= 1) is required", node->name);
    p->size = (int32_t)size;
    if (evo_attr_get_float(node, "alpha", 1e-4f, &p->alpha) != EVO_OK ||
        evo_attr_get_float(node, "beta", 0.75f, &p->beta) != EVO_OK ||
        evo_attr_get_float(node, "bias", 1.0f, &p->bias) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "LRN node '%s': alpha, beta and bias must be floats", node->name);
    return EVO_OK;
}

static evo_status norm_lrn_infer(const evo_kctx *c);

static evo_status norm_lrn_infer_impl(const evo_kctx *c, const evo_op_def *def)
{
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    if ((rv = norm_check_x(c, def->name, 2)) != EVO_OK)
        return rv;
    const norm_params *p = c->params;
    if (p->size < 1) /* params from a file */
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: size %d in params is not >= 1", def->name,
                             (int)p->size);
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_FLOAT32, &c->in[0]->shape);
}

static void norm_lrn_cost(const evo_kctx *c, evo_op_cost *cost)
{
    const norm_params *p = c->params;
    /* square-and-add per window channel, then scale, add, pow, divide */
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 2 * (uint64_t)p->size + 4);
}

/* Not in place: output channel c reads input channels around c. The output
 * plane itself accumulates the square sum, so no scratch is needed. */
static evo_status norm_lrn_eval(const evo_kctx *c)
{
    const norm_params *p = c->params;
    const evo_shape *xs = &c->in[0]->shape;
    int64_t n = xs->dims[0], ch = xs->dims[1], inner = kpool_prod(xs, 2, xs->rank);
    int64_t before = (p->size - 1) / 2, after = p->size - 1 - before;
    float scale = p->alpha / (float)p->size;
    for (int64_t b = 0; b < n; b++) {
        const float *x = (const float *)c->in[0]->data + b * ch * inner;
        float *y = (float *)c->out[0]->data + b * ch * inner;
        for (int64_t k = 0; k < ch; k++) {
            int64_t lo = k - before < 0 ? 0 : k - before;
            int64_t hi = k + after >= ch ? ch - 1 : k + after;
            float *yk = y + k * inner;
            for (int64_t i = 0; i < inner; i++)
                yk[i] = 0.0f;
            for (int64_t j = lo; j <= hi; j++) {
                const float *xj = x + j * inner;
                for (int64_t i = 0; i < inner; i++)
                    yk[i] += xj[i] * xj[i];
            }
            const float *xk = x + k * inner;
            for (int64_t i = 0; i < inner; i++)
                yk[i] = xk[i] / powf(p->bias + scale * yk[i], p->beta);
        }
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- definitions */

const evo_op_def evo_op_BatchNormalization = {
    .name = "BatchNormalization",
    .domain = "",
    .id = 50,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 5,
    .max_inputs = 5,
    .min_outputs = 1,
    .max_outputs = 5,
    .parse = norm_bn_parse,
    .infer = norm_bn_infer,
    .cost = norm_bn_cost,
    .eval = norm_bn_eval,
};

const evo_op_def evo_op_InstanceNormalization = {
    .name = "InstanceNormalization",
    .domain = "",
    .id = 51,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = norm_in_parse,
    .infer = norm_in_infer,
    .cost = norm_in_cost,
    .eval = norm_in_eval,
};

const evo_op_def evo_op_LRN = {
    .name = "LRN",
    .domain = "",
    .id = 52,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = norm_lrn_parse,
    .infer = norm_lrn_infer,
    .cost = norm_lrn_cost,
    .eval = norm_lrn_eval,
};

static evo_status norm_bn_infer(const evo_kctx *c)
{
    return norm_bn_infer_impl(c, &evo_op_BatchNormalization);
}

static evo_status norm_in_infer(const evo_kctx *c)
{
    return norm_in_infer_impl(c, &evo_op_InstanceNormalization);
}

static evo_status norm_lrn_infer(const evo_kctx *c)
{
    return norm_lrn_infer_impl(c, &evo_op_LRN);
}
