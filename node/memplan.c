/*
 * The memory planner (see memplan.h): greedy placement of buffers with known
 * lifetimes into one arena. Portable C11, no allocation: all arrays live in
 * the caller's work memory.
 */
#include <string.h>

#include "memplan.h"

/* Everything a strategy reads, per group (a group is one buffer, or several
 * buffers joined by in-place aliases). */
typedef struct memplan_ctx {
    int32_t m; /* groups */
    int32_t n_steps;
    const uint64_t *size; /* aligned size per group */
    const int32_t *first; /* lifetime per group, inclusive */
    const int32_t *last;
    const int32_t *key;      /* breadth strategy: rank of the busiest step */
    const uint64_t *breadth; /* bytes alive per step */
} memplan_ctx;

/* "a goes before b" for a sort; ties must be broken so that equal keys keep
 * index order (the merge sort is stable, so returning false is enough). */
typedef bool (*memplan_before_fn)(const memplan_ctx *c, int32_t a, int32_t b);

const char *evo_memplan_strategy_name(evo_memplan_strategy s)
{
    switch (s) {
    case EVO_MEMPLAN_AUTO:
        return "auto";
    case EVO_MEMPLAN_SIZE_BEST_FIT:
        return "size-best-fit";
    case EVO_MEMPLAN_SIZE_FIRST_FIT:
        return "size-first-fit";
    case EVO_MEMPLAN_BREADTH_BEST_FIT:
        return "breadth-best-fit";
    case EVO_MEMPLAN_FIRST_USE_BEST_FIT:
        return "first-use-best-fit";
    case EVO_MEMPLAN_AREA_BEST_FIT:
        return "area-best-fit";
    default:
        return "unknown";
    }
}

