/*
 * Tensor streams over nng's byte-stream API (tcp+stream://, ipc+stream://,
 * tls+tcp+stream://): PUSH/PULL without nng's SP messages. This file: the
 * dialers and the PUSH listener (one peer at a time); the PULL listener,
 * which takes many senders, is stream_listener.c.
 *
 * Why: nng allocates every SP message with calloc (zeroing or page-faulting
 * the whole size) on both ends, and the sender must copy its payload into it;
 * for 1-16 MiB tensors that costs twice the CPU of the socket I/O itself, and
 * caps nng PUSH/PULL at about half a raw socket's throughput on a loaded
 * 2-core machine (docs/benchmarks.md, "Transport"). An nng_stream moves bytes
 * between caller memory and the kernel through nng_aio: the sender's message
 * metadata is encoded into one reused buffer and large raw tensor payloads
 * are written straight from the caller's tensors (a gather write, no copy);
 * the receiver reads each message into a 64-byte aligned buffer that the
 * decoded message keeps (its tensors point into it; no second copy) and that
 * returns to the channel for reuse when the message is released.
 *
 * Framing: evo wire messages back to back; the 32-byte header declares the
 * body length (docs/protocol.md). One peer at a time: a PUSH listener accepts
 * one connection on first use and another after that one breaks; a dialer
 * connects at open and redials on the next call after a failure. A message
 * whose header is bad or oversized, or a timeout in the middle of a message,
 * loses the framing, so the connection is dropped; a body that fails to
 * decode keeps it (the next message starts where the body ended).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "tp_stream.h"

typedef struct tp_stream {
    nng_stream_listener *listener;
    nng_stream_dialer *dialer;
    nng_stream *conn;
    tp_xfer x; /* accept, dial and transfers on conn */
    bool tcp;
    /* Send-side buffer for everything but large payloads; grown, reused. */
    uint8_t *sbuf;
    size_t scap;
    tp_stream_pool *pool;
    nng_tls_config *tls; /* tls+tcp+stream://, or NULL */
    /* One operation at a time: the connection, aio and send buffer are
     * shared (nng sockets allow concurrent senders, so this channel does). */
    pthread_mutex_t mu;
    bool mu_ok;
    bool broken; /* conn was closed to end a transfer: drop it */
    /* TLS PUSH: a one-byte read kept pending on conn, which only ends when
     * the peer goes (a PULL peer never sends). nng 1.5.2's TLS streams
     * swallow the error of their lower TCP write: without this, sends to a
     * dead peer kept succeeding into nng's TLS buffer until it filled and
     * one timed out (18 s of heartbeats at 500 ms, lost unnoticed). */
    nng_aio *watch;
    uint8_t watch_byte;
    _Atomic bool peer_gone;
} tp_stream;

evo_status tp_stream_fail(evo_error *err, const evo_tp *tp, const char *what, int rv)
{
    if (rv == NNG_ETIMEDOUT)
        return evo_error_set(err, EVO_ERR_IO, "%s on '%s' timed out", what, tp->url);
    if (rv == NNG_ENOMEM)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s on '%s': out of memory", what, tp->url);
    if (rv == NNG_EADDRINVAL || rv == NNG_EINVAL || rv == NNG_ENOTSUP)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s on '%s': invalid address (%s)", what,
                             tp->url, nng_strerror(rv));
    return evo_error_set(err, EVO_ERR_IO, "%s on '%s' failed: %s", what, tp->url, nng_strerror(rv));
}

static void tp_stream_drop(tp_stream *s)
{
    s->broken = false;
    if (s->conn) {
        nng_stream_close(s->conn);
        if (s->watch) /* closing ended its read; wait for its callback */
            nng_aio_wait(s->watch);
        nng_stream_free(s->conn);
        s->conn = NULL;
    }
    atomic_store(&s->peer_gone, false);
}

static void tp_stream_watch_done(void *arg)
{
    tp_stream *s = (tp_stream *)arg;
    atomic_store(&s->peer_gone, true); /* an error, or bytes a PULL peer never sends */
}

/* Keep the peer-gone read pending on a new connection (TLS PUSH channels
 * only have s->watch). */
