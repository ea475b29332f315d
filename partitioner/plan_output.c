/*
 * Plan output: JSON (docs/placement.md), Graphviz DOT of the graph coloured
 * by device, and an SVG timeline of one request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pt_internal.h"

static const char *out_node_name(const evo_pt_problem *p, int32_t k, char *buf, size_t cap)
{
    const evo_pt_node *n = &p->nodes[k];
    if (n->name != NULL && n->name[0] != '\0')
        return n->name;
    snprintf(buf, cap, "#%d %s", (int)k, n->op ? n->op : "?");
    return buf;
}

static const char *out_tensor_name(const evo_pt_problem *p, int32_t t, char *buf, size_t cap)
{
    if (p->tensors[t].name != NULL && p->tensors[t].name[0] != '\0')
        return p->tensors[t].name;
    snprintf(buf, cap, "t%d", (int)t);
    return buf;
}

static cJSON *out_tensor_list(const evo_pt_problem *p, const int32_t *ts, int32_t n)
{
    cJSON *a = cJSON_CreateArray();
    char buf[32];
    for (int32_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", out_tensor_name(p, ts[i], buf, sizeof buf));
        cJSON_AddNumberToObject(o, "bytes", (double)p->tensors[ts[i]].bytes);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *out_plan_summary(const evo_pt_plan *pl)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", evo_pt_kind_name(pl->kind));
    cJSON_AddStringToObject(o, "method", pl->method);
    cJSON_AddBoolToObject(o, "exact", pl->exact);
    cJSON_AddBoolToObject(o, "feasible", pl->feasible);
    if (pl->feasible) {
        cJSON_AddNumberToObject(o, "latency_ms", pl->latency_ms);
        cJSON_AddNumberToObject(o, "period_ms", pl->period_ms);
        cJSON_AddNumberToObject(o, "stages", pl->n_stages);
    } else {
        cJSON_AddStringToObject(o, "reason", pl->reason);
    }
    cJSON_AddNumberToObject(o, "planning_ms", pl->planning_ms);
    return o;
}

char *evo_pt_plan_to_json(const evo_pt_problem *p, const evo_pt_plan *plan,
                          const evo_pt_result *result, evo_pt_objective obj)
{
    const evo_pt_topology *topo = p->topo;
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return NULL;
    char buf[64];
    cJSON_AddStringToObject(root, "format", "evo-plan");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "model", p->model_name ? p->model_name : "");
    cJSON_AddNumberToObject(root, "n_nodes", p->n_nodes);
    cJSON_AddStringToObject(root, "kind", evo_pt_kind_name(plan->kind));
    cJSON_AddStringToObject(root, "objective", obj == EVO_PT_THROUGHPUT ? "throughput" : "latency");
    cJSON_AddStringToObject(root, "method", plan->method);
    cJSON_AddBoolToObject(root, "exact", plan->exact);
    cJSON_AddBoolToObject(root, "feasible", plan->feasible);
    if (!plan->feasible)
        cJSON_AddStringToObject(root, "reason", plan->reason);
    cJSON_AddStringToObject(root, "source", topo->devices[topo->source].name);
    cJSON_AddStringToObject(root, "sink", topo->devices[topo->sink].name);
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    for (int32_t s = 0; s < plan->n_stages; s++) {
        const evo_pt_stage *st = &plan->stages[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", s);
        cJSON_AddStringToObject(o, "device", topo->devices[st->device].name);
        cJSON *names = cJSON_AddArrayToObject(o, "nodes");
        cJSON *idx = cJSON_AddArrayToObject(o, "node_indices");
        bool contiguous = true;
        for (int32_t i = 0; i < st->n_nodes; i++) {
            cJSON_AddItemToArray(
                names, cJSON_CreateString(out_node_name(p, st->nodes[i], buf, sizeof buf)));
            cJSON_AddItemToArray(idx, cJSON_CreateNumber(st->nodes[i]));
            contiguous &= i == 0 || st->nodes[i] == st->nodes[i - 1] + 1;
        }
        if (contiguous && st->n_nodes > 0) {
            cJSON_AddNumberToObject(o, "first", st->nodes[0]);
            cJSON_AddNumberToObject(o, "end", st->nodes[st->n_nodes - 1] + 1);
        }
        cJSON_AddItemToObject(o, "inputs", out_tensor_list(p, st->inputs, st->n_inputs));
        cJSON_AddItemToObject(o, "outputs", out_tensor_list(p, st->outputs, st->n_outputs));
        cJSON_AddNumberToObject(o, "weights_bytes", (double)st->weights_bytes);
        cJSON_AddNumberToObject(o, "arena_bytes", (double)st->arena_bytes);
        cJSON_AddNumberToObject(o, "predicted_ms", st->compute_ms);
        cJSON_AddNumberToObject(o, "start_ms", st->start_ms);
        cJSON_AddItemToArray(stages, o);
    }
    cJSON *transfers = cJSON_AddArrayToObject(root, "transfers");
    for (int32_t x = 0; x < plan->n_transfers; x++) {
        const evo_pt_transfer *t = &plan->transfers[x];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "from", topo->devices[t->from].name);
        cJSON_AddStringToObject(o, "to", topo->devices[t->to].name);
        cJSON_AddNumberToObject(o, "from_stage", t->from_stage);
        cJSON_AddNumberToObject(o, "to_stage", t->to_stage);
        cJSON_AddItemToObject(o, "tensors", out_tensor_list(p, t->tensors, t->n_tensors));
        cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
        if (t->n_hops > 0) {
            cJSON_AddStringToObject(o, "encoding", evo_pt_encoding_name(t->hops[0].encoding));
            cJSON_AddNumberToObject(o, "wire_bytes", (double)t->hops[0].wire_bytes);
        }
        cJSON *route = cJSON_AddArrayToObject(o, "route");
        cJSON *hops = cJSON_AddArrayToObject(o, "hops");
        if (t->n_hops > 0)
            cJSON_AddItemToArray(route, cJSON_CreateString(topo->devices[t->from].name));
        for (int32_t h = 0; h < t->n_hops; h++) {
            const evo_pt_hop *hp = &t->hops[h];
            cJSON_AddItemToArray(route, cJSON_CreateString(topo->devices[hp->to].name));
            cJSON *ho = cJSON_CreateObject();
            cJSON_AddStringToObject(ho, "from", topo->devices[hp->from].name);
            cJSON_AddStringToObject(ho, "to", topo->devices[hp->to].name);
            cJSON_AddStringToObject(ho, "encoding", evo_pt_encoding_name(hp->encoding));
            cJSON_AddNumberToObject(ho, "wire_bytes", (double)hp->wire_bytes);
            cJSON_AddNumberToObject(ho, "predicted_ms", hp->ms);
            cJSON_AddItemToArray(hops, ho);
        }
        cJSON_AddNumberToObject(o, "predicted_ms", t->ms);
        cJSON_AddNumberToObject(o, "start_ms", t->start_ms);
        cJSON_AddItemToArray(transfers, o);
    }
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    if (plan->feasible) {
        cJSON_AddNumberToObject(tot, "latency_ms", plan->latency_ms);
        cJSON_AddNumberToObject(tot, "period_ms", plan->period_ms);
        cJSON_AddNumberToObject(tot, "throughput_per_s",
                                plan->period_ms > 0 ? 1000.0 / plan->period_ms : 0);
    }
    cJSON_AddNumberToObject(tot, "planning_ms", plan->planning_ms);
    cJSON *devs = cJSON_AddArrayToObject(tot, "devices");
    for (int32_t d = 0; plan->use && d < plan->n_devices; d++) {
        const evo_pt_device_use *u = &plan->use[d];
        if (!u->used)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", topo->devices[d].name);
        cJSON_AddNumberToObject(o, "memory_bytes", (double)topo->devices[d].memory_bytes);
        cJSON_AddNumberToObject(o, "used_bytes", (double)u->ram_bytes);
        cJSON_AddNumberToObject(o, "flash_bytes", (double)topo->devices[d].flash_bytes);
        cJSON_AddNumberToObject(o, "flash_used_bytes", (double)u->flash_bytes);
        cJSON_AddNumberToObject(o, "weights_bytes", (double)u->weights_bytes);
        cJSON_AddNumberToObject(o, "arena_bytes", (double)u->arena_bytes);
        cJSON_AddNumberToObject(o, "overhead_bytes", (double)u->overhead_bytes);
        cJSON_AddNumberToObject(o, "busy_ms", u->busy_ms);
        cJSON_AddItemToArray(devs, o);
    }
    if (result != NULL) {
        cJSON *alts = cJSON_AddArrayToObject(root, "alternatives");
        for (int k = 0; k < EVO_PT_KIND_COUNT_; k++)
            cJSON_AddItemToArray(alts, out_plan_summary(&result->plans[k]));
        if (result->explanation)
            cJSON_AddStringToObject(root, "explanation", result->explanation);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* ---------------------------------------------------------------- text helpers */

