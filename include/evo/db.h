/*
 * evo model database, profiler and latency predictor (hosted code).
 *
 * The database is one SQLite file (created on first use, WAL mode, schema
 * versioned with migrations; docs/modeldb.md has the schema) that holds:
 * imported models and their per-op cost facts, compiled artifacts
 * (content-addressed blobs), device classes with their calibration, measured
 * per-op latencies per device class, and placement plans. Every write is one
 * transaction: it happens completely or not at all, also when the process is
 * killed half-way. Several processes may read while one writes.
 *
 * Typical use:
 *     evo_db *db;
 *     if (evo_db_open("models.db", &db, &err) != EVO_OK) ...   // err names the file
 *     evo_db_model m;
 *     bool existed;
 *     evo_db_model_add(db, "mobilenet.onnx", NULL, &opt, &m, &existed, &err);
 *     ...
 *     evo_db_model_free(&m);
 *     evo_db_close(db);
 *
 * Ownership: every struct filled by an evo_db_* function owns its strings and
 * arrays; release it with the matching *_free function (safe on a zeroed or
 * already freed struct, and after a failed call). Pointers passed in are
 * borrowed for the call only.
 *
 * Errors: EVO_ERR_IO (cannot open or write the file), EVO_ERR_PARSE (the file
 * is not an SQLite database, is corrupt, or belongs to another application),
 * EVO_ERR_UNSUPPORTED (made by a newer evo), EVO_ERR_NOT_FOUND (no such
 * model, class, profile, artifact or plan), EVO_ERR_INVALID_ARG (bad
 * argument), EVO_ERR_INTERNAL (an unexpected SQLite failure, message
 * included); plus the importer's errors for `model add`. One evo_db handle
 * must be used by one thread at a time.
 */
#ifndef EVO_DB_H
#define EVO_DB_H

#include "evo/core.h"
#include "evo/modeldb.h"
#include "evo/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- database */

/* The schema version this build writes; older files are migrated on open. */
#define EVO_DB_SCHEMA_VERSION 1

typedef struct evo_db evo_db;

/* Open (creating if missing) the database file at path and migrate it to
 * EVO_DB_SCHEMA_VERSION. On failure *out is NULL. */
evo_status evo_db_open(const char *path, evo_db **out, evo_error *err);
/* Close; NULL is fine. */
void evo_db_close(evo_db *db);
/* SQLite's integrity and foreign-key checks; EVO_ERR_PARSE with the first
 * problem named if either finds one. */
evo_status evo_db_check(evo_db *db, evo_error *err);
/* The schema version stored in the file (after migration). */
int evo_db_schema_version(evo_db *db);

/* SHA-256 of a file as 64 lower-case hex digits. */
evo_status evo_sha256_file(const char *path, char hex[65], evo_error *err);

/* The names of all device classes, sorted (*names NULL when there are none).
 * Free with evo_db_names_free. */
evo_status evo_db_device_classes(evo_db *db, char ***names, size_t *n, evo_error *err);
void evo_db_names_free(char **names, size_t n);

/* ---------------------------------------------------------------- models */

typedef struct evo_db_model {
    int64_t id;
    char *name;
    int64_t version;      /* 1, 2, ... per name */
    char sha256[65];      /* of the ONNX file, lower-case hex */
    char *source_path;    /* where it was added from */
    char *import_options; /* JSON: {"dims": {"batch": 1}} */
    char *inputs;         /* JSON: [{"name","dtype","shape"}] */
    char *outputs;        /* JSON, same form */
    int64_t n_ops;        /* executed nodes (folded ones excluded) */
    uint64_t flops;       /* sum over ops; multiply-add = 2 */
    uint64_t param_bytes; /* sum of constant inputs over ops */
    char *created_at;     /* UTC, "YYYY-MM-DD HH:MM:SS" */
} evo_db_model;

void evo_db_model_free(evo_db_model *m);
void evo_db_model_list_free(evo_db_model *list, size_t n);

/* Import the ONNX file (opt: --dim bindings and limits; may be NULL) and
 * store it with its per-op facts under name (NULL: the file name without
 * .onnx, or the directory name for ".../NAME/model.onnx"). Adding the same
 * file with the same options under the same name again changes nothing and
 * sets *existed; a different file (or options) under an existing name is
 * stored as the next version. out and existed may be NULL. */
evo_status evo_db_model_add(evo_db *db, const char *onnx_path, const char *name,
                            const evo_import_options *opt, evo_db_model *out, bool *existed,
                            evo_error *err);

/* The model with this name and version (0 = the latest version). */
evo_status evo_db_model_get(evo_db *db, const char *name, int64_t version, evo_db_model *out,
                            evo_error *err);
evo_status evo_db_model_get_id(evo_db *db, int64_t id, evo_db_model *out, evo_error *err);

/* Every version of every model, ordered by name then version. *list is NULL
 * when there are none. */
