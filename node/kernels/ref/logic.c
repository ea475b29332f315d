/*
 * Boolean logic: Not, and And / Or with multidirectional broadcasting. Bool
 * tensors hold one byte per element; any nonzero byte reads as true and the
 * results are 0 or 1.
 */
#include "elementwise.h"

EVO_ELEM_UNARY_KERNEL(logic_not_b, evo_elem_bool, evo_elem_bool, evo_elem_none, x == 0)
static const evo_elem_unary_fn logic_not_table[EVO_DT_COUNT_] = {
    [EVO_DT_BOOL] = logic_not_b,
};
EVO_ELEM_UNARY_OP(Not, 46, logic_not_table, NULL, EVO_ELEM_COST_CHEAP)

/* Written with & and | on 0/1 values (no branches) so the loops vectorize. */
EVO_ELEM_BINARY_KERNEL(logic_and_b, evo_elem_bool, evo_elem_bool, evo_elem_bool,
                       (x != 0) & (y != 0))
EVO_ELEM_BINARY_KERNEL(logic_or_b, evo_elem_bool, evo_elem_bool, evo_elem_bool, (x != 0) | (y != 0))

#define LOGIC_OP(NAME, ID, FN)                                                                     \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status logic_##NAME##_infer(const evo_kctx *c)                                      \
    {                                                                                              \
        return evo_elem_infer_binary(&evo_op_##NAME, c, EVO_ELEM_DT(EVO_DT_BOOL), EVO_DT_BOOL);    \
    }                                                                                              \
    static void logic_##NAME##_cost(const evo_kctx *c, evo_op_cost *cost)                          \
    {                                                                                              \
        evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);                                           \
    }                                                                                              \
    static evo_status logic_##NAME##_eval(const evo_kctx *c)                                       \
    {                                                                                              \
        return evo_elem_run_binary(FN, c->in[0], c->in[1], c->out[0]);                             \
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
        .infer = logic_##NAME##_infer,                                                             \
        .cost = logic_##NAME##_cost,                                                               \
        .eval = logic_##NAME##_eval,                                                               \
    };

LOGIC_OP(And, 47, logic_and_b)
LOGIC_OP(Or, 48, logic_or_b)
