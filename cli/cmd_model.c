/*
 * `evo model add|list|show|rm`: manage the models in a model database
 * (include/evo/db.h, docs/modeldb.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "evo/db.h"
#include "cli_coord.h"

static const char model_usage[] =
    "usage: evo model add FILE.onnx [--name NAME] [--dim NAME=VALUE]... --db FILE [--json]\n"
    "       evo model add FILE.onnx [--name NAME] --coordinator URL [--token T] [--json]\n"
    "       evo model list --db FILE [--json]\n"
    "       evo model show NAME [--version N] --db FILE [--json]\n"
    "       evo model rm NAME [--version N] --db FILE\n"
    "\n"
    "Keep models in a model database (one SQLite file, created on first use).\n"
    "\n"
    "  add    import an ONNX file and store it with its per-op facts (shapes, FLOPs,\n"
    "         bytes). The name defaults to the file name without .onnx (for\n"
    "         DIR/model.onnx: DIR). The same file (and --dim options) under the\n"
    "         same name is stored once; a different file becomes the next version.\n"
    "  list   every version of every model\n"
    "  show   one model (the latest version unless --version): signature, totals,\n"
    "         per-op facts and measured latencies per device class\n"
    "  rm     remove a model (all versions unless --version) and its profiles,\n"
    "         artifacts and plans\n"
    "\n"
    "  --db FILE         the database (default: $EVO_DB)\n"
    "  --name NAME       the model's name (add)\n"
    "  --dim NAME=VALUE  bind a symbolic input dim before inference (add; repeatable)\n"
    "  --version N       one version (show, rm)\n"
    "  --json            print JSON instead of text\n"
    "  -q, --quiet       no log messages;  -v, --verbose  info log messages\n";

typedef struct model_args {
    const char *sub;    /* add, list, show, rm */
    const char *target; /* FILE for add, NAME for show and rm */
    const char *db_path;
    const char *name;
    int64_t version;
    bool json;
    cli_dims dims;
} model_args;

static const char *model_sub_name(const char *sub)
{
    static const char *const subs[] = {"add", "list", "show", "rm"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i]) == 0)
            return subs[i];
    if (strcmp(sub, "remove") == 0)
        return "rm";
    return NULL;
}

static int model_parse(int argc, char **argv, model_args *ma)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_model, argc, argv);
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--db", &val)) {
            ma->db_path = val;
        } else if (cli_args_value(&a, "--name", &val)) {
            ma->name = val;
        } else if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &ma->dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--version", &val)) {
            if (!cli_parse_i64(a.cmd, "--version", val, 1, INT64_MAX, &ma->version))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            ma->json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && ma->sub == NULL) {
            if ((ma->sub = model_sub_name(arg)) == NULL)
                rc = cli_usage_error(a.cmd->name, "unknown subcommand '%s' (add, list, show, rm)",
                                     arg);
        } else if (arg[0] != '-' && ma->target == NULL && strcmp(ma->sub, "list") != 0) {
            ma->target = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (ma->sub == NULL)
        return cli_usage_error("model", "no subcommand given (add, list, show, rm)");
    if (ma->db_path == NULL && (ma->db_path = getenv("EVO_DB")) == NULL)
        return cli_usage_error("model", "no database given: use --db FILE or set EVO_DB");
    bool is_add = strcmp(ma->sub, "add") == 0;
    if (ma->target == NULL && strcmp(ma->sub, "list") != 0)
        return cli_usage_error("model", "%s needs %s", ma->sub, is_add ? "an ONNX file" : "a name");
    if (!is_add && (ma->name != NULL || ma->dims.n > 0))
        return cli_usage_error("model", "--name and --dim are options of 'model add'");
    if (ma->version > 0 && strcmp(ma->sub, "show") != 0 && strcmp(ma->sub, "rm") != 0)
        return cli_usage_error("model", "--version is an option of 'model show' and 'model rm'");
    return -1;
}

/* ---------------------------------------------------------------- printing */

static cJSON *model_parse_json(const char *text)
{
    cJSON *j = cJSON_Parse(text ? text : "null");
    return j ? j : cJSON_CreateNull();
}

