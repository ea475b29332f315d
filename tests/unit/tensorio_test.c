/*
 * Tensor file I/O of the CLI (cli/tensor_io.c): TensorProto .pb round trips
 * for every dtype evo supports, typed-field decoding, .npy headers, and the
 * rejection of truncated, garbage and hostile files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The CLI's sources are not part of the evo libraries that tests link, so the
 * module under test is compiled into this program directly. */
#include "../../cli/tensor_io.c"

static char tio_tmpdir[] = "/tmp/evo_tensorio_XXXXXX";

static int tio_setup(void **state)
{
    (void)state;
    return mkdtemp(tio_tmpdir) ? 0 : -1;
}

static int tio_teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tio_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tio_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tio_tmpdir, name);
}

static void tio_write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Pack a TensorProto into a malloc'd buffer. */
static uint8_t *tio_pack(const Onnx__TensorProto *tp, size_t *len)
{
    *len = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    onnx__tensor_proto__pack(tp, buf);
    return buf;
}

/* ---------------------------------------------------------------- .pb round trips */

static void tio_roundtrip(evo_dtype dt, const evo_shape *shape, const void *data, size_t nbytes)
{
    char path[256];
    evo_error err = {0};
    cli_tensor back;
    evo_tensor t = {dt, *shape, (void *)data};
    tio_path(path, sizeof path, "rt.pb");
    assert_int_equal(cli_tensor_write_pb(path, "tensor name", &t, &err), EVO_OK);
    assert_int_equal(cli_tensor_read(path, &back, &err), EVO_OK);
    assert_string_equal(back.name, "tensor name");
    assert_int_equal(back.t.dtype, dt);
    assert_true(evo_shape_equal(&back.t.shape, shape));
    assert_int_equal(back.nbytes, nbytes);
    if (nbytes > 0)
        assert_memory_equal(back.t.data, data, nbytes);
    cli_tensor_free(&back);
}

static void test_pb_roundtrip_all_dtypes(void **state)
{
    (void)state;
    evo_shape s23 = {2, {2, 3}};
    const float f32[6] = {0.0f, -1.5f, 3.25f, 1e-30f, -0.0f, 65504.0f};
    const int64_t i64[6] = {0, -1, INT64_MAX, INT64_MIN, 42, 7};
    const int32_t i32[6] = {0, -1, INT32_MAX, INT32_MIN, 42, 7};
    const int8_t i8[6] = {0, -1, 127, -128, 42, 7};
    const uint8_t u8[6] = {0, 1, 255, 128, 42, 7};
    const uint8_t b[6] = {0, 1, 1, 0, 1, 0};
    uint16_t f16[6];
    for (int i = 0; i < 6; i++)
        f16[i] = evo_f32_to_f16(f32[i]);
    tio_roundtrip(EVO_DT_FLOAT32, &s23, f32, sizeof f32);
    tio_roundtrip(EVO_DT_INT64, &s23, i64, sizeof i64);
    tio_roundtrip(EVO_DT_INT32, &s23, i32, sizeof i32);
    tio_roundtrip(EVO_DT_INT8, &s23, i8, sizeof i8);
    tio_roundtrip(EVO_DT_UINT8, &s23, u8, sizeof u8);
    tio_roundtrip(EVO_DT_BOOL, &s23, b, sizeof b);
    tio_roundtrip(EVO_DT_FLOAT16, &s23, f16, sizeof f16);
}

static void test_pb_roundtrip_scalar_and_empty(void **state)
{
    (void)state;
    const float one = 1.0f;
    evo_shape scalar = {0, {0}};
    evo_shape empty = {3, {2, 0, 5}};
    tio_roundtrip(EVO_DT_FLOAT32, &scalar, &one, sizeof one);
    tio_roundtrip(EVO_DT_INT64, &empty, NULL, 0);
}

/* ---------------------------------------------------------------- typed fields */

