/*
 * Arithmetic with multidirectional broadcasting: Add, Sub, Mul, Div (float32,
 * int32, int64, int8, uint8) and Pow (float32, int32 or int64 base; float32
 * or integer exponent).
 *
 * Integer semantics (ONNX leaves overflow unspecified; these match ONNX
 * Runtime on two's complement hardware, without C undefined behaviour):
 *   - Add, Sub, Mul wrap around.
 *   - Div truncates toward zero (C division, as the conformance test
 *     test_div_int32_trunc expects). Division by zero gives 0 instead of
 *     trapping; INT_MIN / -1 wraps to INT_MIN.
 *   - Pow with an integer base and exponent: repeated multiplication with
 *     wrap-around; a negative exponent gives the truncated real result
 *     (1 for base 1, +-1 for base -1, 0 otherwise, also for base 0).
 *     Pow with an integer base and float exponent converts pow() of the
 *     values with truncation, saturating at the type's range; NaN gives 0.
 */
#include <math.h>

#include "elementwise.h"
#include "kernels/conv.h"

/* ---------------------------------------------------------------- Add, Sub, Mul, Div */

EVO_ELEM_BINARY_KERNEL(bin_add_f32, float, float, float, x + y)
EVO_ELEM_BINARY_KERNEL(bin_sub_f32, float, float, float, x - y)
EVO_ELEM_BINARY_KERNEL(bin_mul_f32, float, float, float, x *y)
EVO_ELEM_BINARY_KERNEL(bin_div_f32, float, float, float, x / y)
/* Add with a fused Relu, as evo_act_apply computes it (x > 0 ? x : 0). */
EVO_ELEM_BINARY_KERNEL(bin_add_relu_f32, float, float, float, (x + y) > 0.0f ? (x + y) : 0.0f)

#define BIN_SIGNED_DIV(T, U, x, y)                                                                 \
    ((y) == 0 ? (T)0 : ((y) == -1 ? EVO_ELEM_WRAP(T, U, 0, -, x) : (T)((x) / (y))))

#define BIN_INT_KERNELS(SUF, T, U, DIV)                                                            \
    EVO_ELEM_BINARY_KERNEL(bin_add_##SUF, T, T, T, EVO_ELEM_WRAP(T, U, x, +, y))                   \
    EVO_ELEM_BINARY_KERNEL(bin_sub_##SUF, T, T, T, EVO_ELEM_WRAP(T, U, x, -, y))                   \
    EVO_ELEM_BINARY_KERNEL(bin_mul_##SUF, T, T, T, EVO_ELEM_WRAP(T, U, x, *, y))                   \
    EVO_ELEM_BINARY_KERNEL(bin_div_##SUF, T, T, T, DIV)

BIN_INT_KERNELS(i32, int32_t, uint32_t, BIN_SIGNED_DIV(int32_t, uint32_t, x, y))
BIN_INT_KERNELS(i64, int64_t, uint64_t, BIN_SIGNED_DIV(int64_t, uint64_t, x, y))
BIN_INT_KERNELS(i8, int8_t, uint8_t, BIN_SIGNED_DIV(int8_t, uint8_t, x, y))
BIN_INT_KERNELS(u8, uint8_t, uint8_t, y == 0 ? 0 : x / y)

/* Kernel table of one arithmetic op, indexed by dtype. */
#define BIN_TABLE(OP)                                                                              \
    static const evo_elem_binary_fn bin_##OP##_table[EVO_DT_COUNT_] = {                            \
        [EVO_DT_FLOAT32] = bin_##OP##_f32, [EVO_DT_INT32] = bin_##OP##_i32,                        \
        [EVO_DT_INT64] = bin_##OP##_i64,   [EVO_DT_INT8] = bin_##OP##_i8,                          \
        [EVO_DT_UINT8] = bin_##OP##_u8,                                                            \
    };

BIN_TABLE(add)
BIN_TABLE(sub)
BIN_TABLE(mul)
BIN_TABLE(div)

/* Infer, cost, eval and definition of one arithmetic op. Output 0 may alias
 * input 0 (the kernels read both operands of an index before writing it). */
#define BIN_ARITH_OP(NAME, ID, OP)                                                                 \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status bin_##OP##_infer(const evo_kctx *c)                                          \
    {                                                                                              \
        return evo_elem_infer_binary(&evo_op_##NAME, c, EVO_ELEM_DT_NUMERIC, EVO_DT_UNDEFINED);    \
    }                                                                                              \
    static void bin_##OP##_cost(const evo_kctx *c, evo_op_cost *cost)                              \
    {                                                                                              \
        evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);                                           \
    }                                                                                              \
    static evo_status bin_##OP##_eval(const evo_kctx *c)                                           \
    {                                                                                              \
        evo_elem_binary_fn fn = bin_##OP##_table[c->in[0]->dtype];                                 \
        if (fn == NULL)                                                                            \
            return EVO_ERR_INTERNAL;                                                               \
        return evo_elem_run_binary(fn, c->in[0], c->in[1], c->out[0]);                             \
    }                                                                                              \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = (ID),                                                                                \
        .flags = EVO_OP_INPLACE,                                                                   \
        .min_inputs = 2,                                                                           \
        .max_inputs = 2,                                                                           \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .infer = bin_##OP##_infer,                                                                 \
        .cost = bin_##OP##_cost,                                                                   \
        .eval = bin_##OP##_eval,                                                                   \
    };

BIN_ARITH_OP(Sub, 21, sub)
BIN_ARITH_OP(Mul, 22, mul)
BIN_ARITH_OP(Div, 23, div)

/* ---------------------------------------------------------------- Add */

/* Add is the arithmetic op above plus an optional fused activation in its
 * params (set only by the fusion pass; zero from ONNX). */
extern const evo_op_def evo_op_Add;

static evo_status bin_add_infer(const evo_kctx *c)
{
    evo_status rv = evo_elem_infer_binary(&evo_op_Add, c, EVO_ELEM_DT_NUMERIC, EVO_DT_UNDEFINED);
    if (rv != EVO_OK || c->params == NULL)
        return rv;
    /* Params may come from an untrusted compact model: check them all. */
    const evo_add_params *p = (const evo_add_params *)c->params;
    switch (p->act.kind) {
    case EVO_ACT_NONE:
        return EVO_OK;
    case EVO_ACT_RELU:
        break;
    case EVO_ACT_CLIP:
        if (isnan(p->act.a) || isnan(p->act.b))
            return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                 "Add: the fused Clip has a NaN bound");
        break;
    default:
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                             "Add: unknown fused activation %d in its params (only Relu and "
                             "Clip are accepted)",
                             (int)p->act.kind);
    }
    if (c->in[0]->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "Add: a fused activation needs float32 inputs, got %s",
                             evo_dtype_name(c->in[0]->dtype));
    return EVO_OK;
}

