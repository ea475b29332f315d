/*
 * The device topology: parsing the JSON description (docs/placement.md) and
 * size strings with K/M/G suffixes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pt_internal.h"

const char *evo_pt_encoding_name(evo_pt_encoding enc)
{
    switch (enc) {
    case EVO_PT_ENC_RAW:
        return "raw";
    case EVO_PT_ENC_FP16:
        return "fp16";
    case EVO_PT_ENC_INT8:
        return "int8";
    default:
        return "?";
    }
}

bool evo_pt_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    while (*s == ' ')
        s++;
    if (*s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v) || v < 0)
        return false;
    double mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024.0 * 1024.0;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024.0 * 1024.0 * 1024.0;
        end++;
        break;
    case 't':
    case 'T':
        mul = 1024.0 * 1024.0 * 1024.0 * 1024.0;
        end++;
        break;
    default:
        break;
    }
    if (mul > 1 && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0')
        return false;
    double bytes = v * mul;
    if (bytes >= 18446744073709549568.0 || bytes != floor(bytes))
        return false;
    *out = (uint64_t)bytes;
    return true;
}

void evo_pt_topology_free(evo_pt_topology *t)
{
    if (t == NULL)
        return;
    free(t->devices);
    free(t->links);
    memset(t, 0, sizeof *t);
}

int32_t evo_pt_device_find(const evo_pt_topology *t, const char *name)
{
    for (int32_t i = 0; t != NULL && name != NULL && i < t->n_devices; i++)
        if (strcmp(t->devices[i].name, name) == 0)
            return i;
    return -1;
}

/* A size given as a number of bytes or a string with a suffix. */
static evo_status topo_size(const cJSON *obj, const char *key, const char *file, const char *dev,
                            bool required, uint64_t *out, evo_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL) {
        if (required)
            return evo_error_set(err, EVO_ERR_PARSE, "%s: device '%s' has no \"%s\"", file, dev,
                                 key);
        *out = 0;
        return EVO_OK;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= 0) || d >= 18446744073709549568.0 || d != floor(d))
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: device '%s': \"%s\" must be a whole number of bytes >= 0",
                                 file, dev, key);
        *out = (uint64_t)d;
        return EVO_OK;
    }
    if (!cJSON_IsString(v) || !evo_pt_parse_size(v->valuestring, out))
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: device '%s': \"%s\" must be a size such as 512K, 2M or 1G", file,
                             dev, key);
    return EVO_OK;
}

/* An optional non-negative number; *present tells whether it was given. */
static evo_status topo_number(const cJSON *obj, const char *key, const char *file, const char *what,
                              double *out, bool *present, evo_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = v != NULL;
    if (v == NULL)
        return EVO_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: %s: \"%s\" must be a number >= 0", file, what,
                             key);
    *out = v->valuedouble;
    return EVO_OK;
}

static const char *topo_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static evo_status topo_device(const cJSON *d, int32_t i, const char *file, evo_pt_device *dev,
                              evo_error *err)
{
    if (!cJSON_IsObject(d))
        return evo_error_set(err, EVO_ERR_PARSE, "%s: devices[%d] is not an object", file, (int)i);
    const char *name = topo_string(d, "name");
    if (name == NULL || name[0] == '\0')
        return evo_error_set(err, EVO_ERR_PARSE, "%s: devices[%d] has no \"name\"", file, (int)i);
    if (strlen(name) >= sizeof dev->name)
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: device name '%.40s...' is longer than %d",
                             file, name, (int)sizeof dev->name - 1);
    snprintf(dev->name, sizeof dev->name, "%s", name);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(d, "class");
    if (cls != NULL) {
        if (!cJSON_IsString(cls) || strlen(cls->valuestring) >= sizeof dev->device_class)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: device '%s': \"class\" must be a string of at most %d "
                                 "characters",
                                 file, name, (int)sizeof dev->device_class - 1);
        snprintf(dev->device_class, sizeof dev->device_class, "%s", cls->valuestring);
    }
    evo_status st;
    if ((st = topo_size(d, "memory", file, name, true, &dev->memory_bytes, err)) != EVO_OK ||
        (st = topo_size(d, "flash", file, name, false, &dev->flash_bytes, err)) != EVO_OK)
        return st;
    if (dev->memory_bytes == 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: device '%s' has no memory", file, name);
    bool has;
    char what[EVO_PT_NAME_MAX + 16];
    snprintf(what, sizeof what, "device '%s'", name);
    if ((st = topo_number(d, "gflops", file, what, &dev->gflops, &has, err)) != EVO_OK)
        return st;
    if ((!has || dev->gflops <= 0) && dev->device_class[0] == '\0')
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: device '%s' needs \"gflops\" > 0 or a \"class\" with a "
                             "calibration in the model database",
                             file, name);
    if ((st = topo_number(d, "mem_gbps", file, what, &dev->mem_gbps, &has, err)) != EVO_OK)
        return st;
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(d, "overhead");
    if (ov != NULL) {
        if ((st = topo_size(d, "overhead", file, name, false, &dev->overhead_bytes, err)) != EVO_OK)
            return st;
    } else {
        dev->overhead_bytes =
            dev->flash_bytes > 0 ? EVO_PT_OVERHEAD_BAREMETAL : EVO_PT_OVERHEAD_HOSTED;
    }
    const char *role = topo_string(d, "role");
    if (role == NULL || strcmp(role, "edge") == 0)
        dev->role = EVO_PT_ROLE_EDGE;
    else if (strcmp(role, "cloud") == 0)
        dev->role = EVO_PT_ROLE_CLOUD;
    else
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: device '%s': \"role\" must be \"edge\" or \"cloud\"", file, name);
    return EVO_OK;
}

