/*
 * Cloud-collaborative planning: one edge device e and one cloud device c.
 *
 * The edge runs a set S of nodes closed under predecessors (everything S
 * needs is in S), the cloud the rest; the input goes from the source to e,
 * the tensors crossing the cut from e to c in one message, and the result
 * from c to the sink. For a fixed route between e and c the latency is
 *     constant + sum_{v in S} t_e(v) + sum_{v not in S} t_c(v)
 *              + sum_{x crossing} bytes-time(x over the route)
 * which is a minimum s-t cut (DADS, Hu et al. 2019):
 *     s -> v  capacity t_c(v)   (cut when v runs on the cloud)
 *     v -> t  capacity t_e(v)   (cut when v runs on the edge)
 *     w -> u  infinite for every tensor u -> w (closure: no cloud -> edge flow)
 *     a tensor x gets a node a_x with producer -> a_x of capacity bytes-time(x)
 *     and a_x -> consumer (and a_x -> t for a graph output) infinite, so
 *     x is paid once however many consumers sit on the cloud.
 * Branches and skip connections are therefore cut anywhere. Every simple
 * route between e and c is tried (up to ROUTES_MAX; beyond, the fastest
 * routes for a range of message sizes), and the empty and full cuts and all
 * single split points of the execution order are evaluated too.
 *
 * The edge device's memory is not a cut constraint. When the best cut does
 * not fit, a penalty lambda * weight bytes is added to running each node on
 * the edge, and lambda is searched (doubling, then bisection) for the least
 * penalty whose cut fits; single split points that fit are candidates too.
 * Plans found that way are marked not exact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_internal.h"

#define CLOUD_ROUTES_MAX 64
#define CLOUD_EPS 1e-12

/* ---------------------------------------------------------------- max flow (Dinic) */

typedef struct mf_edge {
    int32_t to, next;
    double cap;
} mf_edge;

typedef struct mf_graph {
    int32_t n, m, cap_m;
    int32_t *head, *level, *it, *queue;
    mf_edge *e;
} mf_graph;

static void mf_free(mf_graph *g)
{
    free(g->head);
    free(g->level);
    free(g->it);
    free(g->queue);
    free(g->e);
    memset(g, 0, sizeof *g);
}

static bool mf_init(mf_graph *g, int32_t n, int32_t cap_m)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    g->cap_m = cap_m;
    g->head = malloc((size_t)n * sizeof *g->head);
    g->level = malloc((size_t)n * sizeof *g->level);
    g->it = malloc((size_t)n * sizeof *g->it);
    g->queue = malloc((size_t)n * sizeof *g->queue);
    g->e = malloc((size_t)cap_m * sizeof *g->e);
    if (!g->head || !g->level || !g->it || !g->queue || !g->e) {
        mf_free(g);
        return false;
    }
    for (int32_t i = 0; i < n; i++)
        g->head[i] = -1;
    return true;
}

static void mf_add(mf_graph *g, int32_t a, int32_t b, double cap)
{
    if (g->m + 2 > g->cap_m)
        return; /* sized by the caller; never happens */
    g->e[g->m] = (mf_edge){b, g->head[a], cap};
    g->head[a] = g->m++;
    g->e[g->m] = (mf_edge){a, g->head[b], 0};
    g->head[b] = g->m++;
}

static bool mf_bfs(mf_graph *g, int32_t s, int32_t t)
{
    for (int32_t i = 0; i < g->n; i++)
        g->level[i] = -1;
    int32_t qh = 0, qt = 0;
    g->level[s] = 0;
    g->queue[qt++] = s;
    while (qh < qt) {
        int32_t u = g->queue[qh++];
        for (int32_t x = g->head[u]; x >= 0; x = g->e[x].next)
            if (g->e[x].cap > CLOUD_EPS && g->level[g->e[x].to] < 0) {
                g->level[g->e[x].to] = g->level[u] + 1;
                g->queue[qt++] = g->e[x].to;
            }
    }
    return g->level[t] >= 0;
}

static double mf_dfs(mf_graph *g, int32_t u, int32_t t, double f)
{
    if (u == t)
        return f;
    for (int32_t *x = &g->it[u]; *x >= 0; *x = g->e[*x].next) {
        mf_edge *e = &g->e[*x];
        if (e->cap > CLOUD_EPS && g->level[e->to] == g->level[u] + 1) {
            double d = mf_dfs(g, e->to, t, f < e->cap ? f : e->cap);
            if (d > CLOUD_EPS) {
                if (e->cap != INFINITY)
                    e->cap -= d;
                if (g->e[*x ^ 1].cap != INFINITY)
                    g->e[*x ^ 1].cap += d;
                return d;
            }
        }
    }
    return 0;
}

