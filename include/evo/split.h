/*
 * evo split: cutting an inferred graph into consecutive stages (one per
 * device of a pipeline), extracting each stage as a self-contained graph,
 * and writing a graph or stage back as an ONNX model.
 *
 * A split plan lists, per stage, the source graph's nodes it runs (in
 * topological order) and the tensors that cross its boundary by name:
 * inputs are original graph inputs or tensors an earlier stage computes;
 * outputs are the tensors a later stage or the user needs. The partitioner
 * produces plans directly (node lists, then evo_split_plan_finish); the CLI
 * makes them from cut tensors. Constants are not stage inputs: each stage
 * carries a copy of the constants its nodes read.
 *
 * Typical use:
 *     evo_split_plan plan;
 *     const char *cuts[] = {"layer1_out", "layer3_out"};
 *     if (evo_split_plan_from_cuts(g, cuts, 2, &plan, &err) != EVO_OK) ...
 *     for (int32_t s = 0; s < plan.n_stages; s++) {
 *         evo_graph *sg;
 *         evo_split_extract(g, &plan, s, &sg, &err);
 *         evo_onnx_export(sg, path, &err);
 *         evo_graph_free(sg);
 *     }
 *     evo_split_plan_free(&plan);
 *
 * Ownership: a plan owns its arrays and name copies (evo_split_plan_free);
 * it refers to the source graph's node indices, so it is valid for that
 * graph only. Extracted graphs are new and owned by the caller.
 */
#ifndef EVO_SPLIT_H
#define EVO_SPLIT_H

#include "evo/core.h"
#include "evo/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_split_stage {
    int32_t *nodes; /* node indices of the source graph, topological order */
    int32_t n_nodes;
    char **inputs; /* tensor names: graph inputs first (graph order), then
                    * tensors from earlier stages (in the order computed) */
    int32_t n_inputs;
    char **outputs; /* tensor names: graph outputs first (graph order), then
                     * tensors later stages read (in the order computed) */
    int32_t n_outputs;
} evo_split_stage;

typedef struct evo_split_plan {
    evo_split_stage *stages;
    int32_t n_stages;
} evo_split_plan;

/* Release everything a plan owns and zero it. NULL is fine. */
void evo_split_plan_free(evo_split_plan *plan);

/* Stages from cut tensors (names of tensors some node computes). Cuts are
 * ordered by where their producers run, and stage k is everything cut k
 * depends on that an earlier stage does not already hold; the last stage is
 * the rest. Each cut must separate the graph: apart from graph inputs and
 * constants, only cut tensors may be read across a stage boundary.
 * EVO_ERR_NOT_FOUND for an unknown name; EVO_ERR_INVALID_ARG for a cut that
 * is a graph input or constant, a repeated cut, or one that leaves a stage
 * empty; EVO_ERR_GRAPH naming the cut and the tensor that crosses it when a
 * cut does not separate the graph. Nodes whose results reach no graph output
 * are left out; nodes inference folded to constants never run and are left
 * out too. Requires an inferred graph. */
evo_status evo_split_plan_from_cuts(const evo_graph *g, const char *const *cuts, size_t n_cuts,
                                    evo_split_plan *out, evo_error *err);

/* Stages from positions in the topological order g->order: stage k runs the
 * nodes at order positions [starts[k], starts[k+1]) (the last one up to the
 * end). starts[0] must be 0 and the positions strictly increasing. Any
 * tensor may cross a boundary. */
evo_status evo_split_plan_from_ranges(const evo_graph *g, const int32_t *starts, size_t n_starts,
                                      evo_split_plan *out, evo_error *err);

/* Fill in every stage's inputs and outputs from its node list (existing
 * names are replaced). Checks that each node that runs appears in exactly one
 * stage and that no stage reads a tensor a later stage computes
 * (EVO_ERR_GRAPH naming the node and tensor). This is the entry point for a
 * partitioner that decides node lists itself. */
evo_status evo_split_plan_finish(const evo_graph *g, evo_split_plan *plan, evo_error *err);

/* Extract stage `stage` of the plan as a new graph, named
 * "<graph name>_stage<k>": the stage's nodes (attributes, op, params kept,
 * so it is inferred), its inputs as graph inputs, its outputs as graph
 * outputs, and copies of the constants its nodes read. Validated. */
evo_status evo_split_extract(const evo_graph *g, const evo_split_plan *plan, int32_t stage,
                             evo_graph **out, evo_error *err);

/* ---------------------------------------------------------------- ONNX export */

/* Serialize a graph (a whole model or an extracted stage) as an ONNX
 * ModelProto: ir_version 8, the graph's opset imports, constants as
 * initializers with raw_data, inputs/outputs/value_info with the inferred
 * types and static shapes, and node attributes (tensors included). Nodes
 * inference folded are written as their constant results. Activations that
 * a fusion pass moved into a Conv/Gemm are written back as the ONNX node
 * they came from, and inputs the importer made out of old-opset attributes
 * become attributes again, so the file is valid for the opsets it declares.
 * *buf is malloc'd; the caller frees it. */
evo_status evo_onnx_export_buffer(const evo_graph *g, void **buf, size_t *len, evo_error *err);
/* The same into a file (written completely or not at all: a temporary file
 * is renamed into place). */
evo_status evo_onnx_export(const evo_graph *g, const char *path, evo_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EVO_SPLIT_H */
