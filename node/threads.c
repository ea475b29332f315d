/*
 * Intra-op threads for hosted nodes (`evo run --threads N`): a small pool of
 * N-1 worker threads that split a big Conv by output channels.
 *
 * Why Conv only, and by output channels: for one image (N = 1) in the ONNX
 * weight layout, output channels m0..m1 need only rows m0..m1 of W and of
 * the bias and write one contiguous slice of Y, so each part is an ordinary
 * Conv on sub-views and runs the same optimized kernels, unchanged. A
 * depthwise Conv splits its channels the same way (X too). Convs are where
 * the time goes in every zoo model; other ops stay on the calling thread.
 *
 * Why no allocation per request: part 0 runs in the node's own arena
 * scratch; each worker owns a scratch buffer sized when the pool is attached
 * to a program (evo_exec_set_threads), for the largest part it can be given.
 * A part whose scratch would not fit runs the Conv on one thread instead.
 *
 * Why spinning: a condition-variable wake-up costs tens of microseconds,
 * as much as a small Conv. While a run is in progress the workers spin
 * (with a pause) between Convs; after a short idle period they sleep on the
 * condition variable, so an idle node does not burn a core.
 *
 * Hosted only (pthreads, C11 atomics); the freestanding build leaves this
 * file out and the executor runs single-threaded.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "evo/node.h"
#include "evo/op.h"
#include "kernels/conv.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define THREADS_PAUSE() _mm_pause()
#else
#define THREADS_PAUSE() ((void)0)
#endif

/* Convs below this many multiply-adds run on one thread: splitting costs a
 * few microseconds of hand-off, which only pays on bigger ones. */
#define THREADS_MIN_MACS (1LL << 20)
/* Output channels per part are a multiple of this (whole vector blocks). */
#define THREADS_M_ALIGN 16
/* Spin iterations (about 40 ns each) before a worker sleeps. */
#define THREADS_SPIN 20000

extern const evo_op_def evo_op_Conv;

typedef struct threads_job {
    const evo_op_def *op;
    const evo_kctx *ctx; /* the whole Conv */
    int32_t parts;
    int32_t m_per_part;
    bool depthwise;
    atomic_int failed;
} threads_job;

typedef struct threads_worker_arg {
    struct evo_threads *t;
    int32_t index;
} threads_worker_arg;

struct evo_threads {
    int32_t n; /* threads including the caller */
    pthread_t *tid;
    threads_worker_arg *args; /* [w] for worker w (1..n-1) */
    int32_t n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;    /* bumped per job */
    atomic_int pending; /* workers still on the current job */
    atomic_bool quit;
    threads_job *job;
    int64_t split_ops; /* written by the calling thread only */
    /* Worker w (1..n-1) scratch: scratch[w], scratch_bytes each. */
    void **scratch;
    size_t scratch_bytes;
};

/* ---------------------------------------------------------------- splitting */

/* Whether node n (Conv) can be split, and into what. */
static bool threads_conv_plan(const evo_op_def *op, const evo_kctx *c, int32_t n_threads,
                              bool *depthwise, int32_t *m_per_part, int32_t *parts)
{
    if (op != &evo_op_Conv || n_threads < 2 || c->n_in < 2 || c->n_out < 1 || c->out[0] == NULL)
        return false;
    const evo_conv_params *p = c->params;
    const evo_tensor *x = c->in[0], *w = c->in[1], *y = c->out[0];
    if (p->w_layout != EVO_CONV_W_ONNX || x->dtype != EVO_DT_FLOAT32 || x->shape.rank < 3 ||
        x->shape.dims[0] != 1 || w->shape.rank != x->shape.rank)
        return false;
    const int64_t m = w->shape.dims[0], cin = x->shape.dims[1];
    *depthwise = p->group > 1 && p->group == cin && p->group == m && w->shape.dims[1] == 1;
    if (p->group != 1 && !*depthwise)
        return false;
    int64_t macs = (int64_t)evo_shape_numel(&y->shape);
    for (int32_t d = 1; d < w->shape.rank; d++)
        macs *= w->shape.dims[d];
    if (macs < THREADS_MIN_MACS)
        return false;
    int64_t per = (m + n_threads - 1) / n_threads;
    per = (per + THREADS_M_ALIGN - 1) / THREADS_M_ALIGN * THREADS_M_ALIGN;
    if (per >= m)
        return false;
    *m_per_part = (int32_t)per;
    *parts = (int32_t)((m + per - 1) / per);
    return true;
}

/* Part k of the job as a Conv on sub-views; the views live in *v. */
typedef struct threads_views {
    evo_tensor x, w, b, y;
    evo_tensor *in[3], *out[1];
    evo_conv_params params;
    evo_kctx ctx;
} threads_views;

