/*
 * evo node runtime: programs (a graph compiled for execution, with its memory
 * plan) and the executor that runs a program in ONE caller-provided arena.
 *
 * A program is plain data: a tensor table (dtype, shape, constant data or an
 * arena offset), a node table in execution order (op, params, input/output
 * tensor indices, scratch offset), and the arena size. The hosted compiler
 * (evo_program_build) makes one from an inferred evo_graph; the compact
 * model loader (.evm, core/) makes one that points into a verified blob. The
 * executor does not care which.
 *
 * The arena holds everything that changes during inference: the executor's
 * tensor views and pointer tables, every activation at its planned offset,
 * and per-node scratch. evo_program_arena_size() is exact; no guessing.
 * evo_exec_* never allocate, never do I/O, and are portable C11.
 */
#ifndef EVO_NODE_H
#define EVO_NODE_H

#include "evo/core.h"
#include "evo/graph.h"
#include "evo/op.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVO_ARENA_ALIGN 64 /* every activation offset is a multiple */

enum {
    EVO_PT_CONST = 1u << 0,  /* t.data points at constant data (weights) */
    EVO_PT_INPUT = 1u << 1,  /* the caller writes it before a run */
    EVO_PT_OUTPUT = 1u << 2, /* the caller reads it after a run */
};

typedef struct evo_prog_tensor {
    const char *name; /* may be "" when names are stripped */
    evo_dtype dtype;
    evo_shape shape;
    uint32_t flags;         /* EVO_PT_* */
    const void *const_data; /* CONST: the data (borrowed from the graph/blob) */
    uint64_t arena_offset;  /* not CONST: offset in the arena's activation area */
    uint64_t nbytes;        /* dense size in bytes */
} evo_prog_tensor;

typedef struct evo_prog_node {
    const char *name;
    const evo_op_def *op;
    const void *params; /* op->parse output (borrowed) */
    int32_t n_in, n_out;
    const int32_t *in; /* tensor indices, -1 = absent */
    const int32_t *out;
    uint64_t scratch_offset; /* in the activation area */
    uint64_t scratch_bytes;
} evo_prog_node;

typedef struct evo_program {
    int32_t n_tensors;
    const evo_prog_tensor *tensors;
    int32_t n_nodes;
    const evo_prog_node *nodes; /* execution order */
    int32_t n_inputs, n_outputs;
    const int32_t *inputs; /* tensor indices */
    const int32_t *outputs;
    uint64_t activation_bytes;       /* planned size of the activation area */
    uint64_t activation_lower_bound; /* max over steps of bytes alive at once */
    uint64_t weights_bytes;          /* sum of constant tensors */
    void *owner_;                    /* private: the builder's allocations */
} evo_program;

/* ---------------------------------------------------------------- threads (hosted) */

/* A pool of intra-op threads (node/threads.c, pthreads): big Convs are split
 * by output channels across the caller and n-1 workers. Single-threaded
 * execution stays the default. Workers spin briefly between ops during a
 * run, then sleep. One pool serves one running executor at a time. */
#define EVO_THREADS_MAX 64
typedef struct evo_threads evo_threads;
/* n threads including the caller (1..EVO_THREADS_MAX); EVO_ERR_INVALID_ARG,
 * EVO_ERR_NOMEM or EVO_ERR_IO (a thread did not start). */
evo_status evo_threads_create(int32_t n, evo_threads **out, evo_error *err);
void evo_threads_destroy(evo_threads *t); /* NULL is fine */
int32_t evo_threads_count(const evo_threads *t);
/* How many ops ran split over the threads so far (for tests and logs). */
int64_t evo_threads_split_ops(const evo_threads *t);

/* ---------------------------------------------------------------- building (hosted) */

typedef struct evo_program_options {
    bool no_inplace; /* disable in-place reuse (debugging) */
} evo_program_options;

/* Compile an inferred graph (every value typed and static-shaped, every node
 * with an op) into a program with a memory plan. The program borrows the
 * graph's constant data, params and names: keep the graph alive while the
 * program is used. Free with evo_program_free. */
evo_status evo_program_build(const evo_graph *g, const evo_program_options *opt, evo_program **out,
                             evo_error *err);
void evo_program_free(evo_program *p);

/* ---------------------------------------------------------------- running (portable) */

/* Exact arena bytes this program needs: executor bookkeeping + activations +
 * scratch, including alignment padding. */
size_t evo_program_arena_size(const evo_program *p);

struct evo_kctx;
struct evo_op_def;

typedef struct evo_exec {
    const evo_program *prog;
    evo_tensor *tensors;        /* views, in the arena */
    evo_tensor **ptrs;          /* per-node in/out pointer tables, in the arena */
    unsigned char *activations; /* the activation area, in the arena */
    /* Intra-op threads (hosted builds, evo_exec_set_threads); NULL = one
     * thread. Called per node; returns false when it did not run the node.
     * A hook rather than a call so the portable executor needs no threads. */
    evo_threads *threads;
    bool (*threads_run)(evo_threads *t, const struct evo_op_def *op, const struct evo_kctx *c,
                        evo_status *status);
} evo_exec;

/* Lay the executor out in `arena` (at least evo_program_arena_size bytes,
 * any alignment: it is aligned internally). EVO_ERR_NOMEM if too small. */
evo_status evo_exec_init(evo_exec *x, const evo_program *p, void *arena, size_t arena_bytes);

/* Hosted: run x's big Convs on t's threads (t NULL or of 1 thread: one
 * thread). Sizes the workers' scratch for this program now (EVO_ERR_NOMEM),
 * so runs allocate nothing. t must outlive its use by x. */
evo_status evo_exec_set_threads(evo_exec *x, evo_threads *t, evo_error *err);

/* Input/output views: write input data through evo_exec_input(x,i)->data
 * (nbytes of the program tensor) before evo_exec_run; read outputs after. */
evo_tensor *evo_exec_input(evo_exec *x, int32_t i);
const evo_tensor *evo_exec_output(const evo_exec *x, int32_t i);

/* Run all nodes in order. On failure, *failed_node (if not NULL) receives the
 * index of the node that failed. */
evo_status evo_exec_run(evo_exec *x, int32_t *failed_node);

#ifdef __cplusplus
}
#endif
#endif /* EVO_NODE_H */
