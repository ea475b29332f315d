/*
 * The device registry's persistent half: one table in the model database
 * (SQLite), next to modeldb's tables, written through a separate connection
 * so the registry never touches modeldb's schema. A restarted coordinator
 * lists the devices it knew as "offline" until they register again.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_registry.h"

static const char reg_schema[] = "CREATE TABLE IF NOT EXISTS coord_devices ("
                                 "  name TEXT PRIMARY KEY CHECK (length(name) > 0),"
                                 "  class TEXT NOT NULL,"
                                 "  transport TEXT NOT NULL,"
                                 "  control_url TEXT NOT NULL,"
                                 "  data_url TEXT NOT NULL,"
                                 "  memory INTEGER NOT NULL,"
                                 "  gflops REAL NOT NULL,"
                                 "  info TEXT NOT NULL,"
                                 "  registered_at TEXT NOT NULL DEFAULT (datetime('now')),"
                                 "  last_seen TEXT NOT NULL DEFAULT (datetime('now')),"
                                 "  state TEXT NOT NULL DEFAULT 'alive')";

evo_status coord_reg_open(const char *path, sqlite3 **out, evo_error *err)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, reg_schema, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        evo_error_set(err, EVO_ERR_IO, "%s: cannot keep the device registry: %s", path,
                      msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return EVO_ERR_IO;
    }
    *out = db;
    return EVO_OK;
}

void coord_reg_close(sqlite3 *db)
{
    sqlite3_close(db);
}

evo_status coord_reg_put(sqlite3 *db, const coord_reg_row *r, evo_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO coord_devices(name, class, transport, control_url, data_url, memory, gflops,"
        " info, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'alive')"
        " ON CONFLICT(name) DO UPDATE SET class = ?2, transport = ?3, control_url = ?4,"
        " data_url = ?5, memory = ?6, gflops = ?7, info = ?8, state = 'alive',"
        " registered_at = datetime('now'), last_seen = datetime('now')",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->device_class, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->transport, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->control_url, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->data_url, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)r->memory);
        sqlite3_bind_double(st, 7, r->gflops);
        sqlite3_bind_text(st, 8, r->info ? r->info : "{}", -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return evo_error_set(err, EVO_ERR_IO, "cannot store device '%s': %s", r->name,
                             sqlite3_errmsg(db));
    return EVO_OK;
}

evo_status coord_reg_state(sqlite3 *db, const char *name, const char *state, evo_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db, "UPDATE coord_devices SET state = ?2, last_seen = datetime('now') WHERE name = ?1", -1,
        &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return evo_error_set(err, EVO_ERR_IO, "cannot update device '%s': %s", name,
                             sqlite3_errmsg(db));
    return EVO_OK;
}

evo_status coord_reg_list(sqlite3 *db, cJSON *array, evo_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT name, class, transport, control_url, memory, gflops,"
                                " registered_at, last_seen, state FROM coord_devices ORDER BY name",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(o, "class", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(o, "transport", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddStringToObject(o, "control_url", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddNumberToObject(o, "memory", (double)sqlite3_column_int64(st, 4));
        cJSON_AddNumberToObject(o, "gflops", sqlite3_column_double(st, 5));
        cJSON_AddStringToObject(o, "registered_at", (const char *)sqlite3_column_text(st, 6));
        cJSON_AddStringToObject(o, "last_seen", (const char *)sqlite3_column_text(st, 7));
        cJSON_AddStringToObject(o, "stored_state", (const char *)sqlite3_column_text(st, 8));
        cJSON_AddItemToArray(array, o);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return evo_error_set(err, EVO_ERR_IO, "cannot list devices: %s", sqlite3_errmsg(db));
    return EVO_OK;
}
