/*
 * The model database file: opening, recognizing foreign and corrupt files,
 * schema migrations, integrity checks, and the SQLite helpers the other
 * db_*.c files share. The schema itself is documented in docs/modeldb.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "db_internal.h"

/* PRAGMA application_id of an evo database: "EVOD". A file with another
 * application's id is refused instead of being written into. */
#define DB_APPLICATION_ID 0x45564f44

/* How long a writer waits for another process's write lock (ms). */
#define DB_BUSY_TIMEOUT_MS 10000

/* Migration k brings schema version k to k + 1; each runs in its own
 * transaction together with the user_version update, so a file is always at
 * exactly one version. Never edit a released migration: append a new one. */
static const char *const db_migrations[] = {
    /* 0 -> 1: the initial schema */
    "CREATE TABLE models ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL CHECK (length(name) > 0),"
    "  version INTEGER NOT NULL CHECK (version >= 1),"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
    "  source_path TEXT NOT NULL,"
    "  import_options TEXT NOT NULL,"
    "  inputs TEXT NOT NULL,"
    "  outputs TEXT NOT NULL,"
    "  n_ops INTEGER NOT NULL CHECK (n_ops >= 0),"
    "  flops INTEGER NOT NULL,"
    "  param_bytes INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE (name, version),"
    "  UNIQUE (name, sha256, import_options));"
    "CREATE TABLE model_ops ("
    "  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL CHECK (idx >= 0),"
    "  name TEXT NOT NULL,"
    "  op TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  in_shapes TEXT NOT NULL,"
    "  out_shapes TEXT NOT NULL,"
    "  flops INTEGER NOT NULL,"
    "  in_bytes INTEGER NOT NULL,"
    "  out_bytes INTEGER NOT NULL,"
    "  param_bytes INTEGER NOT NULL,"
    "  PRIMARY KEY (model_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE artifacts ("
    "  digest TEXT PRIMARY KEY CHECK (length(digest) = 64),"
    "  kind TEXT NOT NULL,"
    "  model_id INTEGER REFERENCES models(id) ON DELETE CASCADE,"
    "  stage TEXT,"
    "  size INTEGER NOT NULL,"
    "  bytes BLOB NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT (datetime('now')));"
    "CREATE INDEX artifacts_by_model ON artifacts(model_id);"
    "CREATE TABLE device_classes ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
    "  created_at TEXT NOT NULL DEFAULT (datetime('now')));"
    "CREATE TABLE calibrations ("
    "  id INTEGER PRIMARY KEY,"
    "  device_class_id INTEGER NOT NULL REFERENCES device_classes(id) ON DELETE CASCADE,"
    "  dense_gflops REAL NOT NULL CHECK (dense_gflops > 0),"
    "  dw_gflops REAL NOT NULL CHECK (dw_gflops > 0),"
    "  elem_gflops REAL NOT NULL CHECK (elem_gflops > 0),"
    "  mem_gbps REAL NOT NULL CHECK (mem_gbps > 0),"
    "  cache_gbps REAL NOT NULL CHECK (cache_gbps > 0),"
    "  cache_bytes INTEGER NOT NULL CHECK (cache_bytes > 0),"
    "  seconds REAL NOT NULL,"
    "  measured_at TEXT NOT NULL DEFAULT (datetime('now')));"
    "CREATE INDEX calibrations_by_class ON calibrations(device_class_id);"
    "CREATE TABLE profiles ("
    "  id INTEGER PRIMARY KEY,"
    "  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    "  device_class_id INTEGER NOT NULL REFERENCES device_classes(id) ON DELETE CASCADE,"
    "  stage TEXT NOT NULL DEFAULT '',"
    "  first_op INTEGER NOT NULL,"
    "  n_ops INTEGER NOT NULL,"
    "  warmup INTEGER NOT NULL,"
    "  repeats INTEGER NOT NULL,"
    "  op_sum_us REAL NOT NULL,"
    "  e2e_median_us REAL NOT NULL,"
    "  e2e_min_us REAL NOT NULL,"
    "  measured_at TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE (model_id, device_class_id, stage));"
    "CREATE TABLE op_latencies ("
    "  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  median_us REAL NOT NULL,"
    "  min_us REAL NOT NULL,"
    "  PRIMARY KEY (profile_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE placement_plans ("
    "  id INTEGER PRIMARY KEY,"
    "  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  plan TEXT NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT (datetime('now')),"
    "  UNIQUE (model_id, name));",
};
#define DB_N_MIGRATIONS ((int)(sizeof db_migrations / sizeof db_migrations[0]))
_Static_assert(DB_N_MIGRATIONS == EVO_DB_SCHEMA_VERSION, "one migration per schema version");

