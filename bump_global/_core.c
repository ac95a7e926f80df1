/*
 * bump_global/_core.c -- the hot path of bump_global: CPython allocator hooks
 * that serve every allocation by bumping a pointer through one large region.
 *
 * Design
 * ======
 *
 * The region.  Python reserves one virtual region once per process
 * (bump_global/_region.py) and hands it to install() below.  It is never
 * unmapped: install() holds a buffer export on the mmap object that maps it
 * for the life of the process, so neither close() nor interpreter shutdown
 * can tear it down.  It spans 2 * size + EMERGENCY_RESERVE bytes of address
 * space, two areas: the small area [base, end) and the large area
 * [end, large_end), each able to hold the whole budget (the small one also the
 * emergency reserve); together they hand out at most `size` bytes (the
 * `charged` counter, moved by atomics in cold paths only).  Where the platform
 * needs it (Windows, or Linux in strict overcommit mode) each area is committed
 * in steps of `commit_step` by the cold path (commit_upto).  Memory that has
 * never been handed out is zero (fresh anonymous pages).
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
 * arena the small area is one contiguous run.  When the other arena took the next
 * chunk meanwhile, the rest of the current chunk is abandoned (counted as
 * waste) and a new chunk starts at the cursor.  Because every byte below the
 * cursor belongs to some chunk and is committed before the cursor moves past
 * it, [base, cursor) is always safe to read.
 *
 * The large area.  MEM/OBJ blocks of LARGE_MIN bytes and more are bumped there
 * (under the GIL), each after a 16-byte header holding its size.  The blocks
 * that grow (list items, bytearrays, strings being built) are then usually the
 * most recent block of their area and grow in place, instead of being copied
 * over and over past the small objects created meanwhile.  When a large block
 * does move, exactly its bytes are copied and its whole pages are given back
 * to the OS (MADV_DONTNEED): it is garbage, and its addresses are never handed
 * out again, so this is no reuse.
 *
 * Alignment.  Every block is a multiple of 16 bytes and starts 16-aligned (the
 * region base is page aligned), as pymalloc gives on 64-bit builds.
 * malloc(0) takes a 16-byte block, so it is unique and non-NULL.
 *
 * Free.  A pointer inside the region: nothing to do (counted), except that a
 * large block's whole pages go back to the OS (MADV_DONTNEED, as for a moved
 * one): its addresses are never handed out again, but a program that frees
 * its big buffers does not keep them resident.  NULL: nothing.  Anything else
 * predates the install (or came from a fallback) and goes to the free of the
 * allocator that was installed before us, saved per domain.
 *
 * Realloc.  NULL is malloc.  A pointer outside the region goes to the saved
 * previous realloc.  The most recent block of the calling domain's arena (or
 * of the large area) grows or shrinks in place (extending the chunk when it
 * ends at the cursor).  Any other block moves.  Small blocks keep no header, so
 * their old size is unknown and we copy min(new size, cursor - p, q - p)
 * bytes: everything the old block can hold, never a byte outside the used part
 * of the region, never a byte of the new block q itself.  The tail we copy may be other blocks' bytes (the caller ignores
 * them); reading them is a benign race with RAW threads writing their own
 * blocks.  If the new block cannot be had, NULL is returned and the old block
 * stays valid (we never free it).
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
 * build the traceback; so under "error" the first failure for lack of room
 * releases an emergency reserve of EMERGENCY_RESERVE bytes beyond `size` (room
 * the small area keeps for it) for the unwinding that follows.
 *
 * Reclaim (opt-in, MEM/OBJ only; RAW never reclaims).  The default, "none",
 * is the mission: free gives nothing back.  Two other policies trade that for
 * speed and memory on programs that churn, each a separate set of hooks, so
 * the default hot path pays nothing for them:
 *   - "last" (bumpalo's rule): freeing the most recent block of the GIL arena
 *     or of the large area moves the top back to it.  One level: afterwards
 *     the arena knows no "last" block until the next allocation.
 *   - "classes" (the slab pattern, as pymalloc's pools): requests up to
 *     CLASS_MAX bytes are rounded to one of NCLASSES - 1 size classes; each
 *     class bumps through pages of CLASS_PAGE bytes that hold only its blocks
 *     and keeps a free list threaded through its free blocks' first word.  A
 *     block's class comes from its address: class_map has one byte per
 *     CLASS_PAGE of the small area (0: not a class page), so there are no
 *     headers.  A freed large block is rolled back if it is the last, else
 *     its whole pages go back to the OS (addresses are still never reused).
 *     Class pages come fresh from the cursor, so a bumped class block is zero;
 *     calloc clears only blocks taken from a free list.
 * Reclaimed blocks count in frees_reclaimed/bytes_reclaimed, and those served
 * again from a free list in allocations_reused (each class counts its own
 * pushes and pops, on its own cache line; stats() sums them); `used` leaves
 * them out.
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
#  define ATOMIC_SUB(p, v) ((void)__atomic_fetch_sub((p), (v), __ATOMIC_RELAXED))
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
#  define ATOMIC_SUB(p, v) ((void)InterlockedExchangeAdd64((volatile LONG64 *)(p), -(LONG64)(v)))
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
#define EMERGENCY_RESERVE ((uintptr_t)4 << 20)  /* beyond `size`, policy "error" */
#define LARGE_MIN ((size_t)64 << 10)  /* MEM/OBJ blocks this large go to the large area */
#define LARGE_HEADER ALIGNMENT        /* a large block's size is kept just before it */

