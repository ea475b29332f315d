/*
 * Subgraph extraction: split plans (from cut tensors, from ranges of the
 * topological order, or from node lists a partitioner chose), and copying
 * a set of nodes into a self-contained graph (also used by the optimizer to
 * compact a graph after its passes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/split.h"
#include "pass_internal.h"

static char *split_strdup(const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static const char *split_file(const evo_graph *g)
{
    return g->source_path ? g->source_path : "graph";
}

static evo_status split_nomem(const evo_graph *g, evo_error *err)
{
    return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory splitting the graph",
                         split_file(g));
}

/* A node runs at inference unless inference folded all its outputs. */
static bool split_runs(const evo_graph *g, int32_t i)
{
    const evo_node *n = &g->nodes[i];
    for (int32_t k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & EVO_VALUE_CONST))
            return true;
    return false;
}

/* ---------------------------------------------------------------- graph extraction */

static evo_status split_copy_attr(const evo_attr *a, evo_attr *d)
{
    memset(d, 0, sizeof *d);
    d->type = a->type;
    d->i = a->i;
    d->f = a->f;
    d->count = a->count;
    if ((d->name = split_strdup(a->name)) == NULL)
        return EVO_ERR_NOMEM;
    if (a->s != NULL && (d->s = split_strdup(a->s)) == NULL)
        return EVO_ERR_NOMEM;
    if (a->ints != NULL) {
        if ((d->ints = malloc((a->count + 1) * sizeof(int64_t))) == NULL)
            return EVO_ERR_NOMEM;
        if (a->count > 0)
            memcpy(d->ints, a->ints, a->count * sizeof(int64_t));
    }
    if (a->floats != NULL) {
        if ((d->floats = malloc((a->count + 1) * sizeof(float))) == NULL)
            return EVO_ERR_NOMEM;
        if (a->count > 0)
            memcpy(d->floats, a->floats, a->count * sizeof(float));
    }
    if (a->strings != NULL) {
        if ((d->strings = calloc(a->count + 1, sizeof(char *))) == NULL)
            return EVO_ERR_NOMEM;
        for (size_t k = 0; k < a->count; k++)
            if ((d->strings[k] = split_strdup(a->strings[k])) == NULL)
                return EVO_ERR_NOMEM;
    }
    d->tensor.dtype = a->tensor.dtype;
    d->tensor.shape = a->tensor.shape;
    if (a->tensor.data != NULL) {
        size_t bytes = 0;
        if (evo_shape_nbytes(&a->tensor.shape, a->tensor.dtype, &bytes) != EVO_OK)
            return EVO_ERR_LIMIT;
        if ((d->tensor.data = malloc(bytes ? bytes : 1)) == NULL)
            return EVO_ERR_NOMEM;
        if (bytes > 0)
            memcpy(d->tensor.data, a->tensor.data, bytes);
    }
    return EVO_OK;
}

static void split_attr_clear(evo_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->strings != NULL)
        for (size_t k = 0; k < a->count; k++)
            free(a->strings[k]);
    free(a->strings);
    free(a->tensor.data);
    memset(a, 0, sizeof *a);
}

typedef struct split_copy {
    evo_graph *g, *ng;
    int32_t *map; /* value of g -> value of ng, -1 until copied */
    bool move_consts;
    evo_error *err;
} split_copy;

/* The copy of value v in ng, made on first use. */
static evo_status split_map_value(split_copy *s, int32_t v, int32_t *out)
{
    if (s->map[v] >= 0) {
        *out = s->map[v];
        return EVO_OK;
    }
    evo_value *src = &s->g->values[v];
    int32_t nv;
    evo_status rv = evo_graph_add_value(s->ng, src->name, &nv);
    if (rv != EVO_OK)
        return evo_error_set(s->err, rv, "%s: cannot copy tensor '%s' (%s)", split_file(s->g),
                             src->name, evo_strerror(rv));
    evo_value *dst = &s->ng->values[nv];
    dst->t.dtype = src->t.dtype;
    dst->t.shape = src->t.shape;
    dst->flags = src->flags & (EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE);
    if ((src->flags & EVO_VALUE_CONST) && src->t.data != NULL) {
        void *data;
        if (s->move_consts) {
            data = src->t.data;
            src->t.data = NULL;
            src->flags &= ~(uint32_t)EVO_VALUE_CONST;
        } else {
            size_t bytes;
            if ((rv = evo_shape_nbytes(&src->t.shape, src->t.dtype, &bytes)) != EVO_OK)
                return evo_error_set(s->err, rv, "%s: constant '%s' has no valid size",
                                     split_file(s->g), src->name);
            if ((data = malloc(bytes ? bytes : 1)) == NULL)
                return split_nomem(s->g, s->err);
            if (bytes > 0)
                memcpy(data, src->t.data, bytes);
        }
        evo_value_set_const(s->ng, nv, dst->t.dtype, &dst->t.shape, data);
    }
    s->map[v] = nv;
    *out = nv;
    return EVO_OK;
}

