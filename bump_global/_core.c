/*
 * bump_global/_core.c -- the hot path of bump_global: CPython allocator hooks
 * that serve every allocation by bumping a pointer through one large region.
 *
 * Design
 * ======
 *
 * The region.  Python reserves one virtual region [base, base + size) once per
 * process (bump_global/_region.py) and hands it to install() below.  It is never
 * unmapped: nothing here owns a Python object for it, so interpreter shutdown
 * cannot tear it down.  The first `committed` bytes are readable and writable;
 * where the platform needs it (Windows, or Linux in strict overcommit mode), the
 * rest is committed in steps of `commit_step` by the cold path (commit_upto).
 * Memory that has never been handed out is zero (fresh anonymous pages).
 *
 * Chunks and arenas.  One global `cursor` consumes the region from the low end.
 * It only moves forward, by compare-and-swap, in cold paths.  Two arenas take
 * chunks from it and bump through them:
 *   - the GIL arena serves the MEM and OBJ domains.  In a default (GIL) build
 *     CPython calls those with the GIL held, and the GIL serialises every access
 *     to this arena: its fast path is plain loads and stores, no atomics.
 *   - the RAW arena serves the RAW domain, which CPython calls without the GIL
 *     from any thread.  A mutex guards it (uncontended: ~20 ns); RAW traffic is a
 *     small fraction of all allocations.  pthread_atfork keeps the mutex usable
 *     in a child of fork().
 * An arena whose chunk ends at the cursor extends it in place, so with one busy
 * arena the region is one contiguous run.  When the other arena took the next
 * chunk meanwhile, the rest of the current chunk is abandoned (counted as
 * waste) and a new chunk starts at the cursor.  Because every byte below the
 * cursor belongs to some chunk and is committed before the cursor moves past
 * it, [base, cursor) is always safe to read.
 *
 * Alignment.  Every block is a multiple of 16 bytes and starts 16-aligned (the
 * region base is page aligned), as pymalloc gives on 64-bit builds.
 * malloc(0) takes a 16-byte block, so it is unique and non-NULL.
 *
 * Free.  A pointer inside the region: nothing to do (counted).  NULL: nothing.
 * Anything else predates the install (or came from a fallback) and goes to the
 * free of the allocator that was installed before us, saved per domain.
 *
 * Realloc.  NULL is malloc.  A pointer outside the region goes to the saved
 * previous realloc.  The most recent block of the calling domain's arena grows
 * or shrinks in place (extending the chunk when it ends at the cursor).  Any
 * other block moves: we keep no headers, so the old size is unknown and we copy
 * min(new size, cursor - p) bytes: everything the old block can hold, never a
 * byte outside the used part of the region.  The tail we copy may be other
 * blocks' bytes (the caller ignores them); reading them is a benign race with
 * RAW threads writing their own blocks.  If the new block cannot be had, NULL
 * is returned and the old block stays valid (we never free it).
 *
 * Calloc.  Checks nelem * elsize for overflow.  Memory above an arena's `dirty`
 * mark has never been handed out and is already zero: only a block that
 * starts below it (possible after an in-place shrink moved `top` back) is
 * cleared, and only the part below the mark.
 *
 * Exhaustion.  Policy "fallback": the allocator saved at install serves the
 * request (counted); its pointers are outside the region, so free/realloc
 * forward them correctly.  Policy "error": NULL, and CPython raises MemoryError.
 * Since frees give nothing back, a program whose region is full could not even
 * build the traceback; so under "error" the arenas stop at `limit`, an
 * emergency reserve below the end (1/16 of the region, at most 4 MiB), which
 * the first failure releases for the unwinding that follows.
 *
 * Installing.  Our functions ignore `ctx`; each finds its domain's state in a
 * static.  We install them with the previous allocator's ctx, so a thread that
 * reads a mix of old and new fields of the struct (CPython reads it without a
 * lock) still passes the right ctx to the previous functions.  RAW is installed
 * in two steps: first free/realloc (which forward foreign pointers), then
 * malloc/calloc, so no thread can hand a region pointer to the old free.
 *
 * Free-threaded builds (Py_GIL_DISABLED): MEM/OBJ are neither serialised nor
 * replaceable (the GC walks mimalloc heaps), so only the RAW domain is offered.
 *
 * Counters are plain integers in the GIL arena and updated under the mutex (or
 * atomically, for frees) in the RAW arena; stats() adds them up.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#  include <windows.h>
#else
#  include <pthread.h>
#  include <sys/mman.h>
#  include <unistd.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define likely(x) __builtin_expect(!!(x), 1)
#  define unlikely(x) __builtin_expect(!!(x), 0)
#  define ALWAYS_INLINE static inline __attribute__((always_inline))
#  define NOINLINE __attribute__((noinline))
#  define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#  define ATOMIC_CAS(p, expected, desired) \
       __atomic_compare_exchange_n((p), &(expected), (desired), 0, \
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#  define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#  define ATOMIC_ADD(p, v) ((void)__atomic_fetch_add((p), (v), __ATOMIC_RELAXED))
#  define FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#elif defined(_MSC_VER)
#  define likely(x) (x)
#  define unlikely(x) (x)
#  define ALWAYS_INLINE static __forceinline
#  define NOINLINE __declspec(noinline)
/* x64/ARM64 MSVC: aligned 64-bit loads and stores are atomic; Interlocked* are
 * full barriers.  `expected` is updated on failure, as with the GCC builtin. */
