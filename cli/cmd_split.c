/*
 * `evo split MODEL.onnx --cut TENSOR[,TENSOR...] -o DIR`: cut a model into
 * consecutive stages at the named tensors and write each stage as
 * DIR/stage_K.onnx plus DIR/manifest.json describing what flows where.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "model.h"
#include "evo/modeldb.h"
#include "evo/partition.h"
#include "evo/evm.h"
#include "evo/node.h"
#include "evo/split.h"

extern const cli_command cli_cmd_split;

/* From cmd_export.c: the --optimize and --no-<pass> switches. */
bool cli_optimize_flag(cli_args *a, bool *optimize, evo_optimize_options *o);

static const char split_usage[] =
    "usage: evo split MODEL.onnx --cut TENSOR[,TENSOR...] -o DIR [--optimize]\n"
    "                 [--dim NAME=VALUE]...\n"
    "       evo split MODEL.onnx --plan PLAN.json -o DIR [--dim NAME=VALUE]...\n"
    "\n"
    "Cut the model into consecutive stages at the named tensors (each cut ends a\n"
    "stage; the last stage is the rest) and write DIR/stage_K.onnx for each stage\n"
    "K = 0, 1, ... and DIR/manifest.json: every stage's inputs and outputs (name,\n"
    "dtype, shape, bytes) and the tensors that flow between stages. A cut must\n"
    "separate the graph: only cut tensors (and model inputs and constants) may\n"
    "be used across a stage boundary.\n"
    "\n"
    "  --cut TENSOR[,...]  cut tensors (repeatable; order does not matter)\n"
    "  --plan PLAN.json    the stages of a placement plan from `evo place` (one\n"
    "                      model per stage; docs/placement.md)\n"
    "  -o, --output DIR    directory to write (created if missing)\n"
    "  --optimize          run the graph passes before splitting (cut tensors\n"
    "                      that a pass removes are reported); see evo export\n"
    "  --dim NAME=VALUE    bind the symbolic input dim NAME (repeatable)\n"
    "  -q, --quiet         no log messages;  -v, --verbose  info log messages\n";

typedef struct split_cuts {
    char **names;
    size_t n, cap;
} split_cuts;

static void split_cuts_free(split_cuts *c)
{
    for (size_t k = 0; k < c->n; k++)
        free(c->names[k]);
    free(c->names);
    memset(c, 0, sizeof *c);
}

/* Append the comma-separated names of one --cut value. */
static bool split_cuts_add(const cli_command *cmd, split_cuts *c, const char *arg)
{
    const char *p = arg;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            cli_usage_error(cmd->name, "--cut has an empty tensor name in '%s'", arg);
            return false;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 8;
            char **names = realloc(c->names, cap * sizeof *names);
            if (names == NULL)
                return false;
            c->names = names;
            c->cap = cap;
        }
        char *s = malloc(len + 1);
        if (s == NULL)
            return false;
        memcpy(s, p, len);
        s[len] = '\0';
        c->names[c->n++] = s;
        if (e == NULL)
            return true;
        p = e + 1;
    }
}

static cJSON *split_tensor_json(const evo_graph *g, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    int32_t v = evo_graph_find_value(g, name);
    if (o == NULL || v < 0)
        return o;
    const evo_value *val = &g->values[v];
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "dtype", evo_dtype_name(val->t.dtype));
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    for (int32_t d = 0; shape != NULL && d < val->t.shape.rank; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(val->t.shape.dims[d]));
    size_t bytes = 0;
    if (evo_shape_nbytes(&val->t.shape, val->t.dtype, &bytes) != EVO_OK)
        bytes = 0;
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    return o;
}

