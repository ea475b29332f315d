/*
 * The hosted program compiler: an inferred evo_graph -> an evo_program with a
 * memory plan. Hosted code (it allocates); the program it returns is plain
 * data that the portable executor (exec.c) runs.
 *
 * What it decides:
 *   - which nodes run: those in g->order, except nodes whose outputs were all
 *     folded to constants (they are not computed again);
 *   - the tensor table: every value a running node reads or writes, plus the
 *     graph inputs and outputs. Constants borrow the graph's data; the rest get
 *     arena offsets from the memory planner (memplan.h);
 *   - lifetimes in steps (a step = one running node): graph inputs are alive
 *     from step 0, graph outputs to the last step, other tensors from their
 *     producer to their last consumer; a node's scratch only at its step;
 *   - in-place reuse: output 0 of an EVO_OP_INPLACE op shares input 0's buffer
 *     when input 0 is an arena tensor that no later node and no caller reads.
 *
 * A graph input's buffer is free for reuse after its last reader ran, so the
 * caller writes every input again before each run (inputs that are also graph
 * outputs are kept to the end).
 *
 * Graph outputs that are constants or graph inputs need no node: the output is
 * the same tensor, so evo_exec_output's view points at the constant data (or
 * at the input buffer the caller filled). Nothing is copied at run time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/node.h"
#include "memplan.h"

/* Everything the program points to, freed by evo_program_free. */
typedef struct build_owner {
    evo_program prog;
    evo_prog_tensor *tensors;
    evo_prog_node *nodes;
    int32_t *indices; /* node in/out lists, then inputs, then outputs */
} build_owner;

/* Scratch state of one build, freed at the end whatever happens. */
typedef struct build_state {
    const evo_graph *g;
    const char *file;
    evo_error *err;
    int32_t *tmap; /* value index -> tensor index, -1 if none */
    int32_t *tval; /* tensor index -> value index */
    int32_t n_t;
    int32_t *sched; /* node indices that run, in order */
    int32_t n_sched;
    int32_t *first, *last; /* per tensor lifetime (arena tensors only) */
    int32_t *tbuf;         /* tensor -> planner buffer, -1 for constants */
    int32_t *sbuf;         /* step -> scratch buffer, -1 for none */
    uint64_t *scratch;     /* step -> scratch bytes */
    evo_memplan_buf *bufs;
    evo_memplan_alias *aliases;
    uint64_t *offsets;
    void *work;
    evo_tensor *views; /* shape-only views for op->scratch */
    evo_tensor **vptrs;
} build_state;

void evo_program_free(evo_program *p)
{
    if (p == NULL)
        return;
    build_owner *o = p->owner_;
    if (o == NULL || &o->prog != p)
        return; /* not made by evo_program_build */
    free(o->tensors);
    free(o->nodes);
    free(o->indices);
    free(o);
}

static void build_state_free(build_state *s)
{
    free(s->tmap);
    free(s->tval);
    free(s->sched);
    free(s->first);
    free(s->last);
    free(s->tbuf);
    free(s->sbuf);
    free(s->scratch);
    free(s->bufs);
    free(s->aliases);
    free(s->offsets);
    free(s->work);
    free(s->views);
    free(s->vptrs);
}

/* calloc of n elements with the count checked; n may be 0 (returns a valid
 * 1-element block so that NULL always means failure). */
static void *build_calloc(size_t n, size_t elem)
{
    return calloc(n ? n : 1, elem);
}

static const char *build_node_name(const evo_node *n)
{
    return (n->name != NULL && n->name[0] != '\0') ? n->name : "(unnamed)";
}

/* Add value v to the tensor table (once) after checking that it has a type
 * and a static shape. `who` names where the value is used, for the message. */
static evo_status build_add_tensor(build_state *s, int32_t v, const char *who)
{
    const evo_graph *g = s->g;
    if (v < 0 || v >= g->n_values)
        return evo_error_set(s->err, EVO_ERR_GRAPH,
                             "%s: %s refers to tensor index %d, out of range", s->file, who,
                             (int)v);
    if (s->tmap[v] >= 0)
        return EVO_OK;
    const evo_value *val = &g->values[v];
    if ((val->flags & (EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE)) !=
        (EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE))
        return evo_error_set(s->err, EVO_ERR_SHAPE,
                             "%s: tensor '%s' (%s) has no known %s; shape inference must run "
                             "before compiling",
                             s->file, val->name, who,
                             (val->flags & EVO_VALUE_HAS_TYPE) ? "static shape" : "type");
    s->tmap[v] = s->n_t;
    s->tval[s->n_t] = v;
    s->n_t++;
    return EVO_OK;
}

