/*
 * .evm writer and loader: a round trip of examples/models/tiny_mlp (same
 * tables, same plan, bitwise-equal outputs through the executor, a rewrite
 * that gives the same bytes), names stripped, and one test per kind of
 * corruption the verifier must reject with a clear error (bad magic,
 * version, truncation, digest mismatch, offsets, indices, alignment, op ids,
 * params, string table, shapes that do not re-infer, scratch too small).
 *
 * Corruptions that are not about the digest rewrite the digest afterwards,
 * so the check under test is the one that fires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evo/evm.h"
#include "evo/modeldb.h"
#include "evo/transport.h"

#define MLP_PATH EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx"

static void test_sha(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES], void *user)
{
    (void)user;
    evo_sha256(data, len, out);
}

/* The compiled tiny_mlp and its blob, shared by the tests. */
typedef struct fixture {
    evo_graph *g;
    evo_program *prog;
    unsigned char *blob; /* malloc'd by the writer */
    size_t len;
} fixture;

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    evo_error err = {0};
    if (f == NULL || evo_model_import(MLP_PATH, NULL, &f->g, &err) != EVO_OK ||
        evo_program_build(f->g, NULL, &f->prog, &err) != EVO_OK ||
        evo_evm_write(f->prog, NULL, test_sha, NULL, (void **)&f->blob, &f->len, &err) != EVO_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    free(f->blob);
    evo_program_free(f->prog);
    evo_graph_free(f->g);
    free(f);
    return 0;
}

/* A loaded model: an aligned copy of the bytes, the work buffer, the program. */
typedef struct loaded {
    unsigned char *buf;
    void *work;
    evo_program prog;
    evo_evm_info info;
} loaded;

static unsigned char *aligned_copy(const void *src, size_t len)
{
    size_t cap = (len + 63) / 64 * 64 + 64;
    unsigned char *b = aligned_alloc(64, cap);
    assert_non_null(b);
    memset(b, 0, cap);
    if (len)
        memcpy(b, src, len);
    return b;
}

/* Load len bytes of src; returns the status, err has the message. */
static evo_status try_load(const void *src, size_t len, uint32_t flags, loaded *l, evo_error *err)
{
    memset(l, 0, sizeof *l);
    l->buf = aligned_copy(src, len);
    evo_status st = evo_evm_read_header(l->buf, len, &l->info, err);
    size_t work = st == EVO_OK ? evo_evm_work_size(&l->info) : 64;
    assert_true(work != SIZE_MAX);
    l->work = malloc(work ? work : 1);
    assert_non_null(l->work);
    evo_evm_load_options o = {.flags = flags, .sha256 = test_sha};
    evo_status st2 = evo_evm_load(l->buf, len, &o, l->work, work, &l->prog, err);
    if (st == EVO_OK)
        return st2;
    assert_int_equal(st2, st); /* the loader reads the header the same way */
    return st;
}

static void loaded_free(loaded *l)
{
    free(l->buf);
    free(l->work);
}

/* Copy of the fixture's blob for corrupting, with its header decoded. */
static unsigned char *mutable_copy(const fixture *f, evo_evm_info *info)
{
    unsigned char *b = malloc(f->len);
    assert_non_null(b);
    memcpy(b, f->blob, f->len);
    evo_error err = {0};
    assert_int_equal(evo_evm_read_header(b, f->len, info, &err), EVO_OK);
    return b;
}

