/*
 * Edge-cluster planning: the execution order is cut into contiguous ranges,
 * each on its own device, for least latency or the shortest pipeline period.
 *
 * State after placing nodes [0, i): (i, U = devices used, d = the last one).
 * A transition places [i, j) on a device d' outside U:
 *     latency += route(i, d -> d') + compute(d', i, j) [+ route(n, d' -> sink)]
 *     period   = max(period, slowest hop of that message, compute(d', i, j))
 * route(i, ...) is the fastest path for the message of every tensor alive at
 * boundary i, precomputed per boundary. The first message comes from the
 * source (not counted in U). The throughput objective first finds the
 * smallest period, then the least latency among plans within it.
 *
 * Exact DP over all (i, U, d) when n^2 * 2^k * k^2 stays within the budget;
 * else a beam search that keeps the best `beam_width` states per boundary.
 *
 * Memory: a range fits a device if its weights, its arena and the device's
 * overhead fit. Arenas are computed lazily and cached per range: the search
 * uses the planner's lower bound (cheap, never above the real plan), then the
 * chosen stages get the exact plan; if one no longer fits, its exact figure
 * replaces the bound and the search runs again. Since every figure the search
 * sees is exact or a lower bound, the first plan that passes is optimal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_internal.h"

#define CL_MAX_NODES 2048
#define CL_DEFAULT_BUDGET 2e8
#define CL_DEFAULT_BEAM 256
#define CL_MAX_ROUNDS 200

typedef struct cl_ctx {
    const evo_pt_problem *p;
    int32_t n, k;
    double *dist;    /* (n+1) x k x k: message time at boundary i */
    double *send;    /* (n+1) x k x k: slowest hop of that message */
    double *csum;    /* k x (n+1): prefix compute (us) per device */
    int32_t *cinf;   /* k x (n+1): prefix count of nodes that cannot run */
    uint64_t *wsum;  /* n+1 prefix weights */
    uint64_t *arena; /* (n+1) x (n+1), 0 = not yet computed */
    uint8_t *arena_exact;
    int32_t *pos;
    evo_error *err;
    evo_status st;
} cl_ctx;

static void cl_free(cl_ctx *c)
{
    free(c->dist);
    free(c->send);
    free(c->csum);
    free(c->cinf);
    free(c->wsum);
    free(c->arena);
    free(c->arena_exact);
    free(c->pos);
}

static evo_status cl_init(cl_ctx *c, const evo_pt_problem *p, evo_error *err)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->n = p->n_nodes;
    c->k = p->n_devices;
    c->err = err;
    int32_t n = c->n, k = c->k;
    if (n > CL_MAX_NODES)
        return evo_error_set(err, EVO_ERR_LIMIT,
                             "cluster planning supports at most %d nodes; the model has %d",
                             CL_MAX_NODES, (int)n);
    size_t kk = (size_t)k * (size_t)k, n1 = (size_t)n + 1;
    c->dist = malloc(n1 * kk * sizeof *c->dist);
    c->send = malloc(n1 * kk * sizeof *c->send);
    c->csum = malloc((size_t)k * n1 * sizeof *c->csum);
    c->cinf = malloc((size_t)k * n1 * sizeof *c->cinf);
    c->wsum = malloc(n1 * sizeof *c->wsum);
    c->arena = calloc(n1 * n1, sizeof *c->arena);
    c->arena_exact = calloc(n1 * n1, 1);
    c->pos = malloc(n1 * sizeof *c->pos);
    pt_wire *wires = calloc(n1, sizeof *wires);
    int32_t *next = malloc(kk * sizeof *next);
    if (!c->dist || !c->send || !c->csum || !c->cinf || !c->wsum || !c->arena || !c->arena_exact ||
        !c->pos || !wires || !next) {
        free(wires);
        free(next);
        return evo_error_set(err, EVO_ERR_NOMEM, "cluster planning: out of memory");
    }
    for (int32_t i = 0; i < n; i++)
        c->pos[i] = i;
    /* a tensor is alive at boundaries (first, last] */
    for (int32_t t = 0; t < p->n_tensors; t++) {
        const evo_pt_tensor *x = &p->tensors[t];
        int32_t first = x->producer, last = x->graph_output ? n : p->last_use[t];
        for (int32_t b = first + 1; b <= last; b++)
            if (b >= 0)
                pt_wire_add(&wires[b], x);
    }
    for (int32_t b = 0; b <= n; b++) {
        double *dist = c->dist + (size_t)b * kk, *send = c->send + (size_t)b * kk;
        if (wires[b].n_tensors == 0) {
            for (size_t x = 0; x < kk; x++)
                dist[x] = send[x] = 0; /* nothing to send */
        } else {
            pt_routes(p->topo, &wires[b], dist, next, send);
        }
    }
    free(wires);
    free(next);
    c->wsum[0] = 0;
    for (int32_t i = 0; i < n; i++)
        c->wsum[i + 1] = c->wsum[i] + p->nodes[i].weight_bytes;
    for (int32_t d = 0; d < k; d++) {
        double *cs = c->csum + (size_t)d * n1;
        int32_t *ci = c->cinf + (size_t)d * n1;
        cs[0] = 0;
        ci[0] = 0;
        for (int32_t i = 0; i < n; i++) {
            double v = p->cost_us[(size_t)i * (size_t)k + (size_t)d];
            ci[i + 1] = ci[i] + (v == INFINITY);
            cs[i + 1] = cs[i] + (v == INFINITY ? 0 : v);
        }
    }
    return EVO_OK;
}

