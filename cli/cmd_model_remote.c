/*
 * `evo model add FILE --coordinator URL`: send the model file to the
 * coordinator, which imports it into its database. The local path (--db)
 * stays in cmd_model.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"
#include "tensor_io.h"

bool cli_model_is_remote(int argc, char **argv)
{
    bool has_db = getenv("EVO_DB") != NULL, has_coord = getenv("EVO_COORDINATOR") != NULL;
    bool is_add = argc > 1 && strcmp(argv[1], "add") == 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 || strncmp(argv[i], "--db=", 5) == 0)
            has_db = true;
        if (strcmp(argv[i], "--coordinator") == 0 || strncmp(argv[i], "--coordinator=", 14) == 0)
            return is_add;
    }
    return is_add && has_coord && !has_db;
}

int cli_model_add_remote(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_model, argc, argv);
    cli_coord cc;
    cli_coord_init(&cc);
    const char *path = NULL, *name = NULL;
    bool json = false, sub = false;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc) || cli_coord_arg(&a, &cc))
            continue;
        if (cli_args_value(&a, "--name", &val)) {
            name = val;
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && !sub) {
            sub = true; /* "add" */
        } else if (arg[0] != '-' && path == NULL) {
            path = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (path == NULL)
        return cli_usage_error("model", "add needs an ONNX file");
    evo_error err = {0};
    void *bytes = NULL;
    size_t len = 0;
    if (cli_read_file(path, CLI_TENSOR_FILE_MAX, &bytes, &len, &err) != EVO_OK) {
        cli_error("model", "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    /* The default name: the file name without .onnx, or the directory's
     * name for ".../NAME/model.onnx" (as the local `model add`). */
    char derived[256];
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (name == NULL && strcmp(base, "model.onnx") == 0 && base != path) {
        int dl = (int)(base - 1 - path);
        const char *d = path + dl;
        while (d > path && d[-1] != '/')
            d--;
        snprintf(derived, sizeof derived, "%.*s", (int)(path + dl - d), d);
        name = derived;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "file", base);
    if (name != NULL)
        cJSON_AddStringToObject(req, "name", name);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    evo_wire_tensor wt;
    evo_msg reply;
    cJSON *doc = NULL;
    evo_status rv =
        evo_wire_tensor_encode(&wt, "evo.blob", -1,
                               &(evo_tensor){.dtype = EVO_DT_UINT8,
                                             .shape = {.rank = 1, .dims = {(int32_t)len}},
                                             .data = bytes ? bytes : (void *)""},
                               EVO_ENC_RAW, EVO_COMP_NONE, -1, &err);
    if (rv == EVO_OK && len > (size_t)INT32_MAX)
        rv = evo_error_set(&err, EVO_ERR_LIMIT, "%s is too large to send", path);
    if (rv == EVO_OK)
        rv = cli_coord_call(&cc, "model_add", text, &wt, 1, &reply, &doc, &err);
    free(text);
    free(bytes);
    if (rv != EVO_OK) {
        cli_error("model", "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    if (json) {
        rc = cli_coord_print_json(doc);
    } else {
        printf("%s %s version %.0f (%.0f ops, %.1f MFLOP, %.1f MB of weights) at %s\n",
               cJSON_IsTrue(cJSON_GetObjectItem(doc, "existed")) ? "already have" : "added",
               cli_coord_str(doc, "name"), cli_coord_get(doc, "version"), cli_coord_get(doc, "ops"),
               cli_coord_get(doc, "flops") / 1e6, cli_coord_get(doc, "param_bytes") / 1e6,
               evo_client_default_url(cc.url));
        rc = CLI_EXIT_OK;
    }
    cJSON_Delete(doc);
    evo_msg_release(&reply);
    return rc;
}
