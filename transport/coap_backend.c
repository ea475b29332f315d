/*
 * CoAP channels with libcoap (RFC 7252), for constrained nodes over UDP.
 *
 * Every evo message is the body of a confirmable POST to /evo. Bodies larger
 * than one block travel block-wise (RFC 7959): libcoap does Block1 for
 * requests and Block2 for responses and hands over whole bodies.
 *
 *   REQ  (client): POST the request; the response body is the reply.
 *   PUSH (client): POST the message; 2.04 Changed acknowledges it.
 *   REP  (server): the request handler waits for the application's reply
 *                  (evo_tp_send) and returns it as the response.
 *   PULL (server): the handler queues the message and answers 2.04.
 * A message that does not decode is answered with 4.00 and an evo ERROR body.
 *
 * libcoap is not thread-safe: a client does all its I/O inside evo_tp_send;
 * a server owns one I/O thread that alone calls libcoap, and the application
 * thread exchanges messages with it through a mutex-protected queue.
 * coaps:// uses DTLS with a pre-shared key (libcoap's OpenSSL backend).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coap3/coap.h>

#include "tp_internal.h"

#define TP_COAP_PATH "evo"
/* Server I/O loop wake-up period: bounds how long close() waits. */
#define TP_COAP_IO_SLICE_MS 50
/* How long a REP handler waits for the application's reply by default. */
#define TP_COAP_REPLY_WAIT_MS 30000

typedef struct tp_coap_item {
    struct tp_coap_item *next;
    evo_msg msg;       /* decoded message (owns a copy of the body) */
    evo_status status; /* != EVO_OK: the body was rejected; err holds why */
    evo_error err;
} tp_coap_item;

typedef struct tp_coap_reply {
    uint8_t *data;
    size_t len;
} tp_coap_reply;

typedef struct tp_coap {
    evo_tp *tp;
    coap_context_t *ctx;
    coap_session_t *session; /* client */
    int port;
    /* client state, only touched by the caller's thread */
    bool done;
    int code; /* CoAP response code, or -1 on a NACK */
    coap_nack_reason_t nack;
    tp_coap_item *reply; /* REQ: decoded reply waiting for evo_tp_recv */
    /* server state */
    pthread_t io;
    bool io_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    tp_coap_item *head, *tail;
    uint32_t queued;
    bool awaiting_reply;    /* REP: a request was handed out and not answered */
    tp_coap_reply *pending; /* REP: reply from evo_tp_send for the handler */
    uint8_t psk_key[64];
    size_t psk_key_len;
    char psk_identity[128];
} tp_coap;

static void tp_coap_free_buf(void *p)
{
    free(p);
}

/* Decode a body received from a peer into an item that owns a copy of it. */
static tp_coap_item *tp_coap_make_item(tp_coap *c, const uint8_t *data, size_t len)
{
    tp_coap_item *it = (tp_coap_item *)calloc(1, sizeof *it);
    if (!it)
        return NULL;
    if (len > c->tp->opt.limits.max_body + EVO_WIRE_HEADER_SIZE) {
        it->status = evo_error_set(&it->err, EVO_ERR_LIMIT,
                                   "CoAP body of %zu bytes exceeds the message limit", len);
        return it;
    }
    uint8_t *copy = (uint8_t *)malloc(len ? len : 1);
    if (!copy) {
        it->status = evo_error_set(&it->err, EVO_ERR_NOMEM, "no memory for a CoAP body");
        return it;
    }
    if (len)
        memcpy(copy, data, len);
    it->status = evo_wire_decode(copy, len, &c->tp->opt.limits, &it->msg, &it->err);
    if (it->status == EVO_OK) {
        tp_msg_adopt_buffer(&it->msg, copy, tp_coap_free_buf);
        it->msg.received_ns = tp_wall_ns(); /* reassembled by libcoap just now */
    } else
        free(copy);
    return it;
}

static void tp_coap_free_item(tp_coap_item *it)
{
    if (!it)
        return;
    evo_msg_release(&it->msg);
    free(it);
}