static void tp_stream_watch(tp_stream *s)
{
    if (!s->watch)
        return;
    nng_iov iov = {&s->watch_byte, 1};
    if (nng_aio_set_iov(s->watch, 1, &iov) != 0)
        return;
    nng_aio_set_timeout(s->watch, NNG_DURATION_INFINITE);
    nng_stream_recv(s->conn, s->watch);
}

/* Have a connection: accept (listener) or dial (dialer). */
static evo_status tp_stream_connect(evo_tp *tp, int32_t timeout_ms, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    if (s->conn)
        return EVO_OK;
    tp_xfer_arm(&s->x, timeout_ms);
    if (s->listener)
        nng_stream_listener_accept(s->listener, s->x.aio);
    else
        nng_stream_dialer_dial(s->dialer, s->x.aio);
    bool closed;
    int rv = tp_xfer_await(&s->x, timeout_ms, NULL, &closed);
    evo_status hs;
    if (rv != 0 && s->tls && tp_tls_handshake_failed(tp, rv, err, &hs))
        return hs;
    if (rv != 0)
        return tp_stream_fail(err, tp, s->listener ? "accept" : "dial", rv);
    s->conn = (nng_stream *)nng_aio_get_output(s->x.aio, 0);
    if (s->tcp)
        (void)nng_stream_set_bool(s->conn, NNG_OPT_TCP_NODELAY, true);
    tp_stream_watch(s);
    return EVO_OK;
}

/* Payloads this large are sent from the caller's memory instead of being
 * copied into the send buffer (smaller ones cost less to copy than an extra
 * iov entry and kernel segment). */
#define TP_STREAM_MIN_REF (16u << 10)
#define TP_STREAM_MAX_REFS 16

/* Move all bytes of iov[0..n) (entries are consumed), each transfer
 * within timeout_ms (< 0: no limit); *moved says how many went before a
 * failure. */
static int tp_stream_iov_io(tp_stream *s, nng_iov *iov, unsigned n, bool send, int32_t timeout_ms,
                            size_t *moved)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    bool closed;
    int rv = tp_xfer_io(&s->x, s->conn, iov, n, total, send, timeout_ms, moved, &closed);
    s->broken |= closed;
    return rv;
}

static int tp_stream_io(tp_stream *s, void *p, size_t n, bool send, int32_t timeout_ms,
                        size_t *moved)
{
    nng_iov iov = {p, n};
    return tp_stream_iov_io(s, &iov, 1, send, timeout_ms, moved);
}

static evo_status tp_stream_write(evo_tp *tp, nng_iov *iov, unsigned n, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    if (atomic_load(&s->peer_gone))
        tp_stream_drop(s); /* and connect anew: the send fails if nobody is there */
    evo_status st = tp_stream_connect(tp, tp->opt.send_timeout_ms, err);
    if (st != EVO_OK)
        return st;
    size_t moved;
    int rv = tp_stream_iov_io(s, iov, n, true, tp->opt.send_timeout_ms, &moved);
    if (rv != 0) {
        /* Part of a message may be on the wire: the peer's framing is lost. */
        tp_stream_drop(s);
        evo_status hs;
        if (s->tls && tp_tls_handshake_failed(tp, rv, err, &hs))
            return hs; /* the handshake runs with the first transfer */
        return tp_stream_fail(err, tp, "send", rv);
    }
    return EVO_OK;
}

static uint8_t *tp_stream_sbuf(void *ctx, size_t len)
{
    tp_stream *s = (tp_stream *)ctx;
    if (len > s->scap) {
        uint8_t *nb = (uint8_t *)realloc(s->sbuf, len);
        if (!nb)
            return NULL;
        s->sbuf = nb;
        s->scap = len;
    }
    return s->sbuf ? s->sbuf : (uint8_t *)"";
}

/* The metadata is encoded into one reused buffer; large raw payloads go to
 * the kernel straight from the sender's tensors (gather write). */