static cJSON *split_manifest(const char *model, const evo_graph *g, const evo_split_plan *plan)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return NULL;
    cJSON_AddStringToObject(root, "model", model);
    cJSON *mi = cJSON_AddArrayToObject(root, "model_inputs");
    cJSON *mo = cJSON_AddArrayToObject(root, "model_outputs");
    for (int32_t k = 0; mi != NULL && k < g->n_inputs; k++)
        cJSON_AddItemToArray(mi, split_tensor_json(g, g->values[g->inputs[k]].name));
    for (int32_t k = 0; mo != NULL && k < g->n_outputs; k++)
        cJSON_AddItemToArray(mo, split_tensor_json(g, g->values[g->outputs[k]].name));
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    cJSON *flows = cJSON_AddArrayToObject(root, "tensors");
    for (int32_t s = 0; stages != NULL && s < plan->n_stages; s++) {
        const evo_split_stage *st = &plan->stages[s];
        cJSON *so = cJSON_CreateObject();
        if (so == NULL)
            break;
        char file[64];
        snprintf(file, sizeof file, "stage_%d.onnx", (int)s);
        cJSON_AddNumberToObject(so, "index", s);
        cJSON_AddStringToObject(so, "file", file);
        snprintf(file, sizeof file, "stage_%d.evm", (int)s);
        cJSON_AddStringToObject(so, "evm", file);
        cJSON_AddNumberToObject(so, "nodes", st->n_nodes);
        uint64_t flops = 0, params = 0;
        for (int32_t k = 0; k < st->n_nodes; k++) {
            evo_op_cost c;
            if (evo_graph_node_cost(g, st->nodes[k], &c) == EVO_OK) {
                flops += c.flops;
                params += c.param_bytes;
            }
        }
        cJSON_AddNumberToObject(so, "flops", (double)flops);
        cJSON_AddNumberToObject(so, "param_bytes", (double)params);
        cJSON *in = cJSON_AddArrayToObject(so, "inputs");
        cJSON *out = cJSON_AddArrayToObject(so, "outputs");
        for (int32_t k = 0; in != NULL && k < st->n_inputs; k++)
            cJSON_AddItemToArray(in, split_tensor_json(g, st->inputs[k]));
        for (int32_t k = 0; out != NULL && k < st->n_outputs; k++) {
            cJSON_AddItemToArray(out, split_tensor_json(g, st->outputs[k]));
            /* A tensor flowing to later stages: list who reads it. */
            cJSON *to = NULL;
            for (int32_t t = s + 1; t < plan->n_stages; t++)
                for (int32_t j = 0; j < plan->stages[t].n_inputs; j++)
                    if (strcmp(plan->stages[t].inputs[j], st->outputs[k]) == 0) {
                        if (to == NULL)
                            to = cJSON_CreateArray();
                        if (to != NULL)
                            cJSON_AddItemToArray(to, cJSON_CreateNumber(t));
                    }
            if (to != NULL && flows != NULL) {
                cJSON *f = split_tensor_json(g, st->outputs[k]);
                cJSON_AddNumberToObject(f, "from", s);
                cJSON_AddItemToObject(f, "to", to);
                cJSON_AddItemToArray(flows, f);
            } else {
                cJSON_Delete(to);
            }
        }
        cJSON_AddItemToArray(stages, so);
    }
    return root;
}

static evo_status split_write_text(const char *path, const char *text, evo_error *err)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot create the file (%s)", path,
                             strerror(errno));
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot write the file", path);
    return EVO_OK;
}

/* DIR/stage_K.evm: the stage compiled for a node (memory plan, weights in
 * place, SHA-256), what `evo run` and the node agent load. */
static evo_status split_write_evm(const evo_graph *sg, const char *dir, int32_t s, evo_error *err)
{
    evo_program *prog = NULL;
    void *blob = NULL;
    size_t len = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/stage_%d.evm", dir, (int)s);
    evo_evm_write_options wopt = {0};
    evo_status rv = evo_program_build(sg, NULL, &prog, err);
    if (rv == EVO_OK)
        rv = evo_evm_write(prog, &wopt, cli_sha256, NULL, &blob, &len, err);
    if (rv == EVO_OK)
        rv = cli_write_file(path, blob, len, err);
    free(blob);
    evo_program_free(prog);
    return rv;
}