/* ---------------------------------------------------------------- helpers */

evo_status db_sql_error(evo_db *db, int rc, const char *what, evo_error *err)
{
    const char *msg = db && db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
    const char *path = db && db->path ? db->path : "model database";
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: not a usable evo model database (%s) while %s", path, msg, what);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return evo_error_set(err, EVO_ERR_IO,
                             "%s: the database stayed locked by another process while %s", path,
                             what);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return evo_error_set(err, EVO_ERR_IO, "%s: %s while %s", path, msg, what);
    case SQLITE_NOMEM:
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory while %s", path, what);
    default:
        return evo_error_set(err, EVO_ERR_INTERNAL, "%s: SQLite error while %s: %s", path, what,
                             msg);
    }
}

evo_status db_exec(evo_db *db, const char *sql, const char *what, evo_error *err)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? EVO_OK : db_sql_error(db, rc, what, err);
}

evo_status db_prepare(evo_db *db, const char *sql, sqlite3_stmt **st, evo_error *err)
{
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return db_sql_error(db, rc, "preparing a query", err);
    }
    return EVO_OK;
}

evo_status db_begin(evo_db *db, evo_error *err)
{
    return db_exec(db, "BEGIN IMMEDIATE", "starting a write transaction", err);
}

evo_status db_commit(evo_db *db, evo_error *err)
{
    evo_status rv = db_exec(db, "COMMIT", "committing", err);
    if (rv != EVO_OK)
        db_rollback(db);
    return rv;
}

void db_rollback(evo_db *db)
{
    /* Fails harmlessly when SQLite already rolled back on its own. */
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

int db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

char *db_strdup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

char *db_column_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return db_strdup(s ? (const char *)s : "");
}

void db_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha256(data, len, md, 0);
#else
    mbedtls_sha256_ret(data, len, md, 0);
#endif
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

evo_status evo_sha256_file(const char *path, char hex[65], evo_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    unsigned char buf[1 << 16], md[32];
    size_t got;
    int bad = 0;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    bad |= mbedtls_sha256_starts(&ctx, 0);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        bad |= mbedtls_sha256_update(&ctx, buf, got);
    bad |= mbedtls_sha256_finish(&ctx, md);
#else
    bad |= mbedtls_sha256_starts_ret(&ctx, 0);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        bad |= mbedtls_sha256_update_ret(&ctx, buf, got);
    bad |= mbedtls_sha256_finish_ret(&ctx, md);
#endif
    mbedtls_sha256_free(&ctx);
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error)
        return evo_error_set(err, EVO_ERR_IO, "%s: read error", path);
    if (bad)
        return evo_error_set(err, EVO_ERR_INTERNAL, "%s: SHA-256 failed", path);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return EVO_OK;
}

/* ---------------------------------------------------------------- open */

