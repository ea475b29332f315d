/*
 * Tensor files: onnx.TensorProto (.pb) through the protobuf-c code generated
 * from modeldb/onnx.proto, and NumPy .npy with a small parser for its header
 * (a Python dict literal).
 *
 * Data on disk is little-endian in both formats; evo only targets
 * little-endian hosts, which the check below makes a build error elsewhere.
 */
#include "tensor_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx.pb-c.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor_io.c copies little-endian file data directly; add byte swapping for this host"
#endif

void cli_tensor_free(cli_tensor *t)
{
    if (t == NULL)
        return;
    free(t->name);
    free(t->t.data);
    memset(t, 0, sizeof *t);
}

static char *tio_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

evo_status cli_read_file(const char *path, uint64_t max_bytes, void **buf, size_t *len,
                         evo_error *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes || (uint64_t)st.st_size > SIZE_MAX - 1) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: file of %llu bytes exceeds the limit of %llu",
                             path, (unsigned long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        fclose(f);
        return EVO_OK;
    }
    unsigned char *data = malloc(size);
    if (data == NULL) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    size_t got = fread(data, 1, size, f);
    int read_error = ferror(f);
    fclose(f);
    if (got != size || read_error) {
        free(data);
        return evo_error_set(err, EVO_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    *buf = data;
    *len = size;
    return EVO_OK;
}

/* ---------------------------------------------------------------- TensorProto */

/* ONNX defines element types beyond evo_dtype (float8 variants, int4, uint4,
 * float4, ...); up to this number a type is reported as unsupported rather
 * than as a corrupt file. */
#define TIO_ONNX_DT_LAST 32

/* Which repeated field ONNX uses for a dtype's typed (non-raw) data. */
typedef enum tio_field {
    TIO_F_NONE,
    TIO_F_FLOAT,
    TIO_F_INT32,
    TIO_F_INT64,
    TIO_F_DOUBLE,
    TIO_F_UINT64,
    TIO_F_STRING,
} tio_field;

static const char *const tio_field_names[] = {
    "none", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data",
};

static tio_field tio_field_of(evo_dtype dt)
{
    switch (dt) {
    case EVO_DT_FLOAT32:
    case EVO_DT_COMPLEX64:
        return TIO_F_FLOAT;
    case EVO_DT_INT64:
        return TIO_F_INT64;
    case EVO_DT_FLOAT64:
    case EVO_DT_COMPLEX128:
        return TIO_F_DOUBLE;
    case EVO_DT_UINT32:
    case EVO_DT_UINT64:
        return TIO_F_UINT64;
    case EVO_DT_STRING:
        return TIO_F_STRING;
    default:
        return TIO_F_INT32; /* int32, int16, int8, uint16, uint8, bool, float16, bfloat16 */
    }
}

static size_t tio_field_count(const Onnx__TensorProto *tp, tio_field f)
{
    switch (f) {
    case TIO_F_FLOAT:
        return tp->n_float_data;
    case TIO_F_INT32:
        return tp->n_int32_data;
    case TIO_F_INT64:
        return tp->n_int64_data;
    case TIO_F_DOUBLE:
        return tp->n_double_data;
    case TIO_F_UINT64:
        return tp->n_uint64_data;
    case TIO_F_STRING:
        return tp->n_string_data;
    default:
        return 0;
    }
}

/* Copy int32_data into a narrower element type, refusing values that do not
 * fit (a file claiming int8 data of 300 is corrupt, not something to wrap). */
static evo_status tio_copy_int32_field(const Onnx__TensorProto *tp, evo_dtype dt, size_t numel,
                                       void *data, const char *name, evo_error *err)
{
    int32_t lo = INT32_MIN, hi = INT32_MAX;
    if (dt == EVO_DT_INT8)
        lo = -128, hi = 127;
    else if (dt == EVO_DT_UINT8)
        lo = 0, hi = 255;
    else if (dt == EVO_DT_FLOAT16)
        lo = 0, hi = 65535; /* the half's bit pattern */
    else if (dt == EVO_DT_BOOL)
        lo = 0, hi = 1;
    for (size_t i = 0; i < numel; i++) {
        int32_t v = tp->int32_data[i];
        if (v < lo || v > hi)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: int32_data[%zu] = %d is out of range for %s", name, i, (int)v,
                                 evo_dtype_name(dt));
        switch (dt) {
        case EVO_DT_INT32:
            ((int32_t *)data)[i] = v;
            break;
        case EVO_DT_INT8:
            ((int8_t *)data)[i] = (int8_t)v;
            break;
        case EVO_DT_FLOAT16:
            ((uint16_t *)data)[i] = (uint16_t)v;
            break;
        default: /* uint8, bool */
            ((uint8_t *)data)[i] = (uint8_t)v;
            break;
        }
    }
    return EVO_OK;
}

