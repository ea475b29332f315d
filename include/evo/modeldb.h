/*
 * evo modeldb: ONNX import into the graph IR, opset normalization, shape and
 * type inference with constant folding, and per-op cost facts.
 *
 * Typical use:
 *     evo_graph *g;
 *     evo_import_options opt = {.dims = dims, .n_dims = n};
 *     if ((rv = evo_model_import(path, &opt, &g, &err)) != EVO_OK)
 *         fprintf(stderr, "%s\n", err.msg);   // one sentence naming file and cause
 *     ...
 *     evo_graph_free(g);
 *
 * Ownership: on success *out is a new graph the caller frees with
 * evo_graph_free(); on failure *out is NULL and nothing leaks.
 */
#ifndef EVO_MODELDB_H
#define EVO_MODELDB_H

#include "evo/core.h"
#include "evo/graph.h"
#include "evo/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds that protect the importer from hostile files. 0 = default. */
typedef struct evo_import_limits {
    uint64_t max_file_bytes;   /* default 4 GiB (ONNX's protobuf limit is 2 GiB) */
    uint64_t max_tensor_bytes; /* any single initializer; default 2 GiB */
    int32_t max_nodes;         /* default 1,000,000 */
} evo_import_limits;

typedef struct evo_import_options {
    const evo_dim_binding *dims; /* --dim NAME=VALUE bindings */
    size_t n_dims;
    evo_import_limits limits;
    /* Keep going past ops evo cannot run or shapes it cannot infer (for
     * `evo inspect`): such nodes keep the shapes the file declares, if any,
     * and are counted in evo_infer_report. Off: the first one is an error. */
    bool allow_unsupported;
    /* Skip constant folding of non-shape subgraphs (debugging). Shape
     * subgraphs are always folded, since static shapes depend on them. */
    bool no_fold;
    /* evo_model_import also runs evo_graph_optimize with default options,
     * so the graph is the one evo executes (fused, BatchNorm folded). Every
     * part that records or plans per-op facts (model database, partitioner)
     * uses this, so op counts agree with what nodes run. */
    bool optimize;
} evo_import_options;

/* Parse an ONNX file into a graph: values, nodes, attributes, initializers
 * (raw_data, typed fields, and external data files resolved next to the
 * model), Constant nodes turned into constants, opset imports recorded and
 * old-opset forms rewritten to the newest form, structure validated and
 * topologically ordered. Shapes of graph inputs are taken from the file,
 * with symbolic dims left at -1 (see evo_graph_bind_dims). No inference. */
evo_status evo_onnx_load(const char *path, const evo_import_options *opt, evo_graph **out,
                         evo_error *err);

/* Same from a memory buffer (borrowed for the call). base_dir is where
 * external data files are looked up; NULL refuses external data. name is used
 * in messages. */
evo_status evo_onnx_load_buffer(const void *buf, size_t len, const char *base_dir, const char *name,
                                const evo_import_options *opt, evo_graph **out, evo_error *err);

/* What inference could not do (only in allow_unsupported mode). */
typedef struct evo_infer_report {
    int32_t unsupported_nodes; /* nodes whose op evo lacks */
    int32_t unresolved_nodes;  /* nodes left without static output shapes */
} evo_infer_report;

/* Resolve each node's op, parse its params, infer every value's dtype and
 * static shape in topological order, and fold constant subgraphs (always
 * those that compute shapes). report may be NULL. */
evo_status evo_graph_infer(evo_graph *g, const evo_import_options *opt, evo_infer_report *report,
                           evo_error *err);

/* evo_onnx_load + evo_graph_bind_dims + evo_graph_infer. */
evo_status evo_model_import(const char *path, const evo_import_options *opt, evo_graph **out,
                            evo_error *err);
evo_status evo_model_import_ex(const char *path, const evo_import_options *opt, evo_graph **out,
                               evo_infer_report *report, evo_error *err);

/* ---------------------------------------------------------------- optimization passes */

/* Graph passes run by `evo compile` (each switchable off for debugging):
 * constant folding (already done by inference), BatchNormalization folded
 * into the preceding Conv/Gemm, activation fusion (Relu, Clip/Relu6,
 * LeakyRelu, Sigmoid, HardSwish) into Conv/Gemm, removal of Identity/Dropout,
 * dead-node elimination. Works on an inferred graph and leaves it inferred
 * and validated; outputs stay within float tolerance of the original. */
typedef struct evo_optimize_options {
    bool no_fold_batchnorm;
    bool no_fuse_activation;
    bool no_remove_identity;
    bool no_dead_code;
} evo_optimize_options;

typedef struct evo_optimize_report {
    int32_t batchnorms_folded;
    int32_t activations_fused;
    int32_t identities_removed;
    int32_t dead_nodes_removed;
} evo_optimize_report;

evo_status evo_graph_optimize(evo_graph *g, const evo_optimize_options *opt,
                              evo_optimize_report *report, evo_error *err);

/* Cost facts of one node (after inference): FLOPs (multiply-add = 2),
 * parameter bytes (constant inputs), input and output activation bytes. */
evo_status evo_graph_node_cost(const evo_graph *g, int32_t node, evo_op_cost *out);

/* Build the evo_kctx views for a node: fills in_ptrs/out_ptrs (arrays of at
 * least n_inputs/n_outputs entries) with pointers to the values' tensors
 * (NULL for absent ones). */
void evo_graph_node_ctx(evo_graph *g, int32_t node, evo_tensor **in_ptrs, evo_tensor **out_ptrs,
                        evo_kctx *ctx, evo_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EVO_MODELDB_H */
