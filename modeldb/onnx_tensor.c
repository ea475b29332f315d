/*
 * ONNX TensorProto decoding: data types, dims, raw_data, the typed repeated
 * fields, and external data files. Every size is checked against the import
 * limits before memory is allocated, since the file is untrusted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "onnx_internal.h"

/* ---------------------------------------------------------------- data types */

/* Types ONNX added after BFLOAT16; named so the message says what the file uses. */
static const char *tensor_newer_type_name(int64_t code)
{
    switch (code) {
    case 17:
        return "float8e4m3fn";
    case 18:
        return "float8e4m3fnuz";
    case 19:
        return "float8e5m2";
    case 20:
        return "float8e5m2fnuz";
    case 21:
        return "uint4";
    case 22:
        return "int4";
    case 23:
        return "float4e2m1";
    case 24:
        return "float8e8m0";
    case 25:
        return "uint2";
    case 26:
        return "int2";
    default:
        return NULL;
    }
}

evo_status evo_onnx_dtype(const evo_onnx_ctx *c, int64_t code, const char *what, evo_dtype *out)
{
    if (code >= 0 && code < EVO_DT_COUNT_) {
        *out = (evo_dtype)code;
        return EVO_OK;
    }
    const char *newer = tensor_newer_type_name(code);
    if (newer != NULL)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s has data type %s (%" PRId64 "), which evo does not support",
                             c->file, what, newer, code);
    return evo_error_set(c->err, EVO_ERR_PARSE,
                         "%s: %s has data type %" PRId64 ", which is not an ONNX data type",
                         c->file, what, code);
}

/* ---------------------------------------------------------------- byte order */

static bool tensor_host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* raw_data and external data are little-endian by the ONNX spec. */
static void tensor_from_little_endian(unsigned char *p, size_t nbytes, size_t elem)
{
    if (elem <= 1 || tensor_host_is_little_endian())
        return;
    for (size_t i = 0; i + elem <= nbytes; i += elem)
        for (size_t a = 0, b = elem - 1; a < b; a++, b--) {
            unsigned char t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* ---------------------------------------------------------------- typed fields */

/* The typed repeated field ONNX uses for dt: its name and entry count. */
static const char *tensor_typed_field(const Onnx__TensorProto *tp, evo_dtype dt, size_t *count)
{
    switch (dt) {
    case EVO_DT_FLOAT32:
        *count = tp->n_float_data;
        return "float_data";
    case EVO_DT_INT64:
        *count = tp->n_int64_data;
        return "int64_data";
    case EVO_DT_FLOAT64:
        *count = tp->n_double_data;
        return "double_data";
    case EVO_DT_UINT32:
    case EVO_DT_UINT64:
        *count = tp->n_uint64_data;
        return "uint64_data";
    default:
        /* ONNX stores every other type widened to int32 (16-bit floats as
         * their bit patterns). */
        *count = tp->n_int32_data;
        return "int32_data";
    }
}

/* Copy n entries of the typed field into data (count checked by the caller).
 * Narrowing keeps the low bits, as ONNX's own reader does. */
static void tensor_from_typed(const Onnx__TensorProto *tp, evo_dtype dt, size_t n, void *data)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case EVO_DT_FLOAT32:
            ((float *)data)[i] = tp->float_data[i];
            break;
        case EVO_DT_INT64:
            ((int64_t *)data)[i] = tp->int64_data[i];
            break;
        case EVO_DT_FLOAT64:
            ((double *)data)[i] = tp->double_data[i];
            break;
        case EVO_DT_UINT32:
            ((uint32_t *)data)[i] = (uint32_t)tp->uint64_data[i];
            break;
        case EVO_DT_UINT64:
            ((uint64_t *)data)[i] = tp->uint64_data[i];
            break;
        case EVO_DT_INT32:
            ((int32_t *)data)[i] = tp->int32_data[i];
            break;
        case EVO_DT_INT16:
            ((int16_t *)data)[i] = (int16_t)tp->int32_data[i];
            break;
        case EVO_DT_INT8:
            ((int8_t *)data)[i] = (int8_t)tp->int32_data[i];
            break;
        case EVO_DT_UINT8:
            ((uint8_t *)data)[i] = (uint8_t)tp->int32_data[i];
            break;
        case EVO_DT_BOOL:
            ((uint8_t *)data)[i] = tp->int32_data[i] != 0;
            break;
        default: /* UINT16, FLOAT16, BFLOAT16 */
            ((uint16_t *)data)[i] = (uint16_t)tp->int32_data[i];
            break;
        }
    }
}