/* Compute time (ms) of [i, j) on d, INFINITY if a node cannot run there. */
static double cl_compute(const cl_ctx *c, int32_t d, int32_t i, int32_t j)
{
    size_t n1 = (size_t)c->n + 1;
    const int32_t *ci = c->cinf + (size_t)d * n1;
    if (ci[j] != ci[i])
        return INFINITY;
    const double *cs = c->csum + (size_t)d * n1;
    return (cs[j] - cs[i]) / 1000.0;
}

static uint64_t cl_arena(cl_ctx *c, int32_t i, int32_t j)
{
    size_t idx = (size_t)i * ((size_t)c->n + 1) + (size_t)j;
    if (c->arena[idx] == 0 && c->st == EVO_OK) {
        uint64_t a = 0;
        c->st = pt_stage_arena_pos(c->p, NULL, c->pos, i, j - i, false, &a, NULL, c->err);
        c->arena[idx] = a ? a : 1;
    }
    return c->arena[idx];
}

/* 0: fits; 1: does not fit, and no longer range from i fits either
 * (weights alone are too large); 2: does not fit. */
static int cl_fits(cl_ctx *c, int32_t d, int32_t i, int32_t j)
{
    const evo_pt_device *dev = &c->p->topo->devices[d];
    uint64_t w = c->wsum[j] - c->wsum[i];
    if (!pt_fits(dev, w, 0, NULL))
        return 1;
    return pt_fits(dev, w, cl_arena(c, i, j), NULL) ? 0 : 2;
}

/* ---------------------------------------------------------------- search */

typedef struct cl_state {
    uint32_t used;
    int8_t last;
    double val;
    double sec;  /* latency so far: ranks beam states of equal period */
    int32_t par; /* index of the parent entry, -1 for the start */
    int32_t at;  /* boundary */
} cl_state;

typedef struct cl_search {
    bool maximize_period; /* minimize the bottleneck instead of the sum */
    double cap;           /* latency search: skip parts slower than this */
    bool beam;
    int32_t width;
    /* result */
    double best;
    int32_t n_stages;
    int32_t dev[EVO_PT_MAX_DEVICES];
    int32_t len[EVO_PT_MAX_DEVICES];
} cl_search;

/* Entries per boundary live in one growing array; each boundary's entries
 * are deduplicated by (used, last) through an open-addressing table. */
typedef struct cl_pool {
    cl_state *e;
    size_t n, cap;
} cl_pool;

static bool cl_push(cl_pool *pl, const cl_state *s)
{
    if (pl->n == pl->cap) {
        size_t nc = pl->cap ? pl->cap * 2 : 1024;
        cl_state *ne = realloc(pl->e, nc * sizeof *ne);
        if (ne == NULL)
            return false;
        pl->e = ne;
        pl->cap = nc;
    }
    pl->e[pl->n++] = *s;
    return true;
}

static int cl_cmp_state(const void *a, const void *b)
{
    const cl_state *x = a, *y = b;
    if (x->val != y->val)
        return x->val < y->val ? -1 : 1;
    return x->sec < y->sec ? -1 : x->sec > y->sec ? 1 : 0;
}

/* Exact DP over dense (i, U, d) tables, or the beam search. Both fill
 * se->best and the stage list of the best plan (best INFINITY: none). */
