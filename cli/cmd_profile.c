/*
 * `evo profile`: measure a model op by op on this machine and store the
 * latencies in the model database under a device class; calibrate the
 * device; predict latencies from the calibration; and validate the
 * predictor against the measurements (leave-one-model-out).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "evo/db.h"
#include "model.h"

static const char profile_usage[] =
    "usage: evo profile MODEL --db FILE [--device-class NAME] [--warmup N] [--repeat N]\n"
    "                   [--stage FROM:TO] [--name NAME] [--dim NAME=VALUE]... [--version N]\n"
    "                   [--calibrate] [--no-store] [--json]\n"
    "       evo profile MODEL --predict --db FILE [--device-class NAME] [--json]\n"
    "       evo profile --validate --db FILE [--device-class NAME] [--json]\n"
    "       evo profile --calibrate --db FILE [--device-class NAME] [--json]\n"
    "\n"
    "Run a model op by op on this machine (warm-up, then repeats; per-op median),\n"
    "store the latencies under a device class, and print the per-op table, the\n"
    "top 10 ops by time, and their total against the measured end-to-end latency.\n"
    "MODEL is an ONNX file (added to the database first, like `evo model add`) or\n"
    "the name of a model in the database. The device class is calibrated first\n"
    "if it has no calibration yet (about a second).\n"
    "\n"
    "  --db FILE            the database (default: $EVO_DB)\n"
    "  --device-class NAME  label of this machine's class (default: from the CPU model)\n"
    "  --warmup N           untimed runs first (default 5)\n"
    "  --repeat N           timed runs; medians are reported (default 30)\n"
    "  --stage FROM:TO      profile only ops FROM..TO-1 (execution order)\n"
    "  --name NAME, --dim NAME=VALUE   as for `evo model add` (MODEL is a file)\n"
    "  --version N          a model version (MODEL is a name; default the latest)\n"
    "  --calibrate          measure the device again (alone: only calibrate)\n"
    "  --no-store           do not store the profile\n"
    "  --predict            predict MODEL's per-op latency on the device class from\n"
    "                       its calibration, without running it\n"
    "  --validate           for every model profiled on the device class: predicted\n"
    "                       (fitted on the other models) vs measured total, and the\n"
    "                       share of ops predicted within 10% and 25%\n"
    "  --json               print JSON instead of text\n"
    "  -q, --quiet          no log messages;  -v, --verbose  info log messages\n";

#define PROFILE_DEFAULT_WARMUP 5
#define PROFILE_DEFAULT_REPEATS 30
#define PROFILE_TOP 10

typedef struct profile_args {
    const char *model;
    const char *db_path;
    const char *device_class;
    const char *name;
    int64_t version, warmup, repeats;
    int64_t first, last;
    bool has_stage, calibrate, no_store, predict, validate, json;
    cli_dims dims;
} profile_args;

static bool profile_parse_stage(const char *s, profile_args *pa)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return false;
    char from[32];
    if ((size_t)(colon - s) >= sizeof from)
        return false;
    memcpy(from, s, (size_t)(colon - s));
    from[colon - s] = '\0';
    char *end;
    long long a = strtoll(from, &end, 10);
    if (*end != '\0' || a < 0 || a > INT32_MAX)
        return false;
    long long b = strtoll(colon + 1, &end, 10);
    if (*end != '\0' || b <= a || b > INT32_MAX)
        return false;
    pa->first = a;
    pa->last = b;
    pa->has_stage = true;
    return true;
}

static int profile_parse(int argc, char **argv, profile_args *pa)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_profile, argc, argv);
    pa->warmup = PROFILE_DEFAULT_WARMUP;
    pa->repeats = PROFILE_DEFAULT_REPEATS;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--db", &val)) {
            pa->db_path = val;
        } else if (cli_args_value(&a, "--device-class", &val)) {
            pa->device_class = val;
        } else if (cli_args_value(&a, "--name", &val)) {
            pa->name = val;
        } else if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &pa->dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--version", &val)) {
            if (!cli_parse_i64(a.cmd, "--version", val, 1, INT64_MAX, &pa->version))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--warmup", &val)) {
            if (!cli_parse_i64(a.cmd, "--warmup", val, 0, 100000, &pa->warmup))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--repeat", &val)) {
            if (!cli_parse_i64(a.cmd, "--repeat", val, 1, 100000, &pa->repeats))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--stage", &val)) {
            if (!profile_parse_stage(val, pa))
                rc = cli_usage_error(a.cmd->name,
                                     "--stage expects FROM:TO with 0 <= FROM < TO, got '%s'", val);
        } else if (cli_args_flag(&a, "--calibrate")) {
            pa->calibrate = true;
        } else if (cli_args_flag(&a, "--no-store")) {
            pa->no_store = true;
        } else if (cli_args_flag(&a, "--predict")) {
            pa->predict = true;
        } else if (cli_args_flag(&a, "--validate")) {
            pa->validate = true;
        } else if (cli_args_flag(&a, "--json")) {
            pa->json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && pa->model == NULL) {
            pa->model = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (pa->db_path == NULL && (pa->db_path = getenv("EVO_DB")) == NULL)
        return cli_usage_error("profile", "no database given: use --db FILE or set EVO_DB");
    if (pa->validate && (pa->model != NULL || pa->predict))
        return cli_usage_error("profile", "--validate takes no MODEL and no --predict");
    if (pa->predict && pa->has_stage)
        return cli_usage_error("profile", "--predict covers whole models; drop --stage");
    if (pa->model == NULL && !pa->validate && !pa->calibrate)
        return cli_usage_error("profile", "no model given");
    return -1;
}

/* ---------------------------------------------------------------- shared pieces */