/* Must match bump_global/_config.py. */
enum { SCOPE_OBJECTS = 1, SCOPE_PYTHON = 2, SCOPE_RAW = 3 };
enum { ON_EXHAUSTED_FALLBACK = 1, ON_EXHAUSTED_ERROR = 2 };
enum { RECLAIM_NONE = 0, RECLAIM_LAST = 1, RECLAIM_CLASSES = 2 };

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
    uint64_t large_allocations;  /* blocks placed in the large area */
    uint64_t bytes_released;     /* pages of moved large blocks given back to the OS */
    uint64_t bytes_prefaulted;   /* faulted in ahead of the bump by the prefault thread */
    uint64_t frees_reclaimed;    /* reclaim != none: frees that gave their block back */
    uint64_t bytes_reclaimed;
    uint64_t allocations_reused; /* reclaim == classes: served from a free list */
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
    uintptr_t size;         /* the budget: bytes the two areas may take together */
    uintptr_t end;          /* end of the small area, base + size */
    uintptr_t large_end;    /* end of the large area [end, large_end): end + size */
    uintptr_t budget;       /* atomic: `charged` stops here (size, or size - reserve) */
    uintptr_t charged;      /* atomic: bytes both areas took from the budget */
    uintptr_t cursor;       /* atomic: [base, cursor) is handed to small arenas */
    uintptr_t committed;    /* atomic: [base, committed) is readable/writable */
    uintptr_t large_committed;  /* atomic: [end, large_committed) likewise */
    uintptr_t commit_step;  /* granule of commits when not all was committed */
    uintptr_t page;         /* OS page size */
    int scope;
    int on_exhausted;
    int histogram;
    int huge_pages;         /* MADV_HUGEPAGE once PREFAULT_START bytes were taken */
    int huge_applied;       /* atomic */
    int gc_policy;          /* kept for config(); applied by Python */
    int reclaim;            /* RECLAIM_*: chooses the MEM/OBJ hooks at install */
    int installed;
} region;

static arena_t gil_arena;
static arena_t raw_arena;

/* The large area serves MEM/OBJ blocks of LARGE_MIN bytes and more: growing
 * buffers (list items, bytearrays, big strings) are usually the most recent
 * block there, so they grow in place.  Each block has a LARGE_HEADER holding
 * its size, cheap at these sizes: a moved block copies exactly its bytes and
 * its whole pages go back to the OS.  Guarded by the GIL, like gil_arena. */
static struct {
    uintptr_t top;    /* next free byte */
    uintptr_t last;   /* the most recent block (after its header), 0 if none */
    uintptr_t dirty;  /* bytes at or above max(top, dirty) were never handed out */
} large;
static PyMemAllocatorEx raw_prev, mem_prev, obj_prev;
static const domain_t raw_dom = {&raw_arena, 1, &raw_prev};
static const domain_t mem_dom = {&gil_arena, 0, &mem_prev};
static const domain_t obj_dom = {&gil_arena, 0, &obj_prev};

/* ---- locks ------------------------------------------------------------- */

/* Prefaulting.  On a machine where a page fault costs microseconds, a bump
 * allocator that never reuses memory pays one per 4 KiB handed out.  With
 * `prefault`, a helper thread faults pages in ahead of each area's top
 * (MADV_POPULATE_WRITE, or an atomic no-op write per page where the kernel
 * lacks it, which is safe even if the main thread writes the same bytes), on
 * the other core, off the critical path.  It starts only once PREFAULT_START
 * bytes were taken, so small programs pay nothing, and it stays at most
 * `ahead` bytes (1/16 of what was taken, 2 to 8 MiB) in front of the top.
 * Cold paths ask it for more (prefault_ask); it never writes data.  With
 * `huge_pages`, the same first ask also madvises the whole region
 * MADV_HUGEPAGE (transparent huge pages in "madvise" mode): a fault then maps
 * 2 MiB, and RSS grows in 2 MiB steps, which only a program past
 * PREFAULT_START can afford. */
#define PREFAULT_START ((uintptr_t)32 << 20)
#define PREFAULT_STEP ((uintptr_t)2 << 20)
/* The window ahead: taken / 16, 2 to 8 MiB.  It only needs to cover the time
 * the thread takes to wake up and populate a step: a wider one bought no
 * speed and cost up to twice its size in peak RSS (one window per area):
 * 64 MiB windows put the tuples workload at 797 MiB peak, 8 MiB at 685, for
 * pymalloc's 663, at the same wall time (docs/benchmarks.md, "Prefault
 * window": 7 paired rounds against a build with the old window). */
#define PREFAULT_AHEAD_DIV 16
#define PREFAULT_AHEAD_MIN ((uintptr_t)2 << 20)
#define PREFAULT_AHEAD_MAX ((uintptr_t)8 << 20)
#if defined(__linux__)
#  define HAVE_PREFAULT 1
#  ifndef MADV_POPULATE_WRITE
#    define MADV_POPULATE_WRITE 23
#  endif
typedef struct {
    uintptr_t want;   /* atomic: fault in up to here */
    uintptr_t floor;  /* atomic: never below here (the top when asked) */
    uintptr_t done;   /* atomic: faulted in up to here; written by the thread */
} prefault_range_t;
static struct {
    int enabled;
    int running;        /* the thread exists in this process */
    int stop;           /* atomic: asks the thread to exit (before os.fork) */
    int use_madvise;    /* MADV_POPULATE_WRITE works */
    prefault_range_t area[2];  /* 0: small area, 1: large area */
    uint64_t bytes;     /* atomic */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} prefault = {0, 0, 0, 1, {{0, 0, 0}, {0, 0, 0}}, 0, 0, PTHREAD_MUTEX_INITIALIZER,
              PTHREAD_COND_INITIALIZER};
#endif

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
static void
atfork_prepare(void)
{
    LOCK(raw_lock);
    LOCK(commit_lock);
#  ifdef HAVE_PREFAULT
    LOCK(prefault.lock);
#  endif
}
static void
atfork_parent(void)
{
#  ifdef HAVE_PREFAULT
    UNLOCK(prefault.lock);
#  endif
    UNLOCK(commit_lock);
    UNLOCK(raw_lock);
}
static void
atfork_child(void)
{
#  ifdef HAVE_PREFAULT
    /* The thread did not follow; the next ask restarts it.  It may have been
     * inside pthread_cond_wait at the fork, leaving the condition variable's
     * internal state mid-way: make both anew rather than trust the copy. */
    prefault.running = 0;
    pthread_mutex_init(&prefault.lock, NULL);
    pthread_cond_init(&prefault.wake, NULL);
#  endif
    UNLOCK(commit_lock);
    UNLOCK(raw_lock);
}
#endif

/* ---- region: cold paths -------------------------------------------------- */

/* In either area (the whole reservation). */
ALWAYS_INLINE int
in_region(const void *p)
{
    return (uintptr_t)p - region.base < region.large_end - region.base;
}

