/*
 * Float32 activations: Relu, LeakyRelu, Elu, Selu, Sigmoid, HardSigmoid,
 * HardSwish, Tanh, Gelu, Softplus, Softsign. Relu also takes int32, int64
 * and int8, as the spec allows (Relu-14).
 *
 * Gelu is an opset-20 op that converters emit into older models; it is
 * registered in the default domain with its "approximate" attribute ("none":
 * 0.5 x (1 + erf(x / sqrt 2)), "tanh": the tanh approximation).
 *
 * NaN passes through Relu, LeakyRelu and the clamps unchanged (numpy's
 * reference behaviour), since `x < 0` is false for NaN.
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"

typedef struct act_params {
    float alpha;
    float beta;
    float gamma;
    int32_t gelu_tanh; /* Gelu: 1 for approximate="tanh" */
} act_params;
_Static_assert(sizeof(act_params) <= EVO_PARAMS_MAX, "act_params too large");

static evo_status act_get_float(const evo_node *node, const char *name, float def, float *out,
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

/* ---------------------------------------------------------------- Relu, LeakyRelu */

EVO_ELEM_UNARY_KERNEL(act_relu_f32, float, float, evo_elem_none, x < 0.0f ? 0.0f : x)
EVO_ELEM_UNARY_KERNEL(act_relu_i32, int32_t, int32_t, evo_elem_none, x < 0 ? 0 : x)
EVO_ELEM_UNARY_KERNEL(act_relu_i64, int64_t, int64_t, evo_elem_none, x < 0 ? 0 : x)
EVO_ELEM_UNARY_KERNEL(act_relu_i8, int8_t, int8_t, evo_elem_none, x < 0 ? 0 : x)

static const evo_elem_unary_fn act_relu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_relu_f32,
    [EVO_DT_INT32] = act_relu_i32,
    [EVO_DT_INT64] = act_relu_i64,
    [EVO_DT_INT8] = act_relu_i8,
};
EVO_ELEM_UNARY_OP(Relu, 5, act_relu_table, NULL, EVO_ELEM_COST_CHEAP)

static evo_status act_parse_leaky(const evo_node *node, void *params, evo_error *err)
{
    return act_get_float(node, "alpha", 0.01f, &((act_params *)params)->alpha, err);
}

EVO_ELEM_UNARY_KERNEL(act_leaky_f32, float, float, act_params, evo_elem_leaky_f32(x, P->alpha))
static const evo_elem_unary_fn act_leaky_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_leaky_f32,
};
EVO_ELEM_UNARY_OP(LeakyRelu, 6, act_leaky_table, act_parse_leaky, EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- Elu, Selu */

static evo_status act_parse_elu(const evo_node *node, void *params, evo_error *err)
{
    return act_get_float(node, "alpha", 1.0f, &((act_params *)params)->alpha, err);
}

EVO_ELEM_UNARY_KERNEL(act_elu_f32, float, float, act_params, x < 0.0f ? P->alpha * expm1f(x) : x)
static const evo_elem_unary_fn act_elu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_elu_f32,
};
EVO_ELEM_UNARY_OP(Elu, 8, act_elu_table, act_parse_elu, EVO_ELEM_COST_TRANSC)

static evo_status act_parse_selu(const evo_node *node, void *params, evo_error *err)
{
    act_params *p = params;
    evo_status rv = act_get_float(node, "alpha", 1.67326319217681884765625f, &p->alpha, err);
    if (rv == EVO_OK)
        rv = act_get_float(node, "gamma", 1.05070102214813232421875f, &p->gamma, err);
    return rv;
}

EVO_ELEM_UNARY_KERNEL(act_selu_f32, float, float, act_params,
                      x > 0.0f ? P->gamma * x : P->gamma * (P->alpha * expf(x) - P->alpha))
static const evo_elem_unary_fn act_selu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_selu_f32,
};
EVO_ELEM_UNARY_OP(Selu, 9, act_selu_table, act_parse_selu, EVO_ELEM_COST_TRANSC)

/* ---------------------------------------------------------------- sigmoids */

/* 1 / (1 + e^-x): for x < -88 e^-x overflows to inf and the result is 0,
 * which is within float precision of the true value. The loop calls libm's
 * expf, so it is not vectorized: a polynomial exp with range handling was
 * tried and GCC 12 at -O2 would not if-convert it (clang did, at ~2x libm's
 * speed); a vectorized exp belongs in kernels/x86 with intrinsics. */
EVO_ELEM_UNARY_KERNEL(act_sigmoid_f32, float, float, evo_elem_none, 1.0f / (1.0f + expf(-x)))
static const evo_elem_unary_fn act_sigmoid_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_sigmoid_f32,
};
EVO_ELEM_UNARY_OP(Sigmoid, 11, act_sigmoid_table, NULL, EVO_ELEM_COST_TRANSC)

