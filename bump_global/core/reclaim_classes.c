/*
 * core/reclaim_classes.c -- reclaim="classes" (MEM/OBJ only), the slab
 * pattern, as pymalloc's pools: requests up to CLASS_MAX bytes are rounded to
 * one of NCLASSES - 1 size classes; each class allocates from pages of
 * CLASS_PAGE bytes that hold only its blocks.  A block's class comes from its
 * address: class_map has one byte per CLASS_PAGE of the small area (0: not a
 * class page), so there are no headers.
 *
 * Pages.  Each class has one current page: its free list and what is left to
 * bump of it sit in the class's cache line, so the fast path is one pop or one
 * bump.  A free to another page goes on that page's own list (mimalloc's
 * free-list sharding; pymalloc's pools do the same) and lists the page in the
 * class's `avail` list.  When the current page has neither a free block nor
 * room to bump, the class takes a page from `avail`, else an empty page, else
 * a fresh one from the cursor.  So blocks allocated together sit together, as
 * they do under pymalloc: one global list per class (the first version) let a
 * churning program's new objects scatter over every page of their class, and
 * the GC's walks over them cost twice pymalloc's on deltablue.
 *
 * Empty pages.  Every page counts its live blocks (the current page's count
 * is in the class line).  A page whose last block is freed leaves its class
 * and joins the empty pages, which any class takes before a fresh page
 * (pymalloc gives an empty pool back to its arena the same way), and which a
 * class then *bumps* through: bumping only stores to the new block, where
 * popping a free list loads from it, and a block freed long ago is a cache
 * miss (perf annotate on pyflakes put 88% of the malloc hook's samples on that
 * load, docs/performance.md).  An empty page holds old bytes, so calloc clears
 * what a class bumps from one (`class_dirty`); a fresh page is zero.
 *
 * Larger requests take the default paths (hooks.c); a freed large block is
 * rolled back if it is the last, else its whole pages go back to the OS.
 * Under the GIL.
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

/* One per CLASS_PAGE of the small area (class_pages, parallel to class_map).
 * For a page that is not its class's current page: its free blocks, its live
 * blocks, and its links in its class's `avail` list (while `listed`) or in
 * the list of empty pages (`next` only). */
typedef struct class_page_s {
    void *free;
    struct class_page_s *next;
    struct class_page_s *prev;
    uint32_t live;
    uint32_t listed;
} class_page_t;

/* Per class, one cache line (64 bytes, aligned) holds the current page and
 * the counters: a pop, a bump or a free to the current page touches that
 * line only, and the line's address is k << 6 from the table (one shift).
 * Blocks of class k alive: bumps + pops - pushes (stats() sums them). */
typedef struct {
    void *free;           /* free blocks of the current page */
    class_page_t *page;   /* the current page (NULL before the first) */
    uintptr_t top;        /* next block to bump in the current page */
    uintptr_t end;        /* end of the current page's bump room */
    uint32_t size;        /* block size of the class */
    uint32_t live;        /* blocks of the current page handed out, not freed */
    uint64_t pushes;      /* frees put on a free list */
    uint64_t pops;        /* allocations served from a free list */
    uint64_t bumps;       /* allocations bumped from a page */
} class_t;

#if defined(__GNUC__) || defined(__clang__)
static class_t classes[NCLASSES] __attribute__((aligned(64)));
#else
static __declspec(align(64)) class_t classes[NCLASSES];
#endif
static unsigned char *class_map;   /* one byte per CLASS_PAGE of the small area */
static class_page_t *class_pages;  /* one per CLASS_PAGE of the small area */
static arena_t class_arena;        /* takes chunks from the cursor for class pages */
/* Cold state, out of the class lines: */
static class_page_t *class_avail[NCLASSES];  /* pages with free blocks, not current */
static unsigned char class_dirty[NCLASSES];  /* the current page was an empty page */
static class_page_t *class_empty;            /* empty pages, any class may take one */
static uint64_t class_pages_taken;           /* fresh pages carved from class_arena */

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
        if (k <= 32) {
            classes[k].size = (uint32_t)(k << 4);
        }
        else {
            unsigned octave = 9 + (k - 33) / 4, quarter = (k - 33) % 4;
            classes[k].size = (uint32_t)(((size_t)1 << octave) +
                                         ((size_t)(quarter + 1) << (octave - 2)));
        }
    }
}