static evo_status tp_stream_send_locked(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    tp_wire_ref refs[TP_STREAM_MAX_REFS];
    tp_wire_scatter sc;
    evo_status st = tp_wire_encode_refs(m, TP_STREAM_MIN_REF, refs, TP_STREAM_MAX_REFS,
                                        tp_stream_sbuf, s, &sc, err);
    if (st != EVO_OK)
        return st;
    if (sc.total - EVO_WIRE_HEADER_SIZE > tp->opt.limits.max_body)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s message of %zu bytes exceeds the body limit",
                             evo_msg_type_name(m->type), sc.total);
    nng_iov iov[2 * TP_STREAM_MAX_REFS + 1];
    unsigned n = 0;
    size_t off = 0;
    for (uint32_t i = 0; i < sc.n_refs; i++) {
        iov[n++] = (nng_iov){sc.buf + off, refs[i].at - off};
        iov[n++] = (nng_iov){(void *)(uintptr_t)refs[i].p, refs[i].len};
        off = refs[i].at;
    }
    iov[n++] = (nng_iov){sc.buf + off, sc.buf_len - off};
    return tp_stream_write(tp, iov, n, err);
}

static evo_status tp_stream_send_encoded_locked(evo_tp *tp, const void *buf, size_t len,
                                                evo_error *err)
{
    nng_iov iov = {(void *)(uintptr_t)buf, len};
    return tp_stream_write(tp, &iov, 1, err);
}

static evo_status tp_stream_recv_locked(evo_tp *tp, evo_msg *out, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    uint8_t hdr[EVO_WIRE_HEADER_SIZE];
    uint64_t body_len;
    size_t moved;
    evo_status st = tp_stream_connect(tp, tp->opt.recv_timeout_ms, err);
    if (st != EVO_OK)
        return st;
    int rv = tp_stream_io(s, hdr, sizeof hdr, false, tp->opt.recv_timeout_ms, &moved);
    if (rv != 0) {
        /* A timeout before the first byte leaves the framing intact. */
        if (!(rv == NNG_ETIMEDOUT && moved == 0) || s->broken)
            tp_stream_drop(s);
        return tp_stream_fail(err, tp, "receive", rv);
    }
    if ((st = tp_wire_peek_header(hdr, sizeof hdr, &tp->opt.limits, &body_len, err)) != EVO_OK) {
        tp_stream_drop(s);
        evo_error_prefix(err, "message from '%s' rejected (connection dropped)", tp->url);
        return st;
    }
    /* Payloads sit at 64-byte offsets in the message, so a 64-byte aligned
     * buffer gives aligned tensor views. body_len <= max_body (u32) here. */
    size_t total = EVO_WIRE_HEADER_SIZE + (size_t)body_len;
    uint8_t *base = tp_stream_pool_get(s->pool, total);
    uint8_t *buf = base ? base + TP_PAYLOAD_ALIGN : NULL;
    if (!buf) {
        tp_stream_drop(s);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a %zu byte message from '%s'",
                             total, tp->url);
    }
    memcpy(buf, hdr, sizeof hdr);
    if ((rv = tp_stream_io(s, buf + sizeof hdr, (size_t)body_len, false, tp->opt.recv_timeout_ms,
                           &moved)) != 0) {
        tp_stream_pool_put(base);
        tp_stream_drop(s);
        return tp_stream_fail(err, tp, "receive", rv);
    }
    uint64_t received = tp_wall_ns();
    if ((st = evo_wire_decode(buf, total, &tp->opt.limits, out, err)) != EVO_OK) {
        tp_stream_pool_put(base);
        evo_error_prefix(err, "message from '%s' rejected", tp->url);
        return st;
    }
    tp_msg_adopt_buffer(out, base, tp_stream_pool_put);
    out->received_ns = received;
    return EVO_OK;
}

static int tp_stream_port(const evo_tp *tp)
{
    const tp_stream *s = (const tp_stream *)tp->impl;
    return tp_stream_listener_port(s->listener, s->tcp);
}

static void tp_stream_close(evo_tp *tp)
{
    tp_stream *s = (tp_stream *)tp->impl;
    if (!s)
        return;
    tp_stream_drop(s);
    if (s->listener) {
        nng_stream_listener_close(s->listener);
        nng_stream_listener_free(s->listener);
    }
    if (s->dialer) {
        nng_stream_dialer_close(s->dialer);
        nng_stream_dialer_free(s->dialer);
    }
    if (s->watch)
        nng_aio_free(s->watch);
    tp_xfer_fini(&s->x);
    if (s->mu_ok)
        pthread_mutex_destroy(&s->mu);
    tp_stream_pool_close(s->pool);
    if (s->tls)
        nng_tls_config_free(s->tls);
    free(s->sbuf);
    free(s);
    tp->impl = NULL;
}

