/*
 * libFuzzer target for the op contract that makes a loaded .evm safe to run:
 * "infer validates everything (params included); eval trusts infer".
 *
 * In a compiled model, params come from each op's parse. In a .evm file they
 * are file bytes, so every op's infer must refuse params that parse would
 * never produce (a zero stride, an axis count past its array, an unknown
 * mode). Mutating whole .evm files (evm_verify_fuzz) reaches the params of
 * only a few ops; this target aims straight at the contract: it picks any
 * registered op, builds input tensors (some constant, as shape inputs are),
 * and fills the params slot from the fuzz input. If infer accepts, eval runs
 * on exactly those shapes with separate, exactly sized buffers, so ASan
 * reports any read or write that infer did not account for. Eval may still
 * refuse data values (an index out of range) with an error.
 *
 * Input layout (short inputs are padded with zeros):
 *   u16 op index, u8 input count, u8 output count,
 *   per input: u8 flags (bit0 absent, bit1 constant), u8 dtype, u8 rank,
 *              rank x u8 dims (0xF0 and up: 36),
 *   (after the params) u8 mask of absent outputs,
 *   EVO_PARAMS_MAX bytes of params, then data for constant inputs and for
 *   the runtime inputs (cycled).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/op.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KF_MAX_IO 8
#define KF_MAX_RANK 5
#define KF_MAX_DIM 7
#define KF_MAX_OUT_ELEMS (1 << 16)
#define KF_MAX_SCRATCH (8u << 20)
#define KF_MAX_FLOPS 5000000ull

/* The dtypes evo's kernels hold (others must be refused by infer). */
static const evo_dtype kf_dtypes[] = {EVO_DT_FLOAT32, EVO_DT_INT64,    EVO_DT_INT32,
                                      EVO_DT_INT8,    EVO_DT_UINT8,    EVO_DT_BOOL,
                                      EVO_DT_FLOAT16, EVO_DT_UNDEFINED};

typedef struct {
    const uint8_t *p;
    size_t n, at;
} kf_reader;

static uint8_t kf_byte(kf_reader *r)
{
    return r->at < r->n ? r->p[r->at++] : 0;
}

/* Fill `len` bytes from the rest of the input, cycling; zeros when empty.
 * Bool tensors get 0/1 so that they hold valid _Bool values. */
static void kf_fill(kf_reader *r, unsigned char *dst, size_t len, evo_dtype dt)
{
    size_t rest = r->at < r->n ? r->n - r->at : 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = rest ? r->p[r->at + i % rest] : 0;
        dst[i] = dt == EVO_DT_BOOL ? (unsigned char)(b & 1u) : b;
    }
    if (rest)
        r->at += len < rest ? len : rest;
}

static int32_t kf_clamp_count(uint8_t want, int32_t lo, int32_t hi)
{
    if (hi < 0)
        hi = lo + 4 > KF_MAX_IO ? KF_MAX_IO : lo + 4;
    if (hi > KF_MAX_IO)
        hi = KF_MAX_IO;
    if (hi < lo)
        return -1;
    return lo + (int32_t)(want % (uint32_t)(hi - lo + 1));
}

