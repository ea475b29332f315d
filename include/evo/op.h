/*
 * evo op definitions: the table of function pointers every operator provides.
 *
 * One op = one file family under node/kernels/: the reference file
 * (node/kernels/ref/<op>.c) defines `const evo_op_def evo_op_<Name>` with
 * parse, infer, cost and the portable reference eval; optimized kernels for
 * an ISA (node/kernels/x86/...) are selected inside eval at run time and are
 * tested against the reference. Registration is one line in
 * node/ops_list.h, which also fixes the op's stable numeric id (used by the
 * compact model format, so never renumber).
 *
 * Life of an op in a model (TFLite Micro's split, done ahead of time):
 *   parse  (host, once):  node attributes -> params (a POD struct of at most
 *                         EVO_PARAMS_MAX bytes, no pointers), opset-aware.
 *   infer  (host, once):  input dtypes/shapes (and constant input data when
 *                         present) -> output dtypes/shapes. All validation
 *                         happens here or in parse: wrong ranks, bad axes,
 *                         mismatched channels give a clear error.
 *   scratch(host, once):  extra arena bytes the eval needs (im2col etc.).
 *   eval   (device, per inference): computes outputs. Trusts that infer
 *                         succeeded on exactly these shapes; no allocation,
 *                         no I/O, no checks beyond what safety requires.
 *
 * Opset differences: the importer rewrites older forms whose attributes
 * became inputs (Slice-1 starts, Pad-2 pads, Split-2 split, Squeeze-1 axes,
 * Reduce* axes, Clip-6 min/max, Upsample-7 scales ...) into the newest form
 * (constant inputs) before parse runs, so kernels implement the newest form;
 * other semantic differences (Softmax axis before 13) are handled in parse,
 * which receives the node's opset version in node->opset.
 */
#ifndef EVO_OP_H
#define EVO_OP_H

#include "evo/core.h"
#include "evo/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a kernel sees: its parsed params, its input and output tensors, and
 * its scratch area. in[i] is NULL for an absent optional input; out[i] NULL
 * for an absent optional output. In infer, inputs that are not constant have
 * data == NULL; outputs have only to be given dtype and shape. In eval, all
 * present tensors have data. */
typedef struct evo_kctx {
    const void *params;
    evo_tensor *const *in;
    int32_t n_in;
    evo_tensor *const *out;
    int32_t n_out;
    void *scratch; /* eval only: scratch_bytes, 16-byte aligned */
    size_t scratch_bytes;
    evo_error *err; /* parse/infer only; NULL in eval */
} evo_kctx;

/* Per-op cost facts for the cost model (issue: partitioner). */
typedef struct evo_op_cost {
    uint64_t flops;       /* multiply-add counted as 2 */
    uint64_t param_bytes; /* bytes of constant inputs (weights) */
    uint64_t in_bytes;    /* bytes of non-constant inputs */
    uint64_t out_bytes;   /* bytes of outputs */
} evo_op_cost;

enum {
    /* Output 0 may share input 0's buffer (same dtype and byte size): eval
     * reads each input element before writing the same output element. */
    EVO_OP_INPLACE = 1u << 0,
    /* Output values depend only on input shapes (Shape, Size): folded to a
     * constant as soon as shapes are known. */
    EVO_OP_SHAPE_ONLY = 1u << 1,
    /* Never fold to a constant even when all inputs are constant
     * (random generators). */
    EVO_OP_NO_FOLD = 1u << 2,
};

typedef struct evo_op_def {
    const char *name;               /* ONNX op_type */
    const char *domain;             /* "" = ai.onnx */
    uint16_t id;                    /* stable id from node/ops_list.h */
    uint32_t flags;                 /* EVO_OP_* */
    int32_t min_inputs, max_inputs; /* max -1 = variadic */
    int32_t min_outputs, max_outputs;

    /* Attributes -> params. params is zeroed, EVO_PARAMS_MAX bytes, aligned 8.
     * May be NULL when the op has no attributes. */
    evo_status (*parse)(const evo_node *node, void *params, evo_error *err);

    /* Output dtypes and shapes from inputs (see evo_kctx). Required. */
    evo_status (*infer)(const evo_kctx *c);

    /* Extra arena bytes eval needs for these shapes. NULL = none. */
    size_t (*scratch)(const evo_kctx *c);

    /* Cost facts for these shapes. NULL = generic (1 flop per output
     * element, bytes from tensor sizes). Only flops need to be filled by an
     * op; the caller adds the byte counts. */
    void (*cost)(const evo_kctx *c, evo_op_cost *cost);

    /* Compute outputs. Required. Returns EVO_OK, or an error only for
     * conditions that depend on data values (e.g. an index out of range in
     * Gather). */
    evo_status (*eval)(const evo_kctx *c);
} evo_op_def;

/* Registry (node/ops_registry.c). */
const evo_op_def *evo_op_find(const char *domain, const char *op_type);
const evo_op_def *evo_op_by_id(uint16_t id);
/* Iterate all registered ops: index 0..evo_op_count()-1. */
size_t evo_op_count(void);
const evo_op_def *evo_op_at(size_t index);

/* ---------------------------------------------------------------- helpers for op files */

/* The common infer check of arity, and that required inputs and outputs are
 * present; fills c->err. Every caller of infer runs it first, so an op's
 * infer may rely on it. */
evo_status evo_op_check_arity(const evo_op_def *op, const evo_kctx *c);
/* Run op->eval, or nothing when every present output is empty (0 elements):
 * there is nothing to write, and an op's loops may be bounded by param values
 * (groups, block sizes) rather than by tensor sizes, so an empty tensor must
 * not let a huge param spin them. Every caller of eval goes through here. */
evo_status evo_op_eval(const evo_op_def *op, const evo_kctx *c);
/* Normalize an axis in [-rank, rank) to [0, rank); EVO_ERR_SHAPE otherwise. */
evo_status evo_op_norm_axis(int64_t axis, int32_t rank, int32_t *out);

#ifdef __cplusplus
}
#endif
#endif /* EVO_OP_H */