static evo_status split_copy_meta(const evo_graph *g, evo_graph *ng, const char *name)
{
    ng->ir_version = g->ir_version;
    if ((ng->name = split_strdup(name ? name : g->name)) == NULL ||
        (ng->source_path = split_strdup(g->source_path)) == NULL ||
        (ng->producer_name = split_strdup(g->producer_name)) == NULL)
        return EVO_ERR_NOMEM;
    if (g->n_opsets > 0) {
        if ((ng->opsets = calloc((size_t)g->n_opsets, sizeof *ng->opsets)) == NULL)
            return EVO_ERR_NOMEM;
        for (int32_t k = 0; k < g->n_opsets; k++) {
            if ((ng->opsets[k].domain = split_strdup(g->opsets[k].domain)) == NULL)
                return EVO_ERR_NOMEM;
            ng->opsets[k].version = g->opsets[k].version;
            ng->n_opsets = k + 1;
        }
    }
    return EVO_OK;
}

static evo_status split_copy_node(split_copy *s, int32_t i)
{
    const evo_node *n = &s->g->nodes[i];
    int32_t *idx = malloc(((size_t)n->n_inputs + (size_t)n->n_outputs + 1) * sizeof *idx);
    if (idx == NULL)
        return split_nomem(s->g, s->err);
    evo_status rv = EVO_OK;
    for (int32_t k = 0; k < n->n_inputs && rv == EVO_OK; k++) {
        idx[k] = -1;
        if (n->inputs[k] >= 0)
            rv = split_map_value(s, n->inputs[k], &idx[k]);
    }
    for (int32_t k = 0; k < n->n_outputs && rv == EVO_OK; k++) {
        idx[n->n_inputs + k] = -1;
        if (n->outputs[k] >= 0)
            rv = split_map_value(s, n->outputs[k], &idx[n->n_inputs + k]);
    }
    int32_t ni = -1;
    if (rv == EVO_OK && evo_graph_add_node(s->ng, n->op_type, n->domain, n->name, idx, n->n_inputs,
                                           idx + n->n_inputs, n->n_outputs, &ni) != EVO_OK)
        rv = split_nomem(s->g, s->err);
    free(idx);
    if (rv != EVO_OK)
        return rv;
    evo_node *d = &s->ng->nodes[ni];
    d->opset = n->opset;
    d->op = n->op;
    memcpy(d->params, n->params, sizeof d->params);
    for (int32_t a = 0; a < n->n_attrs; a++) {
        evo_attr copy;
        if (split_copy_attr(&n->attrs[a], &copy) != EVO_OK) {
            split_attr_clear(&copy);
            return split_nomem(s->g, s->err);
        }
        if (evo_node_add_attr(s->ng, ni, &copy) != EVO_OK) /* owns copy's pointers */
            return split_nomem(s->g, s->err);
    }
    return EVO_OK;
}

