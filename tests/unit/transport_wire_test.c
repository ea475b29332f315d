/*
 * Wire format and tensor encodings: every message type round-trips through
 * encode/decode, the header layout matches docs/protocol.md byte for byte,
 * encodings restore values within their documented error, and malformed
 * input (lying lengths, truncation, unknown types/versions, limits) is
 * rejected with the right status.
 */
#include <math.h>

#include "transport_testutil.h"

static void test_header_layout(void **state)
{
    (void)state;
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_ACK);
    m.request_id = 8;
    m.sequence = 0x01020304;
    m.flags = EVO_MSG_FLAG_LAST;
    m.u.ack.value = 42;
    /* hand-encoded per docs/protocol.md: header, then field VALUE(20) = 42 */
    static const uint8_t want[48] = {'E', 'V', 'O', 'W', 1, 0, 8, 0, 1,  0, 0, 0, 4, 3, 2, 1,
                                     8,   0,   0,   0,   0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0,
                                     20,  0,   0,   0,   8, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0};
    size_t len;
    uint8_t *buf = tt_encode(&m, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
}

static void test_roundtrip_all_types(void **state)
{
    (void)state;
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    /* the sample tensors exercise both compressors */
    assert_int_equal(s->tensors[4].compress, EVO_COMP_ZSTD);
    assert_int_equal(s->tensors[5].compress, EVO_COMP_LZ4);
    for (int t = 0; t < TT_NTYPES; t++) {
        size_t len;
        uint8_t *buf = tt_encode(&s->msgs[t], &len);
        evo_msg d;
        evo_error err;
        assert_int_equal(evo_wire_decode(buf, len, NULL, &d, &err), EVO_OK);
        tt_assert_msg_equal(&s->msgs[t], &d);
        /* re-encoding a decoded message gives the same bytes */
        size_t len2;
        uint8_t *buf2 = tt_encode(&d, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        free(buf2);
        evo_msg_release(&d);
        free(buf);
    }
    tt_free_samples(s);
    free(s);
}

static void test_tensor_values(void **state)
{
    (void)state;
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    size_t len;
    uint8_t *buf = tt_encode(&s->msgs[4], &len);
    evo_msg d;
    evo_error err;
    assert_int_equal(evo_wire_decode(buf, len, NULL, &d, &err), EVO_OK);
    float out[2 * 8 * 64];
    uint16_t h[2 * 8 * 64];
    /* raw float32: zero-copy view and exact decode */
    const void *view = NULL;
    assert_int_equal(evo_wire_tensor_view(&d.tensors[0], EVO_DT_FLOAT32, &view), EVO_OK);
    assert_ptr_equal((const uint8_t *)view, (const uint8_t *)d.tensors[0].payload);
    assert_memory_equal(view, s->act, sizeof s->act);
    assert_int_equal(evo_wire_tensor_view(&d.tensors[2], EVO_DT_FLOAT32, &view),
                     EVO_ERR_UNSUPPORTED);
    /* raw int64 */
    int64_t ids[5];
    assert_int_equal(
        evo_wire_tensor_decode(&d.tensors[1], EVO_DT_INT64, ids, sizeof ids, NULL, &err), EVO_OK);
    assert_memory_equal(ids, s->ids, sizeof ids);
    assert_int_equal(
        evo_wire_tensor_decode(&d.tensors[1], EVO_DT_FLOAT32, out, sizeof out, NULL, &err),
        EVO_ERR_TYPE);
    /* fp16: relative error of half precision */
    assert_int_equal(
        evo_wire_tensor_decode(&d.tensors[2], EVO_DT_FLOAT32, out, sizeof out, NULL, &err), EVO_OK);
    for (int i = 0; i < 1024; i++)
        assert_true(fabsf(out[i] - s->act[i]) <= fabsf(s->act[i]) * (1.0f / 1024) + 1e-7f);
    assert_int_equal(evo_wire_tensor_decode(&d.tensors[2], EVO_DT_FLOAT16, h, sizeof h, NULL, &err),
                     EVO_OK);
    assert_int_equal(h[3], evo_f32_to_f16(s->act[3]));
    /* int8 per tensor and per channel (+zstd): error at most half a step,
     * zeros exact */
    for (int t = 3; t <= 4; t++) {
        assert_int_equal(
            evo_wire_tensor_decode(&d.tensors[t], EVO_DT_FLOAT32, out, sizeof out, NULL, &err),
            EVO_OK);
        for (int i = 0; i < 1024; i++) {
            int ch = (i / 64) % 8;
            float scale = tp_test_scale(&d.tensors[t], t == 3 ? 0 : ch);
            assert_true(fabsf(out[i] - s->act[i]) <= scale * 0.5f + 1e-6f);
            if (s->act[i] == 0.0f)
                assert_true(out[i] == 0.0f);
        }
    }
    assert_int_equal(d.tensors[4].quant_count, 8);
    /* raw + lz4 is exact */
    assert_int_equal(
        evo_wire_tensor_decode(&d.tensors[5], EVO_DT_FLOAT32, out, sizeof out, NULL, &err), EVO_OK);
    assert_memory_equal(out, s->act, sizeof s->act);
    /* too small a destination */
    assert_int_equal(evo_wire_tensor_decode(&d.tensors[5], EVO_DT_FLOAT32, out, 100, NULL, &err),
                     EVO_ERR_NOMEM);
    evo_msg_release(&d);
    free(buf);
    tt_free_samples(s);
    free(s);
}

static void test_int8_hand_values(void **state)
{
    (void)state;
    /* min -1, max 1.55: scale 2.55/255 = 0.01, zero point round(-128 + 100) = -28 */
    float x[4] = {-1.0f, 0.0f, 0.5f, 1.55f};
    evo_tensor t = {EVO_DT_FLOAT32, {1, {4}}, x};
    evo_wire_tensor w;
    evo_error err;
    assert_int_equal(evo_wire_tensor_encode(&w, "x", -1, &t, EVO_ENC_INT8, EVO_COMP_NONE, -1, &err),
                     EVO_OK);
    const int8_t *q = w.payload;
    assert_int_equal(q[0], -128);
    assert_int_equal(q[1], -28);
    assert_int_equal(q[2], 22);
    assert_int_equal(q[3], 127);
    float sc;
    memcpy(&sc, w.quant, 4);
    assert_float_equal(sc, 0.01f, 1e-6f);
    int32_t zp;
    memcpy(&zp, w.quant + 4, 4);
    assert_int_equal(zp, -28);
    float back[4];
    assert_int_equal(evo_wire_tensor_decode(&w, EVO_DT_FLOAT32, back, sizeof back, NULL, &err),
                     EVO_OK);
    assert_float_equal(back[0], -1.0f, 1e-5f);
    assert_true(back[1] == 0.0f);
    assert_float_equal(back[2], 0.5f, 1e-5f);
    assert_float_equal(back[3], 1.55f, 1e-5f);
    evo_wire_tensor_clear(&w);
    /* int8 of an int64 tensor is refused */
    int64_t l[2] = {1, 2};
    evo_tensor ti = {EVO_DT_INT64, {1, {2}}, l};
    assert_int_equal(
        evo_wire_tensor_encode(&w, "l", -1, &ti, EVO_ENC_INT8, EVO_COMP_NONE, -1, &err),
        EVO_ERR_TYPE);
    assert_int_equal(evo_wire_tensor_encode(&w, "x", -1, &t, EVO_ENC_INT8, EVO_COMP_NONE, 1, &err),
                     EVO_ERR_SHAPE);
    evo_wire_tensor_clear(&w);
}

/* ---------------------------------------------------------------- bad input */

static evo_status tt_decode(const uint8_t *buf, size_t len, const evo_tp_limits *lim)
{
    evo_msg d;
    evo_error err;
    evo_error_clear(&err);
    evo_status st = evo_wire_decode(buf, len, lim, &d, &err);
    if (st == EVO_OK)
        evo_msg_release(&d);
    else
        assert_true(err.msg[0] != '\0'); /* every rejection says why */
    return st;
}

static void tt_set_body_len(uint8_t *buf, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        buf[24 + i] = (uint8_t)(v >> (8 * i));
}

static void test_bad_headers(void **state)
{
    (void)state;
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    size_t len;
    uint8_t *buf = tt_encode(&s->msgs[4], &len);
    uint8_t *b = malloc(len + 16);
    memcpy(b, buf, len);
    assert_int_equal(tt_decode(b, len, NULL), EVO_OK);
    assert_int_equal(tt_decode(b, 0, NULL), EVO_ERR_PARSE);
    assert_int_equal(tt_decode(NULL, 0, NULL), EVO_ERR_PARSE);
    assert_int_equal(tt_decode(b, 31, NULL), EVO_ERR_PARSE);
    /* truncated body: the declared length is more than what arrived */
    for (size_t cut = 32; cut < len; cut += 97)
        assert_int_equal(tt_decode(b, cut, NULL), EVO_ERR_PARSE);
    /* trailing bytes */
    memset(b + len, 0, 16);
    assert_int_equal(tt_decode(b, len + 16, NULL), EVO_ERR_PARSE);
    /* bad magic, version, type */
    b[0] = 'X';
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_PARSE);
    b[0] = 'E';
    b[4] = 2;
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_UNSUPPORTED);
    b[4] = 1;
    b[6] = 0;
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_UNSUPPORTED);
    b[6] = 99;
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_UNSUPPORTED);
    b[6] = EVO_MSG_TENSORS;
    /* a body length that lies upward beyond the limit, and downward */
    tt_set_body_len(b, UINT64_MAX);
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_LIMIT);
    tt_set_body_len(b, len - 32 - 8);
    assert_int_equal(tt_decode(b, len, NULL), EVO_ERR_PARSE);
    tt_set_body_len(b, len - 32);
    /* limits */
    evo_tp_limits lim;
    evo_tp_limits_default(&lim);
    lim.max_tensors = 5;
    assert_int_equal(tt_decode(b, len, &lim), EVO_ERR_LIMIT);
    evo_tp_limits_default(&lim);
    lim.max_body = len - 33;
    assert_int_equal(tt_decode(b, len, &lim), EVO_ERR_LIMIT);
    evo_tp_limits_default(&lim);
    lim.max_tensor_bytes = 4095;
    assert_int_equal(tt_decode(b, len, &lim), EVO_ERR_LIMIT);
    evo_tp_limits_default(&lim);
    lim.max_fields = 4;
    assert_int_equal(tt_decode(b, len, &lim), EVO_ERR_LIMIT);
    evo_tp_limits_default(&lim);
    lim.max_quant_channels = 7;
    assert_int_equal(tt_decode(b, len, &lim), EVO_ERR_LIMIT);
    free(b);
    free(buf);
    tt_free_samples(s);
    free(s);
}

