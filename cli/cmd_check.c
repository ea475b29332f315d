/*
 * `evo check DIR...`: run ONNX test directories (model.onnx +
 * test_data_set_N/{input,output}_K.pb) and compare with the reference outputs.
 *
 * Each directory runs in a forked child that reports a fixed-size result
 * through a pipe, so a crash or a hang in evo (or in a hostile model) becomes
 * a FAIL line for that directory, never the end of the whole run.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "model.h"

static const char check_usage[] =
    "usage: evo check DIR... [--rtol R] [--atol A] [--timeout SEC] [--threads N] [--json]\n"
    "                 [--no-optimize]\n"
    "\n"
    "Run ONNX test directories (DIR/model.onnx and DIR/test_data_set_N/\n"
    "{input,output}_K.pb) and compare evo's outputs with the expected ones.\n"
    "A compiled DIR/model.evm is used when there is no model.onnx.\n"
    "Floats match when |got - expected| <= atol + rtol * |expected| (NaN matches\n"
    "NaN); integers and bools must be equal; shapes and dtypes must match.\n"
    "Prints PASS/FAIL/SKIP per DIR and 'N passed, M failed, K skipped'.\n"
    "SKIP means evo does not support something the test uses.\n"
    "\n"
    "  --rtol R       relative tolerance (default 1e-3)\n"
    "  --atol A       absolute tolerance (default 1e-4)\n"
    "  --timeout SEC  limit per DIR; a DIR that takes longer FAILs (default 60,\n"
    "                 0 = no limit)\n"
    "  --json         one JSON object per line per DIR, then a summary object\n"
    "  --no-optimize  skip the default graph passes (fusion, folding...)\n"
    "  --threads N    split big Convs over N threads (default 1)\n"
    "  -q, --quiet    no log messages;  -v, --verbose  info log messages\n"
    "\n"
    "Exit status 0 if nothing failed, 1 otherwise, 2 for a usage error.\n";

#define CHECK_MAX_TENSORS 1024 /* input_K.pb / output_K.pb files per data set */
#define CHECK_MAX_SETS 10000

typedef enum check_kind { CHECK_PASS, CHECK_FAIL, CHECK_SKIP } check_kind;
static const char *const check_kind_names[] = {"PASS", "FAIL", "SKIP"};

/* What a child sends its parent: fixed size, so one write() delivers it. */
typedef struct check_result {
    int32_t kind;      /* check_kind */
    int32_t data_sets; /* data sets compared */
    double ms;         /* inference time summed over data sets */
    char reason[EVO_ERROR_MSG_MAX + 200];
} check_result;

typedef struct check_options {
    double rtol, atol, timeout_s;
    bool no_optimize;
    int64_t threads;
} check_options;

static check_kind check_kind_of(evo_status rv)
{
    return rv == EVO_ERR_UNSUPPORTED ? CHECK_SKIP : CHECK_FAIL;
}

static bool check_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------- comparison */

static double check_elem_f(const evo_tensor *t, size_t i)
{
    if (t->dtype == EVO_DT_FLOAT16)
        return evo_f16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}

static long long check_elem_i(const evo_tensor *t, size_t i)
{
    switch (t->dtype) {
    case EVO_DT_INT64:
        return ((const int64_t *)t->data)[i];
    case EVO_DT_INT32:
        return ((const int32_t *)t->data)[i];
    case EVO_DT_INT8:
        return ((const int8_t *)t->data)[i];
    default: /* uint8, bool */
        return ((const uint8_t *)t->data)[i];
    }
}