static evo_status cl_run(cl_ctx *c, cl_search *se)
{
    const evo_pt_topology *topo = c->p->topo;
    int32_t n = c->n, k = c->k;
    size_t kk = (size_t)k * (size_t)k;
    se->best = INFINITY;
    se->n_stages = 0;
    /* per boundary: list of entries (start index into pool) */
    cl_pool pool = {0};
    size_t *bstart = malloc(((size_t)n + 2) * sizeof *bstart);
    /* dense map for the current target boundary: key -> entry index */
    size_t nkeys = ((size_t)1 << k) * (size_t)k;
    int32_t **slot = calloc((size_t)n + 1, sizeof *slot);
    evo_status st = EVO_OK;
    if (bstart == NULL || slot == NULL) {
        st = evo_error_set(c->err, EVO_ERR_NOMEM, "cluster planning: out of memory");
        goto done;
    }
    /* Entries for boundary j are created while boundaries < j expand, so
     * each boundary keeps a key table while it is a target. For the beam
     * the table is a hash over (used,last) of modest size. */
    size_t tab = se->beam ? ((size_t)1 << 16) : nkeys;
    for (int32_t j = 0; j <= n; j++) {
        slot[j] = NULL;
    }
    cl_pool *lists = calloc((size_t)n + 1, sizeof *lists);
    if (lists == NULL) {
        st = evo_error_set(c->err, EVO_ERR_NOMEM, "cluster planning: out of memory");
        goto done;
    }
    cl_state start = {.used = 0, .last = (int8_t)topo->source, .val = 0, .par = -1, .at = 0};
    if (!cl_push(&lists[0], &start)) {
        st = evo_error_set(c->err, EVO_ERR_NOMEM, "cluster planning: out of memory");
        goto free_lists;
    }
    /* entries of expanded boundaries, for back-tracking */
    for (int32_t i = 0; i < n && st == EVO_OK; i++) {
        cl_pool *L = &lists[i];
        if (L->n == 0)
            continue;
        if (se->beam && L->n > (size_t)se->width) {
            qsort(L->e, L->n, sizeof *L->e, cl_cmp_state);
            L->n = (size_t)se->width;
        }
        free(slot[i]);
        slot[i] = NULL;
        bstart[i] = pool.n;
        for (size_t q = 0; q < L->n; q++)
            if (!cl_push(&pool, &L->e[q])) {
                st = evo_error_set(c->err, EVO_ERR_NOMEM, "cluster planning: out of memory");
                break;
            }
        free(L->e);
        memset(L, 0, sizeof *L);
        size_t nexp = pool.n - bstart[i];
        for (size_t q = 0; q < nexp && st == EVO_OK; q++) {
            int32_t par = (int32_t)(bstart[i] + q);
            cl_state s = pool.e[par];
            const double *dist = c->dist + (size_t)i * kk, *send = c->send + (size_t)i * kk;
            for (int32_t d = 0; d < k && st == EVO_OK; d++) {
                if (s.used & (1u << d))
                    continue;
                double msg = dist[s.last * k + d];
                if (msg == INFINITY)
                    continue;
                double msg_send = send[s.last * k + d];
                if (se->maximize_period ? msg_send >= se->best : msg_send > se->cap)
                    continue;
                for (int32_t j = i + 1; j <= n; j++) {
                    int f = cl_fits(c, d, i, j);
                    if (c->st != EVO_OK) {
                        st = c->st;
                        break;
                    }
                    if (f == 1)
                        break;
                    if (f == 2)
                        continue;
                    double comp = cl_compute(c, d, i, j);
                    if (comp == INFINITY)
                        break; /* a node that cannot run here stays in every longer range */
                    if (!se->maximize_period && comp > se->cap)
                        break;
                    double v;
                    if (se->maximize_period) {
                        v = s.val;
                        if (msg_send > v)
                            v = msg_send;
                        if (comp > v)
                            v = comp;
                    } else {
                        v = s.val + msg + comp;
                    }
                    if (j == n) {
                        const double *dn = c->dist + (size_t)n * kk, *sn = c->send + (size_t)n * kk;
                        double out = dn[d * k + topo->sink];
                        if (out == INFINITY)
                            continue;
                        if (se->maximize_period) {
                            if (sn[d * k + topo->sink] > v)
                                v = sn[d * k + topo->sink];
                        } else {
                            if (sn[d * k + topo->sink] > se->cap)
                                continue;
                            v += out;
                        }
                        if (v < se->best) {
                            se->best = v;
                            /* back-track */
                            int32_t m = 0, ends[EVO_PT_MAX_DEVICES + 1];
                            int32_t devs[EVO_PT_MAX_DEVICES];
                            devs[m] = d;
                            ends[m] = n;
                            m++;
                            int32_t e = par;
                            int32_t at = i;
                            while (pool.e[e].par >= 0) {
                                devs[m] = pool.e[e].last;
                                ends[m] = at;
                                at = pool.e[pool.e[e].par].at;
                                m++;
                                e = pool.e[e].par;
                            }
                            se->n_stages = m;
                            int32_t prev = 0;
                            for (int32_t x = 0; x < m; x++) {
                                se->dev[x] = devs[m - 1 - x];
                                se->len[x] = ends[m - 1 - x] - prev;
                                prev = ends[m - 1 - x];
                            }
                        }
                        continue;
                    }
                    if (v >= se->best)
                        continue; /* cannot beat a finished plan (costs only grow) */
                    cl_state ns = {.used = s.used | (1u << d),
                                   .last = (int8_t)d,
                                   .val = v,
                                   .sec = s.sec + msg + comp,
                                   .par = par,
                                   .at = j};
                    size_t key = (size_t)ns.used * (size_t)k + (size_t)d;
                    if (slot[j] == NULL) {
                        slot[j] = malloc(tab * sizeof *slot[j]);
                        if (slot[j] == NULL) {
                            st = evo_error_set(c->err, EVO_ERR_NOMEM,
                                               "cluster planning: out of memory");
                            break;
                        }
                        for (size_t x = 0; x < tab; x++)
                            slot[j][x] = -1;
                    }
                    size_t h = se->beam ? (key * 0x9E3779B97F4A7C15ull) % tab : key;
                    cl_pool *T = &lists[j];
                    for (;;) {
                        int32_t ix = slot[j][h];
                        if (ix < 0) {
                            if (se->beam && T->n >= tab / 2) {
                                /* table full enough: keep the list as is,
                                 * without dedup (the beam prunes it) */
                                if (!cl_push(T, &ns))
                                    st = evo_error_set(c->err, EVO_ERR_NOMEM,
                                                       "cluster planning: out of memory");
                                break;
                            }
                            slot[j][h] = (int32_t)T->n;
                            if (!cl_push(T, &ns))
                                st = evo_error_set(c->err, EVO_ERR_NOMEM,
                                                   "cluster planning: out of memory");
                            break;
                        }
                        cl_state *o = &T->e[ix];
                        if (o->used == ns.used && o->last == ns.last) {
                            if (v < o->val || (v == o->val && ns.sec < o->sec))
                                *o = ns;
                            break;
                        }
                        h = (h + 1) % tab;
                    }
                }
            }
        }
    }
free_lists:
    for (int32_t j = 0; j <= n; j++) {
        free(lists[j].e);
        free(slot[j]);
    }
    free(lists);
done:
    free(pool.e);
    free(bstart);
    free(slot);
    return st;
}