/* Build a TENSORS message with one tensor from raw field bytes. */
static size_t tt_put_field(uint8_t *p, uint16_t tag, uint16_t flags, const void *v, uint32_t n)
{
    p[0] = (uint8_t)tag;
    p[1] = (uint8_t)(tag >> 8);
    p[2] = (uint8_t)flags;
    p[3] = (uint8_t)(flags >> 8);
    for (int i = 0; i < 4; i++)
        p[4 + i] = (uint8_t)(n >> (8 * i));
    if (n)
        memcpy(p + 8, v, n);
    return 8 + n;
}

static size_t tt_tensor_msg(uint8_t *buf, uint32_t dtype, const int32_t *dims, int rank,
                            uint32_t payload_len, uint64_t enc_len, uint16_t extra_tag,
                            uint16_t extra_flags)
{
    uint8_t inner[512];
    size_t n = 0;
    uint32_t idx = 0;
    n += tt_put_field(inner + n, 2, 0, &idx, 4);
    n += tt_put_field(inner + n, 3, 0, &dtype, 4);
    n += tt_put_field(inner + n, 4, 0, dims, (uint32_t)(4 * rank));
    if (enc_len != UINT64_MAX)
        n += tt_put_field(inner + n, 8, 0, &enc_len, 8);
    if (extra_tag)
        n += tt_put_field(inner + n, extra_tag, extra_flags, "abc", 3);
    static uint8_t payload[256];
    n += tt_put_field(inner + n, 9, 0, payload, payload_len);
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_TENSORS);
    size_t len = 0;
    evo_error err;
    assert_int_equal(evo_wire_encode(&m, buf, 1024, &len, &err), EVO_OK);
    len += tt_put_field(buf + len, 16, 0, inner, (uint32_t)n);
    tt_set_body_len(buf, len - 32);
    return len;
}

