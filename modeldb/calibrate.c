/*
 * Device calibration: a short micro-benchmark that measures what evo's own
 * kernels sustain on this machine -- dense Conv (3x3 and 1x1, GEMM-bound),
 * depthwise Conv, elementwise ops -- and the streaming memory bandwidth.
 * The predictor divides an op's FLOPs and bytes by these figures.
 *
 * Each figure is the best of repeated runs (what the device sustains when
 * nothing else competes for it: on a shared machine the median would
 * measure the neighbours) of a small graph built in memory and run through
 * the normal path (infer, program build, executor), so it measures exactly
 * the code the models run.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db_internal.h"

/* Time budget of one benchmark, and bounds on its repeats. */
#define CAL_BUDGET_US 180000.0
#define CAL_MIN_RUNS 5
#define CAL_MAX_RUNS 400

static double cal_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cal_cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* A float32 value of the given shape; const data is filled when data is set. */
static evo_status cal_value(evo_graph *g, const char *name, int32_t rank, const int32_t *dims,
                            bool constant, int32_t *out)
{
    evo_status rv = evo_graph_add_value(g, name, out);
    if (rv != EVO_OK)
        return rv;
    evo_value *v = &g->values[*out];
    v->t.dtype = EVO_DT_FLOAT32;
    v->t.shape.rank = rank;
    for (int32_t d = 0; d < rank; d++)
        v->t.shape.dims[d] = dims[d];
    v->flags |= EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE;
    if (!constant)
        return EVO_OK;
    size_t bytes;
    if ((rv = evo_shape_nbytes(&v->t.shape, EVO_DT_FLOAT32, &bytes)) != EVO_OK)
        return rv;
    float *data = malloc(bytes ? bytes : 1);
    if (data == NULL)
        return EVO_ERR_NOMEM;
    /* Small non-zero weights keep activations finite and away from denormals. */
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        data[i] = (float)((int)(i % 7) - 3) * 0.01f;
    evo_shape s = v->t.shape;
    return evo_value_set_const(g, *out, EVO_DT_FLOAT32, &s, data);
}

static evo_status cal_int_attr(evo_graph *g, int32_t node, const char *name, int64_t value)
{
    evo_attr a = {0};
    a.type = EVO_ATTR_INT;
    a.i = value;
    if ((a.name = db_strdup(name)) == NULL)
        return EVO_ERR_NOMEM;
    return evo_node_add_attr(g, node, &a);
}

static evo_status cal_ints_attr(evo_graph *g, int32_t node, const char *name, const int64_t *v,
                                size_t n)
{
    evo_attr a = {0};
    a.type = EVO_ATTR_INTS;
    a.count = n;
    a.name = db_strdup(name);
    a.ints = malloc(n * sizeof *a.ints);
    if (a.name == NULL || a.ints == NULL) {
        free(a.name);
        free(a.ints);
        return EVO_ERR_NOMEM;
    }
    memcpy(a.ints, v, n * sizeof *a.ints);
    return evo_node_add_attr(g, node, &a);
}

/* A benchmark graph: one op on input x (and a constant or second input). */
typedef struct cal_spec {
    const char *op;
    int32_t x_dims[4];
    int32_t w_dims[4]; /* Conv weight; w_dims[0] == 0: none */
    bool second_input; /* binary op: y has x's shape */
    int64_t group;     /* Conv group (0: not set) */
    bool pad1;         /* Conv pads 1 on every side */
} cal_spec;

