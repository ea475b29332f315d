/*
 * The abstract cost problem, message routing, stage arenas (with the real
 * memory planner) and the evaluation of a stage sequence into a full plan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memplan.h"
#include "pt_internal.h"

double pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *pt_fmt_bytes(uint64_t b, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

const char *evo_pt_kind_name(evo_pt_kind k)
{
    switch (k) {
    case EVO_PT_STANDALONE:
        return "standalone";
    case EVO_PT_CLOUD:
        return "cloud";
    case EVO_PT_CLUSTER:
        return "cluster";
    default:
        return "?";
    }
}

/* ---------------------------------------------------------------- problem */

void evo_pt_problem_free(evo_pt_problem *p)
{
    if (p == NULL)
        return;
    for (int32_t k = 0; p->nodes != NULL && k < p->n_nodes; k++) {
        free(p->nodes[k].name);
        free(p->nodes[k].op);
        free(p->nodes[k].in);
        free(p->nodes[k].out);
    }
    for (int32_t t = 0; p->tensors != NULL && t < p->n_tensors; t++)
        free(p->tensors[t].name);
    free(p->nodes);
    free(p->tensors);
    free(p->cost_us);
    free(p->model_name);
    free(p->cons_off);
    free(p->cons);
    free(p->last_use);
    memset(p, 0, sizeof *p);
}

evo_status evo_pt_problem_init(evo_pt_problem *p, const evo_pt_topology *topo, int32_t n_nodes,
                               int32_t n_tensors, evo_error *err)
{
    memset(p, 0, sizeof *p);
    if (topo == NULL || topo->n_devices < 1 || topo->n_devices > EVO_PT_MAX_DEVICES ||
        n_nodes < 0 || n_tensors < 0 || n_nodes > (1 << 24) || n_tensors > (1 << 24))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "partition problem: bad topology or node/tensor count");
    p->topo = topo;
    p->n_nodes = n_nodes;
    p->n_tensors = n_tensors;
    p->n_devices = topo->n_devices;
    p->nodes = calloc(n_nodes ? (size_t)n_nodes : 1, sizeof *p->nodes);
    p->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *p->tensors);
    p->cost_us = calloc(n_nodes ? (size_t)n_nodes * (size_t)p->n_devices : 1, sizeof *p->cost_us);
    if (p->nodes == NULL || p->tensors == NULL || p->cost_us == NULL) {
        evo_pt_problem_free(p);
        return evo_error_set(err, EVO_ERR_NOMEM, "partition problem: out of memory");
    }
    for (int32_t t = 0; t < n_tensors; t++)
        p->tensors[t].producer = -1;
    for (int32_t k = 0; k < n_nodes; k++)
        p->nodes[k].inplace_in = -1;
    return EVO_OK;
}

static char *pt_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

evo_status evo_pt_node_set(evo_pt_problem *p, int32_t k, const char *name, const char *op,
                           const int32_t *in, int32_t n_in, const int32_t *out, int32_t n_out,
                           evo_error *err)
{
    if (k < 0 || k >= p->n_nodes || n_in < 0 || n_out < 0 || (n_in > 0 && in == NULL) ||
        (n_out > 0 && out == NULL))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "partition problem: bad node %d", (int)k);
    evo_pt_node *n = &p->nodes[k];
    for (int32_t i = 0; i < n_out; i++)
        if (out[i] < 0 || out[i] >= p->n_tensors)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "partition problem: node %d writes tensor %d, out of range",
                                 (int)k, (int)out[i]);
    free(n->name);
    free(n->op);
    free(n->in);
    free(n->out);
    n->name = pt_strdup(name);
    n->op = pt_strdup(op);
    n->in = malloc((size_t)(n_in ? n_in : 1) * sizeof *n->in);
    n->out = malloc((size_t)(n_out ? n_out : 1) * sizeof *n->out);
    n->n_in = n->n_out = 0;
    if ((name && !n->name) || (op && !n->op) || !n->in || !n->out)
        return evo_error_set(err, EVO_ERR_NOMEM, "partition problem: out of memory");
    if (n_in > 0)
        memcpy(n->in, in, (size_t)n_in * sizeof *in);
    if (n_out > 0)
        memcpy(n->out, out, (size_t)n_out * sizeof *out);
    n->n_in = n_in;
    n->n_out = n_out;
    if (n->n_ptrs == 0)
        n->n_ptrs = n_in + n_out + n->n_consts;
    for (int32_t i = 0; i < n_out; i++)
        p->tensors[out[i]].producer = k;
    return EVO_OK;
}