#  define ATOMIC_LOAD(p) ((uintptr_t)InterlockedCompareExchange64((volatile LONG64 *)(p), 0, 0))
#  define ATOMIC_CAS(p, expected, desired) \
       bg_msvc_cas((volatile LONG64 *)(p), &(expected), (desired))
#  define ATOMIC_STORE(p, v) ((void)InterlockedExchange64((volatile LONG64 *)(p), (LONG64)(v)))
#  define ATOMIC_ADD(p, v) ((void)InterlockedExchangeAdd64((volatile LONG64 *)(p), (LONG64)(v)))
#  define FENCE() MemoryBarrier()
static __forceinline int
__builtin_clzll(unsigned long long x)
{
    unsigned long index;
    _BitScanReverse64(&index, x);
    return 63 - (int)index;
}
static __forceinline int
bg_msvc_cas(volatile LONG64 *p, uintptr_t *expected, uintptr_t desired)
{
    LONG64 seen = InterlockedCompareExchange64(p, (LONG64)desired, (LONG64)*expected);
    if ((uintptr_t)seen == *expected) {
        return 1;
    }
    *expected = (uintptr_t)seen;
    return 0;
}
#else
#  error "bump_global needs GCC, Clang or MSVC atomics"
#endif

#if SIZEOF_VOID_P != 8
#  error "bump_global supports 64-bit builds only"
#endif

#define ALIGNMENT ((size_t)16)
#define ROUND_UP(n, a) (((n) + ((a) - 1)) & ~((a) - 1))
#define GIL_CHUNK ((size_t)1 << 20)   /* granule the GIL arena takes from the cursor */
#define RAW_CHUNK ((size_t)64 << 10)  /* granule of the RAW arena */
#define EMERGENCY_RESERVE ((uintptr_t)4 << 20)  /* at most, policy "error" */

/* Must match bump_global/_config.py. */
enum { SCOPE_OBJECTS = 1, SCOPE_PYTHON = 2, SCOPE_RAW = 3 };
enum { ON_EXHAUSTED_FALLBACK = 1, ON_EXHAUSTED_ERROR = 2 };

typedef struct {
    uint64_t allocations;        /* blocks bumped (malloc, calloc, moved realloc) */
    uint64_t frees_ignored;      /* frees of region pointers */
    uint64_t foreign_frees;      /* frees forwarded to the previous allocator */
    uint64_t foreign_reallocs;   /* reallocs forwarded to the previous allocator */
    uint64_t reallocs_in_place;
    uint64_t reallocs_moved;
    uint64_t bytes_copied;
    uint64_t fallback_allocations;
    uint64_t fallback_bytes;
    uint64_t failed_allocations; /* NULL returned (policy "error", or no memory) */
} counters_t;

typedef struct {
    uintptr_t top;    /* next free byte of the current chunk */
    uintptr_t end;    /* end of the current chunk */
    uintptr_t last;   /* start of the most recent block, 0 if none in this chunk */
    uintptr_t dirty;  /* bytes at or above max(top, dirty) were never handed out */
    uint64_t waste;   /* bytes left unused at the end of abandoned chunks */
    counters_t c;
} arena_t;

/* A domain's description is const, so once a hook is inlined the compiler
 * folds `arena` and `is_raw` away: the GIL fast path has no lock and no test. */
typedef struct {
    arena_t *arena;
    int is_raw;
    PyMemAllocatorEx *prev;  /* allocator found at install time */
} domain_t;