static void redigest(unsigned char *b, size_t len)
{
    test_sha(b + EVO_EVM_DIGEST_FROM, len - EVO_EVM_DIGEST_FROM, b + 8, NULL);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Load a corrupted copy, expect `code` and a message containing `needle`. */
static void expect_reject(unsigned char *b, size_t len, evo_status code, const char *needle)
{
    loaded l;
    evo_error err = {0};
    evo_status st = try_load(b, len, 0, &l, &err);
    if (st != code || strstr(err.msg, needle) == NULL)
        fail_msg("expected status %d with '%s', got %d: %s", (int)code, needle, (int)st, err.msg);
    loaded_free(&l);
}

static unsigned char *tensor_rec(unsigned char *b, const evo_evm_info *in, int32_t t)
{
    return b + in->tensors_off + (uint64_t)t * EVO_EVM_TENSOR_BYTES;
}

static unsigned char *node_rec(unsigned char *b, const evo_evm_info *in, int32_t k)
{
    return b + in->nodes_off + (uint64_t)k * EVO_EVM_NODE_BYTES;
}

/* The program tensor index of the first constant / first node output. */
static int32_t first_const(const evo_program *p)
{
    for (int32_t t = 0; t < p->n_tensors; t++)
        if (p->tensors[t].flags & EVO_PT_CONST)
            return t;
    fail_msg("no constant tensor");
    return -1;
}

/* Run a program on a fixed input; copy output 0 into out (cap bytes). */
static size_t run_program(const evo_program *p, void *out, size_t cap)
{
    size_t bytes = evo_program_arena_size(p);
    void *arena = malloc(bytes);
    assert_non_null(arena);
    evo_exec x;
    assert_int_equal(evo_exec_init(&x, p, arena, bytes), EVO_OK);
    evo_tensor *in = evo_exec_input(&x, 0);
    assert_non_null(in);
    float *d = in->data;
    int64_t n = evo_shape_numel(&in->shape);
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)((i * 37) % 19) / 9.5f - 1.0f;
    assert_int_equal(evo_exec_run(&x, NULL), EVO_OK);
    const evo_tensor *o = evo_exec_output(&x, 0);
    size_t ob;
    assert_int_equal(evo_shape_nbytes(&o->shape, o->dtype, &ob), EVO_OK);
    assert_true(ob <= cap);
    memcpy(out, o->data, ob);
    free(arena);
    return ob;
}

/* ---------------------------------------------------------------- round trip */

static void test_roundtrip(void **state)
{
    fixture *f = *state;
    const evo_program *a = f->prog;
    loaded l;
    evo_error err = {0};
    assert_int_equal(try_load(f->blob, f->len, 0, &l, &err), EVO_OK);
    const evo_program *b = &l.prog;
    assert_int_equal(b->n_tensors, a->n_tensors);
    assert_int_equal(b->n_nodes, a->n_nodes);
    assert_int_equal(b->n_inputs, a->n_inputs);
    assert_int_equal(b->n_outputs, a->n_outputs);
    assert_true(b->activation_bytes == a->activation_bytes);
    assert_true(b->activation_lower_bound == a->activation_lower_bound);
    assert_true(b->weights_bytes == a->weights_bytes);
    assert_true(evo_program_arena_size(b) == evo_program_arena_size(a));
    for (int32_t t = 0; t < a->n_tensors; t++) {
        const evo_prog_tensor *x = &a->tensors[t], *y = &b->tensors[t];
        assert_string_equal(y->name, x->name);
        assert_int_equal(y->dtype, x->dtype);
        assert_true(evo_shape_equal(&y->shape, &x->shape));
        assert_int_equal(y->flags, x->flags);
        assert_true(y->nbytes == x->nbytes);
        if (x->flags & EVO_PT_CONST) {
            /* in place: inside the blob, aligned, same bytes */
            assert_true((const unsigned char *)y->const_data >= l.buf &&
                        (const unsigned char *)y->const_data + y->nbytes <= l.buf + f->len);
            assert_int_equal((uintptr_t)y->const_data % EVO_EVM_CONST_ALIGN, 0);
            assert_memory_equal(y->const_data, x->const_data, (size_t)x->nbytes);
        } else {
            assert_true(y->arena_offset == x->arena_offset);
        }
    }
    for (int32_t k = 0; k < a->n_nodes; k++) {
        const evo_prog_node *x = &a->nodes[k], *y = &b->nodes[k];
        assert_string_equal(y->name, x->name);
        assert_ptr_equal(y->op, x->op);
        assert_memory_equal(y->params, x->params, EVO_PARAMS_MAX);
        assert_int_equal(y->n_in, x->n_in);
        assert_int_equal(y->n_out, x->n_out);
        assert_memory_equal(y->in, x->in, (size_t)x->n_in * sizeof(int32_t));
        assert_memory_equal(y->out, x->out, (size_t)x->n_out * sizeof(int32_t));
        assert_true(y->scratch_bytes == x->scratch_bytes);
        if (x->scratch_bytes)
            assert_true(y->scratch_offset == x->scratch_offset);
    }
    assert_memory_equal(b->inputs, a->inputs, (size_t)a->n_inputs * sizeof(int32_t));
    assert_memory_equal(b->outputs, a->outputs, (size_t)a->n_outputs * sizeof(int32_t));

    /* the same kernels on the same plan: bitwise-equal outputs */
    float oa[64], ob[64];
    size_t na = run_program(a, oa, sizeof oa), nb = run_program(b, ob, sizeof ob);
    assert_int_equal(na, nb);
    assert_memory_equal(oa, ob, na);
    /* softmax output: a probability vector, so the run really computed */
    float sum = 0;
    for (size_t i = 0; i < na / sizeof(float); i++)
        sum += oa[i];
    assert_float_equal(sum, 1.0f, 1e-5);

    /* writing the loaded program again gives the same bytes */
    void *again = NULL;
    size_t again_len = 0;
    assert_int_equal(evo_evm_write(b, NULL, test_sha, NULL, &again, &again_len, &err), EVO_OK);
    assert_int_equal(again_len, f->len);
    assert_memory_equal(again, f->blob, f->len);
    free(again);

    /* the header's facts */
    assert_memory_equal(f->blob, "EVOM", 4);
    assert_int_equal(l.info.version, EVO_EVM_VERSION);
    assert_int_equal(l.info.flags, EVO_EVM_F_NAMES);
    assert_int_equal(l.info.consts_off % EVO_EVM_CONST_ALIGN, 0);
    assert_string_equal(evo_evm_op_name(l.buf, &l.info, a->nodes[0].op->id), "Gemm");
    loaded_free(&l);
}

