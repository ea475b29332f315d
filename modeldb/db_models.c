/*
 * Models in the database: adding an ONNX file (hash, import, per-op facts,
 * versioning), looking models up, listing and removing them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db_internal.h"

/* Longest model name accepted; names are labels, not paths. */
#define DBM_NAME_MAX 200

/* ---------------------------------------------------------------- freeing */

void evo_db_model_free(evo_db_model *m)
{
    if (m == NULL)
        return;
    free(m->name);
    free(m->source_path);
    free(m->import_options);
    free(m->inputs);
    free(m->outputs);
    free(m->created_at);
    memset(m, 0, sizeof *m);
}

void evo_db_model_list_free(evo_db_model *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        evo_db_model_free(&list[i]);
    free(list);
}

void db_op_clear(evo_db_op *op)
{
    free(op->name);
    free(op->op);
    free(op->in_shapes);
    free(op->out_shapes);
    memset(op, 0, sizeof *op);
}

void evo_db_ops_free(evo_db_op *ops, size_t n)
{
    for (size_t i = 0; ops && i < n; i++)
        db_op_clear(&ops[i]);
    free(ops);
}

/* ---------------------------------------------------------------- op facts */

static cJSON *dbm_shape_json(const evo_shape *s)
{
    cJSON *a = cJSON_CreateArray();
    for (int32_t d = 0; a && d < s->rank && d < EVO_MAX_RANK; d++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(s->dims[d]));
    return a;
}

static char *dbm_json_text(cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (text == NULL)
        return NULL;
    /* cJSON's allocator is malloc unless someone installed hooks: copy so
     * callers can always free() it. */
    char *copy = db_strdup(text);
    cJSON_free(text);
    return copy;
}

static char *dbm_shapes_text(const evo_program *p, const int32_t *idx, int32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && i < n; i++) {
        if (idx[i] < 0 || idx[i] >= p->n_tensors)
            cJSON_AddItemToArray(a, cJSON_CreateNull());
        else
            cJSON_AddItemToArray(a, dbm_shape_json(&p->tensors[idx[i]].shape));
    }
    return dbm_json_text(a);
}

static bool dbm_is(const char *op, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(op, *names) == 0)
            return true;
    return false;
}

/* The kind decides which calibrated peak bounds the op. Depthwise is told by
 * the weight: one input channel per group while the input has several. */
static evo_op_kind dbm_kind(const evo_program *p, const evo_prog_node *n)
{
    static const char *const gemm[] = {"Gemm", "MatMul", NULL};
    static const char *const pool[] = {"MaxPool", "AveragePool", "LpPool", NULL};
    static const char *const reduce[] = {"GlobalAveragePool",
                                         "GlobalMaxPool",
                                         "ReduceMean",
                                         "ReduceSum",
                                         "ReduceMax",
                                         "ReduceMin",
                                         "ReduceProd",
                                         "ReduceL1",
                                         "ReduceL2",
                                         "ReduceSumSquare",
                                         "ReduceLogSumExp",
                                         "Softmax",
                                         "LogSoftmax",
                                         "ArgMax",
                                         "ArgMin",
                                         "LRN",
                                         "TopK",
                                         NULL};
    static const char *const data[] = {"Reshape",      "Flatten",   "Squeeze",
                                       "Unsqueeze",    "Transpose", "Concat",
                                       "Split",        "Slice",     "Gather",
                                       "Pad",          "Expand",    "Tile",
                                       "Identity",     "Shape",     "Size",
                                       "Resize",       "Upsample",  "DepthToSpace",
                                       "SpaceToDepth", "Cast",      "ConstantOfShape",
                                       "Dropout",      NULL};
    const char *op = n->op ? n->op->name : "";
    if (strcmp(op, "Conv") == 0 || strcmp(op, "ConvTranspose") == 0) {
        if (n->n_in >= 2 && n->in[0] >= 0 && n->in[1] >= 0 && n->in[0] < p->n_tensors &&
            n->in[1] < p->n_tensors) {
            const evo_shape *x = &p->tensors[n->in[0]].shape;
            const evo_shape *w = &p->tensors[n->in[1]].shape;
            if (strcmp(op, "Conv") == 0 && x->rank >= 3 && w->rank >= 3 && w->dims[1] == 1 &&
                x->dims[1] > 1)
                return EVO_KIND_DWCONV;
            bool pointwise = w->rank >= 3;
            for (int32_t d = 2; d < w->rank && d < EVO_MAX_RANK; d++)
                pointwise = pointwise && w->dims[d] == 1;
            if (pointwise && strcmp(op, "Conv") == 0)
                return EVO_KIND_CONV1X1;
        }
        return EVO_KIND_CONV;
    }
    if (dbm_is(op, gemm))
        return EVO_KIND_GEMM;
    if (dbm_is(op, pool))
        return EVO_KIND_POOL;
    if (dbm_is(op, reduce))
        return EVO_KIND_REDUCE;
    if (dbm_is(op, data))
        return EVO_KIND_DATA;
    return EVO_KIND_ELEMENTWISE;
}