evo_status evo_db_model_list(evo_db *db, evo_db_model **list, size_t *n, evo_error *err);

/* Remove one version (version > 0) or all versions (0) of a model, with
 * everything that refers to them (ops, profiles, artifacts, plans).
 * EVO_ERR_NOT_FOUND if nothing matched. n_removed may be NULL. */
evo_status evo_db_model_remove(evo_db *db, const char *name, int64_t version, int64_t *n_removed,
                               evo_error *err);

/* ---------------------------------------------------------------- per-op facts */

/* What bounds an op's time, for the roofline. */
typedef enum evo_op_kind {
    EVO_KIND_CONV = 0,    /* dense Conv/ConvTranspose with a spatial kernel */
    EVO_KIND_CONV1X1,     /* dense pointwise Conv */
    EVO_KIND_DWCONV,      /* depthwise Conv (one input channel per group) */
    EVO_KIND_GEMM,        /* Gemm, MatMul */
    EVO_KIND_ELEMENTWISE, /* activations, arithmetic, normalization */
    EVO_KIND_POOL,        /* windowed pooling: MaxPool, AveragePool, LpPool */
    EVO_KIND_REDUCE,      /* global pooling, reductions, Softmax, ArgMax */
    EVO_KIND_DATA,        /* data movement: reshape, concat, slice, pad ... */
    EVO_KIND_COUNT_
} evo_op_kind;

/* "conv", "conv1x1", ...; "?" for an invalid kind. */
const char *evo_op_kind_name(evo_op_kind kind);

typedef struct evo_db_op {
    int32_t idx; /* position in execution order */
    char *name;
    char *op; /* ONNX op_type */
    evo_op_kind kind;
    char *in_shapes; /* JSON: [[1,3,224,224],[32,3,3,3],null] */
    char *out_shapes;
    uint64_t flops, in_bytes, out_bytes, param_bytes;
} evo_db_op;

void evo_db_ops_free(evo_db_op *ops, size_t n);

/* The stored facts of a model's ops, in execution order. */
evo_status evo_db_model_ops(evo_db *db, int64_t model_id, evo_db_op **ops, size_t *n,
                            evo_error *err);

/* The facts of program node k (0 <= k < p->n_nodes), computed from the
 * program's tensors (the same figures `model add` stores). Strings are
 * owned by *out. */
evo_status evo_program_op_facts(const evo_program *p, int32_t k, evo_db_op *out, evo_error *err);

/* ---------------------------------------------------------------- artifacts and plans */

/* Store a blob (e.g. a compiled .evm of a whole model or a stage) under its
 * SHA-256; kind is a short label ("evm"), stage may be NULL. Storing the
 * same bytes again is a no-op. digest receives the hex digest. */
evo_status evo_db_artifact_put(evo_db *db, const char *kind, int64_t model_id, const char *stage,
                               const void *bytes, size_t len, char digest[65], evo_error *err);
/* The blob with this digest (*bytes malloc'd, caller frees). */
evo_status evo_db_artifact_get(evo_db *db, const char *digest, void **bytes, size_t *len,
                               evo_error *err);

/* A placement plan of a model as JSON text (checked to be valid JSON),
 * replacing a plan of the same name. */
evo_status evo_db_plan_put(evo_db *db, int64_t model_id, const char *name, const char *json,
                           evo_error *err);
/* *json malloc'd, caller frees. */
evo_status evo_db_plan_get(evo_db *db, int64_t model_id, const char *name, char **json,
                           evo_error *err);

/* ---------------------------------------------------------------- calibration */

/* Sustained throughput of a device, measured with evo's own kernels. */
typedef struct evo_calibration {
    double dense_gflops;  /* 3x3 and 1x1 Conv (GEMM-bound) */
    double dw_gflops;     /* depthwise 3x3 Conv */
    double elem_gflops;   /* elementwise Add/Relu, in flops (elements) per ns */
    double mem_gbps;      /* copy beyond the cache, bytes read + written per ns */
    double cache_gbps;    /* copy within the cache */
    uint64_t cache_bytes; /* per-core cache size (L2) */
    double seconds;       /* wall time the calibration took */
} evo_calibration;

/* Run the micro-benchmark (about a second) on the calling thread. Under a
 * CFS CPU quota of less than one core (evo_cpu_quota) every rate is scaled
 * by the quota: the short timed runs fit inside one CFS period and would
 * measure the unthrottled core. */
evo_status evo_calibrate(evo_calibration *out, evo_error *err);

/* The share of one CPU a CFS quota leaves this process (0.2: a fifth of a
 * core; 2.0: two cores), the tightest of its cgroup and its ancestors in
 * the cgroup v2 hierarchy (cpu.max) and the v1 cpu hierarchy
 * (cpu.cfs_quota_us / cpu.cfs_period_us); 0 when no quota applies or it
 * cannot be read. */