static void test_strip_names(void **state)
{
    fixture *f = *state;
    evo_evm_write_options o = {.strip_names = true};
    void *blob = NULL;
    size_t len = 0;
    evo_error err = {0};
    assert_int_equal(evo_evm_write(f->prog, &o, test_sha, NULL, &blob, &len, &err), EVO_OK);
    assert_true(len < f->len);
    loaded l;
    assert_int_equal(try_load(blob, len, 0, &l, &err), EVO_OK);
    assert_int_equal(l.info.flags, 0);
    assert_int_equal(l.info.string_bytes, 0);
    for (int32_t t = 0; t < l.prog.n_tensors; t++)
        assert_string_equal(l.prog.tensors[t].name, "");
    for (int32_t k = 0; k < l.prog.n_nodes; k++)
        assert_string_equal(l.prog.nodes[k].name, "");
    assert_string_equal(evo_evm_op_name(l.buf, &l.info, f->prog->nodes[0].op->id), "");
    float oa[64], ob[64];
    size_t na = run_program(f->prog, oa, sizeof oa), nb = run_program(&l.prog, ob, sizeof ob);
    assert_int_equal(na, nb);
    assert_memory_equal(oa, ob, na);
    loaded_free(&l);
    free(blob);
}

/* ---------------------------------------------------------------- header corruption */

static void test_bad_magic(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    b[0] = 'X';
    expect_reject(b, f->len, EVO_ERR_PARSE, "magic");
    expect_reject(b, 3, EVO_ERR_PARSE, "magic");
    free(b);
}

static void test_bad_version(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    put32(b + 4, 2);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "version 2");
    put32(b + 4, 0);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "version 0");
    free(b);
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    /* every proper prefix is rejected, none crashes */
    for (size_t len = 0; len < f->len; len++) {
        loaded l;
        evo_error err = {0};
        assert_int_not_equal(try_load(f->blob, len, 0, &l, &err), EVO_OK);
        loaded_free(&l);
    }
    expect_reject(f->blob, f->len - 1, EVO_ERR_PARSE, "truncated");
    expect_reject(f->blob, 100, EVO_ERR_PARSE, "truncated");
    /* and a longer buffer is not this file either */
    unsigned char *b = malloc(f->len + 8);
    memcpy(b, f->blob, f->len);
    memset(b + f->len, 0, 8);
    expect_reject(b, f->len + 8, EVO_ERR_PARSE, "trailing bytes");
    free(b);
}