/* One integer from a PRAGMA or a SELECT; the step's SQLite code on failure. */
static int db_query_int(sqlite3 *sql, const char *q, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Refuse files that are SQLite but not ours, and files from a newer evo. */
static evo_status db_check_identity(evo_db *db, int64_t app_id, int64_t version, evo_error *err)
{
    if (app_id != 0 && app_id != DB_APPLICATION_ID)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: this SQLite database belongs to another application "
                             "(application_id 0x%08llx), not evo",
                             db->path, (unsigned long long)app_id);
    if (app_id == 0) {
        int64_t n_tables = 0;
        int rc = db_query_int(db->sql, "SELECT count(*) FROM sqlite_master", &n_tables);
        if (rc != SQLITE_OK)
            return db_sql_error(db, rc, "reading the schema", err);
        if (n_tables > 0 || version != 0)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: this SQLite database was not made by evo (it has %lld "
                                 "schema objects and no evo application_id)",
                                 db->path, (long long)n_tables);
    }
    if (version > EVO_DB_SCHEMA_VERSION)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: the database has schema version %lld, made by a newer evo; this "
                             "evo knows versions up to %d",
                             db->path, (long long)version, EVO_DB_SCHEMA_VERSION);
    if (version < 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: invalid schema version %lld", db->path,
                             (long long)version);
    return EVO_OK;
}

static evo_status db_migrate(evo_db *db, evo_error *err)
{
    for (;;) {
        evo_status rv = db_begin(db, err);
        if (rv != EVO_OK)
            return rv;
        /* Read the version inside the write transaction: another process may
         * have migrated the file since we looked. */
        int64_t app_id = 0, version = 0;
        int rc = db_query_int(db->sql, "PRAGMA application_id", &app_id);
        if (rc == SQLITE_OK)
            rc = db_query_int(db->sql, "PRAGMA user_version", &version);
        if (rc != SQLITE_OK) {
            rv = db_sql_error(db, rc, "reading the schema version", err);
            db_rollback(db);
            return rv;
        }
        if ((rv = db_check_identity(db, app_id, version, err)) != EVO_OK) {
            db_rollback(db);
            return rv;
        }
        if (version == EVO_DB_SCHEMA_VERSION)
            return db_commit(db, err);
        char pragma[96];
        snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d; PRAGMA user_version = %d",
                 DB_APPLICATION_ID, (int)version + 1);
        if ((rv = db_exec(db, db_migrations[version], "migrating the schema", err)) != EVO_OK ||
            (rv = db_exec(db, pragma, "migrating the schema", err)) != EVO_OK) {
            db_rollback(db);
            return rv;
        }
        if ((rv = db_commit(db, err)) != EVO_OK)
            return rv;
        EVO_LOGI("%s: schema migrated to version %d", db->path, (int)version + 1);
    }
}