static void test_pb_typed_fields(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    size_t len;
    int64_t dims[2] = {2, 2};

    float fd[4] = {1.0f, 2.0f, -3.0f, 0.5f};
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = 2;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = EVO_DT_FLOAT32;
    tp.n_float_data = 4;
    tp.float_data = fd;
    tp.name = "x";
    uint8_t *buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "f.pb", &t, &err), EVO_OK);
    assert_memory_equal(t.t.data, fd, sizeof fd);
    assert_string_equal(t.name, "x");
    cli_tensor_free(&t);
    free(buf);

    /* int8 values travel in int32_data and are narrowed */
    int32_t i32d[4] = {-128, 127, 0, 5};
    const int8_t want8[4] = {-128, 127, 0, 5};
    Onnx__TensorProto tp8 = ONNX__TENSOR_PROTO__INIT;
    tp8.n_dims = 2;
    tp8.dims = dims;
    tp8.has_data_type = 1;
    tp8.data_type = EVO_DT_INT8;
    tp8.n_int32_data = 4;
    tp8.int32_data = i32d;
    buf = tio_pack(&tp8, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "i8.pb", &t, &err), EVO_OK);
    assert_memory_equal(t.t.data, want8, sizeof want8);
    cli_tensor_free(&t);
    free(buf);

    /* ... and a value that does not fit is an error, not a silent wrap */
    i32d[1] = 300;
    buf = tio_pack(&tp8, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "i8bad.pb", &t, &err), EVO_ERR_PARSE);
    assert_non_null(strstr(err.msg, "i8bad.pb"));
    assert_null(t.t.data);
    free(buf);

    /* int64_data */
    int64_t i64d[4] = {1, -2, 3, INT64_MIN};
    Onnx__TensorProto tp64 = ONNX__TENSOR_PROTO__INIT;
    tp64.n_dims = 2;
    tp64.dims = dims;
    tp64.has_data_type = 1;
    tp64.data_type = EVO_DT_INT64;
    tp64.n_int64_data = 4;
    tp64.int64_data = i64d;
    buf = tio_pack(&tp64, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "i64.pb", &t, &err), EVO_OK);
    assert_memory_equal(t.t.data, i64d, sizeof i64d);
    cli_tensor_free(&t);
    free(buf);

    /* an empty tensor in typed form has no data at all */
    int64_t zero_dims[2] = {0, 3};
    Onnx__TensorProto tpe = ONNX__TENSOR_PROTO__INIT;
    tpe.n_dims = 2;
    tpe.dims = zero_dims;
    tpe.has_data_type = 1;
    tpe.data_type = EVO_DT_FLOAT32;
    buf = tio_pack(&tpe, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "empty.pb", &t, &err), EVO_OK);
    assert_int_equal(t.nbytes, 0);
    assert_int_equal(t.t.shape.dims[0], 0);
    cli_tensor_free(&t);
    free(buf);

    /* a count that disagrees with the dims */
    tp64.n_int64_data = 3;
    buf = tio_pack(&tp64, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "short.pb", &t, &err), EVO_ERR_PARSE);
    free(buf);

    /* data in the wrong field for the dtype */
    tp.data_type = EVO_DT_INT64;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "wrongfield.pb", &t, &err), EVO_ERR_PARSE);
    free(buf);

    /* raw_data and a typed field at once */
    tp.data_type = EVO_DT_FLOAT32;
    tp.has_raw_data = 1;
    tp.raw_data.data = (uint8_t *)fd;
    tp.raw_data.len = sizeof fd;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "both.pb", &t, &err), EVO_ERR_PARSE);
    free(buf);
}

/* ---------------------------------------------------------------- bad .pb files */

static void test_pb_truncated_and_garbage(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    int64_t dims[2] = {8, 8};
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = 2;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = EVO_DT_FLOAT32;
    tp.has_raw_data = 1;
    tp.raw_data.data = (uint8_t *)data;
    tp.raw_data.len = sizeof data;
    tp.name = "input";
    size_t len;
    uint8_t *buf = tio_pack(&tp, &len);
    /* every strict prefix must be refused (the data is the last field) */
    for (size_t cut = 0; cut < len; cut++) {
        evo_status rv = cli_tensor_parse_pb(buf, cut, "cut.pb", &t, &err);
        assert_int_not_equal(rv, EVO_OK);
        assert_null(t.t.data);
    }
    /* through the file path too: the message names the file */
    char path[256];
    tio_path(path, sizeof path, "truncated.pb");
    tio_write_bytes(path, buf, len / 2);
    assert_int_not_equal(cli_tensor_read(path, &t, &err), EVO_OK);
    assert_non_null(strstr(err.msg, path));
    free(buf);

    /* garbage: fixed pseudo-random bytes */
    uint8_t junk[512];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    tio_path(path, sizeof path, "garbage.pb");
    tio_write_bytes(path, junk, sizeof junk);
    assert_int_not_equal(cli_tensor_read(path, &t, &err), EVO_OK);
    assert_non_null(strstr(err.msg, path));
    assert_null(t.t.data);

    /* text is not a tensor either */
    const char *text = "hello, this is not a tensor\n";
    assert_int_not_equal(cli_tensor_parse_pb(text, strlen(text), "text.pb", &t, &err), EVO_OK);

    /* an empty file decodes to an empty message: no data_type */
    assert_int_equal(cli_tensor_parse_pb("", 0, "empty.pb", &t, &err), EVO_ERR_PARSE);
}