static void test_header_fields(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    /* unknown flags */
    put32(b + 44, 0x80);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "flags");
    free(b);
    /* a constant alignment that is not a power of two */
    b = mutable_copy(f, &in);
    put32(b + 112, 48);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "alignment");
    free(b);
    /* a huge count */
    b = mutable_copy(f, &in);
    put32(b + 80, 0xFFFFFFF0u);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_LIMIT, "limit");
    free(b);
    /* one more tensor than the sections hold */
    b = mutable_copy(f, &in);
    put32(b + 80, in.n_tensors + 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "sections end");
    free(b);
    /* a lower bound above the plan */
    b = mutable_copy(f, &in);
    put64(b + 64, in.activation_bytes + 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "lower bound");
    free(b);
    /* weights that disagree with the constant tensors */
    b = mutable_copy(f, &in);
    put64(b + 72, in.weights_bytes - 4);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "header says");
    free(b);
}

static void test_digest(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    b[in.consts_off + 5] ^= 0x40; /* one weight bit */
    expect_reject(b, f->len, EVO_ERR_PARSE, "digest mismatch");
    /* a device that skips the digest loads it: weights are opaque data */
    loaded l;
    evo_error err = {0};
    assert_int_equal(try_load(b, f->len, EVO_EVM_SKIP_DIGEST, &l, &err), EVO_OK);
    loaded_free(&l);
    /* the digest itself altered */
    memcpy(b, f->blob, f->len);
    b[8] ^= 1;
    expect_reject(b, f->len, EVO_ERR_PARSE, "digest mismatch");
    free(b);
    /* no hash function and no skip flag: a caller error */
    unsigned char *buf = aligned_copy(f->blob, f->len);
    evo_evm_info info;
    assert_int_equal(evo_evm_read_header(buf, f->len, &info, &err), EVO_OK);
    size_t ws = evo_evm_work_size(&info);
    void *work = malloc(ws);
    evo_program p;
    assert_int_equal(evo_evm_load(buf, f->len, NULL, work, ws, &p, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "SHA-256"));
    free(work);
    free(buf);
}

static void test_buffers(void **state)
{
    fixture *f = *state;
    evo_error err = {0};
    unsigned char *buf = aligned_copy(f->blob, f->len); /* with 64 bytes to spare */
    memmove(buf + 8, buf, f->len);
    evo_evm_info info;
    assert_int_equal(evo_evm_read_header(buf + 8, f->len, &info, &err), EVO_OK);
    size_t ws = evo_evm_work_size(&info);
    assert_true(ws > 0 && ws < 16384);
    void *work = malloc(ws + 8);
    evo_program p;
    evo_evm_load_options o = {.sha256 = test_sha};
    /* a blob that is not 16-byte aligned */
    assert_int_equal(evo_evm_load(buf + 8, f->len, &o, work, ws, &p, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "aligned"));
    memmove(buf, buf + 8, f->len);
    /* a work buffer one byte short, or misaligned */
    assert_int_equal(evo_evm_load(buf, f->len, &o, work, ws - 1, &p, &err), EVO_ERR_NOMEM);
    assert_int_equal(evo_evm_load(buf, f->len, &o, (char *)work + 4, ws, &p, &err), EVO_ERR_NOMEM);
    assert_int_equal(evo_evm_load(buf, f->len, &o, work, ws, &p, &err), EVO_OK);
    free(work);
    free(buf);
}

/* ---------------------------------------------------------------- tensor records */

static void test_tensor_offsets(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    int32_t act = p->outputs[0], cst = first_const(p);
    evo_evm_info in;
    unsigned char *b;

    /* an activation past the end of the arena */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, act) + 40, in.activation_bytes);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "outside the");
    free(b);
    /* an activation offset that overflows when its size is added */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, act) + 40, UINT64_MAX - 63);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "outside the");
    free(b);
    /* a misaligned activation */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, act) + 40, 8);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "misaligned");
    free(b);
    /* a constant past the constant section */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, cst) + 40, in.const_bytes);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "constant section");
    free(b);
    /* a misaligned constant */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, cst) + 40, 4);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "misaligned");
    free(b);
}

