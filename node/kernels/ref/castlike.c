/*
 * CastLike(input, target_type): Cast to the element type of the second
 * input, whose values are not read.
 *
 * The conversion rules are exactly Cast's (node/kernels/ref/cast.c), so this
 * op runs Cast through its public definition: a Cast node with `to` set to
 * the target's dtype is built on the stack and parsed into Cast's params,
 * then Cast's infer or eval runs on input 0 alone. Like Cast, the opset-19
 * `saturate` attribute concerns float8 targets only and is ignored.
 */
#include <string.h>

#include "elementwise.h"

extern const evo_op_def evo_op_Cast;
extern const evo_op_def evo_op_CastLike;

typedef struct castlike_cast {
    _Alignas(8) unsigned char params[EVO_PARAMS_MAX];
} castlike_cast;

/* Cast's params for a cast to `to`; err may be NULL. */
static evo_status castlike_cast_params(evo_dtype to, castlike_cast *cp, evo_error *err)
{
    char attr_name[] = "to";
    char node_name[] = "CastLike";
    char op_type[] = "Cast";
    char domain[] = "";
    evo_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.name = attr_name;
    attr.type = EVO_ATTR_INT;
    attr.i = (int64_t)to;
    evo_node node;
    memset(&node, 0, sizeof node);
    node.name = node_name;
    node.op_type = op_type;
    node.domain = domain;
    node.opset = 19;
    node.attrs = &attr;
    node.n_attrs = 1;
    memset(cp, 0, sizeof *cp);
    return evo_op_Cast.parse(&node, cp->params, err);
}

static evo_status castlike_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_CastLike, c);
    if (rv != EVO_OK)
        return rv;
    castlike_cast cp;
    if ((rv = castlike_cast_params(c->in[1]->dtype, &cp, c->err)) != EVO_OK)
        return rv;
    evo_tensor *in[1] = {c->in[0]};
    evo_kctx cc = *c;
    cc.params = cp.params;
    cc.in = in;
    cc.n_in = 1;
    return evo_op_Cast.infer(&cc);
}

static void castlike_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status castlike_eval(const evo_kctx *c)
{
    castlike_cast cp;
    if (castlike_cast_params(c->out[0]->dtype, &cp, NULL) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted this type */
    evo_tensor *in[1] = {c->in[0]};
    evo_kctx cc = *c;
    cc.params = cp.params;
    cc.in = in;
    cc.n_in = 1;
    return evo_op_Cast.eval(&cc);
}

/* In place when the types agree, as Cast (its copy path handles out == in). */
const evo_op_def evo_op_CastLike = {
    .name = "CastLike",
    .domain = "",
    .id = 89,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = castlike_infer,
    .cost = castlike_cost,
    .eval = castlike_eval,
};
