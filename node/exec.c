/*
 * The executor: lays a program out in one caller-provided arena and runs its
 * nodes in order. Portable C11: no allocation, no I/O, no OS calls.
 *
 * Arena layout, from the first EVO_ARENA_ALIGN-aligned address in the
 * caller's buffer:
 *   [evo_tensor view per program tensor]
 *   [evo_tensor* table: per node, its inputs then its outputs, in node order]
 *   [padding to EVO_ARENA_ALIGN]
 *   [activation area: activation_bytes, tensors and scratch at planned offsets]
 * evo_exec_init fills the views and tables once, so evo_exec_run is a loop
 * that only calls each op's eval.
 *
 * evo_program_arena_size counts EVO_ARENA_ALIGN - 1 bytes of slack for an
 * arbitrarily aligned pointer; evo_exec_init only asks for the bytes this
 * pointer actually needs, so an arena already aligned to EVO_ARENA_ALIGN can
 * be that much smaller (useful on a microcontroller).
 *
 * Programs may come from a file (the .evm loader), so evo_exec_init checks
 * every index, offset and size before trusting it.
 */
#include <string.h>

#include "evo/node.h"
#include "exec_internal.h"

typedef struct exec_layout {
    size_t n_ptrs;   /* pointer table entries */
    size_t ptrs_off; /* from the aligned base */
    size_t act_off;  /* from the aligned base, multiple of EVO_ARENA_ALIGN */
    size_t need;     /* act_off + activation_bytes: bytes after the aligned base */
} exec_layout;

static bool exec_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return false;
    *out = a + b;
    return true;
}

static bool exec_mul(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

static bool exec_align_up(size_t v, size_t a, size_t *out)
{
    if (!exec_add(v, a - 1, out))
        return false;
    *out &= ~(a - 1);
    return true;
}

/* Sizes of the layout; false if the program's counts are negative or the
 * sizes overflow. Reads only counts, so it is safe on a program that fails
 * exec_check. */
static bool exec_compute_layout(const evo_program *p, exec_layout *l)
{
    if (p->n_tensors < 0 || p->n_nodes < 0 || (p->n_nodes > 0 && p->nodes == NULL))
        return false;
    size_t n_ptrs = 0;
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        if (n->n_in < 0 || n->n_out < 0)
            return false;
        if (!exec_add(n_ptrs, (size_t)n->n_in + (size_t)n->n_out, &n_ptrs))
            return false;
    }
    size_t views, ptrs_off, ptrs, end, act_off, need;
    if (p->activation_bytes > (uint64_t)SIZE_MAX)
        return false;
    if (!exec_mul((size_t)p->n_tensors, sizeof(evo_tensor), &views) ||
        !exec_align_up(views, _Alignof(evo_tensor *), &ptrs_off) ||
        !exec_mul(n_ptrs, sizeof(evo_tensor *), &ptrs) || !exec_add(ptrs_off, ptrs, &end) ||
        !exec_align_up(end, EVO_ARENA_ALIGN, &act_off) ||
        !exec_add(act_off, (size_t)p->activation_bytes, &need))
        return false;
    l->n_ptrs = n_ptrs;
    l->ptrs_off = ptrs_off;
    l->act_off = act_off;
    l->need = need;
    return true;
}

size_t evo_program_arena_size(const evo_program *p)
{
    exec_layout l;
    if (p == NULL || !exec_compute_layout(p, &l))
        return 0;
    size_t total;
    /* Worst case: the caller's pointer is one byte past an aligned address. */
    if (!exec_add(l.need, EVO_ARENA_ALIGN - 1, &total))
        return SIZE_MAX;
    return total;
}

/* [off, off + bytes) lies inside an area of `cap` bytes. */
static bool exec_fits(uint64_t off, uint64_t bytes, uint64_t cap)
{
    return off <= cap && bytes <= cap - off;
}

static bool exec_check_tensor_index(const evo_program *p, int32_t t, bool allow_absent)
{
    return (allow_absent && t == -1) || (t >= 0 && t < p->n_tensors);
}

/* Everything the executor and the kernels rely on: indices in range, every
 * arena tensor and scratch area inside the activation area, dense sizes that
 * match the shapes, ops with an eval and a valid arity. */
static bool exec_check_program(const evo_program *p)
{
    if ((p->n_tensors > 0 && p->tensors == NULL) || p->n_inputs < 0 || p->n_outputs < 0 ||
        (p->n_inputs > 0 && p->inputs == NULL) || (p->n_outputs > 0 && p->outputs == NULL))
        return false;
    for (int32_t i = 0; i < p->n_tensors; i++) {
        const evo_prog_tensor *t = &p->tensors[i];
        size_t nbytes;
        if (evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK || nbytes != t->nbytes)
            return false;
        if (t->flags & EVO_PT_CONST) {
            if (t->const_data == NULL && t->nbytes > 0)
                return false;
        } else if (t->arena_offset % EVO_ARENA_ALIGN != 0 ||
                   !exec_fits(t->arena_offset, t->nbytes, p->activation_bytes)) {
            return false;
        }
    }
    for (int32_t i = 0; i < p->n_inputs; i++)
        if (!exec_check_tensor_index(p, p->inputs[i], false) ||
            (p->tensors[p->inputs[i]].flags & EVO_PT_CONST))
            return false;
    for (int32_t i = 0; i < p->n_outputs; i++)
        if (!exec_check_tensor_index(p, p->outputs[i], false))
            return false;
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        const evo_op_def *op = n->op;
        if (op == NULL || op->eval == NULL || (n->n_in > 0 && n->in == NULL) ||
            (n->n_out > 0 && n->out == NULL))
            return false;
        if (n->n_in < op->min_inputs || (op->max_inputs >= 0 && n->n_in > op->max_inputs) ||
            n->n_out < op->min_outputs || (op->max_outputs >= 0 && n->n_out > op->max_outputs))
            return false;
        for (int32_t i = 0; i < n->n_in; i++)
            if (!exec_check_tensor_index(p, n->in[i], true))
                return false;
        for (int32_t i = 0; i < n->n_out; i++) {
            /* Kernels write outputs: never into constant data. */
            if (!exec_check_tensor_index(p, n->out[i], true) ||
                (n->out[i] >= 0 && (p->tensors[n->out[i]].flags & EVO_PT_CONST)))
                return false;
        }
        if (n->scratch_bytes > 0 &&
            (n->scratch_offset % EVO_ARENA_ALIGN != 0 ||
             !exec_fits(n->scratch_offset, n->scratch_bytes, p->activation_bytes)))
            return false;
    }
    return true;
}

