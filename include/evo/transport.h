/*
 * evo transport: the wire format of everything evo sends between processes,
 * tensor encodings for the wire, and message channels over nng (tcp, ipc,
 * inproc, tls+tcp) and CoAP (coap, coaps with DTLS-PSK).
 *
 * The wire format is documented in docs/protocol.md. In short: a 32-byte
 * header (magic, version, type, flags, sequence, request id, body length)
 * followed by a body of tagged fields (tag, length, value), so newer versions
 * can add fields that older receivers skip. Every length and count a peer
 * sends is checked against evo_tp_limits before anything is allocated.
 *
 * Ownership: a message you build (evo_msg with storage_ == NULL) borrows
 * everything it points to. A message produced by evo_wire_decode or
 * evo_tp_recv owns its storage (the received buffer, tensor and timing arrays);
 * release it with evo_msg_release. Received tensor payloads point into that
 * buffer: reading them needs no copy (see evo_wire_tensor_view).
 *
 * Threads: one evo_tp may be used by one thread at a time; different evo_tp
 * objects are independent.
 */
#ifndef EVO_TRANSPORT_H
#define EVO_TRANSPORT_H

#include "evo/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

/* Bounds on what a peer may make this process allocate or iterate over.
 * A message exceeding any of them is rejected with EVO_ERR_LIMIT. */
typedef struct evo_tp_limits {
    uint64_t max_body;           /* bytes of one message body */
    uint64_t max_tensor_bytes;   /* decoded (and decompressed) bytes of one tensor */
    uint32_t max_tensors;        /* tensors in one message */
    uint32_t max_fields;         /* fields in one body or one tensor */
    uint32_t max_timings;        /* stage timings in one result */
    uint32_t max_quant_channels; /* per-channel int8 scale/zero-point pairs */
} evo_tp_limits;

/* Defaults: 256 MiB body and tensor, 256 tensors, 4096 fields, 256 timings,
 * 65536 quantisation channels. */
void evo_tp_limits_default(evo_tp_limits *lim);

/* ---------------------------------------------------------------- messages */

#define EVO_WIRE_MAGIC "EVOW"
#define EVO_WIRE_VERSION 1
#define EVO_WIRE_HEADER_SIZE 32
/* Strings on the wire (names, URLs, classes) are shorter than this; decoded
 * strings are NUL-terminated copies. */
#define EVO_WIRE_STR_MAX 256
#define EVO_WIRE_DIGEST_SIZE 32 /* SHA-256 */

typedef enum evo_msg_type {
    EVO_MSG_REGISTER = 1,  /* a node announces itself and its capabilities */
    EVO_MSG_HEARTBEAT = 2, /* a node is alive; load and free memory */
    EVO_MSG_DEPLOY = 3,    /* a model blob (or its digest) for a node to run */
    EVO_MSG_RUN = 4,       /* run a model stage on the attached tensors */
    EVO_MSG_TENSORS = 5,   /* a batch of tensors streamed between stages */
    EVO_MSG_RESULT = 6,    /* outputs of a request plus per-stage timings */
    EVO_MSG_ERROR = 7,     /* a request failed: status plus one sentence */
    EVO_MSG_ACK = 8,       /* a request succeeded and has nothing else to say */
    EVO_MSG_TYPE_END_
} evo_msg_type;

/* Header flags. Receivers ignore flags they do not know. */
#define EVO_MSG_FLAG_LAST 0x1u /* the last message of a stream for this request */

/* Static name of a message type ("register", ...); "unknown" if invalid. */
const char *evo_msg_type_name(uint32_t type);

/* How a tensor's elements travel. The receiver restores the dtype it needs. */
typedef enum evo_encoding {
    EVO_ENC_RAW = 0,  /* the elements as they are, little-endian */
    EVO_ENC_FP16 = 1, /* float32 as IEEE half (lossy) */
    EVO_ENC_INT8 = 2, /* float32 as int8 with scale and zero point (lossy) */
    EVO_ENC_END_
} evo_encoding;

