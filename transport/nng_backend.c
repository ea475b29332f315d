/*
 * nng channels: REQ/REP for control traffic and PUSH/PULL for tensor
 * streams, over tcp://, ipc://, inproc:// and tls+tcp:// (nng's mbedTLS
 * engine).
 *
 * Copies: a message is encoded straight into an nng message body (one copy of
 * each raw tensor, from the sender's buffer). On receive the decoded message
 * keeps the nng message, and its tensors point into it, so the consumer reads
 * payloads where the socket put them. nng's receive size limit is set to the
 * evo body limit, so an oversized message is refused by nng before it
 * allocates for it. nng allocates each message with calloc on both ends;
 * for large tensors that halves throughput (docs/benchmarks.md), which is
 * what the +stream channels (stream_backend.c) avoid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tls/tls.h>

#include "tp_internal.h"

typedef struct tp_nng {
    nng_socket sock;
    nng_listener listener;
    nng_dialer dialer;
    nng_tls_config *tls;
    bool listening;
} tp_nng;

static const char *const tp_nng_pattern_names[] = {"req", "rep", "push", "pull"};

static evo_status tp_nng_fail(evo_error *err, const evo_tp *tp, const char *what, int rv)
{
    if (rv == NNG_ETIMEDOUT)
        return evo_error_set(err, EVO_ERR_IO, "%s on '%s' timed out", what, tp->url);
    if (rv == NNG_ESTATE)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s on '%s' is not allowed now (a %s socket: reply only after a "
                             "request)",
                             what, tp->url, tp_nng_pattern_names[tp->pattern]);
    if (rv == NNG_ENOMEM)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s on '%s': out of memory", what, tp->url);
    if (rv == NNG_EMSGSIZE)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s on '%s': message exceeds the size limit", what,
                             tp->url);
    if (rv == NNG_EADDRINVAL || rv == NNG_EINVAL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s on '%s': invalid address or option (%s)",
                             what, tp->url, nng_strerror(rv));
    return evo_error_set(err, EVO_ERR_IO, "%s on '%s' failed: %s", what, tp->url, nng_strerror(rv));
}

static void tp_nng_free_msg(void *p)
{
    nng_msg_free((nng_msg *)p);
}

static evo_status tp_nng_send_msg(evo_tp *tp, nng_msg *msg, evo_error *err)
{
    tp_nng *n = (tp_nng *)tp->impl;
    int rv = nng_sendmsg(n->sock, msg, 0);
    if (rv != 0) {
        nng_msg_free(msg);
        return tp_nng_fail(err, tp, "send", rv);
    }
    return EVO_OK;
}

static evo_status tp_nng_send(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    size_t size, wrote;
    nng_msg *msg;
    evo_status st;
    if ((st = evo_wire_encoded_size(m, &size, err)) != EVO_OK)
        return st;
    if (size - EVO_WIRE_HEADER_SIZE > tp->opt.limits.max_body)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s message of %zu bytes exceeds the body limit",
                             evo_msg_type_name(m->type), size);
    int rv = nng_msg_alloc(&msg, size);
    if (rv != 0)
        return tp_nng_fail(err, tp, "send", rv);
    if ((st = evo_wire_encode(m, nng_msg_body(msg), size, &wrote, err)) != EVO_OK) {
        nng_msg_free(msg);
        return st;
    }
    return tp_nng_send_msg(tp, msg, err);
}

static evo_status tp_nng_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err)
{
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, len);
    if (rv != 0)
        return tp_nng_fail(err, tp, "send", rv);
    if (len)
        memcpy(nng_msg_body(msg), buf, len);
    return tp_nng_send_msg(tp, msg, err);
}

static evo_status tp_nng_recv(evo_tp *tp, evo_msg *out, evo_error *err)
{
    tp_nng *n = (tp_nng *)tp->impl;
    nng_msg *msg;
    int rv = nng_recvmsg(n->sock, &msg, 0);
    if (rv != 0)
        return tp_nng_fail(err, tp, "receive", rv);
    const void *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    evo_status st = evo_wire_decode(body, len, &tp->opt.limits, out, err);
    if (st == EVO_OK) {
        tp_msg_adopt_buffer(out, msg, tp_nng_free_msg);
        /* nng queues messages inside its socket and does not say when one
         * arrived: taking it out is the best this channel can tell. */
        out->received_ns = tp_wall_ns();
        return EVO_OK;
    }
    evo_error_prefix(err, "message from '%s' rejected", tp->url);
    if (tp->pattern == EVO_TP_REP) {
        /* The requester waits for exactly one reply: tell it what was wrong so
         * both ends stay in step. */
        evo_msg reply;
        uint64_t rid = len >= EVO_WIRE_HEADER_SIZE ? tp_rd64((const uint8_t *)body + 16) : 0;
        evo_error e = {st, ""};
        snprintf(e.msg, sizeof e.msg, "%s", err ? err->msg : "malformed message");
        evo_msg_set_error(&reply, rid, &e);
        evo_error ignore;
        (void)tp_nng_send(tp, &reply, &ignore);
    }
    nng_msg_free(msg);
    return st;
}