evo_status evo_graph_extract(evo_graph *g, const int32_t *nodes, int32_t n_nodes,
                             const int32_t *inputs, int32_t n_inputs, const int32_t *outputs,
                             int32_t n_outputs, bool move_consts, const char *name, evo_graph **out,
                             evo_error *err)
{
    *out = NULL;
    split_copy s = {.g = g, .move_consts = move_consts, .err = err};
    s.ng = evo_graph_new();
    s.map = malloc(((size_t)g->n_values + 1) * sizeof *s.map);
    if (s.ng == NULL || s.map == NULL) {
        evo_graph_free(s.ng);
        free(s.map);
        return split_nomem(g, err);
    }
    for (int32_t v = 0; v < g->n_values; v++)
        s.map[v] = -1;
    evo_graph *ng = s.ng;
    evo_status rv = split_copy_meta(g, ng, name);
    if (rv != EVO_OK)
        rv = split_nomem(g, err);
    if (rv == EVO_OK && ((ng->inputs = malloc(((size_t)n_inputs + 1) * sizeof(int32_t))) == NULL ||
                         (ng->outputs = malloc(((size_t)n_outputs + 1) * sizeof(int32_t))) == NULL))
        rv = split_nomem(g, err);
    for (int32_t k = 0; k < n_inputs && rv == EVO_OK; k++) {
        int32_t v = inputs[k], nv;
        if (v < 0 || v >= g->n_values || (g->values[v].flags & EVO_VALUE_CONST)) {
            rv = evo_error_set(err, EVO_ERR_INTERNAL,
                               "%s: stage input #%d is not a tensor a "
                               "caller can feed",
                               split_file(g), (int)k);
            break;
        }
        if (s.map[v] >= 0) {
            rv = evo_error_set(err, EVO_ERR_INTERNAL, "%s: input '%s' is listed twice",
                               split_file(g), g->values[v].name);
            break;
        }
        if ((rv = split_map_value(&s, v, &nv)) != EVO_OK)
            break;
        ng->values[nv].flags |= EVO_VALUE_INPUT;
        ng->inputs[ng->n_inputs++] = nv;
        const evo_value *src = &g->values[v];
        if (src->dim_params != NULL) {
            char **dp = calloc(EVO_MAX_RANK, sizeof(char *));
            ng->values[nv].dim_params = dp;
            for (int32_t d = 0; dp != NULL && d < EVO_MAX_RANK; d++)
                if ((dp[d] = split_strdup(src->dim_params[d])) == NULL)
                    dp = NULL;
            if (dp == NULL)
                rv = split_nomem(g, err);
        }
    }
    for (int32_t k = 0; k < n_nodes && rv == EVO_OK; k++) {
        if (nodes[k] < 0 || nodes[k] >= g->n_nodes)
            rv = evo_error_set(err, EVO_ERR_INTERNAL, "%s: node index %d out of range",
                               split_file(g), (int)nodes[k]);
        else
            rv = split_copy_node(&s, nodes[k]);
    }
    for (int32_t k = 0; k < n_outputs && rv == EVO_OK; k++) {
        int32_t v = outputs[k], nv;
        if (v < 0 || v >= g->n_values) {
            rv = evo_error_set(err, EVO_ERR_INTERNAL, "%s: output #%d out of range", split_file(g),
                               (int)k);
            break;
        }
        if ((rv = split_map_value(&s, v, &nv)) != EVO_OK)
            break;
        if (ng->values[nv].flags & EVO_VALUE_OUTPUT)
            continue;
        ng->values[nv].flags |= EVO_VALUE_OUTPUT;
        ng->outputs[ng->n_outputs++] = nv;
    }
    free(s.map);
    if (rv == EVO_OK)
        rv = evo_graph_validate(ng, err);
    if (rv != EVO_OK) {
        evo_graph_free(ng);
        return rv;
    }
    *out = ng;
    return EVO_OK;
}

/* ---------------------------------------------------------------- plans */

