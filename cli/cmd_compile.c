/*
 * `evo compile MODEL.onnx -o MODEL.evm`: import, bind dims, infer, run the
 * graph passes (docs/passes.md), plan memory and write the compact model
 * (docs/format.md) that `evo run`, `evo check` and a device load without the
 * importer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evo/evm.h"
#include "evo/modeldb.h"
#include "model.h"

static const char compile_usage[] =
    "usage: evo compile MODEL.onnx -o OUT.evm [--dim NAME=VALUE]... [--strip-names]\n"
    "                   [--no-optimize] [--no-fold-batchnorm] [--no-fuse-activation]\n"
    "                   [--no-remove-identity] [--no-dead-code]\n"
    "\n"
    "Compile a model into evo's compact format (.evm): the op table with parsed\n"
    "attributes, the memory plan and the weights, aligned so a device runs them\n"
    "in place. Shapes are fixed here: symbolic dims are bound by --dim (an unbound\n"
    "leading dim becomes 1). The graph passes (BatchNormalization folding,\n"
    "activation fusion, Identity/Dropout removal, dead-node elimination) run\n"
    "first unless switched off.\n"
    "\n"
    "  -o, --output FILE     where to write the .evm (required)\n"
    "  --dim NAME=VALUE      bind the symbolic input dim NAME (repeatable)\n"
    "  --strip-names         leave out tensor, node and op names (smaller file;\n"
    "                        errors then name tensors and nodes by number)\n"
    "  --no-optimize         run no graph pass: the .evm computes exactly what the\n"
    "                        ONNX file does in `evo run` (bitwise-equal outputs)\n"
    "  --no-fold-batchnorm, --no-fuse-activation, --no-remove-identity,\n"
    "  --no-dead-code        switch one pass off\n"
    "  -q, --quiet           no log messages;  -v, --verbose  info log messages\n";

/* The pass switches, shared with export and split (cli/cmd_export.c). */
bool cli_optimize_flag(cli_args *a, bool *optimize, evo_optimize_options *o);

static int compile_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_compile, argc, argv);
    cli_dims dims = {0};
    const char *path = NULL, *out_path = NULL;
    bool strip = false, optimize = true, no_optimize = false;
    evo_optimize_options oo = {false, false, false, false};
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--output", &val) || cli_args_value(&a, "-o", &val)) {
            out_path = val;
        } else if (cli_args_flag(&a, "--strip-names")) {
            strip = true;
        } else if (cli_args_flag(&a, "--no-optimize")) {
            no_optimize = true;
        } else if (cli_optimize_flag(&a, &optimize, &oo)) {
            continue; /* --optimize is the default; the --no-PASS switches */
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
    if (rc < 0 && out_path == NULL)
        rc = cli_usage_error(a.cmd->name, "no output file given (-o OUT.evm)");
    if (rc >= 0) {
        cli_dims_free(&dims);
        return rc;
    }

    evo_import_options iopt = {.dims = dims.items, .n_dims = dims.n};
    evo_graph *g = NULL;
    evo_program *prog = NULL;
    void *blob = NULL;
    size_t len = 0;
    evo_error err = {0};
    evo_evm_write_options wopt = {.strip_names = strip};
    evo_optimize_report rep = {0, 0, 0, 0};
    optimize = !no_optimize;
    rc = CLI_EXIT_FAIL;
    if (cli_is_evm(path))
        evo_error_set(&err, EVO_ERR_INVALID_ARG, "%s is compiled already (.evm)", path);
    else if (evo_model_import(path, &iopt, &g, &err) == EVO_OK &&
             (!optimize || evo_graph_optimize(g, &oo, &rep, &err) == EVO_OK) &&
             evo_program_build(g, NULL, &prog, &err) == EVO_OK &&
             evo_evm_write(prog, &wopt, cli_sha256, NULL, &blob, &len, &err) == EVO_OK &&
             cli_write_file(out_path, blob, len, &err) == EVO_OK)
        rc = CLI_EXIT_OK;
    if (rc == CLI_EXIT_OK) {
        char b1[32], b2[32], b3[32];
        if (optimize)
            printf("optimized: %d BatchNormalization folded, %d activations fused, %d "
                   "Identity/Dropout removed, %d dead nodes removed\n",
                   (int)rep.batchnorms_folded, (int)rep.activations_fused,
                   (int)rep.identities_removed, (int)rep.dead_nodes_removed);
        printf("wrote %s: %zu bytes (%s); %d nodes, %d tensors; weights %s; activations %s "
               "(lower bound %llu bytes)\n",
               out_path, len, cli_fmt_bytes(len, b1, sizeof b1), (int)prog->n_nodes,
               (int)prog->n_tensors, cli_fmt_bytes(prog->weights_bytes, b2, sizeof b2),
               cli_fmt_bytes(prog->activation_bytes, b3, sizeof b3),
               (unsigned long long)prog->activation_lower_bound);
    } else {
        cli_error(a.cmd->name, "%s", err.msg);
    }
    free(blob);
    evo_program_free(prog);
    evo_graph_free(g);
    cli_dims_free(&dims);
    return rc;
}

const cli_command cli_cmd_compile = {
    .name = "compile",
    .summary = "compile a model into the compact .evm format a device runs in place",
    .usage = compile_usage,
    .main = compile_main,
};