/* Lexicographic search for the objective; fills se with the best plan. */
static evo_status cl_search_objective(cl_ctx *c, evo_pt_objective obj, bool beam, int32_t width,
                                      cl_search *se)
{
    memset(se, 0, sizeof *se);
    se->beam = beam;
    se->width = width;
    se->cap = INFINITY;
    if (obj == EVO_PT_THROUGHPUT) {
        se->maximize_period = true;
        evo_status st = cl_run(c, se);
        if (st != EVO_OK || se->best == INFINITY)
            return st;
        cl_search lat = *se;
        lat.maximize_period = false;
        lat.cap = se->best * (1 + 1e-12);
        if ((st = cl_run(c, &lat)) != EVO_OK)
            return st;
        if (lat.best < INFINITY)
            *se = lat;
        return EVO_OK;
    }
    return cl_run(c, se);
}

/* Why no cluster plan exists: a node too large for every device, or the
 * devices' memory as a whole. */
static void cl_explain(cl_ctx *c, evo_pt_plan *out)
{
    const evo_pt_problem *p = c->p;
    char b1[32], b2[32];
    for (int32_t i = 0; i < c->n; i++) {
        uint64_t best_lack = UINT64_MAX;
        int32_t best_d = -1;
        for (int32_t d = 0; d < c->k; d++) {
            uint64_t lack;
            if (pt_fits(&p->topo->devices[d], p->nodes[i].weight_bytes, cl_arena(c, i, i + 1),
                        &lack) &&
                cl_compute(c, d, i, i + 1) < INFINITY) {
                best_d = -2;
                break;
            }
            if (lack < best_lack && lack > 0) {
                best_lack = lack;
                best_d = d;
            }
        }
        if (best_d >= 0) {
            const evo_pt_node *nd = &p->nodes[i];
            snprintf(out->reason, sizeof out->reason,
                     "node '%s' (%s) alone fits no device: it needs %s of weights and %s of arena; "
                     "the closest, device '%s', lacks %s",
                     nd->name ? nd->name : "?", nd->op ? nd->op : "?",
                     pt_fmt_bytes(nd->weight_bytes, b1, sizeof b1),
                     pt_fmt_bytes(cl_arena(c, i, i + 1), b2, sizeof b2),
                     p->topo->devices[best_d].name, pt_fmt_bytes(best_lack, (char[32]){0}, 32));
            return;
        }
    }
    uint64_t cap = 0;
    for (int32_t d = 0; d < c->k; d++) {
        const evo_pt_device *dev = &p->topo->devices[d];
        uint64_t room = dev->flash_bytes > 0 ? dev->flash_bytes
                        : dev->memory_bytes > dev->overhead_bytes
                            ? dev->memory_bytes - dev->overhead_bytes
                            : 0;
        cap += room;
    }
    snprintf(out->reason, sizeof out->reason,
             "no split of the execution order into stages on distinct devices fits or is "
             "connected: the model's weights are %s, the devices hold %s for weights in all",
             pt_fmt_bytes(c->wsum[c->n], b1, sizeof b1), pt_fmt_bytes(cap, b2, sizeof b2));
}

