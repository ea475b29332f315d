/*
 * The model database on temporary files: add, list, show, remove, versions,
 * idempotence, a process killed in the middle of an add, and corrupt,
 * foreign and newer database files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "evo/db.h"

#define MLP EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx"

typedef struct fixture {
    char dir[64];
    char db[128];
    char mlp2[128]; /* tiny_mlp with a doc_string appended: same graph, other bytes */
} fixture;

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 16);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/evo_db_test.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->db, sizeof fx->db, "%s/models.db", fx->dir);
    snprintf(fx->mlp2, sizeof fx->mlp2, "%s/mlp2.onnx", fx->dir);
    size_t n;
    unsigned char *buf = read_file(MLP, &n);
    /* ModelProto field 6 (doc_string), length 3: a valid, different file */
    memcpy(buf + n,
           "\x32\x03"
           "abc",
           5);
    write_file(fx->mlp2, buf, n + 5);
    free(buf);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static evo_db *open_db(const char *path)
{
    evo_db *db = NULL;
    evo_error err = {0};
    evo_status rv = evo_db_open(path, &db, &err);
    if (rv != EVO_OK)
        fail_msg("open %s: %s", path, err.msg);
    return db;
}

static size_t count_models(evo_db *db)
{
    evo_db_model *list;
    size_t n;
    evo_error err = {0};
    assert_int_equal(evo_db_model_list(db, &list, &n, &err), EVO_OK);
    evo_db_model_list_free(list, n);
    return n;
}

/* ---------------------------------------------------------------- tests */

static void test_open_creates_current_schema(void **state)
{
    fixture *fx = *state;
    evo_db *db = open_db(fx->db);
    assert_int_equal(evo_db_schema_version(db), EVO_DB_SCHEMA_VERSION);
    assert_int_equal(count_models(db), 0);
    evo_error err = {0};
    assert_int_equal(evo_db_check(db, &err), EVO_OK);
    evo_db_close(db);
    assert_int_equal(access(fx->db, F_OK), 0);
    /* reopening an existing database keeps it */
    db = open_db(fx->db);
    assert_int_equal(evo_db_schema_version(db), EVO_DB_SCHEMA_VERSION);
    evo_db_close(db);
}