static void test_pb_model_is_not_a_tensor(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    mp.producer_name = "pytorch";
    size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    onnx__model_proto__pack(&mp, buf);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "model.onnx", &t, &err), EVO_ERR_PARSE);
    assert_non_null(strstr(err.msg, "model.onnx"));
    free(buf);
}

static void test_pb_absurd_dims(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    size_t len;
    float one = 1.0f;
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.has_data_type = 1;
    tp.data_type = EVO_DT_FLOAT32;
    tp.has_raw_data = 1;
    tp.raw_data.data = (uint8_t *)&one;
    tp.raw_data.len = sizeof one;

    /* a dim above evo's limit */
    int64_t big[1] = {(int64_t)1 << 40};
    tp.n_dims = 1;
    tp.dims = big;
    uint8_t *buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "big.pb", &t, &err), EVO_ERR_LIMIT);
    free(buf);

    /* a negative dim */
    int64_t neg[2] = {1, -4};
    tp.n_dims = 2;
    tp.dims = neg;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "neg.pb", &t, &err), EVO_ERR_LIMIT);
    free(buf);

    /* dims whose byte size overflows size_t */
    int64_t huge[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    tp.n_dims = 4;
    tp.dims = huge;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "huge.pb", &t, &err), EVO_ERR_LIMIT);
    free(buf);

    /* large but representable: refused because the file does not hold the
     * bytes, before anything is allocated */
    int64_t large[3] = {100000, 100000, 1000};
    tp.n_dims = 3;
    tp.dims = large;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "large.pb", &t, &err), EVO_ERR_PARSE);
    free(buf);

    /* rank above EVO_MAX_RANK: valid ONNX, but more than evo holds */
    int64_t many[EVO_MAX_RANK + 1];
    for (int i = 0; i <= EVO_MAX_RANK; i++)
        many[i] = 1;
    tp.n_dims = EVO_MAX_RANK + 1;
    tp.dims = many;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "rank.pb", &t, &err), EVO_ERR_UNSUPPORTED);
    free(buf);
}

static void test_pb_unsupported_dtypes(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    size_t len;
    int64_t dims[1] = {2};
    double dd[2] = {1.0, 2.0};
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = 1;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = EVO_DT_FLOAT64;
    tp.n_double_data = 2;
    tp.double_data = dd;
    uint8_t *buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "f64.pb", &t, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "float64"));
    free(buf);

    tp.data_type = 17; /* float8e4m3fn: valid ONNX, not an evo type */
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "f8e4m3.pb", &t, &err), EVO_ERR_UNSUPPORTED);
    free(buf);

    tp.data_type = 99;
    buf = tio_pack(&tp, &len);
    assert_int_equal(cli_tensor_parse_pb(buf, len, "dt99.pb", &t, &err), EVO_ERR_PARSE);
    free(buf);
}

/* Known-correct data: the ONNX conformance test for Abs, whose output must
 * be the element-wise absolute value of its input. */
