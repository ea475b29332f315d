/*
 * evo partitioner: where each op of a model runs (hosted code).
 *
 * Inputs are a device topology (JSON, docs/placement.md: devices with memory,
 * optional flash, speed or a device class; links with bandwidth, round-trip
 * time and encoding; the source that produces the input and the sink that
 * wants the result) and a model. The partitioner builds an abstract cost
 * problem from them (evo_pt_problem: nodes in execution order with a latency
 * per device, tensors with bytes) and plans on that alone, so every
 * algorithm can be checked against brute force on small made-up problems.
 *
 * Plans are stage sequences: stage k runs on one device, the stages run one
 * after the other, and between stages k and k+1 one message carries every
 * tensor that is alive across that boundary (also tensors only relayed to a
 * later stage). The message follows the fastest path over listed links; each
 * hop costs rtt/2 + wire bytes / bandwidth, where wire bytes depend on the
 * hop's encoding (raw, fp16, int8 for float32 tensors). Latency is the sum of
 * the stages' compute and the messages' times (input from the source to the
 * first stage, result from the last stage to the sink); the pipelined period
 * is the busiest device's compute or the slowest hop of any message.
 *
 * Memory of a device: weights of its ops + the arena of each of its stages
 * (the memory planner's exact plan of the stage's activations, laid out the
 * way evo_program_build does, plus the executor's bookkeeping) + a fixed
 * runtime overhead. A device with flash keeps weights there; then weights
 * must fit the flash and the rest the memory.
 *
 * Kinds of plan:
 *   standalone  the best single device, input moved from source, result to sink.
 *   cloud       one edge device and one cloud device: a minimum s-t cut of the
 *               DAG (DADS), so branches and skip connections are cut anywhere,
 *               not only at single split points; the edge device's memory is
 *               honoured with a Lagrangian penalty and single split points.
 *   cluster     contiguous ranges of the execution order on distinct devices
 *               (up to EVO_PT_MAX_DEVICES), for least latency or the shortest
 *               period: exact dynamic programming when the state space is
 *               small enough, else a beam search over the same states.
 *   auto        all three; the best feasible plan wins.
 *
 * Ownership: every struct filled by an evo_pt_* function owns its arrays and
 * is released with the matching *_free (safe on a zeroed struct and after a
 * failed call).
 */
#ifndef EVO_PARTITION_H
#define EVO_PARTITION_H

#include "evo/core.h"
#include "evo/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- topology */

#define EVO_PT_MAX_DEVICES 32
#define EVO_PT_NAME_MAX 64

typedef enum evo_pt_role { EVO_PT_ROLE_EDGE = 0, EVO_PT_ROLE_CLOUD = 1 } evo_pt_role;

/* How float32 tensors cross a link (other dtypes always travel raw). The
 * values follow transport's evo_encoding. */
typedef enum evo_pt_encoding {
    EVO_PT_ENC_RAW = 0,
    EVO_PT_ENC_FP16 = 1, /* 2 bytes per element */
    EVO_PT_ENC_INT8 = 2, /* 1 byte per element + 8 bytes of scale and zero point */
    EVO_PT_ENC_COUNT_
} evo_pt_encoding;

const char *evo_pt_encoding_name(evo_pt_encoding enc);

typedef struct evo_pt_device {
    char name[EVO_PT_NAME_MAX];
    char device_class[96]; /* "" = none: gflops drive the roofline */
    uint64_t memory_bytes;
    uint64_t flash_bytes;    /* 0 = no flash: weights live in memory */
    uint64_t overhead_bytes; /* runtime overhead counted against memory */
    double gflops;           /* sustained compute for the roofline */
    double mem_gbps;         /* memory bandwidth (0 = compute-bound roofline) */
    evo_pt_role role;
} evo_pt_device;

typedef struct evo_pt_link {
    int32_t a, b; /* device indices; links are symmetric and full duplex */
    double mbps;  /* bandwidth, megabits per second */
    double rtt_ms;
    evo_pt_encoding encoding;
} evo_pt_link;

