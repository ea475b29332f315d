/*
 * `evo run MODEL`: run a model once or several times on given or random
 * inputs, report outputs, timings and memory, optionally write the outputs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "model.h"

static const char run_usage[] =
    "usage: evo run MODEL [--input FILE]... [--dim NAME=VALUE]... [--output-dir DIR]\n"
    "               [--repeat N] [--seed N] [--threads N] [--json] [--no-optimize]\n"
    "\n"
    "Run a model (ONNX) on the CPU with one exactly sized arena.\n"
    "\n"
    "  --input FILE      an input tensor, .pb (onnx.TensorProto) or .npy, one per\n"
    "                    graph input in graph-input order; its shape binds the\n"
    "                    input's symbolic dims. Without --input, inputs are\n"
    "                    seeded random data (floats in [-1,1], integers in [0,9])\n"
    "  --dim NAME=VALUE  bind the symbolic input dim NAME (repeatable)\n"
    "  --output-dir DIR  write output_K.pb (onnx.TensorProto) for each output\n"
    "  --repeat N        run N times and report min/median/mean time (default 1)\n"
    "  --seed N          seed for random inputs (default 1)\n"
    "  --threads N       split big Convs over N threads (default 1)\n"
    "  --no-optimize     skip the graph passes (BatchNorm folding, activation\n"
    "                    fusion, Identity removal, dead code) that run by default\n"
    "  --json            print one JSON line instead of text\n"
    "  -q, --quiet       no log messages;  -v, --verbose  info log messages\n";

#define RUN_MAX_REPEAT 1000000

static int run_cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* Element i of a tensor as a double, for display. */
static double run_elem(const evo_tensor *t, size_t i)
{
    switch (t->dtype) {
    case EVO_DT_FLOAT32:
        return ((const float *)t->data)[i];
    case EVO_DT_FLOAT16:
        return evo_f16_to_f32(((const uint16_t *)t->data)[i]);
    case EVO_DT_INT64:
        return (double)((const int64_t *)t->data)[i];
    case EVO_DT_INT32:
        return ((const int32_t *)t->data)[i];
    case EVO_DT_INT8:
        return ((const int8_t *)t->data)[i];
    case EVO_DT_UINT8:
    case EVO_DT_BOOL:
        return ((const uint8_t *)t->data)[i];
    default:
        return 0;
    }
}

static cJSON *run_json_tensor(const char *name, const evo_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "dtype", evo_dtype_name(t->dtype));
    cJSON *s = cJSON_AddArrayToObject(o, "shape");
    for (int32_t d = 0; d < t->shape.rank; d++)
        cJSON_AddItemToArray(s, cJSON_CreateNumber(t->shape.dims[d]));
    return o;
}

/* Create dir if it does not exist yet (one level, like mkdir). */
static evo_status run_make_dir(const char *dir, evo_error *err)
{
    struct stat st;
    if (mkdir(dir, 0777) == 0)
        return EVO_OK;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return EVO_OK;
    return evo_error_set(err, EVO_ERR_IO, "%s: cannot create the output directory: %s", dir,
                         strerror(errno == EEXIST ? ENOTDIR : errno));
}

static evo_status run_write_outputs(cli_model *m, const char *dir, evo_error *err)
{
    evo_status rv = run_make_dir(dir, err);
    for (int32_t k = 0; rv == EVO_OK && k < m->prog->n_outputs; k++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/output_%d.pb", dir, (int)k) >= (int)sizeof path)
            return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: output directory name is too long",
                                 dir);
        rv = cli_tensor_write_pb(path, cli_model_output(m, k)->name, evo_exec_output(&m->exec, k),
                                 err);
    }
    return rv;
}

