/*
 * The .evm loader and verifier: a caller's blob -> an evo_program, without
 * allocating and without copying weights. Portable C11, builds freestanding.
 *
 * A .evm may come from anywhere (a flash image, a network deploy), so nothing
 * in it is trusted: the header is checked first (magic, version, counts, the
 * derived section layout against the blob length), then the digest, then
 * every record: strings must end inside a NUL-terminated string table,
 * tensors must have a supported dtype, a valid shape whose dense size is the
 * stored one, and lie inside the constant section or the activation area at
 * an aligned offset; nodes must name a registered op listed in the op table,
 * with an arity the op accepts, params no longer than EVO_PARAMS_MAX, every
 * input/output index in range, no output that is a constant or a graph
 * input, scratch inside the activation area, and nothing the node writes
 * overlapping the other arena bytes it touches (but for the planner's exact
 * in-place alias). Finally each node's op re-infers its outputs from the
 * stored inputs (constants with their data), which must give exactly the
 * stored dtypes and shapes, and the op's scratch need must fit the stored
 * scratch size. Kernels trust infer; this makes a loaded program as safe to
 * run as a freshly compiled one -- provided each op's infer validates its
 * params too (they are file data here, not parse output).
 *
 * Every check is linear (or n log n) in the table sizes, so a hostile count
 * cannot stall a device either.
 *
 * Format details: docs/format.md.
 */
#include <string.h>

#include "evo/evm.h"

/* Ops with no params (or all-zero params) point here: kernels may read up to
 * EVO_PARAMS_MAX bytes of params, which must then read as zeros. */
static const _Alignas(8) unsigned char evm_zero_params[EVO_PARAMS_MAX];

/* Header field offsets (format version 1). */
enum {
    EVM_H_MAGIC = 0,
    EVM_H_VERSION = 4,
    EVM_H_DIGEST = 8,
    EVM_H_HEADER_BYTES = 40,
    EVM_H_FLAGS = 44,
    EVM_H_FILE_BYTES = 48,
    EVM_H_ACT_BYTES = 56,
    EVM_H_ACT_LOWER = 64,
    EVM_H_WEIGHTS = 72,
    EVM_H_N_TENSORS = 80,
    EVM_H_N_NODES = 84,
    EVM_H_N_INDICES = 88,
    EVM_H_N_INPUTS = 92,
    EVM_H_N_OUTPUTS = 96,
    EVM_H_N_OPS = 100,
    EVM_H_N_PARAMS = 104,
    EVM_H_MAX_IO = 108,
    EVM_H_CONST_ALIGN = 112,
    EVM_H_STRING_BYTES = 116,
    EVM_H_CONST_BYTES = 120,
};

/* Counts above these are hostile (and keep every size computation far from
 * overflow, also with a 32-bit size_t). */
#define EVM_MAX_COUNT (1u << 24)
#define EVM_MAX_CONST_ALIGN 4096u

static uint16_t evm_rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t evm_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t evm_rd64(const unsigned char *p)
{
    return (uint64_t)evm_rd32(p) | (uint64_t)evm_rd32(p + 4) << 32;
}

static uint64_t evm_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* [off, off + bytes) lies inside an area of cap bytes. */
static bool evm_fits(uint64_t off, uint64_t bytes, uint64_t cap)
{
    return off <= cap && bytes <= cap - off;
}

