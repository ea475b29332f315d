/*
 * Element-wise unary math ops: Abs, Neg, Sign (float32 and integers) and the
 * float32-only Sqrt, Exp, Log, Erf, Sin, Cos, Reciprocal, Floor, Ceil.
 *
 * Integer Abs/Neg wrap like two's complement (Abs(INT32_MIN) = INT32_MIN),
 * as ONNX Runtime does, without signed-overflow UB. Float results follow
 * IEEE and libm (Sqrt(-1) = NaN, Log(0) = -inf, Reciprocal(0) = inf).
 */
#include <math.h>

#include "elementwise.h"

/* ---------------------------------------------------------------- Abs, Neg, Sign */

EVO_ELEM_UNARY_KERNEL(unary_abs_f32, float, float, evo_elem_none, fabsf(x))
EVO_ELEM_UNARY_KERNEL(unary_abs_i32, int32_t, int32_t, evo_elem_none,
                      x < 0 ? EVO_ELEM_WRAP(int32_t, uint32_t, 0, -, x) : x)
EVO_ELEM_UNARY_KERNEL(unary_abs_i64, int64_t, int64_t, evo_elem_none,
                      x < 0 ? EVO_ELEM_WRAP(int64_t, uint64_t, 0, -, x) : x)
EVO_ELEM_UNARY_KERNEL(unary_abs_i8, int8_t, int8_t, evo_elem_none,
                      x < 0 ? EVO_ELEM_WRAP(int8_t, uint8_t, 0, -, x) : x)
EVO_ELEM_UNARY_KERNEL(unary_abs_u8, uint8_t, uint8_t, evo_elem_none, x)

static const evo_elem_unary_fn unary_abs_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = unary_abs_f32, [EVO_DT_INT32] = unary_abs_i32,
    [EVO_DT_INT64] = unary_abs_i64,   [EVO_DT_INT8] = unary_abs_i8,
    [EVO_DT_UINT8] = unary_abs_u8,
};
EVO_ELEM_UNARY_OP(Abs, 29, unary_abs_table, NULL, EVO_ELEM_COST_CHEAP)

/* Neg is defined for signed types only. */
EVO_ELEM_UNARY_KERNEL(unary_neg_f32, float, float, evo_elem_none, -x)
EVO_ELEM_UNARY_KERNEL(unary_neg_i32, int32_t, int32_t, evo_elem_none,
                      EVO_ELEM_WRAP(int32_t, uint32_t, 0, -, x))
EVO_ELEM_UNARY_KERNEL(unary_neg_i64, int64_t, int64_t, evo_elem_none,
                      EVO_ELEM_WRAP(int64_t, uint64_t, 0, -, x))
EVO_ELEM_UNARY_KERNEL(unary_neg_i8, int8_t, int8_t, evo_elem_none,
                      EVO_ELEM_WRAP(int8_t, uint8_t, 0, -, x))

static const evo_elem_unary_fn unary_neg_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = unary_neg_f32,
    [EVO_DT_INT32] = unary_neg_i32,
    [EVO_DT_INT64] = unary_neg_i64,
    [EVO_DT_INT8] = unary_neg_i8,
};
EVO_ELEM_UNARY_OP(Neg, 30, unary_neg_table, NULL, EVO_ELEM_COST_CHEAP)

/* Sign(NaN) = NaN and Sign(-0) = -0 (as numpy): only nonzero numbers map. */
EVO_ELEM_UNARY_KERNEL(unary_sign_f32, float, float, evo_elem_none,
                      x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x))
EVO_ELEM_UNARY_KERNEL(unary_sign_i32, int32_t, int32_t, evo_elem_none, (x > 0) - (x < 0))
EVO_ELEM_UNARY_KERNEL(unary_sign_i64, int64_t, int64_t, evo_elem_none, (x > 0) - (x < 0))
EVO_ELEM_UNARY_KERNEL(unary_sign_i8, int8_t, int8_t, evo_elem_none, (x > 0) - (x < 0))
EVO_ELEM_UNARY_KERNEL(unary_sign_u8, uint8_t, uint8_t, evo_elem_none, x > 0)

static const evo_elem_unary_fn unary_sign_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = unary_sign_f32, [EVO_DT_INT32] = unary_sign_i32,
    [EVO_DT_INT64] = unary_sign_i64,   [EVO_DT_INT8] = unary_sign_i8,
    [EVO_DT_UINT8] = unary_sign_u8,
};
EVO_ELEM_UNARY_OP(Sign, 34, unary_sign_table, NULL, EVO_ELEM_COST_CHEAP)

/* ---------------------------------------------------------------- float32 math */

/* One float32-only op: its kernel, its table and its definition. */
#define UNARY_F32_OP(NAME, ID, EXPR, COST)                                                         \
    EVO_ELEM_UNARY_KERNEL(unary_##NAME##_f32, float, float, evo_elem_none, EXPR)                   \
    static const evo_elem_unary_fn unary_##NAME##_table[EVO_DT_COUNT_] = {                         \
        [EVO_DT_FLOAT32] = unary_##NAME##_f32,                                                     \
    };                                                                                             \
    EVO_ELEM_UNARY_OP(NAME, ID, unary_##NAME##_table, NULL, COST)

UNARY_F32_OP(Sqrt, 25, sqrtf(x), EVO_ELEM_COST_MID)
UNARY_F32_OP(Exp, 26, expf(x), EVO_ELEM_COST_TRANSC)
UNARY_F32_OP(Log, 27, logf(x), EVO_ELEM_COST_TRANSC)
UNARY_F32_OP(Erf, 28, erff(x), EVO_ELEM_COST_TRANSC)
UNARY_F32_OP(Reciprocal, 31, 1.0f / x, EVO_ELEM_COST_MID)
UNARY_F32_OP(Floor, 32, floorf(x), EVO_ELEM_COST_CHEAP)
UNARY_F32_OP(Ceil, 33, ceilf(x), EVO_ELEM_COST_CHEAP)
UNARY_F32_OP(Sin, 35, sinf(x), EVO_ELEM_COST_TRANSC)
UNARY_F32_OP(Cos, 36, cosf(x), EVO_ELEM_COST_TRANSC)
