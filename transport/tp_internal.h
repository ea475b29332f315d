/*
 * Internals shared by the transport files: wire field tags, little-endian
 * helpers, the storage a decoded message owns, and the backend interface that
 * the nng and CoAP channels implement.
 */
#ifndef EVO_TP_INTERNAL_H
#define EVO_TP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "evo/transport.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "evo transport writes tensor elements in host order and needs a little-endian host"
#endif

/* Field header: u16 tag, u16 field flags, u32 value length. */
#define TP_FIELD_HDR 8
/* A receiver that does not know a field with this flag must reject the
 * message instead of skipping it. */
#define TP_FIELD_CRITICAL 0x1u
/* Tensor payloads start at this offset alignment within the message. */
#define TP_PAYLOAD_ALIGN 64

enum tp_body_tag {
    TP_TAG_PAD = 0,
    TP_TAG_NAME = 1,
    TP_TAG_MEMORY = 2,
    TP_TAG_FLASH = 3,
    TP_TAG_GFLOPS = 4,
    TP_TAG_ROLE = 5,
    TP_TAG_CLASS = 6,
    TP_TAG_LISTEN_URL = 7,
    TP_TAG_UPTIME = 8,
    TP_TAG_LOAD = 9,
    TP_TAG_FREE_MEMORY = 10,
    TP_TAG_TIMESTAMP = 11,
    TP_TAG_DIGEST = 12,
    TP_TAG_BLOB = 13,
    TP_TAG_BLOB_SIZE = 14,
    TP_TAG_STAGE = 15,
    TP_TAG_TENSOR = 16,
    TP_TAG_TIMING = 17,
    TP_TAG_STATUS = 18,
    TP_TAG_MESSAGE = 19,
    TP_TAG_VALUE = 20,
};

enum tp_tensor_tag {
    TP_TT_PAD = 0,
    TP_TT_NAME = 1,
    TP_TT_INDEX = 2,
    TP_TT_DTYPE = 3,
    TP_TT_SHAPE = 4,
    TP_TT_ENCODING = 5,
    TP_TT_COMPRESS = 6,
    TP_TT_QUANT = 7,
    TP_TT_ENCODED_LEN = 8,
    TP_TT_PAYLOAD = 9,
};

/* Bytes of one stage timing value (stage, reserved, three u64). */
#define TP_TIMING_SIZE 32
/* Bytes of one quantisation record (f32 scale, i32 zero point). */
#define TP_QUANT_REC 8

static inline uint16_t tp_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t tp_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t tp_rd64(const uint8_t *p)
{
    return (uint64_t)tp_rd32(p) | ((uint64_t)tp_rd32(p + 4) << 32);
}
static inline void tp_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void tp_wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tp_wr64(uint8_t *p, uint64_t v)
{
    tp_wr32(p, (uint32_t)v);
    tp_wr32(p + 4, (uint32_t)(v >> 32));
}
static inline float tp_rdf32(const uint8_t *p)
{
    uint32_t u = tp_rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* What a decoded message owns. */
struct evo_msg_storage_ {
    evo_wire_tensor *tensors;
    evo_stage_timing *timings;
    /* The buffer the message was decoded from, if the message owns it. */
    void *buf;
    void (*buf_free)(void *buf);
};

/* Now on CLOCK_REALTIME in ns (evo_msg.received_ns). */
static inline uint64_t tp_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_MONOTONIC time ms milliseconds from now (for timed waits on a
 * condition variable made by tp_cond_init_monotonic). */
static inline struct timespec tp_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* A condition variable whose timed waits use CLOCK_MONOTONIC (immune to
 * wall-clock changes); false if it could not be made. */
static inline bool tp_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    bool ok =
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    return ok;
}

/* Attach buf to a decoded message so evo_msg_release frees it with fn. */
void tp_msg_adopt_buffer(evo_msg *m, void *buf, void (*fn)(void *buf));

/* Parse only the header: the declared body length and basic checks. */
evo_status tp_wire_peek_header(const void *buf, size_t len, const evo_tp_limits *lim,
                               uint64_t *body_len, evo_error *err);

/* A tensor payload that a scatter encoding leaves out of its buffer: it goes
 * on the wire right after buffer byte `at`, from the caller's memory. */
typedef struct tp_wire_ref {
    size_t at;
    size_t skipped_before; /* payload bytes left out before this one */
    const void *p;
    size_t len;
} tp_wire_ref;

typedef struct tp_wire_scatter {
    uint8_t *buf;    /* everything but the referenced payloads */
    size_t buf_len;  /* bytes in buf */
    size_t total;    /* bytes of the whole encoded message */
    uint32_t n_refs; /* refs used, in wire order */
} tp_wire_scatter;

/* Returns a buffer of at least len bytes (owned by the caller), or NULL. */
typedef uint8_t *(*tp_wire_buf_fn)(void *ctx, size_t len);

/* Encode m like evo_wire_encode, but leave tensor payloads of min_ref bytes
 * or more (at most max_refs of them; later ones are copied) out of the
 * buffer: the wire bytes are buf[0, refs[0].at), refs[0], buf[refs[0].at,
 * refs[1].at), refs[1], ..., buf[refs[n-1].at, buf_len). */
evo_status tp_wire_encode_refs(const evo_msg *m, size_t min_ref, tp_wire_ref *refs,
                               uint32_t max_refs, tp_wire_buf_fn get_buf, void *ctx,
                               tp_wire_scatter *out, evo_error *err);

/* ---------------------------------------------------------------- backends */

typedef struct tp_backend_ops {
    evo_status (*send)(evo_tp *tp, const evo_msg *m, evo_error *err);
    evo_status (*send_encoded)(evo_tp *tp, const void *buf, size_t len, evo_error *err);
    evo_status (*recv)(evo_tp *tp, evo_msg *out, evo_error *err);
    int (*port)(const evo_tp *tp);
    void (*close)(evo_tp *tp);
} tp_backend_ops;

struct evo_tp {
    const tp_backend_ops *ops;
    evo_tp_options opt;
    evo_tp_pattern pattern;
    evo_tp_mode mode;
    char url[EVO_WIRE_STR_MAX];
    void *impl;
};

evo_status tp_nng_open(evo_tp *tp, evo_error *err);
evo_status tp_coap_open(evo_tp *tp, evo_error *err);
evo_status tp_stream_open(evo_tp *tp, evo_error *err);

/* nng TLS configuration from tp's options (tls_config.c): a server needs a
 * certificate and key, a client a CA; a server given a CA requires client
 * certificates. *out is the caller's (nng_tls_config_free). */
struct nng_tls_config;
evo_status tp_tls_config_make(const evo_tp *tp, struct nng_tls_config **out, evo_error *err);
/* If nng error rv from a TLS dial means the handshake was refused, set a
 * clear error naming the CA and return true. */
bool tp_tls_handshake_failed(const evo_tp *tp, int rv, evo_error *err, evo_status *st);

/* Read a whole (small) file such as a PEM certificate; NUL-terminated. */
evo_status tp_read_text_file(const char *path, const char *what, char **out, evo_error *err);

#endif /* EVO_TP_INTERNAL_H */