ALWAYS_INLINE int
in_large_area(uintptr_t p)
{
    return p - region.end < region.large_end - region.end;
}

/* Take n bytes from the budget the two areas share.  0 if it has not enough. */
static int
charge(uintptr_t n)
{
    uintptr_t have = ATOMIC_LOAD(&region.charged);
    for (;;) {
        uintptr_t budget = ATOMIC_LOAD(&region.budget);
        if (n > budget || have > budget - n) {
            return 0;
        }
        if (ATOMIC_CAS(&region.charged, have, have + n)) {
            return 1;
        }
    }
}

/* Make [area_base, upto) readable and writable, where *committed is the
 * area's committed end.  Returns 0 if the OS refuses. */
static int
commit_upto(uintptr_t *committed, uintptr_t area_base, uintptr_t area_end, uintptr_t upto)
{
    if (likely(upto <= ATOMIC_LOAD(committed))) {
        return 1;
    }
    int ok = 1;
    LOCK(commit_lock);
    uintptr_t have = *committed;
    if (upto > have) {
        uintptr_t want = area_base + ROUND_UP(upto - area_base, region.commit_step);
        if (want > area_end) {
            want = area_end;
        }
#ifdef _WIN32
        ok = VirtualAlloc((LPVOID)have, (SIZE_T)(want - have), MEM_COMMIT,
                          PAGE_READWRITE) != NULL;
#else
        ok = mprotect((void *)have, (size_t)(want - have),
                      PROT_READ | PROT_WRITE) == 0;
#endif
        if (ok) {
            ATOMIC_STORE(committed, want);
        }
    }
    UNLOCK(commit_lock);
    return ok;
}

#ifdef HAVE_PREFAULT
static void
prefault_range(uintptr_t lo, uintptr_t hi)
{
    lo &= ~(region.page - 1);
    hi = ROUND_UP(hi, region.page);
    if (prefault.use_madvise && madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0) {
        ATOMIC_ADD(&prefault.bytes, hi - lo);
        return;
    }
    prefault.use_madvise = 0;  /* before Linux 5.14: touch instead */
    for (uintptr_t p = lo; p < hi; p += region.page) {
        __atomic_fetch_or((char *)p, 0, __ATOMIC_RELAXED);
    }
    ATOMIC_ADD(&prefault.bytes, hi - lo);
}

static void *
prefault_main(void *unused)
{
    (void)unused;
    while (!ATOMIC_LOAD(&prefault.stop)) {
        int worked = 0;
        for (int i = 0; i < 2; i++) {
            prefault_range_t *r = &prefault.area[i];
            uintptr_t from = ATOMIC_LOAD(&r->done);
            uintptr_t floor = ATOMIC_LOAD(&r->floor);
            uintptr_t want = ATOMIC_LOAD(&r->want);
            from = from > floor ? from : floor;
            if (from >= want) {
                ATOMIC_STORE(&r->done, from);  /* nothing left below `want` */
            }
            else {
                uintptr_t stop = want - from > PREFAULT_STEP ? from + PREFAULT_STEP : want;
                prefault_range(from, stop);
                ATOMIC_STORE(&r->done, stop);
                worked = 1;
            }
        }
        if (!worked) {
            LOCK(prefault.lock);
            while (!ATOMIC_LOAD(&prefault.stop) &&
                   ATOMIC_LOAD(&prefault.area[0].done) >= ATOMIC_LOAD(&prefault.area[0].want) &&
                   ATOMIC_LOAD(&prefault.area[1].done) >= ATOMIC_LOAD(&prefault.area[1].want)) {
                pthread_cond_wait(&prefault.wake, &prefault.lock);
            }
            UNLOCK(prefault.lock);
        }
    }
    return NULL;
}
#endif

/* Ask the prefault thread to fault area `which` in ahead of `top`.  Cold
 * paths only: called once per chunk (1 MiB) or large block. */
static void
prefault_ask(int which, uintptr_t top)
{
#ifdef HAVE_PREFAULT
    uintptr_t taken = ATOMIC_LOAD(&region.charged);
    if (taken < PREFAULT_START) {
        return;
    }
#  ifdef MADV_HUGEPAGE
    /* Huge pages: 2 MiB per fault instead of 4 KiB, once the program is big
     * enough that the coarser steps of its RSS do not matter. */
    int off = 0;
    if (region.huge_pages && ATOMIC_CAS(&region.huge_applied, off, 1)) {
        madvise((void *)region.base, region.large_end - region.base, MADV_HUGEPAGE);
    }
#  endif
    if (!prefault.enabled) {
        return;
    }
    uintptr_t ahead = taken / PREFAULT_AHEAD_DIV;
    ahead = ahead < PREFAULT_AHEAD_MIN ? PREFAULT_AHEAD_MIN
          : ahead > PREFAULT_AHEAD_MAX ? PREFAULT_AHEAD_MAX : ahead;
    uintptr_t limit = ATOMIC_LOAD(which ? &region.large_committed : &region.committed);
    uintptr_t want = top + ahead < limit ? top + ahead : limit;
    prefault_range_t *r = &prefault.area[which];
    /* Both arenas ask for the small area: keep the highest top and want. */
    uintptr_t seen = ATOMIC_LOAD(&r->floor);
    while (seen < top && !ATOMIC_CAS(&r->floor, seen, top)) {
    }
    seen = ATOMIC_LOAD(&r->want);
    while (seen < want && !ATOMIC_CAS(&r->want, seen, want)) {
    }
    if (ATOMIC_LOAD(&r->done) >= want) {
        return;
    }
    LOCK(prefault.lock);
    if (!prefault.running) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 << 10);
        ATOMIC_STORE(&prefault.stop, 0);
        prefault.running = pthread_create(&prefault.thread, &attr, prefault_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!prefault.running) {
            prefault.enabled = 0;  /* no thread, no prefaulting: nothing breaks */
        }
    }
    pthread_cond_signal(&prefault.wake);
    UNLOCK(prefault.lock);
#else
    (void)which;
    (void)top;
