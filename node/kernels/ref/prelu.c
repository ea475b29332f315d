/*
 * PRelu(X, slope): x < 0 ? slope * x : x, with slope broadcast
 * unidirectionally to X's shape (the output has X's shape). Types float32,
 * int32, int64 (integer products wrap).
 */
#include "elementwise.h"

EVO_ELEM_BINARY_KERNEL(prelu_f32, float, float, float, evo_elem_leaky_f32(x, y))
EVO_ELEM_BINARY_KERNEL(prelu_i32, int32_t, int32_t, int32_t,
                       x < 0 ? EVO_ELEM_WRAP(int32_t, uint32_t, x, *, y) : x)
EVO_ELEM_BINARY_KERNEL(prelu_i64, int64_t, int64_t, int64_t,
                       x < 0 ? EVO_ELEM_WRAP(int64_t, uint64_t, x, *, y) : x)

static const evo_elem_binary_fn prelu_table[EVO_DT_COUNT_] = {
    [EVO_DT_FLOAT32] = prelu_f32,
    [EVO_DT_INT32] = prelu_i32,
    [EVO_DT_INT64] = prelu_i64,
};

extern const evo_op_def evo_op_PRelu;

static evo_status prelu_infer(const evo_kctx *c)
{
    const uint32_t types =
        EVO_ELEM_DT(EVO_DT_FLOAT32) | EVO_ELEM_DT(EVO_DT_INT32) | EVO_ELEM_DT(EVO_DT_INT64);
    evo_status rv = evo_elem_check_inputs(&evo_op_PRelu, c);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(&evo_op_PRelu, c, 0, types);
    if (rv == EVO_OK)
        rv = evo_elem_check_same_type(&evo_op_PRelu, c, 0, 1);
    if (rv != EVO_OK)
        return rv;
    const evo_shape *x = &c->in[0]->shape, *slope = &c->in[1]->shape;
    evo_shape b;
    if (evo_shape_broadcast(x, slope, &b) != EVO_OK || !evo_shape_equal(&b, x)) {
        char sx[96], ss[96];
        evo_shape_format(x, sx, sizeof sx);
        evo_shape_format(slope, ss, sizeof ss);
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "PRelu: slope shape %s does not broadcast to X shape %s", ss, sx);
    }
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = *x;
    return EVO_OK;
}

static void prelu_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status prelu_eval(const evo_kctx *c)
{
    evo_elem_binary_fn fn = prelu_table[c->in[0]->dtype];
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    return evo_elem_run_binary(fn, c->in[0], c->in[1], c->out[0]);
}

const evo_op_def evo_op_PRelu = {
    .name = "PRelu",
    .domain = "",
    .id = 7,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = prelu_infer,
    .cost = prelu_cost,
    .eval = prelu_eval,
};