/* Compare output k; on mismatch write the worst element into reason. */
static bool check_compare(const evo_tensor *got, const cli_tensor *want, int32_t k, const char *set,
                          const check_options *o, check_result *res)
{
    char gs[128], ws[128];
    if (got->dtype != want->t.dtype) {
        snprintf(res->reason, sizeof res->reason, "%soutput %d: dtype %s, expected %s", set, (int)k,
                 evo_dtype_name(got->dtype), evo_dtype_name(want->t.dtype));
        return false;
    }
    if (!evo_shape_equal(&got->shape, &want->t.shape)) {
        evo_shape_format(&got->shape, gs, sizeof gs);
        evo_shape_format(&want->t.shape, ws, sizeof ws);
        snprintf(res->reason, sizeof res->reason, "%soutput %d: shape %s, expected %s", set, (int)k,
                 gs, ws);
        return false;
    }
    size_t n = (size_t)evo_shape_numel(&got->shape), bad = 0, worst = 0;
    bool is_float = got->dtype == EVO_DT_FLOAT32 || got->dtype == EVO_DT_FLOAT16;
    double worst_excess = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_float) {
            double a = check_elem_f(got, i), b = check_elem_f(&want->t, i);
            if ((isnan(a) && isnan(b)) || a == b)
                continue;
            double tol = o->atol + o->rtol * fabs(b);
            double diff = fabs(a - b);
            if (diff <= tol) /* false for NaN against a number */
                continue;
            double excess = isnan(diff) || isinf(diff) ? INFINITY : diff / (tol > 0 ? tol : 1e-300);
            if (bad == 0 || excess > worst_excess) {
                worst_excess = excess;
                worst = i;
            }
            bad++;
        } else if (check_elem_i(got, i) != check_elem_i(&want->t, i)) {
            if (bad++ == 0)
                worst = i;
        }
    }
    if (bad == 0)
        return true;
    if (is_float)
        snprintf(res->reason, sizeof res->reason,
                 "%soutput %d index %zu got %.9g expected %.9g (%zu of %zu values differ)", set,
                 (int)k, worst, check_elem_f(got, worst), check_elem_f(&want->t, worst), bad, n);
    else
        snprintf(res->reason, sizeof res->reason,
                 "%soutput %d index %zu got %lld expected %lld (%zu of %zu values differ)", set,
                 (int)k, worst, check_elem_i(got, worst), check_elem_i(&want->t, worst), bad, n);
    return false;
}

/* ---------------------------------------------------------------- one directory (child) */

typedef struct check_set {
    cli_tensor *in, *out;
    char **in_paths;
    size_t n_in, n_out;
} check_set;

static void check_set_free(check_set *s)
{
    for (size_t i = 0; i < s->n_in; i++) {
        cli_tensor_free(&s->in[i]);
        free(s->in_paths[i]);
    }
    for (size_t i = 0; i < s->n_out; i++)
        cli_tensor_free(&s->out[i]);
    free(s->in);
    free(s->out);
    free(s->in_paths);
    memset(s, 0, sizeof *s);
}

/* Read prefix_K.pb for K = 0, 1, ... until one is missing. */
static evo_status check_read_tensors(const char *set_dir, const char *prefix, cli_tensor **out,
                                     char ***paths, size_t *n, evo_error *err)
{
    *n = 0;
    *out = calloc(CHECK_MAX_TENSORS, sizeof **out);
    if (paths != NULL)
        *paths = calloc(CHECK_MAX_TENSORS, sizeof **paths);
    if (*out == NULL || (paths != NULL && *paths == NULL))
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < CHECK_MAX_TENSORS; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_%zu.pb", set_dir, prefix, k);
        if (!check_exists(path))
            return EVO_OK;
        evo_status rv = cli_tensor_read(path, &(*out)[k], err);
        if (rv != EVO_OK)
            return rv;
        if (paths != NULL && ((*paths)[k] = strdup(path)) == NULL) {
            cli_tensor_free(&(*out)[k]);
            return evo_error_set(err, EVO_ERR_NOMEM, "out of memory");
        }
        (*n)++;
    }
    return evo_error_set(err, EVO_ERR_LIMIT, "%s: more than %d %s files", set_dir,
                         CHECK_MAX_TENSORS, prefix);
}

/* A model must be reloaded when a data set's input shapes differ from the
 * ones its symbolic dims were bound with. */
static bool check_same_shapes(const cli_model *m, const check_set *s)
{
    if (m->prog == NULL || m->n_specialized > 0 || (size_t)m->prog->n_inputs != s->n_in)
        return false;
    for (size_t i = 0; i < s->n_in; i++)
        if (!evo_shape_equal(&cli_model_input(m, (int32_t)i)->shape, &s->in[i].t.shape))
            return false;
    return true;
}

static void check_fail(check_result *res, check_kind kind, const char *msg)
{
    res->kind = kind;
    snprintf(res->reason, sizeof res->reason, "%s", msg);
}

