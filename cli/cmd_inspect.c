/*
 * `evo inspect MODEL.onnx`: what a model is made of and what it costs.
 *
 * Imports with allow_unsupported so that a model with ops evo lacks is still
 * described (those ops are listed, and their cost is reported as unknown).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "evo/modeldb.h"

static const char inspect_usage[] =
    "usage: evo inspect MODEL.onnx [--dim NAME=VALUE]... [--json]\n"
    "\n"
    "Describe a model: inputs and outputs with shapes, parameter bytes, FLOPs,\n"
    "the op histogram, the ops evo cannot run yet, and a per-node table.\n"
    "\n"
    "  --dim NAME=VALUE  bind the symbolic input dim NAME (repeatable; an unbound\n"
    "                    leading dim defaults to 1)\n"
    "  --json            print one JSON document instead of text\n"
    "  -q, --quiet       no log messages;  -v, --verbose  info log messages\n";

/* Facts gathered once, printed as text or JSON. */
typedef struct insp_op_count {
    const char *domain, *op_type;
    int32_t count;
    bool supported;
} insp_op_count;

typedef struct insp_node_fact {
    bool cost_known;
    evo_op_cost cost;
} insp_node_fact;

typedef struct insp_facts {
    insp_node_fact *nodes; /* by node index */
    insp_op_count *ops;    /* histogram, sorted by count */
    int32_t n_ops;
    uint64_t param_bytes, param_count;
    uint64_t flops, mm_flops; /* all nodes; Conv/Gemm/MatMul only */
    int32_t unknown_cost;     /* nodes whose cost could not be computed */
    int32_t unsupported;      /* nodes without an op */
} insp_facts;

static bool insp_is_mm(const evo_node *n)
{
    return (n->domain == NULL || n->domain[0] == '\0') &&
           (strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "Gemm") == 0 ||
            strcmp(n->op_type, "MatMul") == 0);
}

static int insp_cmp_ops(const void *pa, const void *pb)
{
    const insp_op_count *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int c = strcmp(a->domain, b->domain);
    return c ? c : strcmp(a->op_type, b->op_type);
}

static evo_status insp_gather(const evo_graph *g, insp_facts *f)
{
    memset(f, 0, sizeof *f);
    f->nodes = calloc((size_t)g->n_nodes + 1, sizeof *f->nodes);
    f->ops = calloc((size_t)g->n_nodes + 1, sizeof *f->ops);
    bool *seen = calloc((size_t)g->n_values + 1, sizeof *seen);
    if (f->nodes == NULL || f->ops == NULL || seen == NULL) {
        free(seen);
        return EVO_ERR_NOMEM;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const evo_node *n = &g->nodes[i];
        const char *domain = n->domain ? n->domain : "";
        int32_t k = 0;
        while (k < f->n_ops && (strcmp(f->ops[k].op_type, n->op_type) != 0 ||
                                strcmp(f->ops[k].domain, domain) != 0))
            k++;
        if (k == f->n_ops)
            f->ops[f->n_ops++] = (insp_op_count){domain, n->op_type, 0, n->op != NULL};
        f->ops[k].count++;
        if (n->op == NULL)
            f->unsupported++;

        insp_node_fact *nf = &f->nodes[i];
        /* A cost from shapes that are not known would be a made-up number. */
        bool shaped = true;
        for (int32_t o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0 && !(g->values[n->outputs[o]].flags & EVO_VALUE_HAS_SHAPE))
                shaped = false;
        nf->cost_known = n->op != NULL && shaped && evo_graph_node_cost(g, i, &nf->cost) == EVO_OK;
        if (nf->cost_known) {
            f->flops += nf->cost.flops;
            if (insp_is_mm(n))
                f->mm_flops += nf->cost.flops;
        } else {
            f->unknown_cost++;
        }
        /* Parameters: each constant a node that runs reads, counted once
         * even when several nodes share it. Nodes folded into constants at
         * import never run; their inputs are not parameters. */
        bool folded = n->n_outputs > 0;
        for (int32_t o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0 && !(g->values[n->outputs[o]].flags & EVO_VALUE_CONST))
                folded = false;
        for (int32_t k2 = 0; k2 < n->n_inputs && !folded; k2++) {
            int32_t vi = n->inputs[k2];
            if (vi < 0 || vi >= g->n_values || seen[vi] || !(g->values[vi].flags & EVO_VALUE_CONST))
                continue;
            seen[vi] = true;
            const evo_tensor *t = &g->values[vi].t;
            size_t nb;
            int64_t numel = evo_shape_numel(&t->shape);
            if (evo_shape_nbytes(&t->shape, t->dtype, &nb) == EVO_OK && numel >= 0) {
                f->param_bytes += nb;
                f->param_count += (uint64_t)numel;
            }
        }
    }
    free(seen);
    qsort(f->ops, (size_t)f->n_ops, sizeof *f->ops, insp_cmp_ops);
    return EVO_OK;
}

