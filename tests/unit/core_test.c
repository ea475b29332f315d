/* core/: status text, error sentences, dtypes, fp16, shape arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "evo/core.h"

static void test_strerror_covers_every_status(void **state)
{
    (void)state;
    for (int s = 0; s < EVO_STATUS_COUNT_; s++)
        assert_string_not_equal(evo_strerror((evo_status)s), "unknown status");
    assert_string_equal(evo_strerror((evo_status)9999), "unknown status");
    assert_string_equal(evo_strerror(EVO_OK), "success");
}

static void test_error_set_and_prefix(void **state)
{
    (void)state;
    evo_error e;
    evo_error_clear(&e);
    assert_int_equal(evo_error_set(&e, EVO_ERR_SHAPE, "dim %d is %s", 3, "bad"), EVO_ERR_SHAPE);
    assert_string_equal(e.msg, "dim 3 is bad");
    evo_error_prefix(&e, "model.onnx: node '%s'", "conv1");
    assert_string_equal(e.msg, "model.onnx: node 'conv1': dim 3 is bad");
    assert_int_equal(e.code, EVO_ERR_SHAPE);
    /* NULL is accepted everywhere so callers can ignore details */
    assert_int_equal(evo_error_set(NULL, EVO_ERR_IO, "x"), EVO_ERR_IO);
    evo_error_prefix(NULL, "x");
    /* an over-long prefix truncates instead of overflowing */
    char longp[1000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    evo_error_prefix(&e, "%s", longp);
    assert_int_equal(strlen(e.msg), EVO_ERROR_MSG_MAX - 1);
}

static void test_dtypes(void **state)
{
    (void)state;
    assert_int_equal(evo_dtype_size(EVO_DT_FLOAT32), 4);
    assert_int_equal(evo_dtype_size(EVO_DT_INT64), 8);
    assert_int_equal(evo_dtype_size(EVO_DT_BOOL), 1);
    assert_int_equal(evo_dtype_size(EVO_DT_FLOAT16), 2);
    assert_int_equal(evo_dtype_size(EVO_DT_STRING), 0);
    assert_int_equal(evo_dtype_size((evo_dtype)77), 0);
    assert_string_equal(evo_dtype_name(EVO_DT_UINT8), "uint8");
    assert_string_equal(evo_dtype_name((evo_dtype)-3), "unknown");
    assert_true(evo_dtype_is_supported(EVO_DT_INT8));
    assert_false(evo_dtype_is_supported(EVO_DT_FLOAT64));
}

static void test_f16_round_trip(void **state)
{
    (void)state;
    const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0.000061035156f, 5.9604645e-8f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        assert_true(evo_f16_to_f32(evo_f32_to_f16(exact[i])) == exact[i]);
    assert_int_equal(evo_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(evo_f32_to_f16(65520.0f), 0x7c00);           /* rounds to inf */
    assert_int_equal(evo_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    assert_int_equal(evo_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    assert_true(isnan(evo_f16_to_f32(evo_f32_to_f16(NAN))));
    assert_true(isinf(evo_f16_to_f32(0xfc00)) && evo_f16_to_f32(0xfc00) < 0);
    /* every half value survives half -> float -> half */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads need not survive */
        assert_int_equal(evo_f32_to_f16(evo_f16_to_f32((uint16_t)h)), h);
    }
}

static void test_shape_sizes_and_overflow(void **state)
{
    (void)state;
    evo_shape s = {4, {1, 3, 224, 224}};
    assert_int_equal(evo_shape_numel(&s), 150528);
    size_t b;
    assert_int_equal(evo_shape_nbytes(&s, EVO_DT_FLOAT32, &b), EVO_OK);
    assert_int_equal(b, 602112);
    evo_shape scalar = {0, {0}};
    assert_int_equal(evo_shape_numel(&scalar), 1);
    evo_shape empty = {2, {0, 5}};
    assert_int_equal(evo_shape_numel(&empty), 0);
    evo_shape huge = {8, {INT32_MAX, INT32_MAX, INT32_MAX, 2, 2, 2, 2, 2}};
    assert_int_equal(evo_shape_numel(&huge), -1);
    assert_int_equal(evo_shape_nbytes(&huge, EVO_DT_FLOAT32, &b), EVO_ERR_LIMIT);
    evo_shape neg = {2, {3, -1}};
    assert_int_equal(evo_shape_numel(&neg), -1);
    evo_shape badrank = {9, {1}};
    assert_int_equal(evo_shape_numel(&badrank), -1);
    /* numel fits int64 but bytes overflow size_t */
    evo_shape big = {2, {INT32_MAX, INT32_MAX}};
    assert_true(evo_shape_numel(&big) > 0);
    evo_shape big3 = {3, {INT32_MAX, INT32_MAX, 8}};
    assert_int_equal(evo_shape_nbytes(&big3, EVO_DT_INT64, &b), EVO_ERR_LIMIT);
    assert_int_equal(evo_shape_nbytes(&s, EVO_DT_STRING, &b), EVO_ERR_TYPE);
    char buf[64];
    evo_shape_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "[1,3,224,224]");
    evo_shape_format(&s, buf, 6);
    assert_string_equal(buf, "[1,3,");
    evo_shape_format(&scalar, buf, sizeof buf);
    assert_string_equal(buf, "[]");
}

static void test_broadcast(void **state)
{
    (void)state;
    evo_shape a = {3, {2, 3, 4}}, b = {1, {4}}, c = {2, {3, 1}}, d = {1, {5}}, out;
    assert_int_equal(evo_shape_broadcast(&a, &b, &out), EVO_OK);
    assert_true(evo_shape_equal(&out, &a));
    assert_int_equal(evo_shape_broadcast(&c, &a, &out), EVO_OK);
    assert_true(evo_shape_equal(&out, &a));
    assert_int_equal(evo_shape_broadcast(&a, &d, &out), EVO_ERR_SHAPE);
    evo_shape s0 = {0, {0}};
    assert_int_equal(evo_shape_broadcast(&s0, &c, &out), EVO_OK);
    assert_true(evo_shape_equal(&out, &c));
    evo_shape z = {2, {0, 1}}, o = {2, {1, 7}};
    assert_int_equal(evo_shape_broadcast(&z, &o, &out), EVO_OK);
    assert_int_equal(out.dims[0], 0);
    assert_int_equal(out.dims[1], 7);
}

static int log_count;
static void count_sink(evo_log_level level, const char *line, void *user)
{
    (void)level;
    (void)user;
    assert_string_equal(line, "hello 42");
    log_count++;
}

static void test_logging_can_be_silenced(void **state)
{
    (void)state;
    evo_log_set_sink(count_sink, NULL);
    evo_log_set_level(EVO_LOG_INFO);
    EVO_LOGI("hello %d", 42);
    EVO_LOGD("hello %d", 42); /* above the level: dropped */
    assert_int_equal(log_count, 1);
    evo_log_set_sink(NULL, NULL);
    EVO_LOGE("hello %d", 42);
    assert_int_equal(log_count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_status),
        cmocka_unit_test(test_error_set_and_prefix),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_f16_round_trip),
        cmocka_unit_test(test_shape_sizes_and_overflow),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_logging_can_be_silenced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
