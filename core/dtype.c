/* Element type facts and half-precision conversion. */
#include <string.h>

#include "evo/core.h"

typedef struct dtype_info {
    const char *name;
    size_t size;
    bool supported; /* kernels can hold it */
} dtype_info;

static const dtype_info dtype_table[EVO_DT_COUNT_] = {
    [EVO_DT_UNDEFINED] = {"undefined", 0, false}, [EVO_DT_FLOAT32] = {"float32", 4, true},
    [EVO_DT_UINT8] = {"uint8", 1, true},          [EVO_DT_INT8] = {"int8", 1, true},
    [EVO_DT_UINT16] = {"uint16", 2, false},       [EVO_DT_INT16] = {"int16", 2, false},
    [EVO_DT_INT32] = {"int32", 4, true},          [EVO_DT_INT64] = {"int64", 8, true},
    [EVO_DT_STRING] = {"string", 0, false},       [EVO_DT_BOOL] = {"bool", 1, true},
    [EVO_DT_FLOAT16] = {"float16", 2, true},      [EVO_DT_FLOAT64] = {"float64", 8, false},
    [EVO_DT_UINT32] = {"uint32", 4, false},       [EVO_DT_UINT64] = {"uint64", 8, false},
    [EVO_DT_COMPLEX64] = {"complex64", 0, false}, [EVO_DT_COMPLEX128] = {"complex128", 0, false},
    [EVO_DT_BFLOAT16] = {"bfloat16", 2, false},
};

size_t evo_dtype_size(evo_dtype dt)
{
    return (unsigned)dt < EVO_DT_COUNT_ ? dtype_table[dt].size : 0;
}

const char *evo_dtype_name(evo_dtype dt)
{
    return (unsigned)dt < EVO_DT_COUNT_ ? dtype_table[dt].name : "unknown";
}

bool evo_dtype_is_supported(evo_dtype dt)
{
    return (unsigned)dt < EVO_DT_COUNT_ && dtype_table[dt].supported;
}

uint16_t evo_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xffu) /* inf or nan; keep nan quiet */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u)))
        half++; /* may carry into the exponent, which is the right result */
    return (uint16_t)half;
}

float evo_f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else { /* subnormal: normalize */
            int32_t e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}
