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
#include "evo/evm.h"
#include "evo/modeldb.h"
#include "model.h"

static const char inspect_usage[] =
    "usage: evo inspect MODEL [--dim NAME=VALUE]... [--json]\n"
    "\n"
    "Describe a model: inputs and outputs with shapes, parameter bytes, FLOPs,\n"
    "the op histogram, the ops evo cannot run yet, and a per-node table.\n"
    "MODEL is ONNX or a compiled .evm (told apart by content); for a .evm it\n"
    "also shows the arena size, the memory plan's lower bound and the SHA-256\n"
    "digest (verified).\n"
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

/* ---------------------------------------------------------------- .evm */

/* Facts of a compiled model: everything comes from the verified program. */
typedef struct insp_evm_facts {
    insp_op_count *ops;
    int32_t n_ops;
    uint64_t *node_flops;
    uint64_t flops, mm_flops;
    int32_t n_consts;
    size_t arena_bytes;
} insp_evm_facts;

static bool insp_evm_is_mm(const evo_op_def *op)
{
    return strcmp(op->name, "Conv") == 0 || strcmp(op->name, "Gemm") == 0 ||
           strcmp(op->name, "MatMul") == 0;
}

/* FLOPs from each op's cost function on shape views (1 per output element
 * for ops without one), as evo_graph_node_cost does for ONNX. */
static evo_status insp_evm_gather(const evo_program *p, insp_evm_facts *f)
{
    memset(f, 0, sizeof *f);
    f->ops = calloc((size_t)p->n_nodes + 1, sizeof *f->ops);
    f->node_flops = calloc((size_t)p->n_nodes + 1, sizeof *f->node_flops);
    evo_tensor *views = calloc((size_t)p->n_tensors + 1, sizeof *views);
    int32_t max_io = 0;
    for (int32_t k = 0; k < p->n_nodes; k++)
        if (p->nodes[k].n_in + p->nodes[k].n_out > max_io)
            max_io = p->nodes[k].n_in + p->nodes[k].n_out;
    evo_tensor **ptrs = calloc((size_t)max_io + 1, sizeof *ptrs);
    if (f->ops == NULL || f->node_flops == NULL || views == NULL || ptrs == NULL) {
        free(views);
        free(ptrs);
        return EVO_ERR_NOMEM;
    }
    for (int32_t t = 0; t < p->n_tensors; t++) {
        const evo_prog_tensor *pt = &p->tensors[t];
        views[t] = (evo_tensor){pt->dtype, pt->shape, (void *)(uintptr_t)pt->const_data};
        if (pt->flags & EVO_PT_CONST)
            f->n_consts++;
    }
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        int32_t j = 0;
        while (j < f->n_ops && strcmp(f->ops[j].op_type, n->op->name) != 0)
            j++;
        if (j == f->n_ops)
            f->ops[f->n_ops++] = (insp_op_count){"", n->op->name, 0, true};
        f->ops[j].count++;
        uint64_t out_elems = 0;
        for (int32_t i = 0; i < n->n_in + n->n_out; i++) {
            int32_t t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
            ptrs[i] = t < 0 ? NULL : &views[t];
            if (i >= n->n_in && t >= 0)
                out_elems += (uint64_t)evo_shape_numel(&views[t].shape);
        }
        uint64_t flops = out_elems;
        if (n->op->cost != NULL) {
            evo_kctx c = {.params = n->params,
                          .in = ptrs,
                          .n_in = n->n_in,
                          .out = ptrs + n->n_in,
                          .n_out = n->n_out};
            evo_op_cost oc = {0, 0, 0, 0};
            n->op->cost(&c, &oc);
            flops = oc.flops;
        }
        f->node_flops[k] = flops;
        f->flops += flops;
        if (insp_evm_is_mm(n->op))
            f->mm_flops += flops;
    }
    free(views);
    free(ptrs);
    qsort(f->ops, (size_t)f->n_ops, sizeof *f->ops, insp_cmp_ops);
    f->arena_bytes = evo_program_arena_size(p);
    return EVO_OK;
}

