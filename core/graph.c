/*
 * The graph IR container: values, nodes, attributes, name lookup, validation
 * and topological order. Hosted code: it allocates with malloc and owns
 * everything it points to (see include/evo/graph.h).
 */
#include <stdlib.h>
#include <string.h>

#include "evo/graph.h"

static char *graph_strdup(const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Grow *arr (of elem bytes) so that it holds at least need entries. */
static evo_status graph_reserve(void **arr, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap)
        return EVO_OK;
    if (need > INT32_MAX / 2)
        return EVO_ERR_LIMIT;
    int32_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (p == NULL)
        return EVO_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return EVO_OK;
}

evo_graph *evo_graph_new(void)
{
    return calloc(1, sizeof(evo_graph));
}

static void graph_attr_free(evo_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->strings != NULL)
        for (size_t i = 0; i < a->count; i++)
            free(a->strings[i]);
    free(a->strings);
    free(a->tensor.data);
}

void evo_graph_free(evo_graph *g)
{
    if (g == NULL)
        return;
    for (int32_t i = 0; i < g->n_values; i++) {
        evo_value *v = &g->values[i];
        free(v->name);
        if (v->flags & EVO_VALUE_CONST)
            free(v->t.data);
        if (v->dim_params != NULL)
            for (int32_t d = 0; d < EVO_MAX_RANK; d++)
                free(v->dim_params[d]);
        free(v->dim_params);
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        evo_node *n = &g->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free(n->inputs);
        free(n->outputs);
        for (int32_t a = 0; a < n->n_attrs; a++)
            graph_attr_free(&n->attrs[a]);
        free(n->attrs);
    }
    for (int32_t i = 0; i < g->n_opsets; i++)
        free(g->opsets[i].domain);
    free(g->opsets);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->order);
    free(g->name);
    free(g->source_path);
    free(g->producer_name);
    free(g->name_slots);
    free(g);
}

/* ---------------------------------------------------------------- name index */

static uint32_t graph_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static evo_status graph_index_rebuild(evo_graph *g, uint32_t nslots)
{
    int32_t *slots = malloc(nslots * sizeof *slots);
    if (slots == NULL)
        return EVO_ERR_NOMEM;
    for (uint32_t i = 0; i < nslots; i++)
        slots[i] = -1;
    for (int32_t v = 0; v < g->n_values; v++) {
        uint32_t h = graph_hash(g->values[v].name) & (nslots - 1);
        while (slots[h] >= 0)
            h = (h + 1) & (nslots - 1);
        slots[h] = v;
    }
    free(g->name_slots);
    g->name_slots = slots;
    g->n_name_slots = nslots;
    return EVO_OK;
}

int32_t evo_graph_find_value(const evo_graph *g, const char *name)
{
    if (g->n_name_slots == 0 || name == NULL)
        return -1;
    uint32_t mask = g->n_name_slots - 1;
    for (uint32_t h = graph_hash(name) & mask;; h = (h + 1) & mask) {
        int32_t v = g->name_slots[h];
        if (v < 0)
            return -1;
        if (strcmp(g->values[v].name, name) == 0)
            return v;
    }
}