/* Max flow; afterwards level[v] >= 0 marks the source side of a min cut.
 * Returns INFINITY when an infinite path joins s and t. */
static double mf_run(mf_graph *g, int32_t s, int32_t t)
{
    double flow = 0;
    while (mf_bfs(g, s, t)) {
        for (int32_t i = 0; i < g->n; i++)
            g->it[i] = g->head[i];
        double f;
        while ((f = mf_dfs(g, s, t, INFINITY)) > CLOUD_EPS) {
            if (f == INFINITY)
                return INFINITY;
            flow += f;
        }
    }
    return flow;
}

/* ---------------------------------------------------------------- routes */

typedef struct cloud_route {
    int32_t dev[EVO_PT_MAX_DEVICES];
    int32_t n; /* devices on the path, e first, c last */
} cloud_route;

typedef struct cloud_routes {
    cloud_route r[CLOUD_ROUTES_MAX];
    int32_t n;
    bool complete; /* every simple path was listed */
} cloud_routes;

static const evo_pt_link *cloud_link(const evo_pt_topology *t, int32_t u, int32_t v)
{
    for (int32_t i = 0; i < t->n_links; i++) {
        const evo_pt_link *l = &t->links[i];
        if ((l->a == u && l->b == v) || (l->a == v && l->b == u))
            return l;
    }
    return NULL;
}

static void cloud_dfs(const evo_pt_topology *t, cloud_route *cur, uint32_t seen, int32_t c,
                      cloud_routes *out)
{
    int32_t u = cur->dev[cur->n - 1];
    if (u == c) {
        if (out->n < CLOUD_ROUTES_MAX)
            out->r[out->n++] = *cur;
        else
            out->complete = false;
        return;
    }
    for (int32_t v = 0; v < t->n_devices && out->complete; v++) {
        if ((seen & (1u << v)) || cloud_link(t, u, v) == NULL)
            continue;
        cur->dev[cur->n++] = v;
        cloud_dfs(t, cur, seen | (1u << v), c, out);
        cur->n--;
    }
}

static void cloud_add_route(cloud_routes *rs, const cloud_route *r)
{
    for (int32_t i = 0; i < rs->n; i++)
        if (rs->r[i].n == r->n && memcmp(rs->r[i].dev, r->dev, (size_t)r->n * sizeof *r->dev) == 0)
            return;
    if (rs->n < CLOUD_ROUTES_MAX)
        rs->r[rs->n++] = *r;
}

/* Simple paths from e to c, or the fastest paths for messages of 0 B to
 * 1 GiB when there are too many to list. */
static void cloud_find_routes(const evo_pt_topology *t, int32_t e, int32_t c, cloud_routes *out)
{
    memset(out, 0, sizeof *out);
    out->complete = true;
    cloud_route cur = {.dev = {e}, .n = 1};
    cloud_dfs(t, &cur, 1u << e, c, out);
    if (out->complete)
        return;
    out->n = 0;
    int32_t k = t->n_devices;
    double dist[EVO_PT_MAX_DEVICES * EVO_PT_MAX_DEVICES];
    int32_t next[EVO_PT_MAX_DEVICES * EVO_PT_MAX_DEVICES];
    for (int sh = 0; sh <= 30; sh += 2) {
        pt_wire w = {.raw = sh == 0 ? 0 : (1ull << sh), .n_tensors = 1};
        pt_routes(t, &w, dist, next, NULL);
        if (dist[e * k + c] == INFINITY)
            return;
        cloud_route r = {.dev = {e}, .n = 1};
        for (int32_t u = e; u != c; u = next[u * k + c])
            r.dev[r.n++] = next[u * k + c];
        cloud_add_route(out, &r);
    }
}

/* Bytes-time (ms) of tensor x over the route, and the route's rtt part. */
static double cloud_tensor_ms(const evo_pt_topology *t, const cloud_route *r,
                              const evo_pt_tensor *x)
{
    pt_wire w = {0};
    pt_wire_add(&w, x);
    double ms = 0;
    for (int32_t h = 0; h + 1 < r->n; h++) {
        const evo_pt_link *l = cloud_link(t, r->dev[h], r->dev[h + 1]);
        ms += (double)pt_wire_bytes(&w, l->encoding) * 8.0 / (l->mbps * 1e3);
    }
    return ms;
}

/* ---------------------------------------------------------------- the cut */

/* Min cut for route r and penalty lambda (ms per weight byte on the edge):
 * in_s[v] receives whether node v runs on the edge. */
