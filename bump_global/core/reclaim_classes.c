/*
 * core/reclaim_classes.c -- reclaim="classes" (MEM/OBJ only), the slab
 * pattern, as pymalloc's pools: requests up to CLASS_MAX bytes are rounded to
 * one of NCLASSES - 1 size classes; each class bumps through pages of
 * CLASS_PAGE bytes that hold only its blocks.  A block's class comes from its
 * address: class_map has one byte per CLASS_PAGE of the small area (0: not a
 * class page), so there are no headers.
 *
 * Free lists are per page (mimalloc's free-list sharding; pymalloc's pools
 * do the same): a free block goes on its own page's list, threaded through
 * its first word.  Each class allocates from one current page's list (held
 * in the class, so the fast path is one pop) until it is empty, then takes
 * another page that has free blocks (its `avail` list), and bumps a fresh
 * page only when none has.  So blocks allocated together sit together, as
 * they do under pymalloc.  One global list per class (the first version) let
 * a churning program's new objects scatter over every page of their class:
 * the GC's walks over them cost twice pymalloc's on deltablue, which made
 * the whole run 1.2 to 1.46 times slower while the allocator itself was
 * faster (docs/performance.md).  Larger requests take the default
 * paths (hooks.c); a freed large block is rolled back if it is the last, else
 * its whole pages go back to the OS.  Class pages come fresh from the cursor,
 * so a bumped class block is zero; calloc clears only blocks taken from a
 * free list.  Under the GIL.
 */

#define CLASS_SHIFT 16
#define CLASS_PAGE ((uintptr_t)1 << CLASS_SHIFT)  /* a class page: 64 KiB, aligned */
#define CLASS_SMALL_MAX 512   /* classes 1..32: steps of 16 bytes (the fast case) */
#define CLASS_MAX 65536       /* classes 33..60: four per doubling, 640 B to 64 KiB */
#define NCLASSES 61           /* class 0 means "not a class page" in class_map */
/* Up to LARGE_MIN (64 KiB), so that no request of the GIL domains is bumped
 * from the small area for good: with classes up to 32 KiB only, the requests
 * between 32 and 64 KiB were never reused (pyflakes: 451 blocks, 18.7 MiB of
 * its 47 MiB peak).  A page of the classes past 32 KiB holds one block; the
 * rest of the page is never touched, so it costs address space only. */

/* One per CLASS_PAGE of the small area (class_pages, parallel to class_map):
 * the free blocks of a class page that is not its class's current page, and
 * its link in the class's list of such pages with free blocks.  `next` is
 * NULL while the page is not on that list (its tail points at PAGE_LIST_END). */
typedef struct class_page_s {
    void *free;
    struct class_page_s *next;
} class_page_t;

#define PAGE_LIST_END ((class_page_t *)1)

/* Per class, one cache line (64 bytes, aligned) holds its state and counters:
 * a pop or a push to the current page touches that line only (a push to
 * another page also its class_page_t) and adds one counter (stats() sums
 * them), and the line's address is k << 6 from the table (one shift). */
typedef struct {
    void *free;           /* free blocks of the current page */
    class_page_t *page;   /* the current page (NULL before the first switch) */
    class_page_t *avail;  /* other pages with free blocks (PAGE_LIST_END: none) */
    uintptr_t top;        /* next block of the newest page */
    uintptr_t end;        /* end of the newest page */
    size_t size;          /* block size of the class */
    uint64_t pushes;      /* frees put on a free list */
    uint64_t pops;        /* allocations served from one; pushes - pops are free */
} class_t;

#if defined(__GNUC__) || defined(__clang__)
static class_t classes[NCLASSES] __attribute__((aligned(64)));
#else
static __declspec(align(64)) class_t classes[NCLASSES];
#endif
static unsigned char *class_map;   /* one byte per CLASS_PAGE of the small area */
static class_page_t *class_pages;  /* one per CLASS_PAGE of the small area */
static arena_t class_arena;        /* takes chunks from the cursor for class pages */

/* The class of a request of n <= CLASS_MAX bytes. */
ALWAYS_INLINE unsigned
class_of(size_t n)
{
    if (likely(n <= CLASS_SMALL_MAX)) {
        return n == 0 ? 1 : (unsigned)((n + (ALIGNMENT - 1)) >> 4);
    }
    unsigned octave = 63 - (unsigned)CLZ64(n - 1);
    return 33 + (octave - 9) * 4 + (unsigned)(((n - 1) >> (octave - 2)) & 3);
}

static void
classes_init(void)
{
    for (unsigned k = 1; k < NCLASSES; k++) {
        classes[k].avail = PAGE_LIST_END;
        if (k <= 32) {
            classes[k].size = (size_t)k << 4;
        }
        else {
            unsigned octave = 9 + (k - 33) / 4, quarter = (k - 33) % 4;
            classes[k].size = ((size_t)1 << octave) + ((size_t)(quarter + 1) << (octave - 2));
        }
    }
}