evo_status evo_pt_plan_cluster(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_plan *out,
                               evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = EVO_PT_CLUSTER;
    if (p == NULL || p->cons_off == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "cluster planning: no finalized problem");
    double t0 = pt_now_ms();
    evo_pt_options o = opt ? *opt : (evo_pt_options){0};
    double budget = o.exact_budget > 0 ? o.exact_budget : CL_DEFAULT_BUDGET;
    int32_t width = o.beam_width > 0 ? o.beam_width : CL_DEFAULT_BEAM;
    cl_ctx c;
    evo_status st = cl_init(&c, p, err);
    if (st != EVO_OK) {
        cl_free(&c);
        return st;
    }
    double n = p->n_nodes, k = p->n_devices;
    double work = n * n * k * k * (double)(1ull << p->n_devices);
    double states = (n + 1) * k * (double)(1ull << p->n_devices);
    bool beam = o.force_beam || work > budget || states > 2e7 || p->n_devices > 24;
    cl_search se;
    for (int round = 0;; round++) {
        if ((st = cl_search_objective(&c, o.objective, beam, width, &se)) != EVO_OK)
            goto done;
        if (se.best == INFINITY)
            break;
        /* exact arenas of the chosen stages */
        bool again = false;
        int32_t at = 0;
        for (int32_t s = 0; s < se.n_stages; s++) {
            int32_t i = at, j = at + se.len[s];
            at = j;
            size_t idx = (size_t)i * ((size_t)c.n + 1) + (size_t)j;
            if (c.arena_exact[idx])
                continue;
            uint64_t a;
            if ((st = pt_stage_arena_pos(p, NULL, c.pos, i, j - i, true, &a, NULL, err)) != EVO_OK)
                goto done;
            c.arena[idx] = a;
            c.arena_exact[idx] = 1;
            if (!pt_fits(&p->topo->devices[se.dev[s]], c.wsum[j] - c.wsum[i], a, NULL))
                again = true;
        }
        if (!again)
            break;
        if (round >= CL_MAX_ROUNDS) {
            st = evo_error_set(err, EVO_ERR_LIMIT,
                               "cluster planning: memory checks did not settle in %d rounds",
                               CL_MAX_ROUNDS);
            goto done;
        }
    }
    if (se.best == INFINITY) {
        if ((st = pt_plan_alloc_use(out, p->n_devices, err)) != EVO_OK)
            goto done;
        cl_explain(&c, out);
        out->feasible = false;
    } else {
        if ((st = evo_pt_evaluate(p, se.n_stages, se.dev, se.len, NULL, EVO_PT_CLUSTER, out,
                                  err)) != EVO_OK)
            goto done;
    }
    snprintf(out->method, sizeof out->method, "%s", beam ? "beam" : "dp");
    out->exact = !beam;
    out->kind = EVO_PT_CLUSTER;
    out->planning_ms = pt_now_ms() - t0;
done:
    cl_free(&c);
    return st;
}