static struct {
    uintptr_t base;
    uintptr_t size;         /* reserved bytes */
    uintptr_t end;          /* base + size */
    uintptr_t limit;        /* atomic: arenas stop here (end, or end - reserve) */
    uintptr_t cursor;       /* atomic: [base, cursor) is handed to arenas */
    uintptr_t committed;    /* atomic: [base, committed) is readable/writable */
    uintptr_t commit_step;  /* 0: the whole region was committed up front */
    int scope;
    int on_exhausted;
    int histogram;
    int installed;
} region;

static arena_t gil_arena;
static arena_t raw_arena;
static PyMemAllocatorEx raw_prev, mem_prev, obj_prev;
static const domain_t raw_dom = {&raw_arena, 1, &raw_prev};
static const domain_t mem_dom = {&gil_arena, 0, &mem_prev};
static const domain_t obj_dom = {&gil_arena, 0, &obj_prev};

/* ---- locks ------------------------------------------------------------- */

#ifdef _WIN32
static SRWLOCK raw_lock = SRWLOCK_INIT;
static SRWLOCK commit_lock = SRWLOCK_INIT;
#  define LOCK(l) AcquireSRWLockExclusive(&(l))
#  define UNLOCK(l) ReleaseSRWLockExclusive(&(l))
#else
static pthread_mutex_t raw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;
#  define LOCK(l) pthread_mutex_lock(&(l))
#  define UNLOCK(l) pthread_mutex_unlock(&(l))

/* fork() copies a mutex in whatever state another thread left it: hold both
 * across the fork so the child gets them unlocked and consistent.  Lock order
 * everywhere: raw_lock, then commit_lock. */
static void atfork_prepare(void) { LOCK(raw_lock); LOCK(commit_lock); }
static void atfork_parent(void) { UNLOCK(commit_lock); UNLOCK(raw_lock); }
static void atfork_child(void) { UNLOCK(commit_lock); UNLOCK(raw_lock); }
#endif

/* ---- region: cold paths -------------------------------------------------- */

ALWAYS_INLINE int
in_region(const void *p)
{
    return (uintptr_t)p - region.base < region.size;
}

/* Make [base, upto) readable and writable.  Returns 0 if the OS refuses. */
static int
commit_upto(uintptr_t upto)
{
    if (likely(upto <= ATOMIC_LOAD(&region.committed))) {
        return 1;
    }
    int ok = 1;
    LOCK(commit_lock);
    uintptr_t have = region.committed;
    if (upto > have) {
        uintptr_t want = region.base + ROUND_UP(upto - region.base, region.commit_step);
        if (want > region.end) {
            want = region.end;
        }
#ifdef _WIN32
        ok = VirtualAlloc((LPVOID)have, (SIZE_T)(want - have), MEM_COMMIT,
                          PAGE_READWRITE) != NULL;
#else
        ok = mprotect((void *)have, (size_t)(want - have),
                      PROT_READ | PROT_WRITE) == 0;
#endif
        if (ok) {
            ATOMIC_STORE(&region.committed, want);
        }
    }
    UNLOCK(commit_lock);
    return ok;
}

/* Give arena `a` at least `need` bytes at a->top.  If a->top is in a chunk
 * that ends at the cursor, the chunk is extended in place; otherwise, unless
 * `in_place_only`, a new chunk starts at the cursor and the old one's tail is
 * abandoned.  Called with the arena's lock (the GIL or raw_lock) held.
 * Returns 0 when the region cannot provide it. */
static NOINLINE int
arena_refill(arena_t *a, size_t need, size_t granule, int in_place_only)
{
    uintptr_t cur = ATOMIC_LOAD(&region.cursor);
    for (;;) {
        int contiguous = (a->end != 0 && a->end == cur);
        if (!contiguous && in_place_only) {
            return 0;
        }
        uintptr_t start = contiguous ? a->top : cur;
        uintptr_t limit = ATOMIC_LOAD(&region.limit);
        if (start > limit || need > limit - start) {
            return 0;
        }
        uintptr_t new_end = start + ROUND_UP(need, granule);
        if (new_end > limit || new_end < start) {
            new_end = limit;
        }
        if (!commit_upto(new_end)) {
            return 0;
        }
        if (ATOMIC_CAS(&region.cursor, cur, new_end)) {
            if (!contiguous) {
                a->waste += a->end - a->top;
                a->top = start;
                a->last = 0;  /* the previous block cannot grow into this chunk */
            }
            a->end = new_end;
            return 1;
        }
        /* `cur` now holds the cursor another arena moved; try again. */
    }
}