static void check_dir(const char *dir, const check_options *o, check_result *res)
{
    char model_path[4096];
    evo_error err = {0};
    cli_model m = {0};
    memset(res, 0, sizeof *res);
    res->kind = CHECK_PASS;
    int dl = (int)strlen(dir); /* "dir/" and "dir" name the same files */
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    snprintf(model_path, sizeof model_path, "%.*s/model.onnx", dl, dir);
    if (!check_exists(model_path)) {
        /* A compiled model stands in for the ONNX one (same test data). */
        snprintf(model_path, sizeof model_path, "%.*s/model.evm", dl, dir);
        if (!check_exists(model_path)) {
            check_fail(res, CHECK_FAIL, "no model.onnx or model.evm in the directory");
            return;
        }
    }
    for (int32_t n = 0; n < CHECK_MAX_SETS && res->kind == CHECK_PASS; n++) {
        char set_dir[4200];
        snprintf(set_dir, sizeof set_dir, "%.*s/test_data_set_%d", dl, dir, (int)n);
        if (!check_exists(set_dir)) {
            if (n == 0)
                check_fail(res, CHECK_FAIL, "no test_data_set_0 in the directory");
            break;
        }
        check_set s = {0};
        evo_status rv = check_read_tensors(set_dir, "input", &s.in, &s.in_paths, &s.n_in, &err);
        if (rv == EVO_OK)
            rv = check_read_tensors(set_dir, "output", &s.out, NULL, &s.n_out, &err);
        if (rv != EVO_OK) {
            /* Data files that are not tensors (sequences, optionals) belong
             * to models evo cannot run: the model's reason is the clearer one. */
            evo_error merr = {0};
            if (cli_model_probe(model_path, &merr) == EVO_ERR_UNSUPPORTED) {
                err = merr;
                rv = EVO_ERR_UNSUPPORTED;
            }
        }
        if (rv == EVO_OK && !check_same_shapes(&m, &s)) {
            cli_model_free(&m);
            cli_model_options mopt = {.inputs = s.in,
                                      .n_inputs = s.n_in,
                                      .input_paths = (const char *const *)s.in_paths,
                                      .no_optimize = o->no_optimize,
                                      .threads = (int32_t)o->threads};
            rv = cli_model_load(model_path, &mopt, &m, &err);
        }
        for (size_t i = 0; rv == EVO_OK && i < s.n_in; i++)
            rv = cli_model_set_input(&m, (int32_t)i, &s.in[i], s.in_paths[i], &err);
        if (rv == EVO_OK && s.n_out > (size_t)m.prog->n_outputs)
            rv = evo_error_set(&err, EVO_ERR_MISMATCH,
                               "%s has %zu expected outputs but the model has %d", set_dir, s.n_out,
                               (int)m.prog->n_outputs);
        if (rv == EVO_OK) {
            double t0 = cli_now_ms();
            rv = cli_model_run(&m, &err);
            res->ms += cli_now_ms() - t0;
        }
        if (rv != EVO_OK) {
            check_fail(res, check_kind_of(rv), err.msg);
        } else {
            /* name the data set when there are several */
            char set[48] = "";
            if (n > 0)
                snprintf(set, sizeof set, "test_data_set_%d ", (int)n);
            for (size_t k = 0; k < s.n_out && res->kind == CHECK_PASS; k++)
                if (!check_compare(evo_exec_output(&m.exec, (int32_t)k), &s.out[k], (int32_t)k, set,
                                   o, res))
                    res->kind = CHECK_FAIL;
            res->data_sets++;
        }
        check_set_free(&s);
    }
    cli_model_free(&m);
}

/* ---------------------------------------------------------------- fork and wait (parent) */