static void test_tensor_shapes(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    int32_t out = p->outputs[0];
    evo_evm_info in;
    unsigned char *b;

    /* nbytes that is not the shape's size */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, out) + 48, p->tensors[out].nbytes + 4);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "not its size");
    free(b);
    /* rank beyond EVO_MAX_RANK, a dim past the rank, an unknown dtype */
    b = mutable_copy(f, &in);
    tensor_rec(b, &in, out)[5] = 9;
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "rank 9");
    free(b);
    b = mutable_copy(f, &in);
    put32(tensor_rec(b, &in, out) + 8 + 4 * 7, 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "bad dimension");
    free(b);
    b = mutable_copy(f, &in);
    tensor_rec(b, &in, out)[4] = 200;
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "element type 200");
    free(b);
    /* a consistent but wrong shape: [1,10] stored as [2,5] (same size, so
     * Softmax's in-place plan still holds). Only re-inference can tell. */
    b = mutable_copy(f, &in);
    assert_int_equal(p->tensors[out].shape.rank, 2);
    assert_int_equal(p->tensors[out].shape.dims[1], 10);
    put32(tensor_rec(b, &in, out) + 8, 2);
    put32(tensor_rec(b, &in, out) + 12, 5);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "by inference");
    free(b);
    /* a graph input flagged as a constant too */
    b = mutable_copy(f, &in);
    put16(tensor_rec(b, &in, p->inputs[0]) + 6, EVO_PT_CONST | EVO_PT_INPUT);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "both a constant and a graph input");
    free(b);
}

/* ---------------------------------------------------------------- node records */

static void test_node_indices(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    evo_evm_info in;
    unsigned char *b;

    /* an input index past the tensor table */
    b = mutable_copy(f, &in);
    uint32_t first = get32(node_rec(b, &in, 0) + 12);
    put32(b + in.indices_off + 4 * first, 999);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "refers to tensor 999");
    free(b);
    /* an index list that runs past the pool */
    b = mutable_copy(f, &in);
    put32(node_rec(b, &in, 0) + 12, in.n_indices - 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "index pool");
    free(b);
    /* node 0 writes a constant (its output index redirected to a weight) */
    b = mutable_copy(f, &in);
    uint16_t n_in = get16(node_rec(b, &in, 0) + 16);
    put32(b + in.indices_off + 4 * (first + n_in), (uint32_t)first_const(p));
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "which is a constant");
    free(b);
    /* node 0 reads node 1's output before node 1 ran */
    b = mutable_copy(f, &in);
    put32(b + in.indices_off + 4 * first, (uint32_t)p->nodes[1].out[0]);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "before any node writes it");
    free(b);
    /* a required output marked absent (-1): refused before the op's infer
     * could dereference it */
    b = mutable_copy(f, &in);
    put32(b + in.indices_off + 4 * (first + n_in), UINT32_MAX);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_GRAPH, "required output 0 is missing");
    free(b);
    /* a required input marked absent */
    b = mutable_copy(f, &in);
    put32(b + in.indices_off + 4 * first, UINT32_MAX);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_GRAPH, "required input 0 is missing");
    free(b);
    /* an arity the op does not accept */
    b = mutable_copy(f, &in);
    put16(node_rec(b, &in, 0) + 16, 7);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "does not accept");
    free(b);
    /* a graph output index out of range */
    b = mutable_copy(f, &in);
    put32(b + in.indices_off + 4 * in.n_inputs, (uint32_t)p->n_tensors);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "graph output 0");
    free(b);
}