/* ---- the bump ------------------------------------------------------------ */

/* The fast path.  One comparison rejects a zero size, a size that overflows
 * the rounding, and a block that does not fit: all go to the cold path. */
ALWAYS_INLINE void *
arena_bump(arena_t *a, size_t n)
{
    size_t sz = (n + (ALIGNMENT - 1)) & ~(ALIGNMENT - 1);
    uintptr_t top = a->top;
    if (likely(sz - 1 < a->end - top)) {
        a->top = top + sz;
        a->last = top;
        a->c.allocations++;
        return (void *)top;
    }
    return NULL;
}

static NOINLINE void *
arena_bump_cold(arena_t *a, size_t n)
{
    if (n == 0) {
        n = 1;
    }
    if (n > (size_t)PY_SSIZE_T_MAX) {
        return NULL;
    }
    size_t sz = ROUND_UP(n, ALIGNMENT);
    if (sz > a->end - a->top &&
        !arena_refill(a, sz, a == &raw_arena ? RAW_CHUNK : GIL_CHUNK, 0)) {
        return NULL;
    }
    return arena_bump(a, n);
}

/* Region exhausted (or a size CPython would refuse): apply the policy. */
static NOINLINE void *
exhausted(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize;
    counters_t *c = &d->arena->c;
    if (region.on_exhausted == ON_EXHAUSTED_FALLBACK && n <= (size_t)PY_SSIZE_T_MAX) {
        void *p = zero ? d->prev->calloc(d->prev->ctx, nelem, elsize)
                       : d->prev->malloc(d->prev->ctx, n);
        if (p != NULL) {
            if (d->is_raw) {
                ATOMIC_ADD(&c->fallback_allocations, 1);
                ATOMIC_ADD(&c->fallback_bytes, n);
            }
            else {
                c->fallback_allocations++;
                c->fallback_bytes += n;
            }
            return p;
        }
    }
    if (d->is_raw) {
        ATOMIC_ADD(&c->failed_allocations, 1);
    }
    else {
        c->failed_allocations++;
    }
    if (n <= region.end - region.limit) {
        /* The region is full (not merely too small for a huge request):
         * release the emergency reserve for the unwinding that follows. */
        ATOMIC_STORE(&region.limit, region.end);
    }
    return NULL;
}

/* ---- the hooks, generic over the domain ----------------------------------- */

#define ARENA_LOCK(d) do { if ((d)->is_raw) LOCK(raw_lock); } while (0)
#define ARENA_UNLOCK(d) do { if ((d)->is_raw) UNLOCK(raw_lock); } while (0)

ALWAYS_INLINE void *
hook_malloc(const domain_t *d, size_t n)
{
    arena_t *a = d->arena;
    ARENA_LOCK(d);
    void *p = arena_bump(a, n);
    if (unlikely(p == NULL)) {
        p = arena_bump_cold(a, n);
    }
    ARENA_UNLOCK(d);
    if (unlikely(p == NULL)) {
        return exhausted(d, n, 1, 0);
    }
    return p;
}

ALWAYS_INLINE void *
hook_calloc(const domain_t *d, size_t nelem, size_t elsize)
{
    size_t n;
#if defined(__GNUC__) || defined(__clang__)
    if (unlikely(__builtin_mul_overflow(nelem, elsize, &n))) {
        return NULL;
    }
#else
    if (elsize != 0 && nelem > SIZE_MAX / elsize) {
        return NULL;
    }
    n = nelem * elsize;
#endif
    arena_t *a = d->arena;
    ARENA_LOCK(d);
    void *p = arena_bump(a, n);
    if (unlikely(p == NULL)) {
        p = arena_bump_cold(a, n);
    }
    /* Bytes below `dirty` may have been handed out before (and written). */
    size_t to_clear = 0;
    if (p != NULL && unlikely((uintptr_t)p < a->dirty)) {
        to_clear = a->dirty - (uintptr_t)p;
        if (to_clear > n) {
            to_clear = n;
        }
    }
    ARENA_UNLOCK(d);
    if (unlikely(p == NULL)) {
        return exhausted(d, nelem, elsize, 1);
    }
    if (unlikely(to_clear)) {
        memset(p, 0, to_clear);
    }
    return p;
}

