/*
 * What the database keeps besides models: compiled artifacts, placement
 * plans, device-class calibrations and measured profiles.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db_internal.h"

/* ---------------------------------------------------------------- artifacts */

static bool dbs_is_hex_digest(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

evo_status evo_db_artifact_put(evo_db *db, const char *kind, int64_t model_id, const char *stage,
                               const void *bytes, size_t len, char digest[65], evo_error *err)
{
    if (db == NULL || kind == NULL || kind[0] == '\0' || (bytes == NULL && len > 0) ||
        len > (size_t)INT32_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "evo_db_artifact_put: needs a kind and at most 2 GiB of bytes");
    char hex[65];
    db_sha256_hex(bytes ? bytes : "", len, hex);
    if (digest != NULL)
        memcpy(digest, hex, sizeof hex);
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db,
                               "INSERT OR IGNORE INTO artifacts(digest, kind, model_id, stage, "
                               "size, bytes) VALUES (?, ?, ?, ?, ?, ?)",
                               &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, hex);
    db_bind_text(st, 2, kind);
    if (model_id > 0)
        sqlite3_bind_int64(st, 3, model_id);
    else
        sqlite3_bind_null(st, 3);
    db_bind_text(st, 4, stage);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)len);
    sqlite3_bind_blob(st, 6, bytes ? bytes : "", (int)len, SQLITE_STATIC);
    /* One statement is its own transaction: all or nothing. */
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no model with id %lld for an artifact",
                             db->path, (long long)model_id);
    if (rc != SQLITE_DONE)
        return db_sql_error(db, rc, "storing an artifact", err);
    return EVO_OK;
}

evo_status evo_db_artifact_get(evo_db *db, const char *digest, void **bytes, size_t *len,
                               evo_error *err)
{
    *bytes = NULL;
    *len = 0;
    if (db == NULL || !dbs_is_hex_digest(digest))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "an artifact digest is 64 lower-case hex digits");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db, "SELECT bytes FROM artifacts WHERE digest = ?", &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, digest);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *bytes = malloc(n ? n : 1);
        if (*bytes == NULL) {
            rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading an artifact");
        } else {
            if (n)
                memcpy(*bytes, b, n);
            *len = n;
            /* Content addressing also catches a damaged blob. */
            char hex[65];
            db_sha256_hex(*bytes, n, hex);
            if (strcmp(hex, digest) != 0) {
                free(*bytes);
                *bytes = NULL;
                *len = 0;
                rv = evo_error_set(err, EVO_ERR_PARSE,
                                   "%s: artifact %.12s... does not match its digest", db->path,
                                   digest);
            }
        }
    } else if (rc == SQLITE_DONE) {
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no artifact %s", db->path, digest);
    } else {
        rv = db_sql_error(db, rc, "reading an artifact", err);
    }
    sqlite3_finalize(st);
    return rv;
}

/* ---------------------------------------------------------------- placement plans */

evo_status evo_db_plan_put(evo_db *db, int64_t model_id, const char *name, const char *json,
                           evo_error *err)
{
    if (db == NULL || name == NULL || name[0] == '\0' || json == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a placement plan needs a name and JSON");
    cJSON *parsed = cJSON_Parse(json);
    if (parsed == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "placement plan '%s' is not valid JSON", name);
    cJSON_Delete(parsed);
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db,
                               "INSERT INTO placement_plans(model_id, name, plan) VALUES (?, ?, ?) "
                               "ON CONFLICT(model_id, name) DO UPDATE SET plan = excluded.plan, "
                               "created_at = datetime('now')",
                               &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, model_id);
    db_bind_text(st, 2, name);
    db_bind_text(st, 3, json);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no model with id %lld for plan '%s'",
                             db->path, (long long)model_id, name);
    if (rc != SQLITE_DONE)
        return db_sql_error(db, rc, "storing a placement plan", err);
    return EVO_OK;
}

evo_status evo_db_plan_get(evo_db *db, int64_t model_id, const char *name, char **json,
                           evo_error *err)
{
    *json = NULL;
    if (db == NULL || name == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_plan_get: no database or name");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(
        db, "SELECT plan FROM placement_plans WHERE model_id = ? AND name = ?", &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, model_id);
    db_bind_text(st, 2, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if ((*json = db_column_strdup(st, 0)) == NULL)
            rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading a plan");
    } else if (rc == SQLITE_DONE) {
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: model %lld has no placement plan '%s'",
                           db->path, (long long)model_id, name);
    } else {
        rv = db_sql_error(db, rc, "reading a placement plan", err);
    }
    sqlite3_finalize(st);
    return rv;
}

/* ---------------------------------------------------------------- calibration */

static bool dbs_positive(double v)
{
    return isfinite(v) && v > 0;
}