/* Encode m into a malloc'd buffer. */
static evo_status tp_coap_encode(const evo_msg *m, uint8_t **out, size_t *len, evo_error *err)
{
    evo_status st = evo_wire_encoded_size(m, len, err);
    if (st != EVO_OK)
        return st;
    *out = (uint8_t *)malloc(*len);
    if (!*out)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory to encode a %zu byte message", *len);
    st = evo_wire_encode(m, *out, *len, NULL, err);
    if (st != EVO_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

static void tp_coap_release_data(coap_session_t *s, void *app_ptr)
{
    (void)s;
    free(app_ptr);
}

static uint64_t tp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- server */

/* Answer with 4.00 and an ERROR message describing why the body was rejected. */
static void tp_coap_respond_error(coap_pdu_t *resp, const tp_coap_item *it)
{
    evo_msg em;
    uint8_t *buf;
    size_t len;
    evo_msg_set_error(&em, 0, &it->err);
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_BAD_REQUEST);
    if (tp_coap_encode(&em, &buf, &len, NULL) == EVO_OK) {
        coap_add_data(resp, len, buf);
        free(buf);
    }
}

static void tp_coap_enqueue(tp_coap *c, tp_coap_item *it)
{
    it->next = NULL;
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    c->queued++;
    pthread_cond_broadcast(&c->cv);
}

static void tp_coap_handler(coap_resource_t *res, coap_session_t *sess, const coap_pdu_t *req,
                            const coap_string_t *query, coap_pdu_t *resp)
{
    tp_coap *c = (tp_coap *)coap_resource_get_userdata(res);
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &offset, &total))
        len = 0;
    tp_coap_item *it = tp_coap_make_item(c, data, len);
    if (!it) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
        return;
    }
    bool ok = it->status == EVO_OK;
    if (!ok)
        tp_coap_respond_error(resp, it);

    pthread_mutex_lock(&c->mu);
    if (c->tp->pattern == EVO_TP_PULL) {
        /* Backpressure: wait (bounded) for the application to drain the queue. */
        const struct timespec dl = tp_deadline_ms(TP_COAP_REPLY_WAIT_MS);
        while (c->queued >= (uint32_t)c->tp->opt.stream_depth && !c->stop)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
                break;
        tp_coap_enqueue(c, it);
        pthread_mutex_unlock(&c->mu);
        if (ok)
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);
        return;
    }
    /* REP: hand the request over and wait for the reply. */
    tp_coap_enqueue(c, it);
    if (!ok) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    int32_t wait_ms =
        c->tp->opt.send_timeout_ms > 0 ? c->tp->opt.send_timeout_ms : TP_COAP_REPLY_WAIT_MS;
    const struct timespec dl = tp_deadline_ms(wait_ms);
    while (!c->pending && !c->stop)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
            break;
    tp_coap_reply *r = c->pending;
    c->pending = NULL;
    c->awaiting_reply = false;
    pthread_mutex_unlock(&c->mu);
    if (!r) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
        return;
    }
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);
    if (!coap_add_data_large_response(res, sess, req, resp, query,
                                      COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, -1, 0, r->len,
                                      r->data, tp_coap_release_data, r->data)) {
        free(r->data);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
    }
    free(r);
}

static void *tp_coap_io_main(void *arg)
{
    tp_coap *c = (tp_coap *)arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        coap_io_process(c->ctx, TP_COAP_IO_SLICE_MS);
    }
    return NULL;
}

/* ---------------------------------------------------------------- client */

static coap_response_t tp_coap_response(coap_session_t *sess, const coap_pdu_t *sent,
                                        const coap_pdu_t *recv, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    tp_coap *c = (tp_coap *)coap_session_get_app_data(sess);
    if (!c)
        return COAP_RESPONSE_OK;
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(recv, &len, &data, &offset, &total))
        len = 0;
    c->code = (int)coap_pdu_get_code(recv);
    tp_coap_free_item(c->reply);
    c->reply = len ? tp_coap_make_item(c, data, len) : NULL;
    c->done = true;
    return COAP_RESPONSE_OK;
}