static evo_status tp_stream_send(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    pthread_mutex_lock(&s->mu);
    evo_status st = tp_stream_send_locked(tp, m, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static evo_status tp_stream_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    pthread_mutex_lock(&s->mu);
    evo_status st = tp_stream_send_encoded_locked(tp, buf, len, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static evo_status tp_stream_recv(evo_tp *tp, evo_msg *out, evo_error *err)
{
    tp_stream *s = (tp_stream *)tp->impl;
    pthread_mutex_lock(&s->mu);
    evo_status st = tp_stream_recv_locked(tp, out, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static const tp_backend_ops tp_stream_ops = {tp_stream_send, tp_stream_send_encoded, tp_stream_recv,
                                             tp_stream_port, tp_stream_close};

evo_status tp_stream_open(evo_tp *tp, evo_error *err)
{
    if (tp->pattern != EVO_TP_PUSH && tp->pattern != EVO_TP_PULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "'%s': +stream channels carry PUSH/PULL tensor streams only (use "
                             "tcp:// or ipc:// for REQ/REP)",
                             tp->url);
    /* "tcp+stream://h:p" -> "tcp://h:p" for nng (tls+tcp+stream -> tls+tcp). */
    const char *plus = strstr(tp->url, "+stream://");
    char nurl[EVO_WIRE_STR_MAX];
    size_t scheme = (size_t)(plus - tp->url);
    snprintf(nurl, sizeof nurl, "%.*s%s", (int)scheme, tp->url, plus + 7);
    nng_tls_config *tls = NULL;
    evo_status st;
    if (!strncmp(nurl, "tls+tcp://", 10) && (st = tp_tls_config_make(tp, &tls, err)) != EVO_OK)
        return st;
    /* Many senders may push to one listener (a node's data channel). */
    if (tp->pattern == EVO_TP_PULL && tp->mode == EVO_TP_LISTEN)
        return tp_stream_listener_open(tp, nurl, tls, err);
    tp_stream *s = (tp_stream *)calloc(1, sizeof *s);
    if (!s) {
        if (tls)
            nng_tls_config_free(tls);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a stream channel");
    }
    tp->impl = s;
    tp->ops = &tp_stream_ops;
    s->tls = tls;
    s->tcp = !strncmp(nurl, "tcp://", 6) || tls != NULL;
    s->mu_ok = pthread_mutex_init(&s->mu, NULL) == 0;
    s->pool = s->mu_ok && tp_xfer_init(&s->x, tls != NULL) ? tp_stream_pool_new() : NULL;
    if (s->pool && tls && tp->pattern == EVO_TP_PUSH &&
        nng_aio_alloc(&s->watch, tp_stream_watch_done, s) != 0) {
        tp_stream_pool_close(s->pool);
        s->pool = NULL;
    }
    if (!s->pool) {
        tp_stream_close(tp);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a stream channel");
    }
    int rv = 0;
    if (tp->mode == EVO_TP_LISTEN) {
        if ((rv = nng_stream_listener_alloc(&s->listener, nurl)) == 0 && tls)
            rv = nng_stream_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG, tls);
        if (rv == 0)
            rv = nng_stream_listener_listen(s->listener);
        if (rv != 0) {
            st = tp_stream_fail(err, tp, "listen", rv);
            tp_stream_close(tp);
            return st;
        }
        return EVO_OK;
    }
    if ((rv = nng_stream_dialer_alloc(&s->dialer, nurl)) == 0 && tls)
        rv = nng_stream_dialer_set_ptr(s->dialer, NNG_OPT_TLS_CONFIG, tls);
    if (rv != 0) {
        st = tp_stream_fail(err, tp, "dial", rv);
        tp_stream_close(tp);
        return st;
    }
    /* Like the nng channels, a dialer connects before open returns. */
    if ((st = tp_stream_connect(tp, tp->opt.send_timeout_ms, err)) != EVO_OK) {
        tp_stream_close(tp);
        return st;
    }
    return EVO_OK;
}