evo_status evo_program_op_facts(const evo_program *p, int32_t k, evo_db_op *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (p == NULL || k < 0 || k >= p->n_nodes)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "op index %d is out of range", (int)k);
    const evo_prog_node *n = &p->nodes[k];
    int32_t nt = n->n_in + n->n_out;
    if (n->op == NULL || n->n_in < 0 || n->n_out < 0 || nt > 64)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "node %d has no op or too many tensors",
                             (int)k);
    /* Views for the op's cost function: shapes, and data only for
     * constants (cost may read them, e.g. a Reshape target). */
    evo_tensor views[64];
    evo_tensor *ptrs[64];
    uint64_t out_elems = 0;
    for (int32_t i = 0; i < nt; i++) {
        int32_t t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (t < 0 || t >= p->n_tensors) {
            ptrs[i] = NULL;
            continue;
        }
        const evo_prog_tensor *pt = &p->tensors[t];
        views[i].dtype = pt->dtype;
        views[i].shape = pt->shape;
        views[i].data = (pt->flags & EVO_PT_CONST) ? (void *)pt->const_data : NULL;
        ptrs[i] = &views[i];
        if (i >= n->n_in) {
            out->out_bytes += pt->nbytes;
            int64_t e = evo_shape_numel(&pt->shape);
            out_elems += e > 0 ? (uint64_t)e : 0;
        } else if (pt->flags & EVO_PT_CONST) {
            out->param_bytes += pt->nbytes;
        } else {
            out->in_bytes += pt->nbytes;
        }
    }
    if (n->op->cost != NULL) {
        evo_kctx c = {.params = n->params,
                      .in = ptrs,
                      .n_in = n->n_in,
                      .out = ptrs + n->n_in,
                      .n_out = n->n_out,
                      .scratch = NULL,
                      .scratch_bytes = 0,
                      .err = NULL};
        evo_op_cost oc = {0, 0, 0, 0};
        n->op->cost(&c, &oc);
        out->flops = oc.flops;
    } else {
        out->flops = out_elems;
    }
    out->idx = k;
    out->kind = dbm_kind(p, n);
    out->name = db_strdup(n->name ? n->name : "");
    out->op = db_strdup(n->op->name);
    out->in_shapes = dbm_shapes_text(p, n->in, n->n_in);
    out->out_shapes = dbm_shapes_text(p, n->out, n->n_out);
    if (!out->name || !out->op || !out->in_shapes || !out->out_shapes) {
        db_op_clear(out);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory describing node %d", (int)k);
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- reading rows */

#define DBM_MODEL_COLUMNS                                                                          \
    "id, name, version, sha256, source_path, import_options, inputs, outputs, n_ops, flops, "      \
    "param_bytes, created_at"

static evo_status dbm_read_model(sqlite3_stmt *st, evo_db_model *m, evo_error *err)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->name = db_column_strdup(st, 1);
    m->version = sqlite3_column_int64(st, 2);
    const unsigned char *sha = sqlite3_column_text(st, 3);
    snprintf(m->sha256, sizeof m->sha256, "%s", sha ? (const char *)sha : "");
    m->source_path = db_column_strdup(st, 4);
    m->import_options = db_column_strdup(st, 5);
    m->inputs = db_column_strdup(st, 6);
    m->outputs = db_column_strdup(st, 7);
    m->n_ops = sqlite3_column_int64(st, 8);
    m->flops = (uint64_t)sqlite3_column_int64(st, 9);
    m->param_bytes = (uint64_t)sqlite3_column_int64(st, 10);
    m->created_at = db_column_strdup(st, 11);
    if (!m->name || !m->source_path || !m->import_options || !m->inputs || !m->outputs ||
        !m->created_at) {
        evo_db_model_free(m);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading a model");
    }
    return EVO_OK;
}