static const char *pt_node_label(const evo_pt_problem *p, int32_t k, char *buf, size_t cap)
{
    const evo_pt_node *n = &p->nodes[k];
    if (n->name != NULL && n->name[0] != '\0')
        snprintf(buf, cap, "'%s'", n->name);
    else
        snprintf(buf, cap, "#%d (%s)", (int)k, n->op ? n->op : "?");
    return buf;
}

evo_status evo_pt_problem_finalize(evo_pt_problem *p, evo_error *err)
{
    int32_t nt = p->n_tensors, nn = p->n_nodes;
    char lab[96];
    free(p->cons_off);
    free(p->cons);
    free(p->last_use);
    p->cons = NULL;
    p->last_use = NULL;
    p->cons_off = calloc((size_t)nt + 1, sizeof *p->cons_off);
    p->last_use = malloc((size_t)(nt ? nt : 1) * sizeof *p->last_use);
    if (p->cons_off == NULL || p->last_use == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "partition problem: out of memory");
    size_t n_edges = 0;
    for (int32_t k = 0; k < nn; k++) {
        const evo_pt_node *n = &p->nodes[k];
        if (n->n_in < 0 || n->n_out < 0 || (n->n_in > 0 && n->in == NULL) ||
            (n->n_out > 0 && n->out == NULL))
            return evo_error_set(err, EVO_ERR_INVALID_ARG, "partition problem: node %d is unset",
                                 (int)k);
        for (int32_t i = 0; i < n->n_in; i++) {
            int32_t t = n->in[i];
            if (t < 0 || t >= nt)
                return evo_error_set(err, EVO_ERR_GRAPH,
                                     "partition problem: node %s reads tensor %d, out of range",
                                     pt_node_label(p, k, lab, sizeof lab), (int)t);
            int32_t pr = p->tensors[t].producer;
            if (pr >= k)
                return evo_error_set(err, EVO_ERR_GRAPH,
                                     "partition problem: node %s reads a tensor made by a later "
                                     "node; nodes must be in execution order",
                                     pt_node_label(p, k, lab, sizeof lab));
            p->cons_off[t + 1]++;
            n_edges++;
        }
        for (int32_t i = 0; i < n->n_out; i++)
            if (p->tensors[n->out[i]].producer != k)
                return evo_error_set(err, EVO_ERR_GRAPH,
                                     "partition problem: tensor %d has two producers",
                                     (int)n->out[i]);
        if (n->inplace_in >= nt || n->inplace_in < -1)
            return evo_error_set(err, EVO_ERR_GRAPH,
                                 "partition problem: node %s: in-place tensor out of range",
                                 pt_node_label(p, k, lab, sizeof lab));
        for (int32_t d = 0; d < p->n_devices; d++) {
            double c = p->cost_us[(size_t)k * (size_t)p->n_devices + (size_t)d];
            if (!(c >= 0))
                return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                     "partition problem: node %s has cost %g on device '%s'",
                                     pt_node_label(p, k, lab, sizeof lab), c,
                                     p->topo->devices[d].name);
        }
    }
    for (int32_t t = 0; t < nt; t++)
        p->cons_off[t + 1] += p->cons_off[t];
    p->cons = malloc((n_edges ? n_edges : 1) * sizeof *p->cons);
    int32_t *fill = calloc((size_t)(nt ? nt : 1), sizeof *fill);
    if (p->cons == NULL || fill == NULL) {
        free(fill);
        return evo_error_set(err, EVO_ERR_NOMEM, "partition problem: out of memory");
    }
    for (int32_t t = 0; t < nt; t++)
        p->last_use[t] = -1;
    for (int32_t k = 0; k < nn; k++) {
        const evo_pt_node *n = &p->nodes[k];
        for (int32_t i = 0; i < n->n_in; i++) {
            int32_t t = n->in[i];
            /* a node reading one tensor twice consumes it once */
            bool dup = false;
            for (int32_t j = p->cons_off[t]; j < p->cons_off[t] + fill[t]; j++)
                dup |= p->cons[j] == k;
            if (!dup)
                p->cons[p->cons_off[t] + fill[t]++] = k;
            p->last_use[t] = k;
        }
    }
    /* compact duplicates away */
    int32_t w = 0;
    for (int32_t t = 0; t < nt; t++) {
        int32_t s = p->cons_off[t];
        p->cons_off[t] = w;
        for (int32_t j = 0; j < fill[t]; j++)
            p->cons[w++] = p->cons[s + j];
    }
    p->cons_off[nt] = w;
    free(fill);
    return EVO_OK;
}