evo_status evo_evm_read_header(const void *blob, size_t len, evo_evm_info *info, evo_error *err)
{
    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (blob == NULL || info == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, ".evm: no blob or no result");
    const unsigned char *b = blob;
    if (len < 8 || memcmp(b, EVO_EVM_MAGIC, 4) != 0)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: not an evo compact model (magic is not "
                             "'" EVO_EVM_MAGIC "')");
    info->version = evm_rd32(b + EVM_H_VERSION);
    if (info->version != EVO_EVM_VERSION)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             ".evm: format version %u is not supported (this build reads %u)",
                             (unsigned)info->version, (unsigned)EVO_EVM_VERSION);
    if (len < EVO_EVM_HEADER_BYTES)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: truncated: %zu bytes, less than the %u-byte header", len,
                             (unsigned)EVO_EVM_HEADER_BYTES);
    uint32_t header_bytes = evm_rd32(b + EVM_H_HEADER_BYTES);
    if (header_bytes != EVO_EVM_HEADER_BYTES)
        return evo_error_set(err, EVO_ERR_PARSE, ".evm: header size is %u bytes, version %u has %u",
                             (unsigned)header_bytes, (unsigned)info->version,
                             (unsigned)EVO_EVM_HEADER_BYTES);
    memcpy(info->digest, b + EVM_H_DIGEST, EVO_EVM_DIGEST_BYTES);
    info->flags = evm_rd32(b + EVM_H_FLAGS);
    info->file_bytes = evm_rd64(b + EVM_H_FILE_BYTES);
    info->activation_bytes = evm_rd64(b + EVM_H_ACT_BYTES);
    info->activation_lower_bound = evm_rd64(b + EVM_H_ACT_LOWER);
    info->weights_bytes = evm_rd64(b + EVM_H_WEIGHTS);
    info->n_tensors = evm_rd32(b + EVM_H_N_TENSORS);
    info->n_nodes = evm_rd32(b + EVM_H_N_NODES);
    info->n_indices = evm_rd32(b + EVM_H_N_INDICES);
    info->n_inputs = evm_rd32(b + EVM_H_N_INPUTS);
    info->n_outputs = evm_rd32(b + EVM_H_N_OUTPUTS);
    info->n_ops = evm_rd32(b + EVM_H_N_OPS);
    info->n_params = evm_rd32(b + EVM_H_N_PARAMS);
    info->max_node_io = evm_rd32(b + EVM_H_MAX_IO);
    info->const_align = evm_rd32(b + EVM_H_CONST_ALIGN);
    info->string_bytes = evm_rd32(b + EVM_H_STRING_BYTES);
    info->const_bytes = evm_rd64(b + EVM_H_CONST_BYTES);

    if (info->file_bytes != (uint64_t)len)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: %s: the header says %llu bytes but %zu are given",
                             info->file_bytes > (uint64_t)len ? "truncated" : "trailing bytes",
                             (unsigned long long)info->file_bytes, len);
    if (info->flags & ~(uint32_t)EVO_EVM_F_NAMES)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED, ".evm: unknown header flags 0x%x",
                             (unsigned)(info->flags & ~(uint32_t)EVO_EVM_F_NAMES));
    if ((info->flags & EVO_EVM_F_NAMES) == 0 && info->string_bytes != 0)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: a string table of %u bytes but the names flag is off",
                             (unsigned)info->string_bytes);
    const uint32_t counts[] = {info->n_tensors, info->n_nodes,     info->n_indices,
                               info->n_inputs,  info->n_outputs,   info->n_ops,
                               info->n_params,  info->max_node_io, info->string_bytes};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i] > EVM_MAX_COUNT)
            return evo_error_set(err, EVO_ERR_LIMIT,
                                 ".evm: header count %u (field %zu) is beyond the limit %u",
                                 (unsigned)counts[i], i, (unsigned)EVM_MAX_COUNT);
    if ((uint64_t)info->n_inputs + info->n_outputs > info->n_indices)
        return evo_error_set(
            err, EVO_ERR_PARSE, ".evm: %u inputs and %u outputs do not fit in %u index entries",
            (unsigned)info->n_inputs, (unsigned)info->n_outputs, (unsigned)info->n_indices);
    if (info->const_align < EVO_EVM_MIN_ALIGN || info->const_align > EVM_MAX_CONST_ALIGN ||
        (info->const_align & (info->const_align - 1)) != 0)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: constant alignment %u is not a power of two in [%u, %u]",
                             (unsigned)info->const_align, (unsigned)EVO_EVM_MIN_ALIGN,
                             (unsigned)EVM_MAX_CONST_ALIGN);
    if (info->activation_lower_bound > info->activation_bytes)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: activation lower bound %llu exceeds the activation size %llu",
                             (unsigned long long)info->activation_lower_bound,
                             (unsigned long long)info->activation_bytes);
    if (info->weights_bytes > info->const_bytes)
        return evo_error_set(
            err, EVO_ERR_PARSE, ".evm: %llu weight bytes do not fit the %llu-byte constant section",
            (unsigned long long)info->weights_bytes, (unsigned long long)info->const_bytes);

    /* The derived layout: counts are below 2^24, so nothing here overflows. */
    info->tensors_off = EVO_EVM_HEADER_BYTES;
    info->nodes_off = info->tensors_off + (uint64_t)info->n_tensors * EVO_EVM_TENSOR_BYTES;
    info->ops_off = info->nodes_off + (uint64_t)info->n_nodes * EVO_EVM_NODE_BYTES;
    info->indices_off = info->ops_off + (uint64_t)info->n_ops * EVO_EVM_OP_BYTES;
    info->params_off = evm_align_up(info->indices_off + (uint64_t)info->n_indices * 4, 8);
    info->strings_off = info->params_off + (uint64_t)info->n_params * EVO_PARAMS_MAX;
    info->consts_off = evm_align_up(info->strings_off + info->string_bytes, info->const_align);
    if (info->consts_off > (uint64_t)len || info->const_bytes != (uint64_t)len - info->consts_off)
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: the sections end at byte %llu + %llu constant bytes, but the "
                             "file has %zu bytes",
                             (unsigned long long)info->consts_off,
                             (unsigned long long)info->const_bytes, len);
    return EVO_OK;
}

/* ---------------------------------------------------------------- work buffer */

/* A node's arena bytes [start, end), for the overlap check. */
typedef struct evm_span {
    uint64_t start, end;
    uint32_t write; /* an output or the scratch */
} evm_span;

typedef struct evm_work_layout {
    size_t tensors, nodes, indices, views, ptrs, spans, defined, listed, total;
} evm_work_layout;

