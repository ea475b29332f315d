/*
 * `evo export MODEL.onnx -o OUT.onnx [--optimize]`: write the model as evo
 * holds it after import (old-opset forms normalized, constant subgraphs
 * folded) and optionally after the graph passes, as a valid ONNX file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evo/modeldb.h"
#include "evo/split.h"

extern const cli_command cli_cmd_export;

static const char export_usage[] =
    "usage: evo export MODEL.onnx -o OUT.onnx [--optimize] [--dim NAME=VALUE]...\n"
    "\n"
    "Write the model back as ONNX after evo's import: shapes inferred (value_info\n"
    "for every tensor), constant subgraphs folded into initializers. Opens in\n"
    "Netron and runs in ONNX Runtime.\n"
    "\n"
    "  -o, --output OUT.onnx   the file to write (replaced atomically)\n"
    "  --optimize              run the graph passes first (BatchNormalization\n"
    "                          folding, Identity/Dropout removal, dead nodes);\n"
    "                          fused activations are written as separate nodes\n"
    "  --no-fold-batchnorm, --no-fuse-activation, --no-remove-identity,\n"
    "  --no-dead-code          switch one pass off (with --optimize)\n"
    "  --dim NAME=VALUE        bind the symbolic input dim NAME (repeatable)\n"
    "  -q, --quiet             no log messages;  -v, --verbose  info log messages\n";

/* Parse the pass switches shared by export and split. */
bool cli_optimize_flag(cli_args *a, bool *optimize, evo_optimize_options *o);
bool cli_optimize_flag(cli_args *a, bool *optimize, evo_optimize_options *o)
{
    if (cli_args_flag(a, "--optimize"))
        *optimize = true;
    else if (cli_args_flag(a, "--no-fold-batchnorm"))
        o->no_fold_batchnorm = true;
    else if (cli_args_flag(a, "--no-fuse-activation"))
        o->no_fuse_activation = true;
    else if (cli_args_flag(a, "--no-remove-identity"))
        o->no_remove_identity = true;
    else if (cli_args_flag(a, "--no-dead-code"))
        o->no_dead_code = true;
    else
        return false;
    return true;
}

static int export_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_export, argc, argv);
    cli_dims dims = {0};
    const char *path = NULL, *out = NULL;
    bool optimize = false;
    evo_optimize_options oo = {false, false, false, false};
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "-o", &val) || cli_args_value(&a, "--output", &val)) {
            out = val;
        } else if (cli_optimize_flag(&a, &optimize, &oo)) {
            continue;
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
    if (rc < 0 && (out == NULL || out[0] == '\0'))
        rc = cli_usage_error(a.cmd->name, "no output file given (-o OUT.onnx)");
    if (rc >= 0) {
        cli_dims_free(&dims);
        return rc;
    }

    evo_import_options opt = {.dims = dims.items, .n_dims = dims.n};
    evo_graph *g = NULL;
    evo_error err = {0};
    evo_optimize_report rep = {0, 0, 0, 0};
    rc = CLI_EXIT_FAIL;
    if (evo_model_import(path, &opt, &g, &err) != EVO_OK ||
        (optimize && evo_graph_optimize(g, &oo, &rep, &err) != EVO_OK) ||
        evo_onnx_export(g, out, &err) != EVO_OK) {
        cli_error(a.cmd->name, "%s", err.msg);
    } else {
        int32_t running = 0;
        for (int32_t i = 0; i < g->n_nodes; i++) {
            bool runs = false;
            for (int32_t k = 0; k < g->nodes[i].n_outputs; k++)
                if (g->nodes[i].outputs[k] >= 0 &&
                    !(g->values[g->nodes[i].outputs[k]].flags & EVO_VALUE_CONST))
                    runs = true;
            running += runs;
        }
        printf("wrote %s: %d nodes\n", out, (int)running);
        if (optimize)
            printf("optimized: %d BatchNormalization folded, %d activations fused, %d "
                   "Identity/Dropout removed, %d dead nodes removed\n",
                   (int)rep.batchnorms_folded, (int)rep.activations_fused,
                   (int)rep.identities_removed, (int)rep.dead_nodes_removed);
        rc = CLI_EXIT_OK;
    }
    evo_graph_free(g);
    cli_dims_free(&dims);
    return rc;
}

const cli_command cli_cmd_export = {
    .name = "export",
    .summary = "write a model (optionally optimized) back as ONNX",
    .usage = export_usage,
    .main = export_main,
};
