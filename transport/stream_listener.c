/*
 * The PULL listener of the +stream channels: one channel, many senders.
 *
 * Why: a node's data listener receives from the coordinator and from every
 * upstream node of its pipeline, and the coordinator's from every node
 * (heartbeats, results). nng's SP PULL socket takes many peers but
 * allocates each message with calloc (stream_backend.c says what that
 * costs); nng's byte streams have no fan-in, so it is built here on nng's
 * aio callbacks.
 *
 * How: every accepted connection reads its messages on nng's threads, the
 * 32-byte header first, then the whole message into a pool buffer
 * (stream_pool.c). Whole messages wait in a queue of stream_depth entries
 * that evo_tp_recv pops and decodes. When the queue is full a connection
 * stops reading after its current message (it is parked) until the
 * consumer makes room, so at most stream_depth + one message per connection
 * are held, and senders feel back-pressure through TCP. A header the
 * limits refuse loses that connection's framing: it is closed and the next
 * evo_tp_recv reports it; a body that fails to decode is reported by
 * evo_tp_recv and its connection goes on. A sender that disconnects just
 * goes away (the others are not affected).
 *
 * Locking: one mutex guards the queue, the connection list and each
 * connection's state. nng calls (starting a read, closing a stream,
 * stopping an aio) are made without it, because nng may wait for a
 * callback that needs it.
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

typedef struct tp_sl tp_sl;

typedef struct tp_sl_conn {
    tp_sl *l;
    nng_stream *st;
    nng_aio *aio;
    uint8_t hdr[EVO_WIRE_HEADER_SIZE];
    uint8_t *base; /* pool buffer of the message being read; NULL: reading a header */
    size_t total;  /* bytes of that message, header included */
    size_t got;    /* bytes of the current part (header, or whole message) read */
    bool parked;   /* a whole message in base waits for room in the queue */
    bool dead;     /* closed: reaped by the consumer */
    struct tp_sl_conn *next;
} tp_sl_conn;

/* A queued whole message, or (base NULL) a report of a refused one. */
typedef struct tp_sl_item {
    uint8_t *base;
    size_t total;
    evo_error err;
} tp_sl_item;

struct tp_sl {
    nng_stream_listener *listener;
    nng_aio *accept_aio;
    nng_tls_config *tls;
    tp_stream_pool *pool;
    evo_tp_limits limits;
    char url[EVO_WIRE_STR_MAX];
    bool tcp;
    pthread_mutex_t mu;
    pthread_cond_t ready; /* the queue is not empty */
    bool mu_ok, cond_ok;
    tp_sl_conn *conns;
    int n_conns;
    tp_sl_item *q;
    int q_cap, q_head, q_len;
    bool closing;
};

static void tp_sl_conn_cb(void *arg);

/* Free a connection that no callback can reach any more. */
static void tp_sl_conn_free(tp_sl_conn *c)
{
    if (c->aio) {
        nng_aio_stop(c->aio);
        nng_aio_free(c->aio);
    }
    if (c->st) {
        nng_stream_close(c->st);
        nng_stream_free(c->st);
    }
    if (c->base)
        tp_stream_pool_put(c->base);
    free(c);
}

/* Read the rest of the current part: the header, or the message. */
static void tp_sl_read(tp_sl_conn *c)
{
    nng_iov iov;
    if (c->base) {
        iov.iov_buf = c->base + TP_PAYLOAD_ALIGN + c->got;
        iov.iov_len = c->total - c->got;
    } else {
        iov.iov_buf = c->hdr + c->got;
        iov.iov_len = sizeof c->hdr - c->got;
    }
    if (nng_aio_set_iov(c->aio, 1, &iov) != 0) { /* cannot fail for one entry */
        nng_stream_close(c->st);
        return;
    }
    nng_stream_recv(c->st, c->aio);
}

/* Queue an item (the caller checked there is room) and wake the consumer. */
static void tp_sl_push_locked(tp_sl *l, const tp_sl_item *it)
{
    l->q[(l->q_head + l->q_len) % l->q_cap] = *it;
    l->q_len++;
    pthread_cond_signal(&l->ready);
}

