/*
 * The interim partitioner: consecutive stages over a model's topological
 * order, sized with the exact memory figures of each stage's program. The
 * real partitioner (include/evo/partition.h, with link costs and the
 * latency predictor) replaces coord_plan when it lands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "evo/modeldb.h"

/* Positions of g->order whose node runs (not folded to constants). */
static int32_t *plan_running(const evo_graph *g, int32_t *n_out)
{
    int32_t *runs = malloc(((size_t)g->n_order + 1) * sizeof *runs);
    int32_t n = 0;
    for (int32_t p = 0; runs && p < g->n_order; p++) {
        const evo_node *nd = &g->nodes[g->order[p]];
        bool live = false;
        for (int32_t o = 0; o < nd->n_outputs; o++)
            if (nd->outputs[o] >= 0 && !(g->values[nd->outputs[o]].flags & EVO_VALUE_CONST))
                live = true;
        if (live)
            runs[n++] = p;
    }
    *n_out = n;
    return runs;
}

void coord_plan_free(coord_stage_def *stages, int32_t *dev_of, int32_t n)
{
    for (int32_t k = 0; stages && k < n; k++)
        coord_stage_def_free(&stages[k]);
    free(stages);
    free(dev_of);
}

typedef struct plan_ctx {
    const evo_graph *g;
    const int32_t *runs;
    int32_t n_runs;
} plan_ctx;

/* Position range of running nodes [i, j). */
static int32_t plan_pos(const plan_ctx *c, int32_t i)
{
    if (i <= 0)
        return 0;
    if (i >= c->n_runs)
        return c->g->n_order;
    return c->runs[i];
}

static evo_status plan_need(const plan_ctx *c, int32_t i, int32_t j, uint64_t *need, evo_error *err)
{
    return coord_stage_need(c->g, plan_pos(c, i), plan_pos(c, j), need, err);
}

/* Devices by calibrated speed, fastest first (then by memory). */
static int32_t *plan_by_speed(const coord_plan_dev *devs, size_t n)
{
    int32_t *ix = malloc((n + 1) * sizeof *ix);
    for (size_t i = 0; ix && i < n; i++)
        ix[i] = (int32_t)i;
    for (size_t i = 1; ix && i < n; i++)
        for (size_t k = i; k > 0; k--) {
            const coord_plan_dev *x = &devs[ix[k - 1]], *y = &devs[ix[k]];
            bool swap =
                y->gflops > x->gflops || (y->gflops == x->gflops && y->free_bytes > x->free_bytes);
            if (!swap)
                break;
            int32_t t = ix[k - 1];
            ix[k - 1] = ix[k];
            ix[k] = t;
        }
    return ix;
}

/* Fill the fastest devices first, each with the longest prefix that fits. */
static evo_status plan_greedy(const plan_ctx *c, const coord_plan_dev *devs, const int32_t *order,
                              size_t n_devs, int32_t *cuts, int32_t *devix, int32_t *n_st,
                              evo_error *err)
{
    int32_t i = 0, n = 0;
    uint64_t need;
    for (size_t d = 0; d < n_devs && i < c->n_runs; d++) {
        const coord_plan_dev *dv = &devs[order[d]];
        evo_status rv = plan_need(c, i, i + 1, &need, err);
        if (rv != EVO_OK)
            return rv;
        if (need > dv->free_bytes)
            continue;
        int32_t lo = i + 1, hi = c->n_runs; /* lo fits; find the last that fits */
        while (lo < hi) {
            int32_t mid = lo + (hi - lo + 1) / 2;
            if ((rv = plan_need(c, i, mid, &need, err)) != EVO_OK)
                return rv;
            if (need <= dv->free_bytes)
                lo = mid;
            else
                hi = mid - 1;
        }
        cuts[n] = i;
        devix[n] = order[d];
        n++;
        i = lo;
    }
    if (i < c->n_runs) {
        const evo_node *nd = &c->g->nodes[c->g->order[c->runs[i]]];
        plan_need(c, i, i + 1, &need, NULL);
        char nb[32];
        return evo_error_set(err, EVO_ERR_LIMIT,
                             "the model does not fit the %zu live devices: placement stops at "
                             "node '%s' (%s), whose stage alone needs %s",
                             n_devs, nd->name ? nd->name : "", nd->op_type,
                             coord_fmt_bytes(need, nb));
    }
    *n_st = n;
    return EVO_OK;
}

