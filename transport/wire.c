/*
 * The evo wire format: header plus tagged fields (docs/protocol.md).
 *
 * The encoder runs the same code twice, first counting bytes and then
 * writing them, so the size a sender allocates always matches what is written
 * (tensor payload alignment depends on absolute offsets). The decoder walks
 * the body once to validate every field length and count the tensors and
 * timings, checks those counts against the limits, allocates, and walks again
 * to fill the message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "tp_internal.h"

void evo_tp_limits_default(evo_tp_limits *lim)
{
    lim->max_body = 256ull << 20;
    lim->max_tensor_bytes = 256ull << 20;
    lim->max_tensors = 256;
    lim->max_fields = 4096;
    lim->max_timings = 256;
    lim->max_quant_channels = 65536;
}

const char *evo_msg_type_name(uint32_t type)
{
    static const char *const names[] = {"unknown", "register", "heartbeat", "deploy", "run",
                                        "tensors", "result",   "error",     "ack"};
    return type < EVO_MSG_TYPE_END_ ? names[type] : "unknown";
}

const char *evo_encoding_name(evo_encoding enc)
{
    switch (enc) {
    case EVO_ENC_RAW:
        return "raw";
    case EVO_ENC_FP16:
        return "fp16";
    case EVO_ENC_INT8:
        return "int8";
    default:
        return "unknown";
    }
}

const char *evo_compress_name(evo_compress comp)
{
    switch (comp) {
    case EVO_COMP_NONE:
        return "none";
    case EVO_COMP_ZSTD:
        return "zstd";
    case EVO_COMP_LZ4:
        return "lz4";
    default:
        return "unknown";
    }
}

void evo_sha256(const void *data, size_t len, uint8_t out[EVO_WIRE_DIGEST_SIZE])
{
    mbedtls_sha256_ret((const unsigned char *)data, len, out, 0);
}

void evo_msg_init(evo_msg *m, evo_msg_type type)
{
    memset(m, 0, sizeof *m);
    m->type = (uint32_t)type;
}

void evo_msg_release(evo_msg *m)
{
    if (!m)
        return;
    struct evo_msg_storage_ *s = m->storage_;
    if (s) {
        free(s->tensors);
        free(s->timings);
        if (s->buf && s->buf_free)
            s->buf_free(s->buf);
        free(s);
    }
    memset(m, 0, sizeof *m);
}

void tp_msg_adopt_buffer(evo_msg *m, void *buf, void (*fn)(void *buf))
{
    /* evo_wire_decode always leaves storage on success */
    m->storage_->buf = buf;
    m->storage_->buf_free = fn;
}

static void tp_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void evo_msg_set_error(evo_msg *m, uint64_t request_id, const evo_error *e)
{
    evo_msg_init(m, EVO_MSG_ERROR);
    m->request_id = request_id;
    m->u.error.status = e ? (uint32_t)e->code : (uint32_t)EVO_ERR_INTERNAL;
    tp_copy_str(m->u.error.message, sizeof m->u.error.message, e ? e->msg : "unknown error");
}

/* ---------------------------------------------------------------- encoder */

typedef struct tp_writer {
    uint8_t *p; /* NULL while only counting */
    size_t pos; /* offset in the encoded message */
    /* Scatter mode (refs != NULL): tensor payloads of at least min_ref bytes
     * are left out of p and listed in refs, to be sent from the caller's
     * memory; skipped counts their bytes, so p holds pos - skipped bytes. */
    tp_wire_ref *refs;
    uint32_t n_refs, max_refs;
    size_t min_ref, skipped;
} tp_writer;

/* Offset in p of message offset pos (before the refs that start at or after
 * it were left out). */
static size_t tp_buf_off(const tp_writer *w, size_t pos)
{
    size_t off = pos;
    for (uint32_t i = 0; i < w->n_refs; i++)
        if (w->refs[i].at + w->refs[i].skipped_before < pos)
            off -= w->refs[i].len;
    return off;
}

static void tp_put(tp_writer *w, const void *src, size_t n)
{
    if (w->p && n)
        memcpy(w->p + (w->pos - w->skipped), src, n);
    w->pos += n;
}

static size_t tp_field_begin(tp_writer *w, uint16_t tag)
{
    size_t at = w->pos;
    if (w->p) {
        uint8_t *h = w->p + (at - w->skipped);
        tp_wr16(h, tag);
        tp_wr16(h + 2, 0);
        tp_wr32(h + 4, 0);
    }
    w->pos += TP_FIELD_HDR;
    return at;
}

static void tp_field_end(tp_writer *w, size_t at)
{
    if (w->p)
        tp_wr32(w->p + tp_buf_off(w, at) + 4, (uint32_t)(w->pos - at - TP_FIELD_HDR));
}

static void tp_field_bytes(tp_writer *w, uint16_t tag, const void *v, size_t n)
{
    size_t at = tp_field_begin(w, tag);
    tp_put(w, v, n);
    tp_field_end(w, at);
}