static evo_status cal_build(const cal_spec *s, evo_graph **out, evo_error *err)
{
    evo_graph *g = evo_graph_new();
    if (g == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "calibration: out of memory");
    evo_status rv;
    int32_t x, w = -1, y, k;
    int32_t ins[2];
    int32_t n_in = 1;
    if ((rv = cal_value(g, "x", 4, s->x_dims, false, &x)) != EVO_OK)
        goto fail;
    ins[0] = x;
    if (s->w_dims[0] > 0) {
        if ((rv = cal_value(g, "w", 4, s->w_dims, true, &w)) != EVO_OK)
            goto fail;
        ins[n_in++] = w;
    } else if (s->second_input) {
        if ((rv = cal_value(g, "x2", 4, s->x_dims, false, &w)) != EVO_OK)
            goto fail;
        ins[n_in++] = w;
    }
    if ((rv = evo_graph_add_value(g, "y", &y)) != EVO_OK ||
        (rv = evo_graph_add_node(g, s->op, "", "bench", ins, n_in, &y, 1, &k)) != EVO_OK)
        goto fail;
    if (s->group > 0 && (rv = cal_int_attr(g, k, "group", s->group)) != EVO_OK)
        goto fail;
    static const int64_t pads[4] = {1, 1, 1, 1};
    if (s->pad1 && (rv = cal_ints_attr(g, k, "pads", pads, 4)) != EVO_OK)
        goto fail;
    int32_t n_graph_in = s->second_input ? 2 : 1;
    g->inputs = malloc(2 * sizeof *g->inputs);
    g->outputs = malloc(sizeof *g->outputs);
    if (g->inputs == NULL || g->outputs == NULL) {
        rv = EVO_ERR_NOMEM;
        goto fail;
    }
    g->inputs[0] = x;
    g->inputs[1] = w;
    g->n_inputs = n_graph_in;
    g->outputs[0] = y;
    g->n_outputs = 1;
    g->values[x].flags |= EVO_VALUE_INPUT;
    if (s->second_input)
        g->values[w].flags |= EVO_VALUE_INPUT;
    g->values[y].flags |= EVO_VALUE_OUTPUT;
    if ((rv = evo_graph_validate(g, err)) != EVO_OK || (rv = evo_graph_infer(g, NULL, NULL, err)))
        goto fail;
    *out = g;
    return EVO_OK;
fail:
    evo_graph_free(g);
    if (err != NULL && err->code == EVO_OK)
        evo_error_set(err, rv, "calibration: cannot build the %s benchmark: %s", s->op,
                      evo_strerror(rv));
    else
        evo_error_prefix(err, "calibration");
    return rv;
}

/* Best microseconds per run of the spec's graph, its FLOPs and bytes. */
static evo_status cal_time(const cal_spec *s, double *us, uint64_t *flops, uint64_t *bytes,
                           evo_error *err)
{
    evo_graph *g = NULL;
    evo_program *p = NULL;
    void *arena = NULL;
    double *t = NULL;
    evo_status rv = cal_build(s, &g, err);
    if (rv != EVO_OK)
        return rv;
    if ((rv = evo_program_build(g, NULL, &p, err)) != EVO_OK)
        goto done;
    size_t an = evo_program_arena_size(p);
    arena = malloc(an);
    t = malloc(CAL_MAX_RUNS * sizeof *t);
    evo_exec x;
    if (arena == NULL || t == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "calibration: out of memory");
        goto done;
    }
    if ((rv = evo_exec_init(&x, p, arena, an)) != EVO_OK) {
        evo_error_set(err, rv, "calibration: executor setup failed");
        goto done;
    }
    for (int32_t i = 0; i < p->n_inputs; i++) {
        evo_tensor *in = evo_exec_input(&x, i);
        size_t n = (size_t)p->tensors[p->inputs[i]].nbytes / sizeof(float);
        for (size_t e = 0; e < n; e++)
            ((float *)in->data)[e] = (float)((int)(e % 11) - 5) * 0.1f;
    }
    evo_db_op facts;
    if ((rv = evo_program_op_facts(p, 0, &facts, err)) != EVO_OK)
        goto done;
    *flops = facts.flops;
    *bytes = facts.in_bytes + facts.out_bytes + facts.param_bytes;
    db_op_clear(&facts);
    if ((rv = evo_exec_run(&x, NULL)) != EVO_OK) /* warm-up: caches, page faults */
        goto done;
    int n = 0;
    double start = cal_now_us();
    while (n < CAL_MAX_RUNS && (n < CAL_MIN_RUNS || cal_now_us() - start < CAL_BUDGET_US)) {
        double t0 = cal_now_us();
        if ((rv = evo_exec_run(&x, NULL)) != EVO_OK)
            goto done;
        t[n++] = cal_now_us() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cal_cmp_double);
    *us = t[0] > 0.01 ? t[0] : 0.01;
