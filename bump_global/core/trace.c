/*
 * core/trace.c -- which blocks are still live: `measure(live=True)` (opt-in).
 *
 * The bump allocator keeps no size for a small block and forgets a block once
 * it is handed out, so what a block of code left live cannot be read from its
 * counters.  While a traced measurement runs, each domain we serve gets hooks
 * that wrap the ones installed (whatever they are: a reclaim policy's, the
 * histogram's, the sites' sampling ones) and keep every block handed out in a
 * map (core/ptrmap.c): its requested size and its number in the order of
 * allocations.  A free or a realloc takes the block out.  At the end of a
 * measurement, the blocks it allocated that are still in the map are its live
 * blocks, in requested bytes: what tracemalloc's get_traced_memory() counts
 * for blocks traced from that moment.  Blocks from before the first traced
 * measurement are not known: freeing them changes nothing.
 *
 * Measurements nest: the outermost one installs the hooks and the last to end
 * takes them off and empties the map; each reads the blocks numbered from its
 * own start.  If the sampling hooks change meanwhile (sites.c, domains.c),
 * hooks_refresh updates what the trace hooks call instead of replacing them.
 *
 * Lock: trace.lock around the map (RAW runs without the GIL); never held while
 * the wrapped hook runs.  Cost while on: a map insertion per allocation and a
 * removal per free (a hash and a probe, under the lock); nothing when off
 * (the default hooks are installed).
 */

#define TRACE_NESTING 64  /* traced measurements inside one another, at most */

static void stats_read(uint64_t *values);                         /* stats.c */
static PyObject *stats_tuple(const uint64_t *values, Py_ssize_t count);

static struct {
    prim_lock_t lock;
    int depth;                 /* traced measurements running (with the GIL) */
    uint64_t first[TRACE_NESTING];  /* each one's first block number */
    uintptr_t active;          /* atomic: the map takes blocks */
    uint64_t seq;              /* blocks handed out while tracing, numbered */
    uint64_t untracked;        /* blocks the map could not take (the OS refused) */
    ptrmap_t blocks;           /* block -> (requested size, its number) */
    PyMemAllocatorEx saved[3]; /* the hooks the trace hooks call: RAW, MEM, OBJ */
    int wrapped[3];            /* the trace hooks are installed on that domain */
} trace = {PRIM_LOCK_INIT};

static void
trace_add(void *p, size_t n)
{
    LOCK(trace.lock);
    if (ATOMIC_LOAD(&trace.active)) {
        ptrmap_value_t v = {n, trace.seq++};
        if (!ptrmap_put(&trace.blocks, (uintptr_t)p, v)) {
            trace.untracked++;
        }
    }
    UNLOCK(trace.lock);
}

static void
trace_forget(void *p)
{
    if (p == NULL) {
        return;
    }
    LOCK(trace.lock);
    ptrmap_take(&trace.blocks, (uintptr_t)p, NULL);
    UNLOCK(trace.lock);
}

/* The wrappers, one set per domain (0 RAW, 1 MEM, 2 OBJ): ctx is unused; each
 * calls the hook saved when tracing began. */
#define DEFINE_TRACE_HOOKS(name, index)                                        \
    static void *name##_malloc_t(void *ctx, size_t n)                          \
    {                                                                          \
        PyMemAllocatorEx *h = &trace.saved[index];                             \
        void *p = h->malloc(h->ctx, n);                                        \
        if (p != NULL) {                                                       \
            trace_add(p, n);                                                   \
        }                                                                      \
        return p;                                                              \
    }                                                                          \
    static void *name##_calloc_t(void *ctx, size_t nelem, size_t elsize)       \
    {                                                                          \
        PyMemAllocatorEx *h = &trace.saved[index];                             \
        void *p = h->calloc(h->ctx, nelem, elsize);                            \
        if (p != NULL) {                                                       \
            trace_add(p, nelem * elsize);                                      \
        }                                                                      \
        return p;                                                              \
    }                                                                          \
    static void *name##_realloc_t(void *ctx, void *p, size_t n)                \
    {                                                                          \
        PyMemAllocatorEx *h = &trace.saved[index];                             \
        void *q = h->realloc(h->ctx, p, n);                                    \
        if (q != NULL) {                                                       \
            trace_forget(p);                                                   \
            trace_add(q, n);                                                   \
        }                                                                      \
        return q;                                                              \
    }                                                                          \
    static void name##_free_t(void *ctx, void *p)                              \
    {                                                                          \
        PyMemAllocatorEx *h = &trace.saved[index];                             \
        trace_forget(p);                                                       \
        h->free(h->ctx, p);                                                    \
    }