static bool evm_add(size_t *acc, size_t n, size_t elem, size_t align)
{
    size_t a = *acc;
    if (a > SIZE_MAX - (align - 1))
        return false;
    a = (a + align - 1) & ~(align - 1);
    if (elem != 0 && n > (SIZE_MAX - a) / elem)
        return false;
    *acc = a + n * elem;
    return true;
}

static bool evm_work_layout_of(const evo_evm_info *info, evm_work_layout *l)
{
    size_t at = 0;
    l->tensors = at;
    if (!evm_add(&at, info->n_tensors, sizeof(evo_prog_tensor), 8))
        return false;
    l->nodes = evm_align_up(at, 8);
    if (!evm_add(&at, info->n_nodes, sizeof(evo_prog_node), 8))
        return false;
    l->indices = evm_align_up(at, 8);
    if (!evm_add(&at, info->n_indices, sizeof(int32_t), 8))
        return false;
    l->views = evm_align_up(at, 8);
    if (!evm_add(&at, info->max_node_io, sizeof(evo_tensor), 8))
        return false;
    l->ptrs = evm_align_up(at, 8);
    if (!evm_add(&at, info->max_node_io, sizeof(evo_tensor *), 8))
        return false;
    l->spans = evm_align_up(at, 8);
    if (!evm_add(&at, (size_t)info->max_node_io + 1, sizeof(evm_span), 8))
        return false;
    l->defined = at;
    if (!evm_add(&at, ((size_t)info->n_tensors + 7) / 8, 1, 1))
        return false;
    l->listed = at;
    if (!evm_add(&at, ((size_t)info->n_tensors + 7) / 8, 1, 1))
        return false;
    l->total = at;
    return true;
}

size_t evo_evm_work_size(const evo_evm_info *info)
{
    evm_work_layout l;
    if (info == NULL || !evm_work_layout_of(info, &l))
        return SIZE_MAX;
    return l.total;
}

/* ---------------------------------------------------------------- verification */

typedef struct evm_ctx {
    const unsigned char *b;
    const evo_evm_info *info;
    evo_error *err;
    evo_prog_tensor *tensors;
    evo_prog_node *nodes;
    int32_t *indices;
    evo_tensor *views; /* max_node_io views for re-inference */
    evo_tensor **ptrs;
    evm_span *spans;        /* max_node_io + 1 */
    unsigned char *defined; /* bit per tensor: written by a graph input or an earlier node */
    unsigned char *listed;  /* bit per tensor: listed as a graph output */
} evm_ctx;

/* A string reference: EVO_EVM_NONE -> "", else an offset inside the string
 * table (whose last byte is NUL, so every string ends inside it). */
static evo_status evm_string(const evm_ctx *c, uint32_t ref, const char *what, uint32_t index,
                             const char **out)
{
    if (ref == EVO_EVM_NONE) {
        *out = "";
        return EVO_OK;
    }
    if (ref >= c->info->string_bytes)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: %s %u: name offset %u is outside the %u-byte string table",
                             what, (unsigned)index, (unsigned)ref, (unsigned)c->info->string_bytes);
    *out = (const char *)(c->b + c->info->strings_off + ref);
    return EVO_OK;
}

const char *evo_evm_op_name(const void *blob, const evo_evm_info *info, uint16_t op_id)
{
    if (blob == NULL || info == NULL || info->string_bytes == 0)
        return "";
    const unsigned char *b = blob;
    if (b[info->strings_off + info->string_bytes - 1] != '\0')
        return "";
    for (uint32_t k = 0; k < info->n_ops; k++) {
        const unsigned char *r = b + info->ops_off + (uint64_t)k * EVO_EVM_OP_BYTES;
        uint32_t ref = evm_rd32(r + 4);
        if (evm_rd16(r) == op_id && ref != EVO_EVM_NONE && ref < info->string_bytes)
            return (const char *)(b + info->strings_off + ref);
    }
    return "";
}

static uint16_t evm_op_id_at(const evm_ctx *c, uint32_t k)
{
    return evm_rd16(c->b + c->info->ops_off + (uint64_t)k * EVO_EVM_OP_BYTES);
}

/* The op table: sorted by id (so ids are unique and lookups are binary
 * searches, whatever its length), and every op one this build can run. */
static evo_status evm_check_ops(const evm_ctx *c)
{
    for (uint32_t k = 0; k < c->info->n_ops; k++) {
        const unsigned char *r = c->b + c->info->ops_off + (uint64_t)k * EVO_EVM_OP_BYTES;
        uint16_t id = evm_rd16(r);
        const char *name = "";
        evo_status st = evm_string(c, evm_rd32(r + 4), "op table entry", k, &name);
        if (st != EVO_OK)
            return st;
        if (evm_rd16(r + 2) != 0)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: op table entry %u has non-zero reserved bits", (unsigned)k);
        if (k > 0 && evm_op_id_at(c, k - 1) >= id)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: op table entry %u (id %u) is out of order or repeated",
                                 (unsigned)k, (unsigned)id);
        const evo_op_def *op = evo_op_by_id(id);
        if (op == NULL || op->eval == NULL || op->infer == NULL)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 ".evm: the model uses op id %u%s%s%s, which this build of evo "
                                 "does not have",
                                 (unsigned)id, name[0] ? " ('" : "", name, name[0] ? "')" : "");
        if (name[0] != '\0' && strcmp(name, op->name) != 0)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 ".evm: op id %u is '%s' in the model but '%s' in this build",
                                 (unsigned)id, name, op->name);
    }
    return EVO_OK;
}

