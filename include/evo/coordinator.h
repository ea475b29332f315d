/*
 * evo coordinator, node agent and client (hosted code).
 *
 * The coordinator keeps the device registry (persisted in the model
 * database), accepts registrations and heartbeats, marks a device lost after
 * missed heartbeats, accepts models, places them on the registered devices,
 * deploys each stage (content-addressed: a node that holds a digest is not
 * sent it again) and serves inference requests, streaming intermediate
 * tensors between stages: directly from node to node where they can reach
 * each other, relayed through itself where they cannot (CoAP nodes).
 *
 * A node agent registers with its memory budget, calibration and measured
 * link to the coordinator, receives stages, verifies their digest, refuses a
 * stage that does not fit its memory budget, runs requests and forwards the
 * outputs to the next hop.
 *
 * The protocol on top of the wire format (docs/protocol.md) is described in
 * docs/coordinator.md: control requests are RUN messages whose model field is
 * a verb ("register", "deploy", "infer", ...) with a JSON document as the
 * uint8 tensor "evo.json"; the data path is TENSORS messages that carry their
 * own route ("evo.route") from stage to stage.
 *
 * Who may join: with TLS, mutual TLS (a CA signs node and client
 * certificates); without TLS, a join token shared by coordinator, nodes and
 * clients, proven with HMAC-SHA256 over a fresh challenge for every request.
 * Open mode (neither) is allowed on loopback only and says so in the log.
 *
 * Threads: each object runs its own threads; the functions here may be
 * called from any one thread at a time per object.
 */
#ifndef EVO_COORDINATOR_H
#define EVO_COORDINATOR_H

#include "evo/core.h"
#include "evo/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default coordinator URL of clients and nodes (overridden by
 * --coordinator or the EVO_COORDINATOR environment variable). */
#define EVO_COORD_DEFAULT_URL "tcp://127.0.0.1:7400"
#define EVO_COORD_MAX_LISTEN 8

/* Who may talk to a coordinator: TLS files, or a join token. */
typedef struct evo_coord_security {
    const char *tls_cert; /* PEM: this process's certificate */
    const char *tls_key;  /* PEM: its key */
    const char *tls_ca;   /* PEM: the cluster CA (verifies the peer) */
    const char *token;    /* join token (HMAC key); NULL: none */
    /* The name a TLS dialer verifies in the peer's certificate (NULL:
     * "evo-cluster", which scripts/make-cluster-certs.sh puts in every
     * certificate it makes, since peers are dialed by IP address). */
    const char *tls_server_name;
} evo_coord_security;

/* ---------------------------------------------------------------- coordinator */

typedef struct evo_coord_options {
    const char *listen[EVO_COORD_MAX_LISTEN]; /* control URLs (tcp://, tls+tcp://, ipc://) */
    size_t n_listen;
    const char *coap_listen; /* coap://HOST:PORT for CoAP nodes, or NULL */
    const char *db_path;     /* the model database (registry, models, plans, artifacts) */
    evo_coord_security sec;
    int32_t heartbeat_ms;       /* the interval nodes are told to use (0: 500) */
    int32_t lost_after_ms;      /* a node is lost after this long without one (0: 2000) */
    int32_t request_timeout_ms; /* one attempt of one inference request (0: 10000) */
} evo_coord_options;

typedef struct evo_coord evo_coord;

/* Open the database, bind every listener, start the threads. Refuses open
 * mode (no TLS, no token) unless every listener is on loopback. */
evo_status evo_coord_start(const evo_coord_options *opt, evo_coord **out, evo_error *err);
/* The bound port of control listener i (useful after listening on port 0). */
int evo_coord_port(const evo_coord *c, size_t i);
/* Stop the threads, close listeners and the database, free. NULL is fine. */
void evo_coord_stop(evo_coord *c);

/* ---------------------------------------------------------------- node agent */

typedef struct evo_agent_options {
    const char *coordinator;      /* control URL of the coordinator */
    const char *coap_coordinator; /* transport "coap": the coordinator's coap:// URL */
    const char *name;
    const char *device_class; /* NULL: "edge" */
    const char *listen;       /* where the node accepts work; NULL: loopback, ephemeral port */
    const char *transport;    /* "nng" (default) or "coap" */
    uint64_t memory_bytes;    /* budget for stages (.evm + loader tables + arena); 0: 1 GiB */
    bool no_calibrate;        /* skip the ~1 s calibration (tests): figures from gflops */
    double gflops;            /* with no_calibrate: claimed dense GFLOP/s (0: 1) */
    int32_t threads;          /* intra-op threads for stage runs (0 or 1: one) */
    int32_t probe_budget_ms;  /* time budget of one link probe (0: 1000); a probe that
                                 does not finish in it measures nothing */
    evo_coord_security sec;
} evo_agent_options;

typedef struct evo_agent evo_agent;

/* Calibrate, open listeners, register (retrying until the coordinator
 * answers or refuses), start the heartbeat and worker threads. A refusal
 * (bad token or certificate) is an error here. */
evo_status evo_agent_start(const evo_agent_options *opt, evo_agent **out, evo_error *err);
/* True once the agent was refused or stopped by a fatal error. */
bool evo_agent_failed(const evo_agent *a, evo_error *err);
void evo_agent_stop(evo_agent *a);

/* ---------------------------------------------------------------- client */

typedef struct evo_client evo_client;

/* Connect to a coordinator's control URL (NULL: EVO_COORDINATOR, else the
 * default). timeout_ms bounds every request (0: 120000). */
evo_status evo_client_open(const char *url, const evo_coord_security *sec, int32_t timeout_ms,
                           evo_client **out, evo_error *err);
void evo_client_close(evo_client *cl);

/* One authenticated request: verb plus a JSON document plus extra tensors
 * (borrowed). On success *reply is the coordinator's RESULT (its JSON is
 * the tensor "evo.json": see evo_client_reply_json); an ERROR reply becomes
 * its status and sentence in err. */
evo_status evo_client_call(evo_client *cl, const char *verb, const char *json,
                           const evo_wire_tensor *tensors, uint32_t n_tensors, evo_msg *reply,
                           evo_error *err);
/* The JSON text of a reply (malloc'd, NUL-terminated) or NULL. */
char *evo_client_reply_json(const evo_msg *reply);

/* The URL the client commands use: url if given, else $EVO_COORDINATOR,
 * else EVO_COORD_DEFAULT_URL. */
const char *evo_client_default_url(const char *url);

#ifdef __cplusplus
}
#endif
#endif /* EVO_COORDINATOR_H */
