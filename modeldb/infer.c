/*
 * Shape and type inference with constant folding.
 *
 * Walks the graph in topological order. For each node it resolves the op,
 * parses its attributes into params, and calls the op's infer to get output
 * types and static shapes. When all inputs of a node are constant (or the op
 * only looks at shapes, like Shape and Size), the node is evaluated right
 * here with the same reference kernel the device runs and its outputs become
 * constants. That one mechanism folds the shape subgraphs exporters emit
 * (Shape -> Gather -> Concat -> Reshape) so every tensor ends up static, and
 * it folds ordinary constant subexpressions too.
 */
#include <stdlib.h>
#include <string.h>

#include "evo/modeldb.h"

/* Folding never creates a single constant larger than this: a Tile or
 * ConstantOfShape of a constant could otherwise turn a small file into a
 * huge allocation. Such nodes simply stay in the graph and run at inference. */
#define INFER_FOLD_MAX_BYTES (64u << 20)
/* With opt->no_fold only small integer tensors (shape arithmetic) fold. */
#define INFER_SHAPE_FOLD_MAX_ELEMS 64

static const char *infer_file(const evo_graph *g)
{
    return g->source_path ? g->source_path : "model";
}

void evo_graph_node_ctx(evo_graph *g, int32_t node, evo_tensor **in_ptrs, evo_tensor **out_ptrs,
                        evo_kctx *ctx, evo_error *err)
{
    evo_node *n = &g->nodes[node];
    for (int32_t k = 0; k < n->n_inputs; k++)
        in_ptrs[k] = n->inputs[k] >= 0 ? &g->values[n->inputs[k]].t : NULL;
    for (int32_t k = 0; k < n->n_outputs; k++)
        out_ptrs[k] = n->outputs[k] >= 0 ? &g->values[n->outputs[k]].t : NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->params = n->params;
    ctx->in = in_ptrs;
    ctx->n_in = n->n_inputs;
    ctx->out = out_ptrs;
    ctx->n_out = n->n_outputs;
    ctx->err = err;
}

/* Checks a value's type is one evo's kernels hold. */
static evo_status infer_check_dtype(const evo_graph *g, const evo_value *v, evo_error *err)
{
    if (evo_dtype_is_supported(v->t.dtype))
        return EVO_OK;
    return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has type %s, which evo does not support", infer_file(g),
                         v->name, evo_dtype_name(v->t.dtype));
}

/* True if every present input is constant (or, for shape-only ops, shaped). */
static bool infer_foldable(const evo_graph *g, const evo_node *n, const evo_import_options *opt)
{
    const evo_op_def *op = n->op;
    if (op->flags & EVO_OP_NO_FOLD)
        return false;
    bool shape_only = (op->flags & EVO_OP_SHAPE_ONLY) != 0;
    for (int32_t k = 0; k < n->n_inputs; k++) {
        int32_t x = n->inputs[k];
        if (x < 0)
            continue;
        if (!(g->values[x].flags & EVO_VALUE_CONST) && !shape_only)
            return false;
    }
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        const evo_value *v = &g->values[o];
        /* A graph output stays computed by its node, so a user sees the op
         * they exported; fold only interior values. */
        if (v->flags & EVO_VALUE_OUTPUT)
            return false;
        size_t bytes;
        if (evo_shape_nbytes(&v->t.shape, v->t.dtype, &bytes) != EVO_OK ||
            bytes > INFER_FOLD_MAX_BYTES)
            return false;
        if (opt != NULL && opt->no_fold && !shape_only) {
            bool is_int = v->t.dtype == EVO_DT_INT64 || v->t.dtype == EVO_DT_INT32;
            if (!is_int || evo_shape_numel(&v->t.shape) > INFER_SHAPE_FOLD_MAX_ELEMS)
                return false;
        }
    }
    return true;
}