static void bin_add_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status bin_add_eval(const evo_kctx *c)
{
    evo_elem_binary_fn fn = bin_add_table[c->in[0]->dtype];
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    const evo_act *act = c->params != NULL ? &((const evo_add_params *)c->params)->act : NULL;
    if (act == NULL || act->kind == EVO_ACT_NONE)
        return evo_elem_run_binary(fn, c->in[0], c->in[1], c->out[0]);
    /* Relu runs inside the add loop; Clip as a second pass over the output,
     * still cheaper than a separate node. */
    if (act->kind == EVO_ACT_RELU)
        return evo_elem_run_binary(bin_add_relu_f32, c->in[0], c->in[1], c->out[0]);
    evo_status rv = evo_elem_run_binary(bin_add_f32, c->in[0], c->in[1], c->out[0]);
    if (rv == EVO_OK)
        evo_act_apply(act, (float *)c->out[0]->data, (size_t)evo_shape_numel(&c->out[0]->shape));
    return rv;
}

const evo_op_def evo_op_Add = {
    .name = "Add",
    .domain = "",
    .id = 20,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = bin_add_infer,
    .cost = bin_add_cost,
    .eval = bin_add_eval,
};

/* ---------------------------------------------------------------- Pow */

/* Integer power by squaring, wrapping in the unsigned type of 64 bits (the
 * narrower result is the low bits of the wide one). */
static int64_t bin_ipow(int64_t base, int64_t e)
{
    if (e < 0) {
        if (base == 1)
            return 1;
        if (base == -1)
            return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)base;
    uint64_t u = (uint64_t)e;
    while (u != 0) {
        if (u & 1u)
            r *= b;
        b *= b;
        u >>= 1;
    }
    return (int64_t)r;
}

/* pow() of an integer base and a float exponent, truncated and saturated. */
static int64_t bin_fpow_to_int(double base, double e, int64_t lo, int64_t hi)
{
    double v = pow(base, e);
    if (v != v)
        return 0;
    if (v <= (double)lo)
        return lo;
    if (v >= (double)hi)
        return hi;
    return (int64_t)v;
}

EVO_ELEM_BINARY_KERNEL(bin_pow_f32_f32_any, float, float, float, powf(x, y))
EVO_ELEM_BINARY_KERNEL(bin_pow_f32_sq, float, float, float, x *x)

/* float ^ float, with the common scalar exponents 1 and 2 as plain
 * arithmetic (exact: pow(x, 2) is the correctly rounded x * x). */
static void bin_pow_f32_f32(void *out, const void *a, int32_t sa, const void *b, int32_t sb,
                            int64_t n)
{
    float e = *(const float *)b;
    if (sb == 0 && sa == 1 && e == 2.0f)
        bin_pow_f32_sq(out, a, sa, b, sb, n);
    else
        bin_pow_f32_f32_any(out, a, sa, b, sb, n);
}