static void insp_facts_free(insp_facts *f)
{
    free(f->nodes);
    free(f->ops);
}

static const char *insp_dtype(const evo_value *v)
{
    return (v->flags & EVO_VALUE_HAS_TYPE) ? evo_dtype_name(v->t.dtype) : "?";
}

static void insp_value_shape(const evo_value *v, char *buf, size_t cap)
{
    if (!(v->flags & EVO_VALUE_HAS_SHAPE))
        snprintf(buf, cap, "?");
    else
        cli_fmt_value_shape(v, buf, cap);
}

/* ---------------------------------------------------------------- text */

static void insp_print_values(const evo_graph *g, const char *title, const int32_t *idx, int32_t n)
{
    printf("%s:\n", title);
    for (int32_t i = 0; i < n; i++) {
        const evo_value *v = &g->values[idx[i]];
        char shape[200];
        insp_value_shape(v, shape, sizeof shape);
        printf("  %-24s %-8s %s\n", v->name, insp_dtype(v), shape);
    }
}

static void insp_print_text(const char *path, const evo_graph *g, const insp_facts *f,
                            const evo_infer_report *rep)
{
    char b1[32];
    printf("model:       %s\n", path);
    printf("format:      ONNX, ir_version %lld", (long long)g->ir_version);
    for (int32_t i = 0; i < g->n_opsets; i++)
        printf(", opset %s %lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx",
               (long long)g->opsets[i].version);
    printf("\nproducer:    %s\n", g->producer_name && g->producer_name[0] ? g->producer_name : "-");
    insp_print_values(g, "inputs", g->inputs, g->n_inputs);
    insp_print_values(g, "outputs", g->outputs, g->n_outputs);

    printf("nodes:       %d\n", (int)g->n_nodes);
    printf("parameters:  %llu values, %s (%llu bytes)\n", (unsigned long long)f->param_count,
           cli_fmt_bytes(f->param_bytes, b1, sizeof b1), (unsigned long long)f->param_bytes);
    printf("compute:     %.4f GFLOPs, %.1f M multiply-adds%s\n", (double)f->flops / 1e9,
           (double)f->flops / 2e6, f->unknown_cost ? " (nodes of unknown cost excluded)" : "");
    printf("Conv/Gemm/MatMul: %.4f GFLOPs, %.1f M multiply-adds\n", (double)f->mm_flops / 1e9,
           (double)f->mm_flops / 2e6);
    if (f->unknown_cost)
        printf("unknown cost: %d node%s\n", (int)f->unknown_cost, f->unknown_cost == 1 ? "" : "s");
    if (rep->unresolved_nodes)
        printf("unresolved:  %d node%s without static output shapes\n", (int)rep->unresolved_nodes,
               rep->unresolved_nodes == 1 ? "" : "s");

    printf("op histogram:\n");
    for (int32_t i = 0; i < f->n_ops; i++)
        printf("  %-24s %d%s%s\n", f->ops[i].op_type, (int)f->ops[i].count,
               f->ops[i].domain[0] ? "  domain " : "", f->ops[i].domain);
    printf("unsupported ops:");
    if (f->unsupported == 0)
        printf(" none\n");
    else
        for (int32_t i = 0; i < f->n_ops; i++)
            if (!f->ops[i].supported)
                printf(" %s%s%s x%d", f->ops[i].domain, f->ops[i].domain[0] ? ":" : "",
                       f->ops[i].op_type, (int)f->ops[i].count);
    if (f->unsupported)
        printf("\n");

    /* the name goes last: ONNX exporters produce long path-like names */
    printf("\n%5s  %-18s %-26s %10s %10s %10s  %s\n", "#", "op", "output shapes", "MFLOPs",
           "params", "out bytes", "name");
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        const evo_node *n = &g->nodes[i];
        char shapes[256] = "";
        size_t pos = 0;
        for (int32_t o = 0; o < n->n_outputs && pos + 1 < sizeof shapes; o++) {
            if (n->outputs[o] < 0)
                continue;
            char s[128];
            insp_value_shape(&g->values[n->outputs[o]], s, sizeof s);
            int w = snprintf(shapes + pos, sizeof shapes - pos, "%s%s", pos ? " " : "", s);
            pos = w < 0 || (size_t)w >= sizeof shapes - pos ? sizeof shapes - 1 : pos + (size_t)w;
        }
        const insp_node_fact *nf = &f->nodes[i];
        char fl[32] = "?", pb[32] = "?", ob[32] = "?";
        if (nf->cost_known) {
            snprintf(fl, sizeof fl, "%.3f", (double)nf->cost.flops / 1e6);
            cli_fmt_bytes(nf->cost.param_bytes, pb, sizeof pb);
            cli_fmt_bytes(nf->cost.out_bytes, ob, sizeof ob);
        }
        printf("%5d  %-18s %-26s %10s %10s %10s  %s%s\n", (int)k, n->op_type, shapes, fl, pb, ob,
               n->name[0] ? n->name : "-", n->op ? "" : "  (unsupported)");
    }
}