evo_status evo_graph_add_value(evo_graph *g, const char *name, int32_t *out_index)
{
    if (name == NULL)
        name = "";
    if (evo_graph_find_value(g, name) >= 0)
        return EVO_ERR_GRAPH;
    evo_status rv =
        graph_reserve((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(evo_value));
    if (rv != EVO_OK)
        return rv;
    evo_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = graph_strdup(name);
    if (v->name == NULL)
        return EVO_ERR_NOMEM;
    v->producer = -1;
    int32_t idx = g->n_values++;
    /* Keep the hash at most half full. */
    if ((uint32_t)g->n_values * 2 > g->n_name_slots) {
        uint32_t n = g->n_name_slots ? g->n_name_slots * 2 : 64;
        while ((uint32_t)g->n_values * 2 > n)
            n *= 2;
        if ((rv = graph_index_rebuild(g, n)) != EVO_OK) {
            g->n_values--;
            free(v->name);
            return rv;
        }
    } else {
        uint32_t mask = g->n_name_slots - 1;
        uint32_t h = graph_hash(v->name) & mask;
        while (g->name_slots[h] >= 0)
            h = (h + 1) & mask;
        g->name_slots[h] = idx;
    }
    if (out_index != NULL)
        *out_index = idx;
    return EVO_OK;
}

evo_status evo_graph_get_or_add_value(evo_graph *g, const char *name, int32_t *out_index)
{
    int32_t v = evo_graph_find_value(g, name);
    if (v >= 0) {
        *out_index = v;
        return EVO_OK;
    }
    return evo_graph_add_value(g, name, out_index);
}

/* ---------------------------------------------------------------- nodes */

evo_status evo_graph_add_node(evo_graph *g, const char *op_type, const char *domain,
                              const char *name, const int32_t *inputs, int32_t n_inputs,
                              const int32_t *outputs, int32_t n_outputs, int32_t *out_index)
{
    if (n_inputs < 0 || n_outputs < 0)
        return EVO_ERR_INVALID_ARG;
    evo_status rv =
        graph_reserve((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(evo_node));
    if (rv != EVO_OK)
        return rv;
    evo_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = graph_strdup(op_type);
    n->domain = graph_strdup(domain);
    n->name = graph_strdup(name);
    n->inputs = malloc(((size_t)n_inputs + 1) * sizeof(int32_t));
    n->outputs = malloc(((size_t)n_outputs + 1) * sizeof(int32_t));
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs) {
        free(n->op_type);
        free(n->domain);
        free(n->name);
        free(n->inputs);
        free(n->outputs);
        return EVO_ERR_NOMEM;
    }
    if (n_inputs > 0)
        memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof(int32_t));
    if (n_outputs > 0)
        memcpy(n->outputs, outputs, (size_t)n_outputs * sizeof(int32_t));
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    if (out_index != NULL)
        *out_index = g->n_nodes;
    g->n_nodes++;
    return EVO_OK;
}

evo_status evo_node_add_attr(evo_graph *g, int32_t node, evo_attr *attr)
{
    evo_node *n = &g->nodes[node];
    int32_t cap = n->n_attrs; /* attrs grow one by one; counts are small */
    void *p = realloc(n->attrs, ((size_t)cap + 1) * sizeof(evo_attr));
    if (p == NULL) {
        graph_attr_free(attr);
        return EVO_ERR_NOMEM;
    }
    n->attrs = p;
    n->attrs[n->n_attrs++] = *attr;
    return EVO_OK;
}

evo_status evo_value_set_const(evo_graph *g, int32_t value, evo_dtype dtype, const evo_shape *shape,
                               void *data)
{
    evo_value *v = &g->values[value];
    if (v->flags & EVO_VALUE_CONST)
        free(v->t.data);
    v->t.dtype = dtype;
    v->t.shape = *shape;
    v->t.data = data;
    v->flags |= EVO_VALUE_CONST | EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    return EVO_OK;
}

/* ---------------------------------------------------------------- validation */

