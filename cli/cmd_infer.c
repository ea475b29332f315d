/*
 * `evo infer`: run a deployed model through the coordinator's pipeline.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_coord.h"
#include "tensor_io.h"

#define INFER_MAX_INPUTS 64

static const char infer_usage[] =
    "usage: evo infer MODEL --input FILE.pb [--input FILE.pb]... [--output-dir DIR]\n"
    "                 [--repeat N] [--window N] [--expect FILE.pb]... [--rtol R]\n"
    "                 [--atol A] [--json] [--coordinator URL]\n"
    "\n"
    "Send the inputs (in the model's input order) through the deployed stages and\n"
    "print the end-to-end latency and each stage's compute and transfer times.\n"
    "With --repeat N the requests are pipelined (up to --window in flight; default\n"
    "2 x stages + 1). If a node is lost the coordinator re-plans on the remaining\n"
    "nodes and retries; the answer or a clear error comes within bounded time.\n"
    "\n"
    "  --input FILE       a tensor file (.pb TensorProto or .npy), one per input\n"
    "  --output-dir DIR   write the outputs there as output_K.pb\n"
    "  --repeat N         run N requests (default 1)\n"
    "  --window N         requests in flight at once\n"
    "  --expect FILE      reference output K (in order): the command fails unless\n"
    "                     |got - expected| <= atol + rtol * |expected| everywhere\n"
    "  --rtol R, --atol A tolerances (default 1e-3, 1e-4)\n"
    "  --json             print the timings as JSON\n" CLI_COORD_FLAGS_HELP;

/* Compare a decoded output with a reference; returns the max abs error or
 * -1 when shapes or types differ, and counts the elements out of tolerance. */