static void insp_evm_digest_hex(const cli_evm *e, char *hex)
{
    for (unsigned i = 0; i < EVO_EVM_DIGEST_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", e->info.digest[i]);
}

static void insp_evm_tensor_line(const evo_program *p, int32_t t)
{
    const evo_prog_tensor *pt = &p->tensors[t];
    char shape[200], label[32];
    evo_shape_format(&pt->shape, shape, sizeof shape);
    snprintf(label, sizeof label, "#%d", (int)t);
    printf("  %-24s %-8s %s\n", pt->name[0] ? pt->name : label, evo_dtype_name(pt->dtype), shape);
}

static void insp_evm_text(const char *path, const cli_evm *e, const insp_evm_facts *f)
{
    const evo_program *p = &e->prog;
    char b1[32], b2[32], b3[32], hex[2 * EVO_EVM_DIGEST_BYTES + 1];
    insp_evm_digest_hex(e, hex);
    printf("model:       %s\n", path);
    printf("format:      evo compact model (.evm) version %u, %llu bytes, %s\n",
           (unsigned)e->info.version, (unsigned long long)e->info.file_bytes,
           (e->info.flags & EVO_EVM_F_NAMES) ? "with names" : "names stripped");
    printf("digest:      sha256 %s (verified)\n", hex);
    printf("inputs:\n");
    for (int32_t i = 0; i < p->n_inputs; i++)
        insp_evm_tensor_line(p, p->inputs[i]);
    printf("outputs:\n");
    for (int32_t i = 0; i < p->n_outputs; i++)
        insp_evm_tensor_line(p, p->outputs[i]);
    printf("nodes:       %d\n", (int)p->n_nodes);
    printf("tensors:     %d (%d constant)\n", (int)p->n_tensors, (int)f->n_consts);
    printf("weights:     %s (%llu bytes)\n", cli_fmt_bytes(p->weights_bytes, b1, sizeof b1),
           (unsigned long long)p->weights_bytes);
    printf(
        "arena:       %s (%zu bytes): activations %s (%llu bytes), lower bound %s (%llu "
        "bytes), %.3fx\n",
        cli_fmt_bytes(f->arena_bytes, b1, sizeof b1), f->arena_bytes,
        cli_fmt_bytes(p->activation_bytes, b2, sizeof b2), (unsigned long long)p->activation_bytes,
        cli_fmt_bytes(p->activation_lower_bound, b3, sizeof b3),
        (unsigned long long)p->activation_lower_bound,
        p->activation_lower_bound ? (double)p->activation_bytes / (double)p->activation_lower_bound
                                  : 1.0);
    printf("loader work: %zu bytes (program tables, on this host)\n", evo_evm_work_size(&e->info));
    printf("compute:     %.4f GFLOPs, %.1f M multiply-adds\n", (double)f->flops / 1e9,
           (double)f->flops / 2e6);
    printf("Conv/Gemm/MatMul: %.4f GFLOPs, %.1f M multiply-adds\n", (double)f->mm_flops / 1e9,
           (double)f->mm_flops / 2e6);
    printf("op histogram:\n");
    for (int32_t i = 0; i < f->n_ops; i++)
        printf("  %-24s %d\n", f->ops[i].op_type, (int)f->ops[i].count);

    printf("\n%5s  %-18s %-26s %10s %10s  %s\n", "#", "op", "output shapes", "MFLOPs", "scratch",
           "name");
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        char shapes[256] = "";
        size_t pos = 0;
        for (int32_t o = 0; o < n->n_out && pos + 1 < sizeof shapes; o++) {
            if (n->out[o] < 0)
                continue;
            char sh[128];
            evo_shape_format(&p->tensors[n->out[o]].shape, sh, sizeof sh);
            int w = snprintf(shapes + pos, sizeof shapes - pos, "%s%s", pos ? " " : "", sh);
            pos = w < 0 || (size_t)w >= sizeof shapes - pos ? sizeof shapes - 1 : pos + (size_t)w;
        }
        printf("%5d  %-18s %-26s %10.3f %10s  %s\n", (int)k, n->op->name, shapes,
               (double)f->node_flops[k] / 1e6, cli_fmt_bytes(n->scratch_bytes, b1, sizeof b1),
               n->name[0] ? n->name : "-");
    }
}

static cJSON *insp_evm_json_tensor(const evo_program *p, int32_t t)
{
    const evo_prog_tensor *pt = &p->tensors[t];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", pt->name);
    cJSON_AddNumberToObject(o, "index", t);
    cJSON_AddStringToObject(o, "dtype", evo_dtype_name(pt->dtype));
    cJSON *a = cJSON_AddArrayToObject(o, "shape");
    for (int32_t d = 0; d < pt->shape.rank; d++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(pt->shape.dims[d]));
    return o;
}

