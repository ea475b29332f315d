/*
 * Pass: remove Identity and inference-mode Dropout (both copy input 0 to
 * output 0) by rewiring.
 *
 * Usually the readers of the output y are made to read the input x. When y
 * is a graph output its name must stay (users and later stages look it up by
 * name), so instead the node that computes x is made to write y, and the
 * other readers of x read y. That is impossible when x is a graph input, a
 * constant, or itself a graph output: such a copy stays. A Dropout whose
 * mask output is used also stays (inference check of training_mode already
 * happened in infer).
 */
#include "pass_internal.h"

evo_status evo_pass_remove_identity(evo_pass_ctx *c, int32_t *count)
{
    evo_graph *g = c->g;
    evo_status rv = evo_pass_count_uses(c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        if (!evo_pass_live(c, i))
            continue;
        evo_node *n = &g->nodes[i];
        bool is_dropout = evo_pass_is_op(n, "Dropout");
        if (n->op == NULL || (!is_dropout && !evo_pass_is_op(n, "Identity")))
            continue;
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
            continue;
        if (is_dropout && n->n_outputs > 1 && n->outputs[1] >= 0 && c->n_uses[n->outputs[1]] > 0)
            continue; /* the mask is read (or is a graph output) */
        int32_t x = n->inputs[0], y = n->outputs[0];
        evo_value *xv = &g->values[x], *yv = &g->values[y];
        if (xv->t.dtype != yv->t.dtype || !evo_shape_equal(&xv->t.shape, &yv->t.shape))
            continue;
        if (yv->flags & EVO_VALUE_OUTPUT) {
            int32_t pi = xv->producer;
            if ((xv->flags & (EVO_VALUE_OUTPUT | EVO_VALUE_INPUT | EVO_VALUE_CONST)) ||
                !evo_pass_live(c, pi))
                continue;
            evo_node *p = &g->nodes[pi];
            int32_t slot = -1;
            for (int32_t o = 0; o < p->n_outputs; o++)
                if (p->outputs[o] == x)
                    slot = o;
            if (slot < 0)
                continue;
            c->removed[i] = true;
            p->outputs[slot] = y;
            yv->producer = pi;
            xv->producer = -1;
            evo_pass_replace_uses(c, x, y);
        } else {
            c->removed[i] = true;
            yv->producer = -1;
            evo_pass_replace_uses(c, y, x);
        }
        /* Use counts are not refreshed: only the mask check reads them, and
         * a stale count there is merely conservative. */
        (*count)++;
    }
    return EVO_OK;
}