static void check_in_child(const char *dir, const check_options *o, check_result *res)
{
    int fds[2];
    memset(res, 0, sizeof *res);
    fflush(stdout); /* or the child would print the parent's buffered lines again */
    fflush(stderr);
    if (pipe(fds) != 0) {
        check_fail(res, CHECK_FAIL, "cannot create a pipe for the child process");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        check_fail(res, CHECK_FAIL, "cannot fork a child process");
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        check_result r;
        check_dir(dir, o, &r);
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 3);
    }
    close(fds[1]);

    size_t got = 0;
    bool timed_out = false;
    double deadline = cli_now_ms() + o->timeout_s * 1e3;
    while (got < sizeof *res) {
        int wait_ms = -1;
        if (o->timeout_s > 0) {
            double left = deadline - cli_now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = left > 1e9 ? 1000000000 : (int)left + 1;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue; /* the deadline check above decides */
        ssize_t n = pr < 0 ? -1 : read(fds[0], (char *)res + got, sizeof *res - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: the child ended without (all of) its result */
        got += (size_t)n;
    }
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        memset(res, 0, sizeof *res);
        res->kind = CHECK_FAIL;
        snprintf(res->reason, sizeof res->reason, "timed out after %g s", o->timeout_s);
    } else if (got != sizeof *res) {
        memset(res, 0, sizeof *res);
        res->kind = CHECK_FAIL;
        if (WIFSIGNALED(status))
            snprintf(res->reason, sizeof res->reason, "crashed with signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(res->reason, sizeof res->reason, "child exited with status %d and no result",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        res->reason[sizeof res->reason - 1] = '\0'; /* never trust a child's string */
        if (res->kind < CHECK_PASS || res->kind > CHECK_SKIP)
            res->kind = CHECK_FAIL;
    }
}

/* The directory's last path component, for the report line. */
static void check_dir_name(const char *dir, char *buf, size_t cap)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    size_t n = len - start < cap - 1 ? len - start : cap - 1;
    memcpy(buf, dir + start, n);
    buf[n] = '\0';
}

static void check_report(const char *dir, const check_result *r, bool json)
{
    char name[256];
    check_dir_name(dir, name, sizeof name);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "dir", dir);
        cJSON_AddStringToObject(o, "status", check_kind_names[r->kind]);
        if (r->kind != CHECK_PASS)
            cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddNumberToObject(o, "data_sets", r->data_sets);
        cJSON_AddNumberToObject(o, "ms", r->ms);
        char *text = cJSON_PrintUnformatted(o);
        if (text != NULL)
            puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else if (r->kind == CHECK_PASS) {
        printf("PASS %s\n", name);
    } else {
        printf("%s %s: %s\n", check_kind_names[r->kind], name, r->reason);
    }
    fflush(stdout);
}

static int check_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_check, argc, argv);
    check_options o = {.rtol = 1e-3, .atol = 1e-4, .timeout_s = 60, .threads = 1};
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    size_t n_dirs = 0;
    bool json = false;
    int rc = dirs ? -1 : CLI_EXIT_FAIL;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--rtol", &val)) {
            if (!cli_parse_double(a.cmd, "--rtol", val, 0, &o.rtol))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--atol", &val)) {
            if (!cli_parse_double(a.cmd, "--atol", val, 0, &o.atol))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--threads", &val)) {
            if (!cli_parse_i64(a.cmd, "--threads", val, 1, EVO_THREADS_MAX, &o.threads))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--timeout", &val)) {
            if (!cli_parse_double(a.cmd, "--timeout", val, 0, &o.timeout_s))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
        } else if (cli_args_flag(&a, "--no-optimize")) {
            o.no_optimize = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-') {
            dirs[n_dirs++] = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc < 0 && n_dirs == 0)
        rc = cli_usage_error(a.cmd->name, "no test directory given");
    if (rc >= 0) {
        free(dirs);
        return rc;
    }
    if (o.timeout_s > 1e6)
        o.timeout_s = 1e6;

    int counts[3] = {0, 0, 0};
    for (size_t i = 0; i < n_dirs; i++) {
        check_result r;
        check_in_child(dirs[i], &o, &r);
        counts[r.kind]++;
        check_report(dirs[i], &r, json);
    }
    if (json)
        printf("{\"summary\":true,\"passed\":%d,\"failed\":%d,\"skipped\":%d}\n",
               counts[CHECK_PASS], counts[CHECK_FAIL], counts[CHECK_SKIP]);
    else
        printf("%d passed, %d failed, %d skipped\n", counts[CHECK_PASS], counts[CHECK_FAIL],
               counts[CHECK_SKIP]);
    free(dirs);
    return counts[CHECK_FAIL] ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const cli_command cli_cmd_check = {
    .name = "check",
    .summary = "run ONNX test directories and compare with reference outputs",
    .usage = check_usage,
    .main = check_main,
};