evo_status cli_tensor_parse_pb(const void *buf, size_t len, const char *name, cli_tensor *out,
                               evo_error *err)
{
    memset(out, 0, sizeof *out);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (tp == NULL)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: not a serialized onnx.TensorProto (truncated or malformed)",
                             name);
    evo_status rv = EVO_OK;
    void *data = NULL;
    char *tname = NULL;

    /* A file that happens to decode (protobuf accepts many byte strings) but
     * has no element type is most likely some other message. */
    if (!tp->has_data_type || tp->data_type == EVO_DT_UNDEFINED) {
        rv = evo_error_set(err, EVO_ERR_PARSE,
                           "%s: has no data_type; not a serialized onnx.TensorProto", name);
        goto done;
    }
    if (tp->data_type >= EVO_DT_COUNT_ && tp->data_type <= TIO_ONNX_DT_LAST) {
        /* newer ONNX types (float8, int4, float4, ...): valid, not evo's */
        rv = evo_error_set(err, EVO_ERR_UNSUPPORTED,
                           "%s: ONNX element type %d is not supported by evo", name,
                           (int)tp->data_type);
        goto done;
    }
    if (tp->data_type < 0 || tp->data_type >= EVO_DT_COUNT_) {
        rv =
            evo_error_set(err, EVO_ERR_PARSE, "%s: unknown data_type %d", name, (int)tp->data_type);
        goto done;
    }
    evo_dtype dt = (evo_dtype)tp->data_type;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        rv =
            evo_error_set(err, EVO_ERR_UNSUPPORTED,
                          "%s: tensor data stored in an external file is not supported here", name);
        goto done;
    }
    if (tp->segment != NULL) {
        rv = evo_error_set(
            err, EVO_ERR_UNSUPPORTED,
            "%s: has a 'segment' field: a segmented tensor, or not a TensorProto at all; "
            "neither is supported",
            name);
        goto done;
    }
    if (!evo_dtype_is_supported(dt)) {
        rv = evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: element type %s is not supported by evo",
                           name, evo_dtype_name(dt));
        goto done;
    }
    if (tp->n_dims > EVO_MAX_RANK) { /* valid ONNX, beyond what evo's shapes hold */
        rv = evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: rank %zu exceeds evo's maximum of %d",
                           name, tp->n_dims, EVO_MAX_RANK);
        goto done;
    }
    evo_shape shape = {.rank = (int32_t)tp->n_dims};
    for (size_t d = 0; d < tp->n_dims; d++) {
        if (tp->dims[d] < 0 || tp->dims[d] > EVO_MAX_DIM) {
            rv = evo_error_set(err, EVO_ERR_LIMIT, "%s: dim %zu = %lld is out of range [0, %d]",
                               name, d, (long long)tp->dims[d], EVO_MAX_DIM);
            goto done;
        }
        shape.dims[d] = (int32_t)tp->dims[d];
    }
    size_t nbytes;
    if (evo_shape_nbytes(&shape, dt, &nbytes) != EVO_OK) {
        char sbuf[128];
        evo_shape_format(&shape, sbuf, sizeof sbuf);
        rv = evo_error_set(err, EVO_ERR_LIMIT, "%s: %s tensor of shape %s is too large", name,
                           evo_dtype_name(dt), sbuf);
        goto done;
    }
    size_t numel = (size_t)evo_shape_numel(&shape);

    /* Exactly one place may hold the data; all sizes are checked against what
     * the file holds before allocating (the file bounds the allocation). */
    tio_field want = tio_field_of(dt);
    for (int f = TIO_F_FLOAT; f <= TIO_F_STRING; f++) {
        size_t count = tio_field_count(tp, (tio_field)f);
        if (count == 0)
            continue;
        if (tp->has_raw_data || (tio_field)f != want) {
            rv = evo_error_set(err, EVO_ERR_PARSE, "%s: %s tensor holds unexpected %s%s", name,
                               evo_dtype_name(dt), tio_field_names[f],
                               tp->has_raw_data ? " besides raw_data" : "");
            goto done;
        }
    }
    if (tp->has_raw_data) {
        if (tp->raw_data.len != nbytes) {
            char sbuf[128];
            evo_shape_format(&shape, sbuf, sizeof sbuf);
            rv = evo_error_set(err, EVO_ERR_PARSE,
                               "%s: raw_data holds %zu bytes but a %s tensor of shape %s needs %zu",
                               name, tp->raw_data.len, evo_dtype_name(dt), sbuf, nbytes);
            goto done;
        }
    } else if (tio_field_count(tp, want) != numel) {
        rv = evo_error_set(err, EVO_ERR_PARSE, "%s: %s holds %zu values but the dims need %zu",
                           name, tio_field_names[want], tio_field_count(tp, want), numel);
        goto done;
    }

    data = malloc(nbytes ? nbytes : 1);
    tname = tio_strdup(tp->name ? tp->name : "");
    if (data == NULL || tname == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate %zu bytes", name, nbytes);
        goto done;
    }
    if (tp->has_raw_data) {
        if (nbytes > 0)
            memcpy(data, tp->raw_data.data, nbytes);
        if (dt == EVO_DT_BOOL) /* kernels rely on bools being 0 or 1 */
            for (size_t i = 0; i < numel; i++)
                ((uint8_t *)data)[i] = ((uint8_t *)data)[i] != 0;
    } else if (nbytes == 0) {
        /* an empty tensor: no typed field to copy from (it may be NULL) */
    } else if (want == TIO_F_FLOAT) {
        memcpy(data, tp->float_data, nbytes);
    } else if (want == TIO_F_INT64) {
        memcpy(data, tp->int64_data, nbytes);
    } else if ((rv = tio_copy_int32_field(tp, dt, numel, data, name, err)) != EVO_OK) {
        goto done;
    }

    out->name = tname;
    out->t.dtype = dt;
    out->t.shape = shape;
    out->t.data = data;
    out->nbytes = nbytes;
    tname = NULL;
    data = NULL;