static void threads_part_ctx(const threads_job *j, int32_t k, threads_views *v)
{
    const evo_kctx *c = j->ctx;
    const int64_t m0 = (int64_t)k * j->m_per_part;
    int64_t m1 = m0 + j->m_per_part;
    if (m1 > c->in[1]->shape.dims[0])
        m1 = c->in[1]->shape.dims[0];
    const int32_t mk = (int32_t)(m1 - m0);
    const size_t w_row = (size_t)(evo_shape_numel(&c->in[1]->shape) / c->in[1]->shape.dims[0]);
    const size_t y_row = (size_t)(evo_shape_numel(&c->out[0]->shape) / c->out[0]->shape.dims[1]);
    v->params = *(const evo_conv_params *)c->params;
    v->x = *c->in[0];
    if (j->depthwise) {
        const size_t x_row = (size_t)(evo_shape_numel(&c->in[0]->shape) / c->in[0]->shape.dims[1]);
        v->x.data = (float *)c->in[0]->data + m0 * (int64_t)x_row;
        v->x.shape.dims[1] = mk;
        v->params.group = mk;
    }
    v->w = *c->in[1];
    v->w.data = (float *)c->in[1]->data + m0 * (int64_t)w_row;
    v->w.shape.dims[0] = mk;
    v->in[0] = &v->x;
    v->in[1] = &v->w;
    v->in[2] = NULL;
    if (c->n_in > 2 && c->in[2] != NULL) {
        v->b = *c->in[2];
        v->b.data = (float *)c->in[2]->data + m0;
        v->b.shape.dims[0] = mk;
        v->in[2] = &v->b;
    }
    v->y = *c->out[0];
    v->y.data = (float *)c->out[0]->data + m0 * (int64_t)y_row;
    v->y.shape.dims[1] = mk;
    v->out[0] = &v->y;
    v->ctx = (evo_kctx){.params = &v->params,
                        .in = v->in,
                        .n_in = c->n_in < 3 ? c->n_in : 3,
                        .out = v->out,
                        .n_out = 1,
                        .err = NULL};
}

/* Scratch bytes part k needs. */
static size_t threads_part_scratch(const threads_job *j, int32_t k)
{
    threads_views v;
    threads_part_ctx(j, k, &v);
    return j->op->scratch != NULL ? j->op->scratch(&v.ctx) : 0;
}

static void threads_run_part(evo_threads *t, threads_job *j, int32_t k)
{
    threads_views v;
    threads_part_ctx(j, k, &v);
    if (k == 0) {
        v.ctx.scratch = j->ctx->scratch;
        v.ctx.scratch_bytes = j->ctx->scratch_bytes;
    } else {
        v.ctx.scratch = t->scratch[k];
        v.ctx.scratch_bytes = t->scratch_bytes;
    }
    if (evo_op_eval(j->op, &v.ctx) != EVO_OK)
        atomic_store(&j->failed, 1);
}

/* ---------------------------------------------------------------- the pool */

static void *threads_worker(void *argp)
{
    threads_worker_arg *a = argp;
    evo_threads *t = a->t;
    unsigned seen = 0; /* jobs start at 1: a late-starting worker still sees the first */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&t->gen, memory_order_acquire)) == seen &&
               !atomic_load(&t->quit)) {
            if (++spins < THREADS_SPIN) {
                THREADS_PAUSE();
                continue;
            }
            pthread_mutex_lock(&t->mu);
            while (atomic_load(&t->gen) == seen && !atomic_load(&t->quit))
                pthread_cond_wait(&t->cv, &t->mu);
            pthread_mutex_unlock(&t->mu);
        }
        if (atomic_load(&t->quit))
            return NULL;
        seen = g;
        threads_job *j = t->job;
        if (a->index < j->parts)
            threads_run_part(t, j, a->index);
        atomic_fetch_sub_explicit(&t->pending, 1, memory_order_release);
    }
}

