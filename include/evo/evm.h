/*
 * evo compact models (.evm): a compiled program (tensor table, node table
 * with parsed op params, memory plan, weights) in one little-endian blob that
 * a device runs in place. docs/format.md describes every byte.
 *
 * Loading (portable, core/evm_load.c; no allocation, no stdio, no OS):
 *
 *     evo_evm_info info;
 *     if ((rv = evo_evm_read_header(blob, len, &info, &err)) != EVO_OK) ...
 *     size_t work_bytes = evo_evm_work_size(&info);   // exact, small
 *     evo_program prog;
 *     evo_evm_load_options o = {.sha256 = my_sha256};  // or .flags = EVO_EVM_SKIP_DIGEST
 *     rv = evo_evm_load(blob, len, &o, work, work_bytes, &prog, &err);
 *     ... evo_exec_init(&x, &prog, arena, evo_program_arena_size(&prog)) ...
 *
 * The loader never copies weights: constant tensors, op params and names
 * point into the blob, which must stay alive and unchanged while the program
 * is used, and must start at an address aligned to EVO_EVM_MIN_ALIGN (64 is
 * better: then weights are cache-line aligned as written). The program tables
 * (tensor and node records, index lists) are decoded into the caller's work
 * buffer. Every count, offset, index, size and alignment is checked before
 * use, and every node's op re-infers its output types and shapes from the
 * stored inputs, so a program that loads is safe to hand to the executor.
 *
 * Writing (hosted, modeldb/evm_write.c): evo_evm_write turns a program made by
 * evo_program_build into a blob (malloc'd).
 */
#ifndef EVO_EVM_H
#define EVO_EVM_H

#include "evo/core.h"
#include "evo/node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVO_EVM_MAGIC "EVOM"      /* the first 4 bytes of every .evm */
#define EVO_EVM_VERSION 1u        /* the format version this build reads and writes */
#define EVO_EVM_HEADER_BYTES 128u /* fixed header size of version 1 */
#define EVO_EVM_DIGEST_BYTES 32u  /* SHA-256 */
#define EVO_EVM_DIGEST_FROM 40u   /* the digest covers bytes [40, file_bytes) */
#define EVO_EVM_MIN_ALIGN 16u     /* blob base and every constant offset */
#define EVO_EVM_CONST_ALIGN 64u   /* what the writer uses (EVO_ARENA_ALIGN) */
#define EVO_EVM_NONE 0xFFFFFFFFu  /* "no string" / "no params" reference */

/* Record sizes in the file (format version 1). */
#define EVO_EVM_TENSOR_BYTES 56u
#define EVO_EVM_NODE_BYTES 40u
#define EVO_EVM_OP_BYTES 8u

/* Header flags. */
enum {
    EVO_EVM_F_NAMES = 1u << 0, /* the string table holds tensor, node and op names */
};

/* One-shot SHA-256 of len bytes into out. Hosted callers pass a wrapper of
 * mbedTLS (evo_sha256); a device may pass its own hardware hash. */
typedef void (*evo_evm_sha256_fn)(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES],
                                  void *user);

/* The header's facts, decoded and range-checked by evo_evm_read_header. */
typedef struct evo_evm_info {
    uint32_t version;
    uint32_t flags; /* EVO_EVM_F_* */
    uint8_t digest[EVO_EVM_DIGEST_BYTES];
    uint64_t file_bytes;
    uint64_t activation_bytes;       /* planned activation area */
    uint64_t activation_lower_bound; /* max over steps of bytes alive at once */
    uint64_t weights_bytes;          /* sum of constant tensors' sizes */
    uint64_t const_bytes;            /* constant section, padding included */
    uint32_t const_align;            /* constant section alignment in the file */
    uint32_t n_tensors, n_nodes, n_indices, n_inputs, n_outputs, n_ops, n_params;
    uint32_t max_node_io;  /* largest n_in + n_out of a node */
    uint32_t string_bytes; /* 0 when names were stripped */
    /* Section offsets from the start of the blob, derived from the counts
     * (the sections follow the header in this order). */
    uint64_t tensors_off, nodes_off, ops_off, indices_off, params_off, strings_off, consts_off;
} evo_evm_info;

/* Check magic, version, header fields and that the blob is exactly
 * file_bytes long; fill *info. Does not look past the header, except that the
 * derived section layout must end at file_bytes. */
evo_status evo_evm_read_header(const void *blob, size_t len, evo_evm_info *info, evo_error *err);

/* Exact bytes of the work buffer evo_evm_load needs for this model (the work
 * buffer must be aligned to 8); SIZE_MAX if it would overflow size_t. */
size_t evo_evm_work_size(const evo_evm_info *info);

enum {
    /* Do not check the SHA-256 digest (e.g. the blob sits in flash that was
     * verified when it was written, or the device has no hash). */
    EVO_EVM_SKIP_DIGEST = 1u << 0,
};

typedef struct evo_evm_load_options {
    uint32_t flags;           /* EVO_EVM_SKIP_DIGEST */
    evo_evm_sha256_fn sha256; /* required unless EVO_EVM_SKIP_DIGEST */
    void *sha256_user;
} evo_evm_load_options;

/* Verify the blob and describe it as a program in *out. Tables go to `work`
 * (evo_evm_work_size bytes, aligned to 8); constants, params and names point
 * into `blob`. Keep both alive while *out is used. *out needs no freeing
 * (evo_program_free ignores it). Errors name the table entry at fault: e.g.
 * "node 3 (Conv): input 1 refers to tensor 99 of 12". */
evo_status evo_evm_load(const void *blob, size_t len, const evo_evm_load_options *opt, void *work,
                        size_t work_bytes, evo_program *out, evo_error *err);

/* The name the op table gives op_id (from the string table), or "" when
 * names were stripped or op_id is not listed. Only for a blob that passed
 * evo_evm_load (or at least evo_evm_read_header: then it still checks every
 * offset it reads). */
const char *evo_evm_op_name(const void *blob, const evo_evm_info *info, uint16_t op_id);

/* ---------------------------------------------------------------- writing (hosted) */

typedef struct evo_evm_write_options {
    bool strip_names;     /* no string table: names become "" */
    uint32_t const_align; /* 0 = EVO_EVM_CONST_ALIGN; power of two >= 16 */
} evo_evm_write_options;

/* Serialize a program (from evo_program_build, or a loaded one) into a new
 * malloc'd blob *out of *out_len bytes, digest included (sha256 is required).
 * The caller frees *out. Errors name the tensor or node that cannot be
 * stored (e.g. an op id above 65535 or a dimension the format cannot hold). */
evo_status evo_evm_write(const evo_program *p, const evo_evm_write_options *opt,
                         evo_evm_sha256_fn sha256, void *sha256_user, void **out, size_t *out_len,
                         evo_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EVO_EVM_H */