/* ---------------------------------------------------------------- JSON */

static cJSON *insp_json_shape(const evo_value *v)
{
    if (!(v->flags & EVO_VALUE_HAS_SHAPE))
        return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (int32_t d = 0; d < v->t.shape.rank && d < EVO_MAX_RANK; d++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v->t.shape.dims[d]));
    return a;
}

static cJSON *insp_json_values(const evo_graph *g, const int32_t *idx, int32_t n, bool params)
{
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; i < n; i++) {
        const evo_value *v = &g->values[idx[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", v->name);
        cJSON_AddStringToObject(o, "dtype", insp_dtype(v));
        cJSON_AddItemToObject(o, "shape", insp_json_shape(v));
        if (params && v->dim_params != NULL) {
            cJSON *p = cJSON_CreateArray();
            for (int32_t d = 0; d < v->t.shape.rank && d < EVO_MAX_RANK; d++)
                cJSON_AddItemToArray(p, v->dim_params[d] && v->dim_params[d][0]
                                            ? cJSON_CreateString(v->dim_params[d])
                                            : cJSON_CreateNull());
            cJSON_AddItemToObject(o, "dim_params", p);
        }
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *insp_json(const char *path, const evo_graph *g, const insp_facts *f,
                        const evo_infer_report *rep)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "format", "onnx");
    cJSON_AddNumberToObject(root, "ir_version", (double)g->ir_version);
    cJSON *opsets = cJSON_AddArrayToObject(root, "opsets");
    for (int32_t i = 0; i < g->n_opsets; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "domain", g->opsets[i].domain);
        cJSON_AddNumberToObject(o, "version", (double)g->opsets[i].version);
        cJSON_AddItemToArray(opsets, o);
    }
    cJSON_AddStringToObject(root, "producer", g->producer_name ? g->producer_name : "");
    cJSON_AddItemToObject(root, "inputs", insp_json_values(g, g->inputs, g->n_inputs, true));
    cJSON_AddItemToObject(root, "outputs", insp_json_values(g, g->outputs, g->n_outputs, false));

    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(tot, "nodes", g->n_nodes);
    cJSON_AddNumberToObject(tot, "param_count", (double)f->param_count);
    cJSON_AddNumberToObject(tot, "param_bytes", (double)f->param_bytes);
    cJSON_AddNumberToObject(tot, "flops", (double)f->flops);
    cJSON_AddNumberToObject(tot, "macs", (double)f->flops / 2);
    cJSON_AddNumberToObject(tot, "conv_gemm_matmul_flops", (double)f->mm_flops);
    cJSON_AddNumberToObject(tot, "conv_gemm_matmul_macs", (double)f->mm_flops / 2);
    cJSON_AddNumberToObject(tot, "unknown_cost_nodes", f->unknown_cost);
    cJSON_AddNumberToObject(tot, "unsupported_nodes", f->unsupported);
    cJSON_AddNumberToObject(tot, "unresolved_nodes", rep->unresolved_nodes);

    cJSON *hist = cJSON_AddObjectToObject(root, "op_histogram");
    cJSON *unsup = cJSON_AddObjectToObject(root, "unsupported_ops");
    for (int32_t i = 0; i < f->n_ops; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s%s%s", f->ops[i].domain, f->ops[i].domain[0] ? ":" : "",
                 f->ops[i].op_type);
        cJSON_AddNumberToObject(hist, key, f->ops[i].count);
        if (!f->ops[i].supported)
            cJSON_AddNumberToObject(unsup, key, f->ops[i].count);
    }

    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        const evo_node *n = &g->nodes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", n->name);
        cJSON_AddStringToObject(o, "op", n->op_type);
        if (n->domain && n->domain[0])
            cJSON_AddStringToObject(o, "domain", n->domain);
        cJSON_AddBoolToObject(o, "supported", n->op != NULL);
        cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
        for (int32_t q = 0; q < n->n_outputs; q++) {
            if (n->outputs[q] < 0)
                continue;
            const evo_value *v = &g->values[n->outputs[q]];
            cJSON *ov = cJSON_CreateObject();
            cJSON_AddStringToObject(ov, "name", v->name);
            cJSON_AddStringToObject(ov, "dtype", insp_dtype(v));
            cJSON_AddItemToObject(ov, "shape", insp_json_shape(v));
            cJSON_AddItemToArray(outs, ov);
        }
        const insp_node_fact *nf = &f->nodes[i];
        if (nf->cost_known) {
            cJSON_AddNumberToObject(o, "flops", (double)nf->cost.flops);
            cJSON_AddNumberToObject(o, "param_bytes", (double)nf->cost.param_bytes);
            cJSON_AddNumberToObject(o, "in_bytes", (double)nf->cost.in_bytes);
            cJSON_AddNumberToObject(o, "out_bytes", (double)nf->cost.out_bytes);
        } else {
            cJSON_AddNullToObject(o, "flops");
        }
        cJSON_AddItemToArray(nodes, o);
    }
    return root;
}

