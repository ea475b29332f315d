/*
 * Stages: consecutive ranges of a model's topological order, their boundary
 * tensors, their programs, and the blobs nodes receive.
 *
 * A stage is compiled over a *view* of the source graph: a shallow copy of
 * the evo_graph whose node table holds only the stage's nodes and whose
 * inputs and outputs are the stage's boundary tensors. The program builder
 * only reads the graph, so the view borrows everything (values, constant
 * data, params) from the source graph and costs no copy of the weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "evo/modeldb.h"

void coord_stage_def_free(coord_stage_def *s)
{
    if (s == NULL)
        return;
    for (int32_t i = 0; i < s->n_inputs; i++)
        free(s->inputs[i]);
    for (int32_t i = 0; i < s->n_outputs; i++)
        free(s->outputs[i]);
    free(s->inputs);
    free(s->outputs);
    s->inputs = s->outputs = NULL;
    s->n_inputs = s->n_outputs = 0;
}

static evo_status coord_names_push(char ***names, int32_t *n, const char *name, evo_error *err)
{
    char **grown = realloc(*names, ((size_t)*n + 1) * sizeof *grown);
    if (grown == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory listing stage tensors");
    *names = grown;
    if ((grown[*n] = strdup(name)) == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory listing stage tensors");
    (*n)++;
    return EVO_OK;
}

evo_status coord_stages_finish(const evo_graph *g, coord_stage_def *st, int32_t n, evo_error *err)
{
    if (n <= 0 || g->n_order != g->n_nodes)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a split needs stages of a validated graph");
    for (int32_t k = 0; k < n; k++) {
        if (st[k].first < 0 || st[k].last > g->n_order || st[k].first >= st[k].last ||
            (k > 0 && st[k].first != st[k - 1].last))
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "stage %d: range [%d, %d) is not the continuation of the split",
                                 (int)k, (int)st[k].first, (int)st[k].last);
        coord_stage_def_free(&st[k]);
    }
    if (st[0].first != 0 || st[n - 1].last != g->n_order)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "the stages do not cover the whole model");
    size_t nv = (size_t)g->n_values;
    int32_t *avail = malloc(nv * sizeof *avail);       /* stage that makes it (-1: input) */
    int32_t *last_use = malloc(nv * sizeof *last_use); /* last stage reading it (n: caller) */
    int32_t *stage_of = malloc((size_t)g->n_nodes * sizeof *stage_of);
    evo_status rv = EVO_OK;
    if (avail == NULL || last_use == NULL || stage_of == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory splitting the model");
        goto done;
    }
    for (int32_t k = 0; k < n; k++)
        for (int32_t p = st[k].first; p < st[k].last; p++)
            stage_of[g->order[p]] = k;
    for (size_t v = 0; v < nv; v++) {
        avail[v] = -2; /* unknown: not available (never produced) */
        last_use[v] = -1;
    }
    for (int32_t k = 0; k < g->n_inputs; k++)
        avail[g->inputs[k]] = -1;
    for (int32_t ni = 0; ni < g->n_nodes; ni++) {
        const evo_node *nd = &g->nodes[ni];
        for (int32_t o = 0; o < nd->n_outputs; o++)
            if (nd->outputs[o] >= 0 && avail[nd->outputs[o]] == -2)
                avail[nd->outputs[o]] = stage_of[ni];
        for (int32_t i = 0; i < nd->n_inputs; i++) {
            int32_t v = nd->inputs[i];
            if (v >= 0 && !(g->values[v].flags & EVO_VALUE_CONST) && last_use[v] < stage_of[ni])
                last_use[v] = stage_of[ni];
        }
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        last_use[g->outputs[k]] = n;
    for (int32_t k = 0; k < n && rv == EVO_OK; k++) {
        for (size_t v = 0; v < nv && rv == EVO_OK; v++) {
            const evo_value *val = &g->values[v];
            bool is_input = avail[v] == -1;
            if ((val->flags & EVO_VALUE_CONST) && !is_input)
                continue;
            if (avail[v] == -2)
                continue;
            /* An input of stage k: made before k, needed at k or later. */
            if (avail[v] < k && last_use[v] >= k)
                rv = coord_names_push(&st[k].inputs, &st[k].n_inputs, val->name, err);
            /* An output: available after k, needed after k. */
            if (rv == EVO_OK && avail[v] <= k && last_use[v] > k)
                rv = coord_names_push(&st[k].outputs, &st[k].n_outputs, val->name, err);
        }
        /* The last stage's outputs are the graph outputs, in graph order. */
        if (rv == EVO_OK && k == n - 1) {
            for (int32_t i = 0; i < st[k].n_outputs; i++)
                free(st[k].outputs[i]);
            st[k].n_outputs = 0;
            for (int32_t i = 0; i < g->n_outputs && rv == EVO_OK; i++)
                rv = coord_names_push(&st[k].outputs, &st[k].n_outputs,
                                      g->values[g->outputs[i]].name, err);
        }
    }
done:
    free(avail);
    free(last_use);
    free(stage_of);
    return rv;
}

