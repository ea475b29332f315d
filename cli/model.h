/*
 * A runnable model for `evo run` and `evo check`: load a file, bind its
 * symbolic dims, compile it to a program, and lay out one exact arena.
 *
 * cli_model_load is the single place that knows model file formats: ONNX,
 * and the compact .evm format (docs/format.md), told apart by content.
 *
 * Ownership: a cli_model owns the graph, the program and the arena; release
 * it with cli_model_free (also after a failed load).
 */
#ifndef EVO_CLI_MODEL_H
#define EVO_CLI_MODEL_H

#include "evo/evm.h"
#include "evo/modeldb.h"
#include "evo/node.h"
#include "tensor_io.h"

typedef struct cli_model_options {
    const evo_dim_binding *dims; /* --dim NAME=VALUE */
    size_t n_dims;
    /* Tensors the caller will feed, in graph-input order (may be none).
     * Their shapes bind the model's symbolic dims; their dtypes and fixed
     * dims must match the model. paths (may be NULL) name them in errors. */
    const cli_tensor *inputs;
    size_t n_inputs;
    const char *const *input_paths;
    /* Skip the graph passes (BatchNorm folding, activation fusion, Identity
     * removal, dead code) that run by default, as ONNX Runtime's do. */
    bool no_optimize;
    /* Intra-op threads (--threads N); 0 or 1 = one thread. */
    int32_t threads;
} cli_model_options;

/* A .evm file read into memory and verified: the program points into blob
 * (constants, params, names) and work (its tables). */
typedef struct cli_evm {
    void *blob; /* EVO_ARENA_ALIGN-aligned copy of the file */
    size_t len;
    evo_evm_info info;
    void *work;
    evo_program prog;
} cli_evm;

/* True if the file starts with the .evm magic (false also if unreadable). */
bool cli_is_evm(const char *path);
/* Read and verify a .evm file (digest included); errors name the file. */
evo_status cli_evm_open(const char *path, cli_evm *e, evo_error *err);
void cli_evm_close(cli_evm *e);
/* SHA-256 through mbedTLS, in the shape the .evm loader and writer take. */
void cli_sha256(const void *data, size_t len, uint8_t out[EVO_EVM_DIGEST_BYTES], void *user);

typedef struct cli_model {
    const char *path;
    evo_graph *graph; /* ONNX: owns the constants the program borrows */
    cli_evm *evm;     /* .evm: owns the blob the program points into */
    evo_program *prog;
    void *arena;
    size_t arena_bytes; /* exactly evo_program_arena_size(prog) */
    evo_exec exec;
    evo_threads *threads; /* owned; NULL for one thread */
    /* Given input k (graph-input order) -> program input index, or -1 when
     * the input was specialized: its value decides a shape (a Reshape's
     * target, a Slice's starts...), so it was bound as a constant. */
    int32_t *given_to_prog;
    size_t n_given;
    size_t n_specialized;
} cli_model;

/* Load and compile `path` and prepare the executor. Errors name the file. */
evo_status cli_model_load(const char *path, const cli_model_options *opt, cli_model *m,
                          evo_error *err);
void cli_model_free(cli_model *m);

/* Only parse the model file: no dim binding, inference or compilation. Tells
 * "evo does not support this model" (EVO_ERR_UNSUPPORTED) apart from "the
 * test data next to it is broken" when a data file cannot be read. */
evo_status cli_model_probe(const char *path, evo_error *err);

/* The given-input index (graph-input order) of program input i. */
size_t cli_model_given_index(const cli_model *m, int32_t i);

/* The program tensor of input/output i (i within the program's counts). */
const evo_prog_tensor *cli_model_input(const cli_model *m, int32_t i);
const evo_prog_tensor *cli_model_output(const cli_model *m, int32_t i);

/* Copy t into given input i (graph-input order) after checking its dtype
 * and shape against the model. A specialized input is not copied: the model
 * was loaded with this data, and a caller with other data reloads. */
evo_status cli_model_set_input(cli_model *m, int32_t i, const cli_tensor *t, const char *path,
                               evo_error *err);
/* Fill every input with seeded pseudo-random data: floats uniform in
 * [-1, 1], integers in [0, 9], bools 0/1. Same seed, same data. */
void cli_model_fill_random(cli_model *m, uint64_t seed);

/* Run once. A failing node is named in the error. */
evo_status cli_model_run(cli_model *m, evo_error *err);

#endif /* EVO_CLI_MODEL_H */