/* True if value v is listed in g->inputs. */
static bool build_is_graph_input(const evo_graph *g, int32_t v)
{
    for (int32_t k = 0; k < g->n_inputs; k++)
        if (g->inputs[k] == v)
            return true;
    return false;
}

/* Pick the nodes that run and collect the tensor table. */
static evo_status build_schedule(build_state *s)
{
    const evo_graph *g = s->g;
    char who[160];
    if (g->n_order != g->n_nodes || (g->n_nodes > 0 && g->order == NULL))
        return evo_error_set(s->err, EVO_ERR_GRAPH,
                             "%s: graph has no topological order of its %d nodes; "
                             "evo_graph_validate must run before compiling",
                             s->file, (int)g->n_nodes);
    for (int32_t k = 0; k < g->n_inputs; k++) {
        snprintf(who, sizeof who, "graph input %d", (int)k);
        evo_status st = build_add_tensor(s, g->inputs[k], who);
        if (st != EVO_OK)
            return st;
    }
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t ni = g->order[k];
        if (ni < 0 || ni >= g->n_nodes)
            return evo_error_set(s->err, EVO_ERR_GRAPH, "%s: node order entry %d is out of range",
                                 s->file, (int)k);
        const evo_node *n = &g->nodes[ni];
        snprintf(who, sizeof who, "node '%s' (%s)", build_node_name(n), n->op_type);
        /* Nodes whose outputs are all constants were folded: skip them. */
        int32_t n_present = 0, n_const = 0;
        for (int32_t i = 0; i < n->n_outputs; i++) {
            int32_t o = n->outputs[i];
            if (o < -1 || o >= g->n_values)
                return evo_error_set(s->err, EVO_ERR_GRAPH,
                                     "%s: %s has an output index out of range", s->file, who);
            if (o < 0)
                continue;
            n_present++;
            if (g->values[o].flags & EVO_VALUE_CONST)
                n_const++;
        }
        if (n_present == n_const)
            continue;
        if (n_const > 0)
            return evo_error_set(s->err, EVO_ERR_UNSUPPORTED,
                                 "%s: %s has some outputs folded to constants and others not",
                                 s->file, who);
        const evo_op_def *op = n->op;
        if (op == NULL || op->eval == NULL)
            return evo_error_set(s->err, EVO_ERR_UNSUPPORTED,
                                 "%s: %s: evo has no kernel for op '%s%s%s'", s->file, who,
                                 (n->domain && n->domain[0]) ? n->domain : "",
                                 (n->domain && n->domain[0]) ? "." : "", n->op_type);
        if (n->n_inputs < op->min_inputs || (op->max_inputs >= 0 && n->n_inputs > op->max_inputs) ||
            n->n_outputs < op->min_outputs ||
            (op->max_outputs >= 0 && n->n_outputs > op->max_outputs))
            return evo_error_set(s->err, EVO_ERR_GRAPH,
                                 "%s: %s has %d inputs and %d outputs, which op %s does not accept",
                                 s->file, who, (int)n->n_inputs, (int)n->n_outputs, op->name);
        for (int32_t i = 0; i < n->n_inputs; i++) {
            if (n->inputs[i] < -1)
                return evo_error_set(s->err, EVO_ERR_GRAPH,
                                     "%s: %s has an input index out of range", s->file, who);
            if (n->inputs[i] >= 0) {
                evo_status st = build_add_tensor(s, n->inputs[i], who);
                if (st != EVO_OK)
                    return st;
            }
        }
        for (int32_t i = 0; i < n->n_outputs; i++) {
            if (n->outputs[i] < 0)
                continue;
            const evo_value *ov = &g->values[n->outputs[i]];
            if (build_is_graph_input(g, n->outputs[i]))
                return evo_error_set(s->err, EVO_ERR_GRAPH, "%s: %s writes graph input '%s'",
                                     s->file, who, ov->name);
            evo_status st = build_add_tensor(s, n->outputs[i], who);
            if (st != EVO_OK)
                return st;
        }
        s->sched[s->n_sched++] = ni;
    }
    for (int32_t k = 0; k < g->n_outputs; k++) {
        snprintf(who, sizeof who, "graph output %d", (int)k);
        evo_status st = build_add_tensor(s, g->outputs[k], who);
        if (st != EVO_OK)
            return st;
    }
    return EVO_OK;
}

/* A tensor is a constant unless the caller feeds it (a graph input listed
 * in g->inputs overrides an initializer of the same name, as in ONNX). */
static bool build_is_const(const build_state *s, int32_t t)
{
    int32_t v = s->tval[t];
    return (s->g->values[v].flags & EVO_VALUE_CONST) && !build_is_graph_input(s->g, v);
}