/* Next permutation of ix[0..n) in lexicographic order; false after the last. */
static bool plan_next_perm(int32_t *ix, size_t n)
{
    if (n < 2)
        return false;
    size_t i = n - 1;
    while (i > 0 && ix[i - 1] >= ix[i])
        i--;
    if (i == 0)
        return false;
    size_t j = n - 1;
    while (ix[j] <= ix[i - 1])
        j--;
    int32_t t = ix[i - 1];
    ix[i - 1] = ix[j];
    ix[j] = t;
    for (size_t a = i, b = n - 1; a < b; a++, b--) {
        t = ix[a];
        ix[a] = ix[b];
        ix[b] = t;
    }
    return true;
}

/* Greedy fill in the order of the devices by speed; when that strands a
 * layer too big for the devices left, try the other orders (up to 6
 * devices: 720 orders) and keep the one with the fewest stages, preferring
 * orders that give work to faster devices. */
static evo_status plan_fill(const plan_ctx *c, const coord_plan_dev *devs, const int32_t *order,
                            size_t n_devs, int32_t *cuts, int32_t *devix, int32_t *n_st,
                            evo_error *err)
{
    evo_status rv = plan_greedy(c, devs, order, n_devs, cuts, devix, n_st, err);
    if (rv != EVO_ERR_LIMIT || n_devs > 6)
        return rv;
    int32_t *perm = malloc(n_devs * sizeof *perm);
    int32_t *tc = malloc((n_devs + 1) * sizeof *tc), *td = malloc((n_devs + 1) * sizeof *td);
    if (perm == NULL || tc == NULL || td == NULL) {
        free(perm);
        free(tc);
        free(td);
        return rv;
    }
    /* Permute positions of the speed order, so the first order tried after
     * the failing one is still "fast first" as far as possible. */
    for (size_t i = 0; i < n_devs; i++)
        perm[i] = (int32_t)i;
    int32_t best = INT32_MAX;
    int32_t *ord = malloc(n_devs * sizeof *ord);
    while (ord != NULL && plan_next_perm(perm, n_devs)) {
        for (size_t i = 0; i < n_devs; i++)
            ord[i] = order[perm[i]];
        int32_t n = 0;
        if (plan_greedy(c, devs, ord, n_devs, tc, td, &n, NULL) == EVO_OK && n < best) {
            best = n;
            memcpy(cuts, tc, (size_t)n * sizeof *cuts);
            memcpy(devix, td, (size_t)n * sizeof *devix);
            *n_st = n;
        }
    }
    if (best != INT32_MAX)
        rv = EVO_OK;
    free(ord);
    free(perm);
    free(tc);
    free(td);
    return rv;
}

