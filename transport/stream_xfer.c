/*
 * Transfers on one nng byte stream, waited on by one thread (tp_stream.h,
 * tp_xfer): the +stream channels' dialers, PUSH listener and PULL readers.
 *
 * Why two ways: over TCP and IPC the aio has no completion callback, so an
 * operation whose bytes are already there completes in the caller's thread
 * and the caller moves the next part itself (a callback would cost a
 * hand-off to one of nng's threads per operation: 1 KiB messages at half
 * the rate). nng 1.5.2's TLS streams differ: they move one record
 * (<= 16 KiB) per operation, and ignore aio timeouts and cancellation. So
 * for TLS the callback carries a transfer on from record to record, in
 * nng's thread, and wakes the waiter once (waking it per record halved the
 * throughput), and the wait is bounded here: past the deadline the transfer
 * is stopped, and if it does not stop its connection is closed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tp_stream.h"

/* nng 1.5.2 takes at most this many iov entries per aio. */
#define TP_XFER_IOV_MAX 8

/* Consume c bytes from the front of iov[0..*n) (*iov, *n advance past the
 * emptied entries). */
static void tp_iov_advance(nng_iov **iov, unsigned *n, size_t c)
{
    while (*n && c >= (*iov)->iov_len) {
        c -= (*iov)->iov_len;
        (*iov)++, (*n)--;
    }
    if (*n) {
        (*iov)->iov_buf = (uint8_t *)(*iov)->iov_buf + c;
        (*iov)->iov_len -= c;
    }
    while (*n && (*iov)->iov_len == 0)
        (*iov)++, (*n)--;
}

/* The next operation of a transfer, taken under x->mu so that it can be
 * started after the lock is dropped (the waiter may give up meanwhile). */
typedef struct tp_xfer_next {
    nng_iov iov[TP_XFER_IOV_MAX];
    unsigned n;
    bool send;
    nng_stream *conn;
} tp_xfer_next;

static void tp_xfer_next_take(const tp_xfer *x, tp_xfer_next *nx)
{
    nx->n = x->n < TP_XFER_IOV_MAX ? x->n : TP_XFER_IOV_MAX;
    memcpy(nx->iov, x->iov, nx->n * sizeof *nx->iov);
    nx->send = x->send;
    nx->conn = x->conn;
}

static void tp_xfer_submit(tp_xfer *x, tp_xfer_next *nx)
{
    (void)nng_aio_set_iov(x->aio, nx->n, nx->iov); /* nng copies the entries */
    if (nx->send)
        nng_stream_send(nx->conn, x->aio);
    else
        nng_stream_recv(nx->conn, x->aio);
}

/* The callback of a continued aio: go on with the transfer (if one is in
 * progress and wants more) or wake the waiter. */