static void test_bad_op_id(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    /* the op table names Gemm under an id this build lacks */
    unsigned char *op = b + in.ops_off;
    assert_int_equal(get16(op), f->prog->nodes[0].op->id);
    put16(op, 999);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "op id 999 ('Gemm')");
    free(b);
    /* a node whose op id the table does not list */
    b = mutable_copy(f, &in);
    put16(node_rec(b, &in, 0), 998);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "op id 998");
    free(b);
    /* names stripped: the error still gives the id */
    evo_evm_write_options o = {.strip_names = true};
    void *s = NULL;
    size_t len = 0;
    evo_error err = {0};
    assert_int_equal(evo_evm_write(f->prog, &o, test_sha, NULL, &s, &len, &err), EVO_OK);
    evo_evm_info sin;
    assert_int_equal(evo_evm_read_header(s, len, &sin, &err), EVO_OK);
    put16((unsigned char *)s + sin.ops_off, 999);
    redigest(s, len);
    expect_reject(s, len, EVO_ERR_UNSUPPORTED, "op id 999, which this build");
    free(s);
    /* an id that exists but under another name */
    b = mutable_copy(f, &in);
    put16(b + in.ops_off, 5); /* Relu's id, the table says Gemm */
    put16(node_rec(b, &in, 0), 5);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_UNSUPPORTED, "'Gemm' in the model but 'Relu'");
    free(b);
}

static void test_op_table_order(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    assert_true(in.n_ops >= 2);
    unsigned char tmp[EVO_EVM_OP_BYTES];
    memcpy(tmp, b + in.ops_off, sizeof tmp); /* swap entries 0 and 1 */
    memcpy(b + in.ops_off, b + in.ops_off + EVO_EVM_OP_BYTES, sizeof tmp);
    memcpy(b + in.ops_off + EVO_EVM_OP_BYTES, tmp, sizeof tmp);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "out of order or repeated");
    free(b);
}

static void test_bindings(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    evo_evm_info in;
    unsigned char *b;
    assert_int_equal(p->n_inputs, 1);
    assert_int_equal(p->n_outputs, 1);
    /* the output binding points at the input */
    b = mutable_copy(f, &in);
    put32(b + in.indices_off + 4, (uint32_t)p->inputs[0]);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "not flagged as one");
    free(b);
    /* a tensor flagged as an output that is not listed */
    b = mutable_copy(f, &in);
    int32_t other = p->nodes[0].out[0];
    put16(tensor_rec(b, &in, other) + 6, EVO_PT_OUTPUT);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "flagged as graph inputs");
    free(b);
    /* an output listed twice (two outputs, both the same tensor) */
    b = mutable_copy(f, &in);
    put32(b + 96, 2); /* n_outputs */
    put32(b + in.indices_off + 4 * 1, (uint32_t)p->outputs[0]);
    put32(b + in.indices_off + 4 * 2, (uint32_t)p->outputs[0]);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "listed twice");
    free(b);
}

static void test_overlap(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    const evo_prog_node *g = &p->nodes[0], *relu = &p->nodes[1];
    assert_string_equal(g->op->name, "Gemm");
    assert_string_equal(relu->op->name, "Relu");
    /* the plan runs Relu in place: accepted (the round trip loads it) */
    assert_true(p->tensors[relu->in[0]].arena_offset == p->tensors[relu->out[0]].arena_offset);
    uint64_t x_off = p->tensors[g->in[0]].arena_offset;
    evo_evm_info in;
    unsigned char *b;
    /* Gemm's scratch moved so that it runs into its input or output */
    b = mutable_copy(f, &in);
    assert_true(g->scratch_offset != 64 && 64 + g->scratch_bytes <= p->activation_bytes);
    put64(node_rec(b, &in, 0) + 24, 64);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "overlap");
    free(b);
    /* Gemm's output on its input (Gemm is not in-place) */
    b = mutable_copy(f, &in);
    put64(tensor_rec(b, &in, g->out[0]) + 40, x_off);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "overlap");
    free(b);
    /* Relu's output half-way into its input: not the exact in-place alias */
    b = mutable_copy(f, &in);
    assert_true(p->tensors[relu->in[0]].nbytes >= 128);
    uint64_t r_off = p->tensors[relu->in[0]].arena_offset;
    put64(tensor_rec(b, &in, relu->out[0]) + 40, r_off >= 64 ? r_off - 64 : r_off + 64);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "overlap");
    free(b);
}