evo_status evo_exec_init(evo_exec *x, const evo_program *p, void *arena, size_t arena_bytes)
{
    if (x == NULL)
        return EVO_ERR_INVALID_ARG;
    memset(x, 0, sizeof *x);
    exec_layout l;
    if (p == NULL || arena == NULL || !exec_compute_layout(p, &l) || !exec_check_program(p))
        return EVO_ERR_INVALID_ARG;

    uintptr_t a = (uintptr_t)arena;
    size_t pad = (size_t)((EVO_ARENA_ALIGN - (a % EVO_ARENA_ALIGN)) % EVO_ARENA_ALIGN);
    if (arena_bytes < pad || arena_bytes - pad < l.need)
        return EVO_ERR_NOMEM;
    unsigned char *base = (unsigned char *)arena + pad;

    evo_tensor *views = (evo_tensor *)(void *)base;
    evo_tensor **ptrs = (evo_tensor **)(void *)(base + l.ptrs_off);
    unsigned char *act = base + l.act_off;

    for (int32_t i = 0; i < p->n_tensors; i++) {
        const evo_prog_tensor *t = &p->tensors[i];
        views[i].dtype = t->dtype;
        views[i].shape = t->shape;
        /* Constants are only ever read by kernels (checked above: no node
         * writes a CONST tensor), so dropping const here is safe. */
        views[i].data = (t->flags & EVO_PT_CONST) ? (void *)(uintptr_t)t->const_data
                                                  : (void *)(act + t->arena_offset);
    }
    size_t e = 0;
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        for (int32_t i = 0; i < n->n_in; i++)
            ptrs[e++] = n->in[i] < 0 ? NULL : &views[n->in[i]];
        for (int32_t i = 0; i < n->n_out; i++)
            ptrs[e++] = n->out[i] < 0 ? NULL : &views[n->out[i]];
    }
    x->prog = p;
    x->tensors = views;
    x->ptrs = ptrs;
    x->activations = act;
    return EVO_OK;
}

evo_tensor *evo_exec_input(evo_exec *x, int32_t i)
{
    if (x == NULL || x->prog == NULL || i < 0 || i >= x->prog->n_inputs)
        return NULL;
    return &x->tensors[x->prog->inputs[i]];
}

const evo_tensor *evo_exec_output(const evo_exec *x, int32_t i)
{
    if (x == NULL || x->prog == NULL || i < 0 || i >= x->prog->n_outputs)
        return NULL;
    return &x->tensors[x->prog->outputs[i]];
}

/* Run one node whose pointer table starts at pt. */
static evo_status exec_node(const evo_exec *x, const evo_prog_node *n, evo_tensor **pt)
{
    evo_kctx c = {
        .params = n->params,
        .in = pt,
        .n_in = n->n_in,
        .out = pt + n->n_in,
        .n_out = n->n_out,
        .scratch = n->scratch_bytes > 0 ? x->activations + n->scratch_offset : NULL,
        .scratch_bytes = (size_t)n->scratch_bytes,
        .err = NULL,
    };
    evo_status st;
    if (x->threads != NULL && x->threads_run(x->threads, n->op, &c, &st))
        return st;
    return evo_op_eval(n->op, &c);
}

evo_status evo_exec_run(evo_exec *x, int32_t *failed_node)
{
    if (failed_node != NULL)
        *failed_node = -1;
    if (x == NULL || x->prog == NULL)
        return EVO_ERR_INVALID_ARG;
    const evo_program *p = x->prog;
    evo_tensor **pt = x->ptrs;
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        evo_status st = exec_node(x, n, pt);
        if (st != EVO_OK) {
            if (failed_node != NULL)
                *failed_node = k;
            return st;
        }
        pt += n->n_in + n->n_out;
    }
    return EVO_OK;
}

evo_status evo_exec_run_node(evo_exec *x, int32_t k)
{
    if (x == NULL || x->prog == NULL || k < 0 || k >= x->prog->n_nodes)
        return EVO_ERR_INVALID_ARG;
    const evo_program *p = x->prog;
    evo_tensor **pt = x->ptrs;
    for (int32_t j = 0; j < k; j++)
        pt += p->nodes[j].n_in + p->nodes[j].n_out;
    return exec_node(x, &p->nodes[k], pt);
}