/* ---------------------------------------------------------------- messages and routes */

void pt_wire_add(pt_wire *w, const evo_pt_tensor *t)
{
    w->raw += t->bytes;
    w->n_tensors++;
    if (t->f32_numel > 0) {
        w->f32_bytes += t->f32_numel * 4;
        w->f32_numel += t->f32_numel;
        w->n_f32++;
    }
}

uint64_t pt_wire_bytes(const pt_wire *w, evo_pt_encoding enc)
{
    uint64_t other = w->raw - (w->f32_bytes <= w->raw ? w->f32_bytes : w->raw);
    switch (enc) {
    case EVO_PT_ENC_FP16:
        return other + 2 * w->f32_numel;
    case EVO_PT_ENC_INT8:
        return other + w->f32_numel + 8ull * w->n_f32;
    default:
        return w->raw;
    }
}

static double pt_hop_send_ms(const evo_pt_link *l, uint64_t bytes)
{
    /* mbps megabits per second = mbps * 1e3 bits per ms */
    return (double)bytes * 8.0 / (l->mbps * 1e3);
}

void pt_routes(const evo_pt_topology *t, const pt_wire *w, double *dist, int32_t *next,
               double *send)
{
    int32_t k = t->n_devices;
    for (int32_t a = 0; a < k; a++)
        for (int32_t b = 0; b < k; b++) {
            dist[a * k + b] = a == b ? 0 : INFINITY;
            next[a * k + b] = a == b ? b : -1;
        }
    for (int32_t i = 0; i < t->n_links; i++) {
        const evo_pt_link *l = &t->links[i];
        double c = l->rtt_ms / 2 + pt_hop_send_ms(l, pt_wire_bytes(w, l->encoding));
        if (c < dist[l->a * k + l->b]) {
            dist[l->a * k + l->b] = dist[l->b * k + l->a] = c;
            next[l->a * k + l->b] = l->b;
            next[l->b * k + l->a] = l->a;
        }
    }
    for (int32_t m = 0; m < k; m++)
        for (int32_t a = 0; a < k; a++) {
            if (dist[a * k + m] == INFINITY)
                continue;
            for (int32_t b = 0; b < k; b++) {
                double c = dist[a * k + m] + dist[m * k + b];
                if (c < dist[a * k + b]) {
                    dist[a * k + b] = c;
                    next[a * k + b] = next[a * k + m];
                }
            }
        }
    if (send == NULL)
        return;
    for (int32_t a = 0; a < k; a++)
        for (int32_t b = 0; b < k; b++) {
            double mx = 0;
            int32_t u = a;
            while (u != b && u >= 0 && dist[a * k + b] < INFINITY) {
                int32_t v = next[u * k + b];
                for (int32_t i = 0; i < t->n_links; i++) {
                    const evo_pt_link *l = &t->links[i];
                    if ((l->a == u && l->b == v) || (l->a == v && l->b == u)) {
                        double s = pt_hop_send_ms(l, pt_wire_bytes(w, l->encoding));
                        if (s > mx)
                            mx = s;
                        break;
                    }
                }
                u = v;
            }
            send[a * k + b] = dist[a * k + b] < INFINITY ? mx : INFINITY;
        }
}

/* The link between u and v (the cheapest for this message if several). */
static const evo_pt_link *pt_link_between(const evo_pt_topology *t, int32_t u, int32_t v)
{
    for (int32_t i = 0; i < t->n_links; i++) {
        const evo_pt_link *l = &t->links[i];
        if ((l->a == u && l->b == v) || (l->a == v && l->b == u))
            return l;
    }
    return NULL;
}

