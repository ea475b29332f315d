/*
 * Run the ONNX backend node tests of the kshape ops (single-node models in
 * ../shared/onnx-tests/node) directly through parse/infer/eval, without the
 * importer: the model and tensors are decoded with the generated protobuf-c
 * code and the node is built by hand. Compares every output against the
 * reference outputs. A case whose node uses something evo reports as
 * EVO_ERR_UNSUPPORTED (e.g. antialias) or that needs importer rewriting
 * (old attribute forms, sequences) is listed and skipped; any mismatch or other
 * error fails the test. Skips as a whole when the shared data is absent.
 */
#include <dirent.h>
#include <stdio.h>

#include "kshape_test_util.h"
#include "onnx.pb-c.h"

#define CONF_DIR EVO_SHARED_DIR "/onnx-tests/node"

static const char *const conf_prefixes[] = {
    "test_concat_",      "test_split_",
    "test_slice",        "test_reshape_",
    "test_flatten_",     "test_squeeze",
    "test_unsqueeze",    "test_identity",
    "test_dropout_",     "test_transpose_",
    "test_gather_0",     "test_gather_1",
    "test_gather_2d",    "test_gather_negative",
    "test_expand_",      "test_tile",
    "test_constant_pad", "test_edge_pad",
    "test_reflect_pad",  "test_wrap_pad",
    "test_resize_",      "test_upsample_",
    "test_depthtospace", "test_spacetodepth",
    "test_shape",        "test_size",
    "test_constant",     "test_constantofshape",
    "test_range_",
};

static void *conf_read(const char *path, size_t *len)
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

/* TensorProto -> evo_tensor with malloc'd data; false if not representable. */
static bool conf_tensor(const Onnx__TensorProto *tp, evo_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->dtype = (evo_dtype)tp->data_type;
    if (tp->n_dims > EVO_MAX_RANK)
        return false;
    t->shape.rank = (int32_t)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        t->shape.dims[i] = (int32_t)tp->dims[i];
    size_t nbytes;
    if (evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK || nbytes > ((size_t)1 << 28))
        return false; /* not a plain tensor (sequence/optional protos decode oddly) */
    size_t n = (size_t)evo_shape_numel(&t->shape), es = evo_dtype_size(t->dtype);
    unsigned char *d = calloc(1, nbytes + 8);
    t->data = d;
    if (nbytes == 0)
        return true;
    if (tp->has_raw_data) {
        if (tp->raw_data.len != nbytes)
            return false;
        memcpy(d, tp->raw_data.data, nbytes);
    } else if (tp->n_float_data == n && t->dtype == EVO_DT_FLOAT32) {
        memcpy(d, tp->float_data, nbytes);
    } else if (tp->n_int64_data == n && t->dtype == EVO_DT_INT64) {
        memcpy(d, tp->int64_data, nbytes);
    } else if (tp->n_double_data == n && t->dtype == EVO_DT_FLOAT64) {
        memcpy(d, tp->double_data, nbytes);
    } else if (tp->n_int32_data == n) {
        for (size_t i = 0; i < n; i++) {
            int32_t v = tp->int32_data[i];
            if (es == 4)
                memcpy(d + i * 4, &v, 4);
            else if (es == 2) {
                uint16_t h = (uint16_t)v;
                memcpy(d + i * 2, &h, 2);
            } else if (es == 1)
                d[i] = (unsigned char)v;
            else
                return false;
        }
    } else if (n != 0) {
        return false;
    }
    return true;
}

static bool conf_load_tensor(const char *path, evo_tensor *t)
{
    size_t len;
    void *buf = conf_read(path, &len);
    if (buf == NULL)
        return false;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (tp == NULL)
        return false;
    bool ok = conf_tensor(tp, t);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (!ok) {
        free(t->data);
        t->data = NULL;
    }
    return ok;
}