static void run_print_text(const cli_model *m, const char *const *inputs, size_t n_inputs,
                           uint64_t seed, const double *ms, int64_t repeat, double mean,
                           const char *outdir)
{
    char b1[32], b2[32], b3[32], b4[32];
    const evo_program *p = m->prog;
    printf("model:    %s\n", m->path);
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const evo_prog_tensor *pt = cli_model_input(m, i);
        char shape[128];
        evo_shape_format(&pt->shape, shape, sizeof shape);
        printf("input %d:  %s %s %s", (int)i, pt->name, evo_dtype_name(pt->dtype), shape);
        if (n_inputs > 0)
            printf(" from %s\n", inputs[cli_model_given_index(m, i)]);
        else
            printf(" random (seed %llu)\n", (unsigned long long)seed);
    }
    for (int32_t k = 0; k < p->n_outputs; k++) {
        const evo_prog_tensor *pt = cli_model_output(m, k);
        const evo_tensor *t = evo_exec_output(&m->exec, k);
        char shape[128];
        evo_shape_format(&t->shape, shape, sizeof shape);
        printf("output %d: %s %s %s:", (int)k, pt->name, evo_dtype_name(t->dtype), shape);
        int64_t numel = evo_shape_numel(&t->shape);
        size_t show = numel > 8 ? 8 : (size_t)(numel < 0 ? 0 : numel);
        for (size_t i = 0; i < show; i++)
            printf(" %.6g", run_elem(t, i));
        if ((int64_t)show < numel)
            printf(" ... (%lld values)", (long long)numel);
        printf("\n");
    }
    printf("time:     %lld run%s: min %.4g ms, median %.4g ms, mean %.4g ms\n", (long long)repeat,
           repeat == 1 ? "" : "s", ms[0], ms[repeat / 2], mean);
    printf("memory:   arena %s (%zu bytes); activations %s planned, lower bound %s; weights %s\n",
           cli_fmt_bytes(m->arena_bytes, b1, sizeof b1), m->arena_bytes,
           cli_fmt_bytes(p->activation_bytes, b2, sizeof b2),
           cli_fmt_bytes(p->activation_lower_bound, b3, sizeof b3),
           cli_fmt_bytes(p->weights_bytes, b4, sizeof b4));
    if (outdir != NULL && p->n_outputs == 1)
        printf("written:  %s/output_0.pb\n", outdir);
    else if (outdir != NULL && p->n_outputs > 1)
        printf("written:  %s/output_0.pb .. output_%d.pb\n", outdir, (int)p->n_outputs - 1);
}

static int run_print_json(const cli_model *m, const double *ms, int64_t repeat, double mean,
                          uint64_t seed, size_t n_inputs)
{
    const evo_program *p = m->prog;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->path);
    cJSON_AddNumberToObject(o, "runs", (double)repeat);
    cJSON_AddNumberToObject(o, "ms_min", ms[0]);
    cJSON_AddNumberToObject(o, "ms_median", ms[repeat / 2]);
    cJSON_AddNumberToObject(o, "ms_mean", mean);
    cJSON_AddNumberToObject(o, "arena_bytes", (double)m->arena_bytes);
    cJSON_AddNumberToObject(o, "activation_bytes", (double)p->activation_bytes);
    cJSON_AddNumberToObject(o, "arena_lower_bound", (double)p->activation_lower_bound);
    cJSON_AddNumberToObject(o, "weights_bytes", (double)p->weights_bytes);
    if (n_inputs == 0)
        cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON *ins = cJSON_AddArrayToObject(o, "inputs");
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const evo_prog_tensor *pt = cli_model_input(m, i);
        evo_tensor t = {pt->dtype, pt->shape, NULL};
        cJSON_AddItemToArray(ins, run_json_tensor(pt->name, &t));
    }
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    for (int32_t k = 0; k < p->n_outputs; k++)
        cJSON_AddItemToArray(
            outs, run_json_tensor(cli_model_output(m, k)->name, evo_exec_output(&m->exec, k)));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        cli_error("run", "%s: out of memory while writing JSON", m->path);
        return CLI_EXIT_FAIL;
    }
    puts(text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}

