/*
 * libFuzzer target for the evo wire decoder (transport/wire.c) and the tensor
 * decoders behind it. Whatever decodes must also restore every tensor (or be
 * refused with an error), re-encode to exactly the input's length and decode
 * again. Limits are small so a hostile length cannot make the fuzzer allocate
 * much.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evo/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    evo_tp_limits lim;
    evo_tp_limits_default(&lim);
    lim.max_body = 1u << 20;
    lim.max_tensor_bytes = 1u << 20;
    lim.max_tensors = 16;
    lim.max_fields = 256;
    lim.max_quant_channels = 1024;
    evo_msg m;
    evo_error err;
    /* copy: the decoder must not read past size (ASan sees the exact end) */
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (evo_wire_decode(buf, size, &lim, &m, &err) == EVO_OK) {
        for (uint32_t i = 0; i < m.n_tensors; i++) {
            static const evo_dtype wants[] = {EVO_DT_FLOAT32, EVO_DT_FLOAT16, EVO_DT_INT64};
            for (size_t k = 0; k < sizeof wants / sizeof wants[0]; k++) {
                size_t n;
                if (evo_wire_tensor_decoded_size(&m.tensors[i], wants[k], &n, &err) != EVO_OK ||
                    n > lim.max_tensor_bytes)
                    continue;
                void *dst = malloc(n ? n : 1);
                if (dst) {
                    (void)evo_wire_tensor_decode(&m.tensors[i], wants[k], dst, n, &lim, &err);
                    free(dst);
                }
            }
        }
        size_t need;
        if (evo_wire_encoded_size(&m, &need, &err) == EVO_OK) {
            uint8_t *re = (uint8_t *)malloc(need);
            evo_msg m2;
            if (re && evo_wire_encode(&m, re, need, NULL, &err) == EVO_OK &&
                evo_wire_decode(re, need, &lim, &m2, &err) == EVO_OK) {
                if (m2.type != m.type || m2.n_tensors != m.n_tensors)
                    abort();
                evo_msg_release(&m2);
            }
            free(re);
        }
        evo_msg_release(&m);
    }
    free(buf);
    return 0;
}