/* Lifetimes of arena tensors in steps; -1 = not yet seen. */
static evo_status build_lifetimes(build_state *s, const evo_prog_tensor *tens)
{
    const evo_graph *g = s->g;
    int32_t last_step = s->n_sched > 0 ? s->n_sched - 1 : 0;
    for (int32_t t = 0; t < s->n_t; t++) {
        s->first[t] = (tens[t].flags & EVO_PT_INPUT) ? 0 : -1;
        s->last[t] = (tens[t].flags & EVO_PT_OUTPUT) ? last_step : -1;
    }
    for (int32_t step = 0; step < s->n_sched; step++) {
        const evo_node *n = &g->nodes[s->sched[step]];
        for (int32_t i = 0; i < n->n_outputs; i++) {
            if (n->outputs[i] < 0)
                continue;
            int32_t t = s->tmap[n->outputs[i]];
            if (s->first[t] >= 0)
                return evo_error_set(s->err, EVO_ERR_GRAPH,
                                     "%s: tensor '%s' is written by node '%s' (%s) after it was "
                                     "already defined",
                                     s->file, tens[t].name, build_node_name(n), n->op_type);
            s->first[t] = step;
        }
        for (int32_t i = 0; i < n->n_inputs; i++) {
            if (n->inputs[i] < 0)
                continue;
            int32_t t = s->tmap[n->inputs[i]];
            if (tens[t].flags & EVO_PT_CONST)
                continue;
            if (s->first[t] < 0 || s->first[t] > step)
                return evo_error_set(s->err, EVO_ERR_GRAPH,
                                     "%s: node '%s' (%s) reads tensor '%s' before anything "
                                     "writes it",
                                     s->file, build_node_name(n), n->op_type, tens[t].name);
            if (step > s->last[t])
                s->last[t] = step;
        }
    }
    for (int32_t t = 0; t < s->n_t; t++) {
        if (tens[t].flags & EVO_PT_CONST)
            continue;
        if (s->first[t] < 0)
            return evo_error_set(s->err, EVO_ERR_GRAPH, "%s: graph output '%s' is never computed",
                                 s->file, tens[t].name);
        /* An output nobody reads still needs room while its node writes it. */
        if (s->last[t] < s->first[t])
            s->last[t] = s->first[t];
    }
    return EVO_OK;
}

/* Per-node scratch bytes, from op->scratch on shape-only views (constant
 * inputs keep their data, as in infer). */
static evo_status build_scratch(build_state *s, const evo_prog_tensor *tens, int32_t max_io)
{
    const evo_graph *g = s->g;
    for (int32_t t = 0; t < s->n_t; t++) {
        s->views[t].dtype = tens[t].dtype;
        s->views[t].shape = tens[t].shape;
        s->views[t].data = (void *)(uintptr_t)tens[t].const_data;
    }
    for (int32_t step = 0; step < s->n_sched; step++) {
        const evo_node *n = &g->nodes[s->sched[step]];
        s->scratch[step] = 0;
        if (n->op->scratch == NULL)
            continue;
        if (n->n_inputs + n->n_outputs > max_io)
            return evo_error_set(s->err, EVO_ERR_INTERNAL, "%s: scratch table too small", s->file);
        for (int32_t i = 0; i < n->n_inputs; i++)
            s->vptrs[i] = n->inputs[i] < 0 ? NULL : &s->views[s->tmap[n->inputs[i]]];
        for (int32_t i = 0; i < n->n_outputs; i++)
            s->vptrs[n->n_inputs + i] =
                n->outputs[i] < 0 ? NULL : &s->views[s->tmap[n->outputs[i]]];
        evo_kctx c = {.params = n->params,
                      .in = s->vptrs,
                      .n_in = n->n_inputs,
                      .out = s->vptrs + n->n_inputs,
                      .n_out = n->n_outputs,
                      .err = s->err};
        s->scratch[step] = (uint64_t)n->op->scratch(&c);
    }
    return EVO_OK;
}

/* Output 0 of node `n` (at `step`) may take over input 0's buffer. */
static bool build_can_inplace(const build_state *s, const evo_prog_tensor *tens, const evo_node *n,
                              int32_t step)
{
    if (!(n->op->flags & EVO_OP_INPLACE) || n->n_inputs < 1 || n->n_outputs < 1 ||
        n->inputs[0] < 0 || n->outputs[0] < 0)
        return false;
    int32_t ti = s->tmap[n->inputs[0]], to = s->tmap[n->outputs[0]];
    const evo_prog_tensor *a = &tens[ti], *b = &tens[to];
    if (a->flags & (EVO_PT_CONST | EVO_PT_INPUT | EVO_PT_OUTPUT))
        return false;
    if (a->dtype != b->dtype || a->nbytes != b->nbytes)
        return false;
    return s->last[ti] == step;
}

