/*
 * Internals shared by the model database files (db.c, db_models.c,
 * db_store.c, predict.c): the handle and small SQLite helpers. Not public.
 */
#ifndef EVO_DB_INTERNAL_H
#define EVO_DB_INTERNAL_H

#include <sqlite3.h>

#include "evo/db.h"

struct evo_db {
    sqlite3 *sql;
    char *path;
};

/* Turn the handle's last SQLite error into an evo error naming the file and
 * what was being done. Corruption maps to EVO_ERR_PARSE, a lock held too long
 * or a full disk to EVO_ERR_IO, anything else to EVO_ERR_INTERNAL. */
evo_status db_sql_error(evo_db *db, int rc, const char *what, evo_error *err);

/* Run SQL without results (may be several statements). */
evo_status db_exec(evo_db *db, const char *sql, const char *what, evo_error *err);
/* Prepare one statement. */
evo_status db_prepare(evo_db *db, const char *sql, sqlite3_stmt **st, evo_error *err);

/* Transactions: BEGIN IMMEDIATE (the write lock up front, so a writer never
 * deadlocks on an upgrade), COMMIT, and ROLLBACK (which keeps err as is). */
evo_status db_begin(evo_db *db, evo_error *err);
evo_status db_commit(evo_db *db, evo_error *err);
void db_rollback(evo_db *db);

/* Bind helpers that treat NULL as SQL NULL. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A malloc'd copy of a text column ("" for NULL); NULL if out of memory. */
char *db_column_strdup(sqlite3_stmt *st, int col);
char *db_strdup(const char *s);

/* The id of a device class by name, created when create is set; with create
 * unset a missing class is EVO_ERR_NOT_FOUND. */
evo_status db_device_class_id(evo_db *db, const char *name, bool create, int64_t *id,
                              evo_error *err);

/* SHA-256 of a buffer as 64 lower-case hex digits. */
void db_sha256_hex(const void *data, size_t len, char hex[65]);

/* Free an op's strings and zero it. */
void db_op_clear(evo_db_op *op);

/* Kind name -> kind; EVO_KIND_COUNT_ for an unknown name. */
evo_op_kind db_kind_from_name(const char *name);

#endif /* EVO_DB_INTERNAL_H */
