/*
 * Standalone plans, and `auto`: every kind planned, the best feasible one
 * chosen, and a table with the reasons.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_internal.h"

evo_status evo_pt_plan_standalone(const evo_pt_problem *p, const evo_pt_options *opt,
                                  evo_pt_plan *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = EVO_PT_STANDALONE;
    if (p == NULL || p->cons_off == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "standalone planning: no finalized problem");
    if (p->n_nodes == 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "standalone planning: the model has no ops");
    double t0 = pt_now_ms();
    evo_pt_objective obj = opt ? opt->objective : EVO_PT_LATENCY;
    char reason[EVO_ERROR_MSG_MAX] = "no single device can run the whole model:";
    bool have = false;
    for (int32_t d = 0; d < p->n_devices; d++) {
        int32_t len = p->n_nodes;
        evo_pt_plan cand;
        evo_status st = evo_pt_evaluate(p, 1, &d, &len, NULL, EVO_PT_STANDALONE, &cand, err);
        if (st != EVO_OK) {
            evo_pt_plan_free(out);
            return st;
        }
        if (!cand.feasible) {
            size_t l = strlen(reason);
            if (l < sizeof reason)
                snprintf(reason + l, sizeof reason - l, "%s %.150s", d ? ";" : "", cand.reason);
        }
        if (!have || pt_plan_better(&cand, out, obj)) {
            pt_plan_move(out, &cand);
            have = true;
        } else {
            evo_pt_plan_free(&cand);
        }
    }
    if (!out->feasible)
        snprintf(out->reason, sizeof out->reason, "%s", reason);
    snprintf(out->method, sizeof out->method, "enumeration");
    out->exact = true;
    out->kind = EVO_PT_STANDALONE;
    out->planning_ms = pt_now_ms() - t0;
    return EVO_OK;
}

void evo_pt_result_free(evo_pt_result *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < EVO_PT_KIND_COUNT_; i++)
        evo_pt_plan_free(&r->plans[i]);
    free(r->explanation);
    memset(r, 0, sizeof *r);
    r->best = -1;
}

static double solve_transfer_ms(const evo_pt_plan *pl)
{
    double t = 0;
    for (int32_t i = 0; i < pl->n_transfers; i++)
        t += pl->transfers[i].ms;
    return t;
}

static void solve_devices(pt_buf *b, const evo_pt_problem *p, const evo_pt_plan *pl)
{
    char b1[32], b2[32];
    bool first = true;
    for (int32_t d = 0; pl->use && d < pl->n_devices; d++) {
        const evo_pt_device_use *u = &pl->use[d];
        if (!u->used)
            continue;
        pt_buf_printf(b, "%s%s %s/%s", first ? "" : ", ", p->topo->devices[d].name,
                      pt_fmt_bytes(u->ram_bytes, b1, sizeof b1),
                      pt_fmt_bytes(p->topo->devices[d].memory_bytes, b2, sizeof b2));
        if (u->flash_bytes > 0)
            pt_buf_printf(b, " (+%s flash)", pt_fmt_bytes(u->flash_bytes, b1, sizeof b1));
        first = false;
    }
}

evo_status evo_pt_plan_auto(const evo_pt_problem *p, const evo_pt_options *opt, evo_pt_result *out,
                            evo_error *err)
{
    memset(out, 0, sizeof *out);
    out->best = -1;
    evo_pt_objective obj = opt ? opt->objective : EVO_PT_LATENCY;
    evo_status st;
    if ((st = evo_pt_plan_standalone(p, opt, &out->plans[EVO_PT_STANDALONE], err)) != EVO_OK ||
        (st = evo_pt_plan_cloud(p, opt, &out->plans[EVO_PT_CLOUD], err)) != EVO_OK ||
        (st = evo_pt_plan_cluster(p, opt, &out->plans[EVO_PT_CLUSTER], err)) != EVO_OK) {
        evo_pt_result_free(out);
        return st;
    }
    for (int k = 0; k < EVO_PT_KIND_COUNT_; k++)
        if (out->plans[k].feasible &&
            (out->best < 0 || pt_plan_better(&out->plans[k], &out->plans[out->best], obj)))
            out->best = k;

    pt_buf b = {0};
    const char *unit = obj == EVO_PT_THROUGHPUT ? "period" : "latency";
    pt_buf_printf(&b, "%-11s %-16s %11s %10s %9s  %s\n", "kind", "method", "latency ms",
                  "period ms", "req/s", "memory used / capacity per device");
    for (int k = 0; k < EVO_PT_KIND_COUNT_; k++) {
        const evo_pt_plan *pl = &out->plans[k];
        char meth[40];
        snprintf(meth, sizeof meth, "%s%s", pl->method, pl->exact ? "" : "*");
        if (pl->feasible) {
            pt_buf_printf(&b, "%-11s %-16s %11.3f %10.3f %9.1f  ", evo_pt_kind_name((evo_pt_kind)k),
                          meth, pl->latency_ms, pl->period_ms,
                          pl->period_ms > 0 ? 1000.0 / pl->period_ms : 0.0);
            solve_devices(&b, p, pl);
            pt_buf_printf(&b, "%s\n", k == out->best ? "   <- chosen" : "");
        } else {
            pt_buf_printf(&b, "%-11s %-16s %11s %10s %9s  infeasible: %s\n",
                          evo_pt_kind_name((evo_pt_kind)k), meth, "-", "-", "-", pl->reason);
        }
    }
    pt_buf_printf(&b, "(* = heuristic: not proven optimal for its kind)\n");
    if (out->best < 0) {
        pt_buf_printf(&b, "No plan fits. ");
        const evo_pt_plan *sa = &out->plans[EVO_PT_STANDALONE];
        pt_buf_printf(&b, "%s. Cluster: %s.\n", sa->reason, out->plans[EVO_PT_CLUSTER].reason);
    } else {
        const evo_pt_plan *w = &out->plans[out->best];
        double v = evo_pt_plan_value(w, obj);
        double tr = solve_transfer_ms(w);
        pt_buf_printf(&b,
                      "Chosen: %s, %s %.3f ms over %d stage%s (%.3f ms compute, %.3f ms "
                      "transfers).",
                      evo_pt_kind_name((evo_pt_kind)out->best), unit, v, (int)w->n_stages,
                      w->n_stages == 1 ? "" : "s", w->latency_ms - tr, tr);
        int runner = -1;
        for (int k = 0; k < EVO_PT_KIND_COUNT_; k++)
            if (k != out->best && out->plans[k].feasible &&
                (runner < 0 || pt_plan_better(&out->plans[k], &out->plans[runner], obj)))
                runner = k;
        if (runner >= 0) {
            double rv = evo_pt_plan_value(&out->plans[runner], obj);
            if (rv > v * (1 + 1e-9))
                pt_buf_printf(&b, " It beats %s (%.3f ms) by %.1f%%", evo_pt_kind_name(runner), rv,
                              100.0 * (rv - v) / rv);
            else
                pt_buf_printf(
                    &b, " It ties with %s (%.3f ms) and wins on the %s or on fewer stages",
                    evo_pt_kind_name(runner), rv, obj == EVO_PT_THROUGHPUT ? "latency" : "period");
            double rtr = solve_transfer_ms(&out->plans[runner]);
            double rcomp = out->plans[runner].latency_ms - rtr;
            if (obj == EVO_PT_LATENCY && rv > v * (1 + 1e-9))
                pt_buf_printf(&b, ": %s",
                              (w->latency_ms - tr) < rcomp - 1e-9
                                  ? "its devices compute faster"
                                  : "it moves less data or over faster links");
            pt_buf_printf(&b, ".");
        }
        for (int k = 0; k < EVO_PT_KIND_COUNT_; k++)
            if (!out->plans[k].feasible)
                pt_buf_printf(&b, " %s is out: %s.", evo_pt_kind_name((evo_pt_kind)k),
                              out->plans[k].reason);
        pt_buf_printf(&b, "\n");
    }
    if ((out->explanation = pt_buf_take(&b)) == NULL) {
        evo_pt_result_free(out);
        return evo_error_set(err, EVO_ERR_NOMEM, "auto planning: out of memory");
    }
    return EVO_OK;
}