/* A tensor payload: copied, or in scatter mode referenced if large enough. */
static void tp_field_payload(tp_writer *w, const void *v, size_t n)
{
    size_t at = tp_field_begin(w, TP_TT_PAYLOAD);
    if (w->refs && n && n >= w->min_ref && w->n_refs < w->max_refs) {
        tp_wire_ref *r = &w->refs[w->n_refs++];
        r->at = w->pos - w->skipped;
        r->skipped_before = w->skipped;
        r->p = v;
        r->len = n;
        w->pos += n;
        w->skipped += n;
    } else {
        tp_put(w, v, n);
    }
    tp_field_end(w, at);
}

static void tp_field_u32(tp_writer *w, uint16_t tag, uint32_t v)
{
    uint8_t b[4];
    tp_wr32(b, v);
    tp_field_bytes(w, tag, b, 4);
}

static void tp_field_u64(tp_writer *w, uint16_t tag, uint64_t v)
{
    uint8_t b[8];
    tp_wr64(b, v);
    tp_field_bytes(w, tag, b, 8);
}

static void tp_field_str(tp_writer *w, uint16_t tag, const char *s, size_t cap)
{
    tp_field_bytes(w, tag, s, strnlen(s, cap - 1));
}

/* Pad so that the value of the next field starts TP_PAYLOAD_ALIGN-aligned. */
static void tp_align_next_value(tp_writer *w)
{
    size_t need =
        (TP_PAYLOAD_ALIGN - (w->pos + TP_FIELD_HDR) % TP_PAYLOAD_ALIGN) % TP_PAYLOAD_ALIGN;
    if (need == 0)
        return;
    if (need < TP_FIELD_HDR)
        need += TP_PAYLOAD_ALIGN;
    size_t at = tp_field_begin(w, TP_TAG_PAD);
    if (w->p)
        memset(w->p + (w->pos - w->skipped), 0, need - TP_FIELD_HDR);
    w->pos += need - TP_FIELD_HDR;
    tp_field_end(w, at);
}

static evo_status tp_check_tensor(const evo_wire_tensor *t, uint32_t i, evo_error *err)
{
    if (t->shape.rank < 0 || t->shape.rank > EVO_MAX_RANK)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "tensor %u has rank %d", i,
                             (int)t->shape.rank);
    if ((t->payload_len && !t->payload) || t->payload_len > UINT32_MAX - 4096)
        return evo_error_set(err, EVO_ERR_LIMIT,
                             "tensor %u payload of %llu bytes is missing or exceeds 4 GiB", i,
                             (unsigned long long)t->payload_len);
    if (t->encoding == EVO_ENC_INT8 && t->quant_count && !t->quant)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "tensor %u lacks its int8 scales", i);
    if ((uint64_t)t->quant_count * TP_QUANT_REC > UINT32_MAX - 16)
        return evo_error_set(err, EVO_ERR_LIMIT, "tensor %u has too many scales", i);
    return EVO_OK;
}

static void tp_write_tensor(tp_writer *w, const evo_wire_tensor *t)
{
    size_t at = tp_field_begin(w, TP_TAG_TENSOR);
    if (t->name[0])
        tp_field_str(w, TP_TT_NAME, t->name, sizeof t->name);
    tp_field_u32(w, TP_TT_INDEX, (uint32_t)t->index);
    tp_field_u32(w, TP_TT_DTYPE, (uint32_t)t->dtype);
    {
        size_t s = tp_field_begin(w, TP_TT_SHAPE);
        for (int32_t d = 0; d < t->shape.rank; d++) {
            uint8_t b[4];
            tp_wr32(b, (uint32_t)t->shape.dims[d]);
            tp_put(w, b, 4);
        }
        tp_field_end(w, s);
    }
    if (t->encoding != EVO_ENC_RAW)
        tp_field_u32(w, TP_TT_ENCODING, (uint32_t)t->encoding);
    if (t->compress != EVO_COMP_NONE)
        tp_field_u32(w, TP_TT_COMPRESS, (uint32_t)t->compress);
    if (t->encoding == EVO_ENC_INT8) {
        size_t q = tp_field_begin(w, TP_TT_QUANT);
        uint8_t b[8];
        tp_wr32(b, (uint32_t)t->quant_axis);
        tp_wr32(b + 4, t->quant_count);
        tp_put(w, b, 8);
        tp_put(w, t->quant, (size_t)t->quant_count * TP_QUANT_REC);
        tp_field_end(w, q);
    }
    tp_field_u64(w, TP_TT_ENCODED_LEN, t->encoded_len);
    tp_align_next_value(w);
    tp_field_payload(w, t->payload, (size_t)t->payload_len);
    tp_field_end(w, at);
}