done:
    free(data);
    free(tname);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rv;
}

/* ---------------------------------------------------------------- .npy */

/* A cursor over the header text, a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }            */
typedef struct npy_lex {
    const char *p, *end;
} npy_lex;

static void npy_skip_ws(npy_lex *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static bool npy_take(npy_lex *l, char c)
{
    npy_skip_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return true;
    }
    return false;
}

static bool npy_word(npy_lex *l, const char *w)
{
    npy_skip_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
        l->p += n;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...") without escapes, into out (cap bytes). */
static bool npy_string(npy_lex *l, char *out, size_t cap)
{
    npy_skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
        return false;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap)
            return false;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end)
        return false;
    l->p++;
    out[n] = '\0';
    return true;
}

/* A shape tuple: "()", "(5,)", "(1, 3, 224, 224)". */
static evo_status npy_shape(npy_lex *l, evo_shape *s, const char *name, evo_error *err)
{
    s->rank = 0;
    if (!npy_take(l, '('))
        return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header 'shape' is not a tuple", name);
    for (;;) {
        if (npy_take(l, ')'))
            return EVO_OK;
        npy_skip_ws(l);
        int64_t v = 0;
        int digits = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            v = v * 10 + (*l->p++ - '0');
            if (v > EVO_MAX_DIM)
                return evo_error_set(err, EVO_ERR_LIMIT,
                                     "%s: .npy shape has a dim above evo's limit of %d", name,
                                     EVO_MAX_DIM);
            digits++;
        }
        if (digits == 0)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: .npy header 'shape' holds something other than sizes", name);
        if (s->rank >= EVO_MAX_RANK)
            return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                 "%s: .npy rank exceeds evo's maximum of %d", name, EVO_MAX_RANK);
        s->dims[s->rank++] = (int32_t)v;
        if (!npy_take(l, ',')) {
            if (npy_take(l, ')'))
                return EVO_OK;
            return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header 'shape' is malformed", name);
        }
    }
}

static const struct {
    const char *descr;
    evo_dtype dt;
} npy_types[] = {
    {"<f4", EVO_DT_FLOAT32}, {"<f2", EVO_DT_FLOAT16}, {"<i8", EVO_DT_INT64}, {"<i4", EVO_DT_INT32},
    {"|u1", EVO_DT_UINT8},   {"|i1", EVO_DT_INT8},    {"|b1", EVO_DT_BOOL},
};

