/*
 * Internals of the +stream channels (nng byte streams carrying evo wire
 * messages back to back): the receive buffer pool (stream_pool.c), the
 * point-to-point channel (stream_backend.c) and the PULL listener for many
 * senders (stream_listener.c).
 */
#ifndef EVO_TP_STREAM_H
#define EVO_TP_STREAM_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "tp_internal.h"

/* Receive buffers of one channel, recycled: a decoded message keeps its
 * buffer until evo_msg_release hands it back (tp_stream_pool_put). The pool
 * outlives its channel while messages hold its buffers. */
typedef struct tp_stream_pool tp_stream_pool;

/* A new pool holding the channel's reference, or NULL (no memory). */
tp_stream_pool *tp_stream_pool_new(void);
/* The channel is done with the pool: freed when no buffer is out. */
void tp_stream_pool_close(tp_stream_pool *p);
/* A buffer for a message of len bytes at buf + TP_PAYLOAD_ALIGN (64-byte
 * aligned), or NULL. Give it back with tp_stream_pool_put. */
uint8_t *tp_stream_pool_get(tp_stream_pool *p, size_t len);
/* Return a buffer from tp_stream_pool_get (evo_msg_release's callback). */
void tp_stream_pool_put(void *buf);

/* The TCP port a stream listener bound (tcp: it is a TCP or TLS one), or -1. */
static inline int tp_stream_listener_port(nng_stream_listener *l, bool tcp)
{
    int port = -1;
    if (l == NULL || !tcp || nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return -1;
    return port;
}

/* One aio doing a connection's operations (accept, dial, transfers), one
 * at a time, waited on by one thread (stream_xfer.c says why it works in
 * two ways). continued: TLS (the aio's callback carries a transfer on from
 * record to record and the waits are bounded here); otherwise TCP or IPC
 * (no callback; nng honours the aio timeout). */
typedef struct tp_xfer {
    nng_aio *aio;
    bool continued;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool mu_ok, cv_ok;
    /* under mu: the operation in progress */
    bool done, stop;
    bool aborted; /* tp_xfer_abort: for good */
    nng_stream *conn;
    nng_iov *iov; /* what is left of a transfer: n entries (0: none) */
    unsigned n;
    bool send;
    size_t at_least, moved;
    int rv;
} tp_xfer;

/* false: out of memory (tp_xfer_fini still frees what was made). */
bool tp_xfer_init(tp_xfer *x, bool continued);
void tp_xfer_fini(tp_xfer *x);
/* From another thread: end the wait of the operation in progress and
 * refuse further ones (NNG_ECLOSED), before nng_aio_stop(x->aio) (which
 * would leave a continued operation's waiter without its callback). */
void tp_xfer_abort(tp_xfer *x);
/* Before starting an accept or dial on x->aio that may take ms (< 0: no
 * limit). */
void tp_xfer_arm(tp_xfer *x, int32_t ms);
/* Wait for the accept or dial started on x->aio: 0 or an nng error
 * (NNG_ETIMEDOUT past ms). A continued operation that outlasts ms and
 * cannot be cancelled is ended by closing conn (if given; *closed set: the
 * caller drops it). */
int tp_xfer_await(tp_xfer *x, int32_t ms, nng_stream *conn, bool *closed);
/* Move bytes of iov[0..n) over conn (entries are consumed) until at least
 * at_least have moved (the whole iov: its total; a read of what has
 * arrived: 1), with no stall longer than timeout_ms (< 0: no limit: each
 * operation over TCP and IPC, each record over TLS; a slow but moving
 * transfer may take longer in all). Returns 0 or an nng error; *moved says
 * how many bytes went, *closed as for tp_xfer_await. */
int tp_xfer_io(tp_xfer *x, nng_stream *conn, nng_iov *iov, unsigned n, size_t at_least, bool send,
               int32_t timeout_ms, size_t *moved, bool *closed);

/* nng error rv of operation `what` as an evo error naming the channel. */
evo_status tp_stream_fail(evo_error *err, const evo_tp *tp, const char *what, int rv);

/* Open the listening side of a PULL +stream channel at nng URL nurl
 * (tcp://, ipc:// or tls+tcp://; tls: its configuration, owned from here
 * on, or NULL). */
evo_status tp_stream_listener_open(evo_tp *tp, const char *nurl, nng_tls_config *tls,
                                   evo_error *err);

#endif /* EVO_TP_STREAM_H */