bool pt_fits(const evo_pt_device *d, uint64_t weights, uint64_t arena, uint64_t *lack)
{
    uint64_t ram = arena + d->overhead_bytes;
    uint64_t miss = 0;
    if (d->flash_bytes > 0) {
        if (weights > d->flash_bytes)
            miss += weights - d->flash_bytes;
    } else {
        ram += weights;
    }
    if (ram > d->memory_bytes)
        miss += ram - d->memory_bytes;
    if (lack != NULL)
        *lack = miss;
    return miss == 0;
}

/* ---------------------------------------------------------------- stage arenas */

bool pt_live_at(const evo_pt_problem *p, const int32_t *pos, int32_t t, int32_t P)
{
    const evo_pt_tensor *x = &p->tensors[t];
    int32_t first = x->producer < 0 ? -1 : pos[x->producer];
    if (first >= P)
        return false;
    if (x->graph_output)
        return true;
    for (int32_t j = p->cons_off[t]; j < p->cons_off[t + 1]; j++)
        if (pos[p->cons[j]] >= P)
            return true;
    return false;
}

static uint64_t pt_align(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

evo_status pt_stage_arena_pos(const evo_pt_problem *p, const int32_t *order, const int32_t *pos,
                              int32_t start, int32_t len, bool exact, uint64_t *arena,
                              uint64_t *lower_bound, evo_error *err)
{
    int32_t nt = p->n_tensors, end = start + len;
    /* per tensor: buffer index (-1 none), first and last step */
    int32_t *tb = malloc((size_t)(nt ? nt : 1) * sizeof *tb);
    evo_memplan_buf *bufs = malloc(((size_t)nt + (size_t)len + 1) * sizeof *bufs);
    evo_memplan_alias *al = malloc(((size_t)len + 1) * sizeof *al);
    uint64_t *offs = malloc(((size_t)nt + (size_t)len + 1) * sizeof *offs);
    bool *in_live = malloc((size_t)(nt ? nt : 1) * sizeof *in_live);
    bool *out_live = malloc((size_t)(nt ? nt : 1) * sizeof *out_live);
    void *work = NULL;
    evo_status st = EVO_OK;
    if (!tb || !bufs || !al || !offs || !in_live || !out_live) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "stage arena: out of memory");
        goto done;
    }
    int32_t nb = 0, na = 0, n_tens = 0, n_ptrs = 0;
    for (int32_t t = 0; t < nt; t++) {
        tb[t] = -1;
        in_live[t] = pt_live_at(p, pos, t, start);
        out_live[t] = pt_live_at(p, pos, t, end);
        const evo_pt_tensor *x = &p->tensors[t];
        int32_t pp = x->producer < 0 ? -1 : pos[x->producer];
        bool made_here = pp >= start && pp < end;
        if (!in_live[t] && !made_here)
            continue;
        int32_t first = in_live[t] ? 0 : pp - start, last = first;
        if (out_live[t]) {
            last = len - 1;
        } else {
            for (int32_t j = p->cons_off[t]; j < p->cons_off[t + 1]; j++) {
                int32_t c = pos[p->cons[j]];
                if (c >= start && c < end && c - start > last)
                    last = c - start;
            }
        }
        bufs[nb] = (evo_memplan_buf){x->bytes, first, last};
        tb[t] = nb++;
        n_tens++;
    }
    for (int32_t s = 0; s < len; s++) {
        const evo_pt_node *n = &p->nodes[order ? order[start + s] : start + s];
        n_tens += n->n_consts;
        n_ptrs += n->n_ptrs;
        if (n->scratch_bytes > 0)
            bufs[nb++] = (evo_memplan_buf){n->scratch_bytes, s, s};
        int32_t ti = n->inplace_in;
        if (ti >= 0 && n->n_out > 0 && tb[ti] >= 0 && !in_live[ti] && !out_live[ti] &&
            p->tensors[ti].bytes == p->tensors[n->out[0]].bytes && bufs[tb[ti]].last_step == s &&
            tb[n->out[0]] >= 0)
            al[na++] = (evo_memplan_alias){tb[n->out[0]], tb[ti]};
    }
    /* executor bookkeeping, laid out as exec.c does, plus alignment slack */
    uint64_t book = pt_align(pt_align((uint64_t)n_tens * sizeof(evo_tensor), sizeof(void *)) +
                                 (uint64_t)n_ptrs * sizeof(void *),
                             EVO_ARENA_ALIGN) +
                    EVO_ARENA_ALIGN - 1;
    int32_t steps = len > 0 ? len : 1;
    if (!exact) {
        /* the lower bound alone: the largest aligned sum alive at one step,
         * aliased pairs counted once */
        uint64_t *alive = calloc((size_t)steps, sizeof *alive);
        if (alive == NULL) {
            st = evo_error_set(err, EVO_ERR_NOMEM, "stage arena: out of memory");
            goto done;
        }
        bool *skip = calloc((size_t)nb + 1, sizeof *skip);
        if (skip == NULL) {
            free(alive);
            st = evo_error_set(err, EVO_ERR_NOMEM, "stage arena: out of memory");
            goto done;
        }
        for (int32_t i = 0; i < na; i++) {
            /* merge buf into onto: union lifetime, larger size */
            evo_memplan_buf *a = &bufs[al[i].onto], *b = &bufs[al[i].buf];
            if (b->first_step < a->first_step)
                a->first_step = b->first_step;
            if (b->last_step > a->last_step)
                a->last_step = b->last_step;
            if (b->size > a->size)
                a->size = b->size;
            skip[al[i].buf] = true;
        }
        uint64_t mx = 0;
        for (int32_t i = 0; i < nb; i++) {
            if (skip[i])
                continue;
            uint64_t sz = pt_align(bufs[i].size, EVO_ARENA_ALIGN);
            for (int32_t s = bufs[i].first_step; s <= bufs[i].last_step; s++)
                alive[s] += sz;
        }
        for (int32_t s = 0; s < steps; s++)
            if (alive[s] > mx)
                mx = alive[s];
        free(alive);
        free(skip);
        if (lower_bound)
            *lower_bound = book + mx;
        if (arena)
            *arena = book + mx;
        goto done;
    }
    size_t wb = evo_memplan_work_bytes(nb, steps);
    work = wb == SIZE_MAX ? NULL : malloc(wb ? wb : 1);
    if (work == NULL) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "stage arena: out of memory");
        goto done;
    }
    evo_memplan_result res;
    st = evo_memplan_plan(bufs, nb, steps, al, na, EVO_ARENA_ALIGN, EVO_MEMPLAN_AUTO, offs, &res,
                          work, wb, err);
    if (st != EVO_OK)
        goto done;
    if (arena)
        *arena = book + res.total;
    if (lower_bound)
        *lower_bound = book + res.lower_bound;
