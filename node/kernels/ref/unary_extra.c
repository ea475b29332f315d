/*
 * More element-wise float32 math: the trigonometric and hyperbolic family
 * (Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh), Round, and the
 * float classifiers IsNaN and IsInf (bool outputs).
 *
 * Results follow IEEE and libm (Asin(2) = NaN, Atanh(1) = inf). Round
 * rounds halves to even, as ONNX specifies, which is rintf in the default
 * rounding mode (nothing in evo changes the mode).
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"

/* One float32-only op: its kernel, its table and its definition. */
#define UX_F32_OP(NAME, ID, EXPR, COST)                                                            \
    EVO_ELEM_UNARY_KERNEL(ux_##NAME##_f32, float, float, evo_elem_none, EXPR)                      \
    static const evo_elem_unary_fn ux_##NAME##_table[EVO_DT_COUNT_] = {                            \
        [EVO_DT_FLOAT32] = ux_##NAME##_f32,                                                        \
    };                                                                                             \
    EVO_ELEM_UNARY_OP(NAME, ID, ux_##NAME##_table, NULL, COST)

UX_F32_OP(Tan, 93, tanf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Asin, 94, asinf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Acos, 95, acosf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Atan, 96, atanf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Sinh, 97, sinhf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Cosh, 98, coshf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Asinh, 99, asinhf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Acosh, 100, acoshf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Atanh, 101, atanhf(x), EVO_ELEM_COST_TRANSC)
UX_F32_OP(Round, 102, rintf(x), EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- IsNaN, IsInf */

typedef struct ux_isinf_params {
    int32_t detect_negative;
    int32_t detect_positive;
} ux_isinf_params;
_Static_assert(sizeof(ux_isinf_params) <= EVO_PARAMS_MAX, "ux_isinf_params too large");

static evo_status ux_parse_isinf(const evo_node *node, void *params, evo_error *err)
{
    ux_isinf_params *p = params;
    int64_t neg, pos;
    if (evo_attr_get_int(node, "detect_negative", 1, &neg) != EVO_OK ||
        evo_attr_get_int(node, "detect_positive", 1, &pos) != EVO_OK || (neg != 0 && neg != 1) ||
        (pos != 0 && pos != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "IsInf node '%s': detect_negative and detect_positive must be the "
                             "int 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    p->detect_negative = (int32_t)neg;
    p->detect_positive = (int32_t)pos;
    return EVO_OK;
}

/* x != x is NaN; the infinity tests compare against the constants so the
 * loop stays branch-free. */
EVO_ELEM_UNARY_KERNEL(ux_isnan_f32, float, evo_elem_bool, evo_elem_none, x != x)
EVO_ELEM_UNARY_KERNEL(ux_isinf_f32, float, evo_elem_bool, ux_isinf_params,
                      (P->detect_positive & (x == INFINITY)) |
                          (P->detect_negative & (x == -INFINITY)))

/* A float32 -> bool classifier (not in place: the output type differs). */
#define UX_CLASSIFIER_OP(NAME, ID, FN, PARSE)                                                      \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status ux_##NAME##_infer(const evo_kctx *c)                                         \
    {                                                                                              \
        return evo_elem_infer_unary(&evo_op_##NAME, c, EVO_ELEM_DT(EVO_DT_FLOAT32), EVO_DT_BOOL);  \
    }                                                                                              \
    static void ux_##NAME##_cost(const evo_kctx *c, evo_op_cost *cost)                             \
    {                                                                                              \
        evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);                                           \
    }                                                                                              \
    static evo_status ux_##NAME##_eval(const evo_kctx *c)                                          \
    {                                                                                              \
        int64_t n = evo_shape_numel(&c->in[0]->shape);                                             \
        if (n < 0)                                                                                 \
            return EVO_ERR_INTERNAL;                                                               \
        FN(c->out[0]->data, c->in[0]->data, n, c->params);                                         \
        return EVO_OK;                                                                             \
    }                                                                                              \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = (ID),                                                                                \
        .min_inputs = 1,                                                                           \
        .max_inputs = 1,                                                                           \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .parse = (PARSE),                                                                          \
        .infer = ux_##NAME##_infer,                                                                \
        .cost = ux_##NAME##_cost,                                                                  \
        .eval = ux_##NAME##_eval,                                                                  \
    };

UX_CLASSIFIER_OP(IsNaN, 103, ux_isnan_f32, NULL)
UX_CLASSIFIER_OP(IsInf, 104, ux_isinf_f32, ux_parse_isinf)