static cJSON *profile_cal_json(const evo_calibration *cal)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "dense_gflops", cal->dense_gflops);
    cJSON_AddNumberToObject(o, "dw_gflops", cal->dw_gflops);
    cJSON_AddNumberToObject(o, "elem_gflops", cal->elem_gflops);
    cJSON_AddNumberToObject(o, "mem_gbps", cal->mem_gbps);
    cJSON_AddNumberToObject(o, "cache_gbps", cal->cache_gbps);
    cJSON_AddNumberToObject(o, "cache_bytes", (double)cal->cache_bytes);
    return o;
}

static void profile_print_cal(const char *cls, const evo_calibration *cal)
{
    printf("device class: %s\n", cls);
    char b[32];
    printf("calibration:  dense conv %.3g GFLOP/s, depthwise %.3g GFLOP/s, elementwise %.3g "
           "GFLOP/s,\n              memory %.3g GB/s, cache %.3g GB/s (%s)\n",
           cal->dense_gflops, cal->dw_gflops, cal->elem_gflops, cal->mem_gbps, cal->cache_gbps,
           cli_fmt_bytes(cal->cache_bytes, b, sizeof b));
}

static int profile_emit_json(cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        cli_error("profile", "out of memory while writing JSON");
        return CLI_EXIT_FAIL;
    }
    puts(text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}

/* The class's calibration; measured now when asked or when there is none
 * and measuring is allowed. */
static evo_status profile_calibration(evo_db *db, const char *cls, bool force, bool may_measure,
                                      evo_calibration *cal, bool *measured, evo_error *err)
{
    *measured = false;
    if (!force) {
        evo_status rv = evo_db_calibration_get(db, cls, cal, err);
        if (rv != EVO_ERR_NOT_FOUND)
            return rv;
        if (!may_measure) {
            evo_error_set(err, EVO_ERR_NOT_FOUND,
                          "device class '%s' has no calibration; run `evo profile --calibrate "
                          "--device-class %s` on such a device",
                          cls, cls);
            return EVO_ERR_NOT_FOUND;
        }
        evo_error_clear(err);
    }
    evo_status rv = evo_calibrate(cal, err);
    if (rv == EVO_OK)
        rv = evo_db_calibration_put(db, cls, cal, err);
    if (rv == EVO_OK) {
        *measured = true;
        EVO_LOGI("calibrated '%s' in %.2f s", cls, cal->seconds);
    }
    return rv;
}