typedef struct evo_pt_topology {
    evo_pt_device *devices;
    int32_t n_devices;
    evo_pt_link *links;
    int32_t n_links;
    int32_t source, sink; /* device indices */
} evo_pt_topology;

/* Default runtime overheads: a bare-metal runtime (a device with flash) and
 * a hosted evo process (code, libc, transport buffers). */
#define EVO_PT_OVERHEAD_BAREMETAL (16u * 1024u)
#define EVO_PT_OVERHEAD_HOSTED (8u * 1024u * 1024u)

/* "512K", "2M", "1.5G", "4096": bytes with binary K/M/G/T suffixes (an
 * optional trailing B or iB is accepted). false on anything else. */
bool evo_pt_parse_size(const char *s, uint64_t *out);

/* Parse the topology JSON (docs/placement.md). name is used in messages. */
evo_status evo_pt_topology_parse(const char *json, size_t len, const char *name,
                                 evo_pt_topology *out, evo_error *err);
evo_status evo_pt_topology_load(const char *path, evo_pt_topology *out, evo_error *err);
void evo_pt_topology_free(evo_pt_topology *t);
/* The device index of name, or -1. */
int32_t evo_pt_device_find(const evo_pt_topology *t, const char *name);

/* ---------------------------------------------------------------- cost problem */

typedef struct evo_pt_tensor {
    char *name;         /* owned; may be NULL */
    uint64_t bytes;     /* dense size */
    uint64_t f32_numel; /* elements if float32 (encodable), else 0 */
    int32_t producer;   /* node index, or -1 for a graph input (made at the source) */
    bool graph_output;  /* must reach the sink */
} evo_pt_tensor;

typedef struct evo_pt_node {
    char *name, *op;   /* owned; may be NULL */
    int32_t *in, *out; /* activation tensor indices (owned) */
    int32_t n_in, n_out;
    uint64_t weight_bytes;  /* constant inputs */
    uint64_t scratch_bytes; /* arena scratch while it runs */
    int32_t n_consts;       /* constant input tensors (executor bookkeeping) */
    int32_t n_ptrs;         /* executor pointer-table entries (inputs + outputs) */
    /* The tensor output 0 may overwrite in place (an EVO_OP_INPLACE op's
     * input 0 when it is an activation), or -1. */
    int32_t inplace_in;
} evo_pt_node;

typedef struct evo_pt_problem {
    const evo_pt_topology *topo; /* borrowed */
    int32_t n_nodes, n_tensors, n_devices;
    evo_pt_node *nodes; /* execution order (a topological order) */
    evo_pt_tensor *tensors;
    double *cost_us;  /* n_nodes x n_devices; INFINITY = cannot run there */
    char *model_name; /* owned; for plans */
    /* private, filled by evo_pt_problem_finalize */
    int32_t *cons_off, *cons; /* consumers of each tensor (CSR) */
    int32_t *last_use;        /* last consumer position, -1 none */
} evo_pt_problem;

/* Allocate nodes, tensors and the cost matrix (all zero; producers -1,
 * inplace_in -1) for topo's devices. */
evo_status evo_pt_problem_init(evo_pt_problem *p, const evo_pt_topology *topo, int32_t n_nodes,
                               int32_t n_tensors, evo_error *err);
/* Set a node's names (copied; NULL fine) and activation inputs/outputs
 * (copied); sets the outputs' producer. */
evo_status evo_pt_node_set(evo_pt_problem *p, int32_t k, const char *name, const char *op,
                           const int32_t *in, int32_t n_in, const int32_t *out, int32_t n_out,
                           evo_error *err);
/* Check the problem (indices, order, costs) and build the consumer index.
 * Must run before planning. */
evo_status evo_pt_problem_finalize(evo_pt_problem *p, evo_error *err);
void evo_pt_problem_free(evo_pt_problem *p);