/* Text safe inside a double-quoted DOT string or XML text. */
static void ob_escaped(pt_buf *b, const char *s, bool xml)
{
    for (; *s; s++) {
        if (xml && *s == '<')
            pt_buf_printf(b, "&lt;");
        else if (xml && *s == '>')
            pt_buf_printf(b, "&gt;");
        else if (xml && *s == '&')
            pt_buf_printf(b, "&amp;");
        else if (!xml && (*s == '"' || *s == '\\'))
            pt_buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s >= 32)
            pt_buf_printf(b, "%c", *s);
    }
}

static const char *const out_palette[] = {"#8dd3c7", "#ffffb3", "#bebada", "#fb8072",
                                          "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                                          "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"};
#define OUT_N_PALETTE (sizeof out_palette / sizeof out_palette[0])

char *evo_pt_plan_to_dot(const evo_pt_problem *p, const evo_pt_plan *plan)
{
    pt_buf b = {0};
    char buf[64], b1[32];
    int32_t *stage_of = malloc((size_t)(p->n_nodes ? p->n_nodes : 1) * sizeof *stage_of);
    if (stage_of == NULL)
        return NULL;
    for (int32_t k = 0; k < p->n_nodes; k++)
        stage_of[k] = -1;
    for (int32_t s = 0; s < plan->n_stages; s++)
        for (int32_t i = 0; i < plan->stages[s].n_nodes; i++)
            stage_of[plan->stages[s].nodes[i]] = s;
    const evo_pt_topology *topo = p->topo;
    pt_buf_printf(&b, "digraph plan {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
                      "fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", "
                      "fontsize=9, color=\"#777777\"];\n  label=\"");
    ob_escaped(&b, p->model_name ? p->model_name : "model", false);
    pt_buf_printf(&b, ": %s plan, latency %.3f ms\";\n", evo_pt_kind_name(plan->kind),
                  plan->latency_ms);
    pt_buf_printf(&b, "  src [label=\"input\\n%s\", shape=ellipse, fillcolor=white];\n",
                  topo->devices[topo->source].name);
    pt_buf_printf(&b, "  snk [label=\"result\\n%s\", shape=ellipse, fillcolor=white];\n",
                  topo->devices[topo->sink].name);
    for (int32_t s = 0; s < plan->n_stages; s++) {
        const evo_pt_stage *st = &plan->stages[s];
        const char *col = out_palette[(size_t)st->device % OUT_N_PALETTE];
        pt_buf_printf(&b, "  subgraph cluster_%d {\n    label=\"stage %d: ", (int)s, (int)s);
        ob_escaped(&b, topo->devices[st->device].name, false);
        pt_buf_printf(&b, " (%.3f ms)\";\n    style=dashed;\n", st->compute_ms);
        for (int32_t i = 0; i < st->n_nodes; i++) {
            int32_t k = st->nodes[i];
            pt_buf_printf(&b, "    n%d [fillcolor=\"%s\", label=\"", (int)k, col);
            ob_escaped(&b, out_node_name(p, k, buf, sizeof buf), false);
            pt_buf_printf(&b, "\\n%s\"];\n", p->nodes[k].op ? p->nodes[k].op : "");
        }
        pt_buf_printf(&b, "  }\n");
    }
    for (int32_t t = 0; t < p->n_tensors; t++) {
        const evo_pt_tensor *x = &p->tensors[t];
        int32_t ps = x->producer >= 0 ? stage_of[x->producer] : -1;
        int32_t pdev = ps >= 0 ? plan->stages[ps].device : topo->source;
        char from[32];
        if (x->producer >= 0)
            snprintf(from, sizeof from, "n%d", (int)x->producer);
        else
            snprintf(from, sizeof from, "src");
        for (int32_t j = p->cons_off[t]; j <= p->cons_off[t + 1]; j++) {
            bool out_edge = j == p->cons_off[t + 1];
            if (out_edge && !x->graph_output)
                continue;
            int32_t c = out_edge ? -1 : p->cons[j];
            int32_t cdev = out_edge ? topo->sink : plan->stages[stage_of[c]].device;
            char to[32];
            if (out_edge)
                snprintf(to, sizeof to, "snk");
            else
                snprintf(to, sizeof to, "n%d", (int)c);
            if (cdev != pdev)
                pt_buf_printf(&b, "  %s -> %s [color=\"#d62728\", penwidth=2, label=\"%s\"];\n",
                              from, to, pt_fmt_bytes(x->bytes, b1, sizeof b1));
            else
                pt_buf_printf(&b, "  %s -> %s;\n", from, to);
        }
    }
    pt_buf_printf(&b, "}\n");
    free(stage_of);
    return pt_buf_take(&b);
}

char *evo_pt_plan_timeline_svg(const evo_pt_problem *p, const evo_pt_plan *plan)
{
    const evo_pt_topology *topo = p->topo;
    pt_buf b = {0};
    /* rows: devices with a stage, then each link direction used */
    int32_t row_dev[EVO_PT_MAX_DEVICES], n_dev_rows = 0;
    int32_t row_link[2 * EVO_PT_MAX_DEVICES * EVO_PT_MAX_DEVICES][2], n_link_rows = 0;
    for (int32_t d = 0; d < topo->n_devices; d++)
        if (plan->use && plan->use[d].used)
            row_dev[n_dev_rows++] = d;
    for (int32_t x = 0; x < plan->n_transfers; x++)
        for (int32_t h = 0; h < plan->transfers[x].n_hops; h++) {
            const evo_pt_hop *hp = &plan->transfers[x].hops[h];
            bool seen = false;
            for (int32_t r = 0; r < n_link_rows; r++)
                seen |= row_link[r][0] == hp->from && row_link[r][1] == hp->to;
            if (!seen && n_link_rows < (int32_t)(sizeof row_link / sizeof row_link[0])) {
                row_link[n_link_rows][0] = hp->from;
                row_link[n_link_rows][1] = hp->to;
                n_link_rows++;
            }
        }
    int32_t rows = n_dev_rows + n_link_rows;
    const double left = 170, width = 760, rowh = 34, top = 40;
    double total = plan->latency_ms > 0 ? plan->latency_ms : 1;
    double H = top + rowh * rows + 40;
    pt_buf_printf(&b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "font-family=\"Helvetica\" font-size=\"11\">\n",
                  left + width + 20, H);
    pt_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    pt_buf_printf(&b, "<text x=\"10\" y=\"20\" font-size=\"13\">");
    ob_escaped(&b, p->model_name ? p->model_name : "model", true);
    pt_buf_printf(&b, ": predicted timeline of one request, %s plan, %.3f ms</text>\n",
                  evo_pt_kind_name(plan->kind), plan->latency_ms);
    for (int32_t r = 0; r < rows; r++) {
        double y = top + r * rowh;
        pt_buf_printf(&b, "<text x=\"10\" y=\"%.1f\">", y + rowh / 2 + 4);
        if (r < n_dev_rows) {
            ob_escaped(&b, topo->devices[row_dev[r]].name, true);
        } else {
            ob_escaped(&b, topo->devices[row_link[r - n_dev_rows][0]].name, true);
            pt_buf_printf(&b, " &#8594; ");
            ob_escaped(&b, topo->devices[row_link[r - n_dev_rows][1]].name, true);
        }
        pt_buf_printf(&b,
                      "</text>\n<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
                      "stroke=\"#eeeeee\"/>\n",
                      left, y + rowh, left + width, y + rowh);
    }
    for (int32_t s = 0; s < plan->n_stages; s++) {
        const evo_pt_stage *st = &plan->stages[s];
        int32_t r = 0;
        while (r < n_dev_rows && row_dev[r] != st->device)
            r++;
        double x0 = left + width * st->start_ms / total, w = width * st->compute_ms / total;
        pt_buf_printf(&b,
                      "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\" "
                      "stroke=\"#333333\"><title>stage %d: %.3f ms</title></rect>\n",
                      x0, top + r * rowh + 5, w > 0.5 ? w : 0.5, rowh - 10,
                      out_palette[(size_t)st->device % OUT_N_PALETTE], (int)s, st->compute_ms);
        if (w > 40)
            pt_buf_printf(&b, "<text x=\"%.2f\" y=\"%.1f\">stage %d %.2f ms</text>\n", x0 + 3,
                          top + r * rowh + rowh / 2 + 4, (int)s, st->compute_ms);
    }
    for (int32_t x = 0; x < plan->n_transfers; x++) {
        const evo_pt_transfer *t = &plan->transfers[x];
        double at = t->start_ms;
        for (int32_t h = 0; h < t->n_hops; h++) {
            const evo_pt_hop *hp = &t->hops[h];
            int32_t r = 0;
            while (r < n_link_rows && !(row_link[r][0] == hp->from && row_link[r][1] == hp->to))
                r++;
            double y = top + (n_dev_rows + r) * rowh;
            double x0 = left + width * at / total, w = width * hp->ms / total;
            char b1[32];
            pt_buf_printf(&b,
                          "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
                          "fill=\"#d62728\" fill-opacity=\"0.6\"><title>%s %s, %.3f ms</title>"
                          "</rect>\n",
                          x0, y + 8, w > 0.5 ? w : 0.5, rowh - 16,
                          pt_fmt_bytes(hp->wire_bytes, b1, sizeof b1),
                          evo_pt_encoding_name(hp->encoding), hp->ms);
            if (w > 60)
                pt_buf_printf(&b, "<text x=\"%.2f\" y=\"%.1f\">%s %.2f ms</text>\n", x0 + 3,
                              y + rowh / 2 + 4, b1, hp->ms);
            at += hp->ms;
        }
    }
    /* time axis */
    double ya = top + rows * rowh + 15;
    for (int i = 0; i <= 4; i++) {
        double x = left + width * i / 4.0;
        pt_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f ms</text>\n", x,
                      ya + 12, total * i / 4.0);
        pt_buf_printf(&b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
                      x, top, x, ya);
    }
    pt_buf_printf(&b, "</svg>\n");
    return pt_buf_take(&b);
}