static void test_bad_tensors(void **state)
{
    (void)state;
    uint8_t buf[1024];
    int32_t dims[2] = {4, 8};
    size_t n;
    evo_msg d;
    evo_error err;
    /* well-formed: 4x8 float32 = 128 bytes */
    n = tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 128, 0, 0);
    assert_int_equal(evo_wire_decode(buf, n, NULL, &d, &err), EVO_OK);
    assert_int_equal(d.n_tensors, 1);
    assert_int_equal(d.tensors[0].shape.dims[1], 8);
    evo_msg_release(&d);
    /* payload shorter / longer than the shape */
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 127, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_PARSE);
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 129, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_PARSE);
    /* declared encoded length lies */
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 1u << 30, 0, 0), NULL),
        EVO_ERR_PARSE);
    /* a shape whose size overflows or exceeds the limit */
    int32_t huge[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, huge, 4, 128, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_LIMIT);
    int32_t neg[1] = {-5};
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, neg, 1, 0, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_LIMIT);
    /* rank above EVO_MAX_RANK */
    int32_t many[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, many, 9, 4, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_LIMIT);
    /* dtypes that cannot travel */
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_STRING, dims, 2, 128, UINT64_MAX, 0, 0), NULL),
        EVO_ERR_UNSUPPORTED);
    assert_int_equal(tt_decode(buf, tt_tensor_msg(buf, 200, dims, 2, 128, UINT64_MAX, 0, 0), NULL),
                     EVO_ERR_UNSUPPORTED);
    /* an unknown optional field is skipped, an unknown critical one refused */
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 128, 77, 0), NULL), EVO_OK);
    assert_int_equal(
        tt_decode(buf, tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 128, 77, 1), NULL),
        EVO_ERR_UNSUPPORTED);
    /* a field whose length runs past the tensor */
    n = tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 128, 0, 0);
    /* header, STAGE field (12 bytes), TENSOR field header, then INDEX */
    buf[32 + 12 + 8 + 4] = 0xff; /* INDEX claims 255 bytes */
    assert_int_equal(tt_decode(buf, n, NULL), EVO_ERR_PARSE);
    /* the outer TENSOR field claims more than the body */
    n = tt_tensor_msg(buf, EVO_DT_FLOAT32, dims, 2, 128, 128, 0, 0);
    buf[32 + 12 + 7] = 0x7f;
    assert_int_equal(tt_decode(buf, n, NULL), EVO_ERR_PARSE);
}

