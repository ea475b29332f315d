/* Loading a model for execution: format detection, dim binding from the
 * given inputs, inference, program build and the arena. */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evo/transport.h"

/* The compact model format's magic (docs/format.md); any file starting with
 * it is routed to the .evm branch. */
#define CLI_EVM_MAGIC EVO_EVM_MAGIC

static const char *model_input_label(const cli_model_options *opt, size_t k)
{
    return opt->input_paths && opt->input_paths[k] ? opt->input_paths[k] : "given tensor";
}

/* Append a binding unless the same name is bound already; a different value
 * for the same name is an error naming both sources. */
static evo_status model_add_binding(evo_dim_binding *b, size_t *n, const char *name, int64_t value,
                                    const char *source, const char *path, evo_error *err)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(b[i].name, name) != 0)
            continue;
        if (b[i].value != value)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: dim '%s' is %lld from %s but %lld from an earlier input "
                                 "or --dim",
                                 path, name, (long long)value, source, (long long)b[i].value);
        return EVO_OK;
    }
    b[*n].name = name;
    b[*n].value = value;
    (*n)++;
    return EVO_OK;
}

/* Check the given inputs against the graph inputs' declared types and
 * shapes, set unnamed symbolic dims directly, and bind named ones (together
 * with --dim) through evo_graph_bind_dims. */
static evo_status model_bind_inputs(evo_graph *g, const cli_model_options *opt, const char *path,
                                    evo_error *err)
{
    if (opt->n_inputs > 0 && opt->n_inputs != (size_t)g->n_inputs)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: the model has %d input%s but %zu %s given", path,
                             (int)g->n_inputs, g->n_inputs == 1 ? "" : "s", opt->n_inputs,
                             opt->n_inputs == 1 ? "was" : "were");
    size_t cap = opt->n_dims + opt->n_inputs * EVO_MAX_RANK;
    evo_dim_binding *b = malloc((cap ? cap : 1) * sizeof *b);
    if (b == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    size_t n = 0;
    evo_status rv = EVO_OK;
    for (size_t i = 0; i < opt->n_dims && rv == EVO_OK; i++)
        rv = model_add_binding(b, &n, opt->dims[i].name, opt->dims[i].value, "--dim", path, err);

    for (size_t k = 0; k < opt->n_inputs && rv == EVO_OK; k++) {
        evo_value *v = &g->values[g->inputs[k]];
        const evo_tensor *t = &opt->inputs[k].t;
        const char *label = model_input_label(opt, k);
        if ((v->flags & EVO_VALUE_HAS_TYPE) && v->t.dtype != t->dtype) {
            rv = evo_error_set(
                err, EVO_ERR_TYPE, "%s: input %zu '%s' is %s in %s but the model expects %s", path,
                k, v->name, evo_dtype_name(t->dtype), label, evo_dtype_name(v->t.dtype));
            break;
        }
        if (!(v->flags & EVO_VALUE_HAS_TYPE)) {
            v->t.dtype = t->dtype;
            v->flags |= EVO_VALUE_HAS_TYPE;
        }
        if (!(v->flags & EVO_VALUE_HAS_SHAPE)) {
            v->t.shape = t->shape; /* the file declares no shape: take the data's */
            v->flags |= EVO_VALUE_HAS_SHAPE;
            continue;
        }
        char want[160], got[160];
        cli_fmt_value_shape(v, want, sizeof want);
        evo_shape_format(&t->shape, got, sizeof got);
        bool ok = v->t.shape.rank == t->shape.rank;
        for (int32_t d = 0; ok && d < t->shape.rank; d++) {
            const char *param = v->dim_params ? v->dim_params[d] : NULL;
            if (v->t.shape.dims[d] >= 0)
                ok = v->t.shape.dims[d] == t->shape.dims[d];
            else if (param && param[0])
                rv = model_add_binding(b, &n, param, t->shape.dims[d], label, path, err);
            else
                v->t.shape.dims[d] = t->shape.dims[d];
            if (rv != EVO_OK)
                break;
        }
        if (rv == EVO_OK && !ok)
            rv = evo_error_set(err, EVO_ERR_SHAPE,
                               "%s: input %zu '%s' has shape %s in %s but the model expects %s",
                               path, k, v->name, got, label, want);
    }
    if (rv == EVO_OK)
        rv = evo_graph_bind_dims(g, b, n, err);
    free(b);
    return rv;
}

/* Inputs that may decide shapes: integer tensors (shapes, axes, indices
 * of Slice/Reshape/Tile...) and tiny tensors (Range's scalars). */
#define MODEL_SPECIALIZE_MAX_ELEMS 64