ALWAYS_INLINE void
hook_free(const domain_t *d, void *p)
{
    if (likely(in_region(p))) {
        if (d->is_raw) {
            ATOMIC_ADD(&d->arena->c.frees_ignored, 1);
        }
        else {
            d->arena->c.frees_ignored++;
        }
        return;
    }
    if (p == NULL) {
        return;
    }
    if (d->is_raw) {
        ATOMIC_ADD(&d->arena->c.foreign_frees, 1);
    }
    else {
        d->arena->c.foreign_frees++;
    }
    d->prev->free(d->prev->ctx, p);
}

/* Resize the arena's most recent block in place.  Returns 0 if it cannot.
 * Called with the arena's lock held. */
static int
resize_last(arena_t *a, uintptr_t p, size_t n, size_t granule)
{
    size_t sz = n == 0 ? ALIGNMENT : ROUND_UP(n, ALIGNMENT);
    if (sz > a->end - p && !arena_refill(a, sz - (a->top - p), granule, 1)) {
        return 0;
    }
    if (p + sz < a->top && a->top > a->dirty) {
        a->dirty = a->top;  /* the bytes we give back were handed out */
    }
    a->top = p + sz;
    a->c.reallocs_in_place++;
    return 1;
}

static NOINLINE void *
hook_realloc_cold(const domain_t *d, void *p, size_t n)
{
    arena_t *a = d->arena;
    if (p == NULL) {
        return hook_malloc(d, n);
    }
    if (!in_region(p)) {
        if (d->is_raw) {
            ATOMIC_ADD(&a->c.foreign_reallocs, 1);
        }
        else {
            a->c.foreign_reallocs++;
        }
        return d->prev->realloc(d->prev->ctx, p, n);
    }
    if (n > (size_t)PY_SSIZE_T_MAX) {
        return NULL;
    }
    ARENA_LOCK(d);
    int done = (uintptr_t)p == a->last &&
               resize_last(a, (uintptr_t)p, n, d->is_raw ? RAW_CHUNK : GIL_CHUNK);
    ARENA_UNLOCK(d);
    if (done) {
        return p;
    }
    void *q = hook_malloc(d, n);
    if (q == NULL) {
        return NULL;  /* the old block stays valid */
    }
    /* [p, cursor) is committed and readable: copy what the old block can hold. */
    size_t avail = ATOMIC_LOAD(&region.cursor) - (uintptr_t)p;
    size_t copy = n < avail ? n : avail;
    memcpy(q, p, copy);
    ARENA_LOCK(d);
    a->c.reallocs_moved++;
    a->c.bytes_copied += copy;
    ARENA_UNLOCK(d);
    return q;
}

/* ---- one set of hooks per domain ------------------------------------------ */

#define DEFINE_HOOKS(name, dom)                                                \
    static void *name##_malloc(void *ctx, size_t n)                            \
    { (void)ctx; return hook_malloc(&dom, n); }                                \
    static void *name##_calloc(void *ctx, size_t nelem, size_t elsize)         \
    { (void)ctx; return hook_calloc(&dom, nelem, elsize); }                    \
    static void *name##_realloc(void *ctx, void *p, size_t n)                  \
    { (void)ctx; return hook_realloc_cold(&dom, p, n); }                       \
    static void name##_free(void *ctx, void *p)                                \
    { (void)ctx; hook_free(&dom, p); }

DEFINE_HOOKS(raw, raw_dom)
DEFINE_HOOKS(mem, mem_dom)
DEFINE_HOOKS(obj, obj_dom)

/* ---- the size histogram (opt-in) -------------------------------------------
 * Requests per power-of-two size class: class k counts sizes in
 * (2^(k-1), 2^k], class 0 sizes 0 and 1.  A second set of hooks records the
 * request and calls the plain hook, and is installed only when asked for, so
 * without it the hot path pays nothing.  GIL domains update the GIL table;
 * RAW updates its own table atomically. */
#define HIST_CLASSES 64
typedef struct {
    uint64_t count[HIST_CLASSES];
    uint64_t bytes[HIST_CLASSES];
} hist_t;
static hist_t gil_hist, raw_hist;

ALWAYS_INLINE void
hist_record(int is_raw, size_t n)
{
    int k = n <= 1 ? 0 : 64 - __builtin_clzll((unsigned long long)(n - 1));
    if (is_raw) {
        ATOMIC_ADD(&raw_hist.count[k], 1);
        ATOMIC_ADD(&raw_hist.bytes[k], n);
    }
    else {
        gil_hist.count[k]++;
        gil_hist.bytes[k] += n;
    }
}

