/*
 * More float32 activations: Celu, Mish, ThresholdedRelu, Shrink and Swish.
 *
 *   Celu(x)            = max(0, x) + min(0, alpha (exp(x / alpha) - 1))
 *   Mish(x)            = x tanh(softplus(x))
 *   ThresholdedRelu(x) = x if x > alpha else 0
 *   Shrink(x)          = x + bias if x < -lambd, x - bias if x > lambd, else 0
 *
 * NaN stays NaN in Celu and Mish; in ThresholdedRelu and Shrink every
 * comparison with NaN is false, so NaN maps to 0 (numpy's reference does the
 * same).
 */
#include <math.h>

#include "elementwise.h"

typedef struct actx_params {
    float alpha;
    float bias;
    float lambd;
} actx_params;
_Static_assert(sizeof(actx_params) <= EVO_PARAMS_MAX, "actx_params too large");

static evo_status actx_get_float(const evo_node *node, const char *name, float def, float *out,
                                 evo_error *err)
{
    if (evo_attr_get_float(node, name, def, out) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': attribute '%s' must be a float",
                             node->op_type, EVO_ELEM_NODE_NAME(node), name);
    if (!isfinite(*out))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': attribute '%s' must be finite", node->op_type,
                             EVO_ELEM_NODE_NAME(node), name);
    return EVO_OK;
}

/* ---------------------------------------------------------------- Celu */

static evo_status actx_parse_celu(const evo_node *node, void *params, evo_error *err)
{
    actx_params *p = params;
    evo_status rv = actx_get_float(node, "alpha", 1.0f, &p->alpha, err);
    if (rv == EVO_OK && p->alpha == 0.0f)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "Celu node '%s': alpha must not be 0 (the op divides by it)",
                             EVO_ELEM_NODE_NAME(node));
    return rv;
}

static inline float actx_celu(float x, float alpha)
{
    float neg = alpha * expm1f(x / alpha);
    return (x > 0.0f ? x : 0.0f) + (neg < 0.0f ? neg : 0.0f) + (x != x ? x : 0.0f);
}

EVO_ELEM_UNARY_KERNEL(actx_celu_f32, float, float, actx_params, actx_celu(x, P->alpha))
static const evo_elem_unary_fn actx_celu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = actx_celu_f32,
};
EVO_ELEM_UNARY_OP(Celu, 105, actx_celu_table, actx_parse_celu, EVO_ELEM_COST_TRANSC)

/* ---------------------------------------------------------------- Mish */

/* softplus without overflow (x + log1p(e^-x) for x > 0); tanh saturates to
 * 1 for large x, so Mish(x) -> x there. */
static inline float actx_mish(float x)
{
    float sp = x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    return x * tanhf(sp);
}

EVO_ELEM_UNARY_KERNEL(actx_mish_f32, float, float, evo_elem_none, actx_mish(x))
static const evo_elem_unary_fn actx_mish_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = actx_mish_f32,
};
EVO_ELEM_UNARY_OP(Mish, 106, actx_mish_table, NULL, EVO_ELEM_COST_TRANSC)

/* ---------------------------------------------------------------- ThresholdedRelu */

static evo_status actx_parse_thresholded(const evo_node *node, void *params, evo_error *err)
{
    return actx_get_float(node, "alpha", 1.0f, &((actx_params *)params)->alpha, err);
}

EVO_ELEM_UNARY_KERNEL(actx_thresholded_f32, float, float, actx_params, x > P->alpha ? x : 0.0f)
static const evo_elem_unary_fn actx_thresholded_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = actx_thresholded_f32,
};
EVO_ELEM_UNARY_OP(ThresholdedRelu, 107, actx_thresholded_table, actx_parse_thresholded,
                  EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- Shrink */

static evo_status actx_parse_shrink(const evo_node *node, void *params, evo_error *err)
{
    actx_params *p = params;
    evo_status rv = actx_get_float(node, "bias", 0.0f, &p->bias, err);
    if (rv == EVO_OK)
        rv = actx_get_float(node, "lambd", 0.5f, &p->lambd, err);
    return rv;
}

EVO_ELEM_UNARY_KERNEL(actx_shrink_f32, float, float, actx_params,
                      x < -P->lambd ? x + P->bias : (x > P->lambd ? x - P->bias : 0.0f))
static const evo_elem_unary_fn actx_shrink_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = actx_shrink_f32,
};
EVO_ELEM_UNARY_OP(Shrink, 108, actx_shrink_table, actx_parse_shrink, EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- Swish */

/* Swish(x) = x sigmoid(alpha x) (opset 24), alpha default 1. */
static evo_status actx_parse_swish(const evo_node *node, void *params, evo_error *err)
{
    return actx_get_float(node, "alpha", 1.0f, &((actx_params *)params)->alpha, err);
}

EVO_ELEM_UNARY_KERNEL(actx_swish_f32, float, float, actx_params, x / (1.0f + expf(-P->alpha * x)))
static const evo_elem_unary_fn actx_swish_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = actx_swish_f32,
};
EVO_ELEM_UNARY_OP(Swish, 133, actx_swish_table, actx_parse_swish, EVO_ELEM_COST_TRANSC)
