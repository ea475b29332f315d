/*
 * Cast(input, to) between float32, float16, int8, uint8, int32, int64 and
 * bool (and to the same type, a copy).
 *
 * Conversions, as ONNX specifies and ONNX Runtime does, with C's undefined
 * cases given a definition:
 *   - float -> integer truncates toward zero. A value outside the target's
 *     range saturates to its limit (C leaves this undefined; saturation is
 *     the portable choice) and NaN becomes 0.
 *   - integer -> narrower integer keeps the low bits (two's complement wrap).
 *   - anything -> bool is "nonzero" (NaN is true); bool -> number is 0 or 1.
 *   - float16 goes through float32 with round-to-nearest-even
 *     (evo_f32_to_f16 / evo_f16_to_f32); integers above 65504 become inf.
 * The opset-19 `saturate` attribute concerns float8 targets only, which evo
 * does not support, so it is ignored.
 */
#include <string.h>

#include "elementwise.h"

typedef struct cast_params {
    int32_t to; /* evo_dtype */
} cast_params;
_Static_assert(sizeof(cast_params) <= EVO_PARAMS_MAX, "cast_params too large");

static const uint32_t cast_types = EVO_ELEM_DT(EVO_DT_FLOAT32) | EVO_ELEM_DT(EVO_DT_FLOAT16) |
                                   EVO_ELEM_DT(EVO_DT_INT8) | EVO_ELEM_DT(EVO_DT_UINT8) |
                                   EVO_ELEM_DT(EVO_DT_INT32) | EVO_ELEM_DT(EVO_DT_INT64) |
                                   EVO_ELEM_DT(EVO_DT_BOOL);

/* Truncate toward zero, saturate, NaN -> 0. The comparisons are exact: each
 * limit converts to float as a power of two (or a small integer). */
static inline int64_t cast_f2i(float v, int64_t lo, int64_t hi)
{
    if (v != v)
        return 0;
    if (v <= (float)lo)
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int64_t)v;
}

/* Source element x -> the float or int64 it stands for. */
#define CAST_LOAD_f32(x) (x)
#define CAST_LOAD_f16(x) evo_f16_to_f32(x)
#define CAST_LOAD_i8(x) ((int64_t)(x))
#define CAST_LOAD_u8(x) ((int64_t)(x))
#define CAST_LOAD_i32(x) ((int64_t)(x))
#define CAST_LOAD_i64(x) (x)
#define CAST_LOAD_b(x) ((int64_t)((x) != 0))

/* A float v -> target element. */
#define CAST_FROM_F_f32(v) (v)
#define CAST_FROM_F_f16(v) evo_f32_to_f16(v)
#define CAST_FROM_F_i8(v) ((int8_t)cast_f2i(v, INT8_MIN, INT8_MAX))
#define CAST_FROM_F_u8(v) ((uint8_t)cast_f2i(v, 0, UINT8_MAX))
#define CAST_FROM_F_i32(v) ((int32_t)cast_f2i(v, INT32_MIN, INT32_MAX))
#define CAST_FROM_F_i64(v) (cast_f2i(v, INT64_MIN, INT64_MAX))
#define CAST_FROM_F_b(v) ((evo_elem_bool)((v) != 0.0f))

/* An int64 v -> target element (narrowing keeps the low bits). */
#define CAST_FROM_I_f32(v) ((float)(v))
#define CAST_FROM_I_f16(v) evo_f32_to_f16((float)(v))
#define CAST_FROM_I_i8(v) ((int8_t)(uint8_t)(uint64_t)(v))
#define CAST_FROM_I_u8(v) ((uint8_t)(uint64_t)(v))
#define CAST_FROM_I_i32(v) ((int32_t)(uint32_t)(uint64_t)(v))
#define CAST_FROM_I_i64(v) (v)
#define CAST_FROM_I_b(v) ((evo_elem_bool)((v) != 0))