static int tp_nng_port(const evo_tp *tp)
{
    const tp_nng *n = (const tp_nng *)tp->impl;
    int port = -1;
    if (!n->listening || (strncmp(tp->url, "tcp://", 6) && strncmp(tp->url, "tls+tcp://", 10)))
        return -1;
    if (nng_listener_get_int(n->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return -1;
    return port;
}

static void tp_nng_close(evo_tp *tp)
{
    tp_nng *n = (tp_nng *)tp->impl;
    if (!n)
        return;
    nng_close(n->sock);
    if (n->tls)
        nng_tls_config_free(n->tls);
    free(n);
    tp->impl = NULL;
}

static const tp_backend_ops tp_nng_ops = {tp_nng_send, tp_nng_send_encoded, tp_nng_recv,
                                          tp_nng_port, tp_nng_close};

evo_status tp_nng_open(evo_tp *tp, evo_error *err)
{
    tp_nng *n = (tp_nng *)calloc(1, sizeof *n);
    evo_status st = EVO_OK;
    int rv;
    if (!n)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for an nng channel");
    tp->impl = n;
    tp->ops = &tp_nng_ops;
    switch (tp->pattern) {
    case EVO_TP_REQ:
        rv = nng_req0_open(&n->sock);
        break;
    case EVO_TP_REP:
        rv = nng_rep0_open(&n->sock);
        break;
    case EVO_TP_PUSH:
        rv = nng_push0_open(&n->sock);
        break;
    default:
        rv = nng_pull0_open(&n->sock);
        break;
    }
    if (rv != 0) {
        free(n);
        tp->impl = NULL;
        return tp_nng_fail(err, tp, "socket open", rv);
    }
    bool tls = !strncmp(tp->url, "tls+tcp://", 10);
    const evo_tp_options *o = &tp->opt;
    size_t max_msg = (size_t)o->limits.max_body + EVO_WIRE_HEADER_SIZE;
    if ((rv = nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, max_msg)) != 0 ||
        (rv = nng_socket_set_ms(n->sock, NNG_OPT_RECVTIMEO,
                                o->recv_timeout_ms < 0 ? NNG_DURATION_INFINITE
                                                       : o->recv_timeout_ms)) != 0 ||
        (rv = nng_socket_set_ms(n->sock, NNG_OPT_SENDTIMEO,
                                o->send_timeout_ms < 0 ? NNG_DURATION_INFINITE
                                                       : o->send_timeout_ms)) != 0)
        goto fail;
    if (tp->pattern == EVO_TP_PUSH &&
        (rv = nng_socket_set_int(n->sock, NNG_OPT_SENDBUF, o->stream_depth)) != 0)
        goto fail;
    if (tp->pattern == EVO_TP_PULL &&
        (rv = nng_socket_set_int(n->sock, NNG_OPT_RECVBUF, o->stream_depth)) != 0)
        goto fail;
    if (tls && (st = tp_tls_config_make(tp, &n->tls, err)) != EVO_OK)
        goto fail_st;
    if (tp->mode == EVO_TP_LISTEN) {
        if ((rv = nng_listener_create(&n->listener, n->sock, tp->url)) != 0)
            goto fail;
        if (tls && (rv = nng_listener_set_ptr(n->listener, NNG_OPT_TLS_CONFIG, n->tls)) != 0)
            goto fail;
        if ((rv = nng_listener_start(n->listener, 0)) != 0)
            goto fail;
        n->listening = true;
    } else {
        if ((rv = nng_dialer_create(&n->dialer, n->sock, tp->url)) != 0)
            goto fail;
        if (tls && (rv = nng_dialer_set_ptr(n->dialer, NNG_OPT_TLS_CONFIG, n->tls)) != 0)
            goto fail;
        /* Synchronous: connection (and TLS handshake) problems surface here. */
        if ((rv = nng_dialer_start(n->dialer, 0)) != 0) {
            if (tls && tp_tls_handshake_failed(tp, rv, err, &st))
                goto fail_st;
            goto fail;
        }
    }
    return EVO_OK;
fail:
    st = tp_nng_fail(err, tp, tp->mode == EVO_TP_LISTEN ? "listen" : "dial", rv);
fail_st:
    tp_nng_close(tp);
    return st;
}
