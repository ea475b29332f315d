/*
 * Tensor files for the CLI: serialized onnx.TensorProto (.pb, the format of
 * the ONNX test data sets) and NumPy .npy arrays.
 *
 * Reading is as strict as the model importer: every dim is checked against
 * evo's limits, the byte size is computed with overflow checks and compared
 * with the bytes the file actually holds before anything is allocated, and
 * every error is one sentence naming the file. Only element types evo
 * supports (evo_dtype_is_supported) are returned; others are
 * EVO_ERR_UNSUPPORTED, so a caller can tell "evo cannot do this" from "this
 * file is broken".
 *
 * Ownership: a cli_tensor owns its name and data (malloc); release it with
 * cli_tensor_free. On failure the output is left empty and nothing leaks.
 */
#ifndef EVO_CLI_TENSOR_IO_H
#define EVO_CLI_TENSOR_IO_H

#include <stddef.h>

#include "evo/core.h"

/* Bound on a tensor file's size: the same 4 GiB the importer allows a model. */
#define CLI_TENSOR_FILE_MAX ((uint64_t)4 << 30)

typedef struct cli_tensor {
    char *name;    /* never NULL after a successful read ("" if none) */
    evo_tensor t;  /* t.data owned; NULL only for 0-byte tensors */
    size_t nbytes; /* dense size of t.data */
} cli_tensor;

/* Read a tensor file, choosing the format by content: the .npy magic
 * "\x93NUMPY", else a serialized onnx.TensorProto. */
evo_status cli_tensor_read(const char *path, cli_tensor *out, evo_error *err);

/* The same from memory; `name` is used in messages (the file's path). */
evo_status cli_tensor_parse_pb(const void *buf, size_t len, const char *name, cli_tensor *out,
                               evo_error *err);
evo_status cli_tensor_parse_npy(const void *buf, size_t len, const char *name, cli_tensor *out,
                                evo_error *err);

/* Write `t` as an onnx.TensorProto with raw_data (little-endian) and the
 * given tensor name (may be NULL). */
evo_status cli_tensor_write_pb(const char *path, const char *name, const evo_tensor *t,
                               evo_error *err);

/* Release name and data and reset to empty. NULL is fine. */
void cli_tensor_free(cli_tensor *t);

/* Read a whole file into a malloc'd buffer (at most max_bytes), for the
 * readers above and for model loading. EVO_ERR_IO / EVO_ERR_LIMIT name the
 * file. A 0-byte file gives *buf == NULL and *len == 0. */
evo_status cli_read_file(const char *path, uint64_t max_bytes, void **buf, size_t *len,
                         evo_error *err);

#endif /* EVO_CLI_TENSOR_IO_H */