static evo_status topo_link(const cJSON *l, int32_t i, const char *file, evo_pt_topology *t,
                            evo_pt_link *link, evo_error *err)
{
    if (!cJSON_IsObject(l))
        return evo_error_set(err, EVO_ERR_PARSE, "%s: links[%d] is not an object", file, (int)i);
    const char *a = topo_string(l, "a"), *b = topo_string(l, "b");
    if (a == NULL || b == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: links[%d] needs device names \"a\" and \"b\"",
                             file, (int)i);
    link->a = evo_pt_device_find(t, a);
    link->b = evo_pt_device_find(t, b);
    if (link->a < 0 || link->b < 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: links[%d] names unknown device '%s'", file,
                             (int)i, link->a < 0 ? a : b);
    if (link->a == link->b)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: links[%d] connects '%s' to itself", file,
                             (int)i, a);
    char what[2 * EVO_PT_NAME_MAX + 16];
    snprintf(what, sizeof what, "link %s-%s", a, b);
    bool has;
    evo_status st;
    if ((st = topo_number(l, "mbps", file, what, &link->mbps, &has, err)) != EVO_OK)
        return st;
    if (!has || link->mbps <= 0)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: %s needs \"mbps\" > 0", file, what);
    if ((st = topo_number(l, "rtt_ms", file, what, &link->rtt_ms, &has, err)) != EVO_OK)
        return st;
    const char *enc = topo_string(l, "encoding");
    link->encoding = EVO_PT_ENC_RAW;
    if (enc != NULL) {
        int e = 0;
        while (e < EVO_PT_ENC_COUNT_ && strcmp(evo_pt_encoding_name((evo_pt_encoding)e), enc) != 0)
            e++;
        if (e == EVO_PT_ENC_COUNT_)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s: %s: \"encoding\" must be raw, fp16 or int8, not '%s'", file,
                                 what, enc);
        link->encoding = (evo_pt_encoding)e;
    } else if (cJSON_GetObjectItemCaseSensitive(l, "encoding") != NULL) {
        return evo_error_set(err, EVO_ERR_PARSE, "%s: %s: \"encoding\" must be a string", file,
                             what);
    }
    for (int32_t j = 0; j < i; j++) {
        const evo_pt_link *o = &t->links[j];
        if ((o->a == link->a && o->b == link->b) || (o->a == link->b && o->b == link->a))
            return evo_error_set(err, EVO_ERR_PARSE, "%s: the link %s-%s is listed twice", file, a,
                                 b);
    }
    return EVO_OK;
}

evo_status evo_pt_topology_parse(const char *json, size_t len, const char *name,
                                 evo_pt_topology *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    const char *file = name ? name : "devices";
    if (json == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: no text", file);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: not valid JSON", file);
    evo_status st = EVO_OK;
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(root, "links");
    int nd = cJSON_IsArray(devs) ? cJSON_GetArraySize(devs) : 0;
    int nl = cJSON_IsArray(links) ? cJSON_GetArraySize(links) : 0;
    if (!cJSON_IsObject(root) || nd == 0) {
        st = evo_error_set(err, EVO_ERR_PARSE,
                           "%s: expected an object with a non-empty "
                           "\"devices\" array",
                           file);
        goto done;
    }
    if (links != NULL && !cJSON_IsArray(links)) {
        st = evo_error_set(err, EVO_ERR_PARSE, "%s: \"links\" must be an array", file);
        goto done;
    }
    if (nd > EVO_PT_MAX_DEVICES) {
        st = evo_error_set(err, EVO_ERR_LIMIT, "%s: %d devices; at most %d are supported", file, nd,
                           EVO_PT_MAX_DEVICES);
        goto done;
    }
    out->devices = calloc((size_t)nd, sizeof *out->devices);
    out->links = calloc(nl > 0 ? (size_t)nl : 1, sizeof *out->links);
    if (out->devices == NULL || out->links == NULL) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    for (int i = 0; i < nd; i++) {
        if ((st = topo_device(cJSON_GetArrayItem(devs, i), i, file, &out->devices[i], err)) !=
            EVO_OK)
            goto done;
        if (evo_pt_device_find(out, out->devices[i].name) >= 0) {
            st = evo_error_set(err, EVO_ERR_PARSE, "%s: device '%s' is listed twice", file,
                               out->devices[i].name);
            goto done;
        }
        out->n_devices = i + 1;
    }
    for (int i = 0; i < nl; i++) {
        if ((st = topo_link(cJSON_GetArrayItem(links, i), i, file, out, &out->links[i], err)) !=
            EVO_OK)
            goto done;
        out->n_links = i + 1;
    }
    const char *src = topo_string(root, "source"), *snk = topo_string(root, "sink");
    if (src == NULL || snk == NULL) {
        st = evo_error_set(err, EVO_ERR_PARSE, "%s: \"source\" and \"sink\" must name devices",
                           file);
        goto done;
    }
    out->source = evo_pt_device_find(out, src);
    out->sink = evo_pt_device_find(out, snk);
    if (out->source < 0 || out->sink < 0) {
        st = evo_error_set(err, EVO_ERR_PARSE, "%s: %s '%s' is not a listed device", file,
                           out->source < 0 ? "source" : "sink", out->source < 0 ? src : snk);
        goto done;
    }
done:
    cJSON_Delete(root);
    if (st != EVO_OK)
        evo_pt_topology_free(out);
    return st;
}

evo_status evo_pt_topology_load(const char *path, evo_pt_topology *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    evo_status st = EVO_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= (64u << 20)) {
                st = evo_error_set(err, EVO_ERR_LIMIT, "%s: larger than 64 MiB", path);
                break;
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                st = evo_error_set(err, EVO_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st == EVO_OK)
        st = evo_pt_topology_parse(buf, len, path, out, err);
    free(buf);
    return st;
}