/* Turn the stored import options back into --dim bindings. */
static evo_status profile_dims_from_json(const char *json, cli_dims *dims, evo_error *err)
{
    cJSON *o = cJSON_Parse(json ? json : "{}");
    if (o == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "stored import options are not valid JSON");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "dims");
    evo_status rv = EVO_OK;
    for (const cJSON *b = d ? d->child : NULL; b && rv == EVO_OK; b = b->next) {
        char arg[512];
        if (!cJSON_IsNumber(b) ||
            snprintf(arg, sizeof arg, "%s=%.0f", b->string, b->valuedouble) >= (int)sizeof arg)
            rv = evo_error_set(err, EVO_ERR_PARSE, "stored import options have a bad dim");
        else if (!cli_dims_add(&cli_cmd_profile, dims, arg))
            rv = evo_error_set(err, EVO_ERR_PARSE, "stored dim '%s' is invalid", arg);
    }
    cJSON_Delete(o);
    return rv;
}

/* MODEL is a file (added now) or a stored name whose source must be unchanged. */
static evo_status profile_resolve(evo_db *db, profile_args *pa, evo_db_model *m, cli_dims *dims,
                                  evo_error *err)
{
    struct stat st;
    if (stat(pa->model, &st) == 0 && S_ISREG(st.st_mode)) {
        evo_import_options opt = {.dims = pa->dims.items, .n_dims = pa->dims.n};
        bool existed;
        evo_status rv = evo_db_model_add(db, pa->model, pa->name, &opt, m, &existed, err);
        if (rv != EVO_OK)
            return rv;
        if (!existed)
            EVO_LOGI("added %s version %lld", m->name, (long long)m->version);
    } else {
        if (pa->name != NULL || pa->dims.n > 0)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "'%s' is not a file: --name and --dim apply to model files only",
                                 pa->model);
        evo_status rv = evo_db_model_get(db, pa->model, pa->version, m, err);
        if (rv != EVO_OK)
            return rv;
    }
    return profile_dims_from_json(m->import_options, dims, err);
}

/* The stored ops must be the program's ops, in the same order. */
static evo_status profile_match(const evo_db_model *m, const evo_db_op *ops, size_t n_ops,
                                const evo_program *p, evo_error *err)
{
    if ((int64_t)p->n_nodes != m->n_ops || n_ops != (size_t)m->n_ops)
        return evo_error_set(err, EVO_ERR_MISMATCH,
                             "%s: the program has %d ops but the database has %lld for %s "
                             "version %lld; add the model again",
                             m->source_path, (int)p->n_nodes, (long long)m->n_ops, m->name,
                             (long long)m->version);
    for (size_t k = 0; k < n_ops; k++)
        if (strcmp(ops[k].op, p->nodes[k].op->name) != 0)
            return evo_error_set(err, EVO_ERR_MISMATCH,
                                 "%s: op %zu is %s in the program but %s in the database",
                                 m->source_path, k, p->nodes[k].op->name, ops[k].op);
    return EVO_OK;
}

/* ---------------------------------------------------------------- profile */

typedef struct profile_rank {
    double us;
    int32_t k;
} profile_rank;

static int profile_cmp_rank(const void *pa, const void *pb)
{
    const profile_rank *a = pa, *b = pb;
    return a->us > b->us ? -1 : a->us < b->us;
}