static void split_names_free(char **names, int32_t n)
{
    if (names == NULL)
        return;
    for (int32_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
}

void evo_split_plan_free(evo_split_plan *plan)
{
    if (plan == NULL)
        return;
    for (int32_t s = 0; s < plan->n_stages; s++) {
        evo_split_stage *st = &plan->stages[s];
        free(st->nodes);
        split_names_free(st->inputs, st->n_inputs);
        split_names_free(st->outputs, st->n_outputs);
    }
    free(plan->stages);
    memset(plan, 0, sizeof *plan);
}

/* Sort values by where their producers run (seq[v]); the keys are passed
 * alongside since qsort has no context argument. */
typedef struct split_keyed {
    int64_t key;
    int32_t value;
} split_keyed;

static int split_cmp_keyed(const void *pa, const void *pb)
{
    const split_keyed *a = pa, *b = pb;
    return a->key < b->key ? -1 : a->key > b->key;
}

static void split_sort_by_seq(int32_t *vals, int32_t n, const int64_t *seq, split_keyed *tmp)
{
    for (int32_t k = 0; k < n; k++) {
        tmp[k].key = seq[vals[k]];
        tmp[k].value = vals[k];
    }
    qsort(tmp, (size_t)n, sizeof *tmp, split_cmp_keyed);
    for (int32_t k = 0; k < n; k++)
        vals[k] = tmp[k].value;
}

static evo_status split_set_names(const evo_graph *g, const int32_t *vals, int32_t n, char ***names,
                                  int32_t *count)
{
    char **p = calloc((size_t)n + 1, sizeof *p);
    if (p == NULL)
        return EVO_ERR_NOMEM;
    for (int32_t k = 0; k < n; k++)
        if ((p[k] = split_strdup(g->values[vals[k]].name)) == NULL) {
            split_names_free(p, k);
            return EVO_ERR_NOMEM;
        }
    *names = p;
    *count = n;
    return EVO_OK;
}

typedef struct split_work {
    int32_t *stage_of;  /* per node: stage, -1 if none */
    int32_t *pos;       /* per node: position within its stage */
    int32_t *last_use;  /* per value: last stage that reads it, -1 if none */
    int64_t *seq;       /* per value: position of its producer in g->order, then slot */
    int32_t *mark;      /* per value: stamp */
    int32_t *list;      /* scratch list of values */
    split_keyed *keyed; /* sort scratch */
} split_work;

static void split_work_free(split_work *w)
{
    free(w->stage_of);
    free(w->pos);
    free(w->last_use);
    free(w->seq);
    free(w->mark);
    free(w->list);
    free(w->keyed);
}

static bool split_work_alloc(const evo_graph *g, split_work *w)
{
    size_t nn = (size_t)g->n_nodes + 1, nv = (size_t)g->n_values + 1;
    w->stage_of = malloc(nn * sizeof(int32_t));
    w->pos = malloc(nn * sizeof(int32_t));
    w->last_use = malloc(nv * sizeof(int32_t));
    w->seq = malloc(nv * sizeof(int64_t));
    w->mark = malloc(nv * sizeof(int32_t));
    w->list = malloc(nv * sizeof(int32_t));
    w->keyed = malloc(nv * sizeof(split_keyed));
    return w->stage_of && w->pos && w->last_use && w->seq && w->mark && w->list && w->keyed;
}

evo_status evo_split_plan_finish(const evo_graph *g, evo_split_plan *plan, evo_error *err)
{
    const char *file = split_file(g);
    if (plan == NULL || plan->n_stages < 1 || plan->stages == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: a split plan needs at least one stage",
                             file);
    if (g->order == NULL && g->n_nodes > 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: the graph is not validated", file);
    split_work w;
    memset(&w, 0, sizeof w);
    if (!split_work_alloc(g, &w)) {
        split_work_free(&w);
        return split_nomem(g, err);
    }
    evo_status rv = EVO_OK;
    for (int32_t i = 0; i < g->n_nodes; i++)
        w.stage_of[i] = -1;
    for (int32_t v = 0; v < g->n_values; v++) {
        w.last_use[v] = -1;
        w.mark[v] = -1;
        w.seq[v] = INT64_MAX;
    }
    for (int32_t k = 0; k < g->n_order; k++) {
        const evo_node *n = &g->nodes[g->order[k]];
        for (int32_t o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0)
                w.seq[n->outputs[o]] = (int64_t)k * 65536 + (o < 65535 ? o : 65535);
    }
    /* Each node that runs in exactly one stage. */
    for (int32_t s = 0; s < plan->n_stages && rv == EVO_OK; s++) {
        const evo_split_stage *st = &plan->stages[s];
        if (st->n_nodes < 0 || (st->n_nodes > 0 && st->nodes == NULL))
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: stage %d has no node list", file,
                               (int)s);
        for (int32_t k = 0; k < st->n_nodes && rv == EVO_OK; k++) {
            int32_t i = st->nodes[k];
            if (i < 0 || i >= g->n_nodes)
                rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                                   "%s: stage %d lists node index %d, which does not exist", file,
                                   (int)s, (int)i);
            else if (w.stage_of[i] >= 0)
                rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                                   "%s: node '%s' (%s) is in stage %d and again in stage %d", file,
                                   g->nodes[i].name, g->nodes[i].op_type, (int)w.stage_of[i],
                                   (int)s);
            else if (!split_runs(g, i))
                rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                                   "%s: stage %d lists node '%s' (%s), which inference folded to "
                                   "a constant",
                                   file, (int)s, g->nodes[i].name, g->nodes[i].op_type);
            else {
                w.stage_of[i] = s;
                w.pos[i] = k;
            }
        }
    }
    /* Every read is of a constant, a graph input, or a tensor computed
     * earlier in the same stage or in an earlier stage. */
    for (int32_t s = 0; s < plan->n_stages && rv == EVO_OK; s++) {
        const evo_split_stage *st = &plan->stages[s];
        for (int32_t k = 0; k < st->n_nodes && rv == EVO_OK; k++) {
            const evo_node *n = &g->nodes[st->nodes[k]];
            for (int32_t j = 0; j < n->n_inputs && rv == EVO_OK; j++) {
                int32_t v = n->inputs[j];
                if (v < 0)
                    continue;
                const evo_value *val = &g->values[v];
                if (val->flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT))
                    continue;
                int32_t p = val->producer;
                int32_t ps = p >= 0 ? w.stage_of[p] : -1;
                if (ps < 0)
                    rv = evo_error_set(err, EVO_ERR_GRAPH,
                                       "%s: node '%s' (%s) in stage %d reads tensor '%s', which "
                                       "no stage computes",
                                       file, n->name, n->op_type, (int)s, val->name);
                else if (ps > s || (ps == s && w.pos[p] >= k))
                    rv = evo_error_set(err, EVO_ERR_GRAPH,
                                       "%s: node '%s' (%s) in stage %d reads tensor '%s' before "
                                       "it is computed (stage %d)",
                                       file, n->name, n->op_type, (int)s, val->name, (int)ps);
                else if (w.last_use[v] < s)
                    w.last_use[v] = s;
            }
        }
    }
    for (int32_t k = 0; k < g->n_outputs && rv == EVO_OK; k++) {
        const evo_value *val = &g->values[g->outputs[k]];
        if (val->flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT))
            continue;
        if (val->producer < 0 || w.stage_of[val->producer] < 0)
            rv = evo_error_set(err, EVO_ERR_GRAPH, "%s: graph output '%s' is computed by no stage",
                               file, val->name);
    }
    for (int32_t s = 0; s < plan->n_stages && rv == EVO_OK; s++) {
        evo_split_stage *st = &plan->stages[s];
        bool last = s == plan->n_stages - 1;
        /* inputs: graph inputs in graph order, then cut tensors by production */
        int32_t n = 0;
        for (int32_t k = 0; k < g->n_inputs; k++) {
            int32_t v = g->inputs[k];
            bool read = false;
            for (int32_t j = 0; j < st->n_nodes && !read; j++) {
                const evo_node *nd = &g->nodes[st->nodes[j]];
                for (int32_t x = 0; x < nd->n_inputs; x++)
                    read |= nd->inputs[x] == v;
            }
            /* a graph output that is a graph input passes through the last stage */
            if (last && (g->values[v].flags & EVO_VALUE_OUTPUT))
                read = true;
            if (read) {
                w.list[n++] = v;
                w.mark[v] = s;
            }
        }
        int32_t first_cross = n;
        for (int32_t j = 0; j < st->n_nodes; j++) {
            const evo_node *nd = &g->nodes[st->nodes[j]];
            for (int32_t x = 0; x < nd->n_inputs; x++) {
                int32_t v = nd->inputs[x];
                if (v < 0 || w.mark[v] == s ||
                    (g->values[v].flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT)))
                    continue;
                if (w.stage_of[g->values[v].producer] < s) {
                    w.list[n++] = v;
                    w.mark[v] = s;
                }
            }
        }
        split_sort_by_seq(w.list + first_cross, n - first_cross, w.seq, w.keyed);
        split_names_free(st->inputs, st->n_inputs);
        st->inputs = NULL;
        st->n_inputs = 0;
        if (split_set_names(g, w.list, n, &st->inputs, &st->n_inputs) != EVO_OK) {
            rv = split_nomem(g, err);
            break;
        }
        /* outputs: graph outputs made here (graph order), then tensors later
         * stages read, by production. mark uses stamp -2 - s for outputs. */
        n = 0;
        for (int32_t k = 0; k < g->n_outputs; k++) {
            int32_t v = g->outputs[k];
            const evo_value *val = &g->values[v];
            bool here = (val->flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT))
                            ? last
                            : w.stage_of[val->producer] == s;
            if (here && w.mark[v] != -2 - s) {
                w.list[n++] = v;
                w.mark[v] = -2 - s;
            }
        }
        first_cross = n;
        for (int32_t j = 0; j < st->n_nodes; j++) {
            const evo_node *nd = &g->nodes[st->nodes[j]];
            for (int32_t o = 0; o < nd->n_outputs; o++) {
                int32_t v = nd->outputs[o];
                if (v >= 0 && w.last_use[v] > s && w.mark[v] != -2 - s) {
                    w.list[n++] = v;
                    w.mark[v] = -2 - s;
                }
            }
        }
        split_sort_by_seq(w.list + first_cross, n - first_cross, w.seq, w.keyed);
        split_names_free(st->outputs, st->n_outputs);
        st->outputs = NULL;
        st->n_outputs = 0;
        if (split_set_names(g, w.list, n, &st->outputs, &st->n_outputs) != EVO_OK) {
            rv = split_nomem(g, err);
            break;
        }
    }
    split_work_free(&w);
    return rv;
}

