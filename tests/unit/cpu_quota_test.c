/*
 * evo_cpu_quota_at on made-up /proc and /sys trees: cgroup v1 (cpu
 * controller, nested groups, a container's bind-mounted subtree), cgroup v2
 * (cpu.max with "max" and numbers, a tighter ancestor), a hybrid of both,
 * no quota, and malformed files (no quota, no crash). The real machine's
 * quota is read too (whatever it is, it must be a sane number).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "evo/db.h"

static char g_root[256];

/* Write text to g_root/rel, making the directories on the way. */
static void cq_put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_root, rel);
    for (char *p = path + strlen(g_root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int cq_setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/evo-cq-XXXXXX");
    return mkdtemp(g_root) ? 0 : -1;
}

static int cq_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* Each test starts from an empty tree. */
static int cq_fresh(void **state)
{
    return cq_teardown(state) == 0 ? cq_setup(state) : -1;
}

static const char v1_mounts[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

static void test_v1_nested(void **state)
{
    (void)state;
    cq_put("proc/self/cgroup", "4:memory:/a/b\n3:cpu,cpuacct:/a/b\n0::/\n");
    cq_put("proc/self/mountinfo", v1_mounts);
    cq_put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us", "50000\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us", "100000\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us", "-1\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us", "100000\n");
    /* the parent's half core binds the child without a quota of its own */
    assert_float_equal(evo_cpu_quota_at(g_root), 0.5, 1e-9);
    /* a tighter child wins */
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us", "1000\n");
    cq_put("sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us", "5000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.2, 1e-9);
    /* the memory hierarchy's files do not count */
    cq_put("sys/fs/cgroup/memory/a/b/cpu.cfs_quota_us", "10\n");
    cq_put("sys/fs/cgroup/memory/a/b/cpu.cfs_period_us", "100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.2, 1e-9);
}

static void test_v1_container_subtree(void **state)
{
    (void)state;
    /* A container sees its own cgroup bind-mounted as the hierarchy's top. */
    cq_put("proc/self/cgroup", "2:cpu:/docker/abc\n");
    cq_put("proc/self/mountinfo",
           "40 39 0:29 /docker/abc /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu\n");
    cq_put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "150000\n");
    cq_put("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 1.5, 1e-9);
}

static const char v2_mounts[] =
    "25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n";

static void test_v2(void **state)
{
    (void)state;
    cq_put("proc/self/cgroup", "0::/user.slice/job\n");
    cq_put("proc/self/mountinfo", v2_mounts);
    cq_put("sys/fs/cgroup/user.slice/job/cpu.max", "max 100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0);
    cq_put("sys/fs/cgroup/user.slice/cpu.max", "25000 100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.25, 1e-9);
    cq_put("sys/fs/cgroup/user.slice/job/cpu.max", "200000 100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.25, 1e-9);
}

static void test_hybrid_takes_the_tighter(void **state)
{
    (void)state;
    cq_put("proc/self/cgroup", "1:cpu:/g\n0::/g\n");
    char mounts[1024];
    snprintf(mounts, sizeof mounts, "%s%s",
             "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
             "26 31 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    cq_put("proc/self/mountinfo", mounts);
    cq_put("sys/fs/cgroup/cpu/g/cpu.cfs_quota_us", "80000\n");
    cq_put("sys/fs/cgroup/cpu/g/cpu.cfs_period_us", "100000\n");
    cq_put("sys/fs/cgroup/unified/g/cpu.max", "30000 100000\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.3, 1e-9);
}

static void test_no_quota_and_bad_files(void **state)
{
    (void)state;
    assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0); /* nothing there */
    cq_put("proc/self/cgroup", "3:cpu:/a\n");
    cq_put("proc/self/mountinfo", v1_mounts); /* no mount with "cpu" alone */
    assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0);
    cq_put("proc/self/mountinfo", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
    const char *bad[] = {"", "garbage", "0", "-5", "9999999999999999999999", "12 abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", bad[i]);
        cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "100000");
        double q = evo_cpu_quota_at(g_root);
        assert_true(q >= 0);
        cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "50000");
        cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_period_us", bad[i]);
        assert_true(evo_cpu_quota_at(g_root) >= 0);
    }
    /* malformed /proc files */
    const char *junk[] = {"::::\n", "no colons at all\n", "1:cpu\n", ":\n:\n",
                          "1:cpu:relative/path\n"};
    cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "50000");
    cq_put("sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "100000");
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        cq_put("proc/self/cgroup", junk[i]);
        assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0);
    }
    cq_put("proc/self/cgroup", "3:cpu:/a\n");
    const char *mjunk[] = {" - \n", "1 2 3 - cgroup\n", "- - - - - - - -\n",
                           "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup\n"};
    for (size_t i = 0; i < sizeof mjunk / sizeof mjunk[0]; i++) {
        cq_put("proc/self/mountinfo", mjunk[i]);
        assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0);
    }
    /* a path that leaves the mount's subtree is not followed */
    cq_put("proc/self/mountinfo",
           "40 39 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
    cq_put("proc/self/cgroup", "3:cpu:/docker/abcdef\n");
    assert_float_equal(evo_cpu_quota_at(g_root), 0.0, 0);
}

static void test_this_machine(void **state)
{
    (void)state;
    double q = evo_cpu_quota();
    assert_true(q >= 0 && q < 1e6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_v1_nested, cq_fresh),
        cmocka_unit_test_setup(test_v1_container_subtree, cq_fresh),
        cmocka_unit_test_setup(test_v2, cq_fresh),
        cmocka_unit_test_setup(test_hybrid_takes_the_tighter, cq_fresh),
        cmocka_unit_test_setup(test_no_quota_and_bad_files, cq_fresh),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, cq_setup, cq_teardown);
}
