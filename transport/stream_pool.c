/*
 * The receive buffer pool of the +stream channels (tp_stream.h).
 *
 * Why: reusing a buffer spares the next message of that size a fresh
 * allocation, whose page faults cost as much CPU as the socket copy
 * (16 MiB: ~4000 faults). One spare is kept (the largest seen): a consumer
 * releases each message before it receives the next in the common case.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "tp_stream.h"

struct tp_stream_pool {
    pthread_mutex_t mu;
    int refs;       /* the channel + every buffer out in a message */
    uint8_t *spare; /* one free buffer (the largest seen), or NULL */
    size_t spare_cap;
};

/* At the start of each receive buffer; the message follows at offset
 * TP_PAYLOAD_ALIGN, so its payloads stay 64-byte aligned. */
typedef struct tp_stream_rbuf {
    tp_stream_pool *pool;
    size_t cap; /* bytes after the header */
} tp_stream_rbuf;

_Static_assert(sizeof(tp_stream_rbuf) <= TP_PAYLOAD_ALIGN, "rbuf header fits the alignment");

tp_stream_pool *tp_stream_pool_new(void)
{
    tp_stream_pool *p = (tp_stream_pool *)calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->refs = 1;
    return p;
}

/* Called with p->mu held; unlocks. */
static void tp_stream_pool_unref(tp_stream_pool *p)
{
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) {
        free(p->spare);
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
}

void tp_stream_pool_close(tp_stream_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    tp_stream_pool_unref(p);
}

uint8_t *tp_stream_pool_get(tp_stream_pool *p, size_t len)
{
    uint8_t *b = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->spare && p->spare_cap >= len) {
        b = p->spare;
        p->spare = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        if (len > SIZE_MAX - 2 * TP_PAYLOAD_ALIGN)
            return NULL;
        size_t cap = (len + TP_PAYLOAD_ALIGN - 1) / TP_PAYLOAD_ALIGN * TP_PAYLOAD_ALIGN;
        b = (uint8_t *)aligned_alloc(TP_PAYLOAD_ALIGN, TP_PAYLOAD_ALIGN + cap);
        if (!b)
            return NULL;
        ((tp_stream_rbuf *)b)->pool = p;
        ((tp_stream_rbuf *)b)->cap = cap;
    }
    pthread_mutex_lock(&p->mu);
    p->refs++;
    pthread_mutex_unlock(&p->mu);
    return b;
}

/* Keep the larger of this buffer and the spare while the channel is open. */
void tp_stream_pool_put(void *buf)
{
    uint8_t *b = (uint8_t *)buf;
    tp_stream_pool *p = ((tp_stream_rbuf *)b)->pool;
    size_t cap = ((tp_stream_rbuf *)b)->cap;
    uint8_t *drop = b;
    pthread_mutex_lock(&p->mu);
    if (p->refs > 1 && (!p->spare || p->spare_cap < cap)) { /* > 1: the channel is open */
        drop = p->spare;
        p->spare = b;
        p->spare_cap = cap;
    }
    tp_stream_pool_unref(p);
    free(drop);
}