evo_status evo_db_calibration_put(evo_db *db, const char *device_class, const evo_calibration *cal,
                                  evo_error *err)
{
    if (db == NULL || cal == NULL || !dbs_positive(cal->dense_gflops) ||
        !dbs_positive(cal->dw_gflops) || !dbs_positive(cal->elem_gflops) ||
        !dbs_positive(cal->mem_gbps) || !dbs_positive(cal->cache_gbps) || cal->cache_bytes == 0 ||
        cal->cache_bytes > (uint64_t)INT64_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "a calibration needs positive, finite throughputs");
    evo_status rv = db_begin(db, err);
    if (rv != EVO_OK)
        return rv;
    int64_t cls;
    sqlite3_stmt *st = NULL;
    if ((rv = db_device_class_id(db, device_class, true, &cls, err)) != EVO_OK ||
        (rv = db_prepare(db,
                         "INSERT INTO calibrations(device_class_id, dense_gflops, dw_gflops, "
                         "elem_gflops, mem_gbps, cache_gbps, cache_bytes, seconds) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         &st, err)) != EVO_OK) {
        db_rollback(db);
        return rv;
    }
    sqlite3_bind_int64(st, 1, cls);
    sqlite3_bind_double(st, 2, cal->dense_gflops);
    sqlite3_bind_double(st, 3, cal->dw_gflops);
    sqlite3_bind_double(st, 4, cal->elem_gflops);
    sqlite3_bind_double(st, 5, cal->mem_gbps);
    sqlite3_bind_double(st, 6, cal->cache_gbps);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)cal->cache_bytes);
    sqlite3_bind_double(st, 8, cal->seconds);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rv = db_sql_error(db, rc, "storing a calibration", err);
        db_rollback(db);
        return rv;
    }
    return db_commit(db, err);
}

evo_status evo_db_calibration_get(evo_db *db, const char *device_class, evo_calibration *cal,
                                  evo_error *err)
{
    memset(cal, 0, sizeof *cal);
    if (db == NULL || device_class == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_calibration_get: no class");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(
        db,
        "SELECT c.dense_gflops, c.dw_gflops, c.elem_gflops, c.mem_gbps, "
        "c.seconds, c.cache_gbps, c.cache_bytes FROM calibrations c JOIN device_classes d ON "
        "d.id = c.device_class_id WHERE d.name = ? ORDER BY c.id DESC "
        "LIMIT 1",
        &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, device_class);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cal->dense_gflops = sqlite3_column_double(st, 0);
        cal->dw_gflops = sqlite3_column_double(st, 1);
        cal->elem_gflops = sqlite3_column_double(st, 2);
        cal->mem_gbps = sqlite3_column_double(st, 3);
        cal->seconds = sqlite3_column_double(st, 4);
        cal->cache_gbps = sqlite3_column_double(st, 5);
        cal->cache_bytes = (uint64_t)sqlite3_column_int64(st, 6);
    } else if (rc == SQLITE_DONE) {
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: device class '%s' has no calibration",
                           db->path, device_class);
    } else {
        rv = db_sql_error(db, rc, "reading a calibration", err);
    }
    sqlite3_finalize(st);
    return rv;
}

/* ---------------------------------------------------------------- profiles */

void evo_profile_free(evo_profile *pr)
{
    if (pr == NULL)
        return;
    free(pr->op_median_us);
    free(pr->op_min_us);
    memset(pr, 0, sizeof *pr);
}

evo_status evo_db_profile_put(evo_db *db, int64_t model_id, const char *device_class,
                              const char *stage, const evo_profile *pr, evo_error *err)
{
    if (db == NULL || pr == NULL || pr->n_ops < 0 || pr->first < 0 ||
        (pr->n_ops > 0 && (!pr->op_median_us || !pr->op_min_us)))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_profile_put: bad profile");
    evo_db_model m;
    evo_status rv = evo_db_model_get_id(db, model_id, &m, err);
    if (rv != EVO_OK)
        return rv;
    int64_t n_ops = m.n_ops;
    evo_db_model_free(&m);
    if ((int64_t)pr->first + pr->n_ops > n_ops)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: a profile of ops %d..%d does not fit model %lld of %lld ops",
                             db->path, (int)pr->first, (int)(pr->first + pr->n_ops),
                             (long long)model_id, (long long)n_ops);
    if (stage == NULL)
        stage = "";
    if ((rv = db_begin(db, err)) != EVO_OK)
        return rv;
    int64_t cls, pid;
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rv = db_device_class_id(db, device_class, true, &cls, err)) != EVO_OK)
        goto fail;
    /* Replace: the cascade drops the old per-op rows with the old profile. */
    if ((rv = db_prepare(db,
                         "DELETE FROM profiles WHERE model_id = ? AND device_class_id = ? AND "
                         "stage = ?",
                         &st, err)) != EVO_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, cls);
    db_bind_text(st, 3, stage);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rv = db_sql_error(db, rc, "replacing a profile", err);
        goto fail;
    }
    if ((rv = db_prepare(db,
                         "INSERT INTO profiles(model_id, device_class_id, stage, first_op, n_ops, "
                         "warmup, repeats, op_sum_us, e2e_median_us, e2e_min_us) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         &st, err)) != EVO_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, cls);
    db_bind_text(st, 3, stage);
    sqlite3_bind_int(st, 4, pr->first);
    sqlite3_bind_int(st, 5, pr->n_ops);
    sqlite3_bind_int(st, 6, pr->warmup);
    sqlite3_bind_int(st, 7, pr->repeats);
    sqlite3_bind_double(st, 8, pr->op_sum_us);
    sqlite3_bind_double(st, 9, pr->e2e_median_us);
    sqlite3_bind_double(st, 10, pr->e2e_min_us);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rv = db_sql_error(db, rc, "storing a profile", err);
        goto fail;
    }
    pid = sqlite3_last_insert_rowid(db->sql);
    if ((rv = db_prepare(db,
                         "INSERT INTO op_latencies(profile_id, idx, median_us, min_us) "
                         "VALUES (?, ?, ?, ?)",
                         &st, err)) != EVO_OK)
        goto fail;
    for (int32_t k = 0; k < pr->n_ops; k++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, pid);
        sqlite3_bind_int(st, 2, pr->first + k);
        sqlite3_bind_double(st, 3, pr->op_median_us[k]);
        sqlite3_bind_double(st, 4, pr->op_min_us[k]);
        if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
            rv = db_sql_error(db, rc, "storing op latencies", err);
            break;
        }
    }
    sqlite3_finalize(st);
    if (rv != EVO_OK)
        goto fail;
    return db_commit(db, err);