static bool evm_op_listed(const evm_ctx *c, uint16_t id)
{
    uint32_t lo = 0, hi = c->info->n_ops;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint16_t v = evm_op_id_at(c, mid);
        if (v == id)
            return true;
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static evo_status evm_decode_tensors(const evm_ctx *c)
{
    const evo_evm_info *in = c->info;
    uint64_t weights = 0;
    for (uint32_t i = 0; i < in->n_tensors; i++) {
        const unsigned char *r = c->b + in->tensors_off + (uint64_t)i * EVO_EVM_TENSOR_BYTES;
        evo_prog_tensor *t = &c->tensors[i];
        memset(t, 0, sizeof *t);
        evo_status st = evm_string(c, evm_rd32(r), "tensor", i, &t->name);
        if (st != EVO_OK)
            return st;
        unsigned dtype = r[4], rank = r[5];
        uint32_t flags = evm_rd16(r + 6);
        if (dtype >= EVO_DT_COUNT_ || !evo_dtype_is_supported((evo_dtype)dtype) ||
            evo_dtype_size((evo_dtype)dtype) == 0)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 ".evm: tensor %u '%s' has element type %u, which evo does not "
                                 "support",
                                 (unsigned)i, t->name, dtype);
        if (rank > EVO_MAX_RANK)
            return evo_error_set(c->err, EVO_ERR_PARSE, ".evm: tensor %u '%s' has rank %u (max %d)",
                                 (unsigned)i, t->name, rank, EVO_MAX_RANK);
        if (flags & ~(uint32_t)(EVO_PT_CONST | EVO_PT_INPUT | EVO_PT_OUTPUT))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: tensor %u '%s' has unknown flags 0x%x", (unsigned)i,
                                 t->name, (unsigned)flags);
        if ((flags & EVO_PT_CONST) && (flags & EVO_PT_INPUT))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: tensor %u '%s' is both a constant and a graph input",
                                 (unsigned)i, t->name);
        t->dtype = (evo_dtype)dtype;
        t->shape.rank = (int32_t)rank;
        for (unsigned d = 0; d < EVO_MAX_RANK; d++) {
            uint32_t v = evm_rd32(r + 8 + 4 * d);
            if (d >= rank ? v != 0 : v > (uint32_t)EVO_MAX_DIM)
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     ".evm: tensor %u '%s' has a bad dimension %u: %lu",
                                     (unsigned)i, t->name, d, (unsigned long)v);
            if (d < rank)
                t->shape.dims[d] = (int32_t)v;
        }
        t->flags = flags;
        uint64_t off = evm_rd64(r + 40);
        t->nbytes = evm_rd64(r + 48);
        size_t nbytes;
        if (evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK ||
            (uint64_t)nbytes != t->nbytes) {
            char sh[96];
            evo_shape_format(&t->shape, sh, sizeof sh);
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: tensor %u '%s' of shape %s stores %llu bytes, which is not "
                                 "its size",
                                 (unsigned)i, t->name, sh, (unsigned long long)t->nbytes);
        }
        if (flags & EVO_PT_CONST) {
            if (off % EVO_EVM_MIN_ALIGN != 0 || !evm_fits(off, t->nbytes, in->const_bytes))
                return evo_error_set(
                    c->err, EVO_ERR_PARSE,
                    ".evm: constant tensor %u '%s' at offset %llu (+%llu bytes) is "
                    "misaligned or outside the %llu-byte constant section",
                    (unsigned)i, t->name, (unsigned long long)off, (unsigned long long)t->nbytes,
                    (unsigned long long)in->const_bytes);
            t->const_data = c->b + in->consts_off + off;
            weights += t->nbytes;
        } else {
            if (off % EVO_ARENA_ALIGN != 0 || !evm_fits(off, t->nbytes, in->activation_bytes))
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     ".evm: tensor %u '%s' at arena offset %llu (+%llu bytes) is "
                                     "misaligned or outside the %llu-byte activation area",
                                     (unsigned)i, t->name, (unsigned long long)off,
                                     (unsigned long long)t->nbytes,
                                     (unsigned long long)in->activation_bytes);
            t->arena_offset = off;
        }
    }
    if (weights != in->weights_bytes)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: constant tensors hold %llu bytes but the header says %llu",
                             (unsigned long long)weights, (unsigned long long)in->weights_bytes);
    return EVO_OK;
}