/* ---------------------------------------------------------------- plans */

typedef enum evo_pt_kind {
    EVO_PT_STANDALONE = 0,
    EVO_PT_CLOUD = 1,
    EVO_PT_CLUSTER = 2,
    EVO_PT_KIND_COUNT_
} evo_pt_kind;
const char *evo_pt_kind_name(evo_pt_kind k); /* "standalone", "cloud", "cluster" */

typedef enum evo_pt_objective { EVO_PT_LATENCY = 0, EVO_PT_THROUGHPUT = 1 } evo_pt_objective;

typedef struct evo_pt_stage {
    int32_t device;
    int32_t *nodes; /* problem node indices, in execution order */
    int32_t n_nodes;
    int32_t *inputs, *outputs; /* tensors alive across the boundary before/after */
    int32_t n_inputs, n_outputs;
    uint64_t weights_bytes, arena_bytes;
    uint64_t arena_lower_bound; /* the planner's bound for the same buffers */
    double compute_ms;
    double start_ms; /* in the one-request timeline */
} evo_pt_stage;

typedef struct evo_pt_hop {
    int32_t from, to; /* devices */
    evo_pt_encoding encoding;
    uint64_t wire_bytes;
    double ms;      /* rtt/2 + wire bytes / bandwidth */
    double send_ms; /* wire bytes / bandwidth */
} evo_pt_hop;

typedef struct evo_pt_transfer {
    int32_t from_stage, to_stage; /* -1: the source / the sink */
    int32_t from, to;             /* devices */
    int32_t *tensors;
    int32_t n_tensors;
    uint64_t bytes; /* raw */
    evo_pt_hop *hops;
    int32_t n_hops;
    double ms;
    double start_ms;
} evo_pt_transfer;

typedef struct evo_pt_device_use {
    bool used;
    uint64_t weights_bytes, arena_bytes, overhead_bytes;
    uint64_t ram_bytes;   /* counted against memory_bytes */
    uint64_t flash_bytes; /* weights kept in flash */
    double busy_ms;       /* compute per request */
} evo_pt_device_use;

typedef struct evo_pt_plan {
    evo_pt_kind kind;
    char method[32];                /* "enumeration", "min-cut", "single-split", "dp", "beam" */
    bool exact;                     /* optimal for its kind under the model above */
    bool feasible;                  /* fits every device and every message has a path */
    char reason[EVO_ERROR_MSG_MAX]; /* why not feasible */
    evo_pt_stage *stages;
    int32_t n_stages;
    evo_pt_transfer *transfers;
    int32_t n_transfers;
    evo_pt_device_use *use; /* per device */
    int32_t n_devices;
    double latency_ms, period_ms;
    double planning_ms;
} evo_pt_plan;

void evo_pt_plan_free(evo_pt_plan *plan);
/* The plan's objective value: latency or period (INFINITY if infeasible). */
double evo_pt_plan_value(const evo_pt_plan *plan, evo_pt_objective obj);

/* Evaluate a stage sequence: order is a permutation of the nodes (NULL = the
 * execution order) that must be topological; it is cut into n_stages
 * consecutive runs of stage_len[i] >= 1 nodes, run i on stage_device[i]
 * (consecutive stages on one device are allowed but wasteful). Fills
 * everything in *out, including feasible and reason; memory uses the exact
 * memory plan of each stage. */
evo_status evo_pt_evaluate(const evo_pt_problem *p, int32_t n_stages, const int32_t *stage_device,
                           const int32_t *stage_len, const int32_t *order, evo_pt_kind kind,
                           evo_pt_plan *out, evo_error *err);

/* The arena of the stage made of order[start .. start+len) (order NULL = the
 * execution order): the exact plan (exec bookkeeping + activations) and the
 * planner's lower bound with the same bookkeeping. */
evo_status evo_pt_stage_arena(const evo_pt_problem *p, const int32_t *order, int32_t start,
                              int32_t len, uint64_t *exact, uint64_t *lower_bound, evo_error *err);