evo_status evo_db_open(const char *path, evo_db **out, evo_error *err)
{
    if (out == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_open: out is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "no model database file given (--db)");
    evo_db *db = calloc(1, sizeof *db);
    if (db == NULL || (db->path = db_strdup(path)) == NULL) {
        free(db);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    }
    evo_status rv;
    int rc = sqlite3_open_v2(
        path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot open the model database: %s", path,
                           db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(db->sql, DB_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db->sql, 1);
    /* The first read tells a database from any other file. */
    int64_t app_id = 0, version = 0;
    if ((rc = db_query_int(db->sql, "PRAGMA application_id", &app_id)) != SQLITE_OK ||
        (rc = db_query_int(db->sql, "PRAGMA user_version", &version)) != SQLITE_OK) {
        rv = db_sql_error(db, rc, "reading the header", err);
        goto fail;
    }
    if ((rv = db_check_identity(db, app_id, version, err)) != EVO_OK)
        goto fail;
    /* WAL lets readers go on while one process writes; it is a property of
     * the file, so setting it again is free. */
    if ((rv = db_exec(db, "PRAGMA journal_mode = WAL", "enabling WAL", err)) != EVO_OK ||
        (rv = db_exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) != EVO_OK ||
        (rv = db_exec(db, "PRAGMA synchronous = NORMAL", "setting synchronous", err)) != EVO_OK)
        goto fail;
    if ((rv = db_migrate(db, err)) != EVO_OK)
        goto fail;
    *out = db;
    return EVO_OK;
fail:
    evo_db_close(db);
    return rv;
}

void evo_db_close(evo_db *db)
{
    if (db == NULL)
        return;
    sqlite3_close_v2(db->sql);
    free(db->path);
    free(db);
}

int evo_db_schema_version(evo_db *db)
{
    int64_t v = -1;
    if (db == NULL || db_query_int(db->sql, "PRAGMA user_version", &v) != SQLITE_OK)
        return -1;
    return (int)v;
}

evo_status evo_db_check(evo_db *db, evo_error *err)
{
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_check: no database");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db, "PRAGMA integrity_check", &st, err);
    if (rv != EVO_OK)
        return rv;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rv = db_sql_error(db, rc, "checking integrity", err);
    } else {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (res == NULL || strcmp(res, "ok") != 0)
            rv = evo_error_set(err, EVO_ERR_PARSE, "%s: integrity check failed: %s", db->path,
                               res ? res : "(no result)");
    }
    sqlite3_finalize(st);
    if (rv != EVO_OK)
        return rv;
    if ((rv = db_prepare(db, "PRAGMA foreign_key_check", &st, err)) != EVO_OK)
        return rv;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rv = evo_error_set(
            err, EVO_ERR_PARSE, "%s: a row of table %s refers to a missing row of %s", db->path,
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 2));
    else if (rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "checking foreign keys", err);
    sqlite3_finalize(st);
    return rv;
}

/* ---------------------------------------------------------------- device classes */

evo_status db_device_class_id(evo_db *db, const char *name, bool create, int64_t *id,
                              evo_error *err)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 200)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "a device class name must have 1 to 200 characters");
    sqlite3_stmt *st;
    evo_status rv;
    if (create) {
        if ((rv = db_prepare(db, "INSERT OR IGNORE INTO device_classes(name) VALUES (?)", &st,
                             err)) != EVO_OK)
            return rv;
        db_bind_text(st, 1, name);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_sql_error(db, rc, "adding a device class", err);
    }
    if ((rv = db_prepare(db, "SELECT id FROM device_classes WHERE name = ?", &st, err)) != EVO_OK)
        return rv;
    db_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no device class '%s'", db->path, name);
    else
        rv = db_sql_error(db, rc, "looking up a device class", err);
    sqlite3_finalize(st);
    return rv;
}

static const char *const db_kind_names[EVO_KIND_COUNT_] = {
    "conv", "conv1x1", "dwconv", "gemm", "elementwise", "pool", "reduce", "data",
};

const char *evo_op_kind_name(evo_op_kind kind)
{
    return (unsigned)kind < EVO_KIND_COUNT_ ? db_kind_names[kind] : "?";
}

evo_op_kind db_kind_from_name(const char *name)
{
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        if (name && strcmp(name, db_kind_names[k]) == 0)
            return (evo_op_kind)k;
    return EVO_KIND_COUNT_;
}

void evo_db_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

evo_status evo_db_device_classes(evo_db *db, char ***names, size_t *n, evo_error *err)
{
    *names = NULL;
    *n = 0;
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_device_classes: no database");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db, "SELECT name FROM device_classes ORDER BY name", &st, err);
    if (rv != EVO_OK)
        return rv;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **grown = realloc(*names, ncap * sizeof *grown);
            if (grown == NULL) {
                rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory listing device classes");
                break;
            }
            *names = grown;
            cap = ncap;
        }
        if (((*names)[*n] = db_column_strdup(st, 0)) == NULL) {
            rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory listing device classes");
            break;
        }
        (*n)++;
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "listing device classes", err);
    sqlite3_finalize(st);
    if (rv != EVO_OK) {
        evo_db_names_free(*names, *n);
        *names = NULL;
        *n = 0;
    }
    return rv;
}