/* Stable bottom-up merge sort of an index array. */
static void memplan_sort(int32_t *a, int32_t *tmp, int32_t n, memplan_before_fn before,
                         const memplan_ctx *c)
{
    int32_t *src = a, *dst = tmp;
    for (int32_t width = 1; width<n; width = width> n / 2 ? n : 2 * width) {
        for (int32_t lo = 0; lo < n; lo += 2 * width) {
            int32_t mid = n - lo > width ? lo + width : n;
            int32_t hi = n - mid > width ? mid + width : n;
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = before(c, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
}

static bool memplan_by_size(const memplan_ctx *c, int32_t a, int32_t b)
{
    if (c->size[a] != c->size[b])
        return c->size[a] > c->size[b];
    int64_t la = (int64_t)c->last[a] - c->first[a], lb = (int64_t)c->last[b] - c->first[b];
    if (la != lb)
        return la > lb;
    return c->first[a] < c->first[b];
}

static bool memplan_by_first_use(const memplan_ctx *c, int32_t a, int32_t b)
{
    if (c->first[a] != c->first[b])
        return c->first[a] < c->first[b];
    return memplan_by_size(c, a, b);
}

/* size x steps alive as a 96-bit number (hi: upper 64 bits, lo: lower 32),
 * exact and without floating point (a Cortex-M4 has no double unit). */
static void memplan_area(const memplan_ctx *c, int32_t g, uint64_t *hi, uint32_t *lo)
{
    uint64_t life = (uint64_t)((int64_t)c->last[g] - c->first[g] + 1);
    uint64_t low = (c->size[g] & 0xffffffffu) * life;
    *hi = (c->size[g] >> 32) * life + (low >> 32);
    *lo = (uint32_t)low;
}

static bool memplan_by_area(const memplan_ctx *c, int32_t a, int32_t b)
{
    uint64_t ha, hb;
    uint32_t la, lb;
    memplan_area(c, a, &ha, &la);
    memplan_area(c, b, &hb, &lb);
    if (ha != hb)
        return ha > hb;
    if (la != lb)
        return la > lb;
    return memplan_by_size(c, a, b);
}

static bool memplan_by_breadth(const memplan_ctx *c, int32_t a, int32_t b)
{
    if (c->key[a] != c->key[b])
        return c->key[a] < c->key[b];
    return memplan_by_size(c, a, b);
}

static bool memplan_step_busier(const memplan_ctx *c, int32_t a, int32_t b)
{
    return c->breadth[a] > c->breadth[b];
}

/* Place groups in `order` one by one. placed[] holds the placed groups sorted
 * by offset; for each new group only those overlapping it in time matter. The
 * gaps between them (below the highest end seen so far) are candidates:
 * best_fit takes the smallest gap that fits, otherwise the lowest. Without a
 * fitting gap the group goes on top of everything it overlaps. Returns the
 * arena size. */
static uint64_t memplan_place(const memplan_ctx *c, const int32_t *order, int32_t n_order,
                              bool best_fit, int32_t *placed, uint64_t *off)
{
    int32_t np = 0;
    uint64_t total = 0;
    for (int32_t i = 0; i < n_order; i++) {
        int32_t g = order[i];
        uint64_t s = c->size[g];
        uint64_t prev_end = 0, best_off = 0, best_gap = UINT64_MAX;
        bool found = false;
        for (int32_t j = 0; j < np; j++) {
            int32_t p = placed[j];
            if (c->last[p] < c->first[g] || c->first[p] > c->last[g])
                continue;
            if (off[p] >= prev_end) {
                uint64_t gap = off[p] - prev_end;
                if (gap >= s && gap < best_gap) {
                    best_off = prev_end;
                    best_gap = gap;
                    found = true;
                    if (!best_fit)
                        break;
                }
            }
            uint64_t end = off[p] + c->size[p];
            if (end > prev_end)
                prev_end = end;
        }
        uint64_t o = found ? best_off : prev_end;
        off[g] = o;
        /* Sums cannot overflow: the caller checked that all sizes together fit. */
        if (o + s > total)
            total = o + s;
        int32_t pos = np;
        while (pos > 0 && off[placed[pos - 1]] > o) {
            placed[pos] = placed[pos - 1];
            pos--;
        }
        placed[pos] = g;
        np++;
    }
    return total;
}

/* Carve an array from the work memory, 8-byte aligned. */
static void *memplan_take(unsigned char **cur, size_t bytes)
{
    uintptr_t p = ((uintptr_t)*cur + 7u) & ~(uintptr_t)7u;
    *cur = (unsigned char *)p + bytes;
    return (void *)p;
}

#define MEMPLAN_PER_BUF 56u  /* bytes of work memory per buffer, see below */
#define MEMPLAN_PER_STEP 20u /* per step */
#define MEMPLAN_ARRAYS 16u   /* arrays carved, each may waste 7 bytes */

size_t evo_memplan_work_bytes(int32_t n_bufs, int32_t n_steps)
{
    if (n_bufs < 0 || n_steps < 0)
        return SIZE_MAX;
    uint64_t b = (uint64_t)n_bufs * MEMPLAN_PER_BUF + ((uint64_t)n_steps + 1u) * MEMPLAN_PER_STEP +
                 8u * MEMPLAN_ARRAYS + 8u;
    return b > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)b;
}

static int32_t memplan_find(int32_t *parent, int32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

evo_status evo_memplan_plan(const evo_memplan_buf *bufs, int32_t n_bufs, int32_t n_steps,
                            const evo_memplan_alias *aliases, int32_t n_aliases, uint64_t align,
                            evo_memplan_strategy strategy, uint64_t *offsets,
                            evo_memplan_result *res, void *work, size_t work_bytes, evo_error *err)
{
    if (res == NULL || n_bufs < 0 || n_steps < 0 || n_aliases < 0 ||
        (n_bufs > 0 && (bufs == NULL || offsets == NULL)) || (n_aliases > 0 && aliases == NULL))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "memory planner: bad arguments");
    if (align == 0 || (align & (align - 1)) != 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "memory planner: alignment %llu is not a power of two",
                             (unsigned long long)align);
    if ((unsigned)strategy >= (unsigned)EVO_MEMPLAN_STRATEGY_COUNT_)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "memory planner: unknown strategy %d",
                             (int)strategy);
    size_t need = evo_memplan_work_bytes(n_bufs, n_steps);
    if (work == NULL || work_bytes < need)
        return evo_error_set(err, EVO_ERR_NOMEM,
                             "memory planner: needs %zu bytes of work memory, got %zu", need,
                             work_bytes);

    /* Work memory: per buffer 2 x int32 (parent, gid); per group (<= n_bufs)
     * first, last, order, tmp, placed, key (6 x int32) and size, off, best
     * (3 x uint64): 8 + 24 + 24 = 56 bytes. Per step: breadth (uint64, one
     * extra for the difference array), sorder, stmp, srank (3 x int32). */
    size_t nb = (size_t)n_bufs, ns = (size_t)n_steps;
    unsigned char *cur = work;
    int32_t *parent = memplan_take(&cur, nb * 4);
    int32_t *gid = memplan_take(&cur, nb * 4);
    int32_t *first = memplan_take(&cur, nb * 4);
    int32_t *last = memplan_take(&cur, nb * 4);
    int32_t *order = memplan_take(&cur, nb * 4);
    int32_t *tmp = memplan_take(&cur, nb * 4);
    int32_t *placed = memplan_take(&cur, nb * 4);
    int32_t *key = memplan_take(&cur, nb * 4);
    uint64_t *size = memplan_take(&cur, nb * 8);
    uint64_t *off = memplan_take(&cur, nb * 8);
    uint64_t *best = memplan_take(&cur, nb * 8);
    uint64_t *breadth = memplan_take(&cur, (ns + 1) * 8);
    int32_t *sorder = memplan_take(&cur, ns * 4);
    int32_t *stmp = memplan_take(&cur, ns * 4);
    int32_t *srank = memplan_take(&cur, ns * 4);

    for (int32_t i = 0; i < n_bufs; i++) {
        const evo_memplan_buf *b = &bufs[i];
        if (b->first_step < 0 || b->first_step > b->last_step || b->last_step >= n_steps)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "memory planner: buffer %d has lifetime [%d, %d] outside the "
                                 "%d steps",
                                 (int)i, (int)b->first_step, (int)b->last_step, (int)n_steps);
        if (b->size > UINT64_MAX - (align - 1))
            return evo_error_set(err, EVO_ERR_LIMIT, "memory planner: buffer %d is too large",
                                 (int)i);
        parent[i] = i;
    }
    for (int32_t k = 0; k < n_aliases; k++) {
        int32_t a = aliases[k].buf, o = aliases[k].onto;
        if (a < 0 || a >= n_bufs || o < 0 || o >= n_bufs || a == o)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "memory planner: in-place pair %d (%d onto %d) is invalid", (int)k,
                                 (int)a, (int)o);
        int32_t ra = memplan_find(parent, a), ro = memplan_find(parent, o);
        if (ra != ro)
            parent[ra > ro ? ra : ro] = ra > ro ? ro : ra;
    }

    /* Groups, numbered in order of their lowest buffer index. */
    int32_t m = 0;
    for (int32_t i = 0; i < n_bufs; i++)
        gid[i] = -1;
    for (int32_t i = 0; i < n_bufs; i++) {
        int32_t r = memplan_find(parent, i);
        const evo_memplan_buf *b = &bufs[i];
        uint64_t asz = (b->size + (align - 1)) & ~(align - 1);
        if (gid[r] < 0) {
            gid[r] = m;
            first[m] = b->first_step;
            last[m] = b->last_step;
            size[m] = asz;
            m++;
        } else {
            int32_t g = gid[r];
            if (b->first_step < first[g])
                first[g] = b->first_step;
            if (b->last_step > last[g])
                last[g] = b->last_step;
            if (asz > size[g])
                size[g] = asz;
        }
    }
    /* gid[] was indexed by root; make it per buffer. Roots are the lowest
     * index of their group, so gid[root] is final before any member reads it. */
    for (int32_t i = 0; i < n_bufs; i++)
        gid[i] = gid[memplan_find(parent, i)];

    /* All sizes together must fit in 64 bits; then every offset + size does. */
    uint64_t sum = 0;
    for (int32_t g = 0; g < m; g++) {
        if (size[g] > UINT64_MAX - sum)
            return evo_error_set(err, EVO_ERR_LIMIT,
                                 "memory planner: buffer sizes overflow 64 bits");
        sum += size[g];
    }

    /* Bytes alive per step (difference array; wraps cancel out modulo 2^64
     * and every prefix is a real sum <= sum). */
    for (size_t s = 0; s <= ns; s++)
        breadth[s] = 0;
    for (int32_t g = 0; g < m; g++) {
        breadth[first[g]] += size[g];
        breadth[last[g] + 1] -= size[g];
    }
    uint64_t lower = 0;
    for (size_t s = 0; s < ns; s++) {
        if (s > 0)
            breadth[s] += breadth[s - 1];
        if (breadth[s] > lower)
            lower = breadth[s];
    }

    memplan_ctx c = {.m = m,
                     .n_steps = n_steps,
                     .size = size,
                     .first = first,
                     .last = last,
                     .key = key,
                     .breadth = breadth};

    /* Breadth keys: a group's key is the rank of the busiest step it spans. */
    for (int32_t s = 0; s < n_steps; s++)
        sorder[s] = s;
    memplan_sort(sorder, stmp, n_steps, memplan_step_busier, &c);
    for (int32_t r = 0; r < n_steps; r++)
        srank[sorder[r]] = r;
    for (int32_t g = 0; g < m; g++) {
        int32_t k = INT32_MAX;
        for (int32_t s = first[g]; s <= last[g]; s++)
            if (srank[s] < k)
                k = srank[s];
        key[g] = k;
    }

    uint64_t best_total = UINT64_MAX;
    evo_memplan_strategy best_strategy = strategy;
    for (int st = EVO_MEMPLAN_AUTO + 1; st < EVO_MEMPLAN_STRATEGY_COUNT_; st++) {
        if (strategy != EVO_MEMPLAN_AUTO && st != (int)strategy)
            continue;
        memplan_before_fn before = memplan_by_size;
        bool best_fit = true;
        switch ((evo_memplan_strategy)st) {
        case EVO_MEMPLAN_SIZE_FIRST_FIT:
            best_fit = false;
            break;
        case EVO_MEMPLAN_BREADTH_BEST_FIT:
            before = memplan_by_breadth;
            break;
        case EVO_MEMPLAN_FIRST_USE_BEST_FIT:
            before = memplan_by_first_use;
            break;
        case EVO_MEMPLAN_AREA_BEST_FIT:
            before = memplan_by_area;
            break;
        default:
            break;
        }
        int32_t n_order = 0;
        for (int32_t g = 0; g < m; g++) {
            off[g] = 0;
            if (size[g] > 0)
                order[n_order++] = g;
        }
        memplan_sort(order, tmp, n_order, before, &c);
        uint64_t total = memplan_place(&c, order, n_order, best_fit, placed, off);
        if (total < best_total) {
            best_total = total;
            best_strategy = (evo_memplan_strategy)st;
            if (m > 0)
                memcpy(best, off, (size_t)m * sizeof *best);
        }
    }

    for (int32_t i = 0; i < n_bufs; i++)
        offsets[i] = best[gid[i]];
    res->total = best_total == UINT64_MAX ? 0 : best_total;
    res->lower_bound = lower;
    res->strategy = best_strategy;
    return EVO_OK;
}
