/*
 * Tensor encodings for the wire: raw, fp16, int8 (per-tensor or per-channel
 * scale and zero point), each optionally compressed by zstd or lz4, and the
 * reverse path that restores the dtype the next stage expects.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>

#include "tp_internal.h"

/* zstd level 1: activations compress nearly as well as at higher levels and
 * it is several times faster (see docs/protocol.md for the measurement). */
#define TP_ZSTD_LEVEL 1

static size_t tp_align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

void evo_wire_tensor_clear(evo_wire_tensor *wt)
{
    if (!wt)
        return;
    free(wt->owned_);
    memset(wt, 0, sizeof *wt);
    wt->index = -1;
    wt->quant_axis = -1;
}

/* Per-channel (or per-tensor) asymmetric int8 parameters that keep 0 exact. */
static void tp_quant_params(float lo, float hi, float *scale, int32_t *zp)
{
    if (lo > 0.0f)
        lo = 0.0f;
    if (hi < 0.0f)
        hi = 0.0f;
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s))
        s = 1.0f;
    long z = lrintf(-128.0f - lo / s);
    if (z < -128)
        z = -128;
    if (z > 127)
        z = 127;
    *scale = s;
    *zp = (int32_t)z;
}

static int8_t tp_quantize(float x, float inv_scale, int32_t zp)
{
    if (!isfinite(x))
        x = x > 0 ? 3.0e38f : (x < 0 ? -3.0e38f : 0.0f);
    float q = rintf(x * inv_scale) + (float)zp;
    if (q < -128.0f)
        q = -128.0f;
    if (q > 127.0f)
        q = 127.0f;
    return (int8_t)q;
}

/* outer x channels x inner view of a shape around axis. */
static void tp_split_axis(const evo_shape *s, int32_t axis, size_t *outer, size_t *ch,
                          size_t *inner)
{
    *outer = *ch = *inner = 1;
    for (int32_t d = 0; d < s->rank; d++) {
        if (d < axis)
            *outer *= (size_t)s->dims[d];
        else if (d == axis)
            *ch = (size_t)s->dims[d];
        else
            *inner *= (size_t)s->dims[d];
    }
}

static void tp_encode_int8(const float *x, const evo_shape *s, int32_t axis, uint8_t *quant,
                           int8_t *q)
{
    size_t outer, ch, inner;
    tp_split_axis(s, axis, &outer, &ch, &inner);
    if (axis < 0) { /* one scale for the whole tensor */
        inner *= outer * ch;
        outer = ch = 1;
    }
    for (size_t c = 0; c < ch; c++) {
        float lo = 0.0f, hi = 0.0f, scale;
        int32_t zp;
        for (size_t o = 0; o < outer; o++) {
            const float *p = x + (o * ch + c) * inner;
            for (size_t i = 0; i < inner; i++) {
                if (!isfinite(p[i]))
                    continue;
                lo = p[i] < lo ? p[i] : lo;
                hi = p[i] > hi ? p[i] : hi;
            }
        }
        tp_quant_params(lo, hi, &scale, &zp);
        uint32_t sb;
        memcpy(&sb, &scale, 4);
        tp_wr32(quant + TP_QUANT_REC * c, sb);
        tp_wr32(quant + TP_QUANT_REC * c + 4, (uint32_t)zp);
        float inv = 1.0f / scale;
        for (size_t o = 0; o < outer; o++) {
            const float *p = x + (o * ch + c) * inner;
            int8_t *d = q + (o * ch + c) * inner;
            for (size_t i = 0; i < inner; i++)
                d[i] = tp_quantize(p[i], inv, zp);
        }
    }
}