/* The split plan of a placement plan file (evo place -o). */
static evo_status split_plan_file(const evo_graph *g, const char *plan_path, evo_split_plan *plan,
                                  evo_error *err)
{
    FILE *f = fopen(plan_path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open (%s)", plan_path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    evo_status rv = EVO_OK;
    do {
        if (len == cap) {
            char *nb = cap < (256u << 20) ? realloc(buf, cap = cap ? 2 * cap : 65536) : NULL;
            if (nb == NULL) {
                rv = evo_error_set(err, EVO_ERR_LIMIT, "%s: too large or out of memory", plan_path);
                break;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (rv == EVO_OK)
        rv = evo_pt_split_plan_from_json(g, buf, len, plan_path, plan, err);
    free(buf);
    return rv;
}

static evo_status split_run(const char *path, const char *dir, const split_cuts *cuts,
                            const char *plan_path, const evo_import_options *opt, bool optimize,
                            const evo_optimize_options *oo, evo_error *err)
{
    evo_graph *g = NULL;
    evo_split_plan plan = {0};
    evo_status rv = evo_model_import(path, opt, &g, err);
    if (rv != EVO_OK)
        return rv;
    /* A plan from `evo place` is made for the optimized graph (default
     * passes), so --plan always splits that graph. */
    if (plan_path != NULL) {
        optimize = true;
        oo = NULL;
    }
    if (optimize) {
        bool *known = calloc(cuts->n + 1, sizeof *known);
        if (known == NULL) {
            evo_graph_free(g);
            return evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
        }
        for (size_t k = 0; k < cuts->n; k++)
            known[k] = evo_graph_find_value(g, cuts->names[k]) >= 0;
        evo_optimize_report rep;
        rv = evo_graph_optimize(g, oo, &rep, err);
        for (size_t k = 0; rv == EVO_OK && k < cuts->n; k++)
            if (known[k] && evo_graph_find_value(g, cuts->names[k]) < 0)
                rv = evo_error_set(err, EVO_ERR_NOT_FOUND,
                                   "%s: cut tensor '%s' was removed by --optimize (fused or "
                                   "folded into its consumer); cut at the tensor after it",
                                   path, cuts->names[k]);
        free(known);
    }
    if (rv == EVO_OK && plan_path != NULL)
        rv = split_plan_file(g, plan_path, &plan, err);
    else if (rv == EVO_OK)
        rv = evo_split_plan_from_cuts(g, (const char *const *)cuts->names, cuts->n, &plan, err);
    if (rv == EVO_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot create the directory (%s)", dir,
                           strerror(errno));
    size_t plen = strlen(dir) + 64;
    char *file = malloc(plen);
    if (rv == EVO_OK && file == NULL)
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
    for (int32_t s = 0; rv == EVO_OK && s < plan.n_stages; s++) {
        evo_graph *sg = NULL;
        snprintf(file, plen, "%s/stage_%d.onnx", dir, (int)s);
        rv = evo_split_extract(g, &plan, s, &sg, err);
        if (rv == EVO_OK)
            rv = evo_onnx_export(sg, file, err);
        if (rv == EVO_OK)
            rv = split_write_evm(sg, dir, s, err);
        evo_graph_free(sg);
        if (rv == EVO_OK)
            printf("stage %d: %d nodes, %d inputs, %d outputs -> %s, stage_%d.evm\n", (int)s,
                   (int)plan.stages[s].n_nodes, (int)plan.stages[s].n_inputs,
                   (int)plan.stages[s].n_outputs, file, (int)s);
    }
    if (rv == EVO_OK) {
        cJSON *root = split_manifest(path, g, &plan);
        char *text = root ? cJSON_Print(root) : NULL;
        snprintf(file, plen, "%s/manifest.json", dir);
        if (text == NULL)
            rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory writing the manifest");
        else
            rv = split_write_text(file, text, err);
        if (rv == EVO_OK)
            printf("manifest -> %s\n", file);
        cJSON_free(text);
        cJSON_Delete(root);
    }
    free(file);
    evo_split_plan_free(&plan);
    evo_graph_free(g);
    return rv;
}

static int split_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_split, argc, argv);
    cli_dims dims = {0};
    split_cuts cuts = {0};
    const char *path = NULL, *dir = NULL, *plan_path = NULL;
    bool optimize = false;
    evo_optimize_options oo = {false, false, false, false};
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--cut", &val)) {
            if (!split_cuts_add(a.cmd, &cuts, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "-o", &val) || cli_args_value(&a, "--output", &val)) {
            dir = val;
        } else if (cli_args_value(&a, "--plan", &val)) {
            plan_path = val;
        } else if (cli_optimize_flag(&a, &optimize, &oo)) {
            continue;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && path == NULL) {
            path = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc < 0 && path == NULL)
        rc = cli_usage_error(a.cmd->name, "no model given");
    if (rc < 0 && cuts.n == 0 && plan_path == NULL)
        rc = cli_usage_error(a.cmd->name, "no cut given (--cut TENSOR[,TENSOR...] or --plan FILE)");
    if (rc < 0 && cuts.n > 0 && plan_path != NULL)
        rc = cli_usage_error(a.cmd->name, "give either --cut or --plan, not both");
    if (rc < 0 && optimize && plan_path != NULL)
        rc = cli_usage_error(a.cmd->name,
                             "--plan splits the model as `evo place` compiled it (with the default "
                             "passes); drop --optimize");
    if (rc < 0 && (dir == NULL || dir[0] == '\0'))
        rc = cli_usage_error(a.cmd->name, "no output directory given (-o DIR)");
    if (rc < 0) {
        evo_import_options opt = {.dims = dims.items, .n_dims = dims.n};
        evo_error err = {0};
        rc = CLI_EXIT_OK;
        if (split_run(path, dir, &cuts, plan_path, &opt, optimize, &oo, &err) != EVO_OK) {
            cli_error(a.cmd->name, "%s", err.msg);
            rc = CLI_EXIT_FAIL;
        }
    }
    split_cuts_free(&cuts);
    cli_dims_free(&dims);
    return rc;
}

const cli_command cli_cmd_split = {
    .name = "split",
    .summary = "cut a model into pipeline stages (stage_K.onnx + manifest.json)",
    .usage = split_usage,
    .main = split_main,
};
