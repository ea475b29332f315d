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

/* nng error rv of operation `what` as an evo error naming the channel. */
evo_status tp_stream_fail(evo_error *err, const evo_tp *tp, const char *what, int rv);

/* Open the listening side of a PULL +stream channel at nng URL nurl
 * (tcp://, ipc:// or tls+tcp://; tls: its configuration, owned from here
 * on, or NULL). */
evo_status tp_stream_listener_open(evo_tp *tp, const char *nurl, nng_tls_config *tls,
                                   evo_error *err);

#endif /* EVO_TP_STREAM_H */