/* Give class k a new page, carved CLASS_PAGE-aligned (relative to the base)
 * from class_arena, and bump its first block.  NULL when the region is full. */
static NOINLINE void *
class_new_page(unsigned k)
{
    arena_t *a = &class_arena;
    class_t *c = &classes[k];
    for (int attempt = 0; attempt < 2; attempt++) {
        uintptr_t page = region.base + ROUND_UP(a->top - region.base, CLASS_PAGE);
        if (a->end != 0 && page >= a->top && page <= a->end &&
            a->end - page >= CLASS_PAGE) {
            a->waste += (page - a->top) + (c->end - c->top);
            a->top = page + CLASS_PAGE;
            class_map[(page - region.base) >> CLASS_SHIFT] = (unsigned char)k;
            c->top = page + c->size;
            c->end = page + CLASS_PAGE;
            ASSERT(IS_ALIGNED(page) && page + CLASS_PAGE <= region.end);
            gil_arena.c.allocations++;
            return (void *)page;
        }
        /* Enough for an aligned page wherever the chunk starts. */
        if (!arena_refill(a, 2 * CLASS_PAGE, GIL_CHUNK, 0)) {
            return NULL;
        }
    }
    return NULL;
}

/* A block of class c: from the current page's free list, else bumped from
 * the newest page when no other page has free blocks; NULL otherwise (the
 * cold path switches pages or takes a new one).  *reused says which (calloc
 * must clear a reused block; where the caller ignores it, the compiler drops
 * it). */
ALWAYS_INLINE void *
class_take(class_t *c, int *reused)
{
    void *b = c->free;
    *reused = b != NULL;
    if (likely(b != NULL)) {
        c->free = *(void **)b;
        c->pops++;
        return b;
    }
    uintptr_t top = c->top;
    if (likely(c->avail == PAGE_LIST_END && c->size <= c->end - top)) {
        c->top = top + c->size;
        gil_arena.c.allocations++;
        return (void *)top;
    }
    return NULL;
}

/* The current page's list is empty: make the first page of `avail` current
 * and pop from it.  NULL if no page has free blocks. */
static void *
class_switch_page(class_t *c)
{
    class_page_t *pg = c->avail;
    if (pg == PAGE_LIST_END) {
        return NULL;
    }
    c->avail = pg->next;
    pg->next = NULL;
    c->page = pg;
    void *b = pg->free;  /* not NULL: a listed page has free blocks */
    pg->free = NULL;
    ASSERT(b != NULL);
    c->free = *(void **)b;
    c->pops++;
    return b;
}

/* A block of n <= CLASS_MAX bytes, from a new page if need be. */
ALWAYS_INLINE void *
class_alloc(size_t n, int *reused)
{
    unsigned k = class_of(n);
    void *p = class_take(&classes[k], reused);
    if (likely(p != NULL)) {
        return p;
    }
    p = class_switch_page(&classes[k]);
    if (p != NULL) {
        *reused = 1;
        return p;
    }
    *reused = 0;
    return class_new_page(k);
}

/* The class of a small-area block (0: not in a class page), or -1 when p is
 * outside the small area. */
ALWAYS_INLINE int
class_of_block(uintptr_t p)
{
    uintptr_t off = p - region.base;
    if (likely(off < region.end - region.base)) {
        return class_map[off >> CLASS_SHIFT];
    }
    return -1;
}

/* Free block p of class k: onto the current page's list (in the class's
 * line), else onto its own page's list, listing that page if it was not. */
ALWAYS_INLINE void
class_push(unsigned k, void *p)
{
    class_t *c = &classes[k];
    class_page_t *pg = &class_pages[((uintptr_t)p - region.base) >> CLASS_SHIFT];
    ASSERT(k > 0 && k < NCLASSES && IS_ALIGNED(p));
    c->pushes++;
    if (likely(pg == c->page)) {
        *(void **)p = c->free;
        c->free = p;
        return;
    }
    *(void **)p = pg->free;
    pg->free = p;
    if (pg->next == NULL) {
        pg->next = c->avail;
        c->avail = pg;
    }
}

/* Classes past CLASS_SMALL_MAX, new pages, sizes beyond the classes. */
static NOINLINE void *
malloc_classes_cold(const domain_t *d, size_t n)
{
    if (n <= CLASS_MAX) {
        int reused;
        void *p = class_alloc(n, &reused);
        return likely(p != NULL) ? p : exhausted(d, n, 1, 0);
    }
    return hook_malloc(d, n);
}