static bool evm_bit(const unsigned char *bits, int32_t t)
{
    return (bits[t / 8] >> (t % 8)) & 1u;
}

static void evm_set_bit(unsigned char *bits, int32_t t)
{
    bits[t / 8] |= (unsigned char)(1u << (t % 8));
}

/* Graph inputs and outputs: the first entries of the index pool. Each is
 * listed once, flagged as what it is, and every flagged tensor is listed
 * (counted, so the check is linear in the table sizes). */
static evo_status evm_check_bindings(const evm_ctx *c)
{
    const evo_evm_info *in = c->info;
    for (uint32_t k = 0; k < in->n_inputs + in->n_outputs; k++) {
        bool is_in = k < in->n_inputs;
        uint32_t pos = is_in ? k : k - in->n_inputs;
        const char *what = is_in ? "input" : "output";
        int32_t t = c->indices[k];
        if (t < 0 || (uint32_t)t >= in->n_tensors)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: graph %s %u refers to tensor %ld of %u", what,
                                 (unsigned)pos, (long)t, (unsigned)in->n_tensors);
        uint32_t want = is_in ? EVO_PT_INPUT : EVO_PT_OUTPUT;
        if (!(c->tensors[t].flags & want))
            return evo_error_set(
                c->err, EVO_ERR_PARSE,
                ".evm: graph %s %u is tensor %ld '%s', which is not flagged as one", what,
                (unsigned)pos, (long)t, c->tensors[t].name);
        unsigned char *bits = is_in ? c->defined : c->listed;
        if (evm_bit(bits, t))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: tensor %ld '%s' is listed twice as a graph %s", (long)t,
                                 c->tensors[t].name, what);
        evm_set_bit(bits, t);
    }
    uint32_t n_in = 0, n_out = 0;
    for (uint32_t t = 0; t < in->n_tensors; t++) {
        n_in += (c->tensors[t].flags & EVO_PT_INPUT) != 0;
        n_out += (c->tensors[t].flags & EVO_PT_OUTPUT) != 0;
    }
    if (n_in != in->n_inputs || n_out != in->n_outputs)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: %u tensors are flagged as graph inputs and %u as outputs, but "
                             "%u and %u are listed",
                             (unsigned)n_in, (unsigned)n_out, (unsigned)in->n_inputs,
                             (unsigned)in->n_outputs);
    return EVO_OK;
}

static bool evm_is_defined(const evm_ctx *c, int32_t t)
{
    return (c->tensors[t].flags & EVO_PT_CONST) || evm_bit(c->defined, t);
}