/* Evaluate a node whose inputs are constant; its outputs become constants. */
static evo_status infer_fold(evo_graph *g, int32_t node, evo_error *err)
{
    evo_node *n = &g->nodes[node];
    evo_tensor **ptrs = calloc((size_t)n->n_inputs + (size_t)n->n_outputs + 1, sizeof *ptrs);
    void **bufs = calloc((size_t)n->n_outputs + 1, sizeof *bufs);
    void *scratch = NULL;
    evo_status rv = EVO_ERR_NOMEM;
    if (ptrs == NULL || bufs == NULL)
        goto out;
    evo_kctx c;
    evo_graph_node_ctx(g, node, ptrs, ptrs + n->n_inputs, &c, err);
    /* Outputs get fresh buffers; views are set on the value tensors so the
     * kernel writes straight into what becomes the constant. */
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        size_t bytes;
        if ((rv = evo_shape_nbytes(&g->values[o].t.shape, g->values[o].t.dtype, &bytes)) != EVO_OK)
            goto out;
        bufs[k] = calloc(1, bytes ? bytes : 1);
        if (bufs[k] == NULL) {
            rv = EVO_ERR_NOMEM;
            goto out;
        }
        g->values[o].t.data = bufs[k];
    }
    if (n->op->scratch != NULL) {
        c.scratch_bytes = n->op->scratch(&c);
        if (c.scratch_bytes > 0) {
            /* 16-byte alignment as eval expects; aligned_alloc needs a
             * multiple of the alignment. */
            size_t sz = (c.scratch_bytes + 63) & ~(size_t)63;
            scratch = aligned_alloc(64, sz);
            if (scratch == NULL) {
                rv = EVO_ERR_NOMEM;
                goto out;
            }
            c.scratch = scratch;
        }
    }
    c.err = NULL; /* eval contract */
    rv = evo_op_eval(n->op, &c);
    if (rv != EVO_OK) {
        evo_error_set(err, rv, "%s: node '%s' (%s) failed while folding constants: %s",
                      infer_file(g), n->name, n->op_type, evo_strerror(rv));
        goto out;
    }
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        evo_value *v = &g->values[o];
        evo_value_set_const(g, o, v->t.dtype, &v->t.shape, bufs[k]);
        bufs[k] = NULL;
    }
out:
    if (bufs != NULL) {
        for (int32_t k = 0; k < n->n_outputs; k++) {
            if (bufs[k] != NULL) {
                g->values[n->outputs[k]].t.data = NULL;
                free(bufs[k]);
            }
        }
    }
    free(bufs);
    free(ptrs);
    free(scratch);
    return rv;
}

/* Mark a node's outputs as unknown (inspect mode), keeping the shapes the
 * file declared when it declared all of them. Returns true if resolved. */
static bool infer_fallback_declared(evo_graph *g, const evo_node *n)
{
    bool all = true;
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        uint32_t need = EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
        if ((g->values[o].flags & need) != need)
            all = false;
    }
    if (!all)
        for (int32_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                g->values[n->outputs[k]].flags &= ~(uint32_t)EVO_VALUE_HAS_SHAPE;
    return all;
}