static evo_status tp_write_msg(const evo_msg *m, tp_writer *w, evo_error *err)
{
    evo_status rv;
    if (m->type == 0 || m->type >= EVO_MSG_TYPE_END_)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "cannot encode message type %u", m->type);
    if ((m->n_tensors && !m->tensors) || (m->n_timings && !m->timings))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "message arrays are NULL");
    size_t hdr = w->pos;
    w->pos += EVO_WIRE_HEADER_SIZE;
    switch ((evo_msg_type)m->type) {
    case EVO_MSG_REGISTER: {
        const evo_msg_register *r = &m->u.reg;
        uint64_t g;
        memcpy(&g, &r->gflops, 8);
        tp_field_str(w, TP_TAG_NAME, r->name, sizeof r->name);
        tp_field_str(w, TP_TAG_CLASS, r->device_class, sizeof r->device_class);
        tp_field_str(w, TP_TAG_LISTEN_URL, r->listen_url, sizeof r->listen_url);
        tp_field_u64(w, TP_TAG_MEMORY, r->memory_bytes);
        tp_field_u64(w, TP_TAG_FLASH, r->flash_bytes);
        tp_field_u64(w, TP_TAG_GFLOPS, g);
        tp_field_u32(w, TP_TAG_ROLE, r->role);
        break;
    }
    case EVO_MSG_HEARTBEAT: {
        const evo_msg_heartbeat *h = &m->u.heartbeat;
        tp_field_str(w, TP_TAG_NAME, h->name, sizeof h->name);
        tp_field_u64(w, TP_TAG_UPTIME, h->uptime_ms);
        tp_field_u64(w, TP_TAG_FREE_MEMORY, h->free_memory_bytes);
        tp_field_u64(w, TP_TAG_TIMESTAMP, h->timestamp_ns);
        tp_field_u32(w, TP_TAG_LOAD, h->load_permille);
        break;
    }
    case EVO_MSG_DEPLOY: {
        const evo_msg_deploy *d = &m->u.deploy;
        if (d->blob_len && (!d->blob || d->blob_len != d->blob_size))
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "deploy blob of %llu bytes does not match blob_size %llu",
                                 (unsigned long long)d->blob_len, (unsigned long long)d->blob_size);
        if (d->blob_len > UINT32_MAX - 64)
            return evo_error_set(err, EVO_ERR_LIMIT, "deploy blob exceeds 4 GiB");
        tp_field_str(w, TP_TAG_NAME, d->model, sizeof d->model);
        tp_field_bytes(w, TP_TAG_DIGEST, d->digest, EVO_WIRE_DIGEST_SIZE);
        tp_field_u64(w, TP_TAG_BLOB_SIZE, d->blob_size);
        tp_field_u32(w, TP_TAG_STAGE, d->stage);
        if (d->blob_len)
            tp_field_bytes(w, TP_TAG_BLOB, d->blob, (size_t)d->blob_len);
        break;
    }
    case EVO_MSG_RUN:
        tp_field_str(w, TP_TAG_NAME, m->u.run.model, sizeof m->u.run.model);
        tp_field_u32(w, TP_TAG_STAGE, m->u.run.stage);
        break;
    case EVO_MSG_TENSORS:
        tp_field_u32(w, TP_TAG_STAGE, m->u.tensors.stage);
        break;
    case EVO_MSG_RESULT:
        tp_field_u32(w, TP_TAG_STATUS, m->u.result.status);
        for (uint32_t i = 0; i < m->n_timings; i++) {
            const evo_stage_timing *t = &m->timings[i];
            uint8_t b[TP_TIMING_SIZE];
            tp_wr32(b, t->stage);
            tp_wr32(b + 4, 0);
            tp_wr64(b + 8, t->queue_ns);
            tp_wr64(b + 16, t->compute_ns);
            tp_wr64(b + 24, t->transfer_ns);
            tp_field_bytes(w, TP_TAG_TIMING, b, sizeof b);
        }
        break;
    case EVO_MSG_ERROR:
        tp_field_u32(w, TP_TAG_STATUS, m->u.error.status);
        tp_field_str(w, TP_TAG_MESSAGE, m->u.error.message, sizeof m->u.error.message);
        break;
    case EVO_MSG_ACK:
        tp_field_u64(w, TP_TAG_VALUE, m->u.ack.value);
        break;
    default:
        break;
    }
    if (m->type == EVO_MSG_RUN || m->type == EVO_MSG_TENSORS || m->type == EVO_MSG_RESULT) {
        for (uint32_t i = 0; i < m->n_tensors; i++) {
            if ((rv = tp_check_tensor(&m->tensors[i], i, err)) != EVO_OK)
                return rv;
            tp_write_tensor(w, &m->tensors[i]);
        }
    } else if (m->n_tensors) {
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a %s message carries no tensors",
                             evo_msg_type_name(m->type));
    }
    if (w->p) {
        uint8_t *h = w->p + tp_buf_off(w, hdr);
        memcpy(h, EVO_WIRE_MAGIC, 4);
        tp_wr16(h + 4, EVO_WIRE_VERSION);
        tp_wr16(h + 6, (uint16_t)m->type);
        tp_wr32(h + 8, m->flags);
        tp_wr32(h + 12, m->sequence);
        tp_wr64(h + 16, m->request_id);
        tp_wr64(h + 24, (uint64_t)(w->pos - hdr - EVO_WIRE_HEADER_SIZE));
    }
    return EVO_OK;
}