evo_status cli_tensor_parse_npy(const void *buf, size_t len, const char *name, cli_tensor *out,
                                evo_error *err)
{
    const unsigned char *b = buf;
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: not a .npy file (bad magic or too short)",
                             name);
    size_t hstart, hlen;
    if (b[6] == 1) {
        hstart = 10;
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12)
            return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header is truncated", name);
        hstart = 12;
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is unknown",
                             name, b[6], b[7]);
    }
    if (hlen > len - hstart)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header of %zu bytes is truncated", name,
                             hlen);

    npy_lex l = {(const char *)b + hstart, (const char *)b + hstart + hlen};
    char descr[32] = "";
    int fortran = -1;
    bool have_descr = false, have_shape = false;
    evo_shape shape = {0};
    evo_status rv;
    if (!npy_take(&l, '{'))
        return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header is not a dict", name);
    while (!npy_take(&l, '}')) {
        char key[32];
        if (!npy_string(&l, key, sizeof key) || !npy_take(&l, ':'))
            return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header is malformed", name);
        if (strcmp(key, "descr") == 0) {
            if (!npy_string(&l, descr, sizeof descr))
                return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                     "%s: .npy 'descr' is not a simple type string "
                                     "(structured arrays are not supported)",
                                     name);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(&l, "True"))
                fortran = 1;
            else if (npy_word(&l, "False"))
                fortran = 0;
            else
                return evo_error_set(err, EVO_ERR_PARSE,
                                     "%s: .npy 'fortran_order' is neither True nor False", name);
        } else if (strcmp(key, "shape") == 0) {
            if ((rv = npy_shape(&l, &shape, name, err)) != EVO_OK)
                return rv;
            have_shape = true;
        } else {
            return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header has unknown key '%s'", name,
                                 key);
        }
        if (!npy_take(&l, ',')) {
            if (npy_take(&l, '}'))
                break;
            return evo_error_set(err, EVO_ERR_PARSE, "%s: .npy header is malformed", name);
        }
    }
    if (!have_descr || !have_shape || fortran < 0)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: .npy header lacks one of 'descr', 'fortran_order', 'shape'",
                             name);
    if (fortran)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: .npy array is in Fortran order; save it in C order "
                             "(numpy.ascontiguousarray)",
                             name);
    evo_dtype dt = EVO_DT_UNDEFINED;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (strcmp(descr, npy_types[i].descr) == 0)
            dt = npy_types[i].dt;
    if (dt == EVO_DT_UNDEFINED)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: .npy dtype '%s' is not supported (evo reads <f4, <f2, <i8, <i4, "
                             "|u1, |i1, |b1)",
                             name, descr);

    size_t nbytes;
    if (evo_shape_nbytes(&shape, dt, &nbytes) != EVO_OK)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: .npy array is too large", name);
    size_t avail = len - hstart - hlen;
    if (avail != nbytes)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: .npy data holds %zu bytes but its header needs %zu", name, avail,
                             nbytes);
    void *data = malloc(nbytes ? nbytes : 1);
    char *tname = tio_strdup("");
    if (data == NULL || tname == NULL) {
        free(data);
        free(tname);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate %zu bytes", name, nbytes);
    }
    if (nbytes > 0)
        memcpy(data, b + hstart + hlen, nbytes);
    if (dt == EVO_DT_BOOL)
        for (size_t i = 0; i < nbytes; i++)
            ((uint8_t *)data)[i] = ((uint8_t *)data)[i] != 0;
    out->name = tname;
    out->t.dtype = dt;
    out->t.shape = shape;
    out->t.data = data;
    out->nbytes = nbytes;
    return EVO_OK;
}

/* ---------------------------------------------------------------- files */

evo_status cli_tensor_read(const char *path, cli_tensor *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    void *buf;
    size_t len;
    evo_status rv = cli_read_file(path, CLI_TENSOR_FILE_MAX, &buf, &len, err);
    if (rv != EVO_OK)
        return rv;
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        rv = cli_tensor_parse_npy(buf, len, path, out, err);
    else
        rv = cli_tensor_parse_pb(buf, len, path, out, err);
    free(buf);
    return rv;
}

evo_status cli_tensor_write_pb(const char *path, const char *name, const evo_tensor *t,
                               evo_error *err)
{
    size_t nbytes;
    if (evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK || t->shape.rank < 0 ||
        t->shape.rank > EVO_MAX_RANK)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: cannot write a %s tensor of this shape",
                             path, evo_dtype_name(t->dtype));
    int64_t dims[EVO_MAX_RANK];
    for (int32_t d = 0; d < t->shape.rank; d++)
        dims[d] = t->shape.dims[d];
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = (size_t)t->shape.rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = (int32_t)t->dtype;
    tp.name = (char *)(name ? name : ""); /* pack only reads it */
    tp.has_raw_data = 1;
    tp.raw_data.len = nbytes;
    tp.raw_data.data = t->data;

    size_t size = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    onnx__tensor_proto__pack(&tp, buf);
    evo_status rv = EVO_OK;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    } else {
        size_t put = fwrite(buf, 1, size, f);
        if (fclose(f) != 0 || put != size)
            rv = evo_error_set(err, EVO_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    free(buf);
    return rv;
}