static void test_pb_onnx_conformance_file(void **state)
{
    (void)state;
    const char *dir = EVO_SHARED_DIR "/onnx-tests/node/test_abs/test_data_set_0";
    char in_path[512], out_path[512];
    snprintf(in_path, sizeof in_path, "%s/input_0.pb", dir);
    snprintf(out_path, sizeof out_path, "%s/output_0.pb", dir);
    if (access(in_path, R_OK) != 0) {
        skip(); /* ../shared is absent in a user's clone */
        return;
    }
    evo_error err = {0};
    cli_tensor in, out;
    assert_int_equal(cli_tensor_read(in_path, &in, &err), EVO_OK);
    assert_int_equal(cli_tensor_read(out_path, &out, &err), EVO_OK);
    evo_shape want = {3, {3, 4, 5}};
    assert_true(evo_shape_equal(&in.t.shape, &want));
    assert_true(evo_shape_equal(&out.t.shape, &want));
    assert_int_equal(in.t.dtype, EVO_DT_FLOAT32);
    const float *x = in.t.data, *y = out.t.data;
    for (int i = 0; i < 60; i++)
        assert_true(y[i] == (x[i] < 0 ? -x[i] : x[i]));
    cli_tensor_free(&in);
    cli_tensor_free(&out);
}

/* ---------------------------------------------------------------- .npy */

/* A .npy file image: magic, version, padded header, then data. */
static size_t tio_npy(uint8_t *out, size_t cap, int major, const char *dict, const void *data,
                      size_t nbytes)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t hlen = ((pre + dl + 1 + 63) / 64) * 64 - pre; /* pad to 64 incl. '\n' */
    assert_true(pre + hlen + nbytes <= cap);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)major;
    out[7] = 0;
    if (major == 1) {
        out[8] = (uint8_t)hlen;
        out[9] = (uint8_t)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            out[8 + i] = (uint8_t)(hlen >> (8 * i));
    }
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', hlen - dl - 1);
    out[pre + hlen - 1] = '\n';
    if (nbytes)
        memcpy(out + pre + hlen, data, nbytes);
    return pre + hlen + nbytes;
}

static void test_npy_read(void **state)
{
    (void)state;
    uint8_t buf[1024];
    evo_error err = {0};
    cli_tensor t;
    const float f[6] = {1, 2, 3, 4, 5, 6};
    size_t n = tio_npy(buf, sizeof buf, 1,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
    char path[256];
    tio_path(path, sizeof path, "a.npy");
    tio_write_bytes(path, buf, n);
    assert_int_equal(cli_tensor_read(path, &t, &err), EVO_OK);
    evo_shape s23 = {2, {2, 3}};
    assert_int_equal(t.t.dtype, EVO_DT_FLOAT32);
    assert_true(evo_shape_equal(&t.t.shape, &s23));
    assert_memory_equal(t.t.data, f, sizeof f);
    cli_tensor_free(&t);

    /* version 2 header, int64, 1-D with the trailing comma, keys reordered */
    const int64_t l[3] = {-1, 0, 1};
    n = tio_npy(buf, sizeof buf, 2, "{'shape': (3,), 'fortran_order': False, 'descr': '<i8'}", l,
                sizeof l);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "b.npy", &t, &err), EVO_OK);
    assert_int_equal(t.t.dtype, EVO_DT_INT64);
    assert_int_equal(t.t.shape.rank, 1);
    assert_int_equal(t.t.shape.dims[0], 3);
    assert_memory_equal(t.t.data, l, sizeof l);
    cli_tensor_free(&t);

    /* scalar bool, int32, uint8, int8 */
    const uint8_t one = 1;
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", &one,
                1);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "c.npy", &t, &err), EVO_OK);
    assert_int_equal(t.t.dtype, EVO_DT_BOOL);
    assert_int_equal(t.t.shape.rank, 0);
    cli_tensor_free(&t);
    static const struct {
        const char *descr;
        evo_dtype dt;
    } kinds[] = {{"<i4", EVO_DT_INT32}, {"|u1", EVO_DT_UINT8}, {"|i1", EVO_DT_INT8}};
    for (size_t k = 0; k < 3; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (4,), }",
                 kinds[k].descr);
        const uint8_t d[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        size_t nb = 4 * evo_dtype_size(kinds[k].dt);
        n = tio_npy(buf, sizeof buf, 1, dict, d, nb);
        assert_int_equal(cli_tensor_parse_npy(buf, n, "d.npy", &t, &err), EVO_OK);
        assert_int_equal(t.t.dtype, kinds[k].dt);
        assert_memory_equal(t.t.data, d, nb);
        cli_tensor_free(&t);
    }
}