#define CAST_K(KIND, S, TS, D, TD)                                                                 \
    EVO_ELEM_UNARY_KERNEL(cast_##S##_##D, TS, TD, evo_elem_none,                                   \
                          CAST_FROM_##KIND##_##D(CAST_LOAD_##S(x)))

/* All seven targets of one source type. */
#define CAST_TARGETS(KIND, S, TS)                                                                  \
    CAST_K(KIND, S, TS, f32, float)                                                                \
    CAST_K(KIND, S, TS, f16, uint16_t)                                                             \
    CAST_K(KIND, S, TS, i8, int8_t)                                                                \
    CAST_K(KIND, S, TS, u8, uint8_t)                                                               \
    CAST_K(KIND, S, TS, i32, int32_t)                                                              \
    CAST_K(KIND, S, TS, i64, int64_t)                                                              \
    CAST_K(KIND, S, TS, b, evo_elem_bool)

CAST_TARGETS(F, f32, float)
CAST_TARGETS(F, f16, uint16_t)
CAST_TARGETS(I, i8, int8_t)
CAST_TARGETS(I, u8, uint8_t)
CAST_TARGETS(I, i32, int32_t)
CAST_TARGETS(I, i64, int64_t)
CAST_TARGETS(I, b, evo_elem_bool)

#define CAST_ROW(S)                                                                                \
    {                                                                                              \
        [EVO_DT_FLOAT32] = cast_##S##_f32, [EVO_DT_FLOAT16] = cast_##S##_f16,                      \
        [EVO_DT_INT8] = cast_##S##_i8, [EVO_DT_UINT8] = cast_##S##_u8,                             \
        [EVO_DT_INT32] = cast_##S##_i32, [EVO_DT_INT64] = cast_##S##_i64,                          \
        [EVO_DT_BOOL] = cast_##S##_b,                                                              \
    }

/* [source dtype][target dtype] */
static const evo_elem_unary_fn cast_table[EVO_DT_COUNT_][EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = CAST_ROW(f32), [EVO_DT_FLOAT16] = CAST_ROW(f16),
    [EVO_DT_INT8] = CAST_ROW(i8),     [EVO_DT_UINT8] = CAST_ROW(u8),
    [EVO_DT_INT32] = CAST_ROW(i32),   [EVO_DT_INT64] = CAST_ROW(i64),
    [EVO_DT_BOOL] = CAST_ROW(b),
};

/* Checks a target type; err may be NULL. */
static evo_status cast_check_to(int64_t to, const char *where, evo_error *err)
{
    if (to > 0 && to < EVO_DT_COUNT_ && evo_elem_dt_in(cast_types, (evo_dtype)to))
        return EVO_OK;
    if (to > 0 && to < EVO_DT_COUNT_)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: Cast to %s is not supported (evo casts to float32, "
                             "float16, int8, uint8, int32, int64 and bool)",
                             where, evo_dtype_name((evo_dtype)to));
    if (to >= EVO_DT_COUNT_ && to <= 25) /* float8 / 4-bit / 2-bit types of newer ONNX */
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: Cast to ONNX data type %lld (a float8 or sub-byte type) is "
                             "not supported",
                             where, (long long)to);
    return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: 'to' = %lld is not an ONNX data type",
                         where, (long long)to);
}

static evo_status cast_parse(const evo_node *node, void *params, evo_error *err)
{
    const evo_attr *a = evo_node_attr(node, "to");
    if (a == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "Cast node '%s': the required attribute 'to' is missing",
                             EVO_ELEM_NODE_NAME(node));
    if (a->type != EVO_ATTR_INT)
        return evo_error_set(err, EVO_ERR_TYPE, "Cast node '%s': attribute 'to' must be an int",
                             EVO_ELEM_NODE_NAME(node));
    char where[96] = "Cast node '";
    size_t len = strlen(where), nlen = strlen(EVO_ELEM_NODE_NAME(node));
    if (nlen > sizeof where - len - 2)
        nlen = sizeof where - len - 2;
    memcpy(where + len, EVO_ELEM_NODE_NAME(node), nlen);
    where[len + nlen] = '\'';
    where[len + nlen + 1] = '\0';
    evo_status rv = cast_check_to(a->i, where, err);
    if (rv != EVO_OK)
        return rv;
    ((cast_params *)params)->to = (int32_t)a->i;
    return EVO_OK;
}

extern const evo_op_def evo_op_Cast;

static evo_status cast_infer(const evo_kctx *c)
{
    const cast_params *p = c->params;
    evo_status rv = cast_check_to(p->to, "Cast", c->err);
    if (rv == EVO_OK)
        rv = evo_elem_infer_unary(&evo_op_Cast, c, cast_types, (evo_dtype)p->to);
    return rv;
}

static void cast_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status cast_eval(const evo_kctx *c)
{
    const cast_params *p = c->params;
    const evo_tensor *in = c->in[0];
    int64_t n = evo_shape_numel(&in->shape);
    if ((unsigned)in->dtype >= EVO_DT_COUNT_ || (unsigned)p->to >= EVO_DT_COUNT_ || n < 0)
        return EVO_ERR_INTERNAL;
    if (in->dtype == (evo_dtype)p->to) { /* identity: a copy, nothing when in place */
        if (c->out[0]->data != in->data)
            memmove(c->out[0]->data, in->data, (size_t)n * evo_dtype_size(in->dtype));
        return EVO_OK;
    }
    evo_elem_unary_fn fn = cast_table[in->dtype][p->to];
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    fn(c->out[0]->data, in->data, n, NULL);
    return EVO_OK;
}

/* In place only when `to` equals the input's type (the flag's contract:
 * same dtype), which is the copy path above. */
const evo_op_def evo_op_Cast = {
    .name = "Cast",
    .domain = "",
    .id = 83,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = cast_parse,
    .infer = cast_infer,
    .cost = cast_cost,
    .eval = cast_eval,
};
