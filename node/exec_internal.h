/*
 * Executor internals shared with evo's own tools (profiler, tests); not part
 * of the public API in include/evo/node.h.
 */
#ifndef EVO_EXEC_INTERNAL_H
#define EVO_EXEC_INTERNAL_H

#include "evo/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run only node k (0 <= k < n_nodes, in execution order) of an initialized
 * executor: lets a profiler time each op by calling k = 0, 1, ... in order
 * (running nodes out of order computes garbage, but never touches memory
 * outside the arena). Costs O(k) to find the node's pointer table.
 * EVO_ERR_INVALID_ARG for a bad k or an uninitialized executor; otherwise
 * the op's status. */
evo_status evo_exec_run_node(evo_exec *x, int32_t k);

#ifdef __cplusplus
}
#endif
#endif /* EVO_EXEC_INTERNAL_H */