static void tp_coap_nack(coap_session_t *sess, const coap_pdu_t *sent,
                         const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    tp_coap *c = (tp_coap *)coap_session_get_app_data(sess);
    if (!c)
        return;
    c->code = -1;
    c->nack = reason;
    c->done = true;
}

static const char *tp_coap_nack_name(coap_nack_reason_t r)
{
    switch (r) {
    case COAP_NACK_TOO_MANY_RETRIES:
        return "no answer after retransmissions";
    case COAP_NACK_NOT_DELIVERABLE:
        return "not deliverable";
    case COAP_NACK_RST:
        return "peer reset the exchange";
    case COAP_NACK_TLS_FAILED:
        return "DTLS handshake failed (wrong PSK?)";
    default:
        return "failed";
    }
}

static evo_status tp_coap_client_send(evo_tp *tp, uint8_t *buf, size_t len, evo_error *err)
{
    tp_coap *c = (tp_coap *)tp->impl;
    coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, c->session);
    if (!pdu) {
        free(buf);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a CoAP request to '%s'", tp->url);
    }
    uint8_t tok[8];
    size_t toklen;
    coap_session_new_token(c->session, &toklen, tok);
    coap_add_token(pdu, toklen, tok);
    coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(TP_COAP_PATH), (const uint8_t *)TP_COAP_PATH);
    if (!coap_add_data_large_request(c->session, pdu, len, buf, tp_coap_release_data, buf)) {
        coap_delete_pdu(pdu);
        free(buf);
        return evo_error_set(err, EVO_ERR_INTERNAL, "libcoap refused a %zu byte body", len);
    }
    tp_coap_free_item(c->reply);
    c->reply = NULL;
    c->done = false;
    c->code = 0;
    if (coap_send(c->session, pdu) == COAP_INVALID_MID)
        return evo_error_set(err, EVO_ERR_IO, "CoAP send to '%s' failed", tp->url);
    int32_t limit = tp->opt.send_timeout_ms;
    uint64_t start = tp_now_ms();
    while (!c->done) {
        uint64_t el = tp_now_ms() - start;
        if (limit >= 0 && el >= (uint64_t)limit)
            return evo_error_set(err, EVO_ERR_IO, "CoAP request to '%s' timed out after %d ms",
                                 tp->url, (int)limit);
        uint32_t slice = 100;
        if (limit >= 0 && (uint64_t)limit - el < slice)
            slice = (uint32_t)((uint64_t)limit - el) + 1;
        if (coap_io_process(c->ctx, slice) < 0)
            return evo_error_set(err, EVO_ERR_IO, "CoAP I/O on '%s' failed", tp->url);
    }
    if (c->code < 0)
        return evo_error_set(err, EVO_ERR_IO, "CoAP request to '%s': %s", tp->url,
                             tp_coap_nack_name(c->nack));
    if (COAP_RESPONSE_CLASS(c->code) != 2) {
        /* The server rejected the message; its ERROR body says why. */
        if (c->reply && c->reply->status == EVO_OK && c->reply->msg.type == EVO_MSG_ERROR) {
            evo_status st = (evo_status)c->reply->msg.u.error.status;
            evo_error_set(err, st ? st : EVO_ERR_IO, "'%s' rejected the message: %s", tp->url,
                          c->reply->msg.u.error.message);
            tp_coap_free_item(c->reply);
            c->reply = NULL;
            return st ? st : EVO_ERR_IO;
        }
        tp_coap_free_item(c->reply);
        c->reply = NULL;
        return evo_error_set(err, EVO_ERR_IO, "'%s' answered CoAP %d.%02d", tp->url,
                             COAP_RESPONSE_CLASS(c->code), c->code & 0x1f);
    }
    if (tp->pattern == EVO_TP_REQ && !c->reply)
        return evo_error_set(err, EVO_ERR_PARSE, "'%s' answered a request without a reply body",
                             tp->url);
    if (tp->pattern == EVO_TP_PUSH) {
        tp_coap_free_item(c->reply);
        c->reply = NULL;
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- ops */

static evo_status tp_coap_send_buf(evo_tp *tp, uint8_t *buf, size_t len, evo_error *err)
{
    tp_coap *c = (tp_coap *)tp->impl;
    if (tp->pattern == EVO_TP_REQ || tp->pattern == EVO_TP_PUSH)
        return tp_coap_client_send(tp, buf, len, err);
    if (tp->pattern == EVO_TP_PULL) {
        free(buf);
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a PULL channel on '%s' cannot send",
                             tp->url);
    }
    tp_coap_reply *r = (tp_coap_reply *)malloc(sizeof *r);
    if (!r) {
        free(buf);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a CoAP reply");
    }
    r->data = buf;
    r->len = len;
    pthread_mutex_lock(&c->mu);
    if (!c->awaiting_reply || c->pending) {
        pthread_mutex_unlock(&c->mu);
        free(buf);
        free(r);
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "send on REP channel '%s' without a request to answer (or the "
                             "requester gave up)",
                             tp->url);
    }
    c->pending = r;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return EVO_OK;
}

