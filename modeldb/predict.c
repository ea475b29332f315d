/*
 * Latency prediction: a roofline per op kind, scaled and offset by terms
 * fitted on the measured profiles in the database (docs/modeldb.md):
 *
 *     roofline(op) = max(flops / peak(kind), bytes / bandwidth)
 *     t(op)        = alpha[kind] * roofline(op) + beta[kind]
 *
 * peak and bandwidth are the device class's calibration, so a class that
 * was only calibrated (never profiled) still gets predictions; alpha absorbs
 * how far a kind's kernels stay from the calibrated peak on real shapes,
 * beta the fixed per-op cost (dispatch, loop setup, cache warm-up).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* A kind needs this many measured ops for its own fit: even one measured
 * op of a kind says more about its kernel than any other kind's fit. */
#define PRED_MIN_SAMPLES 1

typedef struct pred_sample {
    double r; /* roofline, us */
    double t; /* measured median, us */
} pred_sample;

double evo_roofline_us(const evo_calibration *cal, const evo_db_op *op)
{
    double peak;
    switch (op->kind) {
    case EVO_KIND_CONV:
    case EVO_KIND_CONV1X1:
    case EVO_KIND_GEMM:
        peak = cal->dense_gflops;
        break;
    case EVO_KIND_DWCONV:
        peak = cal->dw_gflops;
        break;
    default:
        peak = cal->elem_gflops;
        break;
    }
    /* GFLOP/s = 1e3 FLOPs per microsecond; GB/s = 1e3 bytes per microsecond */
    double compute = peak > 0 ? (double)op->flops / (peak * 1e3) : 0;
    double bytes = (double)op->in_bytes + (double)op->out_bytes + (double)op->param_bytes;
    /* Data that fits the cache moves at cache speed (weights and
     * activations of small layers stay resident between runs). */
    double bw =
        bytes <= (double)cal->cache_bytes && cal->cache_gbps > 0 ? cal->cache_gbps : cal->mem_gbps;
    double memory = bw > 0 ? bytes / (bw * 1e3) : 0;
    return compute > memory ? compute : memory;
}

double evo_predict_op_us(const evo_predictor *p, const evo_calibration *cal, const evo_db_op *op)
{
    int k = (unsigned)op->kind < EVO_KIND_COUNT_ ? (int)op->kind : EVO_KIND_ELEMENTWISE;
    return p->alpha[k] * evo_roofline_us(cal, op) + p->beta_us[k];
}

/* Weighted least squares of t = alpha * r + beta with weights 1 / t^2, that
 * is, least relative error: a model's ops span four orders of magnitude,
 * and plain least squares would fit only the largest. Keeps alpha > 0 and
 * beta >= 0 (a negative overhead would predict negative times for tiny
 * ops); one sample fixes alpha alone. Returns false if the samples cannot
 * determine alpha. */
static bool pred_fit_kind(const pred_sample *s, size_t n, double *alpha, double *beta)
{
    double sw = 0, sr = 0, st = 0, srr = 0, srt = 0;
    for (size_t i = 0; i < n; i++) {
        double t = s[i].t > 0.05 ? s[i].t : 0.05; /* below the timer's resolution */
        double w = 1.0 / (t * t);
        sw += w;
        sr += w * s[i].r;
        st += w * s[i].t;
        srr += w * s[i].r * s[i].r;
        srt += w * s[i].r * s[i].t;
    }
    if (sw <= 0)
        return false;
    double det = sw * srr - sr * sr;
    double a = 0, b = -1;
    if (det > 1e-12 * sw * srr && n >= 2) {
        a = (sw * srt - sr * st) / det;
        b = (st - a * sr) / sw;
    }
    if (!(a > 0) || b < 0) {
        /* Through the origin, then the overhead alone if even that fails. */
        b = 0;
        a = srr > 0 ? srt / srr : 0;
        if (!(a > 0) || !isfinite(a)) {
            a = 0;
            b = st / sw;
        }
    }
    if (!isfinite(a) || !isfinite(b))
        return false;
    *alpha = a;
    *beta = b;
    return true;
}

