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
#include "evo/evm.h"
#include "evo/modeldb.h"
#include "evo/split.h"

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

/* ---------------------------------------------------------------- stage blobs (.evm) */

static void coord_sha256_cb(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES],
                            void *user)
{
    (void)user;
    evo_sha256(data, len, out);
}

/* True if name is one of names[0..n). */
static bool coord_names_has(char *const *names, int32_t n, const char *name)
{
    for (int32_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

void coord_stage_blobs_free(coord_stage_blob *b, int32_t n)
{
    for (int32_t k = 0; b && k < n; k++) {
        free(b[k].evm);
        for (int32_t i = 0; i < b[k].n_pass; i++)
            free(b[k].pass[i]);
        free(b[k].pass);
    }
    free(b);
}

/* Not a hash: the planner sizes candidate stages by writing them, and the
 * digest does not change the size. */
static void coord_sha256_none(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES],
                              void *user)
{
    (void)data;
    (void)len;
    (void)user;
    memset(out, 0, EVO_EVM_DIGEST_BYTES);
}

/* Extract stage k of plan, compile it and write it as .evm into b. */
static evo_status coord_stage_evm(const evo_graph *g, const evo_split_plan *plan, int32_t k,
                                  evo_evm_sha256_fn sha, coord_stage_blob *b, evo_error *err)
{
    evo_graph *sg = NULL;
    evo_program *prog = NULL;
    evo_status rv;
    if ((rv = evo_split_extract(g, plan, k, &sg, err)) == EVO_OK &&
        (rv = evo_program_build(sg, NULL, &prog, err)) == EVO_OK) {
        evo_evm_write_options wo = {.strip_names = false};
        rv = evo_evm_write(prog, &wo, sha, NULL, &b->evm, &b->evm_len, err);
    }
    evo_evm_info info;
    if (rv == EVO_OK && (rv = evo_evm_read_header(b->evm, b->evm_len, &info, err)) == EVO_OK) {
        b->weights_bytes = prog->weights_bytes;
        b->arena_bytes = evo_program_arena_size(prog);
        b->work_bytes = evo_evm_work_size(&info);
        b->need_bytes = (uint64_t)b->evm_len + b->arena_bytes + b->work_bytes;
        for (int32_t i = 0; i < prog->n_inputs; i++)
            b->in_bytes += prog->tensors[prog->inputs[i]].nbytes;
        for (int32_t i = 0; i < prog->n_outputs; i++)
            b->out_bytes += prog->tensors[prog->outputs[i]].nbytes;
    }
    evo_program_free(prog);
    evo_graph_free(sg);
    return rv;
}

evo_status coord_stage_need(const evo_graph *g, int32_t a, int32_t b, uint64_t *need,
                            evo_error *err)
{
    if (a < 0 || b > g->n_order || a >= b)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "stage range [%d, %d) is outside %s", (int)a,
                             (int)b, g->name);
    int32_t starts[3], n = 0, mid;
    if (a > 0)
        starts[n++] = 0;
    mid = n;
    starts[n++] = a;
    if (b < g->n_order)
        starts[n++] = b;
    evo_split_plan plan;
    memset(&plan, 0, sizeof plan);
    coord_stage_blob blob;
    memset(&blob, 0, sizeof blob);
    evo_status rv = evo_split_plan_from_ranges(g, starts, (size_t)n, &plan, err);
    if (rv == EVO_OK &&
        (rv = coord_stage_evm(g, &plan, mid, coord_sha256_none, &blob, err)) == EVO_OK)
        *need = blob.need_bytes;
    free(blob.evm);
    evo_split_plan_free(&plan);
    return rv;
}