#endif
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
        if (need > region.end - start) {
            return 0;
        }
        uintptr_t new_end = start + ROUND_UP(need, granule);
        if (new_end > region.end || new_end < start) {
            new_end = region.end;
        }
        /* Bytes newly taken: [cur, new_end) (when contiguous, a->end == cur).
         * Near the end of the budget, take only what `need` asks for. */
        if (!charge(new_end - cur)) {
            new_end = start + need;
            if (!charge(new_end - cur)) {
                return 0;
            }
        }
        uintptr_t grabbed = new_end - cur;
        if (!commit_upto(&region.committed, region.base, region.end, new_end)) {
            ATOMIC_SUB(&region.charged, grabbed);
            return 0;
        }
        if (ATOMIC_CAS(&region.cursor, cur, new_end)) {
            if (!contiguous) {
                a->waste += a->end - a->top;
                a->top = start;
                a->last = 0;  /* the previous block cannot grow into this chunk */
            }
            a->end = new_end;
            prefault_ask(0, a->top);
            return 1;
        }
        ATOMIC_SUB(&region.charged, grabbed);
        /* `cur` now holds the cursor another arena moved; try again. */
    }
}

/* ---- the bump ------------------------------------------------------------ */

/* The fast path.  One comparison rejects a zero size, a size that overflows
 * the rounding, and a block that does not fit: all go to the cold path, as
 * do the large blocks of the GIL arena (a second, well-predicted test). */
ALWAYS_INLINE void *
arena_bump(arena_t *a, size_t n)
{
    size_t sz = (n + (ALIGNMENT - 1)) & ~(ALIGNMENT - 1);
    uintptr_t top = a->top;
    if (likely(sz - 1 < a->end - top) && (a == &raw_arena || likely(sz < LARGE_MIN))) {
        a->top = top + sz;
        a->last = top;
        a->c.allocations++;
        return (void *)top;
    }
    return NULL;
}

/* ---- the large area (GIL domains only) ------------------------------------ */

ALWAYS_INLINE size_t
large_size(uintptr_t p)
{
    return *(size_t *)(p - LARGE_HEADER);
}

static void *
large_alloc(arena_t *a, size_t n)
{
    size_t sz = ROUND_UP(n, ALIGNMENT) + LARGE_HEADER;
    uintptr_t h = large.top;
    if (sz > region.large_end - h || !charge(sz)) {
        return NULL;
    }
    if (!commit_upto(&region.large_committed, region.end, region.large_end, h + sz)) {
        ATOMIC_SUB(&region.charged, sz);
        return NULL;
    }
    *(size_t *)h = sz - LARGE_HEADER;
    large.top = h + sz;
    large.last = h + LARGE_HEADER;
    prefault_ask(1, large.top);
    a->c.allocations++;
    a->c.large_allocations++;
    return (void *)large.last;
}

/* Resize the most recent large block where it stands.  0 if it cannot. */
static int
large_resize_last(arena_t *a, uintptr_t p, size_t n)
{
    size_t new_sz = n == 0 ? ALIGNMENT : ROUND_UP(n, ALIGNMENT);
    size_t old_sz = large_size(p);
    if (new_sz > old_sz) {
        size_t grow = new_sz - old_sz;
        if (grow > region.large_end - large.top || !charge(grow)) {
            return 0;
        }
        if (!commit_upto(&region.large_committed, region.end, region.large_end, p + new_sz)) {
            ATOMIC_SUB(&region.charged, grow);
            return 0;
        }
    }
    else if (new_sz < old_sz) {
        ATOMIC_SUB(&region.charged, old_sz - new_sz);
        if (large.top > large.dirty) {
            large.dirty = large.top;  /* the bytes we give back were handed out */
        }
    }
    *(size_t *)(p - LARGE_HEADER) = new_sz;
    large.top = p + new_sz;
    if (new_sz > old_sz) {
        prefault_ask(1, large.top);
    }
    a->c.reallocs_in_place++;
    return 1;
}

/* A large block that moved is garbage: give its whole pages back to the OS.
 * The addresses are never handed out again. */
static void
release_block(arena_t *a, uintptr_t p, size_t size)
{
#if defined(MADV_DONTNEED) && !defined(_WIN32)
    uintptr_t lo = ROUND_UP(p, region.page);
    uintptr_t hi = (p + size) & ~(region.page - 1);
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) {
        a->c.bytes_released += hi - lo;
    }
#else
    (void)a;
    (void)p;
    (void)size;
#endif
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
    if (a == &gil_arena && sz >= LARGE_MIN) {
        return large_alloc(a, n);
    }
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
    if (region.on_exhausted == ON_EXHAUSTED_ERROR && n <= EMERGENCY_RESERVE &&
        ATOMIC_LOAD(&region.budget) == region.size) {
        /* The region is full (not merely too small for a huge request):
         * release the emergency reserve for the unwinding that follows. */
        ATOMIC_STORE(&region.budget, region.size + EMERGENCY_RESERVE);
    }
    return NULL;
}

/* ---- the hooks, generic over the domain ----------------------------------- */

#define ARENA_LOCK(d) do { if ((d)->is_raw) LOCK(raw_lock); } while (0)
#define ARENA_UNLOCK(d) do { if ((d)->is_raw) UNLOCK(raw_lock); } while (0)

/* The cold half of malloc: a new chunk, a large block, or exhaustion. */
static NOINLINE void *
malloc_cold(const domain_t *d, size_t n)
{
    arena_t *a = d->arena;
    ARENA_LOCK(d);
    void *p = arena_bump_cold(a, n);
    ARENA_UNLOCK(d);
    return likely(p != NULL) ? p : exhausted(d, n, 1, 0);
}

