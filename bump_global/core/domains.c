/*
 * core/domains.c -- one set of hooks per domain (the PyMemAllocatorEx
 * functions CPython calls), and the choice among the default hooks and those
 * of the reclaim policies, made at install (and, for reclaim="classes", again
 * when sampling goes on or off).  Our functions ignore `ctx`:
 * each finds its domain's state in a static (see install.c).
 */

#define DEFINE_HOOKS(name, dom)                                                \
    static void *name##_malloc(void *ctx, size_t n)                            \
    { (void)ctx; return hook_malloc(&dom, n); }                                \
    static void *name##_calloc(void *ctx, size_t nelem, size_t elsize)         \
    { (void)ctx; return hook_calloc(&dom, nelem, elsize); }                    \
    static void *name##_realloc(void *ctx, void *p, size_t n)                  \
    { (void)ctx; return hook_realloc(&dom, p, n); }                            \
    static void name##_free(void *ctx, void *p)                                \
    { (void)ctx; hook_free(&dom, p); }

DEFINE_HOOKS(raw, raw_dom)
DEFINE_HOOKS(mem, mem_dom)
DEFINE_HOOKS(obj, obj_dom)

/* The hooks chosen at install for each domain (by `reclaim`); the histogram
 * hooks call through them.  ctx is unused. */
static PyMemAllocatorEx raw_inner = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
static PyMemAllocatorEx mem_inner = {NULL, mem_malloc, mem_calloc, mem_realloc, mem_free};
static PyMemAllocatorEx obj_inner = {NULL, obj_malloc, obj_calloc, obj_realloc, obj_free};

static void
choose_hooks(int reclaim)
{
    if (reclaim == RECLAIM_LAST) {
        mem_inner.free = mem_free_last;
        obj_inner.free = obj_free_last;
    }
    else if (reclaim == RECLAIM_CLASSES && !sampling.on) {
        PyMemAllocatorEx mem = {NULL, mem_malloc_classes, mem_calloc_classes,
                                mem_realloc_classes, mem_free_classes};
        PyMemAllocatorEx obj = {NULL, obj_malloc_classes, obj_calloc_classes,
                                obj_realloc_classes, obj_free_classes};
        mem_inner = mem;
        obj_inner = obj;
    }
    else if (reclaim == RECLAIM_CLASSES) {
        PyMemAllocatorEx mem = {NULL, mem_malloc_classes_sampled, mem_calloc_classes_sampled,
                                mem_realloc_classes_sampled, mem_free_classes};
        PyMemAllocatorEx obj = {NULL, obj_malloc_classes_sampled, obj_calloc_classes_sampled,
                                obj_realloc_classes_sampled, obj_free_classes};
        mem_inner = mem;
        obj_inner = obj;
    }
}

/* Sampling went on or off (sites.c): reclaim="classes" swaps its MEM/OBJ hooks
 * for the sampling ones or back (the bump arenas need no other hooks).  With
 * the histogram, its hooks call through *_inner; else the domains get the new
 * hooks, with the previous allocator's ctx as at install.  With the GIL: MEM
 * and OBJ are only called with it. */
static void
hooks_refresh(void)
{
    if (region.reclaim != RECLAIM_CLASSES || region.scope == SCOPE_RAW) {
        return;
    }
    choose_hooks(region.reclaim);
    if (region.histogram) {
        return;
    }
    if (region.scope == SCOPE_PYTHON) {
        PyMemAllocatorEx hooks = mem_inner;
        hooks.ctx = mem_prev.ctx;
        if (!trace_takes_hooks(1, &hooks)) {  /* under a trace's hooks (trace.c) */
            PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &hooks);
        }
    }
    PyMemAllocatorEx hooks = obj_inner;
    hooks.ctx = obj_prev.ctx;
    if (!trace_takes_hooks(2, &hooks)) {
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hooks);
    }
}