static cJSON *model_json(const evo_db_model *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)m->id);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "version", (double)m->version);
    cJSON_AddStringToObject(o, "sha256", m->sha256);
    cJSON_AddStringToObject(o, "source_path", m->source_path);
    cJSON_AddItemToObject(o, "import_options", model_parse_json(m->import_options));
    cJSON_AddItemToObject(o, "inputs", model_parse_json(m->inputs));
    cJSON_AddItemToObject(o, "outputs", model_parse_json(m->outputs));
    cJSON_AddNumberToObject(o, "n_ops", (double)m->n_ops);
    cJSON_AddNumberToObject(o, "flops", (double)m->flops);
    cJSON_AddNumberToObject(o, "param_bytes", (double)m->param_bytes);
    cJSON_AddStringToObject(o, "created_at", m->created_at);
    return o;
}

static int model_print_json(cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        cli_error("model", "out of memory while writing JSON");
        return CLI_EXIT_FAIL;
    }
    puts(text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}

/* A signature JSON array as "name dtype [shape], ..." on one line. */
static void model_print_signature(const char *label, const char *json)
{
    cJSON *a = cJSON_Parse(json ? json : "[]");
    printf("%-12s", label);
    int i = 0;
    for (cJSON *t = a ? a->child : NULL; t; t = t->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        char *sh = shape ? cJSON_PrintUnformatted(shape) : NULL;
        printf("%s%s %s %s", i ? ", " : "", cJSON_IsString(name) ? name->valuestring : "?",
               cJSON_IsString(dtype) ? dtype->valuestring : "?", sh ? sh : "?");
        cJSON_free(sh);
    }
    printf("\n");
    cJSON_Delete(a);
}

/* ---------------------------------------------------------------- subcommands */

static int model_add(evo_db *db, const model_args *ma, evo_error *err)
{
    evo_import_options opt = {.dims = ma->dims.items, .n_dims = ma->dims.n};
    evo_db_model m;
    bool existed = false;
    if (evo_db_model_add(db, ma->target, ma->name, &opt, &m, &existed, err) != EVO_OK)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    if (ma->json) {
        cJSON *o = model_json(&m);
        cJSON_AddBoolToObject(o, "existed", existed);
        rc = model_print_json(o);
    } else {
        char b[32];
        printf("%s %s version %lld: %lld ops, %.4g GFLOPs, parameters %s, sha256 %.16s\n",
               existed ? "unchanged:" : "added", m.name, (long long)m.version, (long long)m.n_ops,
               (double)m.flops / 1e9, cli_fmt_bytes(m.param_bytes, b, sizeof b), m.sha256);
    }
    evo_db_model_free(&m);
    return rc;
}

static int model_list(evo_db *db, const model_args *ma, evo_error *err)
{
    evo_db_model *list;
    size_t n;
    if (evo_db_model_list(db, &list, &n, err) != EVO_OK)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    if (ma->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(a, model_json(&list[i]));
        rc = model_print_json(a);
    } else if (n == 0) {
        printf("no models\n");
    } else {
        printf("%-24s %7s %6s %9s %10s  %-16s  %s\n", "name", "version", "ops", "GFLOPs", "params",
               "sha256", "added (UTC)");
        for (size_t i = 0; i < n; i++) {
            char b[32];
            printf("%-24s %7lld %6lld %9.4f %10s  %.16s  %s\n", list[i].name,
                   (long long)list[i].version, (long long)list[i].n_ops,
                   (double)list[i].flops / 1e9, cli_fmt_bytes(list[i].param_bytes, b, sizeof b),
                   list[i].sha256, list[i].created_at);
        }
    }
    evo_db_model_list_free(list, n);
    return rc;
}