static void tp_xfer_done(void *arg)
{
    tp_xfer *x = (tp_xfer *)arg;
    int rv = nng_aio_result(x->aio);
    size_t c = nng_aio_count(x->aio);
    bool more = false;
    tp_xfer_next nx;
    pthread_mutex_lock(&x->mu);
    if (x->n) { /* a transfer, not an accept or dial */
        if (rv == 0 && c == 0)
            rv = NNG_ECLOSED;
        if (rv == 0) {
            x->moved += c;
            tp_iov_advance(&x->iov, &x->n, c);
            more = x->n > 0 && x->moved < x->at_least && !x->stop && !x->aborted;
        }
    }
    x->rv = rv;
    if (more) {
        tp_xfer_next_take(x, &nx);
    } else {
        x->done = true;
        pthread_cond_signal(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    if (more)
        tp_xfer_submit(x, &nx);
}

bool tp_xfer_init(tp_xfer *x, bool continued)
{
    *x = (tp_xfer){0};
    x->continued = continued;
    if (pthread_mutex_init(&x->mu, NULL) != 0)
        return false;
    x->mu_ok = true;
    x->cv_ok = tp_cond_init_monotonic(&x->cv);
    return x->cv_ok && nng_aio_alloc(&x->aio, continued ? tp_xfer_done : NULL, x) == 0;
}

void tp_xfer_fini(tp_xfer *x)
{
    if (x->aio)
        nng_aio_free(x->aio);
    if (x->cv_ok)
        pthread_cond_destroy(&x->cv);
    if (x->mu_ok)
        pthread_mutex_destroy(&x->mu);
    *x = (tp_xfer){0};
}

void tp_xfer_abort(tp_xfer *x)
{
    pthread_mutex_lock(&x->mu);
    x->aborted = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

void tp_xfer_arm(tp_xfer *x, int32_t ms)
{
    nng_aio_set_timeout(x->aio, ms < 0 ? NNG_DURATION_INFINITE : (nng_duration)ms);
    pthread_mutex_lock(&x->mu);
    x->done = false;
    x->stop = false;
    x->rv = 0;
    pthread_mutex_unlock(&x->mu);
}

int tp_xfer_await(tp_xfer *x, int32_t ms, nng_stream *conn, bool *closed)
{
    *closed = false;
    if (!x->continued) { /* TCP and IPC honour the aio timeout */
        nng_aio_wait(x->aio);
        return nng_aio_result(x->aio);
    }
    struct timespec ts = tp_deadline_ms(ms < 0 ? 0 : ms);
    bool late = false;
    pthread_mutex_lock(&x->mu);
    /* ms bounds a stall, as nng's own timeout bounds each operation over
     * TCP: a transfer that keeps moving records may take longer in all (a
     * large tensor on a slow link). */
    size_t seen = x->moved;
    while (!x->done && !x->aborted && !late) {
        if (ms < 0) {
            pthread_cond_wait(&x->cv, &x->mu);
        } else if (pthread_cond_timedwait(&x->cv, &x->mu, &ts) == ETIMEDOUT) {
            late = !(x->n && x->moved != seen);
            seen = x->moved;
            ts = tp_deadline_ms(ms);
        }
    }
    if (late)
        x->stop = true; /* the callback starts no further record */
    pthread_mutex_unlock(&x->mu);
    if (late) {
        nng_aio_cancel(x->aio);
        /* nng 1.5.2's TLS streams cannot cancel a transfer either: if the
         * cancel does not end it, closing the connection does. */
        const struct timespec grace = tp_deadline_ms(200);
        pthread_mutex_lock(&x->mu);
        while (!x->done)
            if (pthread_cond_timedwait(&x->cv, &x->mu, &grace) == ETIMEDOUT)
                break;
        bool stuck = !x->done;
        pthread_mutex_unlock(&x->mu);
        if (stuck && conn) {
            nng_stream_close(conn);
            *closed = true;
        }
        nng_aio_wait(x->aio);
    }
    pthread_mutex_lock(&x->mu);
    int rv = x->aborted && !x->done ? NNG_ECLOSED : x->rv;
    bool short_of = x->n && x->moved < x->at_least; /* stopped between two records */
    pthread_mutex_unlock(&x->mu);
    if (late && (rv != 0 || short_of))
        return NNG_ETIMEDOUT;
    return rv;
}

int tp_xfer_io(tp_xfer *x, nng_stream *conn, nng_iov *iov, unsigned n, size_t at_least, bool send,
               int32_t timeout_ms, size_t *moved, bool *closed)
{
    *moved = 0;
    *closed = false;
    while (n && iov->iov_len == 0)
        iov++, n--;
    if (n == 0 || at_least == 0)
        return 0;
    if (x->continued) { /* one operation, carried on by the callback */
        pthread_mutex_lock(&x->mu);
        if (x->aborted) {
            pthread_mutex_unlock(&x->mu);
            return NNG_ECLOSED;
        }
        x->conn = conn;
        x->iov = iov;
        x->n = n;
        x->send = send;
        x->at_least = at_least;
        x->moved = 0;
        tp_xfer_next nx;
        tp_xfer_next_take(x, &nx);
        pthread_mutex_unlock(&x->mu);
        tp_xfer_arm(x, timeout_ms);
        tp_xfer_submit(x, &nx);
        int rv = tp_xfer_await(x, timeout_ms, conn, closed);
        pthread_mutex_lock(&x->mu);
        *moved = x->moved;
        x->n = 0;
        pthread_mutex_unlock(&x->mu);
        return rv;
    }
    while (n && *moved < at_least) {
        int rv = nng_aio_set_iov(x->aio, n < TP_XFER_IOV_MAX ? n : TP_XFER_IOV_MAX, iov);
        if (rv != 0)
            return rv;
        nng_aio_set_timeout(x->aio,
                            timeout_ms < 0 ? NNG_DURATION_INFINITE : (nng_duration)timeout_ms);
        if (send)
            nng_stream_send(conn, x->aio);
        else
            nng_stream_recv(conn, x->aio);
        nng_aio_wait(x->aio);
        size_t c = nng_aio_count(x->aio);
        if ((rv = nng_aio_result(x->aio)) != 0) {
            *moved += c;
            return rv;
        }
        if (c == 0)
            return NNG_ECLOSED;
        *moved += c;
        tp_iov_advance(&iov, &n, c);
    }
    return 0;
}