/* Report a refused message, if there is room (the connection is closed
 * either way; a full queue means the consumer is busy with good ones). */
static void tp_sl_report_locked(tp_sl *l, const evo_error *e)
{
    if (l->q_len == l->q_cap)
        return;
    tp_sl_item it = {NULL, 0, *e};
    tp_sl_push_locked(l, &it);
}

/* The current part of c is complete: step its state. Returns true if the
 * next read must be started, false if c is parked or dead. */
static bool tp_sl_step_locked(tp_sl_conn *c)
{
    tp_sl *l = c->l;
    if (!c->base) {
        if (c->got < sizeof c->hdr)
            return true;
        uint64_t body_len;
        evo_error e;
        evo_status st = tp_wire_peek_header(c->hdr, sizeof c->hdr, &l->limits, &body_len, &e);
        if (st != EVO_OK) {
            evo_error_prefix(&e, "message from '%s' rejected (connection dropped)", l->url);
            tp_sl_report_locked(l, &e);
            c->dead = true;
            return false;
        }
        /* body_len <= max_body (u32) here */
        size_t total = EVO_WIRE_HEADER_SIZE + (size_t)body_len;
        uint8_t *base = tp_stream_pool_get(l->pool, total);
        if (!base) {
            evo_error_set(&e, EVO_ERR_NOMEM,
                          "no memory for a %zu byte message from '%s' (connection dropped)", total,
                          l->url);
            tp_sl_report_locked(l, &e);
            c->dead = true;
            return false;
        }
        memcpy(base + TP_PAYLOAD_ALIGN, c->hdr, sizeof c->hdr);
        c->base = base;
        c->total = total;
        /* c->got == header size: the body follows */
    }
    if (c->got < c->total)
        return true;
    if (l->q_len == l->q_cap) {
        c->parked = true;
        return false;
    }
    tp_sl_item it = {c->base, c->total, {EVO_OK, ""}};
    tp_sl_push_locked(l, &it);
    c->base = NULL;
    c->got = 0;
    return true;
}

static void tp_sl_conn_cb(void *arg)
{
    tp_sl_conn *c = (tp_sl_conn *)arg;
    tp_sl *l = c->l;
    int rv = nng_aio_result(c->aio);
    size_t n = rv == 0 ? nng_aio_count(c->aio) : 0;
    pthread_mutex_lock(&l->mu);
    bool again = false;
    if (l->closing || rv != 0 || n == 0) {
        c->dead = true; /* closed, or the sender went away */
    } else {
        c->got += n;
        again = tp_sl_step_locked(c);
    }
    bool dead = c->dead;
    pthread_mutex_unlock(&l->mu);
    if (again)
        tp_sl_read(c);
    else if (dead)
        nng_stream_close(c->st); /* the consumer reaps it */
}

