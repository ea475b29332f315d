/*
 * The PULL listener of the +stream channels: one channel, many senders.
 *
 * Why: a node's data listener receives from the coordinator and from every
 * upstream node of its pipeline, and the coordinator's from every node
 * (heartbeats, results). nng's SP PULL socket takes many peers but
 * allocates each message with calloc (stream_backend.c says what that
 * costs); nng's byte streams have no fan-in, so it is built here.
 *
 * How: an accept thread takes connections; each connection gets a reader
 * thread that reads its messages (the 32-byte header with whatever else
 * has arrived, then the rest of the message straight into a pool buffer,
 * stream_pool.c) and queues them; evo_tp_recv pops and decodes. Reader
 * threads wait on their transfers (tp_xfer, stream_xfer.c: over TCP and IPC
 * nng then moves bytes that are already there in the reader's own thread;
 * a first version driven by completion callbacks moved 1 KiB messages at
 * a tenth of the rate). The queue holds stream_depth messages; a reader
 * finding it full waits, so memory stays bounded and senders feel
 * back-pressure through TCP. A header the limits refuse loses that connection's framing: it is
 * closed and the next evo_tp_recv reports it; a body that fails to decode
 * is reported by evo_tp_recv and its connection goes on. A sender that
 * disconnects just goes away (the others are not affected).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "tp_stream.h"

/* Connections beyond this are closed at accept: each may hold a message of
 * up to the body limit while it is read. */
#define TP_SL_MAX_CONNS 256
/* Reader threads only read into buffers and queue them. */
#define TP_SL_STACK (256u << 10)
/* Each read of a header asks for up to this many bytes: a burst of small
 * messages then arrives in one read instead of two per message (header,
 * body), and a large message's first bytes come with its header (they are
 * copied into its buffer: at most this much per message, the rest is read
 * straight into the buffer). */
#define TP_SL_READAHEAD (16u << 10)

typedef struct tp_sl tp_sl;

typedef struct tp_sl_conn {
    tp_sl *l;
    nng_stream *st;
    tp_xfer x;   /* the reader's transfers */
    tp_xfer xc;  /* TLS: its long reads, continued from record to record */
    uint8_t *ra; /* read-ahead: TP_SL_READAHEAD bytes, ra_len of them buffered from ra_pos */
    size_t ra_pos, ra_len;
    pthread_t th;
    bool finished; /* the reader thread has returned: join it */
    struct tp_sl_conn *next;
} tp_sl_conn;

/* A queued whole message, or (base NULL) a report of a refused one. */
typedef struct tp_sl_item {
    uint8_t *base;
    size_t total;
    evo_error err;
    uint64_t received_ns; /* when the reader had all of it (evo_msg.received_ns) */
} tp_sl_item;

struct tp_sl {
    nng_stream_listener *listener;
    nng_tls_config *tls;
    tp_stream_pool *pool;
    evo_tp_limits limits;
    char url[EVO_WIRE_STR_MAX];
    bool tcp;
    pthread_t accept_th;
    bool accept_started;
    pthread_mutex_t mu;
    pthread_cond_t ready;    /* the queue is not empty */
    pthread_cond_t not_full; /* the queue has room */
    bool mu_ok, ready_ok, not_full_ok;
    tp_sl_conn *conns;
    int n_conns;
    tp_sl_item *q;
    int q_cap, q_head, q_len;
    bool closing;
};