static evo_status cloud_cut(const evo_pt_problem *p, int32_t e, int32_t c, const double *xms,
                            double lambda, bool *in_s, evo_error *err)
{
    int32_t n = p->n_nodes, nt = p->n_tensors, k = p->n_devices;
    int32_t S = n + nt, T = n + nt + 1;
    int64_t m = 2 * (int64_t)n + (int64_t)nt * 2;
    for (int32_t t = 0; t < nt; t++)
        m += 2 * (int64_t)(p->cons_off[t + 1] - p->cons_off[t]);
    if (m * 2 > INT32_MAX)
        return evo_error_set(err, EVO_ERR_LIMIT, "cloud planning: graph too large");
    mf_graph g;
    if (!mf_init(&g, n + nt + 2, (int32_t)(m * 2)))
        return evo_error_set(err, EVO_ERR_NOMEM, "cloud planning: out of memory");
    for (int32_t v = 0; v < n; v++) {
        double tc = p->cost_us[(size_t)v * (size_t)k + (size_t)c] / 1000.0;
        double te = p->cost_us[(size_t)v * (size_t)k + (size_t)e] / 1000.0;
        te += lambda * (double)p->nodes[v].weight_bytes;
        if (tc > 0)
            mf_add(&g, S, v, tc);
        if (te > 0)
            mf_add(&g, v, T, te);
    }
    for (int32_t x = 0; x < nt; x++) {
        const evo_pt_tensor *tx = &p->tensors[x];
        int32_t nc = p->cons_off[x + 1] - p->cons_off[x];
        if (nc == 0 && !tx->graph_output)
            continue;
        int32_t a = n + x;
        int32_t prod = tx->producer >= 0 ? tx->producer : S;
        mf_add(&g, prod, a, xms[x]);
        for (int32_t j = p->cons_off[x]; j < p->cons_off[x + 1]; j++) {
            mf_add(&g, a, p->cons[j], INFINITY);
            if (tx->producer >= 0)
                mf_add(&g, p->cons[j], tx->producer, INFINITY);
        }
        if (tx->graph_output)
            mf_add(&g, a, T, INFINITY);
    }
    double f = mf_run(&g, S, T);
    for (int32_t v = 0; v < n; v++)
        in_s[v] = f < INFINITY && g.level[v] >= 0;
    mf_free(&g);
    return EVO_OK;
}

/* Evaluate the plan "S on e, the rest on c" (either may be empty). */
static evo_status cloud_eval(const evo_pt_problem *p, int32_t e, int32_t c, const bool *in_s,
                             int32_t *order, evo_pt_plan *out, evo_error *err)
{
    int32_t n = p->n_nodes, ns = 0;
    for (int32_t v = 0; v < n; v++)
        if (in_s[v])
            order[ns++] = v;
    int32_t w = ns;
    for (int32_t v = 0; v < n; v++)
        if (!in_s[v])
            order[w++] = v;
    int32_t dev[2], len[2], m = 0;
    if (ns > 0) {
        dev[m] = e;
        len[m++] = ns;
    }
    if (n - ns > 0) {
        dev[m] = c;
        len[m++] = n - ns;
    }
    return evo_pt_evaluate(p, m, dev, len, order, EVO_PT_CLOUD, out, err);
}

static void cloud_keep(evo_pt_plan *best, evo_pt_plan *cand, evo_pt_objective obj,
                       const char *method, bool *have)
{
    if (!*have || pt_plan_better(cand, best, obj)) {
        snprintf(cand->method, sizeof cand->method, "%s", method);
        pt_plan_move(best, cand);
        *have = true;
    } else {
        evo_pt_plan_free(cand);
    }
}