static size_t kf_bytes(const evo_tensor *t)
{
    size_t n = 0;
    if (evo_shape_nbytes(&t->shape, t->dtype, &n) != EVO_OK)
        return 0;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kf_reader r = {data, size, 0};
    size_t count = evo_op_count();
    if (count == 0)
        return 0;
    uint16_t pick = (uint16_t)(kf_byte(&r) | kf_byte(&r) << 8);
    const evo_op_def *op = evo_op_at(pick % count);
    if (op == NULL || op->infer == NULL || op->eval == NULL)
        return 0;
    int32_t n_in = kf_clamp_count(kf_byte(&r), op->min_inputs, op->max_inputs);
    int32_t n_out = kf_clamp_count(kf_byte(&r), op->min_outputs, op->max_outputs);
    if (n_in < 0 || n_out < 0)
        return 0;
    if (getenv("KF_TRACE") != NULL) /* which op an artifact exercises */
        fprintf(stderr, "op %s, %d inputs, %d outputs\n", op->name, (int)n_in, (int)n_out);

    evo_tensor ins[KF_MAX_IO], outs[KF_MAX_IO];
    evo_tensor *in_ptrs[KF_MAX_IO], *out_ptrs[KF_MAX_IO];
    unsigned char *in_buf[KF_MAX_IO] = {0}, *out_buf[KF_MAX_IO] = {0};
    bool is_const[KF_MAX_IO] = {0};
    memset(ins, 0, sizeof ins);
    memset(outs, 0, sizeof outs);
    for (int32_t i = 0; i < n_in; i++) {
        uint8_t flags = kf_byte(&r);
        ins[i].dtype = kf_dtypes[kf_byte(&r) % (sizeof kf_dtypes / sizeof kf_dtypes[0])];
        ins[i].shape.rank = kf_byte(&r) % (KF_MAX_RANK + 1);
        for (int32_t d = 0; d < ins[i].shape.rank; d++) {
            /* A byte from 0xF0 up is 36: a Conv W in the Winograd layout is
             * [36, C, M], so the layout's checks and kernels are reachable. */
            const uint8_t b = kf_byte(&r);
            ins[i].shape.dims[d] = b >= 0xF0 ? 36 : b % (KF_MAX_DIM + 1);
        }
        /* Any input may be absent; evo_op_check_arity refuses missing
         * required ones, as every caller of infer does. */
        in_ptrs[i] = (flags & 1u) ? NULL : &ins[i];
        is_const[i] = (flags & 2u) != 0;
    }
    _Alignas(8) unsigned char params[EVO_PARAMS_MAX];
    for (size_t i = 0; i < sizeof params; i++)
        params[i] = kf_byte(&r);
    uint8_t absent_outs = kf_byte(&r);

    int rc = 0;
    /* Constant inputs carry data during infer (shape inputs are read there). */
    for (int32_t i = 0; i < n_in; i++) {
        if (in_ptrs[i] == NULL)
            continue;
        size_t nb = kf_bytes(&ins[i]);
        in_buf[i] = malloc(nb ? nb : 1);
        if (in_buf[i] == NULL)
            goto done;
        kf_fill(&r, in_buf[i], nb, ins[i].dtype);
        if (is_const[i])
            ins[i].data = in_buf[i];
    }
    for (int32_t o = 0; o < n_out; o++)
        out_ptrs[o] = (absent_outs >> o) & 1u ? NULL : &outs[o];

    evo_error err = {0};
    evo_kctx c = {.params = params,
                  .in = in_ptrs,
                  .n_in = n_in,
                  .out = out_ptrs,
                  .n_out = n_out,
                  .err = &err};
    if (evo_op_check_arity(op, &c) != EVO_OK)
        goto done;
    if (op->infer(&c) != EVO_OK) {
        if (err.msg[0] == '\0') {
            fprintf(stderr, "%s: infer refused without a message\n", op->name);
            __builtin_trap();
        }
        goto done;
    }
    /* Keep runs small: bounded output and work. */
    for (int32_t o = 0; o < n_out; o++) {
        if (out_ptrs[o] == NULL)
            continue;
        int64_t ne = evo_shape_numel(&outs[o].shape);
        if (ne < 0 || !evo_dtype_is_supported(outs[o].dtype)) {
            fprintf(stderr, "%s: infer accepted but output %d is invalid\n", op->name, (int)o);
            __builtin_trap();
        }
        if (ne > KF_MAX_OUT_ELEMS)
            goto done;
    }
    if (op->cost != NULL) {
        evo_op_cost oc = {0, 0, 0, 0};
        op->cost(&c, &oc);
        if (oc.flops > KF_MAX_FLOPS)
            goto done;
    }
    size_t scratch = op->scratch != NULL ? op->scratch(&c) : 0;
    if (getenv("KF_TRACE") != NULL) {
        for (int32_t i = 0; i < n_in + n_out; i++) {
            const evo_tensor *t = i < n_in ? in_ptrs[i] : out_ptrs[i - n_in];
            char buf[96] = "absent";
            if (t != NULL)
                evo_shape_format(&t->shape, buf, sizeof buf);
            fprintf(stderr, "  %s %d: %s %s\n", i < n_in ? "in" : "out",
                    (int)(i < n_in ? i : i - n_in), t ? evo_dtype_name(t->dtype) : "", buf);
        }
        fprintf(stderr, "  scratch %zu\n", scratch);
    }
    if (scratch > KF_MAX_SCRATCH)
        goto done;
    for (int32_t o = 0; o < n_out; o++) {
        if (out_ptrs[o] == NULL)
            continue;
        size_t nb = kf_bytes(&outs[o]);
        out_buf[o] = malloc(nb ? nb : 1);
        if (out_buf[o] == NULL)
            goto done;
        outs[o].data = out_buf[o];
    }
    for (int32_t i = 0; i < n_in; i++)
        if (in_ptrs[i] != NULL)
            ins[i].data = in_buf[i];
    void *scratch_buf = scratch ? aligned_alloc(16, (scratch + 15) / 16 * 16) : NULL;
    if (scratch && scratch_buf == NULL)
        goto done;
    c.scratch = scratch_buf;
    c.scratch_bytes = scratch;
    c.err = NULL;              /* as in the executor */
    (void)evo_op_eval(op, &c); /* as the executor runs it */
    free(scratch_buf);
done:
    for (int32_t i = 0; i < KF_MAX_IO; i++) {
        free(in_buf[i]);
        free(out_buf[i]);
    }
    return rc;
}