/* Run a statement expected to give at most one model row. */
static evo_status dbm_one_model(evo_db *db, sqlite3_stmt *st, const char *what, evo_db_model *out,
                                evo_error *err)
{
    int rc = sqlite3_step(st);
    evo_status rv;
    if (rc == SQLITE_ROW)
        rv = dbm_read_model(st, out, err);
    else if (rc == SQLITE_DONE)
        rv = evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no model %s", db->path, what);
    else
        rv = db_sql_error(db, rc, "reading a model", err);
    sqlite3_finalize(st);
    return rv;
}

evo_status evo_db_model_get(evo_db *db, const char *name, int64_t version, evo_db_model *out,
                            evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (db == NULL || name == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_get: no database or name");
    sqlite3_stmt *st;
    const char *sql = version > 0 ? "SELECT " DBM_MODEL_COLUMNS
                                    " FROM models WHERE name = ?1 AND version = ?2"
                                  : "SELECT " DBM_MODEL_COLUMNS
                                    " FROM models WHERE name = ?1 ORDER BY version DESC LIMIT 1";
    evo_status rv = db_prepare(db, sql, &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, name);
    if (version > 0)
        sqlite3_bind_int64(st, 2, version);
    char what[DBM_NAME_MAX + 64];
    if (version > 0)
        snprintf(what, sizeof what, "'%s' version %lld", name, (long long)version);
    else
        snprintf(what, sizeof what, "named '%s'", name);
    return dbm_one_model(db, st, what, out, err);
}

evo_status evo_db_model_get_id(evo_db *db, int64_t id, evo_db_model *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_get_id: no database");
    sqlite3_stmt *st;
    evo_status rv =
        db_prepare(db, "SELECT " DBM_MODEL_COLUMNS " FROM models WHERE id = ?", &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, id);
    char what[48];
    snprintf(what, sizeof what, "with id %lld", (long long)id);
    return dbm_one_model(db, st, what, out, err);
}

evo_status evo_db_model_list(evo_db *db, evo_db_model **list, size_t *n, evo_error *err)
{
    *list = NULL;
    *n = 0;
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_list: no database");
    sqlite3_stmt *st;
    evo_status rv =
        db_prepare(db, "SELECT " DBM_MODEL_COLUMNS " FROM models ORDER BY name, version", &st, err);
    if (rv != EVO_OK)
        return rv;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            evo_db_model *grown = realloc(*list, ncap * sizeof *grown);
            if (grown == NULL) {
                rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory listing models");
                break;
            }
            *list = grown;
            cap = ncap;
        }
        if ((rv = dbm_read_model(st, &(*list)[*n], err)) != EVO_OK)
            break;
        (*n)++;
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "listing models", err);
    sqlite3_finalize(st);
    if (rv != EVO_OK) {
        evo_db_model_list_free(*list, *n);
        *list = NULL;
        *n = 0;
    }
    return rv;
}

evo_status evo_db_model_ops(evo_db *db, int64_t model_id, evo_db_op **ops, size_t *n,
                            evo_error *err)
{
    *ops = NULL;
    *n = 0;
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_ops: no database");
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db,
                               "SELECT idx, name, op, kind, in_shapes, out_shapes, flops, "
                               "in_bytes, out_bytes, param_bytes FROM model_ops "
                               "WHERE model_id = ? ORDER BY idx",
                               &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, model_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            evo_db_op *grown = realloc(*ops, ncap * sizeof *grown);
            if (grown == NULL) {
                rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading ops");
                break;
            }
            *ops = grown;
            cap = ncap;
        }
        evo_db_op *o = &(*ops)[*n];
        memset(o, 0, sizeof *o);
        (*n)++;
        o->idx = sqlite3_column_int(st, 0);
        o->name = db_column_strdup(st, 1);
        o->op = db_column_strdup(st, 2);
        o->kind = db_kind_from_name((const char *)sqlite3_column_text(st, 3));
        o->in_shapes = db_column_strdup(st, 4);
        o->out_shapes = db_column_strdup(st, 5);
        o->flops = (uint64_t)sqlite3_column_int64(st, 6);
        o->in_bytes = (uint64_t)sqlite3_column_int64(st, 7);
        o->out_bytes = (uint64_t)sqlite3_column_int64(st, 8);
        o->param_bytes = (uint64_t)sqlite3_column_int64(st, 9);
        if (!o->name || !o->op || !o->in_shapes || !o->out_shapes) {
            rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory reading ops");
            break;
        }
        if (o->kind == EVO_KIND_COUNT_) {
            rv = evo_error_set(err, EVO_ERR_PARSE, "%s: op %d of model %lld has an unknown kind",
                               db->path, (int)o->idx, (long long)model_id);
            break;
        }
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "reading ops", err);
    sqlite3_finalize(st);
    if (rv != EVO_OK) {
        evo_db_ops_free(*ops, *n);
        *ops = NULL;
        *n = 0;
    }
    return rv;
}

