/*
 * evo_graph_optimize: the driver of the graph passes, and the helpers the
 * passes share (use counts, rewiring, new constants, re-inference of a
 * rewritten node).
 *
 * Order: nodes that inference already folded to constants are dropped first
 * (they never run, and evo_graph_validate would see their outputs defined
 * twice); then BatchNormalization folding, activation fusion, Identity and
 * Dropout removal, and dead-node elimination. Folding BN first lets the
 * activation that follows a BN fuse into the Conv/Gemm. Finally the graph is
 * compacted (removed nodes and values no node uses disappear, unused constant
 * data is freed) and validated, so it leaves as inferred as it came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv.h"
#include "pass_internal.h"

const char *evo_pass_file(const evo_graph *g)
{
    return g->source_path ? g->source_path : "graph";
}

bool evo_pass_is_op(const evo_node *n, const char *op_type)
{
    return (n->domain == NULL || n->domain[0] == '\0') && strcmp(n->op_type, op_type) == 0;
}

evo_status evo_pass_count_uses(evo_pass_ctx *c)
{
    evo_graph *g = c->g;
    if (g->n_values > c->n_uses_cap) {
        int32_t *p = realloc(c->n_uses, ((size_t)g->n_values + 1) * sizeof *p);
        if (p == NULL)
            return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                                 evo_pass_file(g));
        c->n_uses = p;
        c->n_uses_cap = g->n_values;
    }
    memset(c->n_uses, 0, (size_t)g->n_values * sizeof *c->n_uses);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (c->removed[i])
            continue;
        const evo_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && n->inputs[k] < g->n_values)
                c->n_uses[n->inputs[k]]++;
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        c->n_uses[g->outputs[k]]++;
    return EVO_OK;
}

void evo_pass_replace_uses(evo_pass_ctx *c, int32_t from, int32_t to)
{
    evo_graph *g = c->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (c->removed[i])
            continue;
        evo_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
    }
}

evo_status evo_pass_new_const(evo_pass_ctx *c, const char *base, const char *suffix,
                              evo_dtype dtype, const evo_shape *shape, void *data, int32_t *out)
{
    evo_graph *g = c->g;
    size_t len = strlen(base) + strlen(suffix) + 16;
    char *name = malloc(len);
    if (name == NULL) {
        free(data);
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                             evo_pass_file(g));
    }
    snprintf(name, len, "%s%s", base, suffix);
    /* Names are unique in a graph: count up until one is free. */
    for (unsigned k = 1; evo_graph_find_value(g, name) >= 0 && k < 1000000u; k++)
        snprintf(name, len, "%s%s_%u", base, suffix, k);
    int32_t v;
    evo_status rv = evo_graph_add_value(g, name, &v);
    free(name);
    if (rv != EVO_OK) {
        free(data);
        return evo_error_set(c->err, rv, "%s: cannot add constant for '%s' (%s)", evo_pass_file(g),
                             base, evo_strerror(rv));
    }
    evo_value_set_const(g, v, dtype, shape, data);
    *out = v;
    return EVO_OK;
}

bool evo_pass_const_scalar_f32(const evo_graph *g, int32_t v, float *out)
{
    if (v < 0 || v >= g->n_values)
        return false;
    const evo_value *val = &g->values[v];
    if (!(val->flags & EVO_VALUE_CONST) || val->t.data == NULL || val->t.dtype != EVO_DT_FLOAT32 ||
        evo_shape_numel(&val->t.shape) != 1)
        return false;
    *out = *(const float *)val->t.data;
    return true;
}

/* The fused activation slot of a Conv or Gemm node's params, else NULL. */
static evo_act *optimize_act_slot(evo_node *n)
{
    if (n->op == NULL || n->domain[0] != '\0')
        return NULL;
    if (n->op->id == 1 && strcmp(n->op->name, "Conv") == 0)
        return &((evo_conv_params *)(void *)n->params)->act;
    if (n->op->id == 3 && strcmp(n->op->name, "Gemm") == 0)
        return &((evo_gemm_params *)(void *)n->params)->act;
    if (n->op->id == 20 && strcmp(n->op->name, "Add") == 0)
        return &((evo_add_params *)(void *)n->params)->act;
    return NULL;
}