/* One stage per device, flops shared by calibrated speed. */
static evo_status plan_balanced(const plan_ctx *c, const coord_plan_dev *devs, const int32_t *order,
                                size_t n_devs, int32_t *cuts, int32_t *devix, int32_t *n_st,
                                bool *fits, evo_error *err)
{
    size_t k = n_devs < (size_t)c->n_runs ? n_devs : (size_t)c->n_runs;
    double *fl = calloc((size_t)c->n_runs + 1, sizeof *fl);
    if (fl == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory placing the model");
    double total = 0, speed = 0;
    for (int32_t i = 0; i < c->n_runs; i++) {
        evo_op_cost cost;
        memset(&cost, 0, sizeof cost);
        evo_graph_node_cost(c->g, c->g->order[c->runs[i]], &cost);
        fl[i] = (double)cost.flops + 1.0; /* every op costs something */
        total += fl[i];
    }
    for (size_t d = 0; d < k; d++)
        speed += devs[order[d]].gflops > 0 ? devs[order[d]].gflops : 1.0;
    int32_t i = 0;
    double acc = 0, share = 0;
    for (size_t d = 0; d < k; d++) {
        cuts[d] = i;
        devix[d] = order[d];
        share += (devs[order[d]].gflops > 0 ? devs[order[d]].gflops : 1.0) / speed;
        int32_t left = (int32_t)(k - d - 1); /* later stages need a node each */
        if (d + 1 == k) {
            i = c->n_runs;
        } else {
            do {
                acc += fl[i++];
            } while (i < c->n_runs - left && acc < share * total);
        }
    }
    free(fl);
    *n_st = (int32_t)k;
    *fits = true;
    for (size_t d = 0; d < k; d++) {
        uint64_t need;
        int32_t end = d + 1 < k ? cuts[d + 1] : c->n_runs;
        evo_status rv = plan_need(c, cuts[d], end, &need, err);
        if (rv != EVO_OK)
            return rv;
        if (need > devs[devix[d]].free_bytes)
            *fits = false;
    }
    return EVO_OK;
}

evo_status coord_plan(const evo_graph *g, const coord_plan_dev *devs, size_t n_devs,
                      const char *mode, const char *objective, coord_stage_def **stages_out,
                      int32_t **dev_out, int32_t *n_out, evo_error *err)
{
    *stages_out = NULL;
    *dev_out = NULL;
    *n_out = 0;
    mode = mode ? mode : "auto";
    objective = objective ? objective : "latency";
    if (strcmp(mode, "auto") && strcmp(mode, "standalone") && strcmp(mode, "cluster") &&
        strcmp(mode, "cloud"))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "mode '%s' is not auto, standalone, cluster or cloud", mode);
    if (strcmp(objective, "latency") && strcmp(objective, "throughput"))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "objective '%s' is not latency or throughput", objective);
    if (n_devs == 0)
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "no live device is registered");
    plan_ctx c = {.g = g};
    int32_t *runs = plan_running(g, &c.n_runs);
    int32_t *order = plan_by_speed(devs, n_devs);
    int32_t *cuts = malloc((n_devs + 1) * sizeof *cuts);
    int32_t *devix = malloc((n_devs + 1) * sizeof *devix);
    evo_status rv = EVO_OK;
    int32_t n = 0;
    c.runs = runs;
    if (!runs || !order || !cuts || !devix) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory placing the model");
        goto done;
    }
    if (c.n_runs == 0) {
        rv = evo_error_set(err, EVO_ERR_UNSUPPORTED,
                           "the model computes nothing at run time (all of it folded)");
        goto done;
    }
    uint64_t whole;
    if ((rv = plan_need(&c, 0, c.n_runs, &whole, err)) != EVO_OK)
        goto done;
    bool single = strcmp(mode, "standalone") == 0 || strcmp(mode, "cloud") == 0 ||
                  (strcmp(mode, "auto") == 0 && strcmp(objective, "latency") == 0);
    if (single) {
        bool cloud = strcmp(mode, "cloud") == 0;
        for (size_t d = 0; d < n_devs && n == 0; d++) {
            const coord_plan_dev *dv = &devs[order[d]];
            if (cloud && strcmp(dv->device_class ? dv->device_class : "", "cloud") != 0)
                continue;
            if (whole <= dv->free_bytes) {
                cuts[0] = 0;
                devix[0] = order[d];
                n = 1;
            }
        }
        if (n == 0 && strcmp(mode, "auto") != 0) {
            char nb[32];
            rv = evo_error_set(err, EVO_ERR_LIMIT, "no %sdevice can hold the whole model (%s)",
                               cloud ? "cloud " : "", coord_fmt_bytes(whole, nb));
            goto done;
        }
        if (n == 0)
            rv = plan_fill(&c, devs, order, n_devs, cuts, devix, &n, err);
    } else {
        bool fits = false;
        rv = plan_balanced(&c, devs, order, n_devs, cuts, devix, &n, &fits, err);
        if (rv == EVO_OK && !fits) {
            EVO_LOGI("coordinator: the balanced split does not fit the budgets; filling by memory");
            rv = plan_fill(&c, devs, order, n_devs, cuts, devix, &n, err);
        }
    }
    if (rv != EVO_OK)
        goto done;
    coord_stage_def *st = calloc((size_t)n, sizeof *st);
    int32_t *dv = malloc((size_t)n * sizeof *dv);
    if (st == NULL || dv == NULL) {
        free(st);
        free(dv);
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory placing the model");
        goto done;
    }
    for (int32_t k = 0; k < n; k++) {
        st[k].first = plan_pos(&c, cuts[k]);
        st[k].last = plan_pos(&c, k + 1 < n ? cuts[k + 1] : c.n_runs);
        dv[k] = devix[k];
    }
    rv = coord_stages_finish(g, st, n, err);
    /* Memory and boundary figures come from the stage blobs the
     * coordinator writes next; here only the work is counted. */
    for (int32_t k = 0; k < n && rv == EVO_OK; k++)
        for (int32_t q = st[k].first; q < st[k].last; q++) {
            evo_op_cost cost;
            memset(&cost, 0, sizeof cost);
            if (evo_graph_node_cost(g, g->order[q], &cost) == EVO_OK)
                st[k].flops += cost.flops;
        }
    if (rv != EVO_OK) {
        coord_plan_free(st, dv, n);
        goto done;
    }
    *stages_out = st;
    *dev_out = dv;
    *n_out = n;
done:
    free(runs);
    free(order);
    free(cuts);
    free(devix);
    return rv;
}