evo_status evo_wire_tensor_encode(evo_wire_tensor *wt, const char *name, int32_t index,
                                  const evo_tensor *t, evo_encoding enc, evo_compress comp,
                                  int32_t quant_axis, evo_error *err)
{
    size_t nbytes;
    evo_status rv;
    memset(wt, 0, sizeof *wt);
    wt->index = index;
    wt->quant_axis = -1;
    if (!t || (name && strlen(name) >= EVO_WIRE_STR_MAX) || index < -1 || (!name && index < 0))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "a wire tensor needs a name shorter than %d bytes or an index",
                             EVO_WIRE_STR_MAX);
    if (name)
        strcpy(wt->name, name);
    if ((unsigned)enc >= EVO_ENC_END_ || (unsigned)comp >= EVO_COMP_END_)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "unknown tensor encoding %d/%d", (int)enc,
                             (int)comp);
    if ((rv = evo_shape_nbytes(&t->shape, t->dtype, &nbytes)) != EVO_OK)
        return evo_error_set(err, rv, "tensor '%s' has no size (dtype %s)", wt->name,
                             evo_dtype_name(t->dtype));
    if (nbytes && !t->data)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "tensor '%s' has no data", wt->name);
    if (enc != EVO_ENC_RAW && t->dtype != EVO_DT_FLOAT32)
        return evo_error_set(err, EVO_ERR_TYPE, "%s encoding needs float32, tensor '%s' is %s",
                             evo_encoding_name(enc), wt->name, evo_dtype_name(t->dtype));
    if (enc == EVO_ENC_INT8 && (quant_axis < -1 || quant_axis >= t->shape.rank))
        return evo_error_set(err, EVO_ERR_SHAPE, "int8 axis %d out of range for rank %d",
                             (int)quant_axis, (int)t->shape.rank);
    wt->dtype = t->dtype;
    wt->shape = t->shape;
    wt->encoding = enc;
    wt->compress = EVO_COMP_NONE;

    size_t numel = t->dtype == EVO_DT_UNDEFINED ? 0 : nbytes / evo_dtype_size(t->dtype);
    size_t enc_len = enc == EVO_ENC_RAW ? nbytes : enc == EVO_ENC_FP16 ? numel * 2 : numel;
    size_t qcount = 0;
    if (enc == EVO_ENC_INT8)
        qcount = quant_axis < 0 ? 1 : (size_t)t->shape.dims[quant_axis];
    size_t qbytes = tp_align_up(qcount * TP_QUANT_REC, TP_PAYLOAD_ALIGN);

    size_t bound = 0;
    if (comp == EVO_COMP_ZSTD)
        bound = ZSTD_compressBound(enc_len);
    else if (comp == EVO_COMP_LZ4) {
        if (enc_len > LZ4_MAX_INPUT_SIZE)
            return evo_error_set(err, EVO_ERR_LIMIT, "lz4 cannot compress %zu bytes", enc_len);
        bound = (size_t)LZ4_compressBound((int)enc_len);
    }
    /* layout of owned_: [quant records][encoded elements][compressed bytes] */
    size_t enc_off = qbytes;
    size_t comp_off = enc_off + (enc == EVO_ENC_RAW ? 0 : tp_align_up(enc_len, 64));
    size_t total = comp_off + bound;
    const uint8_t *encoded = (const uint8_t *)t->data;
    if (total) {
        wt->owned_ = malloc(total);
        if (!wt->owned_)
            return evo_error_set(err, EVO_ERR_NOMEM, "no memory to encode tensor '%s'", wt->name);
    }
    uint8_t *own = (uint8_t *)wt->owned_;
    if (enc == EVO_ENC_FP16) {
        const float *x = (const float *)t->data;
        uint8_t *h = own + enc_off;
        for (size_t i = 0; i < numel; i++)
            tp_wr16(h + 2 * i, evo_f32_to_f16(x[i]));
        encoded = h;
    } else if (enc == EVO_ENC_INT8) {
        tp_encode_int8((const float *)t->data, &t->shape, quant_axis, own,
                       (int8_t *)(own + enc_off));
        encoded = own + enc_off;
        wt->quant = own;
        wt->quant_count = (uint32_t)qcount;
        wt->quant_axis = quant_axis;
    }
    wt->encoded_len = enc_len;
    wt->payload = encoded;
    wt->payload_len = enc_len;
    if (comp != EVO_COMP_NONE && enc_len > 0) {
        size_t got;
        if (comp == EVO_COMP_ZSTD) {
            got = ZSTD_compress(own + comp_off, bound, encoded, enc_len, TP_ZSTD_LEVEL);
            if (ZSTD_isError(got)) {
                evo_wire_tensor_clear(wt);
                return evo_error_set(err, EVO_ERR_INTERNAL, "zstd failed on tensor: %s",
                                     ZSTD_getErrorName(got));
            }
        } else {
            int n = LZ4_compress_default((const char *)encoded, (char *)own + comp_off,
                                         (int)enc_len, (int)bound);
            if (n <= 0) {
                evo_wire_tensor_clear(wt);
                return evo_error_set(err, EVO_ERR_INTERNAL, "lz4 failed on a tensor");
            }
            got = (size_t)n;
        }
        /* Compression that does not shrink the tensor only costs the receiver
         * time; send it uncompressed instead. */
        if (got < enc_len) {
            wt->compress = comp;
            wt->payload = own + comp_off;
            wt->payload_len = got;
        }
    }
    return EVO_OK;
}