static bool model_specializable(const cli_tensor *t)
{
    bool is_int = t->t.dtype == EVO_DT_INT64 || t->t.dtype == EVO_DT_INT32;
    int64_t n = evo_shape_numel(&t->t.shape);
    return n >= 0 && (is_int || n <= MODEL_SPECIALIZE_MAX_ELEMS);
}

/* Bind the specializable given inputs as constants: they stop being graph
 * inputs, and given_to_prog records which given input went where. */
static evo_status model_specialize(evo_graph *g, const cli_model_options *opt, cli_model *m,
                                   const char *path, evo_error *err)
{
    int32_t kept = 0;
    for (size_t k = 0; k < opt->n_inputs; k++) {
        int32_t v = g->inputs[k];
        const cli_tensor *t = &opt->inputs[k];
        if (!model_specializable(t)) {
            m->given_to_prog[k] = kept;
            g->inputs[kept++] = v;
            continue;
        }
        void *copy = malloc(t->nbytes ? t->nbytes : 1);
        if (copy == NULL)
            return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
        if (t->nbytes)
            memcpy(copy, t->t.data, t->nbytes);
        g->values[v].flags &= ~(uint32_t)EVO_VALUE_INPUT;
        evo_value_set_const(g, v, t->t.dtype, &t->t.shape, copy);
        m->given_to_prog[k] = -1;
        m->n_specialized++;
        EVO_LOGI("%s: input '%s' specialized to its given value (it decides a shape)", path,
                 g->values[v].name);
    }
    g->n_inputs = kept;
    return EVO_OK;
}

static evo_status model_load_onnx(const char *path, const cli_model_options *opt, cli_model *m,
                                  evo_error *err)
{
    evo_import_options iopt = {.dims = opt->dims, .n_dims = opt->n_dims};
    evo_status rv = evo_onnx_load(path, &iopt, &m->graph, err);
    if (rv != EVO_OK)
        return rv;
    if ((rv = model_bind_inputs(m->graph, opt, path, err)) != EVO_OK)
        return rv;
    m->n_given = (size_t)m->graph->n_inputs;
    m->given_to_prog = malloc((m->n_given ? m->n_given : 1) * sizeof *m->given_to_prog);
    if (m->given_to_prog == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < m->n_given; k++)
        m->given_to_prog[k] = (int32_t)k;
    rv = evo_graph_infer(m->graph, &iopt, NULL, err);
    if (rv == EVO_ERR_SHAPE && opt->n_inputs > 0) {
        /* Static shapes may hinge on an input's value (ONNX tests feed a
         * Reshape's shape as an input). With the data at hand, bind such
         * inputs as constants and infer again from a fresh import. */
        evo_error first = *err;
        evo_graph_free(m->graph);
        m->graph = NULL;
        if ((rv = evo_onnx_load(path, &iopt, &m->graph, err)) != EVO_OK ||
            (rv = model_bind_inputs(m->graph, opt, path, err)) != EVO_OK ||
            (rv = model_specialize(m->graph, opt, m, path, err)) != EVO_OK)
            return rv;
        if ((rv = evo_graph_infer(m->graph, &iopt, NULL, err)) != EVO_OK) {
            /* Another shape error: the unspecialized reason is the one to
             * read. Anything else (an unsupported op further on) is news. */
            if (rv == EVO_ERR_SHAPE)
                *err = first;
            return rv;
        }
    } else if (rv != EVO_OK) {
        return rv;
    }
    if (!opt->no_optimize && (rv = evo_graph_optimize(m->graph, NULL, NULL, err)) != EVO_OK)
        return rv;
    return evo_program_build(m->graph, NULL, &m->prog, err);
}

typedef enum model_format { MODEL_ONNX, MODEL_EVM } model_format;

/* Detect the format by content, not by the file name. */
static evo_status model_detect(const char *path, model_format *fmt, evo_error *err)
{
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    size_t magic = sizeof CLI_EVM_MAGIC - 1;
    *fmt = got >= magic && memcmp(head, CLI_EVM_MAGIC, magic) == 0 ? MODEL_EVM : MODEL_ONNX;
    return EVO_OK;
}

void cli_sha256(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES], void *user)
{
    (void)user;
    evo_sha256(data, len, out);
}

bool cli_is_evm(const char *path)
{
    model_format fmt;
    return model_detect(path, &fmt, NULL) == EVO_OK && fmt == MODEL_EVM;
}

void cli_evm_close(cli_evm *e)
{
    if (e == NULL)
        return;
    free(e->blob);
    free(e->work);
    memset(e, 0, sizeof *e);
}