static int profile_report(const profile_args *pa, const char *cls, const evo_calibration *cal,
                          const evo_db_model *m, const evo_db_op *ops, const evo_profile *pr,
                          const evo_predictor *pred, bool have_pred)
{
    int32_t n = pr->n_ops;
    profile_rank *rank = malloc((size_t)(n > 0 ? n : 1) * sizeof *rank);
    if (rank == NULL) {
        cli_error("profile", "out of memory");
        return CLI_EXIT_FAIL;
    }
    double pred_total = 0;
    for (int32_t i = 0; i < n; i++) {
        rank[i].us = pr->op_median_us[i];
        rank[i].k = i;
        if (have_pred)
            pred_total += evo_predict_op_us(pred, cal, &ops[pr->first + i]);
    }
    qsort(rank, (size_t)n, sizeof *rank, profile_cmp_rank);
    int32_t top = n < PROFILE_TOP ? n : PROFILE_TOP;
    double sum = pr->op_sum_us > 0 ? pr->op_sum_us : 1;
    char stage[48] = "";
    if (pa->has_stage)
        snprintf(stage, sizeof stage, "%d:%d", (int)pa->first, (int)pa->last);

    if (pa->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", m->name);
        cJSON_AddNumberToObject(o, "version", (double)m->version);
        cJSON_AddStringToObject(o, "device_class", cls);
        cJSON_AddItemToObject(o, "calibration", profile_cal_json(cal));
        if (pa->has_stage)
            cJSON_AddStringToObject(o, "stage", stage);
        cJSON_AddNumberToObject(o, "warmup", pr->warmup);
        cJSON_AddNumberToObject(o, "repeats", pr->repeats);
        cJSON *jo = cJSON_AddArrayToObject(o, "ops");
        for (int32_t i = 0; i < n; i++) {
            const evo_db_op *op = &ops[pr->first + i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "idx", op->idx);
            cJSON_AddStringToObject(j, "name", op->name);
            cJSON_AddStringToObject(j, "op", op->op);
            cJSON_AddStringToObject(j, "kind", evo_op_kind_name(op->kind));
            cJSON_AddNumberToObject(j, "flops", (double)op->flops);
            cJSON_AddNumberToObject(j, "median_us", pr->op_median_us[i]);
            cJSON_AddNumberToObject(j, "min_us", pr->op_min_us[i]);
            if (have_pred)
                cJSON_AddNumberToObject(j, "predicted_us", evo_predict_op_us(pred, cal, op));
            cJSON_AddItemToArray(jo, j);
        }
        cJSON *jt = cJSON_AddArrayToObject(o, "top");
        for (int32_t i = 0; i < top; i++)
            cJSON_AddItemToArray(jt, cJSON_CreateNumber(pr->first + rank[i].k));
        cJSON_AddNumberToObject(o, "op_sum_us", pr->op_sum_us);
        cJSON_AddNumberToObject(o, "e2e_median_us", pr->e2e_median_us);
        cJSON_AddNumberToObject(o, "e2e_min_us", pr->e2e_min_us);
        if (have_pred)
            cJSON_AddNumberToObject(o, "predicted_us", pred_total);
        free(rank);
        return profile_emit_json(o);
    }

    printf("model:        %s version %lld%s%s\n", m->name, (long long)m->version,
           pa->has_stage ? ", stage " : "", stage);
    profile_print_cal(cls, cal);
    printf("runs:         %d warm-up, %d timed; per-op medians in microseconds\n", (int)pr->warmup,
           (int)pr->repeats);
    printf("\n%5s  %-18s %-11s %10s %11s %10s %6s", "#", "op", "kind", "MFLOPs", "median us",
           "min us", "%time");
    if (have_pred)
        printf(" %10s", "pred us");
    printf("  name\n");
    for (int32_t i = 0; i < n; i++) {
        const evo_db_op *op = &ops[pr->first + i];
        printf("%5d  %-18s %-11s %10.3f %11.2f %10.2f %5.1f%%", (int)op->idx, op->op,
               evo_op_kind_name(op->kind), (double)op->flops / 1e6, pr->op_median_us[i],
               pr->op_min_us[i], 100.0 * pr->op_median_us[i] / sum);
        if (have_pred)
            printf(" %10.2f", evo_predict_op_us(pred, cal, op));
        printf("  %s\n", op->name);
    }
    printf("\ntop %d ops by time:\n", (int)top);
    double cum = 0;
    for (int32_t i = 0; i < top; i++) {
        const evo_db_op *op = &ops[pr->first + rank[i].k];
        cum += rank[i].us;
        printf("%3d. #%-4d %-18s %11.2f us %5.1f%%  (cumulative %5.1f%%)  %s\n", (int)i + 1,
               (int)op->idx, op->op, rank[i].us, 100.0 * rank[i].us / sum, 100.0 * cum / sum,
               op->name);
    }
    printf("\ntotal:        ops %.4g ms (sum of medians), end to end %.4g ms (median; min %.4g "
           "ms); ops/end-to-end %.3f\n",
           pr->op_sum_us / 1e3, pr->e2e_median_us / 1e3, pr->e2e_min_us / 1e3,
           pr->e2e_median_us > 0 ? pr->op_sum_us / pr->e2e_median_us : 0.0);
    if (have_pred)
        printf("predicted:    %.4g ms (%+.1f%% vs end to end; fitted on %d other profile%s)\n",
               pred_total / 1e3,
               pr->e2e_median_us > 0 ? 100.0 * (pred_total / pr->e2e_median_us - 1) : 0.0,
               (int)pred->n_profiles, pred->n_profiles == 1 ? "" : "s");
    free(rank);
    return CLI_EXIT_OK;
}