static double infer_compare(const evo_tensor *got, const cli_tensor *want, double rtol, double atol,
                            size_t *bad)
{
    *bad = 0;
    if (got->dtype != want->t.dtype || !evo_shape_equal(&got->shape, &want->t.shape))
        return -1;
    int64_t n = evo_shape_numel(&got->shape);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a, b;
        switch (got->dtype) {
        case EVO_DT_FLOAT32:
            a = ((const float *)got->data)[i];
            b = ((const float *)want->t.data)[i];
            break;
        case EVO_DT_INT64:
            a = (double)((const int64_t *)got->data)[i];
            b = (double)((const int64_t *)want->t.data)[i];
            break;
        case EVO_DT_INT32:
            a = ((const int32_t *)got->data)[i];
            b = ((const int32_t *)want->t.data)[i];
            break;
        default:
            a = ((const uint8_t *)got->data)[i % (int64_t)want->nbytes];
            b = ((const uint8_t *)want->t.data)[i % (int64_t)want->nbytes];
        }
        if (isnan(a) && isnan(b))
            continue;
        double d = fabs(a - b);
        if (!(d <= atol + rtol * fabs(b)))
            (*bad)++;
        if (d > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static int infer_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_infer, argc, argv);
    cli_coord cc;
    cli_coord_init(&cc);
    const char *model = NULL, *outdir = NULL;
    const char *inputs[INFER_MAX_INPUTS], *expects[INFER_MAX_INPUTS];
    size_t n_inputs = 0, n_expects = 0;
    int64_t repeat = 1, window = 0;
    double rtol = 1e-3, atol = 1e-4;
    bool json = false;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc) || cli_coord_arg(&a, &cc))
            continue;
        if (cli_args_value(&a, "--input", &val)) {
            if (n_inputs == INFER_MAX_INPUTS)
                rc = cli_usage_error(a.cmd->name, "at most %d inputs", INFER_MAX_INPUTS);
            else
                inputs[n_inputs++] = val;
        } else if (cli_args_value(&a, "--expect", &val)) {
            if (n_expects == INFER_MAX_INPUTS)
                rc = cli_usage_error(a.cmd->name, "at most %d references", INFER_MAX_INPUTS);
            else
                expects[n_expects++] = val;
        } else if (cli_args_value(&a, "--output-dir", &val)) {
            outdir = val;
        } else if (cli_args_value(&a, "--repeat", &val)) {
            if (!cli_parse_i64(a.cmd, "--repeat", val, 1, 100000, &repeat))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--window", &val)) {
            if (!cli_parse_i64(a.cmd, "--window", val, 1, 1024, &window))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--rtol", &val)) {
            if (!cli_parse_double(a.cmd, "--rtol", val, 0, &rtol))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--atol", &val)) {
            if (!cli_parse_double(a.cmd, "--atol", val, 0, &atol))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && model == NULL) {
            model = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (model == NULL)
        return cli_usage_error(a.cmd->name, "no model given");
    if (n_inputs == 0)
        return cli_usage_error(a.cmd->name, "no --input given (one tensor file per model input)");

    evo_error err = {0};
    cli_tensor tens[INFER_MAX_INPUTS];
    evo_wire_tensor wts[INFER_MAX_INPUTS];
    memset(tens, 0, sizeof tens);
    memset(wts, 0, sizeof wts);
    evo_msg reply;
    memset(&reply, 0, sizeof reply);
    cJSON *doc = NULL;
    rc = CLI_EXIT_FAIL;
    for (size_t i = 0; i < n_inputs; i++) {
        if (cli_tensor_read(inputs[i], &tens[i], &err) != EVO_OK ||
            evo_wire_tensor_encode(&wts[i], tens[i].name, (int32_t)i, &tens[i].t, EVO_ENC_RAW,
                                   EVO_COMP_NONE, -1, &err) != EVO_OK)
            goto done;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    cJSON_AddNumberToObject(req, "repeat", (double)repeat);
    if (window > 0)
        cJSON_AddNumberToObject(req, "window", (double)window);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    evo_status rv = cli_coord_call(&cc, "infer", text, wts, (uint32_t)n_inputs, &reply, &doc, &err);
    free(text);
    if (rv != EVO_OK)
        goto done;

    /* Outputs: decode, write, compare. */
    bool ok = true;
    cJSON *checks = cJSON_CreateArray();
    uint32_t k = 0;
    if (outdir != NULL)
        mkdir(outdir, 0777);
    for (uint32_t i = 0; i < reply.n_tensors; i++) {
        const evo_wire_tensor *wt = &reply.tensors[i];
        if (strncmp(wt->name, "evo.", 4) == 0)
            continue;
        size_t nb = 0;
        evo_tensor t = {.dtype = wt->dtype, .shape = wt->shape};
        if (evo_wire_tensor_decoded_size(wt, wt->dtype, &nb, &err) != EVO_OK ||
            (t.data = malloc(nb ? nb : 1)) == NULL ||
            evo_wire_tensor_decode(wt, wt->dtype, t.data, nb, NULL, &err) != EVO_OK) {
            free(t.data);
            cJSON_Delete(checks);
            goto done;
        }
        if (outdir != NULL) {
            char path[4096];
            snprintf(path, sizeof path, "%s/output_%u.pb", outdir, k);
            if (cli_tensor_write_pb(path, wt->name, &t, &err) != EVO_OK) {
                free(t.data);
                cJSON_Delete(checks);
                goto done;
            }
        }
        if (k < n_expects) {
            cli_tensor want = {0};
            if (cli_tensor_read(expects[k], &want, &err) != EVO_OK) {
                free(t.data);
                cJSON_Delete(checks);
                goto done;
            }
            size_t bad = 0;
            double worst = infer_compare(&t, &want, rtol, atol, &bad);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "output", wt->name);
            cJSON_AddStringToObject(c, "reference", expects[k]);
            cJSON_AddNumberToObject(c, "max_abs_err", worst);
            cJSON_AddNumberToObject(c, "mismatches", (double)bad);
            cJSON_AddBoolToObject(c, "ok", worst >= 0 && bad == 0);
            cJSON_AddItemToArray(checks, c);
            ok &= worst >= 0 && bad == 0;
            cli_tensor_free(&want);
        }
        free(t.data);
        k++;
    }
    if (json) {
        cJSON_AddItemToObject(doc, "checks", checks);
        cli_coord_print_json(doc);
    } else {
        const cJSON *lat = cJSON_GetObjectItem(doc, "latency_ms");
        printf("evo infer %s: %.0f request(s) in %.1f ms (%.1f req/s), %.0f attempt(s), %.0f "
               "re-plan(s)\n",
               model, cli_coord_get(doc, "repeat"), cli_coord_get(doc, "total_ms"),
               cli_coord_get(doc, "throughput_rps"), cli_coord_get(doc, "attempts"),
               cli_coord_get(doc, "replans"));
        printf("end-to-end latency: mean %.2f ms, median %.2f, min %.2f, max %.2f\n",
               cli_coord_get(lat, "mean"), cli_coord_get(lat, "median"), cli_coord_get(lat, "min"),
               cli_coord_get(lat, "max"));
        printf("%-5s %-14s %12s %13s %10s\n", "STAGE", "NODE", "COMPUTE(ms)", "TRANSFER(ms)",
               "QUEUE(ms)");
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(doc, "stages"))
        {
            printf("%-5.0f %-14s %12.3f %13.3f %10.3f\n", cli_coord_get(s, "stage"),
                   cli_coord_str(s, "node"), cli_coord_get(s, "compute_ms"),
                   cli_coord_get(s, "transfer_ms"), cli_coord_get(s, "queue_ms"));
        }
        printf("%-5s %-14s %12s %13.3f\n", "out", "coordinator", "",
               cli_coord_get(doc, "return_ms"));
        const cJSON *c;
        cJSON_ArrayForEach(c, checks)
        {
            printf("output '%s' vs %s: max abs error %.3g, %s\n", cli_coord_str(c, "output"),
                   cli_coord_str(c, "reference"), cli_coord_get(c, "max_abs_err"),
                   cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")) ? "OK" : "MISMATCH");
        }
        if (outdir != NULL)
            printf("wrote %u output(s) to %s\n", k, outdir);
        cJSON_Delete(checks);
    }
    if (n_expects > k) {
        cli_error(a.cmd->name, "%zu reference(s) given but the model returned %u output(s)",
                  n_expects, k);
        ok = false;
    }
    rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (!ok)
        cli_error(a.cmd->name, "outputs do not match the reference");
done:
    if (rc != CLI_EXIT_OK && err.code != EVO_OK)
        cli_error(a.cmd->name, "%s", err.msg);
    cJSON_Delete(doc);
    evo_msg_release(&reply);
    for (size_t i = 0; i < n_inputs; i++) {
        evo_wire_tensor_clear(&wts[i]);
        cli_tensor_free(&tens[i]);
    }
    return rc;
}

const cli_command cli_cmd_infer = {
    .name = "infer",
    .summary = "run a deployed model through a coordinator's pipeline",
    .usage = infer_usage,
    .main = infer_main,
};
