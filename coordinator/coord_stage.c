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

evo_status coord_import_onnx(const void *onnx, size_t len, const char *name, evo_graph **out,
                             evo_error *err)
{
    /* Optimized as the partitioner expects: its op counts and memory
     * figures are those of the program that runs. */
    evo_import_options opt;
    memset(&opt, 0, sizeof opt);
    opt.optimize = true;
    evo_graph *g = NULL;
    evo_status rv = evo_onnx_load_buffer(onnx, len, NULL, name, &opt, &g, err);
    if (rv == EVO_OK)
        rv = evo_graph_bind_dims(g, NULL, 0, err);
    if (rv == EVO_OK)
        rv = evo_graph_infer(g, &opt, NULL, err);
    if (rv == EVO_OK) /* as evo_model_import does with opt.optimize */
        rv = evo_graph_optimize(g, NULL, NULL, err);
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
        b->n_ops = prog->n_nodes;
        for (int32_t i = 0; i < prog->n_inputs; i++)
            b->in_bytes += prog->tensors[prog->inputs[i]].nbytes;
        for (int32_t i = 0; i < prog->n_outputs; i++)
            b->out_bytes += prog->tensors[prog->outputs[i]].nbytes;
    }
    evo_program_free(prog);
    evo_graph_free(sg);
    return rv;
}

evo_status coord_stage_blobs_make(const evo_graph *g, const evo_split_plan *plan,
                                  coord_stage_blob **out, evo_error *err)
{
    *out = NULL;
    int32_t n = plan->n_stages;
    if (n <= 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a split needs at least one stage");
    coord_stage_blob *b = calloc((size_t)n, sizeof *b);
    if (b == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory splitting %s", g->name);
    evo_status rv = EVO_OK;
    for (int32_t k = 0; k < n && rv == EVO_OK; k++) {
        const evo_split_stage *ss = &plan->stages[k];
        rv = coord_stage_evm(g, plan, k, coord_sha256_cb, &b[k], err);
        /* Tensors stage k passes on untouched: those a later stage (or the
         * caller) needs that are available before k (graph inputs, outputs
         * of earlier stages) and that stage k does not compute itself. */
        for (int32_t j = k + 1; j <= n && rv == EVO_OK; j++) {
            int32_t nn = j < n ? plan->stages[j].n_inputs : g->n_outputs;
            for (int32_t i = 0; i < nn && rv == EVO_OK; i++) {
                const char *name =
                    j < n ? plan->stages[j].inputs[i] : g->values[g->outputs[i]].name;
                bool before = false;
                for (int32_t q = 0; q < g->n_inputs && !before; q++)
                    before = strcmp(g->values[g->inputs[q]].name, name) == 0;
                for (int32_t e = 0; e < k && !before; e++)
                    before =
                        coord_names_has(plan->stages[e].outputs, plan->stages[e].n_outputs, name);
                if (before && !coord_names_has(ss->outputs, ss->n_outputs, name) &&
                    !coord_names_has(b[k].pass, b[k].n_pass, name))
                    rv = coord_names_push(&b[k].pass, &b[k].n_pass, name, err);
            }
        }
        if (rv != EVO_OK)
            evo_error_prefix(err, "stage %d of %s", (int)k, g->name);
    }
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
