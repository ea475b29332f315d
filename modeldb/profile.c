/*
 * The op-by-op profiler: times each node of a program with
 * evo_exec_run_node, and the same nodes end to end, with warm-up and
 * repeats; reports medians (robust on a loaded machine) and minima.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "exec_internal.h"

#define PROF_DEFAULT_WARMUP 3
#define PROF_DEFAULT_REPEATS 20
#define PROF_MAX_REPEATS 100000

static double prof_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int prof_cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* Median of v[0..n) (sorts v). */
static double prof_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, prof_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static evo_status prof_run_range(evo_exec *x, int32_t from, int32_t to, evo_error *err)
{
    for (int32_t k = from; k < to; k++) {
        evo_status rv = evo_exec_run_node(x, k);
        if (rv != EVO_OK) {
            const evo_prog_node *n = &x->prog->nodes[k];
            return evo_error_set(err, rv, "node %d '%s' (%s) failed: %s", (int)k,
                                 n->name ? n->name : "", n->op ? n->op->name : "?",
                                 evo_strerror(rv));
        }
    }
    return EVO_OK;
}

evo_status evo_profile_exec(evo_exec *x, const evo_profile_options *opt, evo_profile *out,
                            evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (x == NULL || x->prog == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "profile: no initialized executor");
    const evo_program *p = x->prog;
    evo_profile_options o = {0};
    if (opt != NULL)
        o = *opt;
    if (o.warmup == 0)
        o.warmup = PROF_DEFAULT_WARMUP;
    else if (o.warmup == -1)
        o.warmup = 0;
    if (o.repeats == 0)
        o.repeats = PROF_DEFAULT_REPEATS;
    if (o.first == 0 && o.last == 0)
        o.last = p->n_nodes;
    if (o.warmup < 0 || o.repeats < 1 || o.repeats > PROF_MAX_REPEATS)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "profile: warm-up must be >= 0 and repeats in [1, %d]",
                             PROF_MAX_REPEATS);
    if (o.first < 0 || o.last > p->n_nodes || o.first >= o.last)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "profile: stage %d:%d is not a non-empty range of the %d nodes",
                             (int)o.first, (int)o.last, (int)p->n_nodes);
    int32_t n = o.last - o.first;
    size_t reps = (size_t)o.repeats;
    double *samples = malloc((size_t)n * reps * sizeof *samples);
    double *e2e = malloc(reps * sizeof *e2e);
    out->op_median_us = calloc((size_t)n, sizeof *out->op_median_us);
    out->op_min_us = calloc((size_t)n, sizeof *out->op_min_us);
    evo_status rv = EVO_OK;
    if (!samples || !e2e || !out->op_median_us || !out->op_min_us) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "profile: out of memory for %d x %d samples", (int)n,
                           (int)o.repeats);
        goto done;
    }
    bool whole = o.first == 0 && o.last == p->n_nodes;
    for (int32_t w = 0; w < o.warmup && rv == EVO_OK; w++)
        rv = prof_run_range(x, 0, o.last, err);
    for (size_t r = 0; r < reps && rv == EVO_OK; r++) {
        /* Op by op: the nodes before the stage make its inputs, untimed. */
        if ((rv = prof_run_range(x, 0, o.first, err)) != EVO_OK)
            break;
        for (int32_t k = o.first; k < o.last; k++) {
            double t0 = prof_now_us();
            evo_status st = evo_exec_run_node(x, k);
            double t1 = prof_now_us();
            if (st != EVO_OK) {
                rv = prof_run_range(x, k, k + 1, err); /* names the node */
                break;
            }
            samples[(size_t)(k - o.first) * reps + r] = t1 - t0;
        }
        if (rv != EVO_OK)
            break;
        /* End to end right after, under the same load. */
        if (whole) {
            int32_t failed = -1;
            double t0 = prof_now_us();
            evo_status st = evo_exec_run(x, &failed);
            e2e[r] = prof_now_us() - t0;
            if (st != EVO_OK)
                rv = prof_run_range(x, 0, p->n_nodes, err);
        } else {
            if ((rv = prof_run_range(x, 0, o.first, err)) != EVO_OK)
                break;
            double t0 = prof_now_us();
            rv = prof_run_range(x, o.first, o.last, err);
            e2e[r] = prof_now_us() - t0;
        }
    }
    if (rv != EVO_OK)
        goto done;
    out->first = o.first;
    out->n_ops = n;
    out->warmup = o.warmup;
    out->repeats = o.repeats;
    for (int32_t k = 0; k < n; k++) {
        double *s = samples + (size_t)k * reps;
        out->op_median_us[k] = prof_median(s, reps);
        out->op_min_us[k] = s[0];
        out->op_sum_us += out->op_median_us[k];
    }
    out->e2e_median_us = prof_median(e2e, reps);
    out->e2e_min_us = e2e[0];
done:
    free(samples);
    free(e2e);
    if (rv != EVO_OK)
        evo_profile_free(out);
    return rv;
}
