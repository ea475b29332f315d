/*
 * libFuzzer target for the .evm loader/verifier (core/evm_load.c): arbitrary
 * bytes as a compact model. Errors are fine; a crash, a leak or a sanitizer
 * report is a bug. The digest is skipped so that mutations reach the record
 * checks (a mutated file would almost never pass it).
 *
 * What loads must keep the loader's promise: the executor accepts it, and
 * running it touches only the arena and the blob (ASan watches); writing it
 * again gives a file that loads again. Runs are bounded (arena and FLOPs)
 * so a hostile plan cannot stall the fuzzer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evo/evm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_WORK (64u << 20)
#define FUZZ_MAX_ARENA (16u << 20)
#define FUZZ_MAX_FLOPS 20000000ull

static void fuzz_no_hash(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES],
                         void *user)
{
    (void)data;
    (void)len;
    (void)user;
    memset(out, 0, EVO_EVM_DIGEST_BYTES);
}

/* Total FLOPs by the ops' cost functions (1 per output element without one). */
static uint64_t fuzz_flops(const evo_program *p)
{
    evo_tensor *views = calloc((size_t)p->n_tensors + 1, sizeof *views);
    evo_tensor **ptrs = calloc(2 * 65536 + 1, sizeof *ptrs);
    uint64_t total = 0;
    if (views == NULL || ptrs == NULL) {
        total = UINT64_MAX;
        goto done;
    }
    for (int32_t t = 0; t < p->n_tensors; t++)
        views[t] = (evo_tensor){p->tensors[t].dtype, p->tensors[t].shape,
                                (void *)(uintptr_t)p->tensors[t].const_data};
    for (int32_t k = 0; k < p->n_nodes && total <= FUZZ_MAX_FLOPS; k++) {
        const evo_prog_node *n = &p->nodes[k];
        uint64_t elems = 0;
        for (int32_t i = 0; i < n->n_in + n->n_out; i++) {
            int32_t t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
            ptrs[i] = t < 0 ? NULL : &views[t];
            if (t >= 0)
                elems += (uint64_t)evo_shape_numel(&views[t].shape);
        }
        uint64_t f = elems;
        if (n->op->cost != NULL) {
            evo_kctx c = {.params = n->params,
                          .in = ptrs,
                          .n_in = n->n_in,
                          .out = ptrs + n->n_in,
                          .n_out = n->n_out};
            evo_op_cost oc = {0, 0, 0, 0};
            n->op->cost(&c, &oc);
            f = oc.flops > elems ? oc.flops : elems;
        }
        total += f;
    }
done:
    free(views);
    free(ptrs);
    return total;
}

static void fuzz_run(const evo_program *p)
{
    size_t bytes = evo_program_arena_size(p);
    if (bytes == 0 || bytes > FUZZ_MAX_ARENA || fuzz_flops(p) > FUZZ_MAX_FLOPS)
        return;
    void *arena = calloc(1, bytes);
    if (arena == NULL)
        return;
    evo_exec x;
    if (evo_exec_init(&x, p, arena, bytes) != EVO_OK)
        __builtin_trap(); /* the loader accepted what the executor refuses */
    (void)evo_exec_run(&x, NULL);
    free(arena);
}

/* Load `len` bytes copied to a 64-aligned buffer; on success *work and *buf
 * hold the program's storage (free both). */
static evo_status fuzz_load(const void *data, size_t len, unsigned char **buf, void **work,
                            evo_program *p, evo_error *err)
{
    *buf = aligned_alloc(64, (len + 63) / 64 * 64 + 64);
    *work = NULL;
    if (*buf == NULL)
        return EVO_ERR_NOMEM;
    memcpy(*buf, data, len);
    evo_evm_info info;
    evo_status st = evo_evm_read_header(*buf, len, &info, err);
    if (st != EVO_OK)
        return st;
    size_t ws = evo_evm_work_size(&info);
    if (ws > FUZZ_MAX_WORK || (*work = malloc(ws ? ws : 1)) == NULL)
        return EVO_ERR_NOMEM;
    evo_evm_load_options o = {.flags = EVO_EVM_SKIP_DIGEST};
    st = evo_evm_load(*buf, len, &o, *work, ws, p, err);
    if (st == EVO_OK) {
        /* the op names it may print must be strings inside the blob */
        for (int32_t k = 0; k < p->n_nodes; k++)
            (void)strlen(evo_evm_op_name(*buf, &info, p->nodes[k].op->id));
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = NULL;
    void *work = NULL;
    evo_program p;
    evo_error err = {0};
    evo_status st = fuzz_load(data, size, &buf, &work, &p, &err);
    if (st == EVO_OK) {
        fuzz_run(&p);
        /* write(load(x)) loads again */
        void *again = NULL;
        size_t again_len = 0;
        if (evo_evm_write(&p, NULL, fuzz_no_hash, NULL, &again, &again_len, &err) != EVO_OK)
            __builtin_trap();
        unsigned char *buf2 = NULL;
        void *work2 = NULL;
        evo_program p2;
        if (fuzz_load(again, again_len, &buf2, &work2, &p2, &err) != EVO_OK)
            __builtin_trap();
        if (p2.n_nodes != p.n_nodes || p2.n_tensors != p.n_tensors)
            __builtin_trap();
        free(buf2);
        free(work2);
        free(again);
    } else if (st != EVO_ERR_NOMEM && err.msg[0] == '\0') {
        __builtin_trap(); /* every rejection says why */
    }
    free(buf);
    free(work);
    return 0;
}
