/*
 * Internals shared by the coordinator, the node agent and the client:
 * clocks, randomness, hex, HMAC, the control "envelope" (a RUN message whose
 * model field is a verb and whose JSON rides in the uint8 tensor "evo.json"),
 * URL helpers, and the stage blobs nodes run.
 */
#ifndef EVO_COORD_INTERNAL_H
#define EVO_COORD_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evo/coordinator.h"
#include "evo/graph.h"
#include "evo/node.h"
#include "evo/split.h"
#include "evo/transport.h"

#define COORD_T_JSON "evo.json"   /* the JSON document of a control message */
#define COORD_T_AUTH "evo.auth"   /* HMAC-SHA256 proving the sender holds the key */
#define COORD_T_ROUTE "evo.route" /* the remaining path of a request (data path) */
#define COORD_T_BLOB "evo.blob"   /* a model file a client submits */
#define COORD_MAC_SIZE 32
#define COORD_NONCE_SIZE 16
#define COORD_SESSION_SIZE 32
/* Envelopes carry at most this many tensors (JSON, auth, payload tensors). */
#define COORD_ENV_MAX 64

/* ---------------------------------------------------------------- small utilities */

uint64_t coord_mono_ns(void); /* CLOCK_MONOTONIC */
uint64_t coord_wall_ns(void); /* CLOCK_REALTIME, for transfer times across processes */
void coord_sleep_ms(int ms);
/* Cryptographically random bytes (getrandom; /dev/urandom fallback). */
evo_status coord_random(void *buf, size_t n, evo_error *err);
void coord_hex(const uint8_t *b, size_t n, char *out); /* out: 2n+1 bytes */
bool coord_unhex(const char *s, uint8_t *out, size_t n);
/* Constant-time comparison. */
bool coord_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* HMAC-SHA256 of a control message: the key proves itself over the
 * challenge nonce, the verb, and the name and bytes of every tensor except
 * the MAC itself, so nothing of the request can be swapped. */
evo_status coord_msg_mac(const uint8_t *key, size_t key_len, const uint8_t *nonce, size_t nonce_len,
                         const evo_msg *m, uint8_t out[COORD_MAC_SIZE], evo_error *err);
/* HMAC-SHA256 of a short string (hop authorizations). */
void coord_hmac_str(const uint8_t *key, size_t key_len, const char *s, uint8_t out[COORD_MAC_SIZE]);

/* ---------------------------------------------------------------- tensors as byte strings */

/* A uint8 rank-1 wire tensor named `name` borrowing len bytes at data. */
evo_status coord_bytes_tensor(evo_wire_tensor *wt, const char *name, const void *data, size_t len,
                              evo_error *err);
/* The tensor named `name` in m, or NULL. */
const evo_wire_tensor *coord_find_tensor(const evo_msg *m, const char *name);
/* The bytes of a uint8 tensor (raw, uncompressed), pointing into the message. */
evo_status coord_tensor_bytes(const evo_wire_tensor *wt, const void **data, size_t *len,
                              evo_error *err);
/* Parse m's "evo.json" (NULL if absent or not JSON). */
cJSON *coord_msg_json(const evo_msg *m);

/* ---------------------------------------------------------------- envelopes */

/* A control message under construction: it borrows the tensors given to it
 * and owns its JSON text. */
typedef struct coord_env {
    evo_msg m;
    evo_wire_tensor t[COORD_ENV_MAX];
    uint32_t n;
    char *json;
    uint8_t mac[COORD_MAC_SIZE];
} coord_env;

/* type is EVO_MSG_RUN (requests) or EVO_MSG_RESULT (replies); verb is the RUN
 * model field. json is taken over (freed by coord_env_clear), may be NULL. */
evo_status coord_env_init(coord_env *e, evo_msg_type type, const char *verb, char *json,
                          evo_error *err);