/* ---------------------------------------------------------------- adding */

/* "dir/NAME.onnx" -> NAME; "dir/NAME/model.onnx" -> NAME (the model zoo's
 * layout, where every file is called model.onnx). */
static void dbm_default_name(const char *path, char *buf, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".onnx") == 0)
        n -= 5;
    if (strncmp(base, "model", n) == 0 && n == 5 && base != path) {
        const char *end = base - 1; /* the '/' */
        while (end > path && end[-1] == '/')
            end--;
        const char *start = end;
        while (start > path && start[-1] != '/')
            start--;
        if (end > start && !(end - start == 1 && start[0] == '.')) {
            base = start;
            n = (size_t)(end - start);
        }
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, base, n);
    buf[n] = '\0';
}

static evo_status dbm_check_name(const char *name, evo_error *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > DBM_NAME_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a model name must have 1 to %d characters",
                             DBM_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "model name '%s' contains a control character", name);
    return EVO_OK;
}

static evo_status dbm_read_file(const char *path, uint64_t limit, unsigned char **buf, size_t *len,
                                evo_error *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    evo_status rv = EVO_OK;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot determine the file size", path);
    } else if ((uint64_t)size > limit || (uint64_t)size > SIZE_MAX - 1) {
        rv = evo_error_set(err, EVO_ERR_LIMIT, "%s: file of %ld bytes exceeds the limit of %llu",
                           path, size, (unsigned long long)limit);
    } else if ((*buf = malloc((size_t)size + 1)) == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory reading %ld bytes", path, size);
    } else if (fread(*buf, 1, (size_t)size, f) != (size_t)size) {
        rv = evo_error_set(err, EVO_ERR_IO, "%s: read error", path);
    } else {
        *len = (size_t)size;
    }
    fclose(f);
    if (rv != EVO_OK) {
        free(*buf);
        *buf = NULL;
    }
    return rv;
}

static int dbm_cmp_binding(const void *pa, const void *pb)
{
    const evo_dim_binding *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

/* The options that change what is imported, in one canonical JSON text, so
 * equal options compare equal as strings. */
static char *dbm_options_json(const evo_import_options *opt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *dims = cJSON_AddObjectToObject(o, "dims");
    size_t n = opt ? opt->n_dims : 0;
    evo_dim_binding *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (n && sorted == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    if (n)
        memcpy(sorted, opt->dims, n * sizeof *sorted);
    if (n)
        qsort(sorted, n, sizeof *sorted, dbm_cmp_binding);
    for (size_t i = 0; dims && i < n; i++)
        if (i == 0 || strcmp(sorted[i].name, sorted[i - 1].name) != 0)
            cJSON_AddNumberToObject(dims, sorted[i].name, (double)sorted[i].value);
    free(sorted);
    if (opt && opt->no_fold)
        cJSON_AddTrueToObject(o, "no_fold");
    return dbm_json_text(o);
}

static char *dbm_signature_json(const evo_program *p, bool outputs)
{
    cJSON *a = cJSON_CreateArray();
    int32_t n = outputs ? p->n_outputs : p->n_inputs;
    for (int32_t i = 0; a && i < n; i++) {
        int32_t t = outputs ? p->outputs[i] : p->inputs[i];
        const evo_prog_tensor *pt = &p->tensors[t];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pt->name ? pt->name : "");
        cJSON_AddStringToObject(o, "dtype", evo_dtype_name(pt->dtype));
        cJSON_AddItemToObject(o, "shape", dbm_shape_json(&pt->shape));
        cJSON_AddItemToArray(a, o);
    }
    return dbm_json_text(a);
}

/* What an import yields for the database. */
typedef struct dbm_import {
    char *inputs, *outputs;
    evo_db_op *ops;
    int32_t n_ops;
    uint64_t flops, param_bytes;
} dbm_import;

static void dbm_import_free(dbm_import *im)
{
    free(im->inputs);
    free(im->outputs);
    evo_db_ops_free(im->ops, (size_t)(im->n_ops > 0 ? im->n_ops : 0));
    memset(im, 0, sizeof *im);
}

/* Import from the bytes that were hashed (not the file again), so the
 * stored digest always describes what was imported. */
static evo_status dbm_import_buffer(const char *path, const unsigned char *buf, size_t len,
                                    const evo_import_options *opt, dbm_import *im, evo_error *err)
{
    memset(im, 0, sizeof *im);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
    evo_import_options zero = {0};
    if (opt == NULL)
        opt = &zero;
    evo_graph *g = NULL;
    evo_program *p = NULL;
    evo_status rv = evo_onnx_load_buffer(buf, len, dir, path, opt, &g, err);
    if (rv == EVO_OK)
        rv = evo_graph_bind_dims(g, opt->dims, opt->n_dims, err);
    if (rv == EVO_OK)
        rv = evo_graph_infer(g, opt, NULL, err);
    /* Record the ops evo executes: the optimized graph, as `evo run`,
     * `evo profile` and the partitioner see it. */
    if (rv == EVO_OK)
        rv = evo_graph_optimize(g, NULL, NULL, err);
    if (rv == EVO_OK)
        rv = evo_program_build(g, NULL, &p, err);
    if (rv != EVO_OK)
        goto done;
    im->inputs = dbm_signature_json(p, false);
    im->outputs = dbm_signature_json(p, true);
    im->ops = calloc((size_t)(p->n_nodes > 0 ? p->n_nodes : 1), sizeof *im->ops);
    if (!im->inputs || !im->outputs || !im->ops) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int32_t k = 0; k < p->n_nodes; k++) {
        if ((rv = evo_program_op_facts(p, k, &im->ops[k], err)) != EVO_OK) {
            evo_error_prefix(err, "%s", path);
            goto done;
        }
        im->n_ops = k + 1;
        im->flops += im->ops[k].flops;
        im->param_bytes += im->ops[k].param_bytes;
    }
done:
    evo_program_free(p);
    evo_graph_free(g);
    if (rv != EVO_OK)
        dbm_import_free(im);
    return rv;
}