/* Decode node k's record and check everything but its shapes. */
static evo_status evm_decode_node(const evm_ctx *c, uint32_t k)
{
    const evo_evm_info *in = c->info;
    const unsigned char *r = c->b + in->nodes_off + (uint64_t)k * EVO_EVM_NODE_BYTES;
    evo_prog_node *n = &c->nodes[k];
    memset(n, 0, sizeof *n);
    uint16_t op_id = evm_rd16(r);
    uint32_t params_len = evm_rd16(r + 2);
    uint32_t slot = evm_rd32(r + 8);
    uint32_t io_first = evm_rd32(r + 12);
    uint32_t n_in = evm_rd16(r + 16), n_out = evm_rd16(r + 18);
    evo_status st = evm_string(c, evm_rd32(r + 4), "node", k, &n->name);
    if (st != EVO_OK)
        return st;
    if (!evm_op_listed(c, op_id))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' uses op id %u, which the op table does not list",
                             (unsigned)k, n->name, (unsigned)op_id);
    const evo_op_def *op = evo_op_by_id(op_id); /* non-NULL: the op table was checked */
    n->op = op;
    if (evm_rd32(r + 20) != 0)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s) has non-zero reserved bits", (unsigned)k,
                             n->name, op->name);
    if ((int32_t)n_in < op->min_inputs || (op->max_inputs >= 0 && (int32_t)n_in > op->max_inputs) ||
        (int32_t)n_out < op->min_outputs ||
        (op->max_outputs >= 0 && (int32_t)n_out > op->max_outputs))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s) has %u inputs and %u outputs, which the op "
                             "does not accept",
                             (unsigned)k, n->name, op->name, (unsigned)n_in, (unsigned)n_out);
    if (n_in + n_out > in->max_node_io)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s) has %u inputs and outputs, more than the "
                             "header's maximum %u",
                             (unsigned)k, n->name, op->name, (unsigned)(n_in + n_out),
                             (unsigned)in->max_node_io);
    /* Params: a 256-byte slot whose bytes past params_len are zero, or none. */
    if (params_len > EVO_PARAMS_MAX)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s) has %u bytes of params, more than %d",
                             (unsigned)k, n->name, op->name, (unsigned)params_len, EVO_PARAMS_MAX);
    if (slot == EVO_EVM_NONE) {
        if (params_len != 0)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s) has %u bytes of params but no slot",
                                 (unsigned)k, n->name, op->name, (unsigned)params_len);
        n->params = evm_zero_params;
    } else {
        if (slot >= in->n_params)
            return evo_error_set(
                c->err, EVO_ERR_PARSE, ".evm: node %u '%s' (%s) refers to params slot %u of %u",
                (unsigned)k, n->name, op->name, (unsigned)slot, (unsigned)in->n_params);
        const unsigned char *p = c->b + in->params_off + (uint64_t)slot * EVO_PARAMS_MAX;
        for (uint32_t i = params_len; i < EVO_PARAMS_MAX; i++)
            if (p[i] != 0)
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     ".evm: node %u '%s' (%s): params slot %u has data past its "
                                     "stated length %u",
                                     (unsigned)k, n->name, op->name, (unsigned)slot,
                                     (unsigned)params_len);
        n->params = p;
    }
    /* Index lists: inside the pool, after the input/output bindings. */
    uint64_t first_node_index = (uint64_t)in->n_inputs + in->n_outputs;
    if (io_first < first_node_index || !evm_fits(io_first, (uint64_t)n_in + n_out, in->n_indices))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s): its %u index entries at %u lie outside "
                             "the node part of the %u-entry index pool",
                             (unsigned)k, n->name, op->name, (unsigned)(n_in + n_out),
                             (unsigned)io_first, (unsigned)in->n_indices);
    n->n_in = (int32_t)n_in;
    n->n_out = (int32_t)n_out;
    n->in = c->indices + io_first;
    n->out = c->indices + io_first + n_in;
    for (uint32_t i = 0; i < n_in + n_out; i++) {
        bool is_in = i < n_in;
        int32_t t = c->indices[io_first + i];
        if (t == -1)
            continue;
        if (t < 0 || (uint32_t)t >= in->n_tensors)
            return evo_error_set(
                c->err, EVO_ERR_PARSE, ".evm: node %u '%s' (%s): %s %u refers to tensor %ld of %u",
                (unsigned)k, n->name, op->name, is_in ? "input" : "output",
                (unsigned)(is_in ? i : i - n_in), (long)t, (unsigned)in->n_tensors);
        const evo_prog_tensor *pt = &c->tensors[t];
        if (is_in && !evm_is_defined(c, t))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s) reads tensor %ld '%s' before any node "
                                 "writes it",
                                 (unsigned)k, n->name, op->name, (long)t, pt->name);
        if (!is_in && (pt->flags & (EVO_PT_CONST | EVO_PT_INPUT)))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s) writes tensor %ld '%s', which is a %s",
                                 (unsigned)k, n->name, op->name, (long)t, pt->name,
                                 (pt->flags & EVO_PT_CONST) ? "constant" : "graph input");
    }
    n->scratch_offset = evm_rd64(r + 24);
    n->scratch_bytes = evm_rd64(r + 32);
    if (n->scratch_bytes > 0 &&
        (n->scratch_offset % EVO_ARENA_ALIGN != 0 ||
         !evm_fits(n->scratch_offset, n->scratch_bytes, in->activation_bytes)))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             ".evm: node %u '%s' (%s): scratch at %llu (+%llu bytes) is misaligned "
                             "or outside the %llu-byte activation area",
                             (unsigned)k, n->name, op->name, (unsigned long long)n->scratch_offset,
                             (unsigned long long)n->scratch_bytes,
                             (unsigned long long)in->activation_bytes);
    if (n->scratch_bytes == 0)
        n->scratch_offset = 0;
    return EVO_OK;
}

static bool evm_span_less(const evm_span *a, const evm_span *b)
{
    return a->start < b->start || (a->start == b->start && a->end < b->end);
}

/* Heapsort by start: no recursion, no allocation, O(n log n) whatever n. */
static void evm_sort_spans(evm_span *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        for (size_t r = i;;) {
            size_t c = 2 * r + 1;
            if (c >= n)
                break;
            if (c + 1 < n && evm_span_less(&v[c], &v[c + 1]))
                c++;
            if (!evm_span_less(&v[r], &v[c]))
                break;
            evm_span t = v[r];
            v[r] = v[c];
            v[c] = t;
            r = c;
        }
    for (size_t end = n; end-- > 1;) {
        evm_span t = v[0];
        v[0] = v[end];
        v[end] = t;
        for (size_t r = 0;;) {
            size_t c = 2 * r + 1;
            if (c >= end)
                break;
            if (c + 1 < end && evm_span_less(&v[c], &v[c + 1]))
                c++;
            if (!evm_span_less(&v[r], &v[c]))
                break;
            t = v[r];
            v[r] = v[c];
            v[c] = t;
            r = c;
        }
    }
}

/* What node k writes (outputs, scratch) must not overlap anything else it
 * touches in the arena; inputs may share bytes with each other. The one
 * exception is the planner's in-place reuse: an EVO_OP_INPLACE op's output 0
 * exactly on input 0. (Tensors of different steps share bytes by design;
 * that is the memory plan.) */