/* ---------------------------------------------------------------- main */

static int inspect_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_inspect, argc, argv);
    cli_dims dims = {0};
    const char *path = NULL;
    bool json = false;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
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
    if (rc >= 0) {
        cli_dims_free(&dims);
        return rc;
    }

    evo_import_options opt = {.dims = dims.items, .n_dims = dims.n, .allow_unsupported = true};
    evo_graph *g = NULL;
    evo_infer_report rep = {0};
    evo_error err = {0};
    insp_facts facts = {0};
    rc = CLI_EXIT_FAIL;
    if (evo_model_import_ex(path, &opt, &g, &rep, &err) != EVO_OK) {
        cli_error(a.cmd->name, "%s", err.msg);
    } else if (insp_gather(g, &facts) != EVO_OK) {
        cli_error(a.cmd->name, "%s: out of memory", path);
    } else {
        if (json) {
            cJSON *root = insp_json(path, g, &facts, &rep);
            char *text = root ? cJSON_PrintUnformatted(root) : NULL;
            if (text != NULL) {
                puts(text);
                rc = CLI_EXIT_OK;
            } else {
                cli_error(a.cmd->name, "%s: out of memory while writing JSON", path);
            }
            cJSON_free(text);
            cJSON_Delete(root);
        } else {
            insp_print_text(path, g, &facts, &rep);
            rc = CLI_EXIT_OK;
        }
    }
    insp_facts_free(&facts);
    evo_graph_free(g);
    cli_dims_free(&dims);
    return rc;
}

const cli_command cli_cmd_inspect = {
    .name = "inspect",
    .summary = "describe a model: shapes, parameters, FLOPs, ops, per-node table",
    .usage = inspect_usage,
    .main = inspect_main,
};