void coord_stage_prog_free(coord_stage_prog *p)
{
    if (p == NULL)
        return;
    evo_program_free(p->prog);
    free(p->nodes);
    free(p->order);
    free(p->inputs);
    free(p->outputs);
    memset(p, 0, sizeof *p);
}

evo_status coord_stage_compile(const evo_graph *g, const coord_stage_def *s, coord_stage_prog *out,
                               evo_error *err)
{
    memset(out, 0, sizeof *out);
    int32_t nn = s->last - s->first;
    if (s->first < 0 || nn <= 0 || s->last > g->n_order)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "stage range [%d, %d) is outside the model",
                             (int)s->first, (int)s->last);
    out->nodes = malloc((size_t)nn * sizeof *out->nodes);
    out->order = malloc((size_t)nn * sizeof *out->order);
    out->inputs = malloc(((size_t)s->n_inputs + 1) * sizeof *out->inputs);
    out->outputs = malloc(((size_t)s->n_outputs + 1) * sizeof *out->outputs);
    if (!out->nodes || !out->order || !out->inputs || !out->outputs) {
        coord_stage_prog_free(out);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory compiling a stage");
    }
    for (int32_t i = 0; i < nn; i++) {
        out->nodes[i] = g->nodes[g->order[s->first + i]];
        out->order[i] = i;
    }
    for (int32_t i = 0; i < s->n_inputs; i++) {
        int32_t v = evo_graph_find_value(g, s->inputs[i]);
        if (v < 0) {
            coord_stage_prog_free(out);
            return evo_error_set(err, EVO_ERR_NOT_FOUND, "stage input '%s' is not in the model",
                                 s->inputs[i]);
        }
        out->inputs[i] = v;
    }
    for (int32_t i = 0; i < s->n_outputs; i++) {
        int32_t v = evo_graph_find_value(g, s->outputs[i]);
        if (v < 0) {
            coord_stage_prog_free(out);
            return evo_error_set(err, EVO_ERR_NOT_FOUND, "stage output '%s' is not in the model",
                                 s->outputs[i]);
        }
        out->outputs[i] = v;
    }
    out->view = *g;
    out->view.nodes = out->nodes;
    out->view.n_nodes = out->view.cap_nodes = nn;
    out->view.order = out->order;
    out->view.n_order = nn;
    out->view.inputs = out->inputs;
    out->view.n_inputs = s->n_inputs;
    out->view.outputs = out->outputs;
    out->view.n_outputs = s->n_outputs;
    evo_status rv = evo_program_build(&out->view, NULL, &out->prog, err);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "stage [%d, %d)", (int)s->first, (int)s->last);
        coord_stage_prog_free(out);
    }
    return rv;
}

evo_status coord_import_onnx(const void *onnx, size_t len, const char *name, evo_graph **out,
                             evo_error *err)
{
    evo_import_options opt;
    memset(&opt, 0, sizeof opt);
    evo_graph *g = NULL;
    evo_status rv = evo_onnx_load_buffer(onnx, len, NULL, name, &opt, &g, err);
    if (rv == EVO_OK)
        rv = evo_graph_bind_dims(g, NULL, 0, err);
    if (rv == EVO_OK)
        rv = evo_graph_infer(g, &opt, NULL, err);
    if (rv != EVO_OK) {
        evo_graph_free(g);
        g = NULL;
    }
    *out = g;
    return rv;
}

/* ---------------------------------------------------------------- blobs (interim format) */

static cJSON *coord_names_json(char **names, int32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    return a;
}

