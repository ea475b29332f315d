/*
 * Internal interface between the ONNX importer's files (onnx_import.c,
 * onnx_tensor.c, opset_upgrade.c). Not part of evo's public API.
 */
#ifndef EVO_MODELDB_ONNX_INTERNAL_H
#define EVO_MODELDB_ONNX_INTERNAL_H

#include "evo/modeldb.h"
#include "onnx.pb-c.h"

/* Defaults of evo_import_limits (see include/evo/modeldb.h). */
#define EVO_ONNX_DEFAULT_MAX_FILE_BYTES (4ull << 30)
#define EVO_ONNX_DEFAULT_MAX_TENSOR_BYTES (2ull << 30)
#define EVO_ONNX_DEFAULT_MAX_NODES 1000000

/* State shared by one import. */
typedef struct evo_onnx_ctx {
    const char *file;      /* name used in messages */
    const char *base_dir;  /* directory of external data files; NULL refuses them */
    evo_import_limits lim; /* with defaults filled in */
    evo_graph *g;
    evo_error *err;
} evo_onnx_ctx;

/* A borrowed string that is never NULL (protobuf-c leaves absent strings NULL). */
static inline const char *evo_onnx_str(const char *s)
{
    return s != NULL ? s : "";
}

/* Map an ONNX data type number to evo_dtype. `what` names the tensor or value
 * in messages ("initializer 'w'"). EVO_ERR_UNSUPPORTED for types newer than
 * ONNX's BFLOAT16 (float8, int4, ...), EVO_ERR_PARSE for numbers ONNX does
 * not define. 0 (UNDEFINED) is returned as EVO_DT_UNDEFINED without error. */
evo_status evo_onnx_dtype(const evo_onnx_ctx *c, int64_t code, const char *what, evo_dtype *out);

/* Decode a TensorProto (initializer or attribute tensor) into dense,
 * native-endian, malloc'd data of exactly evo_shape_nbytes bytes (at least
 * one byte is allocated so that an empty constant still has data). All sizes
 * are checked against the limits before anything is allocated. On failure
 * *data is NULL and c->err names `what`. */
evo_status evo_onnx_decode_tensor(const evo_onnx_ctx *c, const Onnx__TensorProto *tp,
                                  const char *what, evo_dtype *dtype, evo_shape *shape,
                                  void **data);

/* Release everything an evo_attr points to and zero it. */
void evo_onnx_attr_clear(evo_attr *a);

/* Deepest nesting of subgraphs (graph attributes) the importer accepts. */
#define EVO_ONNX_MAX_NESTING 64

/* Scan the wire bytes of a ModelProto before protobuf-c unpacks them:
 * EVO_ERR_LIMIT if subgraphs nest deeper than EVO_ONNX_MAX_NESTING (which
 * would exhaust the stack in protobuf-c's recursive unpacker), else EVO_OK.
 * Malformed bytes pass; the unpacker rejects them. */
evo_status evo_onnx_check_nesting(const void *buf, size_t len);

/* Rewrite one node of an older opset into the newest form kernels implement:
 * attributes that later became inputs turn into constant input values, and
 * attributes that no longer exist and do not change inference are dropped.
 * node->opset is left as the file's version. */
evo_status evo_opset_upgrade_node(evo_graph *g, int32_t node, const char *file, evo_error *err);

#endif /* EVO_MODELDB_ONNX_INTERNAL_H */
