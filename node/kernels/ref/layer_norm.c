/*
 * Normalizations over trailing dims or channel groups, float32:
 *
 *   LayerNormalization(X, Scale, B?; axis=-1, epsilon=1e-5, stash_type=1)
 *       -> Y, Mean?, InvStdDev?   normalizes each row X[i0..i(axis-1), ...]
 *       over the dims axis..rank-1, then Y = Y * Scale + B (Scale and B
 *       broadcast to X). Mean and InvStdDev have X's shape with the
 *       normalized dims set to 1.
 *   RMSNormalization(X, scale; axis=-1, epsilon=1e-5, stash_type=1) -> Y
 *       Y = X / sqrt(mean(X^2) + epsilon) * scale (opset 23).
 *   GroupNormalization(X, scale, bias; num_groups, epsilon=1e-5) -> Y
 *       X is N x C x D...; channels are split into num_groups groups, each
 *       (n, group) normalized over its channels and spatial positions, then
 *       scaled per channel (opset 21: scale and bias are [C]) or per group
 *       (opset 18: [num_groups]).
 *
 * Statistics are accumulated in double (two passes: mean, then variance),
 * which is at least as precise as the float32 the spec's stash_type=1 asks
 * for; other stash types would change the output types and are unsupported.
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef struct ln_params {
    int64_t axis;
    float epsilon;
    int32_t num_groups;
    int32_t per_group_scale; /* GroupNormalization before opset 21 */
} ln_params;
_Static_assert(sizeof(ln_params) <= EVO_PARAMS_MAX, "ln_params too large");

extern const evo_op_def evo_op_LayerNormalization;
extern const evo_op_def evo_op_RMSNormalization;
extern const evo_op_def evo_op_GroupNormalization;

/* ---------------------------------------------------------------- parse */

static evo_status ln_parse_common(const evo_node *node, ln_params *p, evo_error *err)
{
    int64_t stash;
    if (evo_attr_get_float(node, "epsilon", 1e-5f, &p->epsilon) != EVO_OK ||
        !(p->epsilon >= 0.0f) || !isfinite(p->epsilon))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': epsilon must be a finite float >= 0", node->op_type,
                             EVO_ELEM_NODE_NAME(node));
    if (evo_attr_get_int(node, "stash_type", 1, &stash) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': stash_type must be an int",
                             node->op_type, EVO_ELEM_NODE_NAME(node));
    if (stash != EVO_DT_FLOAT32)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s node '%s': stash_type %lld is not supported (only 1, float32)",
                             node->op_type, EVO_ELEM_NODE_NAME(node), (long long)stash);
    return EVO_OK;
}

static evo_status ln_parse_layer(const evo_node *node, void *params, evo_error *err)
{
    ln_params *p = params;
    if (evo_attr_get_int(node, "axis", -1, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': axis must be an int", node->op_type,
                             EVO_ELEM_NODE_NAME(node));
    return ln_parse_common(node, p, err);
}

static evo_status ln_parse_group(const evo_node *node, void *params, evo_error *err)
{
    ln_params *p = params;
    int64_t g;
    const evo_attr *a = evo_node_attr(node, "num_groups");
    if (a == NULL || a->type != EVO_ATTR_INT || a->i < 1 || a->i > INT32_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "GroupNormalization node '%s': the attribute num_groups must be an "
                             "int >= 1",
                             EVO_ELEM_NODE_NAME(node));
    g = a->i;
    p->num_groups = (int32_t)g;
    p->per_group_scale = node->opset < 21;
    return ln_parse_common(node, p, err);
}

/* ---------------------------------------------------------------- infer */

static evo_status ln_check_x(const evo_op_def *op, const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 0; i < c->n_in; i++) {
        if (c->in[i] == NULL)
            continue;
        if ((rv = kpool_check_tensor(c, op->name,
                                     i == 0   ? "X"
                                     : i == 1 ? "scale"
                                              : "bias",
                                     c->in[i])) != EVO_OK)
            return rv;
        if (c->in[i]->dtype != EVO_DT_FLOAT32)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "%s: input %d has type %s; evo supports float32", op->name, (int)i,
                                 evo_dtype_name(c->in[i]->dtype));
    }
    return EVO_OK;
}