/* Append a tensor (a shallow copy; payload stays borrowed). */
evo_status coord_env_add(coord_env *e, const evo_wire_tensor *wt, evo_error *err);
/* Append the MAC under key over nonce (must be the last tensor added). */
evo_status coord_env_sign(coord_env *e, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                          size_t nonce_len, evo_error *err);
void coord_env_clear(coord_env *e);

/* Check the MAC of a received message; EVO_ERR_MISMATCH when absent or wrong. */
evo_status coord_msg_verify(const evo_msg *m, const uint8_t *key, size_t key_len,
                            const uint8_t *nonce, size_t nonce_len, evo_error *err);

/* JSON helpers: number/string members with defaults. */
double coord_json_num(const cJSON *o, const char *key, double def);
const char *coord_json_str(const cJSON *o, const char *key, const char *def);

/* ---------------------------------------------------------------- URLs */

/* True if the URL's host is a loopback address (127.x, ::1, localhost) or
 * the URL is ipc:// or inproc://. */
bool coord_url_is_loopback(const char *url);
/* True for coap:// and coaps://. */
bool coord_url_is_coap(const char *url);
/* scheme://host of url (no port) into out. */
/* The URL of a tensor data channel next to control URL url: nng byte
 * streams (tcp+stream, ipc+stream, tls+tcp+stream: no per-message
 * allocation, many senders per listener; transport/stream_listener.c) for
 * tcp, ipc and tls+tcp; other schemes (inproc, coap) as they are. */
void coord_data_url(const char *url, char *out, size_t cap);
void coord_url_base(const char *url, char *out, size_t cap);
/* Replace the port of url: "tcp://1.2.3.4:0" + 5000 -> "tcp://1.2.3.4:5000". */
void coord_url_with_port(const char *url, int port, char *out, size_t cap);
/* When url's host is a wildcard (0.0.0.0, *, ::), take the host of `via`. */
void coord_url_reachable(const char *url, const char *via, char *out, size_t cap);

/* Transport options for a channel with this security (TLS when the URL asks
 * for it). server_name: the name to verify when dialing TLS. */
void coord_tp_options(evo_tp_options *o, const evo_coord_security *sec, int32_t timeout_ms);

/* "1.5 MiB" into buf (at least 32 bytes); returns buf. */
const char *coord_fmt_bytes(uint64_t bytes, char *buf);

/* Parse "256K", "64M", "2G", "1048576" into bytes. */

/* ---------------------------------------------------------------- stages */

/* A deployed stage as the coordinator reports it: ops [first, last) of the
 * plan's sequence of ops (as the compiled stages run them), its boundary tensors, and its figures.
 */
typedef struct coord_stage_def {
    int32_t first, last;
    uint64_t flops;
    uint64_t weights_bytes; /* exact, from the stage's program */
    uint64_t arena_bytes;   /* exact */
    uint64_t in_bytes, out_bytes;
    int32_t n_inputs, n_outputs;
    double compute_ms; /* the partitioner's prediction */
} coord_stage_def;

/* The stage blobs nodes run: each stage is extracted from the model as a
 * self-contained graph (evo_split_extract over the same ranges), compiled,
 * and written as a compact .evm (names kept: stage tensors travel by name).
 * A node holds exactly the blob (its weights are used in place), the
 * loader's work buffer and the arena, so need_bytes is what it truly holds.
 * pass lists the tensors stage k forwards untouched to later stages (those
 * in st[k].outputs that its program does not compute). */
typedef struct coord_stage_blob {
    void *evm;
    size_t evm_len;
    uint64_t weights_bytes, arena_bytes, work_bytes;
    uint64_t in_bytes, out_bytes; /* boundary tensors the program reads and writes */
    int32_t n_ops;                /* ops the stage's program runs */
    uint64_t need_bytes;          /* evm_len + arena + work */
    char **pass;
    int32_t n_pass;
} coord_stage_blob;

/* The blobs of every stage of plan (n = plan->n_stages entries). */
struct evo_split_plan;
evo_status coord_stage_blobs_make(const evo_graph *g, const struct evo_split_plan *plan,
                                  coord_stage_blob **out, evo_error *err);