static evo_status evm_check_node_overlap(const evm_ctx *c, uint32_t k)
{
    const evo_prog_node *n = &c->nodes[k];
    int32_t alias = -1; /* input 0's tensor when output 0 sits exactly on it */
    if ((n->op->flags & EVO_OP_INPLACE) && n->n_in > 0 && n->n_out > 0 && n->in[0] >= 0 &&
        n->out[0] >= 0) {
        const evo_prog_tensor *a = &c->tensors[n->in[0]], *b = &c->tensors[n->out[0]];
        if (!((a->flags | b->flags) & EVO_PT_CONST) && a->arena_offset == b->arena_offset &&
            a->nbytes == b->nbytes)
            alias = n->in[0];
    }
    size_t m = 0;
    for (int32_t i = 0; i < n->n_in + n->n_out; i++) {
        bool write = i >= n->n_in;
        int32_t t = write ? n->out[i - n->n_in] : n->in[i];
        if (t < 0 || (c->tensors[t].flags & EVO_PT_CONST) || c->tensors[t].nbytes == 0 ||
            (!write && t == alias))
            continue;
        const evo_prog_tensor *pt = &c->tensors[t];
        c->spans[m++] = (evm_span){pt->arena_offset, pt->arena_offset + pt->nbytes, write};
    }
    if (n->scratch_bytes > 0)
        c->spans[m++] = (evm_span){n->scratch_offset, n->scratch_offset + n->scratch_bytes, 1};
    evm_sort_spans(c->spans, m);
    uint64_t end_any = 0, end_write = 0;
    for (size_t i = 0; i < m; i++) {
        const evm_span *sp = &c->spans[i];
        if (sp->start < (sp->write ? end_any : end_write))
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s): the arena bytes it writes at %llu "
                                 "overlap other tensors or scratch of the same node",
                                 (unsigned)k, n->name, n->op->name, (unsigned long long)sp->start);
        if (sp->end > end_any)
            end_any = sp->end;
        if (sp->write && sp->end > end_write)
            end_write = sp->end;
    }
    return EVO_OK;
}

/* Node k's op re-infers its outputs from the stored inputs; they must be
 * exactly the stored ones, and its scratch need must fit. */
static evo_status evm_reinfer_node(const evm_ctx *c, uint32_t k)
{
    const evo_prog_node *n = &c->nodes[k];
    int32_t n_io = n->n_in + n->n_out;
    for (int32_t i = 0; i < n_io; i++) {
        int32_t t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (t < 0) {
            c->ptrs[i] = NULL;
            continue;
        }
        const evo_prog_tensor *pt = &c->tensors[t];
        evo_tensor *v = &c->views[i];
        memset(v, 0, sizeof *v);
        if (i < n->n_in) {
            v->dtype = pt->dtype;
            v->shape = pt->shape;
            v->data = (void *)(uintptr_t)pt->const_data; /* infer only reads it */
        }
        c->ptrs[i] = v;
    }
    evo_kctx kc = {.params = n->params,
                   .in = c->ptrs,
                   .n_in = n->n_in,
                   .out = c->ptrs + n->n_in,
                   .n_out = n->n_out,
                   .err = c->err};
    /* a file may mark a required input or output absent (-1) */
    evo_status st = evo_op_check_arity(n->op, &kc);
    if (st == EVO_OK)
        st = n->op->infer(&kc);
    if (st != EVO_OK) {
        evo_error_prefix(c->err, ".evm: node %u '%s' (%s) does not infer", (unsigned)k, n->name,
                         n->op->name);
        return st;
    }
    for (int32_t i = 0; i < n->n_out; i++) {
        int32_t t = n->out[i];
        if (t < 0)
            continue;
        const evo_prog_tensor *pt = &c->tensors[t];
        const evo_tensor *v = c->ptrs[n->n_in + i];
        if (v->dtype != pt->dtype || !evo_shape_equal(&v->shape, &pt->shape)) {
            char got[96], want[96];
            evo_shape_format(&v->shape, got, sizeof got);
            evo_shape_format(&pt->shape, want, sizeof want);
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s): output %ld is %s %s by inference but "
                                 "tensor %ld '%s' is stored as %s %s",
                                 (unsigned)k, n->name, n->op->name, (long)i,
                                 evo_dtype_name(v->dtype), got, (long)t, pt->name,
                                 evo_dtype_name(pt->dtype), want);
        }
    }
    if (n->op->scratch != NULL) {
        /* The output views now carry the stored dtypes and shapes. */
        size_t need = n->op->scratch(&kc);
        if ((uint64_t)need > n->scratch_bytes)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 ".evm: node %u '%s' (%s) needs %zu scratch bytes but has %llu",
                                 (unsigned)k, n->name, n->op->name, need,
                                 (unsigned long long)n->scratch_bytes);
    }
    for (int32_t i = 0; i < n->n_out; i++)
        if (n->out[i] >= 0)
            evm_set_bit(c->defined, n->out[i]);
    return EVO_OK;
}