/* needed[i]: node i runs and something it computes reaches a graph output. */
static bool *split_needed_nodes(const evo_graph *g)
{
    bool *needed = calloc((size_t)g->n_nodes + 1, sizeof *needed);
    bool *seen = calloc((size_t)g->n_values + 1, sizeof *seen);
    int32_t *stack = malloc(((size_t)g->n_values + 1) * sizeof *stack);
    if (needed == NULL || seen == NULL || stack == NULL) {
        free(needed);
        free(seen);
        free(stack);
        return NULL;
    }
    int32_t top = 0;
    for (int32_t k = 0; k < g->n_outputs; k++)
        if (!seen[g->outputs[k]]) {
            seen[g->outputs[k]] = true;
            stack[top++] = g->outputs[k];
        }
    while (top > 0) {
        const evo_value *val = &g->values[stack[--top]];
        int32_t p = val->producer;
        if (p < 0 || needed[p] || (val->flags & EVO_VALUE_CONST))
            continue;
        needed[p] = true;
        const evo_node *n = &g->nodes[p];
        for (int32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && !seen[n->inputs[k]]) {
                seen[n->inputs[k]] = true;
                stack[top++] = n->inputs[k];
            }
    }
    free(seen);
    free(stack);
    return needed;
}

static evo_status split_plan_alloc(const evo_graph *g, evo_split_plan *plan, int32_t n_stages,
                                   evo_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->stages = calloc((size_t)n_stages, sizeof *plan->stages);
    if (plan->stages == NULL)
        return split_nomem(g, err);
    plan->n_stages = n_stages;
    for (int32_t s = 0; s < n_stages; s++)
        if ((plan->stages[s].nodes = malloc(((size_t)g->n_nodes + 1) * sizeof(int32_t))) == NULL)
            return split_nomem(g, err);
    return EVO_OK;
}