evo_status cli_evm_open(const char *path, cli_evm *e, evo_error *err)
{
    memset(e, 0, sizeof *e);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    evo_status rv = EVO_OK;
    long size = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    }
    e->len = (size_t)size;
    /* The loader runs weights in place: the copy must be aligned like the
     * file's constant section (EVO_EVM_CONST_ALIGN). */
    size_t cap = (e->len + EVO_EVM_CONST_ALIGN - 1) / EVO_EVM_CONST_ALIGN * EVO_EVM_CONST_ALIGN;
    e->blob = aligned_alloc(EVO_EVM_CONST_ALIGN, cap ? cap : EVO_EVM_CONST_ALIGN);
    if (e->blob == NULL) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, e->len);
    }
    if (fread(e->blob, 1, e->len, f) != e->len)
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot read %zu bytes", path, e->len);
    fclose(f);
    if (rv == EVO_OK && (rv = evo_evm_read_header(e->blob, e->len, &e->info, err)) == EVO_OK) {
        size_t work = evo_evm_work_size(&e->info);
        e->work = work == SIZE_MAX ? NULL : malloc(work ? work : 1);
        if (e->work == NULL) {
            rv = evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate the program tables", path);
        } else {
            evo_evm_load_options o = {.sha256 = cli_sha256};
            rv = evo_evm_load(e->blob, e->len, &o, e->work, work, &e->prog, err);
        }
    }
    if (rv != EVO_OK) {
        evo_error_prefix(err, "%s", path);
        cli_evm_close(e);
    }
    return rv;
}

/* A .evm's shapes and types were fixed when it was compiled: given inputs
 * must match them (cli_model_set_input checks each one). */
static evo_status model_load_evm(const char *path, const cli_model_options *opt, cli_model *m,
                                 evo_error *err)
{
    if (opt->n_dims > 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: --dim does not apply to a compiled .evm model (its dims were "
                             "bound by evo compile)",
                             path);
    m->evm = calloc(1, sizeof *m->evm);
    if (m->evm == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    evo_status rv = cli_evm_open(path, m->evm, err);
    if (rv != EVO_OK)
        return rv;
    m->prog = &m->evm->prog;
    if (opt->n_inputs > 0 && opt->n_inputs != (size_t)m->prog->n_inputs)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: the model has %d input%s but %zu %s given", path,
                             (int)m->prog->n_inputs, m->prog->n_inputs == 1 ? "" : "s",
                             opt->n_inputs, opt->n_inputs == 1 ? "was" : "were");
    m->n_given = (size_t)m->prog->n_inputs;
    m->given_to_prog = malloc((m->n_given ? m->n_given : 1) * sizeof *m->given_to_prog);
    if (m->given_to_prog == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < m->n_given; k++)
        m->given_to_prog[k] = (int32_t)k;
    return EVO_OK;
}

evo_status cli_model_probe(const char *path, evo_error *err)
{
    model_format fmt;
    evo_status rv = model_detect(path, &fmt, err);
    if (rv != EVO_OK)
        return rv;
    if (fmt == MODEL_EVM) {
        cli_evm e;
        rv = cli_evm_open(path, &e, err);
        cli_evm_close(&e);
        return rv;
    }
    evo_import_options iopt = {0};
    evo_graph *g = NULL;
    rv = evo_onnx_load(path, &iopt, &g, err);
    evo_graph_free(g);
    return rv;
}

evo_status cli_model_load(const char *path, const cli_model_options *opt, cli_model *m,
                          evo_error *err)
{
    memset(m, 0, sizeof *m);
    m->path = path;
    model_format fmt;
    evo_status rv = model_detect(path, &fmt, err);
    if (rv != EVO_OK)
        return rv;
    if (fmt == MODEL_EVM)
        rv = model_load_evm(path, opt, m, err);
    else
        rv = model_load_onnx(path, opt, m, err);
    if (rv != EVO_OK)
        return rv;

    /* Format-independent from here: the program says everything. */
    m->arena_bytes = evo_program_arena_size(m->prog);
    m->arena = malloc(m->arena_bytes ? m->arena_bytes : 1);
    if (m->arena == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: cannot allocate an arena of %zu bytes", path,
                             m->arena_bytes);
    if ((rv = evo_exec_init(&m->exec, m->prog, m->arena, m->arena_bytes)) != EVO_OK)
        return evo_error_set(err, rv, "%s: executor setup failed: %s", path, evo_strerror(rv));
    if (opt->threads > 1 && ((rv = evo_threads_create(opt->threads, &m->threads, err)) != EVO_OK ||
                             (rv = evo_exec_set_threads(&m->exec, m->threads, err)) != EVO_OK))
        return rv;
    EVO_LOGI("%s: %d nodes, %d tensors, arena %zu bytes (activations %llu, lower bound %llu)", path,
             (int)m->prog->n_nodes, (int)m->prog->n_tensors, m->arena_bytes,
             (unsigned long long)m->prog->activation_bytes,
             (unsigned long long)m->prog->activation_lower_bound);
    return EVO_OK;
}

void cli_model_free(cli_model *m)
{
    if (m == NULL)
        return;
    evo_threads_destroy(m->threads);
    if (m->evm != NULL) {
        cli_evm_close(m->evm); /* m->prog points into it */
        free(m->evm);
    } else {
        evo_program_free(m->prog);
    }
    evo_graph_free(m->graph);
    free(m->arena);
    free(m->given_to_prog);
    memset(m, 0, sizeof *m);
}

const evo_prog_tensor *cli_model_input(const cli_model *m, int32_t i)
{
    return &m->prog->tensors[m->prog->inputs[i]];
}

const evo_prog_tensor *cli_model_output(const cli_model *m, int32_t i)
{
    return &m->prog->tensors[m->prog->outputs[i]];
}

size_t cli_model_given_index(const cli_model *m, int32_t i)
{
    for (size_t k = 0; k < m->n_given; k++)
        if (m->given_to_prog[k] == i)
            return k;
    return (size_t)i;
}

evo_status cli_model_set_input(cli_model *m, int32_t given, const cli_tensor *t, const char *path,
                               evo_error *err)
{
    int32_t i = given;
    if (m->given_to_prog != NULL && (size_t)given < m->n_given) {
        i = m->given_to_prog[given];
        /* Specialized: the program holds this value as a constant. The
         * model was loaded from this very data (check reloads per set). */
        if (i < 0)
            return EVO_OK;
    }
    if (i < 0 || i >= m->prog->n_inputs)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: the model has no input %d", m->path,
                             (int)given);
    const evo_prog_tensor *pt = cli_model_input(m, i);
    const char *label = path ? path : "given tensor";
    if (pt->dtype != t->t.dtype)
        return evo_error_set(
            err, EVO_ERR_TYPE, "%s: input %d '%s' is %s in %s but the model expects %s", m->path,
            (int)i, pt->name, evo_dtype_name(t->t.dtype), label, evo_dtype_name(pt->dtype));
    if (!evo_shape_equal(&pt->shape, &t->t.shape) || t->nbytes != pt->nbytes) {
        char want[128], got[128];
        evo_shape_format(&pt->shape, want, sizeof want);
        evo_shape_format(&t->t.shape, got, sizeof got);
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "%s: input %d '%s' has shape %s in %s but the model expects %s",
                             m->path, (int)i, pt->name, got, label, want);
    }
    if (pt->nbytes > 0)
        memcpy(evo_exec_input(&m->exec, i)->data, t->t.data, (size_t)pt->nbytes);
    return EVO_OK;
}