done:
    if (rv != EVO_OK && err != NULL && err->code == EVO_OK)
        evo_error_set(err, rv, "calibration: the %s benchmark failed: %s", s->op, evo_strerror(rv));
    free(t);
    free(arena);
    evo_program_free(p);
    evo_graph_free(g);
    return rv;
}

/* Copy bandwidth between two buffers of n bytes each, bytes read + written
 * per nanosecond (= GB/s). Large n measures memory, small n the cache. */
static evo_status cal_bandwidth(size_t n, double *gbps, evo_error *err)
{
    unsigned char *a = malloc(n), *b = malloc(n);
    double *t = malloc(CAL_MAX_RUNS * sizeof *t);
    if (a == NULL || b == NULL || t == NULL) {
        free(a);
        free(b);
        free(t);
        return evo_error_set(err, EVO_ERR_NOMEM, "calibration: out of memory");
    }
    memset(a, 1, n);
    memset(b, 2, n);
    /* Copies shorter than the timer's resolution are batched. */
    int batch = n >= ((size_t)1 << 20) ? 1 : (int)(((size_t)1 << 20) / n);
    int runs = 0;
    double start = cal_now_us();
    while (runs < CAL_MAX_RUNS && (runs < CAL_MIN_RUNS || cal_now_us() - start < CAL_BUDGET_US)) {
        double t0 = cal_now_us();
        for (int i = 0; i < batch; i++)
            memcpy((runs + i) % 2 ? a : b, (runs + i) % 2 ? b : a, n);
        t[runs++] = (cal_now_us() - t0) / batch;
    }
    qsort(t, (size_t)runs, sizeof *t, cal_cmp_double);
    /* Touch the result so the copies cannot be optimized away. */
    volatile unsigned char sink = a[n / 3] ^ b[n / 5];
    (void)sink;
    *gbps = 2.0 * (double)n / ((t[0] > 0.001 ? t[0] : 0.001) * 1e3);
    free(a);
    free(b);
    free(t);
    return EVO_OK;
}

/* The per-core cache the kernels' working sets live in: L2 (sysconf, then
 * sysfs), 1 MiB if the system does not say. */
static uint64_t cal_cache_bytes(void)
{
    long v = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    if (v > 0)
        return (uint64_t)v;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index2/size", "r");
    if (f != NULL) {
        char unit = 0;
        long kb = 0;
        if (fscanf(f, "%ld%c", &kb, &unit) >= 1 && kb > 0)
            v = unit == 'M' ? kb << 20 : kb << 10;
        fclose(f);
    }
    return v > 0 ? (uint64_t)v : (uint64_t)1 << 20;
}

