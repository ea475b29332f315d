/*
 * A pre-scan of the protobuf wire format that bounds how deeply subgraphs
 * nest (Model.graph -> Graph.node -> Node.attribute -> Attribute.g/graphs ->
 * Graph ...). protobuf-c unpacks nested messages by recursion without a depth
 * limit, so a small hostile file of nested attributes would overflow the
 * stack. Only that cycle of the schema can nest without bound; every other
 * sub-message is skipped as opaque bytes. Malformed bytes are left for
 * protobuf-c to reject with its own error.
 */
#include "onnx_internal.h"

enum nesting_kind { NEST_MODEL, NEST_GRAPH, NEST_NODE, NEST_ATTR, NEST_OTHER };

/* Field numbers from modeldb/onnx.proto. */
static enum nesting_kind nesting_child(enum nesting_kind kind, uint64_t field)
{
    switch (kind) {
    case NEST_MODEL:
        return field == 7 ? NEST_GRAPH : NEST_OTHER; /* graph */
    case NEST_GRAPH:
        return field == 1 ? NEST_NODE : NEST_OTHER; /* node */
    case NEST_NODE:
        return field == 5 ? NEST_ATTR : NEST_OTHER; /* attribute */
    case NEST_ATTR:
        return (field == 6 || field == 11) ? NEST_GRAPH : NEST_OTHER; /* g, graphs */
    default:
        return NEST_OTHER;
    }
}

static bool nesting_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return false;
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* EVO_ERR_LIMIT when graphs nest deeper than EVO_ONNX_MAX_NESTING. The C
 * recursion is bounded by that limit (three frames per graph level). */
static evo_status nesting_scan(const uint8_t *p, size_t len, enum nesting_kind kind, int graphs)
{
    size_t i = 0;
    while (i < len) {
        uint64_t key, n;
        if (!nesting_varint(p, len, &i, &key))
            return EVO_OK;
        switch (key & 7) {
        case 0:
            if (!nesting_varint(p, len, &i, &n))
                return EVO_OK;
            break;
        case 1:
            if (len - i < 8)
                return EVO_OK;
            i += 8;
            break;
        case 5:
            if (len - i < 4)
                return EVO_OK;
            i += 4;
            break;
        case 2: {
            if (!nesting_varint(p, len, &i, &n) || n > len - i)
                return EVO_OK;
            enum nesting_kind child = nesting_child(kind, key >> 3);
            if (child != NEST_OTHER) {
                int depth = graphs + (child == NEST_GRAPH);
                if (depth > EVO_ONNX_MAX_NESTING)
                    return EVO_ERR_LIMIT;
                evo_status rv = nesting_scan(p + i, (size_t)n, child, depth);
                if (rv != EVO_OK)
                    return rv;
            }
            i += (size_t)n;
            break;
        }
        default: /* groups (3, 4) and invalid wire types: protobuf-c decides */
            return EVO_OK;
        }
    }
    return EVO_OK;
}

evo_status evo_onnx_check_nesting(const void *buf, size_t len)
{
    if (buf == NULL)
        return EVO_OK;
    return nesting_scan(buf, len, NEST_MODEL, 0);
}