static int profile_run(evo_db *db, profile_args *pa, const char *cls, evo_error *err)
{
    evo_db_model m = {0};
    evo_db_op *ops = NULL;
    size_t n_ops = 0;
    cli_dims dims = {0};
    cli_model cm = {0};
    evo_profile pr = {0};
    evo_calibration cal;
    bool calibrated;
    int rc = CLI_EXIT_FAIL;
    if (profile_resolve(db, pa, &m, &dims, err) != EVO_OK ||
        evo_db_model_ops(db, m.id, &ops, &n_ops, err) != EVO_OK)
        goto done;
    char sha[65];
    if (evo_sha256_file(m.source_path, sha, err) != EVO_OK)
        goto done;
    if (strcmp(sha, m.sha256) != 0) {
        evo_error_set(err, EVO_ERR_MISMATCH,
                      "%s has changed since %s version %lld was added; add it again", m.source_path,
                      m.name, (long long)m.version);
        goto done;
    }
    if (pa->has_stage && pa->last > m.n_ops) {
        evo_error_set(err, EVO_ERR_INVALID_ARG, "stage %lld:%lld is outside the %lld ops of %s",
                      (long long)pa->first, (long long)pa->last, (long long)m.n_ops, m.name);
        goto done;
    }
    if (profile_calibration(db, cls, pa->calibrate, true, &cal, &calibrated, err) != EVO_OK)
        goto done;
    cli_model_options mopt = {.dims = dims.items, .n_dims = dims.n};
    if (cli_model_load(m.source_path, &mopt, &cm, err) != EVO_OK ||
        profile_match(&m, ops, n_ops, cm.prog, err) != EVO_OK)
        goto done;
    cli_model_fill_random(&cm, 1);
    evo_profile_options popt = {.warmup = (int32_t)pa->warmup,
                                .repeats = (int32_t)pa->repeats,
                                .first = (int32_t)pa->first,
                                .last = (int32_t)pa->last};
    if (pa->warmup == 0)
        popt.warmup = -1; /* the library reads 0 as "default" and -1 as none */
    if (evo_profile_exec(&cm.exec, &popt, &pr, err) != EVO_OK) {
        evo_error_prefix(err, "%s", m.source_path);
        goto done;
    }
    char stage[48] = "";
    if (pa->has_stage)
        snprintf(stage, sizeof stage, "%d:%d", (int)pa->first, (int)pa->last);
    if (!pa->no_store && evo_db_profile_put(db, m.id, cls, stage, &pr, err) != EVO_OK)
        goto done;
    /* Predicted column: fitted without this model, so it shows how well
     * the predictor would have done before this measurement. */
    evo_predictor pred;
    if (evo_predictor_fit(db, m.id, &pred, err) != EVO_OK)
        goto done;
    rc = profile_report(pa, cls, &cal, &m, ops, &pr, &pred, pred.n_profiles > 0);
done:
    evo_profile_free(&pr);
    cli_model_free(&cm);
    cli_dims_free(&dims);
    evo_db_ops_free(ops, n_ops);
    evo_db_model_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- predict */

static int profile_predict(evo_db *db, profile_args *pa, const char *cls, evo_error *err)
{
    evo_db_model m = {0};
    evo_db_op *ops = NULL;
    size_t n_ops = 0;
    cli_dims dims = {0};
    evo_profile measured = {0};
    evo_calibration cal;
    bool calibrated;
    int rc = CLI_EXIT_FAIL;
    if (profile_resolve(db, pa, &m, &dims, err) != EVO_OK ||
        evo_db_model_ops(db, m.id, &ops, &n_ops, err) != EVO_OK ||
        profile_calibration(db, cls, pa->calibrate, pa->calibrate, &cal, &calibrated, err) !=
            EVO_OK)
        goto done;
    evo_predictor pred;
    if (evo_predictor_fit(db, 0, &pred, err) != EVO_OK)
        goto done;
    evo_error e2 = {0};
    bool have_measured = evo_db_profile_get(db, m.id, cls, NULL, &measured, &e2) == EVO_OK;
    double total = 0;
    for (size_t i = 0; i < n_ops; i++)
        total += evo_predict_op_us(&pred, &cal, &ops[i]);
    if (pa->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", m.name);
        cJSON_AddNumberToObject(o, "version", (double)m.version);
        cJSON_AddStringToObject(o, "device_class", cls);
        cJSON_AddItemToObject(o, "calibration", profile_cal_json(&cal));
        cJSON_AddNumberToObject(o, "fitted_profiles", pred.n_profiles);
        cJSON *jo = cJSON_AddArrayToObject(o, "ops");
        for (size_t i = 0; i < n_ops; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "idx", ops[i].idx);
            cJSON_AddStringToObject(j, "op", ops[i].op);
            cJSON_AddStringToObject(j, "kind", evo_op_kind_name(ops[i].kind));
            cJSON_AddNumberToObject(j, "flops", (double)ops[i].flops);
            cJSON_AddNumberToObject(j, "roofline_us", evo_roofline_us(&cal, &ops[i]));
            cJSON_AddNumberToObject(j, "predicted_us", evo_predict_op_us(&pred, &cal, &ops[i]));
            cJSON_AddItemToArray(jo, j);
        }
        cJSON_AddNumberToObject(o, "predicted_us", total);
        if (have_measured)
            cJSON_AddNumberToObject(o, "e2e_median_us", measured.e2e_median_us);
        rc = profile_emit_json(o);
        goto done;
    }
    printf("model:        %s version %lld (%lld ops, %.4f GFLOPs)\n", m.name, (long long)m.version,
           (long long)m.n_ops, (double)m.flops / 1e9);
    profile_print_cal(cls, &cal);
    printf("fitted on:    %d profile%s\n", (int)pred.n_profiles, pred.n_profiles == 1 ? "" : "s");
    printf("\n%5s  %-18s %-11s %10s %12s %10s  name\n", "#", "op", "kind", "MFLOPs", "roofline us",
           "pred us");
    for (size_t i = 0; i < n_ops; i++)
        printf("%5d  %-18s %-11s %10.3f %12.2f %10.2f  %s\n", (int)ops[i].idx, ops[i].op,
               evo_op_kind_name(ops[i].kind), (double)ops[i].flops / 1e6,
               evo_roofline_us(&cal, &ops[i]), evo_predict_op_us(&pred, &cal, &ops[i]),
               ops[i].name);
    printf("\npredicted:    %.4g ms\n", total / 1e3);
    if (have_measured)
        printf("measured:     %.4g ms end to end (this class has a profile of the model)\n",
               measured.e2e_median_us / 1e3);
    rc = CLI_EXIT_OK;
done:
    evo_profile_free(&measured);
    cli_dims_free(&dims);
    evo_db_ops_free(ops, n_ops);
    evo_db_model_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- validate */

typedef struct profile_val {
    const evo_db_model *m;
    int32_t n_ops;
    double measured_us, e2e_us, predicted_us;
    int32_t within10, within25;
} profile_val;

/* Leave one model out: each model is predicted by a fit on the others. */
static evo_status profile_validate_model(evo_db *db, const char *cls, const evo_calibration *cal,
                                         const evo_db_model *m, const evo_profile *pr,
                                         profile_val *v, evo_error *err)
{
    evo_db_op *ops = NULL;
    size_t n_ops = 0;
    evo_predictor pred;
    evo_status rv = evo_predictor_fit(db, m->id, &pred, err);
    if (rv == EVO_OK)
        rv = evo_db_model_ops(db, m->id, &ops, &n_ops, err);
    if (rv != EVO_OK)
        return rv;
    memset(v, 0, sizeof *v);
    v->m = m;
    /* The measured total is the sum of the per-op medians, which is what
     * the predictor predicts; the end-to-end median is shown next to it. On
     * a busy machine a whole run of many milliseconds is preempted almost
     * every time while most single ops are not, so the per-op medians are
     * the steadier figure there. */
    v->measured_us = pr->op_sum_us;
    v->e2e_us = pr->e2e_median_us;
    for (int32_t k = 0; k < pr->n_ops; k++) {
        size_t i = (size_t)(pr->first + k);
        if (i >= n_ops)
            break;
        double p = evo_predict_op_us(&pred, cal, &ops[i]);
        double t = pr->op_median_us[k];
        double rel = t > 0 ? fabs(p / t - 1) : (p == 0 ? 0 : INFINITY);
        v->predicted_us += p;
        v->within10 += rel <= 0.10;
        v->within25 += rel <= 0.25;
        v->n_ops++;
    }
    evo_db_ops_free(ops, n_ops);
    (void)cls;
    return EVO_OK;
}

static int profile_validate(evo_db *db, profile_args *pa, const char *cls, evo_error *err)
{
    evo_db_model *models = NULL;
    size_t n_models = 0, n_val = 0;
    profile_val *vals = NULL;
    evo_calibration cal;
    bool calibrated;
    int rc = CLI_EXIT_FAIL;
    if (profile_calibration(db, cls, false, false, &cal, &calibrated, err) != EVO_OK ||
        evo_db_model_list(db, &models, &n_models, err) != EVO_OK)
        goto done;
    vals = calloc(n_models + 1, sizeof *vals);
    if (vals == NULL) {
        evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_models; i++) {
        evo_profile pr;
        evo_error e2 = {0};
        if (evo_db_profile_get(db, models[i].id, cls, NULL, &pr, &e2) != EVO_OK) {
            if (e2.code == EVO_ERR_NOT_FOUND)
                continue;
            *err = e2;
            goto done;
        }
        evo_status rv = profile_validate_model(db, cls, &cal, &models[i], &pr, &vals[n_val], err);
        evo_profile_free(&pr);
        if (rv != EVO_OK)
            goto done;
        n_val++;
    }
    if (n_val == 0) {
        evo_error_set(err, EVO_ERR_NOT_FOUND, "no model has a profile on device class '%s'", cls);
        goto done;
    }
    int32_t all_ops = 0, all10 = 0, all25 = 0, ok15 = 0;
    for (size_t i = 0; i < n_val; i++) {
        all_ops += vals[i].n_ops;
        all10 += vals[i].within10;
        all25 += vals[i].within25;
        ok15 += fabs(vals[i].predicted_us / vals[i].measured_us - 1) <= 0.15;
    }
    if (pa->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device_class", cls);
        cJSON_AddItemToObject(o, "calibration", profile_cal_json(&cal));
        cJSON *a = cJSON_AddArrayToObject(o, "models");
        for (size_t i = 0; i < n_val; i++) {
            const profile_val *v = &vals[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "name", v->m->name);
            cJSON_AddNumberToObject(j, "version", (double)v->m->version);
            cJSON_AddNumberToObject(j, "ops", v->n_ops);
            cJSON_AddNumberToObject(j, "measured_us", v->measured_us);
            cJSON_AddNumberToObject(j, "e2e_us", v->e2e_us);
            cJSON_AddNumberToObject(j, "predicted_us", v->predicted_us);
            cJSON_AddNumberToObject(j, "error", v->predicted_us / v->measured_us - 1);
            cJSON_AddNumberToObject(j, "error_e2e", v->predicted_us / v->e2e_us - 1);
            cJSON_AddNumberToObject(j, "ops_within_10", v->within10);
            cJSON_AddNumberToObject(j, "ops_within_25", v->within25);
            cJSON_AddItemToArray(a, j);
        }
        cJSON_AddNumberToObject(o, "ops", all_ops);
        cJSON_AddNumberToObject(o, "ops_within_10", all10);
        cJSON_AddNumberToObject(o, "ops_within_25", all25);
        cJSON_AddNumberToObject(o, "models_within_15", ok15);
        rc = profile_emit_json(o);
        goto done;
    }
    profile_print_cal(cls, &cal);
    printf("method:       leave one model out (each model predicted by a fit on the others)\n");
    printf("measured:     sum of the per-op medians (end to end alongside)\n\n");
    printf("%-24s %5s %12s %12s %8s %10s %8s %9s %9s\n", "model", "ops", "measured ms",
           "predicted ms", "error", "e2e ms", "vs e2e", "ops ±10%", "ops ±25%");
    for (size_t i = 0; i < n_val; i++) {
        const profile_val *v = &vals[i];
        char name[64];
        if (v->m->version > 1)
            snprintf(name, sizeof name, "%s@%lld", v->m->name, (long long)v->m->version);
        else
            snprintf(name, sizeof name, "%s", v->m->name);
        printf("%-24s %5d %12.4g %12.4g %+7.1f%% %10.4g %+7.1f%% %8.1f%% %8.1f%%\n", name,
               (int)v->n_ops, v->measured_us / 1e3, v->predicted_us / 1e3,
               100.0 * (v->predicted_us / v->measured_us - 1), v->e2e_us / 1e3,
               100.0 * (v->predicted_us / v->e2e_us - 1),
               v->n_ops ? 100.0 * v->within10 / v->n_ops : 0.0,
               v->n_ops ? 100.0 * v->within25 / v->n_ops : 0.0);
    }
    printf("%-24s %5d %12s %12s %8s %10s %8s %8.1f%% %8.1f%%\n", "all ops", (int)all_ops, "", "",
           "", "", "", all_ops ? 100.0 * all10 / all_ops : 0.0,
           all_ops ? 100.0 * all25 / all_ops : 0.0);
    printf("\nmodels within 15%% of measured: %d of %d\n", (int)ok15, (int)n_val);
    rc = CLI_EXIT_OK;
done:
    free(vals);
    evo_db_model_list_free(models, n_models);
    return rc;
}

/* ---------------------------------------------------------------- main */

static int profile_main(int argc, char **argv)
{
    profile_args pa = {0};
    int rc = profile_parse(argc, argv, &pa);
    if (rc >= 0) {
        cli_dims_free(&pa.dims);
        return rc;
    }
    char cls[128];
    if (pa.device_class != NULL)
        snprintf(cls, sizeof cls, "%s", pa.device_class);
    else
        evo_device_class_default(cls, sizeof cls);
    evo_error err = {0};
    evo_db *db = NULL;
    rc = CLI_EXIT_FAIL;
    if (evo_db_open(pa.db_path, &db, &err) != EVO_OK) {
        /* reported below */
    } else if (pa.validate) {
        rc = profile_validate(db, &pa, cls, &err);
    } else if (pa.predict) {
        rc = profile_predict(db, &pa, cls, &err);
    } else if (pa.model != NULL) {
        rc = profile_run(db, &pa, cls, &err);
    } else {
        evo_calibration cal;
        bool measured;
        if (profile_calibration(db, cls, true, true, &cal, &measured, &err) == EVO_OK) {
            if (pa.json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "device_class", cls);
                cJSON *c = profile_cal_json(&cal);
                cJSON_AddNumberToObject(c, "seconds", cal.seconds);
                cJSON_AddItemToObject(o, "calibration", c);
                rc = profile_emit_json(o);
            } else {
                profile_print_cal(cls, &cal);
                printf("measured in:  %.2f s\n", cal.seconds);
                rc = CLI_EXIT_OK;
            }
        }
    }
    if (rc != CLI_EXIT_OK && err.code != EVO_OK)
        cli_error("profile", "%s", err.msg);
    evo_db_close(db);
    cli_dims_free(&pa.dims);
    return rc;
}

const cli_command cli_cmd_profile = {
    .name = "profile",
    .summary = "time a model op by op; calibrate, predict and validate latencies",
    .usage = profile_usage,
    .main = profile_main,
};