ALWAYS_INLINE uintptr_t
class_page_addr(const class_page_t *pg)
{
    return region.base + ((uintptr_t)(pg - class_pages) << CLASS_SHIFT);
}

/* A fresh page carved CLASS_PAGE-aligned (relative to the base) from
 * class_arena; 0 when the region is full. */
static uintptr_t
class_fresh_page(void)
{
    arena_t *a = &class_arena;
    for (int attempt = 0; attempt < 2; attempt++) {
        uintptr_t page = region.base + ROUND_UP(a->top - region.base, CLASS_PAGE);
        if (a->chunk_end != 0 && page >= a->top && page <= a->chunk_end &&
            a->chunk_end - page >= CLASS_PAGE) {
            a->waste += page - a->top;  /* the alignment gap */
            a->top = page + CLASS_PAGE;
            class_pages_taken++;
            ASSERT(IS_ALIGNED(page) && page + CLASS_PAGE <= region.end);
            return page;
        }
        /* Enough for an aligned page wherever the chunk starts. */
        if (!arena_refill(a, 2 * CLASS_PAGE, GIL_CHUNK, 0)) {
            return 0;
        }
    }
    return 0;
}

/* Unlink pg from class k's avail list. */
static void
class_unlist(unsigned k, class_page_t *pg)
{
    if (pg->prev != NULL) {
        pg->prev->next = pg->next;
    }
    else {
        class_avail[k] = pg->next;
    }
    if (pg->next != NULL) {
        pg->next->prev = pg->prev;
    }
    pg->next = pg->prev = NULL;
    pg->listed = 0;
}

/* A block of class c from its current page: a pop from its free list, else a
 * bump; NULL when the page has neither (the cold path changes pages).
 * *reused says a pop (calloc must clear that block; a bump it clears only
 * from a page that was empty: class_dirty).  Where the caller ignores
 * *reused, the compiler drops it. */
ALWAYS_INLINE void *
class_take(class_t *c, int *reused)
{
    void *b = c->free;
    *reused = b != NULL;
    if (likely(b != NULL)) {
        c->free = *(void **)b;
        c->pops++;
        c->live++;
        return b;
    }
    uintptr_t top = c->top;
    if (likely(c->size <= c->end - top)) {
        c->top = top + c->size;
        c->bumps++;
        c->live++;
        return (void *)top;
    }
    return NULL;
}

/* Class k's current page is used up: make the next one current (a page of
 * the class with free blocks, else an empty page, else a fresh one) and take
 * a block from it.  NULL when the region is full. */
static NOINLINE void *
class_next_page(unsigned k, int *reused)
{
    class_t *c = &classes[k];
    if (c->page != NULL) {
        c->page->live = c->live;  /* no free block, nothing to bump: full */
        c->page->free = NULL;
    }
    class_page_t *pg = class_avail[k];
    if (pg != NULL) {
        class_unlist(k, pg);
        ASSERT(pg->free != NULL);
        c->page = pg;
        c->free = pg->free;
        pg->free = NULL;
        c->live = pg->live;
        c->top = c->end = 0;
        return class_take(c, reused);
    }
    uintptr_t page;
    if (class_empty != NULL) {
        pg = class_empty;
        class_empty = pg->next;
        page = class_page_addr(pg);
        class_dirty[k] = 1;
    }
    else {
        page = class_fresh_page();
        if (page == 0) {
            return NULL;
        }
        pg = &class_pages[(page - region.base) >> CLASS_SHIFT];
        class_dirty[k] = 0;
    }
    class_map[(page - region.base) >> CLASS_SHIFT] = (unsigned char)k;
    pg->free = NULL;
    pg->next = pg->prev = NULL;
    pg->listed = 0;
    pg->live = 0;
    c->page = pg;
    c->free = NULL;
    c->live = 0;
    c->top = page;
    c->end = page + CLASS_PAGE;
    return class_take(c, reused);
}