evo_status evo_split_plan_from_ranges(const evo_graph *g, const int32_t *starts, size_t n_starts,
                                      evo_split_plan *out, evo_error *err)
{
    const char *file = split_file(g);
    memset(out, 0, sizeof *out);
    if (n_starts < 1 || starts == NULL || n_starts > (size_t)g->n_order + 1 ||
        n_starts > INT32_MAX / 2)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: a split needs between 1 and %d stage starts", file,
                             (int)g->n_order);
    if (starts[0] != 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: the first stage must start at 0", file);
    for (size_t k = 1; k < n_starts; k++)
        if (starts[k] <= starts[k - 1] || starts[k] >= g->n_order)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "%s: stage start %d (stage %zu) must be above the previous one "
                                 "and below the node count %d",
                                 file, (int)starts[k], k, (int)g->n_order);
    bool *needed = split_needed_nodes(g);
    if (needed == NULL)
        return split_nomem(g, err);
    evo_status rv = split_plan_alloc(g, out, (int32_t)n_starts, err);
    for (size_t s = 0; s < n_starts && rv == EVO_OK; s++) {
        int32_t end = s + 1 < n_starts ? starts[s + 1] : g->n_order;
        evo_split_stage *st = &out->stages[s];
        for (int32_t k = starts[s]; k < end; k++)
            if (needed[g->order[k]])
                st->nodes[st->n_nodes++] = g->order[k];
        if (st->n_nodes == 0)
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                               "%s: stage %zu (order positions %d..%d) has no node that runs", file,
                               s, (int)starts[s], (int)end - 1);
    }
    free(needed);
    if (rv == EVO_OK)
        rv = evo_split_plan_finish(g, out, err);
    if (rv != EVO_OK)
        evo_split_plan_free(out);
    return rv;
}