/* Infer one node. Returns EVO_ERR_UNSUPPORTED for an op evo lacks. */
static evo_status infer_node(evo_graph *g, int32_t node, const evo_import_options *opt,
                             evo_error *err)
{
    evo_node *n = &g->nodes[node];
    const char *file = infer_file(g);
    n->op = evo_op_find(n->domain, n->op_type);
    if (n->op == NULL)
        return evo_error_set(
            err, EVO_ERR_UNSUPPORTED, "%s: node '%s' uses op %s%s%s, which evo does not support",
            file, n->name, n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
    for (int32_t k = 0; k < n->n_inputs; k++) {
        int32_t x = n->inputs[k];
        if (x < 0)
            continue;
        const evo_value *v = &g->values[x];
        uint32_t need = EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
        if ((v->flags & need) != need)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: node '%s' (%s): input '%s' has no known static shape", file,
                                 n->name, n->op_type, v->name);
    }
    memset(n->params, 0, sizeof n->params);
    evo_status rv;
    if (n->op->parse != NULL && (rv = n->op->parse(n, n->params, err)) != EVO_OK) {
        if (err != NULL && err->msg[0] == '\0')
            evo_error_set(err, rv, "invalid attributes");
        evo_error_prefix(err, "%s: node '%s' (%s)", file, n->name, n->op_type);
        return rv;
    }

    /* Outputs are recomputed from scratch: declared shapes in the file are
     * hints only, and a wrong one must not survive. */
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        evo_value *v = &g->values[o];
        v->t.dtype = EVO_DT_UNDEFINED;
        memset(&v->t.shape, 0, sizeof v->t.shape);
        v->t.shape.rank = -1;
        v->flags &= ~(uint32_t)(EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE);
    }

    evo_tensor *ptrs_stack[32];
    evo_tensor **ptrs = ptrs_stack;
    size_t nptr = (size_t)n->n_inputs + (size_t)n->n_outputs;
    if (nptr > 32 && (ptrs = malloc(nptr * sizeof *ptrs)) == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
    evo_kctx c;
    evo_graph_node_ctx(g, node, ptrs, ptrs + n->n_inputs, &c, err);
    if (err != NULL)
        evo_error_clear(err);
    rv = evo_op_check_arity(n->op, &c);
    if (rv == EVO_OK)
        rv = n->op->infer(&c);
    if (ptrs != ptrs_stack)
        free(ptrs);
    if (rv != EVO_OK) {
        if (err != NULL && err->msg[0] == '\0')
            evo_error_set(err, rv, "%s", evo_strerror(rv));
        evo_error_prefix(err, "%s: node '%s' (%s)", file, n->name, n->op_type);
        if (err != NULL)
            err->code = rv;
        return rv == EVO_ERR_UNSUPPORTED ? EVO_ERR_UNSUPPORTED : rv;
    }
    /* Never trust an op's infer blindly: every output must be a valid static
     * tensor of a supported type before anything allocates from it. */
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t o = n->outputs[k];
        if (o < 0)
            continue;
        evo_value *v = &g->values[o];
        size_t bytes;
        if (v->t.shape.rank < 0 || evo_shape_nbytes(&v->t.shape, v->t.dtype, &bytes) != EVO_OK)
            return evo_error_set(err, EVO_ERR_INTERNAL,
                                 "%s: node '%s' (%s): inference left output '%s' without a valid "
                                 "type and shape",
                                 file, n->name, n->op_type, v->name);
        if ((rv = infer_check_dtype(g, v, err)) != EVO_OK)
            return rv;
        v->flags |= EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    }
    if (infer_foldable(g, n, opt)) {
        if ((rv = infer_fold(g, node, err)) != EVO_OK)
            return rv;
    }
    return EVO_OK;
}

evo_status evo_graph_infer(evo_graph *g, const evo_import_options *opt, evo_infer_report *report,
                           evo_error *err)
{
    bool lenient = opt != NULL && opt->allow_unsupported;
    evo_infer_report rep = {0, 0};
    evo_status rv;
    if (g->order == NULL && g->n_nodes > 0 && (rv = evo_graph_validate(g, err)) != EVO_OK)
        return rv;
    for (int32_t k = 0; k < g->n_inputs; k++) {
        evo_value *v = &g->values[g->inputs[k]];
        if (!(v->flags & EVO_VALUE_HAS_SHAPE))
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: input '%s' has no shape in the file; evo needs static shapes",
                                 infer_file(g), v->name);
        for (int32_t d = 0; d < v->t.shape.rank; d++)
            if (v->t.shape.dims[d] < 0)
                return evo_error_set(err, EVO_ERR_SHAPE,
                                     "%s: input '%s' dim %d is not bound; use --dim", infer_file(g),
                                     v->name, (int)d);
        if ((rv = infer_check_dtype(g, v, err)) != EVO_OK && !lenient)
            return rv;
    }
    for (int32_t i = 0; i < g->n_values; i++) {
        evo_value *v = &g->values[i];
        if ((v->flags & EVO_VALUE_CONST) && (rv = infer_check_dtype(g, v, err)) != EVO_OK &&
            !lenient)
            return rv;
    }
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t node = g->order[k];
        evo_error local;
        evo_error *e = lenient ? &local : err;
        evo_error_clear(e);
        rv = infer_node(g, node, opt, e);
        if (rv == EVO_OK)
            continue;
        if (!lenient)
            return rv;
        /* Inspect mode: note it and go on with what the file declares. */
        if (rv == EVO_ERR_UNSUPPORTED)
            rep.unsupported_nodes++;
        if (!infer_fallback_declared(g, &g->nodes[node]))
            rep.unresolved_nodes++;
        EVO_LOGD("%s", local.msg);
    }
    for (int32_t k = 0; k < g->n_outputs && !lenient; k++) {
        evo_value *v = &g->values[g->outputs[k]];
        if (!(v->flags & EVO_VALUE_HAS_SHAPE))
            return evo_error_set(err, EVO_ERR_SHAPE, "%s: output '%s' has no static shape",
                                 infer_file(g), v->name);
    }
    if (report != NULL)
        *report = rep;
    return EVO_OK;
}