void coord_stage_blobs_free(coord_stage_blob *b, int32_t n);

/* Node side: a loaded stage ready to run. The blob and work buffer are the
 * node's own aligned copies; prog points into them. */
typedef struct coord_stage_run {
    void *blob;
    size_t blob_len;
    void *work;
    size_t work_bytes;
    evo_program prog;
    void *arena;
    size_t arena_bytes;
    evo_exec exec;
    uint64_t need_bytes; /* blob + work + arena: what the budget is checked against */
} coord_stage_run;

/* Verify (SHA-256 in the header) and load a .evm stage; `what` names it in
 * errors. */
evo_status coord_stage_load(const void *blob, size_t len, const char *what, coord_stage_run *out,
                            evo_error *err);
void coord_stage_run_free(coord_stage_run *r);

/* Import ONNX bytes with batch dims bound to 1 and infer shapes. */
evo_status coord_import_onnx(const void *onnx, size_t len, const char *name, evo_graph **out,
                             evo_error *err);

/* ---------------------------------------------------------------- placement */

/* Link figures when a node measured none (docs/coordinator.md). */
#define COORD_DEFAULT_RTT_MS 1.0
#define COORD_DEFAULT_MBPS 100.0
#define COORD_DEFAULT_GFLOPS 1.0

/* A node to node link a device measured (docs/coordinator.md "Link probes"). */
typedef struct coord_peer_link {
    const char *peer; /* the other device's name */
    double rtt_ms, mbps;
} coord_peer_link;

/* A device the partitioner may use. */
typedef struct coord_plan_dev {
    const char *name;
    const char *device_class;     /* "cloud" makes it a cloud device */
    uint64_t free_bytes;          /* memory budget minus stages of other models */
    double gflops;                /* calibrated dense throughput */
    double mem_gbps;              /* calibrated memory bandwidth (0 = compute-bound roofline) */
    double rtt_ms, mbps;          /* its link to the coordinator (0 = not measured) */
    bool relayed;                 /* reaches other nodes only through the coordinator (CoAP) */
    const coord_peer_link *peers; /* links it measured to other devices (may be NULL) */
    size_t n_peers;
} coord_plan_dev;

/* A placement: the split plan of the partitioner's stages over the graph,
 * each stage's device (index into the devices given), work and prediction. */
typedef struct coord_placement {
    evo_split_plan split;
    int32_t n_stages;
    int32_t *dev_of;
    uint64_t *flops;
    double *compute_ms;
    uint64_t *planned_bytes; /* what the partitioner counted on the device */
    double latency_ms, period_ms;
    char kind[16], method[32];
    char *json; /* the partitioner's plan (docs/placement.md) */
} coord_placement;

/* Place g (imported with optimize, inferred) on devs with the partitioner
 * (mode auto|standalone|cloud|cluster, objective latency|throughput) and
 * write every stage as .evm (*blobs, out->n_stages entries). Each stage is
 * checked against its device with the exact figures of its blob; when
 * nothing fits, the error says which device lacks how much. */
evo_status coord_place(const evo_graph *g, const coord_plan_dev *devs, size_t n, const char *mode,
                       const char *objective, coord_placement *out, coord_stage_blob **blobs,
                       evo_error *err);
void coord_placement_free(coord_placement *pl);

/* The partitioner's topology for devs (overhead[i]: bytes the device spends
 * besides the stages): devs[0..n) then the coordinator at index n; each
 * device's link to the coordinator, and node to node links (none for relayed
 * devices) as measured when either end measured them, else estimated as the
 * slower of the two coordinator links. Free with evo_pt_topology_free. */
struct evo_pt_topology;
evo_status coord_place_topology(const coord_plan_dev *devs, size_t n, const uint64_t *overhead,
                                struct evo_pt_topology *t, evo_error *err);

#endif /* EVO_COORD_INTERNAL_H */
