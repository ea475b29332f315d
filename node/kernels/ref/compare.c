/*
 * Comparisons with multidirectional broadcasting, producing bool: Equal
 * (float32, int32, int64, int8, uint8, bool) and Greater, Less,
 * GreaterOrEqual, LessOrEqual (the same without bool). Float comparisons are
 * IEEE: anything compared with NaN is false.
 */
#include "elementwise.h"

#define CMP_KERNELS(OP, EXPR)                                                                      \
    EVO_ELEM_BINARY_KERNEL(cmp_##OP##_f32, float, float, evo_elem_bool, EXPR)                      \
    EVO_ELEM_BINARY_KERNEL(cmp_##OP##_i32, int32_t, int32_t, evo_elem_bool, EXPR)                  \
    EVO_ELEM_BINARY_KERNEL(cmp_##OP##_i64, int64_t, int64_t, evo_elem_bool, EXPR)                  \
    EVO_ELEM_BINARY_KERNEL(cmp_##OP##_i8, int8_t, int8_t, evo_elem_bool, EXPR)                     \
    EVO_ELEM_BINARY_KERNEL(cmp_##OP##_u8, uint8_t, uint8_t, evo_elem_bool, EXPR)

CMP_KERNELS(eq, x == y)
CMP_KERNELS(gt, x > y)
CMP_KERNELS(lt, x < y)
CMP_KERNELS(ge, x >= y)
CMP_KERNELS(le, x <= y)
/* Any nonzero byte is true. */
EVO_ELEM_BINARY_KERNEL(cmp_eq_b, evo_elem_bool, evo_elem_bool, evo_elem_bool, (x != 0) == (y != 0))

#define CMP_TABLE(OP, BOOL_FN)                                                                     \
    static const evo_elem_binary_fn cmp_##OP##_table[EVO_DT_COUNT_] = {                            \
        [EVO_DT_FLOAT32] = cmp_##OP##_f32, [EVO_DT_INT32] = cmp_##OP##_i32,                        \
        [EVO_DT_INT64] = cmp_##OP##_i64,   [EVO_DT_INT8] = cmp_##OP##_i8,                          \
        [EVO_DT_UINT8] = cmp_##OP##_u8,    [EVO_DT_BOOL] = BOOL_FN,                                \
    };

CMP_TABLE(eq, cmp_eq_b)
CMP_TABLE(gt, NULL)
CMP_TABLE(lt, NULL)
CMP_TABLE(ge, NULL)
CMP_TABLE(le, NULL)

/* Output 0 may alias input 0 when that is bool (Equal on bools): the kernels
 * read both operands of an index before writing it. */
#define CMP_OP(NAME, ID, OP)                                                                       \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status cmp_##OP##_infer(const evo_kctx *c)                                          \
    {                                                                                              \
        uint32_t mask = 0;                                                                         \
        for (int dt = 0; dt < EVO_DT_COUNT_; dt++)                                                 \
            if (cmp_##OP##_table[dt] != NULL)                                                      \
                mask |= EVO_ELEM_DT(dt);                                                           \
        return evo_elem_infer_binary(&evo_op_##NAME, c, mask, EVO_DT_BOOL);                        \
    }                                                                                              \
    static void cmp_##OP##_cost(const evo_kctx *c, evo_op_cost *cost)                              \
    {                                                                                              \
        evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);                                           \
    }                                                                                              \
    static evo_status cmp_##OP##_eval(const evo_kctx *c)                                           \
    {                                                                                              \
        evo_elem_binary_fn fn = cmp_##OP##_table[c->in[0]->dtype];                                 \
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
        .infer = cmp_##OP##_infer,                                                                 \
        .cost = cmp_##OP##_cost,                                                                   \
        .eval = cmp_##OP##_eval,                                                                   \
    };

CMP_OP(Equal, 41, eq)
CMP_OP(Greater, 42, gt)
CMP_OP(Less, 43, lt)
CMP_OP(GreaterOrEqual, 44, ge)
CMP_OP(LessOrEqual, 45, le)
