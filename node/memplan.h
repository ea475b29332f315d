/*
 * The memory planner: a pure function from buffer lifetimes to arena offsets.
 *
 * Following TensorFlow Lite Micro, planning is separate from owning memory:
 * the planner only sees buffers {size, first step, last step} (inclusive:
 * a buffer is alive at every step from first to last) and returns an offset
 * for each, such that two buffers alive at a common step never overlap in
 * memory. The program builder turns tensors and per-node scratch into
 * buffers; the executor only reads the offsets.
 *
 * Portable C11: no allocation. The caller passes work memory of
 * evo_memplan_work_bytes() bytes (the host builder mallocs it; a device could
 * use a static buffer).
 *
 * Method: greedy placement (Pisarchyk & Lee, "Efficient Memory Management for
 * Deep Neural Net Inference", 2020). Buffers are taken in some order and each
 * is put into the best gap among the already placed buffers that overlap it in
 * time. EVO_MEMPLAN_AUTO tries several orders and gap rules (each O(n^2)) and
 * keeps the smallest plan; ties go to the earlier strategy so results are
 * deterministic.
 *
 * The lower bound reported is the largest sum of (aligned) sizes alive at one
 * step: no plan that keeps those buffers apart can be smaller.
 */
#ifndef EVO_MEMPLAN_H
#define EVO_MEMPLAN_H

#include "evo/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_memplan_buf {
    uint64_t size;      /* bytes; 0 = needs no storage (offset 0) */
    int32_t first_step; /* 0 <= first_step <= last_step < n_steps */
    int32_t last_step;
} evo_memplan_buf;

/* In-place pair: buffer `buf` reuses the storage of buffer `onto` (an op that
 * writes its output over its input). The planner places both at one offset and
 * treats them as one buffer alive over the union of their lifetimes, of the
 * larger size. It trusts the caller that sharing is correct. Chains are fine
 * (b onto a, c onto b). */
typedef struct evo_memplan_alias {
    int32_t buf;
    int32_t onto;
} evo_memplan_alias;

typedef enum evo_memplan_strategy {
    EVO_MEMPLAN_AUTO = 0,           /* try all below, keep the smallest */
    EVO_MEMPLAN_SIZE_BEST_FIT,      /* by size (largest first), smallest fitting gap */
    EVO_MEMPLAN_SIZE_FIRST_FIT,     /* by size, lowest fitting gap (TFLite Micro's) */
    EVO_MEMPLAN_BREADTH_BEST_FIT,   /* busiest steps first, by size within a step */
    EVO_MEMPLAN_FIRST_USE_BEST_FIT, /* by first step, then size */
    EVO_MEMPLAN_AREA_BEST_FIT,      /* by size x lifetime */
    EVO_MEMPLAN_STRATEGY_COUNT_
} evo_memplan_strategy;

typedef struct evo_memplan_result {
    uint64_t total;                /* arena bytes the plan needs (aligned) */
    uint64_t lower_bound;          /* max over steps of aligned bytes alive */
    evo_memplan_strategy strategy; /* the strategy that produced the plan */
} evo_memplan_result;

/* A static name for a strategy ("size-best-fit", ...). */
const char *evo_memplan_strategy_name(evo_memplan_strategy s);

/* Work memory needed to plan n_bufs buffers over n_steps steps; SIZE_MAX if
 * the count overflows size_t (then planning is impossible anyway). */
size_t evo_memplan_work_bytes(int32_t n_bufs, int32_t n_steps);

/* Plan: offsets[i] receives buffer i's offset (a multiple of align, which
 * must be a power of two); sizes are rounded up to align. res receives the
 * total and the lower bound. work must be at least evo_memplan_work_bytes
 * bytes, any alignment. Errors: EVO_ERR_INVALID_ARG for bad steps, aliases,
 * align or strategy; EVO_ERR_NOMEM for too little work memory; EVO_ERR_LIMIT
 * when the sizes overflow 64 bits. */
evo_status evo_memplan_plan(const evo_memplan_buf *bufs, int32_t n_bufs, int32_t n_steps,
                            const evo_memplan_alias *aliases, int32_t n_aliases, uint64_t align,
                            evo_memplan_strategy strategy, uint64_t *offsets,
                            evo_memplan_result *res, void *work, size_t work_bytes, evo_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EVO_MEMPLAN_H */