evo_status evo_wire_tensor_decoded_size(const evo_wire_tensor *wt, evo_dtype want, size_t *out,
                                        evo_error *err)
{
    evo_status rv = evo_shape_nbytes(&wt->shape, want, out);
    if (rv != EVO_OK)
        return evo_error_set(err, rv, "tensor '%s' cannot be decoded as %s", wt->name,
                             evo_dtype_name(want));
    return EVO_OK;
}

evo_status evo_wire_tensor_view(const evo_wire_tensor *wt, evo_dtype want, const void **data)
{
    size_t es = evo_dtype_size(want);
    if (wt->encoding != EVO_ENC_RAW || wt->compress != EVO_COMP_NONE || wt->dtype != want ||
        es == 0)
        return EVO_ERR_UNSUPPORTED;
    size_t al = es > 8 ? 8 : es;
    if ((uintptr_t)wt->payload % al)
        return EVO_ERR_UNSUPPORTED;
    *data = wt->payload;
    return EVO_OK;
}

static evo_status tp_decompress(const evo_wire_tensor *wt, void *dst, evo_error *err)
{
    if (wt->compress == EVO_COMP_ZSTD) {
        size_t got =
            ZSTD_decompress(dst, (size_t)wt->encoded_len, wt->payload, (size_t)wt->payload_len);
        if (ZSTD_isError(got) || got != wt->encoded_len)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "tensor '%s': zstd payload does not decompress to %llu bytes",
                                 wt->name, (unsigned long long)wt->encoded_len);
        return EVO_OK;
    }
    if (wt->encoded_len > LZ4_MAX_INPUT_SIZE || wt->payload_len > INT_MAX)
        return evo_error_set(err, EVO_ERR_LIMIT, "tensor '%s' is too large for lz4", wt->name);
    int n = LZ4_decompress_safe((const char *)wt->payload, (char *)dst, (int)wt->payload_len,
                                (int)wt->encoded_len);
    if (n < 0 || (uint64_t)n != wt->encoded_len)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "tensor '%s': lz4 payload does not decompress to %llu bytes", wt->name,
                             (unsigned long long)wt->encoded_len);
    return EVO_OK;
}