/* Scale (and B) must broadcast onto X. */
static evo_status ln_check_affine(const evo_op_def *op, const evo_kctx *c, int32_t first)
{
    for (int32_t i = first; i < c->n_in; i++) {
        if (c->in[i] == NULL)
            continue;
        const evo_shape *s[1] = {&c->in[i]->shape};
        evo_bcast plan;
        if (evo_bcast_plan(&plan, &c->in[0]->shape, s, 1) != EVO_OK) {
            char bx[96], bs[96];
            evo_shape_format(&c->in[0]->shape, bx, sizeof bx);
            evo_shape_format(&c->in[i]->shape, bs, sizeof bs);
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: input %d of shape %s does not broadcast to X's shape %s",
                                 op->name, (int)i, bs, bx);
        }
    }
    return EVO_OK;
}

static evo_status ln_infer_rows(const evo_op_def *op, const evo_kctx *c)
{
    const ln_params *p = c->params;
    evo_status rv = ln_check_x(op, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    int32_t axis;
    if (x->shape.rank < 1 || evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                             op->name, (long long)p->axis, (int)x->shape.rank);
    if ((rv = ln_check_affine(op, c, 1)) != EVO_OK)
        return rv;
    if ((rv = kpool_set_out(c, op->name, c->out[0], EVO_DT_FLOAT32, &x->shape)) != EVO_OK)
        return rv;
    evo_shape ss = x->shape;
    for (int32_t d = axis; d < ss.rank; d++)
        ss.dims[d] = 1;
    for (int32_t o = 1; o < c->n_out; o++)
        if (c->out[o] != NULL &&
            (rv = kpool_set_out(c, op->name, c->out[o], EVO_DT_FLOAT32, &ss)) != EVO_OK)
            return rv;
    return EVO_OK;
}

static evo_status ln_infer_layer(const evo_kctx *c)
{
    return ln_infer_rows(&evo_op_LayerNormalization, c);
}

static evo_status ln_infer_rms(const evo_kctx *c)
{
    return ln_infer_rows(&evo_op_RMSNormalization, c);
}

static evo_status ln_infer_group(const evo_kctx *c)
{
    const evo_op_def *op = &evo_op_GroupNormalization;
    const ln_params *p = c->params;
    evo_status rv = ln_check_x(op, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (x->shape.rank < 2)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "GroupNormalization: X must have rank >= 2 (N, C, ...), got %d",
                             (int)x->shape.rank);
    int32_t ch = x->shape.dims[1];
    if (p->num_groups < 1) /* params from a file */
        return evo_error_set(c->err, EVO_ERR_PARSE, "GroupNormalization: num_groups %d is not >= 1",
                             (int)p->num_groups);
    if (ch % p->num_groups != 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "GroupNormalization: %d channels do not split into %d groups", (int)ch,
                             (int)p->num_groups);
    int32_t want = p->per_group_scale ? p->num_groups : ch;
    for (int32_t i = 1; i < 3; i++) {
        const evo_tensor *t = c->in[i];
        if (t->shape.rank != 1 || t->shape.dims[0] != want)
            return evo_error_set(
                c->err, EVO_ERR_SHAPE, "GroupNormalization: %s must have shape [%d] (%s)",
                i == 1 ? "scale" : "bias", (int)want,
                p->per_group_scale ? "num_groups, before opset 21" : "channels, opset 21");
    }
    return kpool_set_out(c, op->name, c->out[0], EVO_DT_FLOAT32, &x->shape);
}

/* ---------------------------------------------------------------- eval */

/* Normalize `rows` contiguous rows of `len` elements from x into y
 * (y may equal x). rms: divide by the root mean square instead of
 * subtracting the mean and dividing by the standard deviation. */
static void ln_normalize(const float *x, float *y, int64_t rows, int64_t len, float eps, bool rms,
                         float *mean_out, float *inv_out)
{
    for (int64_t r = 0; r < rows; r++, x += len, y += len) {
        double mean = 0.0, var = 0.0;
        if (!rms) {
            for (int64_t i = 0; i < len; i++)
                mean += x[i];
            mean = len > 0 ? mean / (double)len : 0.0;
        }
        for (int64_t i = 0; i < len; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var = len > 0 ? var / (double)len : 0.0;
        double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < len; i++)
            y[i] = (float)((x[i] - mean) * inv);
        if (mean_out != NULL)
            mean_out[r] = (float)mean;
        if (inv_out != NULL)
            inv_out[r] = (float)inv;
    }
}

/* y = y * scale + bias over X's shape, scale and bias broadcast (bias may be
 * NULL). */
static evo_status ln_affine(const evo_tensor *y, const evo_tensor *scale, const evo_tensor *bias)
{
    const evo_shape *shapes[2] = {&scale->shape, bias != NULL ? &bias->shape : &scale->shape};
    evo_bcast plan;
    if (evo_bcast_plan(&plan, &y->shape, shapes, 2) != EVO_OK)
        return EVO_ERR_INTERNAL;
    float *py = y->data;
    const float *ps = scale->data, *pb = bias != NULL ? bias->data : NULL;
    evo_bcast_iter it;
    evo_bcast_begin(&plan, &it);
    while (evo_bcast_next(&plan, &it)) {
        float *o = py + it.out_off;
        const float *s = ps + it.in_off[0], *b = pb != NULL ? pb + it.in_off[1] : NULL;
        int32_t ss = plan.inner_stride[0], sb = plan.inner_stride[1];
        for (int64_t i = 0; i < plan.inner; i++)
            o[i] = o[i] * s[i * ss] + (b != NULL ? b[i * sb] : 0.0f);
    }
    return EVO_OK;
}

static evo_status ln_eval_rows(const evo_kctx *c, bool rms)
{
    const ln_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int32_t axis;
    if (evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t rows = kpool_prod(&x->shape, 0, axis), len = kpool_prod(&x->shape, axis, x->shape.rank);
    float *mean = !rms && c->n_out > 1 && c->out[1] != NULL ? c->out[1]->data : NULL;
    float *inv = !rms && c->n_out > 2 && c->out[2] != NULL ? c->out[2]->data : NULL;
    ln_normalize(x->data, c->out[0]->data, rows, len, p->epsilon, rms, mean, inv);
    return ln_affine(c->out[0], c->in[1], rms || c->n_in < 3 ? NULL : c->in[2]);
}

static evo_status ln_eval_layer(const evo_kctx *c)
{
    return ln_eval_rows(c, false);
}

static evo_status ln_eval_rms(const evo_kctx *c)
{
    return ln_eval_rows(c, true);
}

static evo_status ln_eval_group(const evo_kctx *c)
{
    const ln_params *p = c->params;
    const evo_tensor *x = c->in[0];
    const float *scale = c->in[1]->data, *bias = c->in[2]->data;
    int64_t n = x->shape.dims[0], ch = x->shape.dims[1], g = p->num_groups;
    int64_t spatial = kpool_prod(&x->shape, 2, x->shape.rank), cpg = ch / g;
    float *y = c->out[0]->data;
    if (n * ch * spatial == 0)
        return EVO_OK; /* empty: do not walk num_groups empty rows */
    ln_normalize(x->data, y, n * g, cpg * spatial, p->epsilon, false, NULL, NULL);
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = 0; k < ch; k++) {
            int64_t si = p->per_group_scale ? k / cpg : k;
            float s = scale[si], t = bias[si];
            float *row = y + (b * ch + k) * spatial;
            for (int64_t i = 0; i < spatial; i++)
                row[i] = row[i] * s + t;
        }
    }
    return EVO_OK;
}

static void ln_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 8);
}

/* ---------------------------------------------------------------- definitions */

/* In place: each row is read completely (statistics) before it is written,
 * and the affine pass reads and writes the same element. */
const evo_op_def evo_op_LayerNormalization = {
    .name = "LayerNormalization",
    .domain = "",
    .id = 113,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 3,
    .parse = ln_parse_layer,
    .infer = ln_infer_layer,
    .cost = ln_cost,
    .eval = ln_eval_layer,
};

const evo_op_def evo_op_GroupNormalization = {
    .name = "GroupNormalization",
    .domain = "",
    .id = 114,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = ln_parse_group,
    .infer = ln_infer_group,
    .cost = ln_cost,
    .eval = ln_eval_group,
};

const evo_op_def evo_op_RMSNormalization = {
    .name = "RMSNormalization",
    .domain = "",
    .id = 115,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = ln_parse_layer,
    .infer = ln_infer_rms,
    .cost = ln_cost,
    .eval = ln_eval_rms,
};