/* Queue an item, waiting for room (false: the channel is closing). */
static bool tp_sl_push(tp_sl *l, const tp_sl_item *it)
{
    pthread_mutex_lock(&l->mu);
    while (l->q_len == l->q_cap && !l->closing)
        pthread_cond_wait(&l->not_full, &l->mu);
    bool ok = !l->closing;
    if (ok) {
        l->q[(l->q_head + l->q_len) % l->q_cap] = *it;
        l->q_len++;
        pthread_cond_signal(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

/* Read at least at_least bytes into p[0..cap) (false: closed, failed or
 * the peer left); *got: how many came. */
static bool tp_sl_read(tp_sl_conn *c, uint8_t *p, size_t cap, size_t at_least, size_t *got)
{
    nng_iov iov = {p, cap};
    bool closed;
    /* Short TLS reads stay in the reader's thread when their record is
     * there (a callback per read halved the rate of 1 KiB messages). */
    tp_xfer *x = c->xc.aio && at_least > TP_SL_READAHEAD ? &c->xc : &c->x;
    return tp_xfer_io(x, c->st, &iov, 1, at_least, false, -1, got, &closed) == 0 &&
           *got >= at_least;
}

/* Have at least need (<= TP_SL_READAHEAD) bytes in c's read-ahead buffer;
 * each read takes whatever has arrived, up to the buffer's free space. */
static bool tp_sl_fill(tp_sl_conn *c, size_t need)
{
    if (c->ra_len >= need)
        return true;
    if (c->ra_pos + need > TP_SL_READAHEAD) {
        memmove(c->ra, c->ra + c->ra_pos, c->ra_len);
        c->ra_pos = 0;
    }
    size_t have = c->ra_pos + c->ra_len, got;
    if (!tp_sl_read(c, c->ra + have, TP_SL_READAHEAD - have, need - c->ra_len, &got))
        return false;
    c->ra_len += got;
    return true;
}

/* The next n bytes of the stream into p: first what is buffered, the rest
 * read straight into p. */
static bool tp_sl_take(tp_sl_conn *c, uint8_t *p, size_t n)
{
    size_t k = n < c->ra_len ? n : c->ra_len, got;
    memcpy(p, c->ra + c->ra_pos, k);
    c->ra_pos += k;
    c->ra_len -= k;
    if (c->ra_len == 0)
        c->ra_pos = 0;
    return k == n || tp_sl_read(c, p + k, n - k, n - k, &got);
}

static void *tp_sl_reader(void *arg)
{
    tp_sl_conn *c = (tp_sl_conn *)arg;
    tp_sl *l = c->l;
    for (;;) {
        if (!tp_sl_fill(c, EVO_WIRE_HEADER_SIZE))
            break; /* closed, or the sender went away */
        const uint8_t *hdr = c->ra + c->ra_pos;
        uint64_t body_len;
        tp_sl_item it = {NULL, 0, {EVO_OK, ""}, 0};
        evo_status st =
            tp_wire_peek_header(hdr, EVO_WIRE_HEADER_SIZE, &l->limits, &body_len, &it.err);
        if (st != EVO_OK) {
            evo_error_prefix(&it.err, "message from '%s' rejected (connection dropped)", l->url);
            tp_sl_push(l, &it);
            break;
        }
        /* body_len <= max_body (u32) here */
        it.total = EVO_WIRE_HEADER_SIZE + (size_t)body_len;
        it.base = tp_stream_pool_get(l->pool, it.total);
        if (!it.base) {
            evo_error_set(&it.err, EVO_ERR_NOMEM,
                          "no memory for a %zu byte message from '%s' (connection dropped)",
                          it.total, l->url);
            tp_sl_push(l, &it);
            break;
        }
        bool whole = tp_sl_take(c, it.base + TP_PAYLOAD_ALIGN, it.total);
        it.received_ns = tp_wall_ns();
        if (!whole || !tp_sl_push(l, &it)) {
            tp_stream_pool_put(it.base);
            break;
        }
    }
    nng_stream_close(c->st);
    pthread_mutex_lock(&l->mu);
    c->finished = true;
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void tp_sl_conn_free(tp_sl_conn *c)
{
    pthread_join(c->th, NULL);
    tp_xfer_fini(&c->x);
    tp_xfer_fini(&c->xc);
    nng_stream_free(c->st);
    free(c->ra);
    free(c);
}

/* Unlink finished connections (with l->mu held) into *out for joining. */
static void tp_sl_take_finished_locked(tp_sl *l, tp_sl_conn **out)
{
    for (tp_sl_conn **pp = &l->conns; *pp;) {
        tp_sl_conn *c = *pp;
        if (c->finished) {
            *pp = c->next;
            c->next = *out;
            *out = c;
            l->n_conns--;
        } else {
            pp = &c->next;
        }
    }
}

static void *tp_sl_acceptor(void *arg)
{
    tp_sl *l = (tp_sl *)arg;
    nng_aio *aio = NULL;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0)
        return NULL;
    pthread_attr_t attr;
    bool attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok)
        (void)pthread_attr_setstacksize(&attr, TP_SL_STACK);
    for (;;) {
        nng_stream_listener_accept(l->listener, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            break;
        if (rv != 0) {
            nng_msleep(10); /* e.g. out of file descriptors: do not spin */
            continue;
        }
        nng_stream *st = (nng_stream *)nng_aio_get_output(aio, 0);
        if (l->tcp)
            (void)nng_stream_set_bool(st, NNG_OPT_TCP_NODELAY, true);
        tp_sl_conn *c = (tp_sl_conn *)calloc(1, sizeof *c), *done = NULL;
        pthread_mutex_lock(&l->mu);
        tp_sl_take_finished_locked(l, &done); /* a long-lived listener sees many senders */
        bool take = c && !l->closing && l->n_conns < TP_SL_MAX_CONNS &&
                    (c->ra = (uint8_t *)malloc(TP_SL_READAHEAD)) != NULL &&
                    tp_xfer_init(&c->x, false) && (!l->tls || tp_xfer_init(&c->xc, true));
        if (take) {
            c->l = l;
            c->st = st;
            take = pthread_create(&c->th, attr_ok ? &attr : NULL, tp_sl_reader, c) == 0;
        }
        if (take) {
            c->next = l->conns;
            l->conns = c;
            l->n_conns++;
        }
        pthread_mutex_unlock(&l->mu);
        while (done) {
            tp_sl_conn *d = done;
            done = d->next;
            tp_sl_conn_free(d);
        }
        if (!take) {
            if (c) {
                tp_xfer_fini(&c->x);
                tp_xfer_fini(&c->xc);
                free(c->ra);
            }
            free(c);
            nng_stream_close(st);
            nng_stream_free(st);
        }
    }
    if (attr_ok)
        pthread_attr_destroy(&attr);
    nng_aio_free(aio);
    return NULL;
}

static bool tp_sl_wait_locked(tp_sl *l, int32_t timeout_ms, const struct timespec *deadline)
{
    if (timeout_ms < 0)
        return pthread_cond_wait(&l->ready, &l->mu) == 0;
    return pthread_cond_timedwait(&l->ready, &l->mu, deadline) != ETIMEDOUT;
}

static evo_status tp_sl_recv(evo_tp *tp, evo_msg *out, evo_error *err)
{
    tp_sl *l = (tp_sl *)tp->impl;
    const int32_t timeout_ms = tp->opt.recv_timeout_ms;
    const struct timespec deadline = tp_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&l->mu);
    while (l->q_len == 0)
        if (!tp_sl_wait_locked(l, timeout_ms, &deadline))
            break;
    tp_sl_item it = {NULL, 0, {EVO_ERR_IO, ""}, 0};
    bool have = l->q_len > 0;
    if (have) {
        it = l->q[l->q_head];
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_len--;
        pthread_cond_signal(&l->not_full);
    }
    pthread_mutex_unlock(&l->mu);
    if (!have)
        return evo_error_set(err, EVO_ERR_IO, "receive on '%s' timed out", tp->url);
    if (!it.base) {
        if (err)
            *err = it.err;
        return it.err.code;
    }
    const uint8_t *msg = it.base + TP_PAYLOAD_ALIGN;
    evo_status st = evo_wire_decode(msg, it.total, &tp->opt.limits, out, err);
    if (st != EVO_OK) {
        tp_stream_pool_put(it.base);
        evo_error_prefix(err, "message from '%s' rejected", tp->url);
        return st;
    }
    tp_msg_adopt_buffer(out, it.base, tp_stream_pool_put);
    out->received_ns = it.received_ns;
    return EVO_OK;
}

static evo_status tp_sl_send(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    (void)m;
    return evo_error_set(err, EVO_ERR_INVALID_ARG, "'%s' is a PULL channel: it only receives",
                         tp->url);
}

static evo_status tp_sl_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err)
{
    (void)buf;
    (void)len;
    return tp_sl_send(tp, NULL, err);
}

static int tp_sl_port(const evo_tp *tp)
{
    const tp_sl *l = (const tp_sl *)tp->impl;
    return tp_stream_listener_port(l->listener, l->tcp);
}

static void tp_sl_close(evo_tp *tp)
{
    tp_sl *l = (tp_sl *)tp->impl;
    if (!l)
        return;
    if (l->mu_ok) {
        pthread_mutex_lock(&l->mu);
        l->closing = true;
        if (l->not_full_ok)
            pthread_cond_broadcast(&l->not_full);
        pthread_mutex_unlock(&l->mu);
    }
    /* The acceptor stops, then every reader (its stream closed under it). */
    if (l->listener)
        nng_stream_listener_close(l->listener);
    if (l->accept_started)
        pthread_join(l->accept_th, NULL);
    tp_sl_conn *conns = l->conns;
    l->conns = NULL;
    /* Closing the stream ends a transfer in progress; stopping the aio
     * also refuses one the reader is about to start. */
    for (tp_sl_conn *c = conns; c; c = c->next) {
        tp_xfer_abort(&c->x);
        if (c->xc.aio)
            tp_xfer_abort(&c->xc);
        nng_stream_close(c->st);
        nng_aio_stop(c->x.aio);
        if (c->xc.aio)
            nng_aio_stop(c->xc.aio);
    }
    while (conns) {
        tp_sl_conn *c = conns;
        conns = c->next;
        tp_sl_conn_free(c);
    }
    for (int i = 0; i < l->q_len; i++) {
        tp_sl_item *it = &l->q[(l->q_head + i) % l->q_cap];
        if (it->base)
            tp_stream_pool_put(it->base);
    }
    if (l->listener)
        nng_stream_listener_free(l->listener);
    if (l->tls)
        nng_tls_config_free(l->tls);
    tp_stream_pool_close(l->pool);
    if (l->ready_ok)
        pthread_cond_destroy(&l->ready);
    if (l->not_full_ok)
        pthread_cond_destroy(&l->not_full);
    if (l->mu_ok)
        pthread_mutex_destroy(&l->mu);
    free(l->q);
    free(l);
    tp->impl = NULL;
}

static const tp_backend_ops tp_sl_ops = {tp_sl_send, tp_sl_send_encoded, tp_sl_recv, tp_sl_port,
                                         tp_sl_close};

evo_status tp_stream_listener_open(evo_tp *tp, const char *nurl, nng_tls_config *tls,
                                   evo_error *err)
{
    tp_sl *l = (tp_sl *)calloc(1, sizeof *l);
    if (!l) {
        if (tls)
            nng_tls_config_free(tls);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a stream channel");
    }
    tp->impl = l;
    tp->ops = &tp_sl_ops;
    l->tls = tls;
    l->limits = tp->opt.limits;
    snprintf(l->url, sizeof l->url, "%s", tp->url);
    l->tcp = !strncmp(nurl, "tcp://", 6) || tls != NULL;
    l->q_cap = tp->opt.stream_depth;
    l->mu_ok = pthread_mutex_init(&l->mu, NULL) == 0;
    l->not_full_ok = pthread_cond_init(&l->not_full, NULL) == 0;
    l->ready_ok = tp_cond_init_monotonic(&l->ready);
    l->q = (tp_sl_item *)calloc((size_t)l->q_cap, sizeof *l->q);
    l->pool = tp_stream_pool_new();
    if (!l->mu_ok || !l->ready_ok || !l->not_full_ok || !l->q || !l->pool) {
        tp_sl_close(tp);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a stream channel");
    }
    int rv = nng_stream_listener_alloc(&l->listener, nurl);
    if (rv == 0 && tls)
        rv = nng_stream_listener_set_ptr(l->listener, NNG_OPT_TLS_CONFIG, tls);
    if (rv == 0)
        rv = nng_stream_listener_listen(l->listener);
    if (rv != 0) {
        evo_status st = tp_stream_fail(err, tp, "listen", rv);
        tp_sl_close(tp);
        return st;
    }
    l->accept_started = pthread_create(&l->accept_th, NULL, tp_sl_acceptor, l) == 0;
    if (!l->accept_started) {
        tp_sl_close(tp);
        return evo_error_set(err, EVO_ERR_NOMEM, "cannot start the accept thread of '%s'", tp->url);
    }
    return EVO_OK;
}