evo_status evo_evm_load(const void *blob, size_t len, const evo_evm_load_options *opt, void *work,
                        size_t work_bytes, evo_program *out, evo_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (blob == NULL || out == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, ".evm: no blob or no result");
    uint32_t flags = opt != NULL ? opt->flags : 0;
    if ((flags & ~(uint32_t)EVO_EVM_SKIP_DIGEST) != 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, ".evm: unknown load flags 0x%x",
                             (unsigned)flags);
    if (!(flags & EVO_EVM_SKIP_DIGEST) && (opt == NULL || opt->sha256 == NULL))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             ".evm: no SHA-256 function given; pass one or EVO_EVM_SKIP_DIGEST");
    /* Weights and params are stored as little-endian memory images. */
    const union {
        uint16_t u;
        unsigned char b[2];
    } probe = {.u = 1};
    if (probe.b[0] != 1)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             ".evm: weights and params are little-endian; this host is not");
    if ((uintptr_t)blob % EVO_EVM_MIN_ALIGN != 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             ".evm: the blob must start at an address aligned to %u bytes",
                             (unsigned)EVO_EVM_MIN_ALIGN);
    evo_evm_info info;
    evo_status st = evo_evm_read_header(blob, len, &info, err);
    if (st != EVO_OK)
        return st;
    evm_work_layout l;
    if (!evm_work_layout_of(&info, &l))
        return evo_error_set(err, EVO_ERR_LIMIT, ".evm: the program tables do not fit in memory");
    if (work == NULL || work_bytes < l.total || (uintptr_t)work % 8 != 0)
        return evo_error_set(err, EVO_ERR_NOMEM,
                             ".evm: the work buffer must be 8-byte aligned and hold %zu bytes "
                             "(%zu given)",
                             l.total, work == NULL ? (size_t)0 : work_bytes);
    const unsigned char *b = blob;
    if (!(flags & EVO_EVM_SKIP_DIGEST)) {
        uint8_t d[EVO_EVM_DIGEST_BYTES];
        opt->sha256(b + EVO_EVM_DIGEST_FROM, len - EVO_EVM_DIGEST_FROM, d, opt->sha256_user);
        if (memcmp(d, info.digest, EVO_EVM_DIGEST_BYTES) != 0)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 ".evm: SHA-256 digest mismatch: the file is corrupt or was "
                                 "modified after it was written");
    }
    if (info.string_bytes > 0 && b[info.strings_off + info.string_bytes - 1] != '\0')
        return evo_error_set(err, EVO_ERR_PARSE,
                             ".evm: the string table does not end with a NUL byte");

    unsigned char *w = work;
    memset(w, 0, l.total);
    evm_ctx c = {.b = b,
                 .info = &info,
                 .err = err,
                 .tensors = (evo_prog_tensor *)(void *)(w + l.tensors),
                 .nodes = (evo_prog_node *)(void *)(w + l.nodes),
                 .indices = (int32_t *)(void *)(w + l.indices),
                 .views = (evo_tensor *)(void *)(w + l.views),
                 .ptrs = (evo_tensor **)(void *)(w + l.ptrs),
                 .spans = (evm_span *)(void *)(w + l.spans),
                 .defined = w + l.defined,
                 .listed = w + l.listed};
    for (uint32_t i = 0; i < info.n_indices; i++)
        c.indices[i] = (int32_t)evm_rd32(b + info.indices_off + 4 * (uint64_t)i);

    if ((st = evm_check_ops(&c)) != EVO_OK || (st = evm_decode_tensors(&c)) != EVO_OK ||
        (st = evm_check_bindings(&c)) != EVO_OK)
        return st;
    for (uint32_t k = 0; k < info.n_nodes; k++)
        if ((st = evm_decode_node(&c, k)) != EVO_OK ||
            (st = evm_check_node_overlap(&c, k)) != EVO_OK ||
            (st = evm_reinfer_node(&c, k)) != EVO_OK)
            return st;
    for (uint32_t k = 0; k < info.n_outputs; k++) {
        int32_t t = c.indices[info.n_inputs + k];
        if (!evm_is_defined(&c, t))
            return evo_error_set(err, EVO_ERR_PARSE,
                                 ".evm: graph output %u (tensor %ld '%s') is never computed",
                                 (unsigned)k, (long)t, c.tensors[t].name);
    }

    out->n_tensors = (int32_t)info.n_tensors;
    out->tensors = c.tensors;
    out->n_nodes = (int32_t)info.n_nodes;
    out->nodes = c.nodes;
    out->n_inputs = (int32_t)info.n_inputs;
    out->n_outputs = (int32_t)info.n_outputs;
    out->inputs = c.indices;
    out->outputs = c.indices + info.n_inputs;
    out->activation_bytes = info.activation_bytes;
    out->activation_lower_bound = info.activation_lower_bound;
    out->weights_bytes = info.weights_bytes;
    out->owner_ = NULL;
    return EVO_OK;
}
