/*
 * The receive buffer pool of the +stream channels (tp_stream.h).
 *
 * Why: reusing a buffer spares the next message of that size a fresh
 * allocation, whose page faults cost as much CPU as the socket copy
 * (16 MiB: ~4000 faults). A few spares are kept: a PULL listener's readers
 * fill the next buffers while the consumer still holds the last message
 * (with one spare, most 1 MiB messages got a fresh buffer: 3x the page
 * faults of nng's own byte stream). The cache is bounded in count and
 * bytes, so an idle channel does not pin much memory.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "tp_stream.h"

#define TP_POOL_SPARES 4
#define TP_POOL_MAX_CACHED ((size_t)64 << 20)

struct tp_stream_pool {
    pthread_mutex_t mu;
    int refs;                       /* the channel + every buffer out in a message */
    uint8_t *spare[TP_POOL_SPARES]; /* free buffers, or NULL */
    size_t spare_cap[TP_POOL_SPARES];
    size_t cached; /* sum of spare_cap */
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
        for (int i = 0; i < TP_POOL_SPARES; i++)
            free(p->spare[i]);
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
    int best = -1; /* the smallest spare that fits */
    for (int i = 0; i < TP_POOL_SPARES; i++)
        if (p->spare[i] && p->spare_cap[i] >= len &&
            (best < 0 || p->spare_cap[i] < p->spare_cap[best]))
            best = i;
    if (best >= 0) {
        b = p->spare[best];
        p->cached -= p->spare_cap[best];
        p->spare[best] = NULL;
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

/* Keep the buffer while the channel is open, in a free slot or in place
 * of the smallest spare if it is larger, within the byte bound. */
void tp_stream_pool_put(void *buf)
{
    uint8_t *b = (uint8_t *)buf;
    tp_stream_pool *p = ((tp_stream_rbuf *)b)->pool;
    size_t cap = ((tp_stream_rbuf *)b)->cap;
    uint8_t *drop = b;
    pthread_mutex_lock(&p->mu);
    if (p->refs > 1) { /* > 1: the channel is open */
        int slot = 0;  /* a free slot, else the smallest spare */
        for (int i = 1; i < TP_POOL_SPARES && p->spare[slot]; i++)
            if (!p->spare[i] || p->spare_cap[i] < p->spare_cap[slot])
                slot = i;
        size_t out = p->spare[slot] ? p->spare_cap[slot] : 0;
        if ((!p->spare[slot] || out < cap) && p->cached - out + cap <= TP_POOL_MAX_CACHED) {
            drop = p->spare[slot];
            p->spare[slot] = b;
            p->spare_cap[slot] = cap;
            p->cached = p->cached - out + cap;
        }
    }
    tp_stream_pool_unref(p);
    free(drop);
}