done:
    free(tb);
    free(bufs);
    free(al);
    free(offs);
    free(in_live);
    free(out_live);
    free(work);
    return st;
}

/* pos from order (NULL = identity); false if order is not a permutation. */
static bool pt_positions(const evo_pt_problem *p, const int32_t *order, int32_t *pos)
{
    for (int32_t k = 0; k < p->n_nodes; k++)
        pos[k] = -1;
    for (int32_t i = 0; i < p->n_nodes; i++) {
        int32_t k = order ? order[i] : i;
        if (k < 0 || k >= p->n_nodes || pos[k] >= 0)
            return false;
        pos[k] = i;
    }
    return true;
}

evo_status evo_pt_stage_arena(const evo_pt_problem *p, const int32_t *order, int32_t start,
                              int32_t len, uint64_t *exact, uint64_t *lower_bound, evo_error *err)
{
    if (p == NULL || p->cons_off == NULL || start < 0 || len < 1 || start > p->n_nodes - len)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "stage arena: bad stage or problem");
    int32_t *pos = malloc((size_t)p->n_nodes * sizeof *pos);
    if (pos == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "stage arena: out of memory");
    evo_status st;
    if (!pt_positions(p, order, pos))
        st = evo_error_set(err, EVO_ERR_INVALID_ARG, "stage arena: order is not a permutation");
    else
        st = pt_stage_arena_pos(p, order, pos, start, len, true, exact, lower_bound, err);
    free(pos);
    return st;
}

/* ---------------------------------------------------------------- plans */