typedef struct split_cut {
    int32_t value;
    int32_t order_pos; /* position of its producer in g->order */
} split_cut;

static int split_cmp_cut(const void *pa, const void *pb)
{
    const split_cut *a = pa, *b = pb;
    return a->order_pos < b->order_pos ? -1 : a->order_pos > b->order_pos;
}

evo_status evo_split_plan_from_cuts(const evo_graph *g, const char *const *cuts, size_t n_cuts,
                                    evo_split_plan *out, evo_error *err)
{
    const char *file = split_file(g);
    memset(out, 0, sizeof *out);
    if (g->order == NULL && g->n_nodes > 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: the graph is not validated", file);
    if (n_cuts > (size_t)g->n_nodes || (n_cuts > 0 && cuts == NULL))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: %zu cuts for a graph of %d nodes", file,
                             n_cuts, (int)g->n_nodes);
    split_cut *cv = calloc(n_cuts + 1, sizeof *cv);
    int32_t *order_pos = malloc(((size_t)g->n_nodes + 1) * sizeof *order_pos);
    int32_t *stage_of = malloc(((size_t)g->n_nodes + 1) * sizeof *stage_of);
    int32_t *stack = malloc(((size_t)g->n_nodes + 1) * sizeof *stack);
    bool *is_cut = calloc((size_t)g->n_values + 1, sizeof *is_cut);
    bool *needed = split_needed_nodes(g);
    evo_status rv = EVO_OK;
    if (!cv || !order_pos || !stage_of || !stack || !is_cut || !needed) {
        rv = split_nomem(g, err);
        goto out;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        order_pos[i] = -1;
        stage_of[i] = -1;
    }
    for (int32_t k = 0; k < g->n_order; k++)
        order_pos[g->order[k]] = k;
    for (size_t k = 0; k < n_cuts; k++) {
        const char *name = cuts[k] ? cuts[k] : "";
        int32_t v = evo_graph_find_value(g, name);
        if (v < 0) {
            rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: cut tensor '%s' is not in the model",
                               file, name);
            goto out;
        }
        const evo_value *val = &g->values[v];
        if (val->flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST) || val->producer < 0) {
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                               "%s: cut tensor '%s' is a %s, not a tensor a node computes", file,
                               name,
                               (val->flags & EVO_VALUE_INPUT)   ? "graph input"
                               : (val->flags & EVO_VALUE_CONST) ? "constant"
                                                                : "tensor nothing defines");
            goto out;
        }
        if (is_cut[v]) {
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: cut tensor '%s' is given twice", file,
                               name);
            goto out;
        }
        if (!needed[val->producer]) {
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                               "%s: cut tensor '%s' does not lead to any graph output", file, name);
            goto out;
        }
        is_cut[v] = true;
        cv[k].value = v;
        cv[k].order_pos = order_pos[val->producer];
    }
    qsort(cv, n_cuts, sizeof *cv, split_cmp_cut);
    /* Stage k: everything cut k depends on that no earlier stage holds. An
     * assigned node's ancestors are all assigned already, so the walk stops
     * there. */
    for (size_t k = 0; k < n_cuts; k++) {
        int32_t p = g->values[cv[k].value].producer;
        if (stage_of[p] >= 0) {
            /* Sorted by producer position, so only a cut of the same node
             * can have claimed it. */
            const char *other = "";
            for (size_t j = 0; j < k; j++)
                if (g->values[cv[j].value].producer == p)
                    other = g->values[cv[j].value].name;
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                               "%s: cut tensor '%s' is computed by the same node as cut '%s'; "
                               "a stage boundary cannot fall inside a node",
                               file, g->values[cv[k].value].name, other);
            goto out;
        }
        int32_t top = 0;
        stage_of[p] = (int32_t)k;
        stack[top++] = p;
        while (top > 0) {
            const evo_node *n = &g->nodes[stack[--top]];
            for (int32_t j = 0; j < n->n_inputs; j++) {
                int32_t x = n->inputs[j];
                if (x < 0 || (g->values[x].flags & EVO_VALUE_CONST))
                    continue;
                int32_t q = g->values[x].producer;
                if (q >= 0 && stage_of[q] < 0) {
                    stage_of[q] = (int32_t)k;
                    stack[top++] = q;
                }
            }
        }
    }
    if ((rv = split_plan_alloc(g, out, (int32_t)n_cuts + 1, err)) != EVO_OK)
        goto out;
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        if (!needed[i])
            continue;
        int32_t s = stage_of[i] >= 0 ? stage_of[i] : (int32_t)n_cuts;
        stage_of[i] = s;
        out->stages[s].nodes[out->stages[s].n_nodes++] = i;
    }
    if (out->stages[n_cuts].n_nodes == 0) {
        rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "%s: cut tensor '%s' leaves nothing to compute after it (every graph "
                           "output is computed before it)",
                           file, n_cuts > 0 ? g->values[cv[n_cuts - 1].value].name : "");
        goto out;
    }
    /* Separation: apart from inputs and constants, only cut tensors may be
     * read in a later stage than the one computing them. */
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        if (!needed[i])
            continue;
        const evo_node *n = &g->nodes[i];
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t x = n->inputs[j];
            if (x < 0 || (g->values[x].flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT)))
                continue;
            int32_t q = g->values[x].producer;
            int32_t t = q >= 0 ? stage_of[q] : -1;
            if (t >= 0 && t < stage_of[i] && !is_cut[x]) {
                rv = evo_error_set(err, EVO_ERR_GRAPH,
                                   "%s: cut '%s' does not separate the graph: tensor '%s' is "
                                   "computed before it and also read after it, by node '%s' (%s)",
                                   file, g->values[cv[t].value].name, g->values[x].name, n->name,
                                   n->op_type);
                goto out;
            }
        }
    }
    rv = evo_split_plan_finish(g, out, err);