evo_status evo_wire_encoded_size(const evo_msg *m, size_t *out, evo_error *err)
{
    tp_writer w = {NULL, 0, NULL, 0, 0, 0, 0};
    evo_status rv = tp_write_msg(m, &w, err);
    if (rv == EVO_OK)
        *out = w.pos;
    return rv;
}

evo_status evo_wire_encode(const evo_msg *m, void *buf, size_t cap, size_t *written, evo_error *err)
{
    size_t need;
    evo_status rv = evo_wire_encoded_size(m, &need, err);
    if (rv != EVO_OK)
        return rv;
    if (!buf || cap < need)
        return evo_error_set(err, EVO_ERR_NOMEM,
                             "encoding a %s message needs %zu bytes, buffer has %zu",
                             evo_msg_type_name(m->type), need, cap);
    tp_writer w = {(uint8_t *)buf, 0, NULL, 0, 0, 0, 0};
    rv = tp_write_msg(m, &w, err);
    if (rv == EVO_OK && written)
        *written = w.pos;
    return rv;
}

evo_status tp_wire_encode_refs(const evo_msg *m, size_t min_ref, tp_wire_ref *refs,
                               uint32_t max_refs, tp_wire_buf_fn get_buf, void *ctx,
                               tp_wire_scatter *out, evo_error *err)
{
    tp_writer w = {NULL, 0, refs, 0, max_refs, min_ref, 0};
    evo_status rv = tp_write_msg(m, &w, err);
    if (rv != EVO_OK)
        return rv;
    out->total = w.pos;
    out->buf_len = w.pos - w.skipped;
    uint8_t *buf = get_buf(ctx, out->buf_len);
    if (!buf)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory to encode a %zu byte %s message",
                             out->buf_len, evo_msg_type_name(m->type));
    tp_writer w2 = {buf, 0, refs, 0, max_refs, min_ref, 0};
    if ((rv = tp_write_msg(m, &w2, err)) != EVO_OK)
        return rv;
    out->buf = buf;
    out->n_refs = w2.n_refs;
    return EVO_OK;
}

/* ---------------------------------------------------------------- decoder */

typedef struct tp_field {
    uint16_t tag;
    uint16_t flags;
    uint32_t len;
    const uint8_t *v;
} tp_field;

typedef struct tp_reader {
    const uint8_t *p;
    size_t len, pos;
    uint32_t count;
} tp_reader;

/* Next field, with its length checked against what remains. Returns 1 with a
 * field, 0 at the end, or -1 (err set) on a malformed field. */
static int tp_next(tp_reader *r, tp_field *f, uint32_t max_fields, const char *where,
                   evo_error *err)
{
    if (r->pos == r->len)
        return 0;
    if (r->len - r->pos < TP_FIELD_HDR) {
        evo_error_set(err, EVO_ERR_PARSE, "%s: truncated field header at byte %zu", where, r->pos);
        return -1;
    }
    if (++r->count > max_fields) {
        evo_error_set(err, EVO_ERR_LIMIT, "%s: more than %u fields", where, max_fields);
        return -1;
    }
    const uint8_t *h = r->p + r->pos;
    f->tag = tp_rd16(h);
    f->flags = tp_rd16(h + 2);
    f->len = tp_rd32(h + 4);
    if (f->len > r->len - r->pos - TP_FIELD_HDR) {
        evo_error_set(err, EVO_ERR_PARSE,
                      "%s: field %u at byte %zu claims %u bytes but only %zu remain", where, f->tag,
                      r->pos, f->len, r->len - r->pos - TP_FIELD_HDR);
        return -1;
    }
    f->v = h + TP_FIELD_HDR;
    r->pos += TP_FIELD_HDR + (size_t)f->len;
    return 1;
}

static evo_status tp_need_len(const tp_field *f, uint32_t len, const char *where, evo_error *err)
{
    if (f->len != len)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: field %u has %u bytes, expected %u", where,
                             f->tag, f->len, len);
    return EVO_OK;
}

static evo_status tp_get_str(const tp_field *f, char *dst, size_t cap, const char *where,
                             evo_error *err)
{
    if (f->len >= cap)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: string field %u of %u bytes exceeds %zu",
                             where, f->tag, f->len, cap - 1);
    if (memchr(f->v, 0, f->len))
        return evo_error_set(err, EVO_ERR_PARSE, "%s: string field %u contains a NUL byte", where,
                             f->tag);
    memcpy(dst, f->v, f->len);
    dst[f->len] = '\0';
    return EVO_OK;
}