void evo_pt_plan_free(evo_pt_plan *plan)
{
    if (plan == NULL)
        return;
    for (int32_t i = 0; plan->stages && i < plan->n_stages; i++) {
        free(plan->stages[i].nodes);
        free(plan->stages[i].inputs);
        free(plan->stages[i].outputs);
    }
    for (int32_t i = 0; plan->transfers && i < plan->n_transfers; i++) {
        free(plan->transfers[i].tensors);
        free(plan->transfers[i].hops);
    }
    free(plan->stages);
    free(plan->transfers);
    free(plan->use);
    memset(plan, 0, sizeof *plan);
}

double evo_pt_plan_value(const evo_pt_plan *plan, evo_pt_objective obj)
{
    if (plan == NULL || !plan->feasible)
        return INFINITY;
    return obj == EVO_PT_THROUGHPUT ? plan->period_ms : plan->latency_ms;
}

bool pt_plan_better(const evo_pt_plan *cand, const evo_pt_plan *best, evo_pt_objective obj)
{
    if (cand->feasible != best->feasible)
        return cand->feasible;
    if (!cand->feasible)
        return false;
    double a = evo_pt_plan_value(cand, obj), b = evo_pt_plan_value(best, obj);
    double eps = 1e-9 * (a > b ? a : b);
    if (a < b - eps)
        return true;
    if (a > b + eps)
        return false;
    /* ties: the other objective, then fewer stages */
    double a2 = obj == EVO_PT_THROUGHPUT ? cand->latency_ms : cand->period_ms;
    double b2 = obj == EVO_PT_THROUGHPUT ? best->latency_ms : best->period_ms;
    if (a2 < b2 - 1e-9 * (a2 > b2 ? a2 : b2))
        return true;
    if (a2 > b2 + 1e-9 * (a2 > b2 ? a2 : b2))
        return false;
    return cand->n_stages < best->n_stages;
}

