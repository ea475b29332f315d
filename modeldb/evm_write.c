/*
 * The .evm writer (hosted): a program, as evo_program_build made it, into the
 * compact little-endian blob that core/evm_load.c verifies and runs in place.
 * Byte layout: docs/format.md.
 *
 * Size matters on a device, so the tables are small: op params are stored
 * once per distinct value (a Conv repeated thirty times with the same
 * attributes costs one 256-byte slot), all-zero params cost nothing, names
 * can be stripped, and the only padding is the alignment of each constant.
 */
#include <stdlib.h>
#include <string.h>

#include "evo/evm.h"

static void evmw_wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void evmw_wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void evmw_wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t evmw_align(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Growing string table; offsets fit in 32 bits (checked). */
typedef struct evmw_strings {
    char *buf;
    size_t len, cap;
} evmw_strings;

static evo_status evmw_add_string(evmw_strings *s, const char *str, uint32_t *ref, evo_error *err)
{
    if (str == NULL || str[0] == '\0') {
        *ref = EVO_EVM_NONE; /* "" costs nothing */
        return EVO_OK;
    }
    size_t n = strlen(str) + 1;
    if (s->len + n > (1u << 24))
        return evo_error_set(err, EVO_ERR_LIMIT,
                             ".evm writer: names exceed the 16 MiB string "
                             "table; use --strip-names");
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return evo_error_set(err, EVO_ERR_NOMEM, ".evm writer: out of memory");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, str, n);
    *ref = (uint32_t)s->len;
    s->len += n;
    return EVO_OK;
}

/* Stored length of a params block: up to its last non-zero byte. */
static uint32_t evmw_params_len(const unsigned char *p)
{
    uint32_t n = EVO_PARAMS_MAX;
    while (n > 0 && p[n - 1] == 0)
        n--;
    return n;
}

typedef struct evmw_state {
    const evo_program *p;
    evo_error *err;
    uint32_t const_align;
    evmw_strings strings;
    uint32_t *tensor_name, *node_name;
    uint16_t *op_ids;
    uint32_t *op_name;
    uint32_t n_ops;
    uint32_t *node_slot, *node_plen;
    const unsigned char **slots; /* distinct params blocks */
    uint32_t n_slots;
    uint64_t *const_off;
    uint64_t const_bytes, weights;
    uint32_t n_indices, max_io;
} evmw_state;

static void evmw_state_free(evmw_state *s)
{
    free(s->strings.buf);
    free(s->tensor_name);
    free(s->node_name);
    free(s->op_ids);
    free(s->op_name);
    free(s->node_slot);
    free(s->node_plen);
    free(s->slots);
    free(s->const_off);
}

static const char *evmw_node_label(const evo_prog_node *n)
{
    return n->name != NULL && n->name[0] ? n->name : "(unnamed)";
}

