/*
 * Helpers shared by the pass and split tests: read a reference tensor, run
 * an inferred graph through evo_program_build + evo_exec with named inputs,
 * and compare outputs. Header-only (static functions) so each test program
 * stays one file.
 */
#ifndef EVO_TESTS_PASS_TESTUTIL_H
#define EVO_TESTS_PASS_TESTUTIL_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../modeldb/onnx_internal.h"
#include "evo/modeldb.h"
#include "evo/node.h"

/* A named tensor with owned data. */
typedef struct ptu_tensor {
    char name[256];
    evo_tensor t;
    size_t nbytes;
} ptu_tensor;

static inline void ptu_tensor_free(ptu_tensor *t)
{
    free(t->t.data);
    memset(t, 0, sizeof *t);
}

/* Read a serialized onnx.TensorProto (test_data_set_0/input_0.pb). */
static inline bool ptu_read_pb(const char *path, ptu_tensor *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    bool ok = buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    Onnx__TensorProto *tp = ok ? onnx__tensor_proto__unpack(NULL, (size_t)n, buf) : NULL;
    free(buf);
    if (tp == NULL)
        return false;
    evo_error err = {0};
    evo_onnx_ctx c = {.file = path, .err = &err};
    c.lim.max_tensor_bytes = 1u << 30;
    c.lim.max_file_bytes = 1u << 30;
    ok = evo_onnx_decode_tensor(&c, tp, "test tensor", &out->t.dtype, &out->t.shape,
                                &out->t.data) == EVO_OK &&
         evo_shape_nbytes(&out->t.shape, out->t.dtype, &out->nbytes) == EVO_OK;
    snprintf(out->name, sizeof out->name, "%s", tp->name ? tp->name : "");
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return ok;
}

/* Run graph g with inputs looked up by name in `feeds` (n_feeds); outputs
 * come back in graph-output order, named, in *outs (n = g->n_outputs). */
static inline evo_status ptu_run(const evo_graph *g, const ptu_tensor *feeds, int n_feeds,
                                 ptu_tensor **outs, double *ms)
{
    evo_program *p = NULL;
    evo_error err = {0};
    evo_status rv = evo_program_build(g, NULL, &p, &err);
    if (rv != EVO_OK) {
        fprintf(stderr, "build: %s\n", err.msg);
        return rv;
    }
    size_t ab = evo_program_arena_size(p);
    void *arena = malloc(ab);
    evo_exec x;
    if (arena == NULL || (rv = evo_exec_init(&x, p, arena, ab)) != EVO_OK) {
        free(arena);
        evo_program_free(p);
        return rv ? rv : EVO_ERR_NOMEM;
    }
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const evo_prog_tensor *pt = &p->tensors[p->inputs[i]];
        const ptu_tensor *src = NULL;
        for (int k = 0; k < n_feeds; k++)
            if (strcmp(feeds[k].name, pt->name) == 0)
                src = &feeds[k];
        if (src == NULL || src->nbytes != pt->nbytes) {
            fprintf(stderr, "no feed of %llu bytes for input '%s'\n",
                    (unsigned long long)pt->nbytes, pt->name);
            free(arena);
            evo_program_free(p);
            return EVO_ERR_NOT_FOUND;
        }
        memcpy(evo_exec_input(&x, i)->data, src->t.data, src->nbytes);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int32_t failed = -1;
    rv = evo_exec_run(&x, &failed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (ms != NULL)
        *ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (rv == EVO_OK) {
        *outs = calloc((size_t)p->n_outputs + 1, sizeof **outs);
        for (int32_t i = 0; i < p->n_outputs; i++) {
            const evo_prog_tensor *pt = &p->tensors[p->outputs[i]];
            const evo_tensor *t = evo_exec_output(&x, i);
            ptu_tensor *o = &(*outs)[i];
            snprintf(o->name, sizeof o->name, "%s", pt->name);
            o->t.dtype = t->dtype;
            o->t.shape = t->shape;
            o->nbytes = pt->nbytes;
            o->t.data = malloc(o->nbytes + 1);
            memcpy(o->t.data, t->data, o->nbytes);
        }
    }
    free(arena);
    evo_program_free(p);
    return rv;
}

/* Elementwise |a - b| <= atol + rtol * |b| over float32 tensors. */
static inline bool ptu_close(const ptu_tensor *a, const ptu_tensor *b, double rtol, double atol)
{
    if (a->t.dtype != b->t.dtype || !evo_shape_equal(&a->t.shape, &b->t.shape) ||
        a->nbytes != b->nbytes) {
        fprintf(stderr, "'%s' vs '%s': dtype or shape differs\n", a->name, b->name);
        return false;
    }
    if (a->t.dtype != EVO_DT_FLOAT32)
        return memcmp(a->t.data, b->t.data, a->nbytes) == 0;
    const float *x = a->t.data, *y = b->t.data;
    size_t n = a->nbytes / sizeof(float);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        if (!(d <= atol + rtol * fabs((double)y[i]))) {
            fprintf(stderr, "'%s' element %zu: %.9g vs %.9g\n", a->name, i, (double)x[i],
                    (double)y[i]);
            return false;
        }
    }
    return true;
}

static inline void ptu_free_outs(ptu_tensor *outs, int n)
{
    if (outs == NULL)
        return;
    for (int i = 0; i < n; i++)
        ptu_tensor_free(&outs[i]);
    free(outs);
}

/* The zoo model directory, or NULL when the shared data is absent. */
static inline const char *ptu_models_dir(void)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/models", EVO_SHARED_DIR);
    FILE *f;
    char probe[8192];
    snprintf(probe, sizeof probe, "%s/resnet18/model.onnx", dir);
    if ((f = fopen(probe, "rb")) == NULL)
        return NULL;
    fclose(f);
    return dir;
}

/* Names of the model directories under dir (sorted); returns the count. */
static inline int ptu_cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static inline int ptu_list_models(const char *dir, char names[][64], int cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < cap;) {
        char probe[8192];
        snprintf(probe, sizeof probe, "%s/%s/model.onnx", dir, e->d_name);
        FILE *f = fopen(probe, "rb");
        if (e->d_name[0] == '.' || f == NULL || strlen(e->d_name) >= 64)
            continue;
        fclose(f);
        snprintf(names[n++], 64, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, 64, ptu_cmp_names);
    return n;
}

/* Import a zoo model and read its reference input (fed under the graph
 * input's name). */
static inline evo_graph *ptu_load_zoo(const char *dir, const char *model, ptu_tensor *input)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, model);
    evo_graph *g = NULL;
    evo_error err = {0};
    if (evo_model_import(path, NULL, &g, &err) != EVO_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_0.pb", dir, model);
    if (!ptu_read_pb(path, input) || g->n_inputs != 1) {
        evo_graph_free(g);
        return NULL;
    }
    snprintf(input->name, sizeof input->name, "%s", g->values[g->inputs[0]].name);
    return g;
}

#endif /* EVO_TESTS_PASS_TESTUTIL_H */