evo_status coord_stage_blob_make(const void *onnx, size_t onnx_len, const coord_stage_def *s,
                                 void **blob, size_t *blob_len, evo_error *err)
{
    *blob = NULL;
    *blob_len = 0;
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "first", s->first);
    cJSON_AddNumberToObject(h, "last", s->last);
    cJSON_AddItemToObject(h, "inputs", coord_names_json(s->inputs, s->n_inputs));
    cJSON_AddItemToObject(h, "outputs", coord_names_json(s->outputs, s->n_outputs));
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (text == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory writing a stage header");
    size_t hl = strlen(text);
    size_t total = 8 + 4 + hl + onnx_len;
    unsigned char *b = malloc(total);
    if (b == NULL) {
        free(text);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory building a %zu-byte stage", total);
    }
    memcpy(b, COORD_STAGE_MAGIC, 8); /* includes the NUL */
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + 12, text, hl);
    memcpy(b + 12 + hl, onnx, onnx_len);
    free(text);
    *blob = b;
    *blob_len = total;
    return EVO_OK;
}

void coord_stage_run_free(coord_stage_run *r)
{
    if (r == NULL)
        return;
    coord_stage_prog_free(&r->sp);
    coord_stage_def_free(&r->def);
    evo_graph_free(r->graph);
    free(r->arena);
    memset(r, 0, sizeof *r);
}

static evo_status coord_names_from_json(const cJSON *a, char ***names, int32_t *n, evo_error *err)
{
    if (!cJSON_IsArray(a))
        return evo_error_set(err, EVO_ERR_PARSE, "stage header: tensor list is not an array");
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it))
            return evo_error_set(err, EVO_ERR_PARSE, "stage header: tensor name is not a string");
        evo_status rv = coord_names_push(names, n, it->valuestring, err);
        if (rv != EVO_OK)
            return rv;
    }
    return EVO_OK;
}

evo_status coord_stage_load(const void *blob, size_t len, const char *what, coord_stage_run *out,
                            evo_error *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = blob;
    if (len < 12 || memcmp(b, COORD_STAGE_MAGIC, 8) != 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: not an evo stage blob", what);
    uint32_t hl =
        (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
    if (hl > len - 12)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: stage header is longer than the blob", what);
    cJSON *h = cJSON_ParseWithLength((const char *)b + 12, hl);
    evo_status rv = EVO_OK;
    if (h == NULL) {
        rv = evo_error_set(err, EVO_ERR_PARSE, "%s: stage header is not JSON", what);
        goto fail;
    }
    out->def.first = (int32_t)coord_json_num(h, "first", -1);
    out->def.last = (int32_t)coord_json_num(h, "last", -1);
    if ((rv = coord_names_from_json(cJSON_GetObjectItem(h, "inputs"), &out->def.inputs,
                                    &out->def.n_inputs, err)) != EVO_OK ||
        (rv = coord_names_from_json(cJSON_GetObjectItem(h, "outputs"), &out->def.outputs,
                                    &out->def.n_outputs, err)) != EVO_OK)
        goto fail;
    if ((rv = coord_import_onnx(b + 12 + hl, len - 12 - hl, what, &out->graph, err)) != EVO_OK)
        goto fail;
    if (out->def.first < 0 || out->def.last > out->graph->n_order ||
        out->def.first >= out->def.last) {
        rv = evo_error_set(err, EVO_ERR_PARSE, "%s: stage range [%d, %d) is outside the model",
                           what, (int)out->def.first, (int)out->def.last);
        goto fail;
    }
    for (int32_t i = 0; i < out->def.n_inputs; i++) {
        int32_t v = evo_graph_find_value(out->graph, out->def.inputs[i]);
        if (v >= 0 && (out->graph->values[v].flags & EVO_VALUE_CONST) &&
            !(out->graph->values[v].flags & EVO_VALUE_INPUT)) {
            rv = evo_error_set(err, EVO_ERR_PARSE, "%s: stage input '%s' is a constant", what,
                               out->def.inputs[i]);
            goto fail;
        }
    }
    if ((rv = coord_stage_compile(out->graph, &out->def, &out->sp, err)) != EVO_OK)
        goto fail;
    out->arena_bytes = evo_program_arena_size(out->sp.prog);
    out->need_bytes = out->sp.prog->weights_bytes + out->arena_bytes;
    cJSON_Delete(h);
    return EVO_OK;
fail:
    cJSON_Delete(h);
    coord_stage_run_free(out);
    return rv;
}
