/*
 * ONNX conformance for the pooling, normalization, softmax, reduction and
 * arg-max kernels: every single-node test in ../shared/onnx-tests/node whose
 * op is one of these is run through parse, infer and eval directly (no
 * importer), and the outputs are compared with the reference outputs.
 * In-place ops are run a second time with the output aliasing input 0.
 *
 * Skipped (and listed): tests whose tensors use a dtype evo's kernels do
 * not hold (double, float16, bool), and nodes refused as unsupported
 * (BatchNormalization training mode). Skips if the shared data is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/op.h"
#include "onnx.pb-c.h"

#define KT_MAX_IO 8

static const char *const kt_ops[] = {
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL2",
    "ArgMax",
    "ArgMin",
};

/* snprintf that reports truncation instead of warning about it */
static bool kt_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static void *kt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bool kt_dtype_ok(int dt)
{
    return dt == EVO_DT_FLOAT32 || dt == EVO_DT_INT32 || dt == EVO_DT_INT64 || dt == EVO_DT_INT8 ||
           dt == EVO_DT_UINT8;
}

/* Load a TensorProto file into t (data malloc'd). 1 = dtype not held by
 * evo's kernels, 0 = loaded, -1 = broken file. */
static int kt_load_tensor(const char *path, evo_tensor *t)
{
    size_t len;
    void *buf = kt_read_file(path, &len);
    if (buf == NULL)
        return -1;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (tp == NULL)
        return -1;
    int rc = 0;
    memset(t, 0, sizeof *t);
    if (!kt_dtype_ok(tp->data_type)) {
        rc = 1;
        goto out;
    }
    t->dtype = (evo_dtype)tp->data_type;
    if (tp->n_dims > EVO_MAX_RANK) {
        rc = -1;
        goto out;
    }
    t->shape.rank = (int32_t)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        t->shape.dims[i] = (int32_t)tp->dims[i];
    size_t nbytes, es = evo_dtype_size(t->dtype);
    if (evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK) {
        rc = -1;
        goto out;
    }
    t->data = calloc(1, nbytes + 16);
    size_t n = nbytes / es;
    if (n == 0) {
        /* empty tensor: nothing to copy (the data arrays may be NULL) */
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != nbytes)
            rc = -1;
        else
            memcpy(t->data, tp->raw_data.data, nbytes);
    } else if (t->dtype == EVO_DT_FLOAT32 && tp->n_float_data == n) {
        memcpy(t->data, tp->float_data, nbytes);
    } else if (t->dtype == EVO_DT_INT64 && tp->n_int64_data == n) {
        memcpy(t->data, tp->int64_data, nbytes);
    } else if (tp->n_int32_data == n) {
        for (size_t i = 0; i < n; i++) {
            int32_t v = tp->int32_data[i];
            if (t->dtype == EVO_DT_INT32)
                ((int32_t *)t->data)[i] = v;
            else if (t->dtype == EVO_DT_INT8)
                ((int8_t *)t->data)[i] = (int8_t)v;
            else if (t->dtype == EVO_DT_UINT8)
                ((uint8_t *)t->data)[i] = (uint8_t)v;
            else
                rc = -1;
        }
    } else {
        rc = -1;
    }
out:
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}

/* Compare with the ONNX backend tests' default tolerance (rtol 1e-3, atol
 * 1e-7: some reference outputs are rounded to 4 digits); returns the number of mismatching elements
 * and prints the first. */
static int64_t kt_compare(const char *test, int k, const evo_tensor *got, const evo_tensor *want)
{
    if (got->dtype != want->dtype || !evo_shape_equal(&got->shape, &want->shape)) {
        char a[96], b[96];
        evo_shape_format(&got->shape, a, sizeof a);
        evo_shape_format(&want->shape, b, sizeof b);
        printf("  %s: output %d is %s %s, expected %s %s\n", test, k, evo_dtype_name(got->dtype), a,
               evo_dtype_name(want->dtype), b);
        return 1;
    }
    int64_t n = evo_shape_numel(&want->shape), bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double g, w;
        switch (want->dtype) {
        case EVO_DT_FLOAT32:
            g = ((float *)got->data)[i];
            w = ((float *)want->data)[i];
            break;
        case EVO_DT_INT32:
            g = ((int32_t *)got->data)[i];
            w = ((int32_t *)want->data)[i];
            break;
        case EVO_DT_INT64:
            g = (double)((int64_t *)got->data)[i];
            w = (double)((int64_t *)want->data)[i];
            break;
        case EVO_DT_INT8:
            g = ((int8_t *)got->data)[i];
            w = ((int8_t *)want->data)[i];
            break;
        default:
            g = ((uint8_t *)got->data)[i];
            w = ((uint8_t *)want->data)[i];
            break;
        }
        bool ok = (isnan(g) && isnan(w)) || g == w || fabs(g - w) <= 1e-7 + 1e-3 * fabs(w);
        if (!ok && bad++ == 0)
            printf("  %s: output %d element %lld is %.8g, expected %.8g\n", test, k, (long long)i,
                   g, w);
    }
    return bad;
}