/* Everything that must hold before a byte is written. */
static evo_status evmw_check(evmw_state *s)
{
    const evo_program *p = s->p;
    if (p->n_tensors < 0 || p->n_nodes < 0 || p->n_inputs < 0 || p->n_outputs < 0 ||
        (p->n_tensors > 0 && p->tensors == NULL) || (p->n_nodes > 0 && p->nodes == NULL) ||
        (p->n_inputs > 0 && p->inputs == NULL) || (p->n_outputs > 0 && p->outputs == NULL))
        return evo_error_set(s->err, EVO_ERR_INVALID_ARG, ".evm writer: malformed program");
    if ((uint64_t)p->n_tensors > (1u << 24) || (uint64_t)p->n_nodes > (1u << 24))
        return evo_error_set(s->err, EVO_ERR_LIMIT,
                             ".evm writer: %d tensors and %d nodes exceed the format's 2^24",
                             (int)p->n_tensors, (int)p->n_nodes);
    for (int32_t i = 0; i < p->n_tensors; i++) {
        const evo_prog_tensor *t = &p->tensors[i];
        size_t nb;
        if (t->shape.rank < 0 || t->shape.rank > EVO_MAX_RANK ||
            evo_shape_nbytes(&t->shape, t->dtype, &nb) != EVO_OK || nb != t->nbytes ||
            (t->flags & ~(uint32_t)(EVO_PT_CONST | EVO_PT_INPUT | EVO_PT_OUTPUT)) ||
            ((t->flags & EVO_PT_CONST) && t->const_data == NULL && t->nbytes > 0))
            return evo_error_set(s->err, EVO_ERR_INVALID_ARG,
                                 ".evm writer: tensor %d '%s' is malformed", (int)i,
                                 t->name ? t->name : "");
    }
    uint64_t n_idx = (uint64_t)p->n_inputs + (uint64_t)p->n_outputs;
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        if (n->op == NULL || n->params == NULL || n->n_in < 0 || n->n_out < 0 || n->n_in > 0xFFFF ||
            n->n_out > 0xFFFF || (n->n_in > 0 && n->in == NULL) || (n->n_out > 0 && n->out == NULL))
            return evo_error_set(s->err, EVO_ERR_INVALID_ARG,
                                 ".evm writer: node %d '%s' is malformed or has more than 65535 "
                                 "inputs or outputs",
                                 (int)k, evmw_node_label(n));
        for (int32_t i = 0; i < n->n_in + n->n_out; i++) {
            int32_t t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
            if (t < -1 || t >= p->n_tensors)
                return evo_error_set(s->err, EVO_ERR_INVALID_ARG,
                                     ".evm writer: node %d '%s' refers to tensor %d of %d", (int)k,
                                     evmw_node_label(n), (int)t, (int)p->n_tensors);
        }
        uint32_t io = (uint32_t)(n->n_in + n->n_out);
        if (io > s->max_io)
            s->max_io = io;
        n_idx += io;
    }
    if (n_idx > (1u << 24))
        return evo_error_set(s->err, EVO_ERR_LIMIT,
                             ".evm writer: %llu index entries exceed the format's 2^24",
                             (unsigned long long)n_idx);
    s->n_indices = (uint32_t)n_idx;
    return EVO_OK;
}

/* Names, the op table, distinct params, constant offsets. */
static evo_status evmw_collect(evmw_state *s, bool names)
{
    const evo_program *p = s->p;
    size_t nt = (size_t)p->n_tensors + 1, nn = (size_t)p->n_nodes + 1;
    s->tensor_name = calloc(nt, sizeof *s->tensor_name);
    s->node_name = calloc(nn, sizeof *s->node_name);
    s->op_ids = calloc(nn, sizeof *s->op_ids);
    s->op_name = calloc(nn, sizeof *s->op_name);
    s->node_slot = calloc(nn, sizeof *s->node_slot);
    s->node_plen = calloc(nn, sizeof *s->node_plen);
    s->slots = calloc(nn, sizeof *s->slots);
    s->const_off = calloc(nt, sizeof *s->const_off);
    if (!s->tensor_name || !s->node_name || !s->op_ids || !s->op_name || !s->node_slot ||
        !s->node_plen || !s->slots || !s->const_off)
        return evo_error_set(s->err, EVO_ERR_NOMEM, ".evm writer: out of memory");
    evo_status st;
    for (int32_t i = 0; i < p->n_tensors; i++) {
        s->tensor_name[i] = EVO_EVM_NONE;
        if (names && (st = evmw_add_string(&s->strings, p->tensors[i].name, &s->tensor_name[i],
                                           s->err)) != EVO_OK)
            return st;
    }
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        s->node_name[k] = EVO_EVM_NONE;
        if (names &&
            (st = evmw_add_string(&s->strings, n->name, &s->node_name[k], s->err)) != EVO_OK)
            return st;
        uint32_t j = 0;
        while (j < s->n_ops && s->op_ids[j] != n->op->id)
            j++;
        if (j == s->n_ops) {
            s->op_ids[j] = n->op->id;
            s->op_name[j] = EVO_EVM_NONE;
            if (names &&
                (st = evmw_add_string(&s->strings, n->op->name, &s->op_name[j], s->err)) != EVO_OK)
                return st;
            s->n_ops++;
        }
        const unsigned char *params = n->params;
        uint32_t len = evmw_params_len(params);
        s->node_plen[k] = len;
        s->node_slot[k] = EVO_EVM_NONE;
        if (len == 0)
            continue;
        uint32_t q = 0;
        while (q < s->n_slots && memcmp(s->slots[q], params, EVO_PARAMS_MAX) != 0)
            q++;
        if (q == s->n_slots)
            s->slots[s->n_slots++] = params;
        s->node_slot[k] = q;
    }
    uint64_t at = 0;
    for (int32_t i = 0; i < p->n_tensors; i++) {
        const evo_prog_tensor *t = &p->tensors[i];
        if (!(t->flags & EVO_PT_CONST))
            continue;
        at = evmw_align(at, s->const_align);
        s->const_off[i] = at;
        at += t->nbytes;
        s->weights += t->nbytes;
    }
    s->const_bytes = at;
    /* The op table is sorted by id (the loader checks that ids ascend). */
    for (uint32_t i = 1; i < s->n_ops; i++)
        for (uint32_t j = i; j > 0 && s->op_ids[j - 1] > s->op_ids[j]; j--) {
            uint16_t id = s->op_ids[j];
            uint32_t nm = s->op_name[j];
            s->op_ids[j] = s->op_ids[j - 1];
            s->op_name[j] = s->op_name[j - 1];
            s->op_ids[j - 1] = id;
            s->op_name[j - 1] = nm;
        }
    return EVO_OK;
}