/* The model with this name, digest and options, if present. */
static evo_status dbm_find_same(evo_db *db, const char *name, const char *sha, const char *opts,
                                evo_db_model *out, bool *found, evo_error *err)
{
    *found = false;
    sqlite3_stmt *st;
    evo_status rv = db_prepare(db,
                               "SELECT " DBM_MODEL_COLUMNS " FROM models WHERE name = ? AND "
                               "sha256 = ? AND import_options = ?",
                               &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, name);
    db_bind_text(st, 2, sha);
    db_bind_text(st, 3, opts);
    rv = dbm_one_model(db, st, "", out, err);
    if (rv == EVO_OK)
        *found = true;
    if (rv == EVO_ERR_NOT_FOUND) {
        evo_error_clear(err);
        rv = EVO_OK;
    }
    return rv;
}

/* A test hook: EVO_DB_TEST_KILL_AFTER_OPS=N makes the process SIGKILL
 * itself after inserting N op rows of a model, in the middle of the add's
 * transaction, so tests can show the database survives a crash. */
static long dbm_kill_after_ops(void)
{
    const char *s = getenv("EVO_DB_TEST_KILL_AFTER_OPS");
    if (s == NULL || s[0] == '\0')
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v >= 0 ? v : -1;
}

static evo_status dbm_insert(evo_db *db, const char *name, const char *sha, const char *path,
                             const char *opts, const dbm_import *im, int64_t *id, evo_error *err)
{
    sqlite3_stmt *st;
    evo_status rv = db_prepare(
        db,
        "INSERT INTO models(name, version, sha256, source_path, import_options, inputs, outputs, "
        "n_ops, flops, param_bytes) VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM "
        "models WHERE name = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &st, err);
    if (rv != EVO_OK)
        return rv;
    db_bind_text(st, 1, name);
    db_bind_text(st, 2, sha);
    db_bind_text(st, 3, path);
    db_bind_text(st, 4, opts);
    db_bind_text(st, 5, im->inputs);
    db_bind_text(st, 6, im->outputs);
    sqlite3_bind_int64(st, 7, im->n_ops);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)im->flops);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)im->param_bytes);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_sql_error(db, rc, "adding a model", err);
    *id = sqlite3_last_insert_rowid(db->sql);

    if ((rv = db_prepare(db,
                         "INSERT INTO model_ops(model_id, idx, name, op, kind, in_shapes, "
                         "out_shapes, flops, in_bytes, out_bytes, param_bytes) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         &st, err)) != EVO_OK)
        return rv;
    long kill_after = dbm_kill_after_ops();
    for (int32_t k = 0; k < im->n_ops; k++) {
        const evo_db_op *o = &im->ops[k];
        if (kill_after >= 0 && k == kill_after)
            raise(SIGKILL);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int(st, 2, o->idx);
        db_bind_text(st, 3, o->name);
        db_bind_text(st, 4, o->op);
        db_bind_text(st, 5, evo_op_kind_name(o->kind));
        db_bind_text(st, 6, o->in_shapes);
        db_bind_text(st, 7, o->out_shapes);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)o->flops);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)o->in_bytes);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)o->out_bytes);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)o->param_bytes);
        if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
            rv = db_sql_error(db, rc, "adding the model's ops", err);
            break;
        }
    }
    sqlite3_finalize(st);
    return rv;
}