EVO_ELEM_BINARY_KERNEL(bin_pow_f32_i32, float, int32_t, float, powf(x, (float)y))
EVO_ELEM_BINARY_KERNEL(bin_pow_f32_i64, float, int64_t, float, powf(x, (float)y))
EVO_ELEM_BINARY_KERNEL(bin_pow_f32_i8, float, int8_t, float, powf(x, (float)y))
EVO_ELEM_BINARY_KERNEL(bin_pow_f32_u8, float, uint8_t, float, powf(x, (float)y))
EVO_ELEM_BINARY_KERNEL(bin_pow_i32_f32, int32_t, float, int32_t,
                       bin_fpow_to_int(x, y, INT32_MIN, INT32_MAX))
EVO_ELEM_BINARY_KERNEL(bin_pow_i64_f32, int64_t, float, int64_t,
                       bin_fpow_to_int((double)x, y, INT64_MIN, INT64_MAX))
#define BIN_IPOW_KERNEL(NAME, TB, TE, T, U)                                                        \
    EVO_ELEM_BINARY_KERNEL(NAME, TB, TE, T, (T)(U)(uint64_t)bin_ipow(x, y))
BIN_IPOW_KERNEL(bin_pow_i32_i32, int32_t, int32_t, int32_t, uint32_t)
BIN_IPOW_KERNEL(bin_pow_i32_i64, int32_t, int64_t, int32_t, uint32_t)
BIN_IPOW_KERNEL(bin_pow_i32_i8, int32_t, int8_t, int32_t, uint32_t)
BIN_IPOW_KERNEL(bin_pow_i32_u8, int32_t, uint8_t, int32_t, uint32_t)
BIN_IPOW_KERNEL(bin_pow_i64_i32, int64_t, int32_t, int64_t, uint64_t)
BIN_IPOW_KERNEL(bin_pow_i64_i64, int64_t, int64_t, int64_t, uint64_t)
BIN_IPOW_KERNEL(bin_pow_i64_i8, int64_t, int8_t, int64_t, uint64_t)
BIN_IPOW_KERNEL(bin_pow_i64_u8, int64_t, uint8_t, int64_t, uint64_t)

/* [base dtype][exponent dtype] */
static const evo_elem_binary_fn bin_pow_table[EVO_DT_COUNT_][EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] =
        {
            [EVO_DT_FLOAT32] = bin_pow_f32_f32,
            [EVO_DT_INT32] = bin_pow_f32_i32,
            [EVO_DT_INT64] = bin_pow_f32_i64,
            [EVO_DT_INT8] = bin_pow_f32_i8,
            [EVO_DT_UINT8] = bin_pow_f32_u8,
        },
    [EVO_DT_INT32] =
        {
            [EVO_DT_FLOAT32] = bin_pow_i32_f32,
            [EVO_DT_INT32] = bin_pow_i32_i32,
            [EVO_DT_INT64] = bin_pow_i32_i64,
            [EVO_DT_INT8] = bin_pow_i32_i8,
            [EVO_DT_UINT8] = bin_pow_i32_u8,
        },
    [EVO_DT_INT64] =
        {
            [EVO_DT_FLOAT32] = bin_pow_i64_f32,
            [EVO_DT_INT32] = bin_pow_i64_i32,
            [EVO_DT_INT64] = bin_pow_i64_i64,
            [EVO_DT_INT8] = bin_pow_i64_i8,
            [EVO_DT_UINT8] = bin_pow_i64_u8,
        },
};

extern const evo_op_def evo_op_Pow;

static evo_status bin_pow_infer(const evo_kctx *c)
{
    static const int32_t both[2] = {0, 1};
    const uint32_t bases =
        EVO_ELEM_DT(EVO_DT_FLOAT32) | EVO_ELEM_DT(EVO_DT_INT32) | EVO_ELEM_DT(EVO_DT_INT64);
    evo_status rv = evo_elem_check_inputs(&evo_op_Pow, c);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(&evo_op_Pow, c, 0, bases);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(&evo_op_Pow, c, 1, EVO_ELEM_DT_NUMERIC);
    evo_shape shape;
    if (rv == EVO_OK)
        rv = evo_elem_broadcast_shapes(&evo_op_Pow, c, both, 2, &shape);
    if (rv != EVO_OK)
        return rv;
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = shape;
    return EVO_OK;
}

static void bin_pow_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_TRANSC, cost);
}

static evo_status bin_pow_eval(const evo_kctx *c)
{
    evo_elem_binary_fn fn = bin_pow_table[c->in[0]->dtype][c->in[1]->dtype];
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    return evo_elem_run_binary(fn, c->in[0], c->in[1], c->out[0]);
}

const evo_op_def evo_op_Pow = {
    .name = "Pow",
    .domain = "",
    .id = 24,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = bin_pow_infer,
    .cost = bin_pow_cost,
    .eval = bin_pow_eval,
};
