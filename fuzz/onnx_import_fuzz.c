/*
 * libFuzzer target for the ONNX importer: arbitrary bytes through
 * protobuf-c, the graph builder, tensor decoding, opset upgrade and
 * validation. Any crash, leak or sanitizer report is a bug; errors are fine.
 */
#include <stddef.h>
#include <stdint.h>

#include "evo/modeldb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    evo_graph *g = NULL;
    evo_error err;
    /* Default limits: every tensor's bytes must be present in the input
     * (raw or typed), so allocations stay proportional to the input size. */
    if (evo_onnx_load_buffer(data, size, NULL, "fuzz", NULL, &g, &err) == EVO_OK) {
        /* what the rest of evo reads must be consistent */
        for (int32_t i = 0; i < g->n_order; i++)
            if (g->order[i] < 0 || g->order[i] >= g->n_nodes)
                __builtin_trap();
    } else if (err.msg[0] == '\0' || g != NULL) {
        __builtin_trap();
    }
    evo_graph_free(g);
    return 0;
}