/* ---------------------------------------------------------------- external data */

/* An external location must stay inside the model's directory: no absolute
 * paths and no ".." components (either separator), so that a model cannot
 * make evo read arbitrary files. */
static bool tensor_location_is_safe(const char *loc)
{
    if (loc[0] == '\0' || loc[0] == '/' || loc[0] == '\\')
        return false;
    if (((loc[0] >= 'a' && loc[0] <= 'z') || (loc[0] >= 'A' && loc[0] <= 'Z')) && loc[1] == ':')
        return false; /* a Windows drive */
    const char *p = loc;
    while (*p != '\0') {
        size_t len = strcspn(p, "/\\");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += len;
        if (*p != '\0')
            p++;
    }
    return true;
}

/* Parse a non-negative decimal number (digits only, no sign, no overflow). */
static bool tensor_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Read nbytes of external data into *out, which is allocated only after the
 * file is known to hold them. */
static evo_status tensor_from_external(const evo_onnx_ctx *c, const Onnx__TensorProto *tp,
                                       const char *what, size_t nbytes, void **out)
{
    *out = NULL;
    const char *location = NULL;
    uint64_t offset = 0, length = nbytes;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const char *key = evo_onnx_str(tp->external_data[i]->key);
        const char *val = evo_onnx_str(tp->external_data[i]->value);
        if (strcmp(key, "location") == 0) {
            location = val;
        } else if (strcmp(key, "offset") == 0) {
            if (!tensor_parse_u64(val, &offset))
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     "%s: %s has external data offset '%s', which is not a "
                                     "non-negative number",
                                     c->file, what, val);
        } else if (strcmp(key, "length") == 0) {
            if (!tensor_parse_u64(val, &length))
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     "%s: %s has external data length '%s', which is not a "
                                     "non-negative number",
                                     c->file, what, val);
        }
        /* "checksum" and unknown keys carry nothing evo needs. */
    }
    if (location == NULL || location[0] == '\0')
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s is stored externally but names no location", c->file, what);
    if (c->base_dir == NULL)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s is stored in external file '%s', but a model loaded from "
                             "memory has no directory to find it in",
                             c->file, what, location);
    if (!tensor_location_is_safe(location))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s refers to external file '%s', which is outside the "
                             "model's directory (absolute paths and '..' are refused)",
                             c->file, what, location);
    if (length != nbytes)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s declares %" PRIu64 " bytes of external data in '%s', but "
                             "its type and shape need %zu",
                             c->file, what, length, location, nbytes);

    size_t dlen = strlen(c->base_dir), llen = strlen(location);
    char *path = malloc(dlen + llen + 2);
    if (path == NULL)
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory reading %s", c->file, what);
    if (dlen > 0) {
        memcpy(path, c->base_dir, dlen);
        path[dlen++] = '/';
    }
    memcpy(path + dlen, location, llen + 1);

    evo_status rv = EVO_OK;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL) {
        rv = evo_error_set(c->err, EVO_ERR_IO,
                           "%s: %s is stored in external file '%s', which cannot be opened (%s)",
                           c->file, what, path, strerror(errno));
    } else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rv = evo_error_set(c->err, EVO_ERR_IO,
                           "%s: %s is stored in external file '%s', which is not a regular file",
                           c->file, what, path);
    } else if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - offset) {
        rv = evo_error_set(c->err, EVO_ERR_PARSE,
                           "%s: %s needs bytes %" PRIu64 "..%" PRIu64 " of external file '%s', "
                           "which has only %lld bytes",
                           c->file, what, offset, offset + length, path, (long long)st.st_size);
    } else if ((*out = malloc(nbytes > 0 ? nbytes : 1)) == NULL) {
        rv = evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory for %s (%zu bytes)", c->file,
                           what, nbytes);
    } else if (offset > (uint64_t)INT64_MAX || fseeko(f, (off_t)offset, SEEK_SET) != 0 ||
               (nbytes > 0 && fread(*out, 1, nbytes, f) != nbytes)) {
        rv = evo_error_set(c->err, EVO_ERR_IO, "%s: %s could not be read from external file '%s'",
                           c->file, what, path);
        free(*out);
        *out = NULL;
    }
    if (f != NULL)
        fclose(f);
    free(path);
    return rv;
}