evo_status evo_pt_plan_cloud_pair(const evo_pt_problem *p, const evo_pt_options *opt, int32_t e,
                                  int32_t c, bool single_split_only, evo_pt_plan *out,
                                  evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = EVO_PT_CLOUD;
    if (p == NULL || p->cons_off == NULL || e < 0 || c < 0 || e >= p->n_devices ||
        c >= p->n_devices || e == c)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "cloud planning: bad device pair");
    double t0 = pt_now_ms();
    evo_pt_objective obj = opt ? opt->objective : EVO_PT_LATENCY;
    int32_t n = p->n_nodes;
    bool *in_s = malloc((size_t)(n ? n : 1) * sizeof *in_s);
    int32_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    double *xms = malloc((size_t)(p->n_tensors ? p->n_tensors : 1) * sizeof *xms);
    cloud_routes *routes = malloc(sizeof *routes);
    evo_status st = EVO_OK;
    bool have = false, binding = false;
    evo_pt_plan cand;
    if (!in_s || !order || !xms || !routes) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "cloud planning: out of memory");
        goto done;
    }
    if (single_split_only)
        goto splits;
    cloud_find_routes(p->topo, e, c, routes);
    for (int32_t r = 0; r < routes->n; r++) {
        for (int32_t x = 0; x < p->n_tensors; x++)
            xms[x] = cloud_tensor_ms(p->topo, &routes->r[r], &p->tensors[x]);
        if ((st = cloud_cut(p, e, c, xms, 0, in_s, err)) != EVO_OK ||
            (st = cloud_eval(p, e, c, in_s, order, &cand, err)) != EVO_OK)
            goto done;
        bool fits = cand.feasible || strstr(cand.reason, "lacks") == NULL;
        cloud_keep(out, &cand, obj, "min-cut", &have);
        if (fits)
            continue;
        /* the edge's memory binds: search the penalty */
        binding = true;
        double lo = 0, hi = 1e-12;
        bool found = false;
        for (int it = 0; it < 80 && !found; it++, hi *= 4) {
            if ((st = cloud_cut(p, e, c, xms, hi, in_s, err)) != EVO_OK ||
                (st = cloud_eval(p, e, c, in_s, order, &cand, err)) != EVO_OK)
                goto done;
            found = cand.feasible;
            if (!found)
                lo = hi;
            cloud_keep(out, &cand, obj, "min-cut+penalty", &have);
            if (found)
                break;
        }
        for (int it = 0; found && it < 40; it++) {
            double mid = 0.5 * (lo + hi);
            if ((st = cloud_cut(p, e, c, xms, mid, in_s, err)) != EVO_OK ||
                (st = cloud_eval(p, e, c, in_s, order, &cand, err)) != EVO_OK)
                goto done;
            if (cand.feasible)
                hi = mid;
            else
                lo = mid;
            cloud_keep(out, &cand, obj, "min-cut+penalty", &have);
        }
    }
splits:
    /* single split points of the execution order, including all-cloud and
     * all-edge (after the cuts, so that a tie keeps the cut) */
    for (int32_t P = 0; P <= n; P++) {
        for (int32_t v = 0; v < n; v++)
            in_s[v] = v < P;
        if ((st = cloud_eval(p, e, c, in_s, order, &cand, err)) != EVO_OK)
            goto done;
        cloud_keep(out, &cand, obj, "single-split", &have);
    }
    out->kind = EVO_PT_CLOUD;
    /* Exact when the unconstrained cut was feasible over every route (or
     * never needed) and the objective is the cut's own (latency). */
    out->exact = !single_split_only && !binding && routes->complete && obj == EVO_PT_LATENCY;
    out->planning_ms = pt_now_ms() - t0;
done:
    free(in_s);
    free(order);
    free(xms);
    free(routes);
    if (st != EVO_OK)
        evo_pt_plan_free(out);
    return st;
}

evo_status evo_pt_plan_cloud(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_plan *out,
                             evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = EVO_PT_CLOUD;
    if (p == NULL || p->cons_off == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "cloud planning: no finalized problem");
    double t0 = pt_now_ms();
    evo_pt_objective obj = opt ? opt->objective : EVO_PT_LATENCY;
    bool have = false, any_cloud = false, all_exact = true;
    for (int32_t c = 0; c < p->n_devices; c++) {
        if (p->topo->devices[c].role != EVO_PT_ROLE_CLOUD)
            continue;
        any_cloud = true;
        for (int32_t e = 0; e < p->n_devices; e++) {
            if (p->topo->devices[e].role != EVO_PT_ROLE_EDGE)
                continue;
            evo_pt_plan cand;
            evo_status st = evo_pt_plan_cloud_pair(p, opt, e, c, false, &cand, err);
            if (st != EVO_OK) {
                evo_pt_plan_free(out);
                return st;
            }
            all_exact &= cand.exact;
            if (!have || pt_plan_better(&cand, out, obj)) {
                pt_plan_move(out, &cand);
                have = true;
            } else {
                evo_pt_plan_free(&cand);
            }
        }
    }
    if (!have) {
        evo_status st = pt_plan_alloc_use(out, p->n_devices, err);
        if (st != EVO_OK)
            return st;
        out->kind = EVO_PT_CLOUD;
        snprintf(out->method, sizeof out->method, "min-cut");
        snprintf(out->reason, sizeof out->reason, "%s",
                 any_cloud ? "no device has the role \"edge\""
                           : "no device has the role \"cloud\"");
        out->feasible = false;
    }
    out->exact = have && all_exact;
    out->planning_ms = pt_now_ms() - t0;
    return EVO_OK;
}