evo_status coord_stage_blobs_make(const evo_graph *g, const coord_stage_def *st, int32_t n,
                                  coord_stage_blob **out, evo_error *err)
{
    *out = NULL;
    if (n <= 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a split needs at least one stage");
    int32_t *starts = malloc((size_t)n * sizeof *starts);
    coord_stage_blob *b = calloc((size_t)n, sizeof *b);
    if (starts == NULL || b == NULL) {
        free(starts);
        free(b);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory splitting %s", g->name);
    }
    for (int32_t k = 0; k < n; k++)
        starts[k] = st[k].first;
    evo_split_plan plan;
    memset(&plan, 0, sizeof plan);
    evo_status rv = evo_split_plan_from_ranges(g, starts, (size_t)n, &plan, err);
    free(starts);
    if (rv == EVO_OK && plan.n_stages != n)
        rv = evo_error_set(err, EVO_ERR_GRAPH, "splitting %s made %d stages instead of %d", g->name,
                           (int)plan.n_stages, (int)n);
    for (int32_t k = 0; k < n && rv == EVO_OK; k++) {
        const evo_split_stage *ss = &plan.stages[k];
        rv = coord_stage_evm(g, &plan, k, coord_sha256_cb, &b[k], err);
        /* Tensors stage k must pass on untouched: what the chain needs after
         * k (st[k].outputs) that the stage's program does not compute. */
        for (int32_t i = 0; i < st[k].n_outputs && rv == EVO_OK; i++)
            if (!coord_names_has(ss->outputs, ss->n_outputs, st[k].outputs[i]))
                rv = coord_names_push(&b[k].pass, &b[k].n_pass, st[k].outputs[i], err);
        if (rv != EVO_OK)
            evo_error_prefix(err, "stage %d of %s", (int)k, g->name);
    }
    evo_split_plan_free(&plan);
    if (rv != EVO_OK) {
        coord_stage_blobs_free(b, n);
        return rv;
    }
    *out = b;
    return EVO_OK;
}

void coord_stage_run_free(coord_stage_run *r)
{
    if (r == NULL)
        return;
    free(r->blob);
    free(r->work);
    free(r->arena);
    memset(r, 0, sizeof *r);
}

evo_status coord_stage_load(const void *blob, size_t len, const char *what, coord_stage_run *out,
                            evo_error *err)
{
    memset(out, 0, sizeof *out);
    evo_evm_info info;
    evo_status rv = evo_evm_read_header(blob, len, &info, err);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "%s", what);
        return rv;
    }
    size_t work_bytes = evo_evm_work_size(&info);
    if (work_bytes == SIZE_MAX || len > SIZE_MAX - 64)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: the stage is too large for this node", what);
    /* The loader runs the program in place: the blob must be aligned (64
     * keeps the weights cache-line aligned as the writer laid them out). */
    size_t cap = (len + 63) / 64 * 64;
    out->blob = aligned_alloc(64, cap ? cap : 64);
    out->work = aligned_alloc(64, work_bytes ? (work_bytes + 63) / 64 * 64 : 64);
    if (out->blob == NULL || out->work == NULL) {
        coord_stage_run_free(out);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: node is out of memory for the stage", what);
    }
    memcpy(out->blob, blob, len);
    out->blob_len = len;
    out->work_bytes = work_bytes;
    evo_evm_load_options o = {.sha256 = coord_sha256_cb};
    if ((rv = evo_evm_load(out->blob, len, &o, out->work, work_bytes, &out->prog, err)) != EVO_OK) {
        evo_error_prefix(err, "%s", what);
        coord_stage_run_free(out);
        return rv;
    }
    /* Stage tensors travel by name, so the names must be there. */
    for (int32_t i = 0; i < out->prog.n_inputs + out->prog.n_outputs; i++) {
        int32_t t = i < out->prog.n_inputs ? out->prog.inputs[i]
                                           : out->prog.outputs[i - out->prog.n_inputs];
        if (out->prog.tensors[t].name == NULL || out->prog.tensors[t].name[0] == '\0') {
            coord_stage_run_free(out);
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: the stage's boundary tensors have no names (stripped .evm)",
                                 what);
        }
    }
    out->arena_bytes = evo_program_arena_size(&out->prog);
    out->need_bytes = (uint64_t)len + out->arena_bytes + work_bytes;
    return EVO_OK;
}