out:
    if (rv != EVO_OK)
        evo_split_plan_free(out);
    free(cv);
    free(order_pos);
    free(stage_of);
    free(stack);
    free(is_cut);
    free(needed);
    return rv;
}

evo_status evo_split_extract(const evo_graph *g, const evo_split_plan *plan, int32_t stage,
                             evo_graph **out, evo_error *err)
{
    const char *file = split_file(g);
    *out = NULL;
    if (plan == NULL || stage < 0 || stage >= plan->n_stages)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: stage %d is not in the plan", file,
                             (int)stage);
    const evo_split_stage *st = &plan->stages[stage];
    int32_t *in = malloc(((size_t)st->n_inputs + 1) * sizeof *in);
    int32_t *outs = malloc(((size_t)st->n_outputs + 1) * sizeof *outs);
    evo_status rv = EVO_OK;
    if (in == NULL || outs == NULL)
        rv = split_nomem(g, err);
    for (int32_t k = 0; k < st->n_inputs && rv == EVO_OK; k++)
        if ((in[k] = evo_graph_find_value(g, st->inputs[k])) < 0)
            rv = evo_error_set(err, EVO_ERR_NOT_FOUND,
                               "%s: stage %d input '%s' is not in the "
                               "model",
                               file, (int)stage, st->inputs[k]);
    for (int32_t k = 0; k < st->n_outputs && rv == EVO_OK; k++)
        if ((outs[k] = evo_graph_find_value(g, st->outputs[k])) < 0)
            rv = evo_error_set(err, EVO_ERR_NOT_FOUND,
                               "%s: stage %d output '%s' is not in the "
                               "model",
                               file, (int)stage, st->outputs[k]);
    for (int32_t k = 0; k < st->n_nodes && rv == EVO_OK; k++)
        if (st->nodes[k] < 0 || st->nodes[k] >= g->n_nodes)
            rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                               "%s: stage %d lists node index %d, "
                               "which does not exist",
                               file, (int)stage, (int)st->nodes[k]);
    if (rv == EVO_OK) {
        const char *base = g->name && g->name[0] ? g->name : "graph";
        size_t len = strlen(base) + 32;
        char *name = malloc(len);
        if (name == NULL) {
            rv = split_nomem(g, err);
        } else {
            snprintf(name, len, "%s_stage%d", base, (int)stage);
            /* Constants are copied (move_consts false), so g is not changed. */
            rv = evo_graph_extract((evo_graph *)g, st->nodes, st->n_nodes, in, st->n_inputs, outs,
                                   st->n_outputs, false, name, out, err);
            free(name);
        }
    }
    free(in);
    free(outs);
    return rv;
}