/* A block of n <= CLASS_MAX bytes, from another page if need be. */
ALWAYS_INLINE void *
class_alloc(size_t n, int *reused)
{
    unsigned k = class_of(n);
    void *p = class_take(&classes[k], reused);
    if (unlikely(p == NULL)) {
        p = class_next_page(k, reused);
    }
    if (!*reused) {
        *reused = class_dirty[k];  /* bumped from a page that was empty */
    }
    return p;
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

/* Page pg of class k (not its current page) has no live block left: it
 * joins the empty pages (cold). */
static NOINLINE void
class_page_empty(unsigned k, class_page_t *pg)
{
    if (pg->listed) {
        class_unlist(k, pg);
    }
    pg->free = NULL;
    pg->next = class_empty;
    class_empty = pg;
}

/* Free block p of class k: onto the current page's list (in the class's
 * line), else onto its own page's list, listing that page if it was not, or
 * giving the page up when that was its last block. */
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
        c->live--;
        return;
    }
    ASSERT(pg->live > 0);
    if (unlikely(--pg->live == 0)) {
        class_page_empty(k, pg);
        return;
    }
    *(void **)p = pg->free;
    pg->free = p;
    if (!pg->listed) {
        pg->listed = 1;
        pg->prev = NULL;
        pg->next = class_avail[k];
        if (pg->next != NULL) {
            pg->next->prev = pg;
        }
        class_avail[k] = pg;
    }
}

/* Blocks the classes handed out so far (bumped or popped). */
static uint64_t
classes_handed_out(void)
{
    uint64_t n = 0;
    if (class_map != NULL) {
        for (unsigned k = 1; k < NCLASSES; k++) {
            n += classes[k].bumps + classes[k].pops;
        }
    }
    return n;
}

/* Sampling (sites on): a class block of s bytes counts against
 * sampling.classes_left (sampling.c); s if it holds the point (the next one is
 * drawn), else 0.  Under the GIL. */
ALWAYS_INLINE size_t
classes_sampled(size_t s)
{
    if (!sampling.on) {
        return 0;
    }
    if ((int64_t)s > sampling.classes_left) {
        sampling.classes_left = (int64_t)sampling_interval(&sampling.classes_rng);
        return s;
    }
    sampling.classes_left -= (int64_t)s;
    return 0;
}

/* Classes past CLASS_SMALL_MAX, new pages, sizes beyond the classes; with
 * `sampled` (a constant: the sampling hooks), a sample. */
ALWAYS_INLINE void *
malloc_classes_cold_x(const domain_t *d, size_t n, int sampled)
{
    if (n <= CLASS_MAX) {
        int reused;
        void *p = class_alloc(n, &reused);
        if (unlikely(p == NULL)) {
            return exhausted(d, n, 1, 0);
        }
        size_t hit = sampled ? classes_sampled(classes[class_of(n)].size) : 0;
        if (unlikely(hit)) {
            sites_record(d, hit, 0);
        }
        return p;
    }
    return hook_malloc(d, n);  /* a large block: the GIL arena's point */
}

static NOINLINE void *
malloc_classes_cold(const domain_t *d, size_t n)
{
    return malloc_classes_cold_x(d, n, 0);
}

static NOINLINE void *
malloc_classes_sampled_cold(const domain_t *d, size_t n)
{
    return malloc_classes_cold_x(d, n, 1);
}

/* The fast case, as hook_malloc's: hits return, misses tail-call.  One
 * unsigned comparison takes 1..CLASS_SMALL_MAX bytes (malloc(0) wraps and goes
 * cold); the class is (n + 15) >> 4.  Cost (gcc -O2, x86-64): a hit from the
 * free list is 12 instructions with no call (compare, branch, lea, shr, shl,
 * add, load free, test, branch, load next, pops++, store free, ret), a bump
 * from the page 5 more.  The sampling hooks (`sampled`, installed only while
 * sites are on) add a load, a subtraction, a branch and a store of
 * classes_left: the block that would take it below zero goes cold. */
