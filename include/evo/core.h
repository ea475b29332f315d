/*
 * evo core: status codes, error reports, data types, shapes and tensors, logging.
 *
 * This is the one header every part of evo includes. Everything declared here
 * is portable C11 and builds freestanding (no OS, no allocation), except the
 * logging sink, which is a function pointer the host installs.
 *
 * Conventions used across evo:
 *   - Functions return evo_status; EVO_OK (0) is success. Check with
 *       if ((rv = f()) != EVO_OK) return rv;
 *   - Functions that can fail for a reason a user must read take an
 *     `evo_error *err` (may be NULL) and fill it with one sentence that names
 *     the file, node, op or peer at fault.
 *   - Ownership is stated on every function that takes or returns memory.
 */
#ifndef EVO_CORE_H
#define EVO_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum evo_status {
    EVO_OK = 0,
    EVO_ERR_INVALID_ARG, /* a caller passed a bad argument or flag */
    EVO_ERR_NOMEM,       /* an allocation failed, or a buffer is too small */
    EVO_ERR_IO,          /* a file could not be opened, read or written */
    EVO_ERR_PARSE,       /* input bytes are truncated or malformed */
    EVO_ERR_UNSUPPORTED, /* a valid input uses something evo cannot do (yet) */
    EVO_ERR_SHAPE,       /* shapes are inconsistent or cannot be made static */
    EVO_ERR_TYPE,        /* data types are inconsistent */
    EVO_ERR_GRAPH,       /* graph structure: cycle, undefined tensor, duplicate */
    EVO_ERR_LIMIT,       /* a size, count or dimension exceeds a bound */
    EVO_ERR_NOT_FOUND,   /* a named thing does not exist */
    EVO_ERR_MISMATCH,    /* outputs differ from a reference beyond tolerance */
    EVO_ERR_INTERNAL,    /* a bug in evo: please report it */
    EVO_STATUS_COUNT_
} evo_status;

/* A static, never-NULL description of a status code. */
const char *evo_strerror(evo_status status);

/* An error report: a status plus one human sentence. Fixed size, so it can be
 * filled without allocation (also on a microcontroller). */
#define EVO_ERROR_MSG_MAX 320
typedef struct evo_error {
    evo_status code;
    char msg[EVO_ERROR_MSG_MAX];
} evo_error;

/* Fill *err (if not NULL) with code and a printf-style message; returns code
 * so callers can write `return evo_error_set(err, EVO_ERR_PARSE, "...")`.
 * In a freestanding build the format is copied without substitution. */
evo_status evo_error_set(evo_error *err, evo_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message: "<prefix>: <old message>". Keeps err->code. */
void evo_error_prefix(evo_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reset to EVO_OK with an empty message. */
void evo_error_clear(evo_error *err);

/* ---------------------------------------------------------------- dtypes */

/* Element types. The numbers are ONNX's TensorProto.DataType values, so an
 * ONNX file's type can be stored without translation. Kernels support
 * FLOAT32, INT64, INT32, INT8, UINT8, BOOL (and FLOAT16 for transport);
 * the others are known so that files using them get a precise error. */
typedef enum evo_dtype {
    EVO_DT_UNDEFINED = 0,
    EVO_DT_FLOAT32 = 1,
    EVO_DT_UINT8 = 2,
    EVO_DT_INT8 = 3,
    EVO_DT_UINT16 = 4,
    EVO_DT_INT16 = 5,
    EVO_DT_INT32 = 6,
    EVO_DT_INT64 = 7,
    EVO_DT_STRING = 8,
    EVO_DT_BOOL = 9,
    EVO_DT_FLOAT16 = 10,
    EVO_DT_FLOAT64 = 11,
    EVO_DT_UINT32 = 12,
    EVO_DT_UINT64 = 13,
    EVO_DT_COMPLEX64 = 14,
    EVO_DT_COMPLEX128 = 15,
    EVO_DT_BFLOAT16 = 16,
    EVO_DT_COUNT_
} evo_dtype;

/* Bytes per element; 0 for UNDEFINED, STRING, complex, and unknown values. */
size_t evo_dtype_size(evo_dtype dt);
/* Lower-case ONNX-style name ("float32", "int64", ...); "unknown" if invalid. */
const char *evo_dtype_name(evo_dtype dt);
/* True if evo's kernels can hold this type in a tensor. */
bool evo_dtype_is_supported(evo_dtype dt);

/* IEEE half <-> single conversions (round to nearest even). */
uint16_t evo_f32_to_f16(float f);
float evo_f16_to_f32(uint16_t h);

/* ---------------------------------------------------------------- shapes */

#define EVO_MAX_RANK 8
/* Largest dimension evo accepts. Static shapes only; a dimension above this
 * is treated as hostile input. */
#define EVO_MAX_DIM INT32_MAX

typedef struct evo_shape {
    int32_t rank;               /* 0 ..EVO_MAX_RANK; 0 is a scalar */
    int32_t dims[EVO_MAX_RANK]; /* each >= 0 */
} evo_shape;

/* Number of elements, or -1 if the shape is invalid (rank out of range,
 * negative dim) or the count overflows int64. */
int64_t evo_shape_numel(const evo_shape *s);
/* Bytes of a dense tensor of this dtype and shape into *out; EVO_ERR_LIMIT on
 * overflow of size_t, EVO_ERR_TYPE for a dtype without a size. */
evo_status evo_shape_nbytes(const evo_shape *s, evo_dtype dt, size_t *out);
bool evo_shape_equal(const evo_shape *a, const evo_shape *b);
/* Writes "[1,3,224,224]" (truncated to cap, always NUL-terminated). */
void evo_shape_format(const evo_shape *s, char *buf, size_t cap);
/* ONNX multidirectional broadcasting of a and b into *out. */
evo_status evo_shape_broadcast(const evo_shape *a, const evo_shape *b, evo_shape *out);

/* ---------------------------------------------------------------- tensors */

/* A tensor view: type, shape and a pointer to dense row-major data. The view
 * never owns its data; whoever made it (arena, importer, caller) does. */
typedef struct evo_tensor {
    evo_dtype dtype;
    evo_shape shape;
    void *data; /* NULL while only the shape is known */
} evo_tensor;

/* ---------------------------------------------------------------- logging */

typedef enum evo_log_level {
    EVO_LOG_ERROR = 0,
    EVO_LOG_WARN = 1,
    EVO_LOG_INFO = 2,
    EVO_LOG_DEBUG = 3,
} evo_log_level;

/* A sink receives one formatted line without trailing newline. */
typedef void (*evo_log_sink)(evo_log_level level, const char *line, void *user);

/* Install a sink (NULL silences all logging) and the most verbose level that
 * is passed to it. The default sink writes to stderr at EVO_LOG_WARN in a
 * hosted build and drops everything in a freestanding one. These two settings
 * are process-wide: they are configuration, not state that objects share. */
void evo_log_set_sink(evo_log_sink sink, void *user);
void evo_log_set_level(evo_log_level level);
evo_log_level evo_log_get_level(void);

void evo_log(evo_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define EVO_LOGE(...) evo_log(EVO_LOG_ERROR, __VA_ARGS__)
#define EVO_LOGW(...) evo_log(EVO_LOG_WARN, __VA_ARGS__)
#define EVO_LOGI(...) evo_log(EVO_LOG_INFO, __VA_ARGS__)
#define EVO_LOGD(...) evo_log(EVO_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* EVO_CORE_H */