static evo_status tp_unknown(const tp_field *f, const char *where, evo_error *err)
{
    if (f->flags & TP_FIELD_CRITICAL)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: unknown critical field %u (newer protocol?)", where, f->tag);
    return EVO_OK; /* newer optional field: skip */
}

#define TP_GET_U32(f, dst, where)                                                                  \
    do {                                                                                           \
        if ((rv = tp_need_len((f), 4, (where), err)) != EVO_OK)                                    \
            return rv;                                                                             \
        (dst) = tp_rd32((f)->v);                                                                   \
    } while (0)
#define TP_GET_U64(f, dst, where)                                                                  \
    do {                                                                                           \
        if ((rv = tp_need_len((f), 8, (where), err)) != EVO_OK)                                    \
            return rv;                                                                             \
        (dst) = tp_rd64((f)->v);                                                                   \
    } while (0)

static evo_status tp_read_tensor(const tp_field *tf, const evo_tp_limits *lim, uint32_t idx,
                                 evo_wire_tensor *t, evo_error *err)
{
    char where[48];
    snprintf(where, sizeof where, "tensor %u", idx);
    tp_reader r = {tf->v, tf->len, 0, 0};
    tp_field f;
    int k;
    evo_status rv;
    bool have_dtype = false, have_shape = false, have_payload = false, have_enc_len = false;
    uint32_t u;
    memset(t, 0, sizeof *t);
    t->index = -1;
    t->quant_axis = -1;
    while ((k = tp_next(&r, &f, lim->max_fields, where, err)) > 0) {
        switch (f.tag) {
        case TP_TT_PAD:
            break;
        case TP_TT_NAME:
            if ((rv = tp_get_str(&f, t->name, sizeof t->name, where, err)) != EVO_OK)
                return rv;
            break;
        case TP_TT_INDEX:
            TP_GET_U32(&f, u, where);
            t->index = (int32_t)u;
            if (t->index < -1)
                return evo_error_set(err, EVO_ERR_PARSE, "%s: index %d is negative", where,
                                     (int)t->index);
            break;
        case TP_TT_DTYPE:
            TP_GET_U32(&f, u, where);
            if (u >= EVO_DT_COUNT_ || evo_dtype_size((evo_dtype)u) == 0)
                return evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: dtype %u cannot travel", where,
                                     u);
            t->dtype = (evo_dtype)u;
            have_dtype = true;
            break;
        case TP_TT_SHAPE:
            if (f.len % 4 || f.len / 4 > EVO_MAX_RANK)
                return evo_error_set(err, EVO_ERR_LIMIT,
                                     "%s: shape of %u bytes is not a rank <= %d", where, f.len,
                                     EVO_MAX_RANK);
            t->shape.rank = (int32_t)(f.len / 4);
            for (int32_t d = 0; d < t->shape.rank; d++) {
                u = tp_rd32(f.v + 4 * d);
                if (u > (uint32_t)EVO_MAX_DIM)
                    return evo_error_set(err, EVO_ERR_LIMIT, "%s: dimension %d is %u", where,
                                         (int)d, u);
                t->shape.dims[d] = (int32_t)u;
            }
            have_shape = true;
            break;
        case TP_TT_ENCODING:
            TP_GET_U32(&f, u, where);
            if (u >= EVO_ENC_END_)
                return evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: unknown encoding %u", where, u);
            t->encoding = (evo_encoding)u;
            break;
        case TP_TT_COMPRESS:
            TP_GET_U32(&f, u, where);
            if (u >= EVO_COMP_END_)
                return evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s: unknown compressor %u", where,
                                     u);
            t->compress = (evo_compress)u;
            break;
        case TP_TT_QUANT:
            if (f.len < 8)
                return evo_error_set(err, EVO_ERR_PARSE, "%s: quantisation field truncated", where);
            t->quant_axis = (int32_t)tp_rd32(f.v);
            t->quant_count = tp_rd32(f.v + 4);
            if (t->quant_count > lim->max_quant_channels)
                return evo_error_set(err, EVO_ERR_LIMIT, "%s: %u int8 scales exceed limit %u",
                                     where, t->quant_count, lim->max_quant_channels);
            if ((uint64_t)f.len != 8 + (uint64_t)t->quant_count * TP_QUANT_REC)
                return evo_error_set(
                    err, EVO_ERR_PARSE, "%s: %u int8 scales need %llu bytes, field has %u", where,
                    t->quant_count, (unsigned long long)(8 + (uint64_t)t->quant_count * 8), f.len);
            t->quant = f.v + 8;
            break;
        case TP_TT_ENCODED_LEN:
            TP_GET_U64(&f, t->encoded_len, where);
            have_enc_len = true;
            break;
        case TP_TT_PAYLOAD:
            t->payload = f.v;
            t->payload_len = f.len;
            have_payload = true;
            break;
        default:
            if ((rv = tp_unknown(&f, where, err)) != EVO_OK)
                return rv;
        }
    }
    if (k < 0)
        return err ? err->code : EVO_ERR_PARSE;
    if (!have_dtype || !have_shape || !have_payload)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: missing %s", where,
                             !have_dtype   ? "dtype"
                             : !have_shape ? "shape"
                                           : "payload");
    if (!t->name[0] && t->index < 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: has neither name nor index", where);

    int64_t numel = evo_shape_numel(&t->shape);
    size_t nbytes;
    if (numel < 0 || evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK ||
        nbytes > lim->max_tensor_bytes)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: %s tensor exceeds the %llu byte limit", where,
                             evo_dtype_name(t->dtype), (unsigned long long)lim->max_tensor_bytes);
    uint64_t expect = nbytes;
    if (t->encoding != EVO_ENC_RAW) {
        if (t->dtype != EVO_DT_FLOAT32)
            return evo_error_set(err, EVO_ERR_TYPE, "%s: %s encoding of a %s tensor", where,
                                 evo_encoding_name(t->encoding), evo_dtype_name(t->dtype));
        expect = (uint64_t)numel * (t->encoding == EVO_ENC_FP16 ? 2u : 1u);
    }
    if (t->encoding == EVO_ENC_INT8) {
        uint32_t want_count = 1;
        if (!t->quant)
            return evo_error_set(err, EVO_ERR_PARSE, "%s: int8 tensor without scales", where);
        if (t->quant_axis != -1) {
            if (t->quant_axis < 0 || t->quant_axis >= t->shape.rank)
                return evo_error_set(err, EVO_ERR_SHAPE, "%s: quantisation axis %d of rank %d",
                                     where, (int)t->quant_axis, (int)t->shape.rank);
            want_count = (uint32_t)t->shape.dims[t->quant_axis];
        }
        if (t->quant_count != want_count)
            return evo_error_set(err, EVO_ERR_PARSE, "%s: %u int8 scales, expected %u", where,
                                 t->quant_count, want_count);
        for (uint32_t c = 0; c < t->quant_count; c++) {
            float s = tp_rdf32(t->quant + TP_QUANT_REC * c);
            int32_t zp = (int32_t)tp_rd32(t->quant + TP_QUANT_REC * c + 4);
            if (!(s > 0.0f && s < 3.0e38f) || zp < -128 || zp > 127)
                return evo_error_set(err, EVO_ERR_PARSE,
                                     "%s: int8 channel %u has scale %g zero point %d", where, c,
                                     (double)s, (int)zp);
        }
    } else if (t->quant) {
        t->quant = NULL;
        t->quant_count = 0;
    }
    if (have_enc_len && t->encoded_len != expect)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: declares %llu encoded bytes, shape needs %llu", where,
                             (unsigned long long)t->encoded_len, (unsigned long long)expect);
    t->encoded_len = expect;
    if (t->compress == EVO_COMP_NONE && t->payload_len != expect)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: payload has %llu bytes, shape needs %llu",
                             where, (unsigned long long)t->payload_len, (unsigned long long)expect);
    if (t->compress != EVO_COMP_NONE && t->payload_len == 0 && expect != 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: empty compressed payload", where);
    return EVO_OK;
}

