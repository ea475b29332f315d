/*
 * The CPU share a CFS quota leaves this process (evo_cpu_quota, db.h).
 *
 * Why: calibration times short runs and keeps the best, and a short run
 * fits inside one CFS period, so a node in a container limited to a fifth
 * of a core measured the full core's speed and the partitioner gave it five
 * times the work it can do. The quota is what the kernel will enforce over
 * any longer run, so calibration scales its rates by it.
 *
 * How: the process's cgroup (/proc/self/cgroup) is located in the mounted
 * hierarchies (/proc/self/mountinfo: cgroup2, or cgroup v1 with the cpu
 * controller), then the quota files of that cgroup and of every ancestor up
 * to the mount are read (cgroup v2 cpu.max "QUOTA PERIOD" or "max ...";
 * v1 cpu.cfs_quota_us, -1 for none, over cpu.cfs_period_us); the smallest
 * share wins, as the kernel throttles at the tightest level. No library
 * reads cgroup quotas (libcgroup manages groups and does not resolve the
 * effective limit), so it is done here; every file is optional and
 * anything unreadable or malformed counts as "no quota".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define CQ_PATH 1024

/* The text of file root+path (at most cap-1 bytes, NUL-terminated), or
 * false. */
static bool cq_read(const char *root, const char *path, char *buf, size_t cap)
{
    char full[4 * CQ_PATH];
    int w = snprintf(full, sizeof full, "%s%s", root, path);
    if (w < 0 || (size_t)w >= sizeof full)
        return false;
    FILE *f = fopen(full, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* Is word one of the comma-separated items of list? */
static bool cq_has_item(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* A whole number at *p (strtoll: defined on overflow, unlike sscanf),
 * advancing *p past it; false if there is none. */
static bool cq_number(const char **p, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(*p, &end, 10);
    if (end == *p || errno != 0)
        return false;
    *p = end;
    return true;
}

/* The share one quota directory allows (v2: cpu.max; v1: cfs files), or 0. */
static double cq_dir_share(const char *root, const char *dir, bool v2)
{
    char path[3 * CQ_PATH], buf[128];
    long long quota, period;
    const char *p = buf;
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        /* "max PERIOD" (no quota) is not a number */
        if (!cq_read(root, path, buf, sizeof buf) || !cq_number(&p, &quota) ||
            !cq_number(&p, &period) || quota <= 0 || period <= 0)
            return 0;
        return (double)quota / (double)period;
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!cq_read(root, path, buf, sizeof buf) || !cq_number(&p, &quota) || quota <= 0)
        return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    p = buf;
    if (!cq_read(root, path, buf, sizeof buf) || !cq_number(&p, &period) || period <= 0)
        return 0;
    return (double)quota / (double)period;
}

/* The tightest share from dir up to the mount point mnt (dir starts with
 * mnt), or 0. */
static double cq_walk(const char *root, const char *mnt, char *dir, bool v2)
{
    double best = 0;
    size_t floor = strlen(mnt);
    for (;;) {
        double s = cq_dir_share(root, dir, v2);
        if (s > 0 && (best == 0 || s < best))
            best = s;
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= floor || slash == NULL || (size_t)(slash - dir) < floor)
            break;
        *slash = '\0';
    }
    return best;
}

/* The process's cgroup path in the v2 hierarchy (v2) or the v1 one with
 * the cpu controller, from /proc/self/cgroup; false if there is none. */
static bool cq_cgroup_path(const char *cgroups, bool v2, char *out, size_t cap)
{
    for (const char *line = cgroups; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char l[CQ_PATH];
        if (len < sizeof l) {
            memcpy(l, line, len);
            l[len] = '\0';
            char *c1 = strchr(l, ':');
            char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (c2) {
                *c2 = '\0';
                const char *ctrls = c1 + 1;
                bool match =
                    v2 ? strncmp(l, "0:", 2) == 0 && ctrls[0] == '\0' : cq_has_item(ctrls, "cpu");
                if (match && c2[1] == '/') {
                    snprintf(out, cap, "%s", c2 + 1);
                    return true;
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

/* The share under one hierarchy (v2, or v1's cpu), or 0. */
static double cq_hierarchy(const char *root, const char *cgroups, const char *mounts, bool v2)
{
    char cg[CQ_PATH];
    if (!cq_cgroup_path(cgroups, v2, cg, sizeof cg))
        return 0;
    double best = 0;
    for (const char *line = mounts; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char l[2 * CQ_PATH];
        /* id parent major:minor root mount-point options [optional...] - type source super */
        char mroot[CQ_PATH], mnt[CQ_PATH], type[64], super[CQ_PATH];
        const char *dash = len < sizeof l ? strstr(line, " - ") : NULL;
        if (dash && dash < line + len) {
            memcpy(l, line, len);
            l[len] = '\0';
            dash = l + (dash - line);
            if (sscanf(l, "%*s %*s %*s %1023s %1023s", mroot, mnt) == 2 &&
                sscanf(dash + 3, "%63s %*s %1023s", type, super) == 2) {
                bool fits = v2 ? strcmp(type, "cgroup2") == 0
                               : strcmp(type, "cgroup") == 0 && cq_has_item(super, "cpu");
                /* The cgroup must lie inside what this mount shows. */
                size_t rl = strcmp(mroot, "/") == 0 ? 0 : strlen(mroot);
                if (fits && strncmp(cg, mroot, rl) == 0 && (cg[rl] == '/' || cg[rl] == '\0')) {
                    char dir[2 * CQ_PATH + 2];
                    snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(cg + rl, "/") ? cg + rl : "");
                    double s = cq_walk(root, mnt, dir, v2);
                    if (s > 0 && (best == 0 || s < best))
                        best = s;
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return best;
}

double evo_cpu_quota_at(const char *root)
{
    char *cgroups = malloc(16384), *mounts = malloc(65536);
    double best = 0;
    if (cgroups && mounts && cq_read(root, "/proc/self/cgroup", cgroups, 16384) &&
        cq_read(root, "/proc/self/mountinfo", mounts, 65536)) {
        for (int v2 = 0; v2 < 2; v2++) {
            double s = cq_hierarchy(root, cgroups, mounts, v2 == 1);
            if (s > 0 && (best == 0 || s < best))
                best = s;
        }
    }
    free(cgroups);
    free(mounts);
    return best;
}

double evo_cpu_quota(void)
{
    return evo_cpu_quota_at("");
}