evo_status evo_pass_reinfer_node(evo_pass_ctx *c, int32_t i)
{
    evo_graph *g = c->g;
    evo_node *n = &g->nodes[i];
    const char *file = evo_pass_file(g);
    if (n->op == NULL)
        return evo_error_set(c->err, EVO_ERR_INTERNAL, "%s: node '%s' (%s) has no op to re-infer",
                             file, n->name, n->op_type);
    evo_act act = {EVO_ACT_NONE, 0.0f, 0.0f};
    evo_act *slot = optimize_act_slot(n);
    if (slot != NULL)
        act = *slot;
    memset(n->params, 0, sizeof n->params);
    evo_status rv;
    if (n->op->parse != NULL && (rv = n->op->parse(n, n->params, c->err)) != EVO_OK) {
        evo_error_prefix(c->err, "%s: node '%s' (%s) after optimization", file, n->name,
                         n->op_type);
        return rv;
    }
    if (slot != NULL && act.kind != EVO_ACT_NONE &&
        (rv = evo_kconv_fuse_activation(n->op, n->params, &act)) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_INTERNAL,
                             "%s: node '%s' (%s): cannot restore its fused activation", file,
                             n->name, n->op_type);

    /* Infer into copies so that the graph's facts are compared, not
     * overwritten: a pass must never change an output's type or shape. */
    size_t nio = (size_t)n->n_inputs + (size_t)n->n_outputs;
    evo_tensor **ptrs = calloc(nio + 1, sizeof *ptrs);
    evo_tensor *outs = calloc((size_t)n->n_outputs + 1, sizeof *outs);
    if (ptrs == NULL || outs == NULL) {
        free(ptrs);
        free(outs);
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory", file);
    }
    evo_kctx kc;
    evo_graph_node_ctx(g, i, ptrs, ptrs + n->n_inputs, &kc, c->err);
    for (int32_t k = 0; k < n->n_outputs; k++) {
        if (ptrs[n->n_inputs + k] == NULL)
            continue;
        outs[k].dtype = EVO_DT_UNDEFINED;
        outs[k].shape.rank = -1;
        ptrs[n->n_inputs + k] = &outs[k];
    }
    if (c->err != NULL)
        evo_error_clear(c->err);
    rv = evo_op_check_arity(n->op, &kc);
    if (rv == EVO_OK)
        rv = n->op->infer(&kc);
    if (rv != EVO_OK) {
        if (c->err != NULL && c->err->msg[0] == '\0')
            evo_error_set(c->err, rv, "%s", evo_strerror(rv));
        evo_error_prefix(c->err, "%s: node '%s' (%s) after optimization", file, n->name,
                         n->op_type);
        if (c->err != NULL)
            c->err->code = rv;
    } else {
        for (int32_t k = 0; k < n->n_outputs; k++) {
            int32_t o = n->outputs[k];
            if (o < 0)
                continue;
            const evo_tensor *t = &g->values[o].t;
            if (outs[k].dtype != t->dtype || !evo_shape_equal(&outs[k].shape, &t->shape)) {
                rv = evo_error_set(c->err, EVO_ERR_INTERNAL,
                                   "%s: node '%s' (%s): optimization changed the type or shape "
                                   "of output '%s'",
                                   file, n->name, n->op_type, g->values[o].name);
                break;
            }
        }
    }
    free(ptrs);
    free(outs);
    return rv;
}

/* Nodes inference folded (every present output is a constant) never run:
 * drop them. Not counted, since folding itself is inference's work. */
static void optimize_drop_folded(evo_pass_ctx *c)
{
    evo_graph *g = c->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const evo_node *n = &g->nodes[i];
        bool all_const = true;
        for (int32_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & EVO_VALUE_CONST))
                all_const = false;
        if (all_const) {
            c->removed[i] = true;
            for (int32_t k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] >= 0)
                    g->values[n->outputs[k]].producer = -1;
        }
    }
}