static evo_status act_parse_hard_sigmoid(const evo_node *node, void *params, evo_error *err)
{
    act_params *p = params;
    evo_status rv = act_get_float(node, "alpha", 0.2f, &p->alpha, err);
    if (rv == EVO_OK)
        rv = act_get_float(node, "beta", 0.5f, &p->beta, err);
    return rv;
}

/* max(0, min(1, alpha x + beta)), written as two selects so it vectorizes. */
static inline float act_clamp01(float v)
{
    v = v < 0.0f ? 0.0f : v;
    return v > 1.0f ? 1.0f : v;
}

EVO_ELEM_UNARY_KERNEL(act_hard_sigmoid_f32, float, float, act_params,
                      act_clamp01(P->alpha *x + P->beta))
static const evo_elem_unary_fn act_hard_sigmoid_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_hard_sigmoid_f32,
};
EVO_ELEM_UNARY_OP(HardSigmoid, 12, act_hard_sigmoid_table, act_parse_hard_sigmoid,
                  EVO_ELEM_COST_CHEAP)

/* x * HardSigmoid(x) with alpha = 1/6, beta = 0.5 (fixed by the spec),
 * computed as x * clamp(x + 3, 0, 6) / 6: written as x * clamp(x/6 + 0.5,
 * 0, 1), GCC turns the multiplication by the clamp's constant 1 into a
 * branch and no longer vectorizes the loop. */
static inline float act_hard_swish(float x)
{
    float h = x + 3.0f;
    h = h < 0.0f ? 0.0f : h;
    h = h > 6.0f ? 6.0f : h;
    return x * h * (1.0f / 6.0f);
}

EVO_ELEM_UNARY_KERNEL(act_hard_swish_f32, float, float, evo_elem_none, act_hard_swish(x))
static const evo_elem_unary_fn act_hard_swish_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_hard_swish_f32,
};
EVO_ELEM_UNARY_OP(HardSwish, 13, act_hard_swish_table, NULL, EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- Tanh, Gelu */

EVO_ELEM_UNARY_KERNEL(act_tanh_f32, float, float, evo_elem_none, tanhf(x))
static const evo_elem_unary_fn act_tanh_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_tanh_f32,
};
EVO_ELEM_UNARY_OP(Tanh, 14, act_tanh_table, NULL, EVO_ELEM_COST_TRANSC)

static evo_status act_parse_gelu(const evo_node *node, void *params, evo_error *err)
{
    const char *mode;
    if (evo_attr_get_string(node, "approximate", "none", &mode) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "Gelu node '%s': attribute 'approximate' must be a string",
                             EVO_ELEM_NODE_NAME(node));
    if (strcmp(mode, "none") == 0)
        ((act_params *)params)->gelu_tanh = 0;
    else if (strcmp(mode, "tanh") == 0)
        ((act_params *)params)->gelu_tanh = 1;
    else
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "Gelu node '%s': approximate must be \"none\" or \"tanh\", not "
                             "\"%.40s\"",
                             EVO_ELEM_NODE_NAME(node), mode);
    return EVO_OK;
}

static inline float act_gelu(float x, int32_t use_tanh)
{
    if (use_tanh) {
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

EVO_ELEM_UNARY_KERNEL(act_gelu_f32, float, float, act_params, act_gelu(x, P->gelu_tanh))
static const evo_elem_unary_fn act_gelu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_gelu_f32,
};
EVO_ELEM_UNARY_OP(Gelu, 15, act_gelu_table, act_parse_gelu, EVO_ELEM_COST_TRANSC)

/* ---------------------------------------------------------------- Softplus, Softsign */

/* log(1 + e^x) without overflow: for x > 0 it is x + log(1 + e^-x). */
static inline float act_softplus(float x)
{
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

EVO_ELEM_UNARY_KERNEL(act_softplus_f32, float, float, evo_elem_none, act_softplus(x))
static const evo_elem_unary_fn act_softplus_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_softplus_f32,
};
EVO_ELEM_UNARY_OP(Softplus, 16, act_softplus_table, NULL, EVO_ELEM_COST_TRANSC)

EVO_ELEM_UNARY_KERNEL(act_softsign_f32, float, float, evo_elem_none, x / (1.0f + fabsf(x)))
static const evo_elem_unary_fn act_softsign_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = act_softsign_f32,
};
EVO_ELEM_UNARY_OP(Softsign, 17, act_softsign_table, NULL, EVO_ELEM_COST_MID)