/* ---------------------------------------------------------------- planners */

typedef struct evo_pt_options {
    evo_pt_objective objective;
    /* cluster: the largest number of DP transitions solved exactly (0 =
     * default 2e8); above it the beam search runs. */
    double exact_budget;
    int32_t beam_width; /* 0 = default 256 */
    bool force_beam;    /* cluster: use the beam search even when exact fits */
} evo_pt_options;

/* Each returns EVO_OK with out->feasible false and out->reason filled when
 * nothing fits; errors are for bad arguments or allocation failures. */
evo_status evo_pt_plan_standalone(const evo_pt_problem *p, const evo_pt_options *opt,
                                  evo_pt_plan *out, evo_error *err);
/* Best over every edge device and every cloud device. */
evo_status evo_pt_plan_cloud(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_plan *out,
                             evo_error *err);
/* One given pair; `single_split_only` restricts it to cuts at one point of
 * the execution order (Neurosurgeon), used as a baseline. */
evo_status evo_pt_plan_cloud_pair(const evo_pt_problem *p, const evo_pt_options *opt, int32_t edge,
                                  int32_t cloud, bool single_split_only, evo_pt_plan *out,
                                  evo_error *err);
evo_status evo_pt_plan_cluster(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_plan *out,
                               evo_error *err);

/* All three kinds, best first by the objective (feasible before infeasible),
 * and an explanation: a table of each kind's latency, period and memory and
 * why the winner won, or which device lacks how much memory. */
typedef struct evo_pt_result {
    evo_pt_plan plans[EVO_PT_KIND_COUNT_]; /* indexed by evo_pt_kind */
    int32_t best;                          /* kind of the winner, -1 if none fits */
    char *explanation;                     /* owned, multi-line text */
} evo_pt_result;

evo_status evo_pt_plan_auto(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_result *out,
                            evo_error *err);
void evo_pt_result_free(evo_pt_result *r);

/* ---------------------------------------------------------------- models */

struct evo_db;

/* Build the cost problem of a compiled program (its nodes and activation
 * tensors; weights, scratch and in-place rules as the program builder
 * uses). Per-op latency on each device: the device class's measured profile
 * of this model when db has one (model_id > 0), else the class's calibration
 * with the predictor fitted on db, else the device's gflops/mem_gbps
 * roofline. db may be NULL. */
evo_status evo_pt_problem_from_program(const evo_program *prog, const evo_pt_topology *topo,
                                       struct evo_db *db, int64_t model_id, const char *model_name,
                                       evo_pt_problem *out, evo_error *err);

/* ---------------------------------------------------------------- output */

/* The plan as JSON text (docs/placement.md), malloc'd; result may be NULL
 * (then no alternatives or explanation are written). */
char *evo_pt_plan_to_json(const evo_pt_problem *p, const evo_pt_plan *plan,
                          const evo_pt_result *result, evo_pt_objective obj);
/* Graphviz DOT of the graph coloured by device, cut edges labelled by size
 * (malloc'd). */
char *evo_pt_plan_to_dot(const evo_pt_problem *p, const evo_pt_plan *plan);
/* An SVG timeline of one request: a row per device and per link used. */
char *evo_pt_plan_timeline_svg(const evo_pt_problem *p, const evo_pt_plan *plan);

/* ---------------------------------------------------------------- split */

struct evo_split_plan;

/* The split plan (evo/split.h) of a plan's stages for graph g, the inferred
 * graph the plan was made from (same file, same dims): node_indices are
 * mapped back to graph nodes and evo_split_plan_finish fills the stages'
 * inputs and outputs. EVO_ERR_MISMATCH when the plan is for another model. */
evo_status evo_pt_split_plan_from_json(const evo_graph *g, const char *json, size_t len,
                                       const char *name, struct evo_split_plan *out,
                                       evo_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EVO_PARTITION_H */