evo_status evo_evm_write(const evo_program *p, const evo_evm_write_options *opt,
                         evo_evm_sha256_fn sha256, void *sha256_user, void **out, size_t *out_len,
                         evo_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (p == NULL || out == NULL || out_len == NULL || sha256 == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             ".evm writer: no program, no result or no SHA-256 function");
    evmw_state s = {.p = p, .err = err, .const_align = EVO_EVM_CONST_ALIGN};
    bool names = opt == NULL || !opt->strip_names;
    if (opt != NULL && opt->const_align != 0) {
        s.const_align = opt->const_align;
        if (s.const_align < EVO_EVM_MIN_ALIGN || s.const_align > 4096 ||
            (s.const_align & (s.const_align - 1)) != 0)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 ".evm writer: constant alignment %u is not a power of two in "
                                 "[16, 4096]",
                                 (unsigned)s.const_align);
    }
    evo_status st;
    if ((st = evmw_check(&s)) != EVO_OK || (st = evmw_collect(&s, names)) != EVO_OK) {
        evmw_state_free(&s);
        return st;
    }
    /* An empty string table is no string table. */
    if (s.strings.len == 0)
        names = false;

    /* The layout the loader derives from the header's counts. */
    uint64_t tensors_off = EVO_EVM_HEADER_BYTES;
    uint64_t nodes_off = tensors_off + (uint64_t)p->n_tensors * EVO_EVM_TENSOR_BYTES;
    uint64_t ops_off = nodes_off + (uint64_t)p->n_nodes * EVO_EVM_NODE_BYTES;
    uint64_t indices_off = ops_off + (uint64_t)s.n_ops * EVO_EVM_OP_BYTES;
    uint64_t params_off = evmw_align(indices_off + (uint64_t)s.n_indices * 4, 8);
    uint64_t strings_off = params_off + (uint64_t)s.n_slots * EVO_PARAMS_MAX;
    uint64_t consts_off = evmw_align(strings_off + s.strings.len, s.const_align);
    uint64_t total = consts_off + s.const_bytes;
    if (total > (uint64_t)SIZE_MAX / 2) {
        evmw_state_free(&s);
        return evo_error_set(err, EVO_ERR_LIMIT, ".evm writer: the model is too large");
    }
    unsigned char *b = calloc(1, (size_t)total);
    if (b == NULL) {
        evmw_state_free(&s);
        return evo_error_set(err, EVO_ERR_NOMEM, ".evm writer: cannot allocate %llu bytes",
                             (unsigned long long)total);
    }

    memcpy(b, EVO_EVM_MAGIC, 4);
    evmw_wr32(b + 4, EVO_EVM_VERSION);
    evmw_wr32(b + 40, EVO_EVM_HEADER_BYTES);
    evmw_wr32(b + 44, names ? EVO_EVM_F_NAMES : 0);
    evmw_wr64(b + 48, total);
    evmw_wr64(b + 56, p->activation_bytes);
    evmw_wr64(b + 64, p->activation_lower_bound);
    evmw_wr64(b + 72, s.weights);
    evmw_wr32(b + 80, (uint32_t)p->n_tensors);
    evmw_wr32(b + 84, (uint32_t)p->n_nodes);
    evmw_wr32(b + 88, s.n_indices);
    evmw_wr32(b + 92, (uint32_t)p->n_inputs);
    evmw_wr32(b + 96, (uint32_t)p->n_outputs);
    evmw_wr32(b + 100, s.n_ops);
    evmw_wr32(b + 104, s.n_slots);
    evmw_wr32(b + 108, s.max_io);
    evmw_wr32(b + 112, s.const_align);
    evmw_wr32(b + 116, names ? (uint32_t)s.strings.len : 0);
    evmw_wr64(b + 120, s.const_bytes);

    for (int32_t i = 0; i < p->n_tensors; i++) {
        const evo_prog_tensor *t = &p->tensors[i];
        unsigned char *r = b + tensors_off + (uint64_t)i * EVO_EVM_TENSOR_BYTES;
        evmw_wr32(r, s.tensor_name[i]);
        r[4] = (unsigned char)t->dtype;
        r[5] = (unsigned char)t->shape.rank;
        evmw_wr16(r + 6, (uint16_t)t->flags);
        for (int32_t d = 0; d < t->shape.rank; d++)
            evmw_wr32(r + 8 + 4 * d, (uint32_t)t->shape.dims[d]);
        bool is_const = (t->flags & EVO_PT_CONST) != 0;
        evmw_wr64(r + 40, is_const ? s.const_off[i] : t->arena_offset);
        evmw_wr64(r + 48, t->nbytes);
        if (is_const && t->nbytes > 0)
            memcpy(b + consts_off + s.const_off[i], t->const_data, (size_t)t->nbytes);
    }
    unsigned char *idx = b + indices_off;
    uint32_t at = 0;
    for (int32_t k = 0; k < p->n_inputs; k++)
        evmw_wr32(idx + 4 * (uint64_t)at++, (uint32_t)p->inputs[k]);
    for (int32_t k = 0; k < p->n_outputs; k++)
        evmw_wr32(idx + 4 * (uint64_t)at++, (uint32_t)p->outputs[k]);
    for (int32_t k = 0; k < p->n_nodes; k++) {
        const evo_prog_node *n = &p->nodes[k];
        unsigned char *r = b + nodes_off + (uint64_t)k * EVO_EVM_NODE_BYTES;
        evmw_wr16(r, n->op->id);
        evmw_wr16(r + 2, (uint16_t)s.node_plen[k]);
        evmw_wr32(r + 4, s.node_name[k]);
        evmw_wr32(r + 8, s.node_slot[k]);
        evmw_wr32(r + 12, at);
        evmw_wr16(r + 16, (uint16_t)n->n_in);
        evmw_wr16(r + 18, (uint16_t)n->n_out);
        evmw_wr64(r + 24, n->scratch_bytes > 0 ? n->scratch_offset : 0);
        evmw_wr64(r + 32, n->scratch_bytes);
        for (int32_t i = 0; i < n->n_in; i++)
            evmw_wr32(idx + 4 * (uint64_t)at++, (uint32_t)n->in[i]);
        for (int32_t i = 0; i < n->n_out; i++)
            evmw_wr32(idx + 4 * (uint64_t)at++, (uint32_t)n->out[i]);
    }
    for (uint32_t j = 0; j < s.n_ops; j++) {
        unsigned char *r = b + ops_off + (uint64_t)j * EVO_EVM_OP_BYTES;
        evmw_wr16(r, s.op_ids[j]);
        evmw_wr32(r + 4, s.op_name[j]);
    }
    for (uint32_t q = 0; q < s.n_slots; q++)
        memcpy(b + params_off + (uint64_t)q * EVO_PARAMS_MAX, s.slots[q], EVO_PARAMS_MAX);
    if (names)
        memcpy(b + strings_off, s.strings.buf, s.strings.len);

    sha256(b + EVO_EVM_DIGEST_FROM, (size_t)total - EVO_EVM_DIGEST_FROM, b + 8, sha256_user);
    evmw_state_free(&s);
    *out = b;
    *out_len = (size_t)total;
    return EVO_OK;
}