/* The fast case, as hook_malloc's: hits return, misses tail-call.  One
 * unsigned comparison takes 1..CLASS_SMALL_MAX bytes (malloc(0) wraps and goes
 * cold); the class is (n + 15) >> 4.  Cost (gcc -O2, x86-64): a hit from the
 * free list is 12 instructions with no call (compare, branch, lea, shr, shl,
 * add, load free, test, branch, load next, pops++, store free, ret), a bump
 * from the page 5 more. */
ALWAYS_INLINE void *
hook_malloc_classes(const domain_t *d, size_t n)
{
    if (likely(n - 1 < CLASS_SMALL_MAX)) {
        int reused;
        void *p = class_take(&classes[(n + (ALIGNMENT - 1)) >> 4], &reused);
        if (likely(p != NULL)) {
            return p;
        }
    }
    return malloc_classes_cold(d, n);
}

ALWAYS_INLINE void *
hook_calloc_classes(const domain_t *d, size_t nelem, size_t elsize)
{
    size_t n;
    if (mul_overflows(nelem, elsize, &n)) {
        return NULL;
    }
    if (n <= CLASS_MAX) {
        int reused;
        void *p = class_alloc(n, &reused);
        if (unlikely(p == NULL)) {
            return exhausted(d, nelem, elsize, 1);
        }
        if (reused) {
            memset(p, 0, n);  /* a bumped block is fresh memory, already zero */
        }
        return p;
    }
    return hook_calloc(d, nelem, elsize);
}

/* A large block freed: rolled back if it is the last, else its pages go
 * back to the OS; foreign pointers and NULL as usual. */
static NOINLINE void
free_classes_cold(const domain_t *d, void *p)
{
    uintptr_t addr = (uintptr_t)p;
    if (in_large_area(addr)) {
        free_large(d->arena, addr);
        return;
    }
    free_foreign(d, p);
}

ALWAYS_INLINE void
hook_free_classes(const domain_t *d, void *p)
{
    int k = class_of_block((uintptr_t)p);
    if (likely(k > 0)) {
        class_push((unsigned)k, p);
        return;
    }
    if (k == 0) {
        d->arena->c.frees_ignored++;  /* a general block of the small area */
        return;
    }
    free_classes_cold(d, p);
}

static NOINLINE void *
hook_realloc_classes(const domain_t *d, void *p, size_t n)
{
    if (p == NULL) {
        return hook_malloc_classes(d, n);
    }
    int k = class_of_block((uintptr_t)p);
    if (k <= 0) {
        return hook_realloc(d, p, n);  /* general, large or foreign */
    }
    size_t size = classes[k].size;
    /* Stay put when it fits and would not waste a quarter (pymalloc's rule). */
    if (n <= size && 4 * n > 3 * size) {
        return p;
    }
    void *q = hook_malloc_classes(d, n);
    if (q == NULL) {
        return NULL;  /* the old block stays valid */
    }
    size_t copy = n < size ? n : size;
    memcpy(q, p, copy);
    class_push((unsigned)k, p);
    d->arena->c.reallocs_moved++;
    d->arena->c.bytes_copied += copy;
    return q;
}

/* Bytes of the class pages not holding live blocks: free lists and the
 * unbumped tails of the current pages; adds the classes' counters to *sum
 * if given.  Under the GIL. */
static uint64_t
classes_unused(counters_t *sum)
{
    uint64_t unused_bytes = 0;
    if (class_map == NULL) {
        return 0;
    }
    for (unsigned k = 1; k < NCLASSES; k++) {
        const class_t *c = &classes[k];
        unused_bytes += (c->end - c->top) + (c->pushes - c->pops) * c->size;
        if (sum != NULL) {
            sum->frees_reclaimed += c->pushes;
            sum->bytes_reclaimed += c->pushes * c->size;
            sum->allocations_reused += c->pops;
        }
    }
    return unused_bytes + class_arena.waste + (class_arena.end - class_arena.top);
}

#define DEFINE_CLASSES_HOOKS(name, dom)                                        \
    static void *name##_malloc_classes(void *ctx, size_t n)                    \
    { (void)ctx; return hook_malloc_classes(&dom, n); }                        \
    static void *name##_calloc_classes(void *ctx, size_t nelem, size_t elsize) \
    { (void)ctx; return hook_calloc_classes(&dom, nelem, elsize); }            \
    static void *name##_realloc_classes(void *ctx, void *p, size_t n)          \
    { (void)ctx; return hook_realloc_classes(&dom, p, n); }                    \
    static void name##_free_classes(void *ctx, void *p)                        \
    { (void)ctx; hook_free_classes(&dom, p); }

DEFINE_CLASSES_HOOKS(mem, mem_dom)
DEFINE_CLASSES_HOOKS(obj, obj_dom)