static evo_status tp_coap_send(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    uint8_t *buf;
    size_t len;
    evo_status st = tp_coap_encode(m, &buf, &len, err);
    if (st != EVO_OK)
        return st;
    return tp_coap_send_buf(tp, buf, len, err);
}

static evo_status tp_coap_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err)
{
    uint8_t *copy = (uint8_t *)malloc(len ? len : 1);
    if (!copy)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a CoAP message");
    if (len)
        memcpy(copy, buf, len);
    return tp_coap_send_buf(tp, copy, len, err);
}

static evo_status tp_coap_take(tp_coap_item *it, evo_msg *out, evo_error *err)
{
    evo_status st = it->status;
    if (st == EVO_OK) {
        *out = it->msg;
        memset(&it->msg, 0, sizeof it->msg);
    } else if (err) {
        *err = it->err;
    }
    tp_coap_free_item(it);
    return st;
}

static evo_status tp_coap_recv(evo_tp *tp, evo_msg *out, evo_error *err)
{
    tp_coap *c = (tp_coap *)tp->impl;
    if (tp->pattern == EVO_TP_PUSH)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a PUSH channel on '%s' cannot receive",
                             tp->url);
    if (tp->pattern == EVO_TP_REQ) {
        if (!c->reply)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "receive on REQ channel '%s' without a request sent", tp->url);
        tp_coap_item *it = c->reply;
        c->reply = NULL;
        evo_status st = tp_coap_take(it, out, err);
        if (st != EVO_OK)
            evo_error_prefix(err, "reply from '%s' rejected", tp->url);
        return st;
    }
    pthread_mutex_lock(&c->mu);
    if (tp->pattern == EVO_TP_REP && c->awaiting_reply && !c->pending) {
        /* The previous request was not answered; the handler will time out. */
        c->awaiting_reply = false;
    }
    const struct timespec dl =
        tp_deadline_ms(tp->opt.recv_timeout_ms >= 0 ? tp->opt.recv_timeout_ms : 0);
    while (!c->head) {
        int rc = tp->opt.recv_timeout_ms >= 0 ? pthread_cond_timedwait(&c->cv, &c->mu, &dl)
                                              : pthread_cond_wait(&c->cv, &c->mu);
        if (rc == ETIMEDOUT && !c->head) {
            pthread_mutex_unlock(&c->mu);
            return evo_error_set(err, EVO_ERR_IO, "receive on '%s' timed out", tp->url);
        }
    }
    tp_coap_item *it = c->head;
    c->head = it->next;
    if (!c->head)
        c->tail = NULL;
    c->queued--;
    if (tp->pattern == EVO_TP_REP && it->status == EVO_OK)
        c->awaiting_reply = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    evo_status st = tp_coap_take(it, out, err);
    if (st != EVO_OK)
        evo_error_prefix(err, "message from a CoAP peer of '%s' rejected", tp->url);
    return st;
}