static void test_bad_fields(void **state)
{
    (void)state;
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    size_t len;
    evo_msg d;
    evo_error err;
    /* deploy blob that does not match its digest */
    uint8_t *buf = tt_encode(&s->msgs[2], &len);
    buf[len - 1] ^= 1;
    assert_int_equal(tt_decode(buf, len, NULL), EVO_ERR_MISMATCH);
    free(buf);
    /* a string with a NUL inside, and a too-long string */
    uint8_t b[1024];
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_ERROR);
    size_t n = 0;
    assert_int_equal(evo_wire_encode(&m, b, sizeof b, &n, &err), EVO_OK);
    size_t base = 32;
    base += tt_put_field(b + base, 19, 0, "ab\0cd", 5);
    tt_set_body_len(b, base - 32);
    assert_int_equal(tt_decode(b, base, NULL), EVO_ERR_PARSE);
    char longs[400];
    memset(longs, 'x', sizeof longs);
    base = 32 + tt_put_field(b + 32, 19, 0, longs, sizeof longs);
    tt_set_body_len(b, base - 32);
    assert_int_equal(tt_decode(b, base, NULL), EVO_ERR_LIMIT);
    /* a u32 field of the wrong width */
    base = 32 + tt_put_field(b + 32, 18, 0, "abcdefgh", 8);
    tt_set_body_len(b, base - 32);
    assert_int_equal(tt_decode(b, base, NULL), EVO_ERR_PARSE);
    /* truncated field header */
    base = 32 + 5;
    tt_set_body_len(b, 5);
    assert_int_equal(tt_decode(b, base, NULL), EVO_ERR_PARSE);
    /* corrupted compressed payload: the message decodes, the tensor does not */
    buf = tt_encode(&s->msgs[4], &len);
    assert_int_equal(evo_wire_decode(buf, len, NULL, &d, &err), EVO_OK);
    uint8_t *pl = (uint8_t *)d.tensors[5].payload;
    for (size_t i = 0; i < d.tensors[5].payload_len; i += 3)
        pl[i] ^= 0x5a;
    float out[1024];
    evo_status st =
        evo_wire_tensor_decode(&d.tensors[5], EVO_DT_FLOAT32, out, sizeof out, NULL, &err);
    assert_true(st == EVO_ERR_PARSE || (st == EVO_OK && memcmp(out, s->act, sizeof out)));
    evo_msg_release(&d);
    free(buf);
    tt_free_samples(s);
    free(s);
}

static void test_encode_errors(void **state)
{
    (void)state;
    evo_msg m;
    evo_error err;
    size_t n;
    uint8_t b[64];
    evo_msg_init(&m, EVO_MSG_ACK);
    assert_int_equal(evo_wire_encode(&m, b, 10, &n, &err), EVO_ERR_NOMEM);
    m.type = 0;
    assert_int_equal(evo_wire_encoded_size(&m, &n, &err), EVO_ERR_INVALID_ARG);
    evo_msg_init(&m, EVO_MSG_ACK);
    m.n_tensors = 1;
    assert_int_equal(evo_wire_encoded_size(&m, &n, &err), EVO_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout), cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_tensor_values), cmocka_unit_test(test_int8_hand_values),
        cmocka_unit_test(test_bad_headers),   cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_bad_fields),    cmocka_unit_test(test_encode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