static void test_add_show_idempotent_versions_remove(void **state)
{
    fixture *fx = *state;
    evo_db *db = open_db(fx->db);
    evo_error err = {0};
    evo_db_model m;
    bool existed = true;
    assert_int_equal(evo_db_model_add(db, MLP, "mlp", NULL, &m, &existed, &err), EVO_OK);
    assert_false(existed);
    assert_string_equal(m.name, "mlp");
    assert_int_equal(m.version, 1);
    assert_int_equal(strlen(m.sha256), 64);
    /* The database records the graph evo runs: 64-32-10 MLP with the Relu
     * fused into the first Gemm. Gemm 2*64*32, Gemm 2*32*10, Softmax 4 per
     * element (max, subtract-exp, sum, divide). */
    assert_int_equal(m.n_ops, 3);
    assert_int_equal(m.flops, 4096 + 640 + 40);
    /* w1 32x64, b1 32, w2 10x32, b2 10 floats */
    assert_int_equal(m.param_bytes, 4 * (2048 + 32 + 320 + 10));
    assert_string_equal(m.inputs, "[{\"name\":\"x\",\"dtype\":\"float32\",\"shape\":[1,64]}]");
    assert_string_equal(m.outputs, "[{\"name\":\"probs\",\"dtype\":\"float32\",\"shape\":[1,10]}]");
    assert_string_equal(m.import_options, "{\"dims\":{}}");
    int64_t id1 = m.id;
    char sha1[65];
    memcpy(sha1, m.sha256, sizeof sha1);
    char filesha[65];
    assert_int_equal(evo_sha256_file(MLP, filesha, &err), EVO_OK);
    assert_string_equal(filesha, sha1);
    evo_db_model_free(&m);

    /* per-op facts in execution order */
    evo_db_op *ops;
    size_t n_ops;
    assert_int_equal(evo_db_model_ops(db, id1, &ops, &n_ops, &err), EVO_OK);
    assert_int_equal(n_ops, 3); /* Gemm (+Relu fused), Gemm, Softmax */
    assert_string_equal(ops[0].op, "Gemm");
    assert_int_equal(ops[0].kind, EVO_KIND_GEMM);
    assert_string_equal(ops[0].in_shapes, "[[1,64],[32,64],[32]]");
    assert_string_equal(ops[0].out_shapes, "[[1,32]]");
    assert_int_equal(ops[0].flops, 4096);
    assert_int_equal(ops[0].in_bytes, 256);
    assert_int_equal(ops[0].out_bytes, 128);
    assert_int_equal(ops[0].param_bytes, 4 * (2048 + 32));
    assert_string_equal(ops[1].op, "Gemm");
    assert_int_equal(ops[1].kind, EVO_KIND_GEMM);
    assert_string_equal(ops[2].op, "Softmax");
    assert_int_equal(ops[2].kind, EVO_KIND_REDUCE);
    evo_db_ops_free(ops, n_ops);

    /* the same file again: nothing new */
    assert_int_equal(evo_db_model_add(db, MLP, "mlp", NULL, &m, &existed, &err), EVO_OK);
    assert_true(existed);
    assert_int_equal(m.id, id1);
    assert_int_equal(m.version, 1);
    evo_db_model_free(&m);
    assert_int_equal(count_models(db), 1);

    /* another file under the same name: version 2 */
    assert_int_equal(evo_db_model_add(db, fx->mlp2, "mlp", NULL, &m, &existed, &err), EVO_OK);
    assert_false(existed);
    assert_int_equal(m.version, 2);
    assert_string_not_equal(m.sha256, sha1);
    evo_db_model_free(&m);
    /* the same file with other options: also a new version */
    evo_dim_binding dims[] = {{"batch", 4}};
    evo_import_options opt = {.dims = dims, .n_dims = 1};
    assert_int_equal(evo_db_model_add(db, MLP, "mlp", &opt, &m, &existed, &err), EVO_OK);
    assert_int_equal(m.version, 3);
    assert_string_equal(m.import_options, "{\"dims\":{\"batch\":4}}");
    assert_string_equal(m.inputs, "[{\"name\":\"x\",\"dtype\":\"float32\",\"shape\":[4,64]}]");
    assert_int_equal(m.flops, 4 * (4096 + 640 + 40));
    evo_db_model_free(&m);

    /* the default name of DIR/model.onnx is DIR */
    assert_int_equal(evo_db_model_add(db, MLP, NULL, NULL, &m, NULL, &err), EVO_OK);
    assert_string_equal(m.name, "tiny_mlp");
    assert_int_equal(m.version, 1);
    evo_db_model_free(&m);

    /* list: by name, then version */
    evo_db_model *list;
    size_t n;
    assert_int_equal(evo_db_model_list(db, &list, &n, &err), EVO_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].name, "mlp");
    assert_int_equal(list[0].version, 1);
    assert_int_equal(list[2].version, 3);
    assert_string_equal(list[3].name, "tiny_mlp");
    evo_db_model_list_free(list, n);

    /* show: latest by default, or a given version */
    assert_int_equal(evo_db_model_get(db, "mlp", 0, &m, &err), EVO_OK);
    assert_int_equal(m.version, 3);
    evo_db_model_free(&m);
    assert_int_equal(evo_db_model_get(db, "mlp", 1, &m, &err), EVO_OK);
    assert_string_equal(m.sha256, sha1);
    evo_db_model_free(&m);
    assert_int_equal(evo_db_model_get(db, "mlp", 9, &m, &err), EVO_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'mlp' version 9"));
    assert_int_equal(evo_db_model_get(db, "nope", 0, &m, &err), EVO_ERR_NOT_FOUND);

    /* remove one version, then the rest */
    int64_t removed = 0;
    assert_int_equal(evo_db_model_remove(db, "mlp", 2, &removed, &err), EVO_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(count_models(db), 3);
    assert_int_equal(evo_db_model_remove(db, "mlp", 2, &removed, &err), EVO_ERR_NOT_FOUND);
    assert_int_equal(evo_db_model_remove(db, "mlp", 0, &removed, &err), EVO_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(count_models(db), 1);
    assert_int_equal(evo_db_model_remove(db, "mlp", 0, &removed, &err), EVO_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model named 'mlp'"));
    /* the ops went with the model (ON DELETE CASCADE) */
    assert_int_equal(evo_db_model_ops(db, id1, &ops, &n_ops, &err), EVO_OK);
    assert_int_equal(n_ops, 0);
    assert_int_equal(evo_db_check(db, &err), EVO_OK);
    /* versions number what exists under a name: after removing all, 1 again */
    assert_int_equal(evo_db_model_add(db, MLP, "mlp", NULL, &m, NULL, &err), EVO_OK);
    assert_int_equal(m.version, 1);
    evo_db_model_free(&m);
    evo_db_close(db);
}

static void test_add_bad_input(void **state)
{
    fixture *fx = *state;
    evo_db *db = open_db(fx->db);
    evo_error err = {0};
    evo_db_model m;
    char path[160];
    snprintf(path, sizeof path, "%s/missing.onnx", fx->dir);
    assert_int_equal(evo_db_model_add(db, path, "x", NULL, &m, NULL, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.onnx"));
    snprintf(path, sizeof path, "%s/garbage.onnx", fx->dir);
    write_file(path, "\xff\xff\xff\xff garbage", 13);
    evo_status rv = evo_db_model_add(db, path, "x", NULL, &m, NULL, &err);
    assert_int_not_equal(rv, EVO_OK);
    assert_non_null(strstr(err.msg, "garbage.onnx"));
    assert_int_equal(evo_db_model_add(db, MLP, "", NULL, &m, NULL, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_db_model_add(db, MLP, "a\nb", NULL, &m, NULL, &err), EVO_ERR_INVALID_ARG);
    /* a file over the size limit is refused before anything is stored */
    evo_dim_binding dims[] = {{"batch", 0}};
    evo_import_options opt = {.dims = dims, .n_dims = 1, .limits = {.max_file_bytes = 10}};
    assert_int_equal(evo_db_model_add(db, MLP, "x", &opt, &m, NULL, &err), EVO_ERR_LIMIT);
    assert_int_equal(count_models(db), 0);
    assert_int_equal(evo_db_check(db, &err), EVO_OK);
    evo_db_close(db);
}

/* A child begins an add and is SIGKILLed between inserting the model row
 * and its ops: the transaction never commits, and the database must show
 * neither a partial model nor damage. */
static void test_killed_add_leaves_db_consistent(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    evo_db *db = open_db(fx->db);
    assert_int_equal(evo_db_model_add(db, MLP, "before", NULL, NULL, NULL, &err), EVO_OK);
    evo_db_close(db);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("EVO_DB_TEST_KILL_AFTER_OPS", "2", 1);
        evo_db *child = NULL;
        evo_error cerr = {0};
        if (evo_db_open(fx->db, &child, &cerr) != EVO_OK)
            _exit(3);
        evo_db_model_add(child, fx->mlp2, "crashy", NULL, NULL, NULL, &cerr);
        _exit(4); /* not reached: the hook kills the process */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    db = open_db(fx->db);
    assert_int_equal(evo_db_check(db, &err), EVO_OK);
    evo_db_model m;
    assert_int_equal(evo_db_model_get(db, "crashy", 0, &m, &err), EVO_ERR_NOT_FOUND);
    assert_int_equal(count_models(db), 1);
    /* no orphaned op rows either: only the 3 of "before" */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(fx->db, &raw), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, "SELECT count(*) FROM model_ops", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    /* and the same add now succeeds as version 1 */
    assert_int_equal(evo_db_model_add(db, fx->mlp2, "crashy", NULL, &m, NULL, &err), EVO_OK);
    assert_int_equal(m.version, 1);
    evo_db_model_free(&m);
    evo_db_close(db);
}

static void expect_open_error(const char *path, evo_status code, const char *needle)
{
    evo_db *db = (evo_db *)1;
    evo_error err = {0};
    assert_int_equal(evo_db_open(path, &db, &err), code);
    assert_null(db);
    if (strstr(err.msg, needle) == NULL || strstr(err.msg, path) == NULL)
        fail_msg("message '%s' lacks '%s' or the path", err.msg, needle);
}

static void test_corrupt_and_foreign_files(void **state)
{
    fixture *fx = *state;
    char path[160];

    /* not a database at all */
    snprintf(path, sizeof path, "%s/text.db", fx->dir);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)('a' + i % 26);
    write_file(path, junk, sizeof junk);
    expect_open_error(path, EVO_ERR_PARSE, "not a usable evo model database");

    /* an SQLite header followed by garbage */
    snprintf(path, sizeof path, "%s/torn.db", fx->dir);
    memcpy(junk, "SQLite format 3", 16);
    write_file(path, junk, sizeof junk);
    expect_open_error(path, EVO_ERR_PARSE, "not a usable evo model database");

    /* a real evo database whose pages were overwritten */
    snprintf(path, sizeof path, "%s/smashed.db", fx->dir);
    evo_db *db = open_db(path);
    evo_error err = {0};
    assert_int_equal(evo_db_model_add(db, MLP, "mlp", NULL, NULL, NULL, &err), EVO_OK);
    evo_db_close(db);
    size_t n;
    unsigned char *buf = read_file(path, &n);
    assert_true(n > 4096 + 100);
    memset(buf + 100, 0xA5, n - 100); /* keep the 100-byte file header */
    write_file(path, buf, n);
    free(buf);
    db = NULL;
    evo_status rv = evo_db_open(path, &db, &err);
    if (rv == EVO_OK) { /* the schema page may survive in cache-less reads */
        rv = evo_db_check(db, &err);
        evo_db_close(db);
    }
    assert_int_equal(rv, EVO_ERR_PARSE);
    assert_non_null(strstr(err.msg, "smashed.db"));

    /* an SQLite database of another program */
    snprintf(path, sizeof path, "%s/other.db", fx->dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "CREATE TABLE notes(x TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    expect_open_error(path, EVO_ERR_PARSE, "not made by evo");

    snprintf(path, sizeof path, "%s/app.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA application_id = 1234", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    expect_open_error(path, EVO_ERR_PARSE, "another application");

    /* made by a newer evo */
    snprintf(path, sizeof path, "%s/newer.db", fx->dir);
    db = open_db(path);
    evo_db_close(db);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    expect_open_error(path, EVO_ERR_UNSUPPORTED, "newer evo");

    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", fx->dir);
    expect_open_error(path, EVO_ERR_IO, "cannot open");

    evo_db *none = NULL;
    assert_int_equal(evo_db_open("", &none, &err), EVO_ERR_INVALID_ARG);
    assert_null(none);
}

/* An empty evo database of version 0 (as a crash during the first open
 * would leave it) is migrated on open. */
static void test_migrates_empty_file(void **state)
{
    fixture *fx = *state;
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(fx->db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA application_id = 1163284292", NULL, NULL, NULL),
                     SQLITE_OK); /* 0x45564f44, "EVOD" */
    sqlite3_close(raw);
    evo_db *db = open_db(fx->db);
    assert_int_equal(evo_db_schema_version(db), EVO_DB_SCHEMA_VERSION);
    evo_error err = {0};
    assert_int_equal(evo_db_check(db, &err), EVO_OK);
    evo_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_current_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_show_idempotent_versions_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_add_leaves_db_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_and_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrates_empty_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