/* ---------------------------------------------------------------- tensors */

evo_status evo_onnx_decode_tensor(const evo_onnx_ctx *c, const Onnx__TensorProto *tp,
                                  const char *what, evo_dtype *dtype, evo_shape *shape, void **data)
{
    *data = NULL;
    evo_status rv;
    evo_dtype dt = EVO_DT_UNDEFINED;
    if (!tp->has_data_type || tp->data_type == 0)
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: %s has no data type", c->file, what);
    if ((rv = evo_onnx_dtype(c, tp->data_type, what, &dt)) != EVO_OK)
        return rv;
    if (dt == EVO_DT_STRING)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s is a string tensor, which evo does not support", c->file,
                             what);
    if (evo_dtype_size(dt) == 0)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s has data type %s, which evo does not support", c->file, what,
                             evo_dtype_name(dt));
    if (tp->segment != NULL)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s is a segment of a larger tensor, which evo does not support",
                             c->file, what);

    if (tp->n_dims > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT,
                             "%s: %s has rank %zu, more than evo's maximum of %d", c->file, what,
                             tp->n_dims, EVO_MAX_RANK);
    evo_shape s = {.rank = (int32_t)tp->n_dims};
    for (size_t d = 0; d < tp->n_dims; d++) {
        int64_t v = tp->dims[d];
        if (v < 0)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 "%s: %s has negative size %" PRId64 " in dimension %zu", c->file,
                                 what, v, d);
        if (v > EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_LIMIT,
                                 "%s: %s has size %" PRId64 " in dimension %zu, more than evo's "
                                 "maximum of %d",
                                 c->file, what, v, d, EVO_MAX_DIM);
        s.dims[d] = (int32_t)v;
    }
    size_t nbytes = 0;
    int64_t numel = evo_shape_numel(&s);
    if (numel < 0 || evo_shape_nbytes(&s, dt, &nbytes) != EVO_OK ||
        (uint64_t)nbytes > c->lim.max_tensor_bytes) {
        char sh[96];
        evo_shape_format(&s, sh, sizeof sh);
        return evo_error_set(c->err, EVO_ERR_LIMIT,
                             "%s: %s of shape %s and type %s is larger than the limit of "
                             "%" PRIu64 " bytes",
                             c->file, what, sh, evo_dtype_name(dt), c->lim.max_tensor_bytes);
    }

    bool external =
        tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* Check that the data is really there before allocating, so that a
     * small file cannot make evo allocate a large tensor. (External data is
     * checked against its file's size before it is read.) */
    if (!external && tp->has_raw_data && tp->raw_data.len != nbytes) {
        char sh[96];
        evo_shape_format(&s, sh, sizeof sh);
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s has %zu bytes of raw_data, but its shape %s and type %s "
                             "need %zu",
                             c->file, what, tp->raw_data.len, sh, evo_dtype_name(dt), nbytes);
    }
    if (!external && !tp->has_raw_data) {
        size_t have;
        const char *field = tensor_typed_field(tp, dt, &have);
        if (have != (size_t)numel) {
            char sh[96];
            evo_shape_format(&s, sh, sizeof sh);
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 "%s: %s has %zu %s values, but its shape %s needs %" PRId64,
                                 c->file, what, have, field, sh, numel);
        }
    }

    void *buf = NULL;
    if (external) {
        if ((rv = tensor_from_external(c, tp, what, nbytes, &buf)) != EVO_OK)
            return rv;
        tensor_from_little_endian(buf, nbytes, evo_dtype_size(dt));
    } else if ((buf = malloc(nbytes > 0 ? nbytes : 1)) == NULL) {
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory for %s (%zu bytes)", c->file,
                             what, nbytes);
    } else if (tp->has_raw_data) {
        if (nbytes > 0)
            memcpy(buf, tp->raw_data.data, nbytes);
        tensor_from_little_endian(buf, nbytes, evo_dtype_size(dt));
    } else {
        tensor_from_typed(tp, dt, (size_t)numel, buf);
    }
    if (dt == EVO_DT_BOOL) /* kernels may rely on 0/1 */
        for (size_t i = 0; i < nbytes; i++)
            ((uint8_t *)buf)[i] = ((uint8_t *)buf)[i] != 0;
    *dtype = dt;
    *shape = s;
    *data = buf;
    return EVO_OK;
}