/* Replace *g by a copy that holds only live nodes and the values they use;
 * the old graph's memory is freed. */
static evo_status optimize_compact(evo_pass_ctx *c)
{
    evo_graph *g = c->g;
    int32_t *keep = malloc(((size_t)g->n_order + 1) * sizeof *keep);
    if (keep == NULL)
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                             evo_pass_file(g));
    int32_t n_keep = 0;
    /* g->order is the order from before the passes: rewiring only ever
     * moved an output to a node that already ran earlier than its old
     * consumers, so the order of the kept nodes stays topological; validate
     * checks that anyway. */
    for (int32_t k = 0; k < g->n_order; k++)
        if (!c->removed[g->order[k]])
            keep[n_keep++] = g->order[k];
    evo_graph *ng = NULL;
    evo_status rv = evo_graph_extract(g, keep, n_keep, g->inputs, g->n_inputs, g->outputs,
                                      g->n_outputs, true, g->name, &ng, c->err);
    free(keep);
    if (rv != EVO_OK)
        return rv;
    evo_graph tmp = *g;
    *g = *ng;
    *ng = tmp;
    evo_graph_free(ng);
    return EVO_OK;
}

evo_status evo_graph_optimize(evo_graph *g, const evo_optimize_options *opt,
                              evo_optimize_report *report, evo_error *err)
{
    evo_optimize_options none = {false, false, false, false};
    evo_optimize_report rep = {0, 0, 0, 0};
    if (err != NULL)
        evo_error_clear(err);
    if (report != NULL)
        *report = rep;
    if (g == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_graph_optimize needs a graph");
    if (opt == NULL)
        opt = &none;
    const char *file = evo_pass_file(g);
    if (g->order == NULL && g->n_nodes > 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: the graph must be validated and inferred before optimizing",
                             file);
    for (int32_t i = 0; i < g->n_values; i++) {
        const evo_value *v = &g->values[i];
        bool used =
            (v->flags & (EVO_VALUE_INPUT | EVO_VALUE_OUTPUT | EVO_VALUE_CONST)) || v->producer >= 0;
        uint32_t need = EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
        if (used && (v->flags & need) != need)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "%s: tensor '%s' has no inferred type and shape; run inference "
                                 "before optimizing",
                                 file, v->name);
    }
    evo_pass_ctx c = {.g = g, .err = err};
    c.removed = calloc((size_t)g->n_nodes + 1, sizeof *c.removed);
    if (c.removed == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph", file);
    optimize_drop_folded(&c);
    evo_status rv = EVO_OK;
    if (rv == EVO_OK && !opt->no_fold_batchnorm)
        rv = evo_pass_fold_batchnorm(&c, &rep.batchnorms_folded);
    if (rv == EVO_OK && !opt->no_fuse_activation)
        rv = evo_pass_fuse_activation(&c, &rep.activations_fused);
    if (rv == EVO_OK && !opt->no_remove_identity)
        rv = evo_pass_remove_identity(&c, &rep.identities_removed);
    if (rv == EVO_OK && !opt->no_dead_code)
        rv = evo_pass_dead_code(&c, &rep.dead_nodes_removed);
    if (rv == EVO_OK)
        rv = evo_pass_layout_conv(&c, &(int32_t){0});
    if (rv == EVO_OK)
        rv = optimize_compact(&c);
    free(c.removed);
    free(c.n_uses);
    if (rv != EVO_OK)
        return rv;
    if (report != NULL)
        *report = rep;
    /* Not `file`: compaction replaced the graph's contents, name included. */
    EVO_LOGI("%s: optimized: %d BatchNormalization folded, %d activations fused, %d "
             "Identity/Dropout removed, %d dead nodes removed",
             evo_pass_file(g), (int)rep.batchnorms_folded, (int)rep.activations_fused,
             (int)rep.identities_removed, (int)rep.dead_nodes_removed);
    return EVO_OK;
}