double evo_cpu_quota(void);
/* The same with every file read under directory root instead of "/" (root
 * holds proc/self/cgroup, proc/self/mountinfo and the mounted hierarchies;
 * for tests). */
double evo_cpu_quota_at(const char *root);

/* The default device-class name: the CPU's "model name" from /proc/cpuinfo,
 * lower-cased, runs of other characters turned into '-', or "local". */
void evo_device_class_default(char *buf, size_t cap);

/* Store a calibration for a device class (created if missing). */
evo_status evo_db_calibration_put(evo_db *db, const char *device_class, const evo_calibration *cal,
                                  evo_error *err);
/* The latest calibration of a device class; EVO_ERR_NOT_FOUND if none. */
evo_status evo_db_calibration_get(evo_db *db, const char *device_class, evo_calibration *cal,
                                  evo_error *err);

/* ---------------------------------------------------------------- profiling */

typedef struct evo_profile_options {
    int32_t warmup;      /* untimed runs first (0: default 3; -1: none) */
    int32_t repeats;     /* timed runs (default 20 when 0) */
    int32_t first, last; /* a stage: nodes [first, last); 0, 0 = all */
} evo_profile_options;

typedef struct evo_profile {
    int32_t first, n_ops; /* the nodes [first, first + n_ops) */
    double *op_median_us; /* n_ops entries */
    double *op_min_us;
    double op_sum_us;     /* sum of the medians */
    double e2e_median_us; /* the nodes run together, median */
    double e2e_min_us;
    int32_t warmup, repeats;
} evo_profile;

void evo_profile_free(evo_profile *pr);

/* Time an initialized executor (inputs already written) op by op with
 * evo_exec_run_node, and end to end, interleaving the two so both see the
 * same machine load. Nodes before the stage run untimed to make its inputs. */
evo_status evo_profile_exec(evo_exec *x, const evo_profile_options *opt, evo_profile *out,
                            evo_error *err);

/* Store a profile of a model (stage NULL = whole model) under a device class
 * (created if missing), replacing an earlier one of the same key. The
 * profile must match the model's ops. */
evo_status evo_db_profile_put(evo_db *db, int64_t model_id, const char *device_class,
                              const char *stage, const evo_profile *pr, evo_error *err);
evo_status evo_db_profile_get(evo_db *db, int64_t model_id, const char *device_class,
                              const char *stage, evo_profile *out, evo_error *err);

/* ---------------------------------------------------------------- prediction */

/* Per-kind roofline with a fitted scale and per-op overhead:
 *     t = alpha[kind] * max(flops / peak(kind), bytes / bandwidth(bytes)) + beta[kind]
 * where peak and bandwidth come from the device class's calibration (the
 * cache bandwidth when the op's bytes fit the cache, else the memory
 * bandwidth). alpha and beta are fitted on the whole-model profiles in the
 * database, minimizing relative error (docs/modeldb.md). */
/* Per op kind (a strided 1x1 Conv counts as a Conv: it runs that kernel):
 *     t = alpha * max(compute, cached) + delta * cached + gamma * streamed + beta_us
 * where compute counts the FLOPs the kernels execute (micro-kernel tiles
 * included) at the calibrated peak, cached the bytes that stay in the cache
 * at cache bandwidth, streamed the others at memory bandwidth
 * (docs/modeldb.md). */
typedef struct evo_predictor {
    double alpha[EVO_KIND_COUNT_];
    double beta_us[EVO_KIND_COUNT_];
    int32_t n_samples[EVO_KIND_COUNT_]; /* measured ops the fit used */
    int32_t n_profiles;
    double gamma[EVO_KIND_COUNT_]; /* per unit of streamed time */
    double delta[EVO_KIND_COUNT_]; /* per unit of cached time, on top of the roofline */
} evo_predictor;

/* Fit on every whole-model profile in the database except those of model
 * exclude_model_id (0 = none). Kinds without data keep alpha 1, delta 0,
 * gamma 1 and the overhead of all kinds pooled (or 0 with no data at all). */
evo_status evo_predictor_fit(evo_db *db, int64_t exclude_model_id, evo_predictor *out,
                             evo_error *err);
/* The same with an explicit ridge strength (evo_predictor_fit uses 1): how
 * strongly each kind's alpha, delta, gamma are pulled toward 1, 0, 1,
 * relative to the weight of its data; 0 is plain non-negative least
 * squares. */
evo_status evo_predictor_fit_ridge(evo_db *db, int64_t exclude_model_id, double ridge,
                                   evo_predictor *out, evo_error *err);

/* The roofline time of an op on a calibrated device, in microseconds:
 * max(compute, memory) as above. */
double evo_roofline_us(const evo_calibration *cal, const evo_db_op *op);
/* The predicted time of an op, in microseconds. */
double evo_predict_op_us(const evo_predictor *p, const evo_calibration *cal, const evo_db_op *op);

#ifdef __cplusplus
}
#endif
#endif /* EVO_DB_H */