evo_status evo_predictor_fit(evo_db *db, int64_t exclude_model_id, evo_predictor *out,
                             evo_error *err)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        out->alpha[k] = 1.0;
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_predictor_fit: no database");
    /* Every measured op of every whole-model profile, with the latest
     * calibration of the profile's device class. */
    sqlite3_stmt *st;
    evo_status rv =
        db_prepare(db,
                   "SELECT o.kind, o.flops, o.in_bytes, o.out_bytes, o.param_bytes, l.median_us, "
                   "c.dense_gflops, c.dw_gflops, c.elem_gflops, c.mem_gbps, p.id, c.cache_gbps, "
                   "c.cache_bytes "
                   "FROM profiles p "
                   "JOIN op_latencies l ON l.profile_id = p.id "
                   "JOIN model_ops o ON o.model_id = p.model_id AND o.idx = l.idx "
                   "JOIN calibrations c ON c.id = (SELECT MAX(id) FROM calibrations "
                   "                               WHERE device_class_id = p.device_class_id) "
                   "WHERE p.stage = '' AND p.model_id != ?1 ORDER BY p.id",
                   &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, exclude_model_id);
    pred_sample *samples[EVO_KIND_COUNT_] = {0};
    size_t n[EVO_KIND_COUNT_] = {0}, cap[EVO_KIND_COUNT_] = {0};
    int64_t last_profile = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        evo_db_op op = {0};
        op.kind = db_kind_from_name((const char *)sqlite3_column_text(st, 0));
        if (op.kind == EVO_KIND_COUNT_)
            continue;
        op.flops = (uint64_t)sqlite3_column_int64(st, 1);
        op.in_bytes = (uint64_t)sqlite3_column_int64(st, 2);
        op.out_bytes = (uint64_t)sqlite3_column_int64(st, 3);
        op.param_bytes = (uint64_t)sqlite3_column_int64(st, 4);
        double t = sqlite3_column_double(st, 5);
        evo_calibration cal = {.dense_gflops = sqlite3_column_double(st, 6),
                               .dw_gflops = sqlite3_column_double(st, 7),
                               .elem_gflops = sqlite3_column_double(st, 8),
                               .mem_gbps = sqlite3_column_double(st, 9),
                               .cache_gbps = sqlite3_column_double(st, 11),
                               .cache_bytes = (uint64_t)sqlite3_column_int64(st, 12)};
        int64_t pid = sqlite3_column_int64(st, 10);
        if (pid != last_profile) {
            out->n_profiles++;
            last_profile = pid;
        }
        if (!(t >= 0) || !isfinite(t))
            continue;
        size_t k = (size_t)op.kind;
        if (n[k] == cap[k]) {
            size_t ncap = cap[k] ? cap[k] * 2 : 64;
            pred_sample *grown = realloc(samples[k], ncap * sizeof *grown);
            if (grown == NULL) {
                rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory fitting the predictor");
                break;
            }
            samples[k] = grown;
            cap[k] = ncap;
        }
        samples[k][n[k]].r = evo_roofline_us(&cal, &op);
        samples[k][n[k]].t = t;
        n[k]++;
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "reading profiles for the predictor", err);
    sqlite3_finalize(st);

    /* Kinds with enough data get their own fit; the others keep alpha 1
     * and take the median overhead of the fitted kinds. */
    double betas[EVO_KIND_COUNT_];
    int n_betas = 0;
    bool fitted[EVO_KIND_COUNT_] = {false};
    for (int k = 0; rv == EVO_OK && k < EVO_KIND_COUNT_; k++) {
        out->n_samples[k] = (int32_t)n[k];
        if (n[k] >= PRED_MIN_SAMPLES &&
            pred_fit_kind(samples[k], n[k], &out->alpha[k], &out->beta_us[k])) {
            fitted[k] = true;
            betas[n_betas++] = out->beta_us[k];
        }
    }
    if (n_betas > 0) {
        /* insertion sort: at most EVO_KIND_COUNT_ entries */
        for (int i = 1; i < n_betas; i++)
            for (int j = i; j > 0 && betas[j] < betas[j - 1]; j--) {
                double tmp = betas[j];
                betas[j] = betas[j - 1];
                betas[j - 1] = tmp;
            }
        for (int k = 0; k < EVO_KIND_COUNT_; k++)
            if (!fitted[k])
                out->beta_us[k] = betas[n_betas / 2];
    }
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        free(samples[k]);
    return rv;
}
