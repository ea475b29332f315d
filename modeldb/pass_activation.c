/*
 * Pass: fuse an activation into the Conv or Gemm that produces its input,
 * so the activation runs on each output tile while it is still in cache
 * instead of as a second sweep over the whole tensor. Relu and Clip also
 * fuse into a float32 Add (the Add + Relu closing each residual block),
 * which saves a node dispatch and a sweep over the tensor.
 *
 * Fused: Relu, Clip with constant (or absent) float bounds (Relu6 is
 * Clip(0, 6)), LeakyRelu (alpha), Sigmoid, HardSwish. The Conv/Gemm output
 * must be read by the activation alone and not be a graph output (the
 * pre-activation tensor would still be needed), and the node must not carry
 * a fused activation already. The Conv/Gemm then writes the activation's
 * output tensor, whose name and facts are unchanged.
 */
#include <math.h>
#include <string.h>

#include "kernels/conv.h"
#include "pass_internal.h"

/* The evo_act equivalent of activation node n; false if it has none. */
static bool fuse_act_of(const evo_graph *g, const evo_node *n, evo_act *act)
{
    act->a = 0.0f;
    act->b = 0.0f;
    if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs != 1 || n->outputs[0] < 0)
        return false;
    if (g->values[n->outputs[0]].t.dtype != EVO_DT_FLOAT32)
        return false;
    if (evo_pass_is_op(n, "Relu") && n->n_inputs == 1) {
        act->kind = EVO_ACT_RELU;
        return true;
    }
    if (evo_pass_is_op(n, "Sigmoid") && n->n_inputs == 1) {
        act->kind = EVO_ACT_SIGMOID;
        return true;
    }
    if (evo_pass_is_op(n, "HardSwish") && n->n_inputs == 1) {
        act->kind = EVO_ACT_HARD_SWISH;
        return true;
    }
    if (evo_pass_is_op(n, "LeakyRelu") && n->n_inputs == 1) {
        act->kind = EVO_ACT_LEAKY_RELU;
        return evo_attr_get_float(n, "alpha", 0.01f, &act->a) == EVO_OK;
    }
    if (evo_pass_is_op(n, "Clip") && n->n_inputs <= 3) {
        act->kind = EVO_ACT_CLIP;
        act->a = -INFINITY;
        act->b = INFINITY;
        /* Bounds must be known now: a computed bound cannot go into params. */
        if (n->n_inputs > 1 && n->inputs[1] >= 0 &&
            !evo_pass_const_scalar_f32(g, n->inputs[1], &act->a))
            return false;
        if (n->n_inputs > 2 && n->inputs[2] >= 0 &&
            !evo_pass_const_scalar_f32(g, n->inputs[2], &act->b))
            return false;
        return !isnan(act->a) && !isnan(act->b);
    }
    return false;
}

evo_status evo_pass_fuse_activation(evo_pass_ctx *c, int32_t *count)
{
    evo_graph *g = c->g;
    evo_status rv = evo_pass_count_uses(c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t ai = g->order[k];
        if (!evo_pass_live(c, ai))
            continue;
        const evo_node *an = &g->nodes[ai];
        evo_act act;
        if (an->op == NULL || !fuse_act_of(g, an, &act))
            continue;
        int32_t y = an->inputs[0];
        int32_t pi = g->values[y].producer;
        if (!evo_pass_live(c, pi) || c->n_uses[y] != 1 || (g->values[y].flags & EVO_VALUE_OUTPUT))
            continue;
        evo_node *p = &g->nodes[pi];
        bool is_add = p->op != NULL && evo_pass_is_op(p, "Add");
        if (p->op == NULL ||
            (!evo_pass_is_op(p, "Conv") && !evo_pass_is_op(p, "Gemm") && !is_add) ||
            p->n_outputs != 1 || p->outputs[0] != y)
            continue;
        /* Add also runs on integers; only its float32 kernel applies an act. */
        if (is_add && g->values[y].t.dtype != EVO_DT_FLOAT32)
            continue;
        /* Refuses a node that already has an activation, or an op that
         * cannot take one: then the pattern just does not apply. */
        if (evo_kconv_fuse_activation(p->op, p->params, &act) != EVO_OK)
            continue;
        int32_t z = an->outputs[0];
        p->outputs[0] = z;
        g->values[z].producer = pi;
        g->values[y].producer = -1;
        c->removed[ai] = true;
        c->n_uses[y] = 0;
        (*count)++;
    }
    return EVO_OK;
}