static bool conf_close(const evo_tensor *got, const evo_tensor *want, char *why, size_t cap)
{
    if (got->dtype != want->dtype || !evo_shape_equal(&got->shape, &want->shape)) {
        char a[64], b[64];
        evo_shape_format(&got->shape, a, sizeof a);
        evo_shape_format(&want->shape, b, sizeof b);
        snprintf(why, cap, "got %s %s, want %s %s", evo_dtype_name(got->dtype), a,
                 evo_dtype_name(want->dtype), b);
        return false;
    }
    int64_t n = evo_shape_numel(&got->shape);
    if (got->dtype == EVO_DT_FLOAT32) {
        const float *g = got->data, *w = want->data;
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] - w[i], tol = 1e-4f + 1e-4f * (w[i] < 0 ? -w[i] : w[i]);
            if (d > tol || d < -tol) {
                snprintf(why, cap, "element %lld: got %.7g want %.7g", (long long)i, (double)g[i],
                         (double)w[i]);
                return false;
            }
        }
        return true;
    }
    size_t nbytes;
    evo_shape_nbytes(&got->shape, got->dtype, &nbytes);
    if (nbytes > 0 && memcmp(got->data, want->data, nbytes) != 0) {
        snprintf(why, cap, "bytes differ");
        return false;
    }
    return true;
}

typedef enum { CONF_PASS, CONF_SKIP, CONF_FAIL } conf_result;

static conf_result conf_run_case(const char *name, char *why, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/model.onnx", CONF_DIR, name);
    size_t len;
    void *buf = conf_read(path, &len);
    if (buf == NULL) {
        snprintf(why, cap, "cannot read model");
        return CONF_FAIL;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (m == NULL || m->graph == NULL) {
        snprintf(why, cap, "cannot decode model");
        return CONF_FAIL;
    }
    conf_result res = CONF_FAIL;
    kt k;
    memset(&k, 0, sizeof k);
    evo_tensor ins[KT_MAX_IO], want[KT_MAX_IO];
    int n_ins = 0, n_want = 0;
    char *strs[KT_MAX_ATTRS] = {NULL};
    Onnx__GraphProto *g = m->graph;
    if (g->n_node != 1 || g->n_initializer != 0) {
        snprintf(why, cap, "not a single-node model");
        res = CONF_SKIP;
        goto done;
    }
    Onnx__NodeProto *np = g->node[0];
    int opset = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *dom = m->opset_import[i]->domain;
        if (dom == NULL || dom[0] == '\0' || strcmp(dom, "ai.onnx") == 0)
            opset = (int)m->opset_import[i]->version;
    }
    if (evo_op_find("", np->op_type) == NULL) {
        snprintf(why, cap, "op %s not registered", np->op_type);
        res = CONF_SKIP;
        goto done;
    }
    kt_begin(&k, np->op_type, opset);
    if (np->n_attribute > KT_MAX_ATTRS) {
        snprintf(why, cap, "too many attributes");
        goto done;
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        Onnx__AttributeProto *a = np->attribute[i];
        switch (a->type) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
            kt_int(&k, a->name, a->i);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
            kt_float(&k, a->name, a->f);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            strs[i] = calloc(1, a->s.len + 1);
            memcpy(strs[i], a->s.data, a->s.len);
            kt_str(&k, a->name, strs[i]);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            if (a->n_ints > 16)
                goto done;
            kt_ints(&k, a->name, a->ints, a->n_ints);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            if (a->n_floats > 16)
                goto done;
            kt_floats(&k, a->name, a->floats, a->n_floats);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
            evo_tensor t;
            if (!conf_tensor(a->t, &t)) {
                snprintf(why, cap, "tensor attribute %s not representable", a->name);
                res = CONF_SKIP;
                free(t.data);
                goto done;
            }
            kt_tensor_attr(&k, a->name, t);
            break;
        }
        default:
            snprintf(why, cap, "attribute %s of type %d", a->name, (int)a->type);
            res = CONF_SKIP;
            goto done;
        }
    }
    /* Graph inputs are input_K.pb in order; node inputs refer to them by name. */
    if (g->n_input > KT_MAX_IO || np->n_input > KT_MAX_IO || np->n_output > KT_MAX_IO) {
        snprintf(why, cap, "too many inputs/outputs");
        goto done;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%zu.pb", CONF_DIR, name, i);
        if (!conf_load_tensor(path, &ins[n_ins])) {
            snprintf(why, cap, "input %zu is not a plain tensor", i);
            res = CONF_SKIP;
            goto done;
        }
        n_ins++;
    }
    evo_tensor *in[KT_MAX_IO] = {NULL};
    for (size_t i = 0; i < np->n_input; i++) {
        for (size_t j = 0; j < g->n_input; j++)
            if (np->input[i][0] != '\0' && strcmp(np->input[i], g->input[j]->name) == 0)
                in[i] = &ins[j];
    }
    evo_status rv = kt_infer(&k, in, (int)np->n_input, (int)np->n_output);
    if (rv == EVO_ERR_UNSUPPORTED) {
        snprintf(why, cap, "unsupported: %s", k.err.msg);
        res = CONF_SKIP;
        goto done;
    }
    if (rv != EVO_OK) {
        snprintf(why, cap, "infer: %s: %s", evo_strerror(rv), k.err.msg);
        goto done;
    }
    if ((rv = kt_eval(&k)) != EVO_OK) {
        snprintf(why, cap, "eval: %s", evo_strerror(rv));
        kt_free(&k, NULL);
        goto done;
    }
    res = CONF_PASS;
    for (size_t i = 0; i < g->n_output && res == CONF_PASS; i++) {
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%zu.pb", CONF_DIR, name, i);
        if (!conf_load_tensor(path, &want[n_want])) {
            snprintf(why, cap, "output %zu not readable", i);
            res = CONF_SKIP;
            break;
        }
        n_want++;
        int idx = -1;
        for (size_t j = 0; j < np->n_output; j++)
            if (strcmp(np->output[j], g->output[i]->name) == 0)
                idx = (int)j;
        if (idx < 0 || !conf_close(k.out[idx], &want[n_want - 1], why, cap))
            res = CONF_FAIL;
    }
    kt_free(&k, NULL);