void pt_plan_move(evo_pt_plan *dst, evo_pt_plan *src)
{
    evo_pt_plan_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

evo_status pt_plan_alloc_use(evo_pt_plan *plan, int32_t n_devices, evo_error *err)
{
    plan->use = calloc((size_t)n_devices, sizeof *plan->use);
    if (plan->use == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "plan: out of memory");
    plan->n_devices = n_devices;
    return EVO_OK;
}

/* Tensors alive at position P: indices into *out (malloc'd). */
static evo_status pt_boundary(const evo_pt_problem *p, const int32_t *pos, int32_t P, int32_t **out,
                              int32_t *n, pt_wire *w, evo_error *err)
{
    *out = malloc((size_t)(p->n_tensors ? p->n_tensors : 1) * sizeof **out);
    *n = 0;
    memset(w, 0, sizeof *w);
    if (*out == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "plan: out of memory");
    for (int32_t t = 0; t < p->n_tensors; t++)
        if (pt_live_at(p, pos, t, P)) {
            (*out)[(*n)++] = t;
            pt_wire_add(w, &p->tensors[t]);
        }
    return EVO_OK;
}

static void pt_append(char *buf, size_t cap, const char *fmt, const char *a)
{
    size_t len = strlen(buf);
    if (len < cap)
        snprintf(buf + len, cap - len, fmt, a);
}

evo_status evo_pt_evaluate(const evo_pt_problem *p, int32_t n_stages, const int32_t *stage_device,
                           const int32_t *stage_len, const int32_t *order, evo_pt_kind kind,
                           evo_pt_plan *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    if (p == NULL || p->cons_off == NULL || n_stages < 1 || stage_device == NULL ||
        stage_len == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "plan evaluation: bad arguments");
    const evo_pt_topology *topo = p->topo;
    int32_t k = p->n_devices, total = 0;
    for (int32_t i = 0; i < n_stages; i++) {
        if (stage_device[i] < 0 || stage_device[i] >= k || stage_len[i] < 1 ||
            stage_len[i] > p->n_nodes - total)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "plan evaluation: stage %d has a bad device or length", (int)i);
        total += stage_len[i];
    }
    if (total != p->n_nodes)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "plan evaluation: stages cover %d of %d nodes", (int)total,
                             (int)p->n_nodes);
    int32_t *pos = malloc((size_t)(p->n_nodes ? p->n_nodes : 1) * sizeof *pos);
    double *dist = malloc((size_t)k * (size_t)k * sizeof *dist);
    double *send = malloc((size_t)k * (size_t)k * sizeof *send);
    int32_t *next = malloc((size_t)k * (size_t)k * sizeof *next);
    evo_status st = EVO_OK;
    if (!pos || !dist || !send || !next) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "plan evaluation: out of memory");
        goto done;
    }
    if (!pt_positions(p, order, pos)) {
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "plan evaluation: the order is not a permutation of the nodes");
        goto done;
    }
    for (int32_t i = 0; i < p->n_nodes; i++) {
        const evo_pt_node *n = &p->nodes[order ? order[i] : i];
        for (int32_t j = 0; j < n->n_in; j++) {
            int32_t pr = p->tensors[n->in[j]].producer;
            if (pr >= 0 && pos[pr] >= i) {
                st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                                   "plan evaluation: the order is not topological");
                goto done;
            }
        }
    }
    if ((st = pt_plan_alloc_use(out, k, err)) != EVO_OK)
        goto done;
    out->stages = calloc((size_t)n_stages, sizeof *out->stages);
    out->transfers = calloc((size_t)n_stages + 1, sizeof *out->transfers);
    if (!out->stages || !out->transfers) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "plan evaluation: out of memory");
        goto done;
    }
    out->feasible = true;
    out->n_stages = n_stages;
    int32_t P = 0;
    char lab[96], b1[32], b2[32], b3[32], b4[32], b5[32];
    for (int32_t i = 0; i < n_stages; i++) {
        evo_pt_stage *s = &out->stages[i];
        s->device = stage_device[i];
        s->n_nodes = stage_len[i];
        s->nodes = malloc((size_t)s->n_nodes * sizeof *s->nodes);
        if (s->nodes == NULL) {
            st = evo_error_set(err, EVO_ERR_NOMEM, "plan evaluation: out of memory");
            goto done;
        }
        double us = 0;
        for (int32_t j = 0; j < s->n_nodes; j++) {
            int32_t node = order ? order[P + j] : P + j;
            s->nodes[j] = node;
            s->weights_bytes += p->nodes[node].weight_bytes;
            double c = p->cost_us[(size_t)node * (size_t)k + (size_t)s->device];
            if (c == INFINITY && out->feasible) {
                out->feasible = false;
                snprintf(out->reason, sizeof out->reason, "node %s cannot run on device '%s'",
                         pt_node_label(p, node, lab, sizeof lab), topo->devices[s->device].name);
            }
            us += c;
        }
        s->compute_ms = us / 1000.0;
        if ((st = pt_stage_arena_pos(p, order, pos, P, s->n_nodes, true, &s->arena_bytes,
                                     &s->arena_lower_bound, err)) != EVO_OK)
            goto done;
        pt_wire w;
        if ((st = pt_boundary(p, pos, P, &s->inputs, &s->n_inputs, &w, err)) != EVO_OK ||
            (st = pt_boundary(p, pos, P + s->n_nodes, &s->outputs, &s->n_outputs, &w, err)) !=
                EVO_OK)
            goto done;
        evo_pt_device_use *u = &out->use[s->device];
        u->used = true;
        u->weights_bytes += s->weights_bytes;
        u->arena_bytes += s->arena_bytes;
        u->busy_ms += s->compute_ms;
        P += s->n_nodes;
    }
    /* messages: into stage 0 from the source, between stages, out to the sink */
    double t_ms = 0, period = 0;
    for (int32_t b = 0; b <= n_stages; b++) {
        int32_t from = b == 0 ? topo->source : out->stages[b - 1].device;
        int32_t to = b == n_stages ? topo->sink : out->stages[b].device;
        const int32_t *tens = b == 0 ? out->stages[0].inputs : out->stages[b - 1].outputs;
        int32_t nten = b == 0 ? out->stages[0].n_inputs : out->stages[b - 1].n_outputs;
        if (from != to && nten > 0) {
            evo_pt_transfer *x = &out->transfers[out->n_transfers++];
            x->from_stage = b == 0 ? -1 : b - 1;
            x->to_stage = b == n_stages ? -1 : b;
            x->from = from;
            x->to = to;
            x->start_ms = t_ms;
            x->tensors = malloc((size_t)nten * sizeof *x->tensors);
            x->hops = calloc((size_t)k, sizeof *x->hops);
            if (!x->tensors || !x->hops) {
                st = evo_error_set(err, EVO_ERR_NOMEM, "plan evaluation: out of memory");
                goto done;
            }
            memcpy(x->tensors, tens, (size_t)nten * sizeof *tens);
            x->n_tensors = nten;
            pt_wire w = {0};
            for (int32_t j = 0; j < nten; j++)
                pt_wire_add(&w, &p->tensors[tens[j]]);
            x->bytes = w.raw;
            pt_routes(topo, &w, dist, next, send);
            if (dist[from * k + to] == INFINITY) {
                x->ms = INFINITY;
                if (out->feasible) {
                    out->feasible = false;
                    snprintf(out->reason, sizeof out->reason,
                             "no path over the listed links from '%s' to '%s'",
                             topo->devices[from].name, topo->devices[to].name);
                }
            } else {
                for (int32_t u = from; u != to; u = next[u * k + to]) {
                    int32_t v = next[u * k + to];
                    const evo_pt_link *l = pt_link_between(topo, u, v);
                    evo_pt_hop *h = &x->hops[x->n_hops++];
                    h->from = u;
                    h->to = v;
                    h->encoding = l->encoding;
                    h->wire_bytes = pt_wire_bytes(&w, l->encoding);
                    h->send_ms = pt_hop_send_ms(l, h->wire_bytes);
                    h->ms = l->rtt_ms / 2 + h->send_ms;
                    if (h->send_ms > period)
                        period = h->send_ms;
                }
                x->ms = dist[from * k + to];
            }
            t_ms += x->ms;
        }
        if (b < n_stages) {
            out->stages[b].start_ms = t_ms;
            t_ms += out->stages[b].compute_ms;
        }
    }
    out->latency_ms = t_ms;
    /* memory */
    for (int32_t d = 0; d < k; d++) {
        evo_pt_device_use *u = &out->use[d];
        if (!u->used)
            continue;
        const evo_pt_device *dev = &topo->devices[d];
        u->overhead_bytes = dev->overhead_bytes;
        u->ram_bytes = u->arena_bytes + u->overhead_bytes;
        if (dev->flash_bytes > 0)
            u->flash_bytes = u->weights_bytes;
        else
            u->ram_bytes += u->weights_bytes;
        if (u->busy_ms > period)
            period = u->busy_ms;
        uint64_t lack;
        if (!pt_fits(dev, u->weights_bytes, u->arena_bytes, &lack)) {
            if (out->feasible) {
                out->feasible = false;
                out->reason[0] = '\0';
            } else if (strstr(out->reason, "lacks") == NULL) {
                continue; /* keep the first kind of reason */
            } else {
                pt_append(out->reason, sizeof out->reason, "%s", "; ");
            }
            char msg[EVO_ERROR_MSG_MAX];
            if (dev->flash_bytes > 0)
                snprintf(msg, sizeof msg,
                         "device '%s' lacks %s (weights %s in %s flash; arena %s + runtime %s in "
                         "%s memory)",
                         dev->name, pt_fmt_bytes(lack, b1, sizeof b1),
                         pt_fmt_bytes(u->weights_bytes, b2, sizeof b2),
                         pt_fmt_bytes(dev->flash_bytes, b3, sizeof b3),
                         pt_fmt_bytes(u->arena_bytes, b4, sizeof b4),
                         pt_fmt_bytes(u->overhead_bytes, b5, sizeof b5),
                         pt_fmt_bytes(dev->memory_bytes, lab, sizeof lab));
            else
                snprintf(msg, sizeof msg,
                         "device '%s' lacks %s (needs weights %s + arena %s + runtime %s, has %s)",
                         dev->name, pt_fmt_bytes(lack, b1, sizeof b1),
                         pt_fmt_bytes(u->weights_bytes, b2, sizeof b2),
                         pt_fmt_bytes(u->arena_bytes, b3, sizeof b3),
                         pt_fmt_bytes(u->overhead_bytes, b4, sizeof b4),
                         pt_fmt_bytes(dev->memory_bytes, b5, sizeof b5));
            pt_append(out->reason, sizeof out->reason, "%s", msg);
        }
    }
    out->period_ms = period;
done:
    free(pos);
    free(dist);
    free(send);
    free(next);
    if (st != EVO_OK)
        evo_pt_plan_free(out);
    return st;
}