evo_status evo_graph_validate(evo_graph *g, evo_error *err)
{
    const char *file = g->source_path ? g->source_path : "graph";
    for (int32_t v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;

    /* Producers: each value written by at most one node, never by a node
     * when it is a graph input or constant. */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        evo_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_outputs; k++) {
            int32_t o = n->outputs[k];
            if (o < 0)
                continue;
            if (o >= g->n_values)
                return evo_error_set(err, EVO_ERR_INTERNAL,
                                     "%s: node '%s' output index out of range", file, n->name);
            evo_value *v = &g->values[o];
            if (v->producer >= 0 || (v->flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST)))
                return evo_error_set(
                    err, EVO_ERR_GRAPH,
                    "%s: tensor '%s' is defined twice (node '%s' (%s) writes it again)", file,
                    v->name, n->name, n->op_type);
            v->producer = i;
        }
    }
    /* Every input defined. */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        evo_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_inputs; k++) {
            int32_t x = n->inputs[k];
            if (x < 0)
                continue;
            if (x >= g->n_values)
                return evo_error_set(err, EVO_ERR_INTERNAL,
                                     "%s: node '%s' input index out of range", file, n->name);
            evo_value *v = &g->values[x];
            if (v->producer < 0 && !(v->flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST)))
                return evo_error_set(err, EVO_ERR_GRAPH,
                                     "%s: node '%s' (%s) reads tensor '%s', which nothing defines",
                                     file, n->name, n->op_type, v->name);
        }
    }
    for (int32_t k = 0; k < g->n_outputs; k++) {
        evo_value *v = &g->values[g->outputs[k]];
        if (v->producer < 0 && !(v->flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST)))
            return evo_error_set(err, EVO_ERR_GRAPH, "%s: graph output '%s' is never computed",
                                 file, v->name);
    }

    /* Kahn's algorithm in file order (stable: keeps the exporter's order when
     * it is already topological). pending[i] counts producer nodes not yet
     * scheduled, one per input edge. */
    int32_t *pending = calloc((size_t)g->n_nodes + 1, sizeof(int32_t));
    int32_t *order = malloc(((size_t)g->n_nodes + 1) * sizeof(int32_t));
    /* consumers as CSR: for each value, the nodes reading it */
    int32_t *cstart = calloc((size_t)g->n_values + 1, sizeof(int32_t));
    int64_t n_edges = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        n_edges += g->nodes[i].n_inputs;
    int32_t *cons = malloc(((size_t)n_edges + 1) * sizeof(int32_t));
    if (!pending || !order || !cstart || !cons) {
        free(pending);
        free(order);
        free(cstart);
        free(cons);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory validating graph", file);
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) {
            int32_t x = g->nodes[i].inputs[k];
            if (x >= 0 && g->values[x].producer >= 0) {
                cstart[x + 1]++;
                pending[i]++;
            }
        }
    for (int32_t v = 0; v < g->n_values; v++)
        cstart[v + 1] += cstart[v];
    {
        int32_t *fill = calloc((size_t)g->n_values + 1, sizeof(int32_t));
        if (fill == NULL) {
            free(pending);
            free(order);
            free(cstart);
            free(cons);
            return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory validating graph", file);
        }
        for (int32_t i = 0; i < g->n_nodes; i++)
            for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) {
                int32_t x = g->nodes[i].inputs[k];
                if (x >= 0 && g->values[x].producer >= 0)
                    cons[cstart[x] + fill[x]++] = i;
            }
        free(fill);
    }
    /* A simple ready-queue in index order: scan repeatedly is O(n^2) in the
     * worst case; a queue keeps it linear. */
    int32_t head = 0, tail = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (pending[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        evo_node *n = &g->nodes[order[head++]];
        for (int32_t k = 0; k < n->n_outputs; k++) {
            int32_t o = n->outputs[k];
            if (o < 0)
                continue;
            for (int32_t c = cstart[o]; c < cstart[o + 1]; c++)
                if (--pending[cons[c]] == 0)
                    order[tail++] = cons[c];
        }
    }
    evo_status rv = EVO_OK;
    if (tail != g->n_nodes) {
        int32_t stuck = 0;
        while (stuck < g->n_nodes && pending[stuck] == 0)
            stuck++;
        rv = evo_error_set(err, EVO_ERR_GRAPH, "%s: the graph has a cycle through node '%s' (%s)",
                           file, g->nodes[stuck].name, g->nodes[stuck].op_type);
        free(order);
    } else {
        free(g->order);
        g->order = order;
        g->n_order = tail;
    }
    free(pending);
    free(cstart);
    free(cons);
    return rv;
}

/* ---------------------------------------------------------------- dim binding */

evo_status evo_graph_bind_dims(evo_graph *g, const evo_dim_binding *dims, size_t n_dims,
                               evo_error *err)
{
    const char *file = g->source_path ? g->source_path : "graph";
    for (size_t b = 0; b < n_dims; b++)
        if (dims[b].value < 0 || dims[b].value > EVO_MAX_DIM)
            return evo_error_set(err, EVO_ERR_INVALID_ARG, "--dim %s=%lld: value out of range",
                                 dims[b].name, (long long)dims[b].value);
    for (int32_t k = 0; k < g->n_inputs; k++) {
        evo_value *v = &g->values[g->inputs[k]];
        if (!(v->flags & EVO_VALUE_HAS_SHAPE))
            continue;
        for (int32_t d = 0; d < v->t.shape.rank; d++) {
            if (v->t.shape.dims[d] >= 0)
                continue;
            const char *param = v->dim_params ? v->dim_params[d] : NULL;
            bool bound = false;
            for (size_t b = 0; b < n_dims && param && param[0]; b++)
                if (strcmp(dims[b].name, param) == 0) {
                    v->t.shape.dims[d] = (int32_t)dims[b].value;
                    bound = true;
                }
            if (bound)
                continue;
            if (d == 0) {
                v->t.shape.dims[d] = 1; /* the default batch of 1 */
                continue;
            }
            if (param && param[0])
                return evo_error_set(
                    err, EVO_ERR_SHAPE,
                    "%s: input '%s' dim %d is symbolic ('%s'); bind it with --dim %s=VALUE", file,
                    v->name, (int)d, param, param);
            return evo_error_set(
                err, EVO_ERR_SHAPE,
                "%s: input '%s' dim %d has no size and no name; it cannot be bound", file, v->name,
                (int)d);
        }
    }
    return EVO_OK;
}
