/*
 * Internal interface of the graph passes (modeldb/pass_*.c), their driver
 * (optimize.c) and subgraph extraction (split.c). Not part of evo's public API.
 *
 * Passes never delete nodes from g->nodes while they run: a removed node is
 * only marked in `removed`, so node indices stay valid across passes. The
 * driver compacts the graph once at the end (evo_graph_extract) and
 * re-validates it. Passes keep evo_value.producer up to date when they move
 * an output from one node to another, so later passes can follow producers.
 */
#ifndef EVO_MODELDB_PASS_INTERNAL_H
#define EVO_MODELDB_PASS_INTERNAL_H

#include "evo/modeldb.h"

typedef struct evo_pass_ctx {
    evo_graph *g;
    bool *removed;   /* per node (g->n_nodes): dropped by a pass */
    int32_t *n_uses; /* per value: reads by live nodes, +1 when a graph output */
    int32_t n_uses_cap;
    evo_error *err;
} evo_pass_ctx;

/* "model.onnx" or "graph": the name used in messages. */
const char *evo_pass_file(const evo_graph *g);

/* Recount n_uses over live nodes (values may have been added since). */
evo_status evo_pass_count_uses(evo_pass_ctx *c);

/* True if node i is still in the graph. */
static inline bool evo_pass_live(const evo_pass_ctx *c, int32_t i)
{
    return i >= 0 && i < c->g->n_nodes && !c->removed[i];
}

/* True if the node is op_type of the default domain. */
bool evo_pass_is_op(const evo_node *n, const char *op_type);

/* Make every live node that reads `from` read `to` instead. */
void evo_pass_replace_uses(evo_pass_ctx *c, int32_t from, int32_t to);

/* Add a new constant value named after `base` with a unique suffix. Takes
 * ownership of data (malloc'd, exactly evo_shape_nbytes bytes), also on
 * failure. */
evo_status evo_pass_new_const(evo_pass_ctx *c, const char *base, const char *suffix,
                              evo_dtype dtype, const evo_shape *shape, void *data, int32_t *out);

/* A constant float32 scalar (numel 1) read from value v into *out; false if
 * v is not one. */
bool evo_pass_const_scalar_f32(const evo_graph *g, int32_t v, float *out);

/* Re-parse node i's params from its attributes (keeping a fused activation
 * of Conv/Gemm) and re-run its infer; the outputs' dtypes and shapes must
 * come out unchanged. EVO_ERR_INTERNAL naming the node otherwise. */
evo_status evo_pass_reinfer_node(evo_pass_ctx *c, int32_t i);

/* The passes, in the order the driver runs them. Each adds what it did to
 * *count. */
evo_status evo_pass_fold_batchnorm(evo_pass_ctx *c, int32_t *count);
evo_status evo_pass_fuse_activation(evo_pass_ctx *c, int32_t *count);
evo_status evo_pass_remove_identity(evo_pass_ctx *c, int32_t *count);
evo_status evo_pass_dead_code(evo_pass_ctx *c, int32_t *count);
/* Not switchable: Conv weights of small output planes to the KM layout. */
evo_status evo_pass_layout_conv(evo_pass_ctx *c, int32_t *count);

/* Build a new graph from nodes[0..n_nodes) of g (a topological order),
 * with the given graph inputs and outputs (value indices of g). Values are
 * copied with their dtype, shape and flags; constants read by the nodes or
 * listed as outputs are copied, or moved out of g when move_consts (g then
 * no longer holds them: only for a graph about to be freed or replaced).
 * Attributes are deep-copied; op and params (with any fused activation) are
 * kept. Dim names of inputs are kept. The result is validated. */
evo_status evo_graph_extract(evo_graph *g, const int32_t *nodes, int32_t n_nodes,
                             const int32_t *inputs, int32_t n_inputs, const int32_t *outputs,
                             int32_t n_outputs, bool move_consts, const char *name, evo_graph **out,
                             evo_error *err);

#endif /* EVO_MODELDB_PASS_INTERNAL_H */