done:
    for (int i = 0; i < n_ins; i++)
        free(ins[i].data);
    for (int i = 0; i < n_want; i++)
        free(want[i].data);
    for (int i = 0; i < KT_MAX_ATTRS; i++)
        free(strs[i]);
    for (int i = 0; i < k.node.n_attrs; i++)
        if (k.attrs[i].type == EVO_ATTR_TENSOR)
            free(k.attrs[i].tensor.data);
    onnx__model_proto__free_unpacked(m, NULL);
    return res;
}

static int conf_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_onnx_node_conformance(void **state)
{
    (void)state;
    DIR *dir = opendir(CONF_DIR);
    if (dir == NULL)
        skip();
    char *names[2048];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < 2048) {
        if (strstr(e->d_name, "_expanded") != NULL)
            continue;
        for (size_t p = 0; p < sizeof conf_prefixes / sizeof conf_prefixes[0]; p++) {
            size_t pl = strlen(conf_prefixes[p]);
            if (strncmp(e->d_name, conf_prefixes[p], pl) == 0) {
                names[n++] = strdup(e->d_name);
                break;
            }
        }
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof names[0], conf_cmp);
    int pass = 0, skipped = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        char why[512] = "";
        memset(why, 0, sizeof why);
        conf_result r = conf_run_case(names[i], why, sizeof why);
        if (r == CONF_PASS)
            pass++;
        else if (r == CONF_SKIP)
            printf("SKIP %s: %s\n", names[i], why), skipped++;
        else
            printf("FAIL %s: %s\n", names[i], why), failed++;
        free(names[i]);
    }
    printf("kshape conformance: %d passed, %d skipped, %d failed\n", pass, skipped, failed);
    assert_true(pass > 0);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_node_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