/* A lossless compressor applied after the encoding. */
typedef enum evo_compress {
    EVO_COMP_NONE = 0,
    EVO_COMP_ZSTD = 1,
    EVO_COMP_LZ4 = 2,
    EVO_COMP_END_
} evo_compress;

const char *evo_encoding_name(evo_encoding enc);
const char *evo_compress_name(evo_compress comp);

/* A tensor on the wire. Build one with evo_wire_tensor_encode; a decoded
 * message's tensors point into the received buffer. */
typedef struct evo_wire_tensor {
    char name[EVO_WIRE_STR_MAX]; /* "" when the tensor is identified by index */
    int32_t index;               /* -1 when identified by name */
    evo_dtype dtype;             /* the dtype the tensor had before encoding */
    evo_shape shape;
    evo_encoding encoding;
    evo_compress compress;
    /* EVO_ENC_INT8: quant_count (scale f32, zero point i32) pairs, stored
     * little-endian; one pair per tensor (quant_axis -1) or one per index of
     * dimension quant_axis. */
    int32_t quant_axis;
    uint32_t quant_count;
    const uint8_t *quant;
    uint64_t encoded_len; /* bytes after encoding, before compression */
    const void *payload;  /* encoded (and compressed) bytes */
    uint64_t payload_len;
    void *owned_; /* sender side: buffer evo_wire_tensor_clear frees */
} evo_wire_tensor;

/* Encode t (dense, t->data set) for the wire. RAW without compression
 * borrows t->data (keep it alive until sent); otherwise the encoded payload
 * is allocated and freed by evo_wire_tensor_clear. FP16 and INT8 need a
 * float32 tensor; quant_axis is -1 for one int8 scale per tensor, or the axis
 * carrying per-channel scales. name may be NULL (then index identifies it). */
evo_status evo_wire_tensor_encode(evo_wire_tensor *wt, const char *name, int32_t index,
                                  const evo_tensor *t, evo_encoding enc, evo_compress comp,
                                  int32_t quant_axis, evo_error *err);
void evo_wire_tensor_clear(evo_wire_tensor *wt);

/* Bytes of the tensor once decoded to dtype want (its shape times the size
 * of want). */
evo_status evo_wire_tensor_decoded_size(const evo_wire_tensor *wt, evo_dtype want, size_t *out,
                                        evo_error *err);

/* Decode into dst (dst_len bytes, at least the decoded size) as dtype want.
 * RAW restores any dtype as itself and float32<->float16; FP16 and INT8
 * restore float32 or float16. Decompression output is bounded by the
 * limits and must match the declared size exactly. */
evo_status evo_wire_tensor_decode(const evo_wire_tensor *wt, evo_dtype want, void *dst,
                                  size_t dst_len, const evo_tp_limits *lim, evo_error *err);

/* Zero-copy access: if the tensor is RAW, uncompressed, of dtype want and its
 * payload is suitably aligned, *data points at the elements inside the
 * message (valid until the message is released). Otherwise EVO_ERR_UNSUPPORTED
 * and the caller decodes with evo_wire_tensor_decode. */
evo_status evo_wire_tensor_view(const evo_wire_tensor *wt, evo_dtype want, const void **data);

/* Device roles in a registration. */
typedef enum evo_node_role {
    EVO_ROLE_WORKER = 0,      /* runs stages */
    EVO_ROLE_COORDINATOR = 1, /* plans and dispatches */
    EVO_ROLE_SENSOR = 2,      /* produces inputs, runs at most a first stage */
    EVO_ROLE_GATEWAY = 3,     /* relays for constrained nodes */
} evo_node_role;