static cJSON *model_op_json(const evo_db_op *o, const double *measured, size_t n_classes,
                            char **classes)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "idx", o->idx);
    cJSON_AddStringToObject(j, "name", o->name);
    cJSON_AddStringToObject(j, "op", o->op);
    cJSON_AddStringToObject(j, "kind", evo_op_kind_name(o->kind));
    cJSON_AddItemToObject(j, "in_shapes", model_parse_json(o->in_shapes));
    cJSON_AddItemToObject(j, "out_shapes", model_parse_json(o->out_shapes));
    cJSON_AddNumberToObject(j, "flops", (double)o->flops);
    cJSON_AddNumberToObject(j, "in_bytes", (double)o->in_bytes);
    cJSON_AddNumberToObject(j, "out_bytes", (double)o->out_bytes);
    cJSON_AddNumberToObject(j, "param_bytes", (double)o->param_bytes);
    if (n_classes > 0) {
        cJSON *lat = cJSON_AddObjectToObject(j, "median_us");
        for (size_t c = 0; c < n_classes; c++)
            if (measured[c] >= 0)
                cJSON_AddNumberToObject(lat, classes[c], measured[c]);
    }
    return j;
}

static int model_show(evo_db *db, const model_args *ma, evo_error *err)
{
    evo_db_model m = {0};
    evo_db_op *ops = NULL;
    size_t n_ops = 0, n_classes = 0, n_prof = 0;
    char **classes = NULL;
    evo_profile *prof = NULL; /* one per class that measured this model */
    size_t *prof_class = NULL;
    double *measured = NULL;
    int rc = CLI_EXIT_FAIL;
    if (evo_db_model_get(db, ma->target, ma->version, &m, err) != EVO_OK ||
        evo_db_model_ops(db, m.id, &ops, &n_ops, err) != EVO_OK ||
        evo_db_device_classes(db, &classes, &n_classes, err) != EVO_OK)
        goto done;
    prof = calloc(n_classes + 1, sizeof *prof);
    prof_class = calloc(n_classes + 1, sizeof *prof_class);
    measured = malloc((n_classes + 1) * sizeof *measured);
    if (!prof || !prof_class || !measured) {
        evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < n_classes; c++) {
        evo_error e2 = {0};
        if (evo_db_profile_get(db, m.id, classes[c], NULL, &prof[n_prof], &e2) == EVO_OK) {
            prof_class[n_prof++] = c;
        } else if (e2.code != EVO_ERR_NOT_FOUND) {
            *err = e2;
            goto done;
        }
    }
    if (ma->json) {
        cJSON *o = model_json(&m);
        cJSON *profiles = cJSON_AddArrayToObject(o, "profiles");
        char **pclasses = malloc((n_prof + 1) * sizeof *pclasses);
        for (size_t p = 0; p < n_prof; p++) {
            cJSON *pj = cJSON_CreateObject();
            cJSON_AddStringToObject(pj, "device_class", classes[prof_class[p]]);
            cJSON_AddNumberToObject(pj, "e2e_median_us", prof[p].e2e_median_us);
            cJSON_AddNumberToObject(pj, "op_sum_us", prof[p].op_sum_us);
            cJSON_AddNumberToObject(pj, "repeats", prof[p].repeats);
            cJSON_AddItemToArray(profiles, pj);
            if (pclasses)
                pclasses[p] = classes[prof_class[p]];
        }
        cJSON *ja = cJSON_AddArrayToObject(o, "ops");
        for (size_t i = 0; i < n_ops; i++) {
            for (size_t p = 0; p < n_prof; p++) {
                int64_t k = (int64_t)ops[i].idx - prof[p].first;
                measured[p] = k >= 0 && k < prof[p].n_ops ? prof[p].op_median_us[k] : -1;
            }
            cJSON_AddItemToArray(ja,
                                 model_op_json(&ops[i], measured, pclasses ? n_prof : 0, pclasses));
        }
        free(pclasses);
        rc = model_print_json(o);
        goto done;
    }
    char b[32];
    printf("model:      %s version %lld (id %lld)\n", m.name, (long long)m.version,
           (long long)m.id);
    printf("sha256:     %s\n", m.sha256);
    printf("source:     %s\n", m.source_path);
    printf("options:    %s\n", m.import_options);
    printf("added:      %s UTC\n", m.created_at);
    model_print_signature("inputs:", m.inputs);
    model_print_signature("outputs:", m.outputs);
    printf("ops:        %lld\n", (long long)m.n_ops);
    printf("compute:    %.4f GFLOPs\n", (double)m.flops / 1e9);
    printf("parameters: %s (%llu bytes)\n", cli_fmt_bytes(m.param_bytes, b, sizeof b),
           (unsigned long long)m.param_bytes);
    if (n_prof == 0)
        printf("profiles:   none\n");
    for (size_t p = 0; p < n_prof; p++)
        printf("profile:    %s: %.4g ms end to end (median of %d), ops sum %.4g ms\n",
               classes[prof_class[p]], prof[p].e2e_median_us / 1e3, (int)prof[p].repeats,
               prof[p].op_sum_us / 1e3);
    printf("\n%5s  %-18s %-11s %10s %10s %10s %10s", "#", "op", "kind", "MFLOPs", "in", "out",
           "params");
    if (n_prof > 0)
        printf(" %10s", "median us");
    printf("  %s\n", "name");
    for (size_t i = 0; i < n_ops; i++) {
        const evo_db_op *o = &ops[i];
        char bi[32], bo[32], bp[32];
        printf("%5d  %-18s %-11s %10.3f %10s %10s %10s", (int)o->idx, o->op,
               evo_op_kind_name(o->kind), (double)o->flops / 1e6,
               cli_fmt_bytes(o->in_bytes, bi, sizeof bi),
               cli_fmt_bytes(o->out_bytes, bo, sizeof bo),
               cli_fmt_bytes(o->param_bytes, bp, sizeof bp));
        if (n_prof > 0) {
            int64_t k = (int64_t)o->idx - prof[0].first;
            if (k >= 0 && k < prof[0].n_ops)
                printf(" %10.2f", prof[0].op_median_us[k]);
            else
                printf(" %10s", "-");
        }
        printf("  %s\n", o->name);
    }
    if (n_prof > 1)
        printf("(median us: device class %s)\n", classes[prof_class[0]]);
    rc = CLI_EXIT_OK;
done:
    for (size_t p = 0; prof && p < n_prof; p++)
        evo_profile_free(&prof[p]);
    free(prof);
    free(prof_class);
    free(measured);
    evo_db_names_free(classes, n_classes);
    evo_db_ops_free(ops, n_ops);
    evo_db_model_free(&m);
    return rc;
}