static void tp_sl_accept_cb(void *arg)
{
    tp_sl *l = (tp_sl *)arg;
    int rv = nng_aio_result(l->accept_aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return; /* the channel is closing */
    if (rv == 0) {
        nng_stream *st = (nng_stream *)nng_aio_get_output(l->accept_aio, 0);
        tp_sl_conn *c = (tp_sl_conn *)calloc(1, sizeof *c);
        if (c && nng_aio_alloc(&c->aio, tp_sl_conn_cb, c) == 0) {
            c->l = l;
            c->st = st;
            if (l->tcp)
                (void)nng_stream_set_bool(st, NNG_OPT_TCP_NODELAY, true);
            nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
            pthread_mutex_lock(&l->mu);
            bool take = !l->closing && l->n_conns < TP_SL_MAX_CONNS;
            if (take) {
                c->next = l->conns;
                l->conns = c;
                l->n_conns++;
            }
            pthread_mutex_unlock(&l->mu);
            if (take)
                tp_sl_read(c);
            else
                tp_sl_conn_free(c);
        } else {
            if (c)
                free(c);
            nng_stream_close(st);
            nng_stream_free(st);
        }
    } else {
        nng_msleep(10); /* e.g. out of file descriptors: do not spin */
    }
    nng_stream_listener_accept(l->listener, l->accept_aio);
}

/* Unlink dead connections (with l->mu held) into *out for freeing. */
static void tp_sl_take_dead_locked(tp_sl *l, tp_sl_conn **out)
{
    for (tp_sl_conn **pp = &l->conns; *pp;) {
        tp_sl_conn *c = *pp;
        if (c->dead) {
            *pp = c->next;
            c->next = *out;
            *out = c;
            l->n_conns--;
        } else {
            pp = &c->next;
        }
    }
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
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    tp_sl_conn *dead = NULL, *resume = NULL;
    pthread_mutex_lock(&l->mu);
    while (l->q_len == 0)
        if (!tp_sl_wait_locked(l, timeout_ms, &deadline))
            break;
    tp_sl_item it = {NULL, 0, {EVO_ERR_IO, ""}};
    bool have = l->q_len > 0;
    if (have) {
        it = l->q[l->q_head];
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_len--;
        /* The freed slot goes to a parked connection, which reads on. */
        for (tp_sl_conn *c = l->conns; c; c = c->next)
            if (c->parked && !c->dead) {
                tp_sl_item pi = {c->base, c->total, {EVO_OK, ""}};
                tp_sl_push_locked(l, &pi);
                c->parked = false;
                c->base = NULL;
                c->got = 0;
                resume = c;
                break;
            }
    }
    tp_sl_take_dead_locked(l, &dead);
    pthread_mutex_unlock(&l->mu);
    if (resume)
        tp_sl_read(resume);
    while (dead) {
        tp_sl_conn *c = dead;
        dead = c->next;
        tp_sl_conn_free(c);
    }
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
    int port = -1;
    if (!l->tcp || nng_stream_listener_get_int(l->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return -1;
    return port;
}

static void tp_sl_close(evo_tp *tp)
{
    tp_sl *l = (tp_sl *)tp->impl;
    if (!l)
        return;
    tp_sl_conn *conns = NULL;
    if (l->mu_ok) {
        pthread_mutex_lock(&l->mu);
        l->closing = true;
        pthread_mutex_unlock(&l->mu);
    }
    /* No accept callback runs after this, so the list is complete. */
    if (l->listener)
        nng_stream_listener_close(l->listener);
    if (l->accept_aio)
        nng_aio_stop(l->accept_aio);
    if (l->mu_ok) {
        pthread_mutex_lock(&l->mu);
        conns = l->conns;
        l->conns = NULL;
        pthread_mutex_unlock(&l->mu);
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
    if (l->accept_aio)
        nng_aio_free(l->accept_aio);
    if (l->tls)
        nng_tls_config_free(l->tls);
    tp_stream_pool_close(l->pool);
    if (l->cond_ok)
        pthread_cond_destroy(&l->ready);
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
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) == 0) {
        l->cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                     pthread_cond_init(&l->ready, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    l->q = (tp_sl_item *)calloc((size_t)l->q_cap, sizeof *l->q);
    l->pool = tp_stream_pool_new();
    if (!l->mu_ok || !l->cond_ok || !l->q || !l->pool) {
        tp_sl_close(tp);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a stream channel");
    }
    int rv = nng_aio_alloc(&l->accept_aio, tp_sl_accept_cb, l);
    if (rv == 0)
        rv = nng_stream_listener_alloc(&l->listener, nurl);
    if (rv == 0 && tls)
        rv = nng_stream_listener_set_ptr(l->listener, NNG_OPT_TLS_CONFIG, tls);
    if (rv == 0)
        rv = nng_stream_listener_listen(l->listener);
    if (rv != 0) {
        evo_status st = tp_stream_fail(err, tp, "listen", rv);
        tp_sl_close(tp);
        return st;
    }
    nng_stream_listener_accept(l->listener, l->accept_aio);
    return EVO_OK;
}