ALWAYS_INLINE void *
hook_malloc(const domain_t *d, size_t n)
{
    arena_t *a = d->arena;
    if (!d->is_raw) {
        /* The GIL fast path: a miss tail-calls the cold half, so the hit
         * saves no register and tests no NULL. */
        size_t sz = (n + (ALIGNMENT - 1)) & ~(ALIGNMENT - 1);
        uintptr_t top = a->top;
        if (likely(sz - 1 < a->end - top && sz < LARGE_MIN)) {
            a->top = top + sz;
            a->last = top;
            a->c.allocations++;
            return (void *)top;
        }
        return malloc_cold(d, n);
    }
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
    uintptr_t dirty = a->dirty;
    if (!d->is_raw && unlikely(in_large_area((uintptr_t)p))) {
        dirty = large.dirty;
    }
    if (p != NULL && unlikely((uintptr_t)p < dirty)) {
        to_clear = dirty - (uintptr_t)p;
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

/* A pointer outside the region: NULL, or the previous allocator's. */
static NOINLINE void
free_foreign(const domain_t *d, void *p)
{
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

static void large_rollback(arena_t *a, uintptr_t p);

/* A large block freed (GIL domains): its whole pages go back to the OS, its
 * addresses are never handed out again.  Under a reclaim policy the most
 * recent large block is rolled back instead. */
static NOINLINE void
free_large(arena_t *a, uintptr_t p)
{
    if (region.reclaim != RECLAIM_NONE && p == large.last) {
        large_rollback(a, p);
        return;
    }
    release_block(a, p, large_size(p));
    a->c.frees_ignored++;
}

ALWAYS_INLINE void
hook_free(const domain_t *d, void *p)
{
    if (likely(in_region(p))) {
        if (d->is_raw) {
            ATOMIC_ADD(&d->arena->c.frees_ignored, 1);
        }
        else if (unlikely(in_large_area((uintptr_t)p))) {
            free_large(d->arena, (uintptr_t)p);
        }
        else {
            d->arena->c.frees_ignored++;
        }
        return;
    }
    free_foreign(d, p);
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
    uintptr_t addr = (uintptr_t)p;
    int is_large = in_large_area(addr);
    size_t avail;
    if (is_large) {
        /* Only the GIL domains own the large area (RAW may meet its blocks
         * through a mismatched call, and then just moves them). */
        if (!d->is_raw && addr == large.last && large_resize_last(a, addr, n)) {
            return p;
        }
        avail = large_size(addr);
    }
    else {
        ARENA_LOCK(d);
        int done = addr == a->last &&
                   resize_last(a, addr, n, d->is_raw ? RAW_CHUNK : GIL_CHUNK);
        ARENA_UNLOCK(d);
        if (done) {
            return p;
        }
        /* We keep no size for small blocks, but [p, cursor) is committed and
         * readable: copy what the old block can hold. */
        avail = ATOMIC_LOAD(&region.cursor) - addr;
    }
    void *q = hook_malloc(d, n);
    if (q == NULL) {
        return NULL;  /* the old block stays valid */
    }
    /* The new block may lie just above the old one, inside [p, p + avail): the
     * old block ends below it (q was free), so stop there, and the two ranges
     * never overlap. */
    if ((uintptr_t)q > addr && (uintptr_t)q - addr < avail) {
        avail = (uintptr_t)q - addr;
    }
    size_t copy = n < avail ? n : avail;
    memcpy(q, p, copy);
    ARENA_LOCK(d);
    a->c.reallocs_moved++;
    a->c.bytes_copied += copy;
    ARENA_UNLOCK(d);
    if (is_large && !d->is_raw) {
        release_block(a, addr, avail);
    }
    return q;
}

/* ---- reclaim="last" (MEM/OBJ only) ---------------------------------------- */

/* Give back the most recent large block (the top moves back to its header). */
static NOINLINE void
large_rollback(arena_t *a, uintptr_t p)
{
    size_t sz = large_size(p) + LARGE_HEADER;
    if (large.top > large.dirty) {
        large.dirty = large.top;  /* calloc must clear what we hand out again */
    }
    large.top = p - LARGE_HEADER;
    large.last = 0;
    ATOMIC_SUB(&region.charged, sz);
    a->c.frees_reclaimed++;
    a->c.bytes_reclaimed += sz;
}

/* Under the GIL.  The arena's `last` is 0 once rolled back, so a second free
 * of the same pointer cannot roll back twice. */
ALWAYS_INLINE void
hook_free_last(const domain_t *d, void *p)
{
    arena_t *a = d->arena;
    uintptr_t addr = (uintptr_t)p;
    if (likely(in_region(p))) {
        if (addr == a->last) {
            if (a->top > a->dirty) {
                a->dirty = a->top;
            }
            a->c.frees_reclaimed++;
            a->c.bytes_reclaimed += a->top - addr;
            a->top = addr;
            a->last = 0;
        }
        else if (unlikely(in_large_area(addr))) {
            free_large(a, addr);
        }
        else {
            a->c.frees_ignored++;
        }
        return;
    }
    free_foreign(d, p);
}

/* ---- reclaim="classes" (MEM/OBJ only) ------------------------------------- */

#define CLASS_SHIFT 16
#define CLASS_PAGE ((uintptr_t)1 << CLASS_SHIFT)  /* a class page: 64 KiB, aligned */
#define CLASS_SMALL_MAX 512   /* classes 1..32: steps of 16 bytes (the fast case) */
#define CLASS_MAX 32768       /* classes 33..56: four per doubling, 640 to 32 KiB */
#define NCLASSES 57           /* class 0 means "not a class page" in class_map */

/* Per class, its counters live on its own line: a pop or a push touches one
 * cache line and adds one counter (stats() sums them). */
typedef struct {
    void *free;       /* free blocks, linked through their first word */
    uintptr_t top;    /* next block of the current page */
    uintptr_t end;    /* end of the current page */
    size_t size;      /* block size of the class */
    uint64_t pushes;  /* frees put on the free list */
    uint64_t pops;    /* allocations served from it; pushes - pops are on it */
} class_t;

static class_t classes[NCLASSES];
static unsigned char *class_map;  /* one byte per CLASS_PAGE of the small area */
static arena_t class_arena;       /* takes chunks from the cursor for class pages */

/* The class of a request of n <= CLASS_MAX bytes. */
ALWAYS_INLINE unsigned
class_of(size_t n)
{
    if (likely(n <= CLASS_SMALL_MAX)) {
        return n == 0 ? 1 : (unsigned)((n + (ALIGNMENT - 1)) >> 4);
    }
    unsigned octave = 63 - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    return 33 + (octave - 9) * 4 + (unsigned)(((n - 1) >> (octave - 2)) & 3);
}

static void
classes_init(void)
{
    for (unsigned k = 1; k < NCLASSES; k++) {
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

/* A block of class c: from its free list, else bumped from its page; NULL
 * when the page is used up.  *reused says which (calloc must clear a reused
 * block; where the caller ignores it, the compiler drops it). */
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
    if (likely(c->size <= c->end - top)) {
        c->top = top + c->size;
        gil_arena.c.allocations++;
        return (void *)top;
    }
    return NULL;
}

/* A block of n <= CLASS_MAX bytes, from a new page if need be. */
ALWAYS_INLINE void *
class_alloc(size_t n, int *reused)
{
    unsigned k = class_of(n);
    void *p = class_take(&classes[k], reused);
    return likely(p != NULL) ? p : class_new_page(k);
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

ALWAYS_INLINE void
class_push(unsigned k, void *p)
{
    class_t *c = &classes[k];
    *(void **)p = c->free;
    c->free = p;
    c->pushes++;
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

/* The fast case, as hook_malloc's: hits return, misses tail-call. */
ALWAYS_INLINE void *
hook_malloc_classes(const domain_t *d, size_t n)
{
    if (likely(n <= CLASS_SMALL_MAX)) {
        int reused;
        void *p = class_take(&classes[n == 0 ? 1 : (n + (ALIGNMENT - 1)) >> 4], &reused);
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
    if (elsize != 0 && nelem > SIZE_MAX / elsize) {
        return NULL;
    }
    n = nelem * elsize;
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
        return hook_realloc_cold(d, p, n);  /* general, large or foreign */
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

/* The MEM/OBJ hooks of the reclaim policies (see "Reclaim" at the top). */
#define DEFINE_RECLAIM_HOOKS(name, dom)                                        \
    static void name##_free_last(void *ctx, void *p)                           \
    { (void)ctx; hook_free_last(&dom, p); }                                    \
    static void *name##_malloc_classes(void *ctx, size_t n)                    \
    { (void)ctx; return hook_malloc_classes(&dom, n); }                        \
    static void *name##_calloc_classes(void *ctx, size_t nelem, size_t elsize) \
    { (void)ctx; return hook_calloc_classes(&dom, nelem, elsize); }            \
    static void *name##_realloc_classes(void *ctx, void *p, size_t n)          \
    { (void)ctx; return hook_realloc_classes(&dom, p, n); }                    \
    static void name##_free_classes(void *ctx, void *p)                        \
    { (void)ctx; hook_free_classes(&dom, p); }

DEFINE_HOOKS(raw, raw_dom)
DEFINE_HOOKS(mem, mem_dom)
DEFINE_HOOKS(obj, obj_dom)
DEFINE_RECLAIM_HOOKS(mem, mem_dom)
DEFINE_RECLAIM_HOOKS(obj, obj_dom)

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
    else if (reclaim == RECLAIM_CLASSES) {
        PyMemAllocatorEx mem = {NULL, mem_malloc_classes, mem_calloc_classes,
                                mem_realloc_classes, mem_free_classes};
        PyMemAllocatorEx obj = {NULL, obj_malloc_classes, obj_calloc_classes,
                                obj_realloc_classes, obj_free_classes};
        mem_inner = mem;
        obj_inner = obj;
    }
}

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
    { hist_record(is_raw, n); return name##_inner.malloc(ctx, n); }            \
    static void *name##_calloc_h(void *ctx, size_t nelem, size_t elsize)       \
    {                                                                          \
        size_t n = elsize && nelem > SIZE_MAX / elsize ? SIZE_MAX : nelem * elsize; \
        hist_record(is_raw, n);                                                \
        return name##_inner.calloc(ctx, nelem, elsize);                        \
    }                                                                          \
    static void *name##_realloc_h(void *ctx, void *p, size_t n)                \
    { hist_record(is_raw, n); return name##_inner.realloc(ctx, p, n); }

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

/* The mapping the region lives in (an mmap object on POSIX): we hold a buffer
 * export on it for the life of the process, so it can be neither closed nor
 * deallocated (not even at interpreter shutdown), and is never unmapped. */
static Py_buffer region_pin;

static PyObject *
core_buffer_address(PyObject *self, PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *address = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return address;
}

static PyObject *
core_install(PyObject *self, PyObject *args)
{
    PyObject *mapping;
    unsigned long long base, size, committed, commit_step;
    int scope, on_exhausted, histogram, prefault_on, huge_pages, gc_policy, reclaim;
    if (!PyArg_ParseTuple(args, "OKKKKiipppii:install", &mapping, &base, &size, &committed,
                          &commit_step, &scope, &on_exhausted, &histogram, &prefault_on,
                          &huge_pages, &gc_policy, &reclaim)) {
        return NULL;
    }
    if (region.installed) {
        PyErr_SetString(PyExc_RuntimeError, "bump_global is already installed");
        return NULL;
    }
    if (mapping != Py_None) {
        if (PyObject_GetBuffer(mapping, &region_pin, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        if ((uintptr_t)region_pin.buf != (uintptr_t)base ||
            (unsigned long long)region_pin.len < 2 * size + EMERGENCY_RESERVE) {
            PyBuffer_Release(&region_pin);
            PyErr_SetString(PyExc_ValueError, "the mapping does not hold the region");
            return NULL;
        }
    }
    /* The reservation: the small area (with the emergency reserve), then the
     * large area. */
    unsigned long long span = 2 * size + EMERGENCY_RESERVE;
    if (base == 0 || base % ALIGNMENT || size < GIL_CHUNK || size % ALIGNMENT ||
        committed > span || base + span < base ||
        (committed < span && (commit_step == 0 || commit_step % ALIGNMENT)) ||
        (scope != SCOPE_OBJECTS && scope != SCOPE_PYTHON && scope != SCOPE_RAW) ||
        (on_exhausted != ON_EXHAUSTED_FALLBACK && on_exhausted != ON_EXHAUSTED_ERROR) ||
        reclaim < RECLAIM_NONE || reclaim > RECLAIM_CLASSES) {
        PyErr_SetString(PyExc_ValueError, "invalid region or configuration");
        goto unpin;
    }
#ifdef Py_GIL_DISABLED
    if (scope != SCOPE_RAW) {
        PyErr_SetString(PyExc_ValueError,
                        "only the RAW domain can be replaced on a free-threaded build");
        goto unpin;
    }
#endif
    if (reclaim == RECLAIM_CLASSES && scope != SCOPE_RAW) {
        /* One byte per class page of the small area (size + reserve); calloc's
         * pages stay untouched (zero) until a class page lands in them. */
        class_map = calloc((size_t)((size + EMERGENCY_RESERVE) >> CLASS_SHIFT) + 1, 1);
        if (class_map == NULL) {
            PyErr_NoMemory();
            goto unpin;
        }
        classes_init();
    }
#ifndef _WIN32
    if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        goto unpin;
    }
#endif
    region.base = (uintptr_t)base;
    region.size = (uintptr_t)size;
    region.end = region.base + region.size + EMERGENCY_RESERVE;
    region.large_end = region.end + region.size;
    region.budget = region.size;
    region.charged = 0;
    region.cursor = region.base;
    if (committed == span) {
        region.committed = region.end;
        region.large_committed = region.large_end;
    }
    else {
        uintptr_t small = region.end - region.base;
        region.committed = region.base + (uintptr_t)(committed < small ? committed : small);
        region.large_committed = region.end;
    }
    region.commit_step = (uintptr_t)(commit_step ? commit_step : size);
#ifdef _WIN32
    {
        SYSTEM_INFO info;
        GetSystemInfo(&info);
        region.page = (uintptr_t)info.dwPageSize;
    }
#else
    region.page = (uintptr_t)sysconf(_SC_PAGESIZE);
#endif
    large.top = region.end;
#ifdef HAVE_PREFAULT
    prefault.enabled = prefault_on;
#else
    (void)prefault_on;
#endif
    region.scope = scope;
    region.on_exhausted = on_exhausted;
    region.histogram = histogram;
    region.huge_pages = huge_pages;
    region.gc_policy = gc_policy;
    region.reclaim = reclaim;
    region.installed = 1;
    FENCE();
#define INSTALL(DOMAIN, name)                                                  \
    if (histogram) {                                                           \
        install_domain(DOMAIN, &name##_dom, name##_malloc_h, name##_calloc_h,   \
                       name##_realloc_h, name##_inner.free);                    \
    }                                                                          \
    else {                                                                     \
        install_domain(DOMAIN, &name##_dom, name##_inner.malloc,                \
                       name##_inner.calloc, name##_inner.realloc,               \
                       name##_inner.free);                                      \
    }
    choose_hooks(reclaim);
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
unpin:
    if (mapping != Py_None) {
        PyBuffer_Release(&region_pin);
    }
    return NULL;
}

/* Stop the prefault thread and wait for it (it restarts when next needed).
 * bump_global registers this with os.register_at_fork(before=...): CPython
 * warns about fork() in a multi-threaded process, and ours would count. */
static PyObject *
core_prefault_stop(PyObject *self, PyObject *unused)
{
#ifdef HAVE_PREFAULT
    LOCK(prefault.lock);
    int running = prefault.running;
    if (running) {
        ATOMIC_STORE(&prefault.stop, 1);
        pthread_cond_signal(&prefault.wake);
    }
    UNLOCK(prefault.lock);
    if (running) {
        Py_BEGIN_ALLOW_THREADS
        pthread_join(prefault.thread, NULL);
        Py_END_ALLOW_THREADS
        LOCK(prefault.lock);
        prefault.running = 0;
        UNLOCK(prefault.lock);
    }
#endif
    Py_RETURN_NONE;
}

static PyObject *
core_config(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
#ifdef HAVE_PREFAULT
    int prefault_on = prefault.enabled;
#else
    int prefault_on = 0;
#endif
    return Py_BuildValue("(KKiiOOOii)", (unsigned long long)region.base,
                         (unsigned long long)region.size, region.scope,
                         region.on_exhausted, region.histogram ? Py_True : Py_False,
                         prefault_on ? Py_True : Py_False,
                         region.huge_pages ? Py_True : Py_False, region.gc_policy,
                         region.reclaim);
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
    sum->large_allocations += c->large_allocations;
    sum->bytes_released += c->bytes_released;
    sum->frees_reclaimed += c->frees_reclaimed;
    sum->bytes_reclaimed += c->bytes_reclaimed;
    sum->allocations_reused += c->allocations_reused;
}

/* Bytes handed out: what the small arenas took, less the unused tails of
 * their chunks, plus the large area (blocks and headers).  Sets *consumed to
 * all the bytes taken; optionally adds up the counters.  The GIL (held by the
 * caller) guards the GIL arena and the large area; raw_lock the RAW arena. */
static uint64_t
region_used(uint64_t *consumed, uintptr_t *cursor, counters_t *sum)
{
    uint64_t unused_bytes = gil_arena.waste + (gil_arena.end - gil_arena.top) +
                            classes_unused(sum);
    uint64_t large_bytes = large.top - region.end;
    LOCK(raw_lock);
    unused_bytes += raw_arena.waste + (raw_arena.end - raw_arena.top);
    *cursor = ATOMIC_LOAD(&region.cursor);
    if (sum != NULL) {
        add_counters(sum, &gil_arena.c);
        add_counters(sum, &raw_arena.c);
    }
    UNLOCK(raw_lock);
    *consumed = (uint64_t)(*cursor - region.base) + large_bytes;
    return *consumed - unused_bytes;
}

static PyObject *
core_stats(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    counters_t sum = {0};
    uintptr_t cursor;
    uint64_t consumed;
    uint64_t used = region_used(&consumed, &cursor, &sum);
    uint64_t committed = (ATOMIC_LOAD(&region.committed) - region.base) +
                         (ATOMIC_LOAD(&region.large_committed) - region.end);
#ifdef HAVE_PREFAULT
    sum.bytes_prefaulted = ATOMIC_LOAD(&prefault.bytes);
#endif
    return Py_BuildValue(
        "(KKKKKKKKKKKKKKKKKKKKK)", (unsigned long long)region.base,
        (unsigned long long)region.size, (unsigned long long)used,
        (unsigned long long)consumed, (unsigned long long)committed,
        (unsigned long long)sum.allocations, (unsigned long long)sum.frees_ignored,
        (unsigned long long)sum.foreign_frees, (unsigned long long)sum.foreign_reallocs,
        (unsigned long long)sum.reallocs_in_place, (unsigned long long)sum.reallocs_moved,
        (unsigned long long)sum.bytes_copied, (unsigned long long)sum.fallback_allocations,
        (unsigned long long)sum.fallback_bytes, (unsigned long long)sum.failed_allocations,
        (unsigned long long)sum.large_allocations, (unsigned long long)sum.bytes_released,
        (unsigned long long)sum.bytes_prefaulted, (unsigned long long)sum.frees_reclaimed,
        (unsigned long long)sum.bytes_reclaimed, (unsigned long long)sum.allocations_reused);
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

/* Resident bytes of the parts of both areas handed out so far. */
static PyObject *
region_resident(uintptr_t cursor)
{
    PyObject *small = resident_bytes(region.base, cursor - region.base);
    if (small == NULL || small == Py_None) {
        return small;
    }
    PyObject *big = resident_bytes(region.end, large.top - region.end);
    if (big == NULL) {
        Py_DECREF(small);
        return NULL;
    }
    PyObject *sum = PyNumber_Add(small, big);
    Py_DECREF(small);
    Py_DECREF(big);
    return sum;
}

static PyObject *
core_region_resident(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    return region_resident(ATOMIC_LOAD(&region.cursor));
}

/* (used, resident) in one call and one small tuple: for samplers. */
static PyObject *
core_sample(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        return Py_BuildValue("(iO)", 0, Py_None);
    }
    uintptr_t cursor;
    uint64_t consumed;
    uint64_t used = region_used(&consumed, &cursor, NULL);
    return Py_BuildValue("(KN)", (unsigned long long)used,
                         region_resident(cursor));
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

/* A test probe: malloc, optionally one more block of `interleave` bytes, then
 * realloc, with nothing
 * allocated in between (ctypes would allocate Python ints between calls).
 * Goes through CPython's public API, so it exercises whatever is installed. */
static PyObject *
core_probe_realloc(PyObject *self, PyObject *args)
{
    int domain;
    Py_ssize_t first, new_size, interleave;
    if (!PyArg_ParseTuple(args, "innn:probe_realloc", &domain, &first, &new_size,
                          &interleave)) {
        return NULL;
    }
    if (domain < 0 || domain > 2 || first < 0 || new_size < 0 || interleave < 0) {
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
    if (interleave && mallocs[domain]((size_t)interleave) == NULL) {
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

/* A test probe: p = malloc(size), filled with 0xA5, freed, then q = malloc
 * (or calloc(1, size)) of the same size, with nothing allocated in between.
 * Returns (p, q, zeroed): zeroed tells whether the calloc'ed q reads as zero
 * (None for malloc).  Shows what the reclaim policy does with a free. */
static PyObject *
core_probe_reuse(PyObject *self, PyObject *args)
{
    int domain, use_calloc;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "inp:probe_reuse", &domain, &size, &use_calloc)) {
        return NULL;
    }
    if (domain < 0 || domain > 2 || size < 0) {
        PyErr_SetString(PyExc_ValueError, "domain must be 0 (RAW), 1 (MEM) or 2 (OBJ)");
        return NULL;
    }
    static void *(*const mallocs[])(size_t) = {PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc};
    static void *(*const callocs[])(size_t, size_t) = {PyMem_RawCalloc, PyMem_Calloc,
                                                       PyObject_Calloc};
    static void (*const frees[])(void *) = {PyMem_RawFree, PyMem_Free, PyObject_Free};
    unsigned char *p = mallocs[domain]((size_t)size);
    if (p == NULL) {
        return PyErr_NoMemory();
    }
    memset(p, 0xA5, (size_t)size);
    frees[domain](p);
    unsigned char *q = use_calloc ? callocs[domain](1, (size_t)size)
                                  : mallocs[domain]((size_t)size);
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *zeroed = Py_None;
    if (use_calloc) {
        zeroed = Py_True;
        for (Py_ssize_t i = 0; i < size; i++) {
            if (q[i] != 0) {
                zeroed = Py_False;
                break;
            }
        }
    }
    return Py_BuildValue("(KKO)", (unsigned long long)(uintptr_t)p,
                         (unsigned long long)(uintptr_t)q, zeroed);
}

#include "core/sampler.c"

static PyMethodDef core_methods[] = {
    SAMPLER_METHODS
    {"probe_realloc", core_probe_realloc, METH_VARARGS,
     "probe_realloc(domain, size, new_size, interleave) -> (p, q, contents_kept)\n"
     "Test probe: malloc(size), [malloc(interleave)], realloc(p, new_size) in one C call."},
    {"probe_reuse", core_probe_reuse, METH_VARARGS,
     "probe_reuse(domain, size, calloc) -> (p, q, zeroed)\n"
     "Test probe: malloc, fill, free, then malloc or calloc of the same size in one C call."},
    {"install", core_install, METH_VARARGS,
     "install(mapping, base, size, committed, commit_step, scope, on_exhausted, histogram,\n"
     "        prefault, huge_pages, gc_policy, reclaim)\n"
     "Install the hooks over a reserved region (see bump_global.install)."},
    {"config", core_config, METH_NOARGS,
     "config() -> (base, size, scope, on_exhausted, histogram, prefault, huge_pages,\n"
     "gc_policy, reclaim) or None."},
    {"stats", core_stats, METH_NOARGS,
     "stats() -> tuple of counters (see bump_global.stats) or None."},
    {"buffer_address", core_buffer_address, METH_O,
     "buffer_address(obj) -> address of obj's buffer (e.g. an mmap object)."},
    {"prefault_stop", core_prefault_stop, METH_NOARGS,
     "prefault_stop(): stop the prefault thread until it is next needed."},
    {"sample", core_sample, METH_NOARGS,
     "sample() -> (used, resident): bytes handed out and resident bytes of the region."},
    {"histogram", core_histogram, METH_NOARGS,
     "histogram() -> ((upper_bound, count, bytes), ...) or None if off."},
    {"region_resident", core_region_resident, METH_NOARGS,
     "region_resident() -> resident bytes of the used parts of the region, or None."},
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
        PyModule_AddIntConstant(m, "EMERGENCY_RESERVE", (long)EMERGENCY_RESERVE) < 0 ||
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