static int model_rm(evo_db *db, const model_args *ma, evo_error *err)
{
    int64_t n = 0;
    if (evo_db_model_remove(db, ma->target, ma->version, &n, err) != EVO_OK)
        return CLI_EXIT_FAIL;
    if (ma->version > 0)
        printf("removed %s version %lld\n", ma->target, (long long)ma->version);
    else
        printf("removed %s (%lld version%s)\n", ma->target, (long long)n, n == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

static int model_main(int argc, char **argv)
{
    /* `model add` via a coordinator: cli/cmd_model_remote.c. */
    if (cli_model_is_remote(argc, argv))
        return cli_model_add_remote(argc, argv);
    model_args ma = {0};
    int rc = model_parse(argc, argv, &ma);
    if (rc >= 0) {
        cli_dims_free(&ma.dims);
        return rc;
    }
    evo_error err = {0};
    evo_db *db = NULL;
    rc = CLI_EXIT_FAIL;
    if (evo_db_open(ma.db_path, &db, &err) == EVO_OK) {
        if (strcmp(ma.sub, "add") == 0)
            rc = model_add(db, &ma, &err);
        else if (strcmp(ma.sub, "list") == 0)
            rc = model_list(db, &ma, &err);
        else if (strcmp(ma.sub, "show") == 0)
            rc = model_show(db, &ma, &err);
        else
            rc = model_rm(db, &ma, &err);
    }
    if (rc != CLI_EXIT_OK && err.code != EVO_OK)
        cli_error("model", "%s", err.msg);
    evo_db_close(db);
    cli_dims_free(&ma.dims);
    return rc;
}

const cli_command cli_cmd_model = {
    .name = "model",
    .summary = "add, list, show and remove models in a model database",
    .usage = model_usage,
    .main = model_main,
};
