/*
 * Variadic element-wise ops with multidirectional broadcasting over all
 * inputs: Max, Min (float32, int32, int64, int8, uint8), Sum, Mean
 * (float32). Max/Min propagate NaN (numpy's maximum/minimum).
 *
 * Eval folds the inputs pairwise into the output: out = in0 op in1, then
 * out = out op in_k. In place (out aliasing in[0]), an input k >= 1 that is
 * the same tensor as in[0] would read already-updated values, so inputs that
 * share the output's buffer are accounted for first (all such inputs equal
 * the output's current contents: Max/Min need nothing, Sum/Mean scale by
 * their count) and only the other inputs are folded in.
 */
#include <string.h>

#include "elementwise.h"

/* Inputs an op may have: bounds the index list infer passes around. */
#define VAR_MAX_INPUTS 64

typedef enum var_kind { VAR_MAX, VAR_MIN, VAR_SUM, VAR_MEAN } var_kind;

#define VAR_MAXMIN_KERNELS(SUF, T)                                                                 \
    EVO_ELEM_BINARY_KERNEL(var_max_##SUF, T, T, T, x > y ? x : y)                                  \
    EVO_ELEM_BINARY_KERNEL(var_min_##SUF, T, T, T, x < y ? x : y)

VAR_MAXMIN_KERNELS(i32, int32_t)
VAR_MAXMIN_KERNELS(i64, int64_t)
VAR_MAXMIN_KERNELS(i8, int8_t)
VAR_MAXMIN_KERNELS(u8, uint8_t)
EVO_ELEM_BINARY_KERNEL(var_max_f32, float, float, float, (x != x || x > y) ? x : y)
EVO_ELEM_BINARY_KERNEL(var_min_f32, float, float, float, (x != x || x < y) ? x : y)
EVO_ELEM_BINARY_KERNEL(var_sum_f32, float, float, float, x + y)

static const evo_elem_binary_fn var_max_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = var_max_f32, [EVO_DT_INT32] = var_max_i32, [EVO_DT_INT64] = var_max_i64,
    [EVO_DT_INT8] = var_max_i8,     [EVO_DT_UINT8] = var_max_u8,
};
static const evo_elem_binary_fn var_min_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = var_min_f32, [EVO_DT_INT32] = var_min_i32, [EVO_DT_INT64] = var_min_i64,
    [EVO_DT_INT8] = var_min_i8,     [EVO_DT_UINT8] = var_min_u8,
};
static const evo_elem_binary_fn var_sum_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = var_sum_f32,
};

typedef struct var_scale {
    float s;
} var_scale;

EVO_ELEM_UNARY_KERNEL(var_mul_f32, float, float, var_scale, x * P->s)
EVO_ELEM_UNARY_KERNEL(var_div_f32, float, float, var_scale, x / P->s)

static const evo_elem_binary_fn *var_table(var_kind kind)
{
    switch (kind) {
    case VAR_MAX:
        return var_max_table;
    case VAR_MIN:
        return var_min_table;
    default:
        return var_sum_table;
    }
}

static evo_status var_infer(const evo_op_def *op, const evo_kctx *c, var_kind kind)
{
    const evo_elem_binary_fn *table = var_table(kind);
    uint32_t mask = 0;
    for (int dt = 0; dt < EVO_DT_COUNT_; dt++)
        if (table[dt] != NULL)
            mask |= EVO_ELEM_DT(dt);
    evo_status rv = evo_elem_check_inputs(op, c);
    if (rv != EVO_OK)
        return rv;
    int32_t all[VAR_MAX_INPUTS];
    if (c->n_in > (int32_t)(sizeof all / sizeof all[0]))
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: %d inputs; evo handles at most %d",
                             op->name, (int)c->n_in, (int)(sizeof all / sizeof all[0]));
    for (int32_t i = 0; i < c->n_in; i++) {
        if (c->in[i] == NULL)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: input %d is missing", op->name,
                                 (int)i);
        if ((rv = evo_elem_check_type(op, c, i, mask)) != EVO_OK)
            return rv;
        if ((rv = evo_elem_check_same_type(op, c, 0, i)) != EVO_OK)
            return rv;
        all[i] = i;
    }
    evo_shape shape;
    if ((rv = evo_elem_broadcast_shapes(op, c, all, c->n_in, &shape)) != EVO_OK)
        return rv;
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = shape;
    return EVO_OK;
}

/* n-1 pairwise steps per output element, plus Mean's final division. */
static void var_cost(const evo_kctx *c, evo_op_cost *cost, var_kind kind)
{
    uint64_t steps = c->n_in > 1 ? (uint64_t)c->n_in - 1 : 1u;
    evo_elem_cost_out(c, steps + (kind == VAR_MEAN), cost);
}

static evo_status var_eval(const evo_kctx *c, var_kind kind)
{
    evo_tensor *out = c->out[0];
    evo_elem_binary_fn fn = var_table(kind)[out->dtype];
    int64_t numel = evo_shape_numel(&out->shape);
    if (fn == NULL || numel < 0)
        return EVO_ERR_INTERNAL;
    evo_status rv = EVO_OK;
    if (c->n_in == 1) {
        if (out->data != c->in[0]->data)
            memmove(out->data, c->in[0]->data, (size_t)numel * evo_dtype_size(out->dtype));
        return EVO_OK;
    }
    int32_t aliases = 0;
    for (int32_t k = 0; k < c->n_in; k++)
        aliases += c->in[k]->data == out->data;
    if (aliases > 0) {
        if ((kind == VAR_SUM || kind == VAR_MEAN) && aliases > 1) {
            var_scale s = {(float)aliases};
            var_mul_f32(out->data, out->data, numel, &s);
        }
        for (int32_t k = 0; k < c->n_in && rv == EVO_OK; k++)
            if (c->in[k]->data != out->data)
                rv = evo_elem_run_binary(fn, out, c->in[k], out);
    } else {
        rv = evo_elem_run_binary(fn, c->in[0], c->in[1], out);
        for (int32_t k = 2; k < c->n_in && rv == EVO_OK; k++)
            rv = evo_elem_run_binary(fn, out, c->in[k], out);
    }
    if (rv == EVO_OK && kind == VAR_MEAN) {
        var_scale s = {(float)c->n_in};
        var_div_f32(out->data, out->data, numel, &s);
    }
    return rv;
}

#define VAR_OP(NAME, ID, KIND)                                                                     \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status var_##NAME##_infer(const evo_kctx *c)                                        \
    {                                                                                              \
        return var_infer(&evo_op_##NAME, c, KIND);                                                 \
    }                                                                                              \
    static void var_##NAME##_cost(const evo_kctx *c, evo_op_cost *cost)                            \
    {                                                                                              \
        var_cost(c, cost, KIND);                                                                   \
    }                                                                                              \
    static evo_status var_##NAME##_eval(const evo_kctx *c)                                         \
    {                                                                                              \
        return var_eval(c, KIND);                                                                  \
    }                                                                                              \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = (ID),                                                                                \
        .flags = EVO_OP_INPLACE,                                                                   \
        .min_inputs = 1,                                                                           \
        .max_inputs = -1,                                                                          \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .infer = var_##NAME##_infer,                                                               \
        .cost = var_##NAME##_cost,                                                                 \
        .eval = var_##NAME##_eval,                                                                 \
    };

VAR_OP(Max, 37, VAR_MAX)
VAR_OP(Min, 38, VAR_MIN)
VAR_OP(Sum, 39, VAR_SUM)
VAR_OP(Mean, 40, VAR_MEAN)