evo_status evo_db_model_add(evo_db *db, const char *onnx_path, const char *name,
                            const evo_import_options *opt, evo_db_model *out, bool *existed,
                            evo_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (existed != NULL)
        *existed = false;
    if (db == NULL || onnx_path == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_add: no database or file");
    char namebuf[DBM_NAME_MAX + 1];
    if (name == NULL) {
        dbm_default_name(onnx_path, namebuf, sizeof namebuf);
        name = namebuf;
    }
    evo_status rv = dbm_check_name(name, err);
    if (rv != EVO_OK)
        return rv;

    uint64_t limit =
        opt && opt->limits.max_file_bytes ? opt->limits.max_file_bytes : (uint64_t)4 << 30;
    unsigned char *buf = NULL;
    size_t len = 0;
    char sha[65];
    char *opts = NULL;
    dbm_import im = {0};
    evo_db_model found = {0};
    bool same = false;
    int64_t id = 0;
    if ((rv = dbm_read_file(onnx_path, limit, &buf, &len, err)) != EVO_OK)
        return rv;
    db_sha256_hex(buf, len, sha);
    if ((opts = dbm_options_json(opt)) == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* Cheap idempotence check before the (slow) import. */
    if ((rv = dbm_find_same(db, name, sha, opts, &found, &same, err)) != EVO_OK || same)
        goto done;
    if ((rv = dbm_import_buffer(onnx_path, buf, len, opt, &im, err)) != EVO_OK)
        goto done;
    if ((rv = db_begin(db, err)) != EVO_OK)
        goto done;
    /* Again under the write lock: another process may have added it. */
    if ((rv = dbm_find_same(db, name, sha, opts, &found, &same, err)) != EVO_OK || same) {
        db_rollback(db);
        goto done;
    }
    if ((rv = dbm_insert(db, name, sha, onnx_path, opts, &im, &id, err)) != EVO_OK) {
        db_rollback(db);
        goto done;
    }
    if ((rv = db_commit(db, err)) != EVO_OK)
        goto done;
    if (out != NULL)
        rv = evo_db_model_get_id(db, id, out, err);
done:
    if (rv == EVO_OK && same) {
        if (existed != NULL)
            *existed = true;
        if (out != NULL)
            *out = found;
        else
            evo_db_model_free(&found);
    }
    dbm_import_free(&im);
    free(opts);
    free(buf);
    return rv;
}

/* ---------------------------------------------------------------- removing */

evo_status evo_db_model_remove(evo_db *db, const char *name, int64_t version, int64_t *n_removed,
                               evo_error *err)
{
    if (n_removed != NULL)
        *n_removed = 0;
    if (db == NULL || name == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_db_model_remove: no database or name");
    evo_status rv = db_begin(db, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_stmt *st;
    const char *sql = version > 0 ? "DELETE FROM models WHERE name = ? AND version = ?"
                                  : "DELETE FROM models WHERE name = ?";
    if ((rv = db_prepare(db, sql, &st, err)) != EVO_OK) {
        db_rollback(db);
        return rv;
    }
    db_bind_text(st, 1, name);
    if (version > 0)
        sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rv = db_sql_error(db, rc, "removing a model", err);
        db_rollback(db);
        return rv;
    }
    int64_t n = sqlite3_changes(db->sql);
    if (n == 0) {
        db_rollback(db);
        if (version > 0)
            return evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no model '%s' version %lld", db->path,
                                 name, (long long)version);
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "%s: no model named '%s'", db->path, name);
    }
    if ((rv = db_commit(db, err)) != EVO_OK)
        return rv;
    if (n_removed != NULL)
        *n_removed = n;
    return EVO_OK;
}