static int run_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_run, argc, argv);
    cli_dims dims = {0};
    const char *path = NULL, *outdir = NULL;
    const char **inputs = calloc((size_t)argc, sizeof *inputs); /* at most one per argument */
    size_t n_inputs = 0;
    int64_t repeat = 1, seed = 1, threads = 1;
    bool json = false, no_optimize = false;
    int rc = inputs ? -1 : CLI_EXIT_FAIL;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--input", &val)) {
            inputs[n_inputs++] = val;
        } else if (cli_args_value(&a, "--output-dir", &val)) {
            outdir = val;
        } else if (cli_args_value(&a, "--repeat", &val)) {
            if (!cli_parse_i64(a.cmd, "--repeat", val, 1, RUN_MAX_REPEAT, &repeat))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--threads", &val)) {
            if (!cli_parse_i64(a.cmd, "--threads", val, 1, EVO_THREADS_MAX, &threads))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--seed", &val)) {
            if (!cli_parse_i64(a.cmd, "--seed", val, 0, INT64_MAX, &seed))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
        } else if (cli_args_flag(&a, "--no-optimize")) {
            no_optimize = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && path == NULL) {
            path = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc < 0 && path == NULL)
        rc = cli_usage_error(a.cmd->name, "no model given");
    if (rc >= 0) {
        free(inputs);
        cli_dims_free(&dims);
        return rc;
    }

    rc = CLI_EXIT_FAIL;
    evo_error err = {0};
    cli_tensor *tensors = calloc(n_inputs + 1, sizeof *tensors);
    double *ms = calloc((size_t)repeat, sizeof *ms);
    cli_model m = {0};
    if (tensors == NULL || ms == NULL) {
        evo_error_set(&err, EVO_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_inputs; i++)
        if (cli_tensor_read(inputs[i], &tensors[i], &err) != EVO_OK)
            goto fail;
    cli_model_options mopt = {.no_optimize = no_optimize,
                              .threads = (int32_t)threads,
                              .dims = dims.items,
                              .n_dims = dims.n,
                              .inputs = tensors,
                              .n_inputs = n_inputs,
                              .input_paths = inputs};
    if (cli_model_load(path, &mopt, &m, &err) != EVO_OK)
        goto fail;
    if (n_inputs == 0)
        cli_model_fill_random(&m, (uint64_t)seed);
    for (size_t i = 0; i < n_inputs; i++)
        if (cli_model_set_input(&m, (int32_t)i, &tensors[i], inputs[i], &err) != EVO_OK)
            goto fail;

    double total = 0;
    for (int64_t r = 0; r < repeat; r++) {
        double t0 = cli_now_ms();
        if (cli_model_run(&m, &err) != EVO_OK)
            goto fail;
        ms[r] = cli_now_ms() - t0;
        total += ms[r];
    }
    qsort(ms, (size_t)repeat, sizeof *ms, run_cmp_double);
    if (outdir != NULL && run_write_outputs(&m, outdir, &err) != EVO_OK)
        goto fail;
    if (json) {
        rc = run_print_json(&m, ms, repeat, total / (double)repeat, (uint64_t)seed, n_inputs);
    } else {
        run_print_text(&m, inputs, n_inputs, (uint64_t)seed, ms, repeat, total / (double)repeat,
                       outdir);
        rc = CLI_EXIT_OK;
    }
fail:
    if (rc != CLI_EXIT_OK && err.code != EVO_OK)
        cli_error(a.cmd->name, "%s", err.msg);
    cli_model_free(&m);
    for (size_t i = 0; tensors && i < n_inputs; i++)
        cli_tensor_free(&tensors[i]);
    free(tensors);
    free(ms);
    free(inputs);
    cli_dims_free(&dims);
    return rc;
}

const cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run a model on given or random inputs; outputs, timing, memory",
    .usage = run_usage,
    .main = run_main,
};