DEFINE_TRACE_HOOKS(raw, 0)
DEFINE_TRACE_HOOKS(mem, 1)
DEFINE_TRACE_HOOKS(obj, 2)

static const PyMemAllocatorDomain trace_domains[3] = {
    PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};

/* Whether domain i (0 RAW, 1 MEM, 2 OBJ) is ours under the installed scope. */
static int
trace_served(int i)
{
    return i == 0 ? region.scope != SCOPE_OBJECTS
         : i == 1 ? region.scope == SCOPE_PYTHON
         : region.scope != SCOPE_RAW;
}

/* trace_start() -> stats(): the counters read, then tracing begins for a new
 * measurement, so that the tuple is no traced block.  The measurement's start
 * snapshot (bump_global/_measure.py). */
static PyObject *
core_trace_start(PyObject *self, PyObject *unused)
{
    if (!region.installed || trace.depth >= TRACE_NESTING) {
        PyErr_SetString(PyExc_RuntimeError,
                        "trace_start() needs an install (and at most 64 nested traces)");
        return NULL;
    }
    uint64_t values[STATS_COUNT];
    stats_read(values);
    PyObject *snapshot = stats_tuple(values, STATS_COUNT);
    if (snapshot == NULL) {
        return NULL;
    }
    if (trace.depth == 0) {
        PyMemAllocatorEx wrappers[3] = {
            {NULL, raw_malloc_t, raw_calloc_t, raw_realloc_t, raw_free_t},
            {NULL, mem_malloc_t, mem_calloc_t, mem_realloc_t, mem_free_t},
            {NULL, obj_malloc_t, obj_calloc_t, obj_realloc_t, obj_free_t}};
        LOCK(trace.lock);
        ptrmap_clear(&trace.blocks);
        ATOMIC_STORE(&trace.active, 1);
        UNLOCK(trace.lock);
        for (int i = 0; i < 3; i++) {
            trace.wrapped[i] = trace_served(i);
            if (trace.wrapped[i]) {
                PyMem_GetAllocator(trace_domains[i], &trace.saved[i]);
                wrappers[i].ctx = trace.saved[i].ctx;
                PyMem_SetAllocator(trace_domains[i], &wrappers[i]);
            }
        }
    }
    LOCK(trace.lock);
    trace.first[trace.depth++] = trace.seq;
    UNLOCK(trace.lock);
    return snapshot;
}

/* trace_stop() -> stats() + (blocks, bytes): the counters read first (the
 * measurement's end snapshot), then the innermost traced measurement's blocks
 * still live, in requested bytes; the last to end takes the hooks off. */
static PyObject *
core_trace_stop(PyObject *self, PyObject *unused)
{
    if (trace.depth <= 0) {
        PyErr_SetString(PyExc_RuntimeError, "trace_stop() without trace_start()");
        return NULL;
    }
    uint64_t values[STATS_COUNT + 2];
    stats_read(values);
    uint64_t first = trace.first[trace.depth - 1];
    uint64_t count = 0, bytes = 0;
    LOCK(trace.lock);
    for (size_t i = 0; trace.blocks.keys != NULL && i <= trace.blocks.mask; i++) {
        if (trace.blocks.keys[i] != 0 && trace.blocks.values[i].b >= first) {
            count++;
            bytes += trace.blocks.values[i].a;
        }
    }
    UNLOCK(trace.lock);
    if (--trace.depth == 0) {
        for (int i = 0; i < 3; i++) {
            if (trace.wrapped[i]) {
                PyMem_SetAllocator(trace_domains[i], &trace.saved[i]);
                trace.wrapped[i] = 0;
            }
        }
        LOCK(trace.lock);
        ATOMIC_STORE(&trace.active, 0);  /* a call still in a wrapper adds nothing */
        ptrmap_clear(&trace.blocks);
        UNLOCK(trace.lock);
    }
    values[STATS_COUNT] = count;
    values[STATS_COUNT + 1] = bytes;
    return stats_tuple(values, STATS_COUNT + 2);
}

/* While tracing, a hook change (domains.c's hooks_refresh) goes under the trace
 * hooks: 1 if it was taken here (the caller must not install it itself). */
static int
trace_takes_hooks(int index, const PyMemAllocatorEx *hooks)
{
    if (!trace.wrapped[index]) {
        return 0;
    }
    trace.saved[index] = *hooks;
    return 1;
}

#define TRACE_METHODS                                                              \
    {"trace_start", core_trace_start, METH_NOARGS,                                 \
     "trace_start() -> stats(), then trace the blocks handed out from now on (nests)."}, \
    {"trace_stop", core_trace_stop, METH_NOARGS,                                   \
     "trace_stop() -> stats() + (blocks, bytes): the innermost trace's blocks still\n" \
     "live, in requested bytes; the last to stop ends tracing."},