evo_status evo_program_build(const evo_graph *g, const evo_program_options *opt, evo_program **out,
                             evo_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (g == NULL || out == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "program build: no graph or no result");
    if (g->n_values < 0 || g->n_nodes < 0 || g->n_inputs < 0 || g->n_outputs < 0 ||
        (g->n_values > 0 && g->values == NULL) || (g->n_inputs > 0 && g->inputs == NULL) ||
        (g->n_outputs > 0 && g->outputs == NULL))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "program build: malformed graph");
    bool no_inplace = opt != NULL && opt->no_inplace;

    build_state s = {.g = g, .file = g->source_path ? g->source_path : "graph", .err = err};
    build_owner *o = NULL;
    evo_status st = EVO_OK;
    size_t nv = (size_t)g->n_values, nn = (size_t)g->n_nodes;

    s.tmap = build_calloc(nv, sizeof *s.tmap);
    s.tval = build_calloc(nv, sizeof *s.tval);
    s.sched = build_calloc(nn, sizeof *s.sched);
    if (!s.tmap || !s.tval || !s.sched) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory compiling", s.file);
        goto fail;
    }
    for (size_t v = 0; v < nv; v++)
        s.tmap[v] = -1;
    if ((st = build_schedule(&s)) != EVO_OK)
        goto fail;

    /* Sizes of everything the program holds. */
    size_t n_t = (size_t)s.n_t, n_steps = (size_t)s.n_sched;
    size_t n_idx = (size_t)g->n_inputs + (size_t)g->n_outputs;
    int32_t max_io = 0;
    for (int32_t step = 0; step < s.n_sched; step++) {
        const evo_node *n = &g->nodes[s.sched[step]];
        n_idx += (size_t)n->n_inputs + (size_t)n->n_outputs;
        if (n->n_inputs + n->n_outputs > max_io)
            max_io = n->n_inputs + n->n_outputs;
    }

    o = calloc(1, sizeof *o);
    if (o != NULL) {
        o->tensors = build_calloc(n_t, sizeof *o->tensors);
        o->nodes = build_calloc(n_steps, sizeof *o->nodes);
        o->indices = build_calloc(n_idx, sizeof *o->indices);
    }
    s.first = build_calloc(n_t, sizeof *s.first);
    s.last = build_calloc(n_t, sizeof *s.last);
    s.tbuf = build_calloc(n_t, sizeof *s.tbuf);
    s.sbuf = build_calloc(n_steps, sizeof *s.sbuf);
    s.scratch = build_calloc(n_steps, sizeof *s.scratch);
    s.bufs = build_calloc(n_t + n_steps, sizeof *s.bufs);
    s.aliases = build_calloc(n_steps, sizeof *s.aliases);
    s.offsets = build_calloc(n_t + n_steps, sizeof *s.offsets);
    s.views = build_calloc(n_t, sizeof *s.views);
    s.vptrs = build_calloc((size_t)max_io, sizeof *s.vptrs);
    if (!o || !o->tensors || !o->nodes || !o->indices || !s.first || !s.last || !s.tbuf ||
        !s.sbuf || !s.scratch || !s.bufs || !s.aliases || !s.offsets || !s.views || !s.vptrs) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory compiling", s.file);
        goto fail;
    }

    /* Tensor table. */
    evo_prog_tensor *tens = o->tensors;
    uint64_t weights = 0;
    for (int32_t t = 0; t < s.n_t; t++) {
        const evo_value *v = &g->values[s.tval[t]];
        evo_prog_tensor *pt = &tens[t];
        pt->name = v->name ? v->name : "";
        pt->dtype = v->t.dtype;
        pt->shape = v->t.shape;
        size_t nbytes;
        evo_status e = evo_shape_nbytes(&v->t.shape, v->t.dtype, &nbytes);
        if (e != EVO_OK) {
            char sh[96];
            evo_shape_format(&v->t.shape, sh, sizeof sh);
            st = evo_error_set(err, e, "%s: tensor '%s' of type %s and shape %s has no valid size",
                               s.file, pt->name, evo_dtype_name(v->t.dtype), sh);
            goto fail;
        }
        pt->nbytes = nbytes;
        if (build_is_graph_input(g, s.tval[t]))
            pt->flags |= EVO_PT_INPUT;
        if (build_is_const(&s, t)) {
            if (v->t.data == NULL && nbytes > 0) {
                st = evo_error_set(err, EVO_ERR_GRAPH, "%s: constant tensor '%s' has no data",
                                   s.file, pt->name);
                goto fail;
            }
            pt->flags |= EVO_PT_CONST;
            pt->const_data = v->t.data;
            weights += nbytes;
        }
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        tens[s.tmap[g->outputs[k]]].flags |= EVO_PT_OUTPUT;

    if ((st = build_lifetimes(&s, tens)) != EVO_OK)
        goto fail;
    if ((st = build_scratch(&s, tens, max_io)) != EVO_OK)
        goto fail;

    /* Planner buffers: arena tensors, then scratch areas. */
    int32_t n_bufs = 0, n_alias = 0;
    for (int32_t t = 0; t < s.n_t; t++) {
        s.tbuf[t] = -1;
        if (tens[t].flags & EVO_PT_CONST)
            continue;
        s.bufs[n_bufs] = (evo_memplan_buf){tens[t].nbytes, s.first[t], s.last[t]};
        s.tbuf[t] = n_bufs++;
    }
    for (int32_t step = 0; step < s.n_sched; step++) {
        s.sbuf[step] = -1;
        if (s.scratch[step] > 0) {
            s.bufs[n_bufs] = (evo_memplan_buf){s.scratch[step], step, step};
            s.sbuf[step] = n_bufs++;
        }
        const evo_node *n = &g->nodes[s.sched[step]];
        if (!no_inplace && build_can_inplace(&s, tens, n, step))
            s.aliases[n_alias++] =
                (evo_memplan_alias){s.tbuf[s.tmap[n->outputs[0]]], s.tbuf[s.tmap[n->inputs[0]]]};
    }
    int32_t plan_steps = s.n_sched > 0 ? s.n_sched : 1;
    size_t work_bytes = evo_memplan_work_bytes(n_bufs, plan_steps);
    s.work = work_bytes == SIZE_MAX ? NULL : malloc(work_bytes);
    if (s.work == NULL) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory planning memory", s.file);
        goto fail;
    }
    evo_memplan_result res;
    st = evo_memplan_plan(s.bufs, n_bufs, plan_steps, s.aliases, n_alias, EVO_ARENA_ALIGN,
                          EVO_MEMPLAN_AUTO, s.offsets, &res, s.work, work_bytes, err);
    if (st != EVO_OK) {
        evo_error_prefix(err, "%s", s.file);
        goto fail;
    }
    for (int32_t t = 0; t < s.n_t; t++)
        if (s.tbuf[t] >= 0)
            tens[t].arena_offset = s.offsets[s.tbuf[t]];

    /* Node table; index lists are carved from o->indices. */
    int32_t *idx = o->indices;
    for (int32_t step = 0; step < s.n_sched; step++) {
        const evo_node *n = &g->nodes[s.sched[step]];
        evo_prog_node *pn = &o->nodes[step];
        pn->name = n->name ? n->name : "";
        pn->op = n->op;
        pn->params = n->params;
        pn->n_in = n->n_inputs;
        pn->n_out = n->n_outputs;
        pn->in = idx;
        for (int32_t i = 0; i < n->n_inputs; i++)
            *idx++ = n->inputs[i] < 0 ? -1 : s.tmap[n->inputs[i]];
        pn->out = idx;
        for (int32_t i = 0; i < n->n_outputs; i++)
            *idx++ = n->outputs[i] < 0 ? -1 : s.tmap[n->outputs[i]];
        if (s.sbuf[step] >= 0) {
            pn->scratch_offset = s.offsets[s.sbuf[step]];
            pn->scratch_bytes = s.scratch[step];
        }
    }
    evo_program *p = &o->prog;
    p->inputs = idx;
    for (int32_t k = 0; k < g->n_inputs; k++)
        *idx++ = s.tmap[g->inputs[k]];
    p->outputs = idx;
    for (int32_t k = 0; k < g->n_outputs; k++)
        *idx++ = s.tmap[g->outputs[k]];
    p->n_tensors = s.n_t;
    p->tensors = o->tensors;
    p->n_nodes = s.n_sched;
    p->nodes = o->nodes;
    p->n_inputs = g->n_inputs;
    p->n_outputs = g->n_outputs;
    p->activation_bytes = res.total;
    p->activation_lower_bound = res.lower_bound;
    p->weights_bytes = weights;
    p->owner_ = o;
    build_state_free(&s);
    *out = p;
    return EVO_OK;

fail:
    if (o != NULL) {
        o->prog.owner_ = o;
        evo_program_free(&o->prog);
    }
    build_state_free(&s);
    return st;
}