evo_status evo_wire_tensor_decode(const evo_wire_tensor *wt, evo_dtype want, void *dst,
                                  size_t dst_len, const evo_tp_limits *lim, evo_error *err)
{
    evo_tp_limits dl;
    size_t need, numel;
    evo_status rv;
    if (!lim) {
        evo_tp_limits_default(&dl);
        lim = &dl;
    }
    if ((rv = evo_wire_tensor_decoded_size(wt, want, &need, err)) != EVO_OK)
        return rv;
    if (dst_len < need || (need && !dst))
        return evo_error_set(err, EVO_ERR_NOMEM, "tensor '%s' needs %zu bytes, buffer has %zu",
                             wt->name, need, dst_len);
    if (need > lim->max_tensor_bytes || wt->encoded_len > lim->max_tensor_bytes)
        return evo_error_set(err, EVO_ERR_LIMIT, "tensor '%s' exceeds the %llu byte limit",
                             wt->name, (unsigned long long)lim->max_tensor_bytes);
    numel = need / evo_dtype_size(want);
    bool conv_ok =
        wt->encoding == EVO_ENC_RAW
            ? (wt->dtype == want || ((wt->dtype == EVO_DT_FLOAT32 || wt->dtype == EVO_DT_FLOAT16) &&
                                     (want == EVO_DT_FLOAT32 || want == EVO_DT_FLOAT16)))
            : (want == EVO_DT_FLOAT32 || want == EVO_DT_FLOAT16);
    if (!conv_ok)
        return evo_error_set(err, EVO_ERR_TYPE, "tensor '%s' (%s, %s) cannot be restored as %s",
                             wt->name, evo_dtype_name(wt->dtype), evo_encoding_name(wt->encoding),
                             evo_dtype_name(want));
    uint64_t expect = wt->encoding == EVO_ENC_RAW    ? (uint64_t)numel * evo_dtype_size(wt->dtype)
                      : wt->encoding == EVO_ENC_FP16 ? (uint64_t)numel * 2
                                                     : (uint64_t)numel;
    if (wt->encoded_len != expect || (wt->compress == EVO_COMP_NONE && wt->payload_len != expect))
        return evo_error_set(err, EVO_ERR_PARSE, "tensor '%s' payload size does not match shape",
                             wt->name);

    /* The common case needs at most one copy: straight into dst. */
    if (wt->encoding == EVO_ENC_RAW && wt->dtype == want) {
        if (wt->compress == EVO_COMP_NONE) {
            if (need)
                memcpy(dst, wt->payload, need);
            return EVO_OK;
        }
        return tp_decompress(wt, dst, err);
    }
    const uint8_t *src = (const uint8_t *)wt->payload;
    void *tmp = NULL;
    if (wt->compress != EVO_COMP_NONE) {
        tmp = malloc(expect ? (size_t)expect : 1);
        if (!tmp)
            return evo_error_set(err, EVO_ERR_NOMEM, "no memory to decompress tensor '%s'",
                                 wt->name);
        if ((rv = tp_decompress(wt, tmp, err)) != EVO_OK) {
            free(tmp);
            return rv;
        }
        src = (const uint8_t *)tmp;
    }
    float *f32 = want == EVO_DT_FLOAT32 ? (float *)dst : NULL;
    uint16_t *f16 = want == EVO_DT_FLOAT16 ? (uint16_t *)dst : NULL;
    bool src_is_f16 = wt->encoding == EVO_ENC_FP16 ||
                      (wt->encoding == EVO_ENC_RAW && wt->dtype == EVO_DT_FLOAT16);
    if (src_is_f16) {
        for (size_t i = 0; i < numel; i++) {
            uint16_t h = tp_rd16(src + 2 * i);
            if (f32)
                f32[i] = evo_f16_to_f32(h);
            else
                f16[i] = h;
        }
    } else if (wt->encoding == EVO_ENC_RAW) { /* float32 -> float16 */
        for (size_t i = 0; i < numel; i++)
            f16[i] = evo_f32_to_f16(tp_rdf32(src + 4 * i));
    } else { /* int8 */
        size_t outer, ch, inner;
        if (wt->quant_axis < 0) {
            outer = 1;
            ch = 1;
            inner = numel;
        } else {
            tp_split_axis(&wt->shape, wt->quant_axis, &outer, &ch, &inner);
        }
        if (ch != wt->quant_count || !wt->quant) {
            free(tmp);
            return evo_error_set(err, EVO_ERR_PARSE, "tensor '%s' has %u scales, needs %zu",
                                 wt->name, wt->quant_count, ch);
        }
        for (size_t o = 0; o < outer; o++)
            for (size_t c = 0; c < ch; c++) {
                float s = tp_rdf32(wt->quant + TP_QUANT_REC * c);
                int32_t zp = (int32_t)tp_rd32(wt->quant + TP_QUANT_REC * c + 4);
                size_t base = (o * ch + c) * inner;
                for (size_t i = 0; i < inner; i++) {
                    float v = (float)((int32_t)(int8_t)src[base + i] - zp) * s;
                    if (f32)
                        f32[base + i] = v;
                    else
                        f16[base + i] = evo_f32_to_f16(v);
                }
            }
    }
    free(tmp);
    return EVO_OK;
}
