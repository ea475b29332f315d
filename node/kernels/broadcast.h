/*
 * ONNX multidirectional broadcasting, planned once and iterated cheaply.
 *
 * A plan aligns every input shape to the output's rank (leading 1s), drops
 * output dims of size 1, and merges neighbouring dims in which every input
 * behaves the same way (each input either spans both dims or is broadcast
 * along both). What is left is a short list of "outer" dims and one innermost
 * run in which each input advances by 0 (broadcast) or 1 (dense) elements per
 * output element. Kernels then loop over the run with a tight, vectorizable
 * loop; the iterator only steps between runs.
 *
 * Examples (output <- inputs):
 *   [2,3,4] <- [2,3,4],[2,3,4]  one run of 24, strides 1,1
 *   [2,3,4] <- [2,3,4],[4]      6 runs of 4, strides 1,1
 *   [1,64,56,56] <- x,[64,1,1]  64 runs of 3136, strides 1,0 (per channel)
 *   [2,3,4] <- [2,3,4],[]       one run of 24, strides 1,0 (scalar)
 *
 * Offsets are in elements, so one plan serves inputs of different dtypes
 * (Where's bool condition next to float data). Portable C11, no allocation.
 */
#ifndef EVO_KERNELS_BROADCAST_H
#define EVO_KERNELS_BROADCAST_H

#include "evo/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVO_BCAST_MAX_IN 4

typedef struct evo_bcast {
    int32_t n_in;
    int64_t numel;                          /* output elements; 0 = nothing to do */
    int64_t inner;                          /* elements per run (>= 1 unless numel 0) */
    int32_t inner_stride[EVO_BCAST_MAX_IN]; /* per input: 0 or 1 within a run */
    int32_t outer_rank;                     /* collapsed dims around the runs */
    int64_t outer_dims[EVO_MAX_RANK];
    int64_t outer_stride[EVO_BCAST_MAX_IN][EVO_MAX_RANK]; /* elements; 0 = broadcast */
} evo_bcast;

/* Plan broadcasting n_in (1..EVO_BCAST_MAX_IN) input shapes to `out`, which
 * must be their broadcast shape (as evo_shape_broadcast computes it) or, for
 * unidirectional broadcasting, the shape of the input being broadcast onto.
 * EVO_ERR_SHAPE if an input cannot broadcast to `out`; EVO_ERR_INVALID_ARG
 * for a bad n_in or rank; EVO_ERR_LIMIT if `out` has more than INT64_MAX
 * elements. */
evo_status evo_bcast_plan(evo_bcast *b, const evo_shape *out, const evo_shape *const *in,
                          int32_t n_in);

/* Iteration over the runs:
 *
 *     evo_bcast_iter it;
 *     evo_bcast_begin(b, &it);
 *     while (evo_bcast_next(b, &it))
 *         kernel(out + it.out_off, a + it.in_off[0], b->inner_stride[0], ...,
 *                b->inner);
 *
 * out_off and in_off[] are element offsets of the current run's first
 * element. The output is written in order, run after run. */
typedef struct evo_bcast_iter {
    int64_t out_off;
    int64_t in_off[EVO_BCAST_MAX_IN];
    int64_t idx[EVO_MAX_RANK];
    int64_t runs_left; /* runs not yet returned by next */
    bool started;
} evo_bcast_iter;

void evo_bcast_begin(const evo_bcast *b, evo_bcast_iter *it);
/* Advance to the next run (the first one on the first call); false when
 * all runs have been visited. */
bool evo_bcast_next(const evo_bcast *b, evo_bcast_iter *it);

#ifdef __cplusplus
}
#endif
#endif /* EVO_KERNELS_BROADCAST_H */