fail:
    db_rollback(db);
    return rv;
}

evo_status evo_db_profile_get(evo_db *db, int64_t model_id, const char *device_class,
                              const char *stage, evo_profile *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (db == NULL || device_class == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_profile_get: no database or class");
    if (stage == NULL)
        stage = "";
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db,
                               "SELECT p.id, p.first_op, p.n_ops, p.warmup, p.repeats, "
                               "p.op_sum_us, p.e2e_median_us, p.e2e_min_us FROM profiles p "
                               "JOIN device_classes d ON d.id = p.device_class_id "
                               "WHERE p.model_id = ? AND d.name = ? AND p.stage = ?",
                               &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, model_id);
    db_bind_text(st, 2, device_class);
    db_bind_text(st, 3, stage);
    int rc = sqlite3_step(st);
    int64_t pid = 0;
    if (rc == SQLITE_ROW) {
        pid = sqlite3_column_int64(st, 0);
        out->first = sqlite3_column_int(st, 1);
        out->n_ops = sqlite3_column_int(st, 2);
        out->warmup = sqlite3_column_int(st, 3);
        out->repeats = sqlite3_column_int(st, 4);
        out->op_sum_us = sqlite3_column_double(st, 5);
        out->e2e_median_us = sqlite3_column_double(st, 6);
        out->e2e_min_us = sqlite3_column_double(st, 7);
    } else if (rc == SQLITE_DONE) {
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND,
                           "%s: model %lld has no profile%s%s on device class '%s'", db->path,
                           (long long)model_id, stage[0] ? " of stage " : "", stage, device_class);
    } else {
        rv = db_sql_error(db, rc, "reading a profile", err);
    }
    sqlite3_finalize(st);
    if (rv != EVO_OK)
        return rv;
    if (out->n_ops < 0 || out->n_ops > (1 << 24)) {
        memset(out, 0, sizeof *out);
        return evo_error_set(err, EVO_ERR_PARSE, "%s: profile %lld has an invalid op count",
                             db->path, (long long)pid);
    }
    size_t n = (size_t)out->n_ops;
    out->op_median_us = calloc(n ? n : 1, sizeof *out->op_median_us);
    out->op_min_us = calloc(n ? n : 1, sizeof *out->op_min_us);
    if (!out->op_median_us || !out->op_min_us) {
        evo_profile_free(out);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading a profile");
    }
    if ((rv = db_prepare(db,
                         "SELECT idx, median_us, min_us FROM op_latencies WHERE profile_id = ? "
                         "ORDER BY idx",
                         &st, err)) != EVO_OK) {
        evo_profile_free(out);
        return rv;
    }
    sqlite3_bind_int64(st, 1, pid);
    size_t got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0) - out->first;
        if (k < 0 || k >= out->n_ops) {
            rv = evo_error_set(err, EVO_ERR_PARSE, "%s: profile %lld has an op outside its range",
                               db->path, (long long)pid);
            break;
        }
        out->op_median_us[k] = sqlite3_column_double(st, 1);
        out->op_min_us[k] = sqlite3_column_double(st, 2);
        got++;
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "reading op latencies", err);
    if (rv == EVO_OK && got != n)
        rv = evo_error_set(err, EVO_ERR_PARSE, "%s: profile %lld has %zu of its %zu op rows",
                           db->path, (long long)pid, got, n);
    sqlite3_finalize(st);
    if (rv != EVO_OK)
        evo_profile_free(out);
    return rv;
}