ALWAYS_INLINE void *
hook_malloc_classes_x(const domain_t *d, size_t n, int sampled)
{
    if (likely(n - 1 < CLASS_SMALL_MAX)) {
        class_t *c = &classes[(n + (ALIGNMENT - 1)) >> 4];
        int reused;
        if (!sampled) {
            void *p = class_take(c, &reused);
            if (likely(p != NULL)) {
                return p;
            }
        }
        else {
            int64_t left = sampling.classes_left - (int64_t)c->size;
            if (likely(left >= 0)) {
                void *p = class_take(c, &reused);
                if (likely(p != NULL)) {
                    sampling.classes_left = left;
                    return p;
                }
            }
            return malloc_classes_sampled_cold(d, n);
        }
    }
    return sampled ? malloc_classes_sampled_cold(d, n) : malloc_classes_cold(d, n);
}

ALWAYS_INLINE void *
hook_calloc_classes_x(const domain_t *d, size_t nelem, size_t elsize, int sampled)
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
            memset(p, 0, n);  /* a block bumped from a fresh page is already zero */
        }
        size_t hit = sampled ? classes_sampled(classes[class_of(n)].size) : 0;
        if (unlikely(hit)) {
            sites_record(d, hit, 0);
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
hook_realloc_classes_x(const domain_t *d, void *p, size_t n, int sampled)
{
    if (p == NULL) {
        return hook_malloc_classes_x(d, n, sampled);
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
    void *q = hook_malloc_classes_x(d, n, sampled);
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

/* Bytes of the class pages not holding live blocks: the pages carved (and the
 * class arena's alignment gaps and unused chunk tail), less the live blocks of
 * every class (bumps + pops - pushes).  The one formula (stats.c's used_of). */
static uint64_t
class_unused_bytes(uint64_t pages_taken, uint64_t arena_unused, uint64_t live_bytes)
{
    uint64_t carved = pages_taken * CLASS_PAGE + arena_unused;
    return live_bytes < carved ? carved - live_bytes : 0;
}

/* Add the classes' counters to *sum (their blocks are counted per class, on
 * each class's own cache line), read with relaxed loads: the GIL holder, or a
 * thread without it (the recorder), may read them. */
static void
classes_add_counters(counters_t *sum)
{
    if (ATOMIC_LOAD_RELAXED(class_map) == NULL) {
        return;
    }
    for (unsigned k = 1; k < NCLASSES; k++) {
        const class_t *c = &classes[k];
        uint64_t pushes = ATOMIC_LOAD_RELAXED(c->pushes);
        sum->allocations += ATOMIC_LOAD_RELAXED(c->bumps);
        sum->frees_reclaimed += pushes;
        sum->bytes_reclaimed += pushes * c->size;
        sum->allocations_reused += ATOMIC_LOAD_RELAXED(c->pops);
    }
}

/* The default hooks (suffix _classes) and the sampling ones (_classes_sampled),
 * which replace them while sites are on (domains.c); free is the same. */
#define DEFINE_CLASSES_HOOKS(name, dom, suffix, sampled)                       \
    static void *name##_malloc_##suffix(void *ctx, size_t n)                   \
    { (void)ctx; return hook_malloc_classes_x(&dom, n, sampled); }             \
    static void *name##_calloc_##suffix(void *ctx, size_t nelem, size_t elsize) \
    { (void)ctx; return hook_calloc_classes_x(&dom, nelem, elsize, sampled); } \
    static void *name##_realloc_##suffix(void *ctx, void *p, size_t n)         \
    { (void)ctx; return hook_realloc_classes_x(&dom, p, n, sampled); }

static void
mem_free_classes(void *ctx, void *p)
{
    (void)ctx;
    hook_free_classes(&mem_dom, p);
}

static void
obj_free_classes(void *ctx, void *p)
{
    (void)ctx;
    hook_free_classes(&obj_dom, p);
}

DEFINE_CLASSES_HOOKS(mem, mem_dom, classes, 0)
DEFINE_CLASSES_HOOKS(obj, obj_dom, classes, 0)
DEFINE_CLASSES_HOOKS(mem, mem_dom, classes_sampled, 1)
DEFINE_CLASSES_HOOKS(obj, obj_dom, classes_sampled, 1)