static void test_params(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b;
    /* longer than EVO_PARAMS_MAX */
    b = mutable_copy(f, &in);
    put16(node_rec(b, &in, 0) + 2, EVO_PARAMS_MAX + 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "more than 256");
    free(b);
    /* shorter than the data in its slot */
    b = mutable_copy(f, &in);
    assert_true(get16(node_rec(b, &in, 0) + 2) > 0);
    put16(node_rec(b, &in, 0) + 2, 0);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "past its stated length");
    free(b);
    /* a slot index past the params section */
    b = mutable_copy(f, &in);
    put32(node_rec(b, &in, 0) + 8, in.n_params);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "params slot");
    free(b);
    /* params that infer rejects: Gemm with transB flipped no longer fits */
    b = mutable_copy(f, &in);
    unsigned char *slot = b + in.params_off + (uint64_t)get32(node_rec(b, &in, 0) + 8) * 256;
    slot[12] ^= 1; /* evo_gemm_params: alpha, beta, trans_a, trans_b */
    put16(node_rec(b, &in, 0) + 2, 256);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_SHAPE, "does not infer");
    free(b);
}

static void test_scratch(void **state)
{
    fixture *f = *state;
    const evo_program *p = f->prog;
    int32_t k = 0;
    while (k < p->n_nodes && p->nodes[k].scratch_bytes == 0)
        k++;
    assert_true(k < p->n_nodes); /* Gemm packs into scratch */
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    put64(node_rec(b, &in, k) + 32, p->nodes[k].scratch_bytes - 1);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "scratch bytes");
    free(b);
    b = mutable_copy(f, &in);
    put64(node_rec(b, &in, k) + 24, in.activation_bytes);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "scratch at");
    free(b);
}

/* ---------------------------------------------------------------- strings */

static void test_strings(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b;
    b = mutable_copy(f, &in);
    assert_true(in.string_bytes > 0);
    b[in.strings_off + in.string_bytes - 1] = 'x';
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "NUL");
    free(b);
    b = mutable_copy(f, &in);
    put32(tensor_rec(b, &in, 0), in.string_bytes);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "string table");
    free(b);
    /* a string table whose flag is off */
    b = mutable_copy(f, &in);
    put32(b + 44, 0);
    redigest(b, f->len);
    expect_reject(b, f->len, EVO_ERR_PARSE, "names flag");
    free(b);
}

/* Single-byte flips all over the header and tables (digest rewritten) must
 * load or be rejected; never crash. Loaded ones must still run. */
static void test_flip_every_table_byte(void **state)
{
    fixture *f = *state;
    evo_evm_info in;
    unsigned char *b = mutable_copy(f, &in);
    size_t end = (size_t)in.consts_off;
    int loaded_ok = 0;
    for (size_t i = EVO_EVM_DIGEST_FROM; i < end; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(b, f->blob, f->len);
            b[i] ^= (unsigned char)(1u << bit);
            redigest(b, f->len);
            loaded l;
            evo_error err = {0};
            if (try_load(b, f->len, 0, &l, &err) == EVO_OK) {
                loaded_ok++;
                size_t bytes = evo_program_arena_size(&l.prog);
                if (bytes > ((size_t)64 << 20)) { /* a flipped high bit of the plan's size */
                    loaded_free(&l);
                    continue;
                }
                void *arena = calloc(1, bytes);
                assert_non_null(arena);
                evo_exec x;
                if (evo_exec_init(&x, &l.prog, arena, bytes) != EVO_OK)
                    fail_msg("byte %zu bit %d: loads but the executor refuses it", i, bit);
                (void)evo_exec_run(&x, NULL);
                free(arena);
            } else {
                assert_true(err.msg[0] != '\0');
            }
            loaded_free(&l);
        }
    }
    /* names and padding bits change nothing the verifier cares about */
    assert_true(loaded_ok > 0);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_strip_names),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_tensor_offsets),
        cmocka_unit_test(test_tensor_shapes),
        cmocka_unit_test(test_node_indices),
        cmocka_unit_test(test_bad_op_id),
        cmocka_unit_test(test_op_table_order),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_scratch),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_flip_every_table_byte),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