evo_status evo_threads_create(int32_t n, evo_threads **out, evo_error *err)
{
    *out = NULL;
    if (n < 1 || n > EVO_THREADS_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "threads: %d is not in 1..%d", (int)n,
                             EVO_THREADS_MAX);
    evo_threads *t = calloc(1, sizeof *t);
    if (t == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "threads: out of memory");
    t->n = n;
    t->tid = calloc((size_t)n, sizeof *t->tid);
    t->args = calloc((size_t)n, sizeof *t->args);
    t->scratch = calloc((size_t)n, sizeof *t->scratch);
    if (t->tid == NULL || t->args == NULL || t->scratch == NULL) {
        evo_threads_destroy(t);
        return evo_error_set(err, EVO_ERR_NOMEM, "threads: out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->gen, 0);
    atomic_init(&t->pending, 0);
    atomic_init(&t->quit, false);
    for (int32_t w = 1; w < n; w++) {
        threads_worker_arg *a = &t->args[w];
        a->t = t;
        a->index = w;
        if (pthread_create(&t->tid[w], NULL, threads_worker, a) != 0) {
            evo_threads_destroy(t);
            return evo_error_set(err, EVO_ERR_IO, "threads: cannot start worker %d of %d", (int)w,
                                 (int)n - 1);
        }
        t->n_started = w;
    }
    *out = t;
    return EVO_OK;
}

void evo_threads_destroy(evo_threads *t)
{
    if (t == NULL)
        return;
    if (t->tid != NULL) {
        pthread_mutex_lock(&t->mu);
        atomic_store(&t->quit, true);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        for (int32_t w = 1; w <= t->n_started; w++)
            pthread_join(t->tid[w], NULL);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
    }
    if (t->scratch != NULL)
        for (int32_t w = 0; w < t->n; w++)
            free(t->scratch[w]);
    free(t->scratch);
    free(t->args);
    free(t->tid);
    free(t);
}

int32_t evo_threads_count(const evo_threads *t)
{
    return t != NULL ? t->n : 1;
}

int64_t evo_threads_split_ops(const evo_threads *t)
{
    return t != NULL ? t->split_ops : 0;
}

static bool threads_try_run(evo_threads *t, const evo_op_def *op, const evo_kctx *c,
                            evo_status *status);

/* Worker scratch for every splittable Conv of the program (allocated here,
 * never while running). */
evo_status evo_exec_set_threads(evo_exec *x, evo_threads *t, evo_error *err)
{
    x->threads = NULL;
    x->threads_run = NULL;
    if (t == NULL || t->n < 2)
        return EVO_OK;
    const evo_program *p = x->prog;
    size_t need = 0;
    int32_t splittable = 0, convs = 0;
    evo_tensor **pt = x->ptrs;
    for (int32_t k = 0; k < p->n_nodes; pt += p->nodes[k].n_in + p->nodes[k].n_out, k++) {
        const evo_prog_node *n = &p->nodes[k];
        evo_kctx c = {
            .params = n->params, .in = pt, .n_in = n->n_in, .out = pt + n->n_in, .n_out = n->n_out};
        threads_job j = {.op = n->op, .ctx = &c};
        convs += n->op == &evo_op_Conv;
        if (!threads_conv_plan(n->op, &c, t->n, &j.depthwise, &j.m_per_part, &j.parts))
            continue;
        splittable++;
        for (int32_t part = 1; part < j.parts; part++) {
            size_t s = threads_part_scratch(&j, part);
            if (s > need)
                need = s;
        }
    }
    /* Worker scratch only grows, and is replaced only once every new buffer
     * exists: executors attached before keep parts that fit, which is why
     * threads_try_run need not re-check the workers' parts. */
    if (need > t->scratch_bytes) {
        const size_t bytes = (need + EVO_ARENA_ALIGN - 1) / EVO_ARENA_ALIGN * EVO_ARENA_ALIGN;
        void *fresh[EVO_THREADS_MAX] = {NULL};
        for (int32_t w = 1; w < t->n; w++)
            if ((fresh[w] = aligned_alloc(EVO_ARENA_ALIGN, bytes)) == NULL) {
                for (int32_t v = 1; v < w; v++)
                    free(fresh[v]);
                return evo_error_set(err, EVO_ERR_NOMEM,
                                     "threads: no memory for %zu bytes of worker scratch", need);
            }
        for (int32_t w = 1; w < t->n; w++) {
            free(t->scratch[w]);
            t->scratch[w] = fresh[w];
        }
        t->scratch_bytes = need;
    }
    x->threads = t;
    x->threads_run = threads_try_run;
    EVO_LOGI("threads: %d of %d Convs split over %d threads (worker scratch %zu bytes)",
             (int)splittable, (int)convs, (int)t->n, t->scratch_bytes);
    return EVO_OK;
}

static bool threads_try_run(evo_threads *t, const evo_op_def *op, const evo_kctx *c,
                            evo_status *status)
{
    threads_job j = {.op = op, .ctx = c};
    if (t == NULL || !threads_conv_plan(op, c, t->n, &j.depthwise, &j.m_per_part, &j.parts))
        return false;
    /* Part 0 runs in the node's planned scratch, which was sized for the
     * whole Conv; the workers' parts fit by evo_exec_set_threads. */
    if (threads_part_scratch(&j, 0) > c->scratch_bytes)
        return false;
    atomic_init(&j.failed, 0);
    t->job = &j;
    atomic_store_explicit(&t->pending, t->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&t->mu);
    atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    threads_run_part(t, &j, 0);
    while (atomic_load_explicit(&t->pending, memory_order_acquire) > 0)
        THREADS_PAUSE();
    *status = atomic_load(&j.failed) ? EVO_ERR_INTERNAL : EVO_OK;
    t->split_ops++;
    return true;
}