typedef struct evo_msg_register {
    char name[EVO_WIRE_STR_MAX];
    char device_class[EVO_WIRE_STR_MAX]; /* e.g. "cloud", "edge", "mcu" */
    char listen_url[EVO_WIRE_STR_MAX];   /* where the node accepts work */
    uint64_t memory_bytes;
    uint64_t flash_bytes;
    double gflops;
    uint32_t role; /* evo_node_role */
} evo_msg_register;

typedef struct evo_msg_heartbeat {
    char name[EVO_WIRE_STR_MAX];
    uint64_t uptime_ms;
    uint64_t free_memory_bytes;
    uint64_t timestamp_ns; /* sender's clock, for drift and latency estimates */
    uint32_t load_permille;
} evo_msg_heartbeat;

typedef struct evo_msg_deploy {
    char model[EVO_WIRE_STR_MAX];
    uint8_t digest[EVO_WIRE_DIGEST_SIZE]; /* SHA-256 of the blob */
    uint64_t blob_size;                   /* size of the blob (also when it is not attached) */
    const void *blob;                     /* NULL: the receiver already has it (by digest) */
    uint64_t blob_len;                    /* bytes at blob; 0 or blob_size */
    uint32_t stage;
} evo_msg_deploy;

typedef struct evo_msg_run {
    char model[EVO_WIRE_STR_MAX];
    uint32_t stage;
} evo_msg_run;

typedef struct evo_msg_tensors {
    uint32_t stage;
} evo_msg_tensors;

typedef struct evo_stage_timing {
    uint32_t stage;
    uint64_t queue_ns;
    uint64_t compute_ns;
    uint64_t transfer_ns;
} evo_stage_timing;

typedef struct evo_msg_result {
    uint32_t status; /* evo_status of the run */
} evo_msg_result;

typedef struct evo_msg_error {
    uint32_t status; /* evo_status */
    char message[EVO_ERROR_MSG_MAX];
} evo_msg_error;

typedef struct evo_msg_ack {
    uint64_t value; /* e.g. the node id a registration was given */
} evo_msg_ack;

struct evo_msg_storage_;

typedef struct evo_msg {
    uint32_t type;       /* evo_msg_type */
    uint32_t flags;      /* EVO_MSG_FLAG_* */
    uint64_t request_id; /* ties replies, streams and results to a request */
    uint32_t sequence;   /* position in a stream */
    union {
        evo_msg_register reg;
        evo_msg_heartbeat heartbeat;
        evo_msg_deploy deploy;
        evo_msg_run run;
        evo_msg_tensors tensors;
        evo_msg_result result;
        evo_msg_error error;
        evo_msg_ack ack;
    } u;
    evo_wire_tensor *tensors; /* RUN, TENSORS, RESULT */
    uint32_t n_tensors;
    evo_stage_timing *timings; /* RESULT */
    uint32_t n_timings;
    /* Set by evo_tp_recv (never sent): when the channel had the whole
     * message, in ns since the epoch (CLOCK_REALTIME), 0 if unknown. A
     * message that waited in the channel's queue (stream_depth) waited
     * after this, so a receiver can tell transfer time from queueing. */
    uint64_t received_ns;
    struct evo_msg_storage_ *storage_; /* non-NULL when the message owns memory */
} evo_msg;

/* Zero *m and set its type. */
void evo_msg_init(evo_msg *m, evo_msg_type type);
/* Free what a decoded/received message owns and zero it; safe on built ones. */
void evo_msg_release(evo_msg *m);

/* Fill an ERROR message from an evo_error. */
void evo_msg_set_error(evo_msg *m, uint64_t request_id, const evo_error *e);

/* Exact encoded size of m (header included). */
evo_status evo_wire_encoded_size(const evo_msg *m, size_t *out, evo_error *err);
/* Encode m into buf (cap bytes, at least evo_wire_encoded_size). */
evo_status evo_wire_encode(const evo_msg *m, void *buf, size_t cap, size_t *written,
                           evo_error *err);