static int tp_coap_port(const evo_tp *tp)
{
    const tp_coap *c = (const tp_coap *)tp->impl;
    return tp->mode == EVO_TP_LISTEN ? c->port : -1;
}

static void tp_coap_close(evo_tp *tp)
{
    tp_coap *c = (tp_coap *)tp->impl;
    if (!c)
        return;
    if (c->io_running) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->io, NULL);
    }
    if (c->session) {
        coap_session_set_app_data(c->session, NULL);
        coap_session_release(c->session);
    }
    if (c->ctx)
        coap_free_context(c->ctx);
    tp_coap_free_item(c->reply);
    while (c->head) {
        tp_coap_item *n = c->head->next;
        tp_coap_free_item(c->head);
        c->head = n;
    }
    if (c->pending) {
        free(c->pending->data);
        free(c->pending);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    tp->impl = NULL;
}

static const tp_backend_ops tp_coap_ops = {tp_coap_send, tp_coap_send_encoded, tp_coap_recv,
                                           tp_coap_port, tp_coap_close};

/* ---------------------------------------------------------------- open */

static const coap_bin_const_t *tp_coap_check_identity(coap_bin_const_t *identity,
                                                      coap_session_t *sess, void *arg)
{
    (void)sess;
    tp_coap *c = (tp_coap *)arg;
    static coap_bin_const_t key; /* libcoap copies the key before the next call */
    size_t n = strlen(c->psk_identity);
    if (!identity || identity->length != n || memcmp(identity->s, c->psk_identity, n))
        return NULL;
    key.s = c->psk_key;
    key.length = c->psk_key_len;
    return &key;
}

static evo_status tp_coap_resolve(const evo_tp *tp, const coap_uri_t *uri, coap_address_t *addr,
                                  evo_error *err)
{
    char host[EVO_WIRE_STR_MAX], port[16];
    struct addrinfo hints, *res = NULL;
    if (uri->host.length >= sizeof host)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "host in '%s' is too long", tp->url);
    memcpy(host, uri->host.s, uri->host.length);
    host[uri->host.length] = '\0';
    snprintf(port, sizeof port, "%u", (unsigned)uri->port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (rc != 0 || !res)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "cannot resolve '%s' in '%s': %s", host,
                             tp->url, gai_strerror(rc));
    coap_address_init(addr);
    addr->size = (socklen_t)res->ai_addrlen;
    memcpy(&addr->addr.sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return EVO_OK;
}

static pthread_once_t tp_coap_once = PTHREAD_ONCE_INIT;
static void tp_coap_startup(void)
{
    coap_startup();
    coap_set_log_level(LOG_EMERG);
    coap_dtls_set_log_level(LOG_EMERG);
}

