/*
 * Pass: dead-node elimination. A node is needed when one of its outputs is
 * a graph output or is read by a needed node; everything else is removed.
 * Inference has no side effects, so this is always safe. Constants that
 * only dead nodes read are freed when the driver compacts the graph.
 */
#include <stdlib.h>

#include "pass_internal.h"

evo_status evo_pass_dead_code(evo_pass_ctx *c, int32_t *count)
{
    evo_graph *g = c->g;
    bool *needed = calloc((size_t)g->n_nodes + 1, sizeof *needed);
    int32_t *stack = malloc(((size_t)g->n_values + 1) * sizeof *stack);
    bool *seen = calloc((size_t)g->n_values + 1, sizeof *seen);
    if (needed == NULL || stack == NULL || seen == NULL) {
        free(needed);
        free(stack);
        free(seen);
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                             evo_pass_file(g));
    }
    /* Walk back from the graph outputs through producers; each value is
     * pushed at most once, so the stack never exceeds n_values. */
    int32_t top = 0;
    for (int32_t k = 0; k < g->n_outputs; k++) {
        int32_t v = g->outputs[k];
        if (!seen[v]) {
            seen[v] = true;
            stack[top++] = v;
        }
    }
    while (top > 0) {
        int32_t v = stack[--top];
        int32_t p = g->values[v].producer;
        if (!evo_pass_live(c, p) || needed[p])
            continue;
        needed[p] = true;
        const evo_node *n = &g->nodes[p];
        for (int32_t k = 0; k < n->n_inputs; k++) {
            int32_t x = n->inputs[k];
            if (x >= 0 && !seen[x]) {
                seen[x] = true;
                stack[top++] = x;
            }
        }
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!c->removed[i] && !needed[i]) {
            c->removed[i] = true;
            (*count)++;
        }
    free(needed);
    free(stack);
    free(seen);
    return EVO_OK;
}