/* splitmix64: tiny, seedable, and good enough for test inputs. */
static uint64_t model_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void cli_model_fill_random(cli_model *m, uint64_t seed)
{
    uint64_t state = seed;
    for (int32_t i = 0; i < m->prog->n_inputs; i++) {
        const evo_prog_tensor *pt = cli_model_input(m, i);
        void *data = evo_exec_input(&m->exec, i)->data;
        size_t size = evo_dtype_size(pt->dtype);
        size_t n = size ? (size_t)pt->nbytes / size : 0;
        for (size_t k = 0; k < n; k++) {
            uint64_t r = model_rand_next(&state);
            /* 24 random bits give a float uniform in [-1, 1] */
            float f = (float)(r >> 40) / (float)(1u << 23) - 1.0f;
            int64_t small = (int64_t)(r % 10);
            switch (pt->dtype) {
            case EVO_DT_FLOAT32:
                ((float *)data)[k] = f;
                break;
            case EVO_DT_FLOAT16:
                ((uint16_t *)data)[k] = evo_f32_to_f16(f);
                break;
            case EVO_DT_INT64:
                ((int64_t *)data)[k] = small;
                break;
            case EVO_DT_INT32:
                ((int32_t *)data)[k] = (int32_t)small;
                break;
            case EVO_DT_INT8:
                ((int8_t *)data)[k] = (int8_t)small;
                break;
            case EVO_DT_BOOL:
                ((uint8_t *)data)[k] = (uint8_t)(r & 1);
                break;
            default: /* uint8 and anything byte-sized */
                memset((unsigned char *)data + k * size, (int)small, size);
                break;
            }
        }
    }
}

evo_status cli_model_run(cli_model *m, evo_error *err)
{
    int32_t failed = -1;
    evo_status rv = evo_exec_run(&m->exec, &failed);
    if (rv == EVO_OK)
        return EVO_OK;
    if (failed >= 0 && failed < m->prog->n_nodes) {
        const evo_prog_node *pn = &m->prog->nodes[failed];
        return evo_error_set(err, rv, "%s: node %d '%s' (%s) failed: %s", m->path, (int)failed,
                             pn->name ? pn->name : "", pn->op ? pn->op->name : "?",
                             evo_strerror(rv));
    }
    return evo_error_set(err, rv, "%s: inference failed: %s", m->path, evo_strerror(rv));
}