static void test_npy_rejects(void **state)
{
    (void)state;
    uint8_t buf[1024];
    evo_error err = {0};
    cli_tensor t;
    const float f[6] = {1, 2, 3, 4, 5, 6};
    size_t n;

    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f,
                sizeof f);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "fortran.npy", &t, &err), EVO_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Fortran"));
    assert_non_null(strstr(err.msg, "fortran.npy"));

    n = tio_npy(buf, sizeof buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", f,
                sizeof f);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "be.npy", &t, &err), EVO_ERR_UNSUPPORTED);

    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f,
                24);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "f8.npy", &t, &err), EVO_ERR_UNSUPPORTED);

    /* data shorter and longer than the header says */
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                f, sizeof f);
    assert_int_equal(cli_tensor_parse_npy(buf, n - 1, "short.npy", &t, &err), EVO_ERR_PARSE);
    buf[n] = 0;
    assert_int_equal(cli_tensor_parse_npy(buf, n + 1, "long.npy", &t, &err), EVO_ERR_PARSE);
    /* header cut off */
    assert_int_not_equal(cli_tensor_parse_npy(buf, 30, "hdr.npy", &t, &err), EVO_OK);
    assert_int_not_equal(cli_tensor_parse_npy(buf, 8, "tiny.npy", &t, &err), EVO_OK);

    /* absurd dims: above the limit, and representable but absent */
    n = tio_npy(buf, sizeof buf, 1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 2), }", f, 0);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "bigdim.npy", &t, &err), EVO_ERR_LIMIT);
    n = tio_npy(buf, sizeof buf, 1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, "
                "2147483647, 2147483647), }",
                f, 0);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "overflow.npy", &t, &err), EVO_ERR_LIMIT);
    n = tio_npy(buf, sizeof buf, 1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", f, 0);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "absent.npy", &t, &err), EVO_ERR_PARSE);
    n = tio_npy(buf, sizeof buf, 1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", f, 4);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "rank9.npy", &t, &err), EVO_ERR_UNSUPPORTED);
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f,
                0);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "neg.npy", &t, &err), EVO_ERR_PARSE);

    /* malformed dicts */
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'shape': (6,), }", f, sizeof f);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "nofo.npy", &t, &err), EVO_ERR_PARSE);
    n = tio_npy(buf, sizeof buf, 1, "not a dict", f, sizeof f);
    assert_int_equal(cli_tensor_parse_npy(buf, n, "nodict.npy", &t, &err), EVO_ERR_PARSE);
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,", f,
                sizeof f);
    assert_int_not_equal(cli_tensor_parse_npy(buf, n, "open.npy", &t, &err), EVO_OK);
    /* unknown version */
    n = tio_npy(buf, sizeof buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f,
                sizeof f);
    buf[6] = 9;
    assert_int_equal(cli_tensor_parse_npy(buf, n, "v9.npy", &t, &err), EVO_ERR_UNSUPPORTED);
    assert_null(t.t.data);
}

static void test_read_file_errors(void **state)
{
    (void)state;
    evo_error err = {0};
    cli_tensor t;
    char path[256];
    tio_path(path, sizeof path, "does-not-exist.pb");
    assert_int_equal(cli_tensor_read(path, &t, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cli_tensor_read(tio_tmpdir, &t, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    /* writing into a missing directory fails cleanly */
    float x = 1;
    evo_tensor tt = {EVO_DT_FLOAT32, {1, {1}}, &x};
    tio_path(path, sizeof path, "no/such/dir/out.pb");
    assert_int_equal(cli_tensor_write_pb(path, "x", &tt, &err), EVO_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pb_roundtrip_all_dtypes),
        cmocka_unit_test(test_pb_roundtrip_scalar_and_empty),
        cmocka_unit_test(test_pb_typed_fields),
        cmocka_unit_test(test_pb_truncated_and_garbage),
        cmocka_unit_test(test_pb_model_is_not_a_tensor),
        cmocka_unit_test(test_pb_absurd_dims),
        cmocka_unit_test(test_pb_unsupported_dtypes),
        cmocka_unit_test(test_pb_onnx_conformance_file),
        cmocka_unit_test(test_npy_read),
        cmocka_unit_test(test_npy_rejects),
        cmocka_unit_test(test_read_file_errors),
    };
    return cmocka_run_group_tests(tests, tio_setup, tio_teardown);
}