typedef enum { KT_PASS, KT_SKIP, KT_FAIL, KT_OTHER } kt_result;

static int kt_graph_input_index(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_input; i++)
        if (strcmp(g->input[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static int kt_graph_output_index(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_output; i++)
        if (strcmp(g->output[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static kt_result kt_run(const char *dir, const char *test)
{
    char path[1024];
    size_t len;
    if (!kt_path(path, sizeof path, "%s/%s/model.onnx", dir, test))
        return KT_OTHER;
    void *buf = kt_read_file(path, &len);
    if (buf == NULL)
        return KT_OTHER;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (m == NULL || m->graph == NULL || m->graph->n_node != 1) {
        if (m != NULL)
            onnx__model_proto__free_unpacked(m, NULL);
        return KT_OTHER;
    }
    const Onnx__GraphProto *g = m->graph;
    const Onnx__NodeProto *np = g->node[0];
    bool mine = false;
    for (size_t i = 0; i < sizeof kt_ops / sizeof kt_ops[0]; i++)
        mine = mine || strcmp(np->op_type, kt_ops[i]) == 0;
    if (!mine || np->n_input > KT_MAX_IO || np->n_output > KT_MAX_IO || np->n_attribute > 32) {
        onnx__model_proto__free_unpacked(m, NULL);
        return KT_OTHER;
    }

    kt_result res = KT_FAIL;
    evo_attr attrs[32];
    memset(attrs, 0, sizeof attrs);
    evo_node node;
    memset(&node, 0, sizeof node);
    node.name = np->name != NULL ? np->name : "";
    node.op_type = np->op_type;
    node.domain = "";
    node.opset = 1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (d == NULL || d[0] == '\0' || strcmp(d, "ai.onnx") == 0)
            node.opset = (int)m->opset_import[i]->version;
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        evo_attr *e = &attrs[i];
        e->name = a->name;
        e->type = (evo_attr_type)a->type;
        e->i = a->i;
        e->f = a->f;
        e->ints = a->ints;
        e->floats = a->floats;
        e->count = a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ? a->n_ints : a->n_floats;
    }
    char sbuf[32][64];
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) {
            size_t n = a->s.len < 63 ? a->s.len : 63;
            memcpy(sbuf[i], a->s.data, n);
            sbuf[i][n] = '\0';
            attrs[i].s = sbuf[i];
        }
    }
    node.attrs = attrs;
    node.n_attrs = (int32_t)np->n_attribute;

    evo_tensor in_t[KT_MAX_IO], out_t[KT_MAX_IO], want_t[KT_MAX_IO];
    evo_tensor *in_p[KT_MAX_IO], *out_p[KT_MAX_IO];
    memset(in_t, 0, sizeof in_t);
    memset(out_t, 0, sizeof out_t);
    memset(want_t, 0, sizeof want_t);
    void *scratch = NULL;
    for (size_t i = 0; i < np->n_input; i++) {
        in_p[i] = NULL;
        if (np->input[i][0] == '\0')
            continue;
        int k = kt_graph_input_index(g, np->input[i]);
        bool ok = kt_path(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", dir, test, k);
        int rc = k < 0 || !ok ? -1 : kt_load_tensor(path, &in_t[i]);
        if (rc != 0) {
            res = rc > 0 ? KT_SKIP : KT_FAIL;
            printf("  %s: input %zu %s\n", test, i,
                   rc > 0 ? "has an unsupported dtype" : "unreadable");
            goto done;
        }
        in_p[i] = &in_t[i];
    }
    for (size_t i = 0; i < np->n_output; i++) {
        out_p[i] = NULL;
        if (np->output[i][0] == '\0')
            continue;
        int k = kt_graph_output_index(g, np->output[i]);
        bool ok = kt_path(path, sizeof path, "%s/%s/test_data_set_0/output_%d.pb", dir, test, k);
        int rc = k < 0 || !ok ? -1 : kt_load_tensor(path, &want_t[i]);
        if (rc != 0) {
            res = rc > 0 ? KT_SKIP : KT_FAIL;
            printf("  %s: output %zu %s\n", test, i,
                   rc > 0 ? "has an unsupported dtype" : "unreadable");
            goto done;
        }
        out_p[i] = &out_t[i];
    }

    const evo_op_def *op = evo_op_find("", np->op_type);
    if (op == NULL) {
        printf("  %s: op %s is not registered\n", test, np->op_type);
        goto done;
    }
    _Alignas(16) unsigned char params[EVO_PARAMS_MAX];
    memset(params, 0, sizeof params);
    evo_error err = {0};
    evo_status rv = op->parse != NULL ? op->parse(&node, params, &err) : EVO_OK;
    evo_kctx c = {.params = params,
                  .in = in_p,
                  .n_in = (int32_t)np->n_input,
                  .out = out_p,
                  .n_out = (int32_t)np->n_output,
                  .err = &err};
    if (rv == EVO_OK)
        rv = op->infer(&c);
    if (rv == EVO_ERR_UNSUPPORTED) {
        printf("  %s: skipped: %s\n", test, err.msg);
        res = KT_SKIP;
        goto done;
    }
    if (rv != EVO_OK) {
        printf("  %s: parse/infer failed: %s\n", test, err.msg);
        goto done;
    }
    for (size_t i = 0; i < np->n_output; i++) {
        size_t nbytes;
        if (out_p[i] == NULL)
            continue;
        if (evo_shape_nbytes(&out_t[i].shape, out_t[i].dtype, &nbytes) != EVO_OK)
            goto done;
        out_t[i].data = calloc(1, nbytes + 16);
    }
    size_t sb = op->scratch != NULL ? op->scratch(&c) : 0;
    scratch = aligned_alloc(16, (sb + 16) & ~(size_t)15);
    c.scratch = scratch;
    c.scratch_bytes = sb;
    c.err = NULL;
    if ((rv = op->eval(&c)) != EVO_OK) {
        printf("  %s: eval failed: %s\n", test, evo_strerror(rv));
        goto done;
    }
    int64_t bad = 0;
    for (size_t i = 0; i < np->n_output; i++)
        if (out_p[i] != NULL)
            bad += kt_compare(test, (int)i, &out_t[i], &want_t[i]);

    /* In-place: output 0 aliasing input 0 must give the same result. */
    if (bad == 0 && (op->flags & EVO_OP_INPLACE) && out_t[0].dtype == in_t[0].dtype &&
        evo_shape_equal(&out_t[0].shape, &in_t[0].shape)) {
        void *keep = out_t[0].data;
        out_t[0].data = in_t[0].data;
        if (op->eval(&c) != EVO_OK || kt_compare(test, 0, &out_t[0], &want_t[0]) != 0) {
            printf("  %s: in-place run differs\n", test);
            bad++;
        }
        out_t[0].data = keep;
    }
    res = bad == 0 ? KT_PASS : KT_FAIL;
done:
    for (int i = 0; i < KT_MAX_IO; i++) {
        free(in_t[i].data);
        free(out_t[i].data);
        free(want_t[i].data);
    }
    free(scratch);
    onnx__model_proto__free_unpacked(m, NULL);
    return res;
}

static int kt_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void kpool_onnx_conformance(void **state)
{
    (void)state;
    char dir[1024];
    if (!kt_path(dir, sizeof dir, "%s/onnx-tests/node", EVO_SHARED_DIR))
        skip();
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("no ONNX test data at %s\n", dir);
        skip();
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "test_", 5) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, kt_cmp_names);
    int pass = 0, skipped = 0, fail = 0;
    for (size_t i = 0; i < n; i++) {
        kt_result r = kt_run(dir, names[i]);
        if (r == KT_PASS)
            pass++;
        else if (r == KT_SKIP)
            skipped++;
        else if (r == KT_FAIL) {
            fail++;
            printf("FAIL %s\n", names[i]);
        }
        free(names[i]);
    }
    free(names);
    printf("kpool ONNX conformance: %d passed, %d skipped, %d failed\n", pass, skipped, fail);
    assert_int_equal(fail, 0);
    /* the suite ships well over 100 such tests; far fewer means a broken scan */
    assert_true(pass >= 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kpool_onnx_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