static cJSON *insp_evm_json(const char *path, const cli_evm *e, const insp_evm_facts *f)
{
    const evo_program *p = &e->prog;
    char hex[2 * EVO_EVM_DIGEST_BYTES + 1];
    insp_evm_digest_hex(e, hex);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "format", "evm");
    cJSON_AddNumberToObject(root, "version", e->info.version);
    cJSON_AddNumberToObject(root, "file_bytes", (double)e->info.file_bytes);
    cJSON_AddStringToObject(root, "sha256", hex);
    cJSON_AddBoolToObject(root, "names", (e->info.flags & EVO_EVM_F_NAMES) != 0);
    cJSON *ins = cJSON_AddArrayToObject(root, "inputs");
    for (int32_t i = 0; i < p->n_inputs; i++)
        cJSON_AddItemToArray(ins, insp_evm_json_tensor(p, p->inputs[i]));
    cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
    for (int32_t i = 0; i < p->n_outputs; i++)
        cJSON_AddItemToArray(outs, insp_evm_json_tensor(p, p->outputs[i]));
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(tot, "nodes", p->n_nodes);
    cJSON_AddNumberToObject(tot, "tensors", p->n_tensors);
    cJSON_AddNumberToObject(tot, "constant_tensors", f->n_consts);
    cJSON_AddNumberToObject(tot, "weights_bytes", (double)p->weights_bytes);
    cJSON_AddNumberToObject(tot, "arena_bytes", (double)f->arena_bytes);
    cJSON_AddNumberToObject(tot, "activation_bytes", (double)p->activation_bytes);
    cJSON_AddNumberToObject(tot, "activation_lower_bound", (double)p->activation_lower_bound);
    cJSON_AddNumberToObject(tot, "loader_work_bytes", (double)evo_evm_work_size(&e->info));
    cJSON_AddNumberToObject(tot, "flops", (double)f->flops);
    cJSON_AddNumberToObject(tot, "macs", (double)f->flops / 2);
    cJSON_AddNumberToObject(tot, "conv_gemm_matmul_flops", (double)f->mm_flops);
    cJSON *hist = cJSON_AddObjectToObject(root, "op_histogram");
    for (int32_t i = 0; i < f->n_ops; i++)
        cJSON_AddNumberToObject(hist, f->ops[i].op_type, f->ops[i].count);
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", n->name);
        cJSON_AddStringToObject(o, "op", n->op->name);
        cJSON_AddNumberToObject(o, "op_id", n->op->id);
        cJSON *no = cJSON_AddArrayToObject(o, "outputs");
        for (int32_t q = 0; q < n->n_out; q++)
            if (n->out[q] >= 0)
                cJSON_AddItemToArray(no, insp_evm_json_tensor(p, n->out[q]));
        cJSON_AddNumberToObject(o, "flops", (double)f->node_flops[k]);
        cJSON_AddNumberToObject(o, "scratch_bytes", (double)n->scratch_bytes);
        cJSON_AddItemToArray(nodes, o);
    }
    return root;
}

static int insp_evm_main(const char *path, bool json, size_t n_dims)
{
    if (n_dims > 0) {
        cli_error("inspect",
                  "%s: --dim does not apply to a compiled .evm model (its dims were "
                  "bound by evo compile)",
                  path);
        return CLI_EXIT_FAIL;
    }
    cli_evm e;
    evo_error err = {0};
    if (cli_evm_open(path, &e, &err) != EVO_OK) {
        cli_error("inspect", "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    insp_evm_facts f;
    int rc = CLI_EXIT_FAIL;
    if (insp_evm_gather(&e.prog, &f) != EVO_OK) {
        cli_error("inspect", "%s: out of memory", path);
    } else if (json) {
        cJSON *root = insp_evm_json(path, &e, &f);
        char *text = root ? cJSON_PrintUnformatted(root) : NULL;
        if (text != NULL) {
            puts(text);
            rc = CLI_EXIT_OK;
        } else {
            cli_error("inspect", "%s: out of memory while writing JSON", path);
        }
        cJSON_free(text);
        cJSON_Delete(root);
    } else {
        insp_evm_text(path, &e, &f);
        rc = CLI_EXIT_OK;
    }
    free(f.ops);
    free(f.node_flops);
    cli_evm_close(&e);
    return rc;
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

    if (cli_is_evm(path)) {
        rc = insp_evm_main(path, json, dims.n);
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