evo_status evo_calibrate(evo_calibration *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    double start = cal_now_us();
    static const cal_spec conv3 = {"Conv", {1, 64, 28, 28}, {64, 64, 3, 3}, false, 0, true};
    static const cal_spec conv1 = {"Conv", {1, 128, 28, 28}, {128, 128, 1, 1}, false, 0, false};
    static const cal_spec dw = {"Conv", {1, 128, 56, 56}, {128, 1, 3, 3}, false, 128, true};
    static const cal_spec add = {"Add", {1, 64, 56, 56}, {0, 0, 0, 0}, true, 0, false};
    static const cal_spec relu = {"Relu", {1, 64, 56, 56}, {0, 0, 0, 0}, false, 0, false};
    double us3, us1, usdw, usadd, usrelu, mem[3] = {0};
    uint64_t f3, f1, fdw, fadd, frelu, bytes;
    evo_status rv;
    /* Memory bandwidth is what neighbours on a shared machine take away in
     * bursts of a second or more, and every streamed byte of the
     * predictions is divided by it: it is measured three times, spread
     * over the calibration, and the best counts. */
    if ((rv = cal_bandwidth((size_t)32 << 20, &mem[0], err)) != EVO_OK ||
        (rv = cal_time(&conv3, &us3, &f3, &bytes, err)) != EVO_OK ||
        (rv = cal_time(&conv1, &us1, &f1, &bytes, err)) != EVO_OK ||
        (rv = cal_bandwidth((size_t)32 << 20, &mem[1], err)) != EVO_OK ||
        (rv = cal_time(&dw, &usdw, &fdw, &bytes, err)) != EVO_OK ||
        (rv = cal_time(&add, &usadd, &fadd, &bytes, err)) != EVO_OK ||
        (rv = cal_time(&relu, &usrelu, &frelu, &bytes, err)) != EVO_OK ||
        (rv = cal_bandwidth((size_t)32 << 20, &mem[2], err)) != EVO_OK)
        return rv;
    out->mem_gbps = mem[0] > mem[1] ? mem[0] : mem[1];
    out->mem_gbps = mem[2] > out->mem_gbps ? mem[2] : out->mem_gbps;
    /* Two buffers of a quarter of the cache each stay resident. */
    out->cache_bytes = cal_cache_bytes();
    size_t small = (size_t)(out->cache_bytes / 4);
    if ((rv = cal_bandwidth(small > 4096 ? small : 4096, &out->cache_gbps, err)) != EVO_OK)
        return rv;
    /* FLOPs per microsecond / 1000 = GFLOP/s. */
    out->dense_gflops = (double)(f3 + f1) / (us3 + us1) / 1e3;
    out->dw_gflops = (double)fdw / usdw / 1e3;
    out->elem_gflops = (double)(fadd + frelu) / (usadd + usrelu) / 1e3;
    /* Best-of-short-runs measured the unthrottled core; a quota below one
     * core lets this thread run only that share of any longer stretch. */
    double share = evo_cpu_quota();
    if (share > 0 && share < 1) {
        out->dense_gflops *= share;
        out->dw_gflops *= share;
        out->elem_gflops *= share;
        out->mem_gbps *= share;
        out->cache_gbps *= share;
        EVO_LOGI("calibration: a CPU quota of %.2f of a core applies; rates scaled to it", share);
    }
    out->seconds = (cal_now_us() - start) / 1e6;
    return EVO_OK;
}

/* ---------------------------------------------------------------- device class */

void evo_device_class_default(char *buf, size_t cap)
{
    if (cap == 0)
        return;
    snprintf(buf, cap, "local");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    const char *model = NULL;
    while (fgets(line, sizeof line, f) != NULL) {
        /* x86 says "model name", some ARM kernels only "Hardware"/"Model". */
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                model = colon + 1;
                break;
            }
        }
    }
    fclose(f);
    if (model == NULL)
        return;
    /* "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz" -> "intel-xeon-cpu-e5-2680-v4-2-40ghz" */
    size_t n = 0;
    bool dash = false;
    for (const char *s = model; *s && n + 1 < cap; s++) {
        if (s[0] == '(' && (strncmp(s, "(R)", 3) == 0 || strncmp(s, "(r)", 3) == 0)) {
            s += 2;
            continue;
        }
        if (s[0] == '(' && (strncmp(s, "(TM)", 4) == 0 || strncmp(s, "(tm)", 4) == 0)) {
            s += 3;
            continue;
        }
        unsigned char c = (unsigned char)*s;
        if (isalnum(c)) {
            if (dash && n > 0 && n + 2 < cap)
                buf[n++] = '-';
            dash = false;
            buf[n++] = (char)tolower(c);
        } else {
            dash = true;
        }
    }
    buf[n] = '\0';
    if (n == 0)
        snprintf(buf, cap, "local");
}