evo_status evo_model_import_ex(const char *path, const evo_import_options *opt, evo_graph **out,
                               evo_infer_report *report, evo_error *err)
{
    evo_graph *g = NULL;
    evo_status rv;
    *out = NULL;
    if ((rv = evo_onnx_load(path, opt, &g, err)) != EVO_OK)
        return rv;
    if ((rv = evo_graph_bind_dims(g, opt ? opt->dims : NULL, opt ? opt->n_dims : 0, err)) !=
            EVO_OK ||
        (rv = evo_graph_infer(g, opt, report, err)) != EVO_OK ||
        (opt != NULL && opt->optimize && !opt->allow_unsupported &&
         (rv = evo_graph_optimize(g, NULL, NULL, err)) != EVO_OK)) {
        evo_graph_free(g);
        return rv;
    }
    *out = g;
    return EVO_OK;
}

evo_status evo_model_import(const char *path, const evo_import_options *opt, evo_graph **out,
                            evo_error *err)
{
    return evo_model_import_ex(path, opt, out, NULL, err);
}

static uint64_t cost_value_bytes(const evo_value *v)
{
    size_t b;
    if (!(v->flags & EVO_VALUE_HAS_SHAPE) ||
        evo_shape_nbytes(&v->t.shape, v->t.dtype, &b) != EVO_OK)
        return 0;
    return b;
}

evo_status evo_graph_node_cost(const evo_graph *g, int32_t node, evo_op_cost *out)
{
    memset(out, 0, sizeof *out);
    if (node < 0 || node >= g->n_nodes)
        return EVO_ERR_INVALID_ARG;
    const evo_node *n = &g->nodes[node];
    bool folded = n->n_outputs > 0;
    uint64_t out_elems = 0;
    for (int32_t k = 0; k < n->n_outputs; k++) {
        if (n->outputs[k] < 0)
            continue;
        const evo_value *v = &g->values[n->outputs[k]];
        out->out_bytes += cost_value_bytes(v);
        if (v->flags & EVO_VALUE_HAS_SHAPE) {
            int64_t e = evo_shape_numel(&v->t.shape);
            out_elems += e > 0 ? (uint64_t)e : 0;
        }
        if (!(v->flags & EVO_VALUE_CONST))
            folded = false;
    }
    for (int32_t k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] < 0)
            continue;
        const evo_value *v = &g->values[n->inputs[k]];
        if (v->flags & EVO_VALUE_CONST)
            out->param_bytes += cost_value_bytes(v);
        else
            out->in_bytes += cost_value_bytes(v);
    }
    /* A folded node never runs: it costs nothing at inference. */
    if (folded) {
        memset(out, 0, sizeof *out);
        return EVO_OK;
    }
    bool shaped = true;
    for (int32_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && !(g->values[n->inputs[k]].flags & EVO_VALUE_HAS_SHAPE))
            shaped = false;
    if (n->op != NULL && n->op->cost != NULL && shaped) {
        evo_tensor *ptrs_stack[32];
        evo_tensor **ptrs = ptrs_stack;
        size_t nptr = (size_t)n->n_inputs + (size_t)n->n_outputs;
        if (nptr > 32 && (ptrs = malloc(nptr * sizeof *ptrs)) == NULL)
            return EVO_ERR_NOMEM;
        evo_kctx c;
        /* The context is read-only here; the cast only matches the shared
         * builder's signature. */
        evo_graph_node_ctx((evo_graph *)g, node, ptrs, ptrs + n->n_inputs, &c, NULL);
        evo_op_cost oc = {0, 0, 0, 0};
        n->op->cost(&c, &oc);
        out->flops = oc.flops;
        if (ptrs != ptrs_stack)
            free(ptrs);
    } else {
        out->flops = out_elems;
    }
    return EVO_OK;
}