/* Decode len bytes at buf. *out borrows buf (keep it alive and unchanged
 * until evo_msg_release(out)); arrays are allocated after every count was
 * checked against lim (NULL: defaults). On error *out is released. A DEPLOY
 * with an attached blob is checked against its SHA-256 digest. */
evo_status evo_wire_decode(const void *buf, size_t len, const evo_tp_limits *lim, evo_msg *out,
                           evo_error *err);

/* SHA-256 of len bytes (for DEPLOY digests). */
void evo_sha256(const void *data, size_t len, uint8_t out[EVO_WIRE_DIGEST_SIZE]);

/* ---------------------------------------------------------------- channels */

/* Messaging patterns. REQ/REP is control traffic: one reply per request.
 * PUSH/PULL is a one-way stream of tensors that keeps many messages in
 * flight. Over nng either end may listen or dial; over CoAP the listener is
 * the CoAP server (REP or PULL) and the dialer the client (REQ or PUSH). */
typedef enum evo_tp_pattern {
    EVO_TP_REQ = 0,
    EVO_TP_REP = 1,
    EVO_TP_PUSH = 2,
    EVO_TP_PULL = 3,
} evo_tp_pattern;

typedef enum evo_tp_mode {
    EVO_TP_LISTEN = 0,
    EVO_TP_DIAL = 1,
} evo_tp_mode;

typedef struct evo_tp_options {
    evo_tp_limits limits;
    int32_t recv_timeout_ms; /* -1: wait forever */
    int32_t send_timeout_ms; /* -1: wait forever */
    /* tls+tcp:// (PEM files). A listener needs cert+key; with tls_ca_file set
     * it also requires and verifies client certificates (mutual). A dialer
     * needs tls_ca_file to verify the server, and cert+key for mutual auth. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_key_password; /* NULL if the key is not encrypted */
    const char *tls_server_name;  /* dialer: name to verify; default: URL host */
    /* coaps:// (DTLS with a pre-shared key). */
    const char *psk_identity;
    const uint8_t *psk_key;
    size_t psk_key_len;
    /* nng PUSH/PULL: messages buffered per socket (in flight); 0: default 16. */
    int32_t stream_depth;
} evo_tp_options;

void evo_tp_options_default(evo_tp_options *opt);

typedef struct evo_tp evo_tp;

/* Open a channel on url: tcp://host:port, ipc:///path, inproc://name,
 * tls+tcp://host:port, coap://host:port, coaps://host:port, and for PUSH/PULL
 * tcp+stream://host:port, ipc+stream:///path, tls+tcp+stream://host:port
 * (nng byte streams, no per-message allocation; a PULL listener takes many
 * senders; docs/protocol.md "Stream channels"). A listener on
 * port 0 binds an ephemeral port (see evo_tp_port). A dialer connects before
 * returning (a refused TLS handshake fails here). opt may be NULL. */
evo_status evo_tp_open(evo_tp **out, const char *url, evo_tp_pattern pattern, evo_tp_mode mode,
                       const evo_tp_options *opt, evo_error *err);

/* Send one message (REQ: a request; REP: the reply to the last request
 * received; PUSH: the next stream message). */
evo_status evo_tp_send(evo_tp *tp, const evo_msg *m, evo_error *err);
/* Send bytes that already are an encoded message (relays, tests). */
evo_status evo_tp_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err);

/* Receive one message into *out (release with evo_msg_release). A message
 * that fails to decode is dropped, reported as an error here (a REP listener
 * also answers it with an ERROR message), and the channel stays usable.
 * A timeout is EVO_ERR_IO with a message saying so. */
evo_status evo_tp_recv(evo_tp *tp, evo_msg *out, evo_error *err);

/* Bound port of a tcp/tls/coap listener (useful after binding port 0), or -1. */
int evo_tp_port(const evo_tp *tp);

/* Close the channel and free it; NULL is ignored. */
void evo_tp_close(evo_tp *tp);

#ifdef __cplusplus
}
#endif
#endif /* EVO_TRANSPORT_H */