#define DEFINE_HIST_HOOKS(name, is_raw)                                        \
    static void *name##_malloc_h(void *ctx, size_t n)                          \
    { hist_record(is_raw, n); return name##_malloc(ctx, n); }                  \
    static void *name##_calloc_h(void *ctx, size_t nelem, size_t elsize)       \
    {                                                                          \
        size_t n = elsize && nelem > SIZE_MAX / elsize ? SIZE_MAX : nelem * elsize; \
        hist_record(is_raw, n);                                                \
        return name##_calloc(ctx, nelem, elsize);                              \
    }                                                                          \
    static void *name##_realloc_h(void *ctx, void *p, size_t n)                \
    { hist_record(is_raw, n); return name##_realloc(ctx, p, n); }

DEFINE_HIST_HOOKS(raw, 1)
DEFINE_HIST_HOOKS(mem, 0)
DEFINE_HIST_HOOKS(obj, 0)

static void
install_domain(PyMemAllocatorDomain which, const domain_t *d,
               void *(*m)(void *, size_t), void *(*c)(void *, size_t, size_t),
               void *(*r)(void *, void *, size_t), void (*f)(void *, void *))
{
    PyMem_GetAllocator(which, d->prev);
    /* Step 1: free/realloc first (they forward what is not ours), so no
     * thread can pass a region pointer to the previous free. */
    PyMemAllocatorEx hooks = {d->prev->ctx, d->prev->malloc, d->prev->calloc, r, f};
    PyMem_SetAllocator(which, &hooks);
    FENCE();
    hooks.malloc = m;
    hooks.calloc = c;
    PyMem_SetAllocator(which, &hooks);
    FENCE();
}

/* ---- module functions ------------------------------------------------------ */

static PyObject *
core_install(PyObject *self, PyObject *args)
{
    unsigned long long base, size, committed, commit_step;
    int scope, on_exhausted, histogram;
    if (!PyArg_ParseTuple(args, "KKKKiip:install", &base, &size, &committed,
                          &commit_step, &scope, &on_exhausted, &histogram)) {
        return NULL;
    }
    if (region.installed) {
        PyErr_SetString(PyExc_RuntimeError, "bump_global is already installed");
        return NULL;
    }
    if (base == 0 || base % ALIGNMENT || size < GIL_CHUNK || size % ALIGNMENT ||
        committed > size || base + size < base ||
        (committed < size && (commit_step == 0 || commit_step % ALIGNMENT)) ||
        (scope != SCOPE_OBJECTS && scope != SCOPE_PYTHON && scope != SCOPE_RAW) ||
        (on_exhausted != ON_EXHAUSTED_FALLBACK && on_exhausted != ON_EXHAUSTED_ERROR)) {
        PyErr_SetString(PyExc_ValueError, "invalid region or configuration");
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    if (scope != SCOPE_RAW) {
        PyErr_SetString(PyExc_ValueError,
                        "only the RAW domain can be replaced on a free-threaded build");
        return NULL;
    }
#endif
#ifndef _WIN32
    if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        return NULL;
    }
#endif
    region.base = (uintptr_t)base;
    region.size = (uintptr_t)size;
    region.end = region.base + region.size;
    region.limit = region.end;
    if (on_exhausted == ON_EXHAUSTED_ERROR) {
        uintptr_t reserve = ROUND_UP(region.size / 16, ALIGNMENT);
        region.limit -= reserve < EMERGENCY_RESERVE ? reserve : EMERGENCY_RESERVE;
    }
    region.cursor = region.base;
    region.committed = region.base + (uintptr_t)committed;
    region.commit_step = (uintptr_t)(commit_step ? commit_step : size);
    region.scope = scope;
    region.on_exhausted = on_exhausted;
    region.histogram = histogram;
    region.installed = 1;
    FENCE();
#define INSTALL(DOMAIN, name)                                                  \
    if (histogram) {                                                           \
        install_domain(DOMAIN, &name##_dom, name##_malloc_h, name##_calloc_h,   \
                       name##_realloc_h, name##_free);                          \
    }                                                                          \
    else {                                                                     \
        install_domain(DOMAIN, &name##_dom, name##_malloc, name##_calloc,       \
                       name##_realloc, name##_free);                            \
    }
    if (scope == SCOPE_PYTHON || scope == SCOPE_RAW) {
        INSTALL(PYMEM_DOMAIN_RAW, raw)
    }
    if (scope == SCOPE_PYTHON) {
        INSTALL(PYMEM_DOMAIN_MEM, mem)
    }
    if (scope == SCOPE_PYTHON || scope == SCOPE_OBJECTS) {
        INSTALL(PYMEM_DOMAIN_OBJ, obj)
    }
#undef INSTALL
    Py_RETURN_NONE;
}

static PyObject *
core_config(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(KKiiO)", (unsigned long long)region.base,
                         (unsigned long long)region.size, region.scope,
                         region.on_exhausted, region.histogram ? Py_True : Py_False);
}

static void
add_counters(counters_t *sum, const counters_t *c)
{
    sum->allocations += c->allocations;
    sum->frees_ignored += c->frees_ignored;
    sum->foreign_frees += c->foreign_frees;
    sum->foreign_reallocs += c->foreign_reallocs;
    sum->reallocs_in_place += c->reallocs_in_place;
    sum->reallocs_moved += c->reallocs_moved;
    sum->bytes_copied += c->bytes_copied;
    sum->fallback_allocations += c->fallback_allocations;
    sum->fallback_bytes += c->fallback_bytes;
    sum->failed_allocations += c->failed_allocations;
}

/* Bytes handed out: what the arenas took from the region, less the unused
 * tails of their chunks.  Optionally adds up the counters.  The GIL (held by
 * the caller) guards the GIL arena; raw_lock the RAW arena. */
static uint64_t
region_used(uintptr_t *cursor, counters_t *sum)
{
    uint64_t unused_bytes = gil_arena.waste + (gil_arena.end - gil_arena.top);
    LOCK(raw_lock);
    unused_bytes += raw_arena.waste + (raw_arena.end - raw_arena.top);
    *cursor = ATOMIC_LOAD(&region.cursor);
    if (sum != NULL) {
        add_counters(sum, &gil_arena.c);
        add_counters(sum, &raw_arena.c);
    }
    UNLOCK(raw_lock);
    return (uint64_t)(*cursor - region.base) - unused_bytes;
}

static PyObject *
core_stats(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    counters_t sum = {0};
    uintptr_t cursor;
    uint64_t used = region_used(&cursor, &sum);
    return Py_BuildValue(
        "(KKKKKKKKKKKKKKK)", (unsigned long long)region.base,
        (unsigned long long)region.size, (unsigned long long)used,
        (unsigned long long)(cursor - region.base),
        (unsigned long long)(ATOMIC_LOAD(&region.committed) - region.base),
        (unsigned long long)sum.allocations, (unsigned long long)sum.frees_ignored,
        (unsigned long long)sum.foreign_frees, (unsigned long long)sum.foreign_reallocs,
        (unsigned long long)sum.reallocs_in_place, (unsigned long long)sum.reallocs_moved,
        (unsigned long long)sum.bytes_copied, (unsigned long long)sum.fallback_allocations,
        (unsigned long long)sum.fallback_bytes, (unsigned long long)sum.failed_allocations);
}

/* Resident bytes of [addr, addr + length): mincore() where the OS has it,
 * None elsewhere.  Its vector is on the stack: no allocation, no shared state. */
static PyObject *
resident_bytes(uintptr_t addr, uintptr_t length)
{
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__)
    unsigned char vec[4096];
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    uintptr_t stop = (uintptr_t)(addr + length);
    uint64_t pages = 0;
    while (start < stop) {
        uintptr_t span = (uintptr_t)page * sizeof(vec);
        if (span > stop - start) {
            span = stop - start;
        }
        if (mincore((void *)start, (size_t)span, (void *)vec) != 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        size_t count = (size_t)((span + (uintptr_t)page - 1) / (uintptr_t)page);
        for (size_t i = 0; i < count; i++) {
            pages += vec[i] & 1;
        }
        start += span;
    }
    return PyLong_FromUnsignedLongLong(pages * (uint64_t)page);
#else
    (void)addr;
    (void)length;
    Py_RETURN_NONE;
#endif
}

static PyObject *
core_resident(PyObject *self, PyObject *args)
{
    unsigned long long addr, length;
    if (!PyArg_ParseTuple(args, "KK:resident", &addr, &length)) {
        return NULL;
    }
    return resident_bytes((uintptr_t)addr, (uintptr_t)length);
}

/* (used, resident) in one call and one small tuple: for samplers. */
static PyObject *
core_sample(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        return Py_BuildValue("(iO)", 0, Py_None);
    }
    uintptr_t cursor;
    uint64_t used = region_used(&cursor, NULL);
    PyObject *resident = resident_bytes(region.base, cursor - region.base);
    if (resident == NULL) {
        return NULL;
    }
    return Py_BuildValue("(KN)", (unsigned long long)used, resident);
}

/* ((upper_bound, count, bytes), ...) for the non-empty size classes, or None
 * when the histogram is off. */
static PyObject *
core_histogram(PyObject *self, PyObject *unused)
{
    if (!region.installed || !region.histogram) {
        Py_RETURN_NONE;
    }
    PyObject *rows = PyList_New(0);
    if (rows == NULL) {
        return NULL;
    }
    for (int k = 0; k < HIST_CLASSES; k++) {
        uint64_t count = gil_hist.count[k] + ATOMIC_LOAD(&raw_hist.count[k]);
        uint64_t bytes = gil_hist.bytes[k] + ATOMIC_LOAD(&raw_hist.bytes[k]);
        if (count == 0) {
            continue;
        }
        PyObject *row = Py_BuildValue("(KKK)", 1ULL << k, (unsigned long long)count,
                                      (unsigned long long)bytes);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    PyObject *result = PyList_AsTuple(rows);
    Py_DECREF(rows);
    return result;
}

/* A test probe: malloc, optionally one more block, then realloc, with nothing
 * allocated in between (ctypes would allocate Python ints between calls).
 * Goes through CPython's public API, so it exercises whatever is installed. */
static PyObject *
core_probe_realloc(PyObject *self, PyObject *args)
{
    int domain, interleave;
    Py_ssize_t first, new_size;
    if (!PyArg_ParseTuple(args, "innp:probe_realloc", &domain, &first, &new_size,
                          &interleave)) {
        return NULL;
    }
    if (domain < 0 || domain > 2 || first < 0 || new_size < 0) {
        PyErr_SetString(PyExc_ValueError, "domain must be 0 (RAW), 1 (MEM) or 2 (OBJ)");
        return NULL;
    }
    static void *(*const mallocs[])(size_t) = {PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc};
    static void *(*const reallocs[])(void *, size_t) = {PyMem_RawRealloc, PyMem_Realloc,
                                                        PyObject_Realloc};
    unsigned char *p = mallocs[domain]((size_t)first);
    if (p == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < first; i++) {
        p[i] = (unsigned char)(i * 7 + 3);
    }
    if (interleave && mallocs[domain](16) == NULL) {
        return PyErr_NoMemory();
    }
    unsigned char *q = reallocs[domain](p, (size_t)new_size);
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    int ok = 1;
    for (Py_ssize_t i = 0; i < (first < new_size ? first : new_size); i++) {
        ok &= q[i] == (unsigned char)(i * 7 + 3);
    }
    return Py_BuildValue("(KKO)", (unsigned long long)(uintptr_t)p,
                         (unsigned long long)(uintptr_t)q, ok ? Py_True : Py_False);
}

static PyMethodDef core_methods[] = {
    {"probe_realloc", core_probe_realloc, METH_VARARGS,
     "probe_realloc(domain, size, new_size, interleave) -> (p, q, contents_kept)\n"
     "Test probe: malloc(size), [malloc(16)], realloc(p, new_size) in one C call."},
    {"install", core_install, METH_VARARGS,
     "install(base, size, committed, commit_step, scope, on_exhausted, histogram)\n"
     "Install the hooks over a reserved region (see bump_global.install)."},
    {"config", core_config, METH_NOARGS,
     "config() -> (base, size, scope, on_exhausted, histogram) or None if not installed."},
    {"stats", core_stats, METH_NOARGS,
     "stats() -> tuple of counters (see bump_global.stats) or None."},
    {"sample", core_sample, METH_NOARGS,
     "sample() -> (used, resident): bytes handed out and resident bytes of the region."},
    {"histogram", core_histogram, METH_NOARGS,
     "histogram() -> ((upper_bound, count, bytes), ...) or None if off."},
    {"resident", core_resident, METH_VARARGS,
     "resident(addr, length) -> resident bytes of the range, or None if unknown."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "bump_global._core",
    "The allocator hooks of bump_global (use the bump_global package).",
    -1, core_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__core(void)
{
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "ALIGNMENT", (long)ALIGNMENT) < 0 ||
        PyModule_AddIntConstant(m, "MIN_SIZE", (long)GIL_CHUNK) < 0 ||
#ifdef Py_GIL_DISABLED
        PyModule_AddIntConstant(m, "FREE_THREADED", 1) < 0
#else
        PyModule_AddIntConstant(m, "FREE_THREADED", 0) < 0
#endif
    ) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