evo_status tp_coap_open(evo_tp *tp, evo_error *err)
{
    evo_status st;
    coap_uri_t uri;
    coap_address_t addr;
    bool secure = !strncmp(tp->url, "coaps://", 8);
    const evo_tp_options *o = &tp->opt;
    bool server = tp->mode == EVO_TP_LISTEN;

    pthread_once(&tp_coap_once, tp_coap_startup);
    if (server != (tp->pattern == EVO_TP_REP || tp->pattern == EVO_TP_PULL))
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "CoAP '%s': a listener is REP or PULL (CoAP server), a dialer REQ or "
                             "PUSH (CoAP client)",
                             tp->url);
    if (secure) {
        if (!coap_dtls_is_supported())
            return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                 "this libcoap build has no DTLS support for '%s'", tp->url);
        if (!o->psk_identity || !o->psk_key || o->psk_key_len == 0 || o->psk_key_len > 64 ||
            strlen(o->psk_identity) >= 128)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "coaps '%s' needs psk_identity (< 128 bytes) and a 1..64 byte "
                                 "psk_key",
                                 tp->url);
    }
    if (coap_split_uri((const uint8_t *)tp->url, strlen(tp->url), &uri) < 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "'%s' is not a valid CoAP URL", tp->url);
    if ((st = tp_coap_resolve(tp, &uri, &addr, err)) != EVO_OK)
        return st;

    tp_coap *c = (tp_coap *)calloc(1, sizeof *c);
    if (!c)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a CoAP channel");
    c->tp = tp;
    pthread_mutex_init(&c->mu, NULL);
    if (!tp_cond_init_monotonic(&c->cv)) { /* waits immune to wall-clock steps */
        pthread_mutex_destroy(&c->mu);
        free(c);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a CoAP channel");
    }
    tp->impl = c;
    tp->ops = &tp_coap_ops;
    if (secure) {
        memcpy(c->psk_key, o->psk_key, o->psk_key_len);
        c->psk_key_len = o->psk_key_len;
        strcpy(c->psk_identity, o->psk_identity);
    }
    c->ctx = coap_new_context(NULL);
    if (!c->ctx) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "libcoap could not create a context");
        goto fail;
    }
    coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);

    if (server) {
        if (secure) {
            coap_dtls_spsk_t sp;
            memset(&sp, 0, sizeof sp);
            sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
            sp.validate_id_call_back = tp_coap_check_identity;
            sp.id_call_back_arg = c;
            sp.psk_info.key.s = c->psk_key;
            sp.psk_info.key.length = c->psk_key_len;
            if (!coap_context_set_psk2(c->ctx, &sp)) {
                st = evo_error_set(err, EVO_ERR_INTERNAL, "libcoap refused the PSK setup");
                goto fail;
            }
        }
        coap_endpoint_t *ep =
            coap_new_endpoint(c->ctx, &addr, secure ? COAP_PROTO_DTLS : COAP_PROTO_UDP);
        if (!ep) {
            st = evo_error_set(err, EVO_ERR_IO, "cannot listen on '%s' (address in use?)", tp->url);
            goto fail;
        }
        const char *es = coap_endpoint_str(ep);
        const char *colon = es ? strrchr(es, ':') : NULL;
        c->port = colon ? atoi(colon + 1) : (int)uri.port;
        coap_resource_t *r = coap_resource_init(coap_make_str_const(TP_COAP_PATH), 0);
        if (!r) {
            st = evo_error_set(err, EVO_ERR_NOMEM, "libcoap could not create a resource");
            goto fail;
        }
        coap_resource_set_userdata(r, c);
        coap_register_handler(r, COAP_REQUEST_POST, tp_coap_handler);
        coap_add_resource(c->ctx, r);
        if (pthread_create(&c->io, NULL, tp_coap_io_main, c) != 0) {
            st = evo_error_set(err, EVO_ERR_INTERNAL, "cannot start the CoAP I/O thread");
            goto fail;
        }
        c->io_running = true;
        return EVO_OK;
    }

    coap_register_response_handler(c->ctx, tp_coap_response);
    coap_register_nack_handler(c->ctx, tp_coap_nack);
    if (secure) {
        coap_dtls_cpsk_t cp;
        memset(&cp, 0, sizeof cp);
        cp.version = COAP_DTLS_CPSK_SETUP_VERSION;
        cp.psk_info.identity.s = (const uint8_t *)c->psk_identity;
        cp.psk_info.identity.length = strlen(c->psk_identity);
        cp.psk_info.key.s = c->psk_key;
        cp.psk_info.key.length = c->psk_key_len;
        c->session = coap_new_client_session_psk2(c->ctx, NULL, &addr, COAP_PROTO_DTLS, &cp);
    } else {
        c->session = coap_new_client_session(c->ctx, NULL, &addr, COAP_PROTO_UDP);
    }
    if (!c->session) {
        st = evo_error_set(err, EVO_ERR_IO, "cannot open a CoAP session to '%s'", tp->url);
        goto fail;
    }
    coap_session_set_app_data(c->session, c);
    return EVO_OK;
fail:
    tp_coap_close(tp);
    return st;
}
