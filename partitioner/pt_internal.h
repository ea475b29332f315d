/*
 * Private pieces shared by the partitioner's files: message routing, stage
 * boundaries and memory checks.
 */
#ifndef EVO_PT_INTERNAL_H
#define EVO_PT_INTERNAL_H

#include <math.h>

#include "evo/partition.h"

/* What a message carries, enough to size it under every encoding. */
typedef struct pt_wire {
    uint64_t raw;       /* bytes as they are */
    uint64_t f32_bytes; /* of which float32 */
    uint64_t f32_numel;
    uint32_t n_f32; /* float32 tensors (each int8 one carries a scale and zero point) */
    uint32_t n_tensors;
} pt_wire;

void pt_wire_add(pt_wire *w, const evo_pt_tensor *t);
uint64_t pt_wire_bytes(const pt_wire *w, evo_pt_encoding enc);

/* Fastest paths for one message between all device pairs (Floyd-Warshall
 * over the listed links): dist[a*k+b] in ms (INFINITY when no path; 0 on the
 * diagonal), next[a*k+b] the first hop's device (-1), and send[a*k+b] the
 * largest serialization time of a hop on that path (the pipeline limit).
 * Arrays hold k*k entries. */
void pt_routes(const evo_pt_topology *t, const pt_wire *w, double *dist, int32_t *next,
               double *send);

/* A device's memory check: true if weights, arena and overhead fit; else
 * *lack receives the missing bytes (in flash or memory). */
bool pt_fits(const evo_pt_device *d, uint64_t weights, uint64_t arena, uint64_t *lack);

/* Stage arena with node positions known: pos[node] is the node's place in
 * the order (the stage is positions [start, start+len)). */
evo_status pt_stage_arena_pos(const evo_pt_problem *p, const int32_t *order, const int32_t *pos,
                              int32_t start, int32_t len, bool exact, uint64_t *arena,
                              uint64_t *lower_bound, evo_error *err);

/* True if tensor t is alive across position P of the order given by pos. */
bool pt_live_at(const evo_pt_problem *p, const int32_t *pos, int32_t t, int32_t P);

/* "13.3 MiB" */
const char *pt_fmt_bytes(uint64_t b, char *buf, size_t cap);

/* Plans with empty allocations for n_devices. */
evo_status pt_plan_alloc_use(evo_pt_plan *plan, int32_t n_devices, evo_error *err);
/* Swap best and cand if cand is better for obj (feasible first). */
bool pt_plan_better(const evo_pt_plan *cand, const evo_pt_plan *best, evo_pt_objective obj);
void pt_plan_move(evo_pt_plan *dst, evo_pt_plan *src);

double pt_now_ms(void);

/* A growing text buffer (text_buf.c). Start zeroed; pt_buf_printf appends
 * (after an allocation failure it does nothing and sets failed); pt_buf_take
 * hands over the text (caller frees), or frees it and returns NULL if any
 * append failed. */
typedef struct pt_buf {
    char *s;
    size_t n, cap;
    bool failed;
} pt_buf;
void pt_buf_printf(pt_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
char *pt_buf_take(pt_buf *b);

#endif /* EVO_PT_INTERNAL_H */