evo_status tp_wire_peek_header(const void *buf, size_t len, const evo_tp_limits *lim,
                               uint64_t *body_len, evo_error *err)
{
    const uint8_t *p = (const uint8_t *)buf;
    if (!buf || len < EVO_WIRE_HEADER_SIZE)
        return evo_error_set(err, EVO_ERR_PARSE, "message of %zu bytes is shorter than the header",
                             len);
    if (memcmp(p, EVO_WIRE_MAGIC, 4) != 0)
        return evo_error_set(err, EVO_ERR_PARSE, "message does not start with the evo magic");
    uint16_t ver = tp_rd16(p + 4), type = tp_rd16(p + 6);
    if (ver != EVO_WIRE_VERSION)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "message has protocol version %u, this evo speaks %u", ver,
                             EVO_WIRE_VERSION);
    if (type == 0 || type >= EVO_MSG_TYPE_END_)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED, "unknown message type %u", type);
    *body_len = tp_rd64(p + 24);
    if (*body_len > lim->max_body)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s body of %llu bytes exceeds the %llu limit",
                             evo_msg_type_name(type), (unsigned long long)*body_len,
                             (unsigned long long)lim->max_body);
    return EVO_OK;
}

static evo_status tp_decode_body(const evo_tp_limits *lim, tp_reader *body, evo_msg *m,
                                 evo_error *err)
{
    const char *where = evo_msg_type_name(m->type);
    tp_reader r = *body;
    tp_field f;
    int k;
    evo_status rv;
    uint32_t nt = 0, ntim = 0;
    bool carries =
        m->type == EVO_MSG_RUN || m->type == EVO_MSG_TENSORS || m->type == EVO_MSG_RESULT;

    /* pass 1: lengths and counts */
    while ((k = tp_next(&r, &f, lim->max_fields, where, err)) > 0) {
        if (f.tag == TP_TAG_TENSOR && carries && ++nt > lim->max_tensors)
            return evo_error_set(err, EVO_ERR_LIMIT, "%s: more than %u tensors", where,
                                 lim->max_tensors);
        if (f.tag == TP_TAG_TIMING && m->type == EVO_MSG_RESULT && ++ntim > lim->max_timings)
            return evo_error_set(err, EVO_ERR_LIMIT, "%s: more than %u stage timings", where,
                                 lim->max_timings);
    }
    if (k < 0)
        return err ? err->code : EVO_ERR_PARSE;
    if (nt) {
        m->storage_->tensors = (evo_wire_tensor *)calloc(nt, sizeof(evo_wire_tensor));
        if (!m->storage_->tensors)
            return evo_error_set(err, EVO_ERR_NOMEM, "%s: no memory for %u tensors", where, nt);
        m->tensors = m->storage_->tensors;
    }
    if (ntim) {
        m->storage_->timings = (evo_stage_timing *)calloc(ntim, sizeof(evo_stage_timing));
        if (!m->storage_->timings)
            return evo_error_set(err, EVO_ERR_NOMEM, "%s: no memory for timings", where);
        m->timings = m->storage_->timings;
    }

    /* pass 2: values */
    r = *body;
    bool have_digest = false;
    while ((k = tp_next(&r, &f, lim->max_fields, where, err)) > 0) {
        switch ((evo_msg_type)m->type) {
        case EVO_MSG_REGISTER: {
            evo_msg_register *g = &m->u.reg;
            switch (f.tag) {
            case TP_TAG_NAME:
                rv = tp_get_str(&f, g->name, sizeof g->name, where, err);
                break;
            case TP_TAG_CLASS:
                rv = tp_get_str(&f, g->device_class, sizeof g->device_class, where, err);
                break;
            case TP_TAG_LISTEN_URL:
                rv = tp_get_str(&f, g->listen_url, sizeof g->listen_url, where, err);
                break;
            case TP_TAG_MEMORY:
                TP_GET_U64(&f, g->memory_bytes, where);
                break;
            case TP_TAG_FLASH:
                TP_GET_U64(&f, g->flash_bytes, where);
                break;
            case TP_TAG_GFLOPS: {
                uint64_t b;
                TP_GET_U64(&f, b, where);
                memcpy(&g->gflops, &b, 8);
                break;
            }
            case TP_TAG_ROLE:
                TP_GET_U32(&f, g->role, where);
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        }
        case EVO_MSG_HEARTBEAT: {
            evo_msg_heartbeat *h = &m->u.heartbeat;
            switch (f.tag) {
            case TP_TAG_NAME:
                rv = tp_get_str(&f, h->name, sizeof h->name, where, err);
                break;
            case TP_TAG_UPTIME:
                TP_GET_U64(&f, h->uptime_ms, where);
                break;
            case TP_TAG_FREE_MEMORY:
                TP_GET_U64(&f, h->free_memory_bytes, where);
                break;
            case TP_TAG_TIMESTAMP:
                TP_GET_U64(&f, h->timestamp_ns, where);
                break;
            case TP_TAG_LOAD:
                TP_GET_U32(&f, h->load_permille, where);
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        }
        case EVO_MSG_DEPLOY: {
            evo_msg_deploy *d = &m->u.deploy;
            switch (f.tag) {
            case TP_TAG_NAME:
                rv = tp_get_str(&f, d->model, sizeof d->model, where, err);
                break;
            case TP_TAG_DIGEST:
                if ((rv = tp_need_len(&f, EVO_WIRE_DIGEST_SIZE, where, err)) != EVO_OK)
                    return rv;
                memcpy(d->digest, f.v, EVO_WIRE_DIGEST_SIZE);
                have_digest = true;
                break;
            case TP_TAG_BLOB_SIZE:
                TP_GET_U64(&f, d->blob_size, where);
                break;
            case TP_TAG_STAGE:
                TP_GET_U32(&f, d->stage, where);
                break;
            case TP_TAG_BLOB:
                d->blob = f.v;
                d->blob_len = f.len;
                rv = EVO_OK;
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        }
        case EVO_MSG_RUN:
            switch (f.tag) {
            case TP_TAG_NAME:
                rv = tp_get_str(&f, m->u.run.model, sizeof m->u.run.model, where, err);
                break;
            case TP_TAG_STAGE:
                TP_GET_U32(&f, m->u.run.stage, where);
                break;
            case TP_TAG_TENSOR:
                rv = EVO_OK;
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        case EVO_MSG_TENSORS:
            switch (f.tag) {
            case TP_TAG_STAGE:
                TP_GET_U32(&f, m->u.tensors.stage, where);
                break;
            case TP_TAG_TENSOR:
                rv = EVO_OK;
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        case EVO_MSG_RESULT:
            switch (f.tag) {
            case TP_TAG_STATUS:
                TP_GET_U32(&f, m->u.result.status, where);
                break;
            case TP_TAG_TIMING: {
                if (f.len < TP_TIMING_SIZE) /* longer: newer fields appended */
                    return evo_error_set(err, EVO_ERR_PARSE, "%s: stage timing truncated", where);
                evo_stage_timing *t = &m->timings[m->n_timings++];
                t->stage = tp_rd32(f.v);
                t->queue_ns = tp_rd64(f.v + 8);
                t->compute_ns = tp_rd64(f.v + 16);
                t->transfer_ns = tp_rd64(f.v + 24);
                rv = EVO_OK;
                break;
            }
            case TP_TAG_TENSOR:
                rv = EVO_OK;
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        case EVO_MSG_ERROR:
            switch (f.tag) {
            case TP_TAG_STATUS:
                TP_GET_U32(&f, m->u.error.status, where);
                break;
            case TP_TAG_MESSAGE:
                rv = tp_get_str(&f, m->u.error.message, sizeof m->u.error.message, where, err);
                break;
            default:
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            }
            break;
        case EVO_MSG_ACK:
            if (f.tag == TP_TAG_VALUE)
                TP_GET_U64(&f, m->u.ack.value, where);
            else
                rv = f.tag == TP_TAG_PAD ? EVO_OK : tp_unknown(&f, where, err);
            break;
        default:
            return evo_error_set(err, EVO_ERR_INTERNAL, "unhandled message type");
        }
        if (rv != EVO_OK)
            return rv;
        if (f.tag == TP_TAG_TENSOR && carries) {
            if ((rv = tp_read_tensor(&f, lim, m->n_tensors, &m->tensors[m->n_tensors], err)) !=
                EVO_OK)
                return rv;
            m->n_tensors++;
        }
    }
    if (k < 0)
        return err ? err->code : EVO_ERR_PARSE;

    if (m->type == EVO_MSG_DEPLOY) {
        evo_msg_deploy *d = &m->u.deploy;
        if (!have_digest)
            return evo_error_set(err, EVO_ERR_PARSE, "deploy: missing blob digest");
        if (d->blob) {
            uint8_t dg[EVO_WIRE_DIGEST_SIZE];
            if (d->blob_len != d->blob_size)
                return evo_error_set(
                    err, EVO_ERR_PARSE, "deploy: blob has %llu bytes but declares %llu",
                    (unsigned long long)d->blob_len, (unsigned long long)d->blob_size);
            evo_sha256(d->blob, (size_t)d->blob_len, dg);
            if (memcmp(dg, d->digest, EVO_WIRE_DIGEST_SIZE) != 0)
                return evo_error_set(err, EVO_ERR_MISMATCH,
                                     "deploy: blob of model '%s' does not match its SHA-256",
                                     d->model);
        }
    }
    if (m->type == EVO_MSG_ERROR && m->u.error.status >= EVO_STATUS_COUNT_)
        m->u.error.status = EVO_ERR_INTERNAL;
    return EVO_OK;
}

evo_status evo_wire_decode(const void *buf, size_t len, const evo_tp_limits *lim, evo_msg *out,
                           evo_error *err)
{
    evo_tp_limits dl;
    evo_status rv;
    uint64_t body_len;
    if (!lim) {
        evo_tp_limits_default(&dl);
        lim = &dl;
    }
    memset(out, 0, sizeof *out);
    if ((rv = tp_wire_peek_header(buf, len, lim, &body_len, err)) != EVO_OK)
        return rv;
    if (body_len != len - EVO_WIRE_HEADER_SIZE)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s message declares a %llu byte body but carries %zu bytes",
                             evo_msg_type_name(tp_rd16((const uint8_t *)buf + 6)),
                             (unsigned long long)body_len, len - EVO_WIRE_HEADER_SIZE);
    const uint8_t *p = (const uint8_t *)buf;
    out->type = tp_rd16(p + 6);
    out->flags = tp_rd32(p + 8);
    out->sequence = tp_rd32(p + 12);
    out->request_id = tp_rd64(p + 16);
    out->storage_ = (struct evo_msg_storage_ *)calloc(1, sizeof(struct evo_msg_storage_));
    if (!out->storage_)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory to decode a message");
    tp_reader body = {p + EVO_WIRE_HEADER_SIZE, (size_t)body_len, 0, 0};
    rv = tp_decode_body(lim, &body, out, err);
    if (rv != EVO_OK)
        evo_msg_release(out);
    return rv;
}
