/*
 * core/internal.h -- what every part of the engine shares: the compiler shim
 * (likely/unlikely, inlining, atomics), constants, types, the shared state and
 * the helpers for counters and assertions.  No platform #if here: those live
 * in prim_posix.c and prim_windows.c.  Included once, by _core.c.
 */
#ifndef BUMP_GLOBAL_INTERNAL_H
#define BUMP_GLOBAL_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* ---- compiler shim ------------------------------------------------------- */

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
/* A word another thread writes without a lock, read whole (never torn). */
#  define ATOMIC_LOAD_RELAXED(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#  define FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#  define CLZ64(x) __builtin_clzll((unsigned long long)(x))
#elif defined(_MSC_VER)
#  include <windows.h>
#  include <intrin.h>
#  define likely(x) (x)
#  define unlikely(x) (x)
#  define ALWAYS_INLINE static __forceinline
#  define NOINLINE __declspec(noinline)
/* x64/ARM64 MSVC: aligned 64-bit loads and stores are atomic; Interlocked* are
 * full barriers.  `expected` is updated on failure, as with the GCC builtin.
 * The shim covers 64-bit objects only: every atomic of the engine is a
 * uintptr_t or a uint64_t. */
#  define ATOMIC_LOAD(p) ((uintptr_t)InterlockedCompareExchange64((volatile LONG64 *)(p), 0, 0))
#  define ATOMIC_CAS(p, expected, desired) \
       bg_msvc_cas((volatile LONG64 *)(p), (uintptr_t *)&(expected), (uintptr_t)(desired))
#  define ATOMIC_STORE(p, v) ((void)InterlockedExchange64((volatile LONG64 *)(p), (LONG64)(v)))
#  define ATOMIC_ADD(p, v) ((void)InterlockedExchangeAdd64((volatile LONG64 *)(p), (LONG64)(v)))
#  define ATOMIC_SUB(p, v) ((void)InterlockedExchangeAdd64((volatile LONG64 *)(p), -(LONG64)(v)))
/* Aligned loads of 64-bit words are whole on x64/ARM64. */
#  define ATOMIC_LOAD_RELAXED(x) (x)
#  define FENCE() MemoryBarrier()
static __forceinline int
bg_clz64(unsigned long long x)
{
    unsigned long index;
    _BitScanReverse64(&index, x);
    return 63 - (int)index;
}
#  define CLZ64(x) bg_clz64((unsigned long long)(x))
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

/* Contracts, checked in debug builds of CPython (Py_DEBUG), or in any build
 * compiled with -DBUMP_GLOBAL_ASSERT -UNDEBUG; free otherwise. */
#if defined(Py_DEBUG) || defined(BUMP_GLOBAL_ASSERT)
#  include <assert.h>
#  define ASSERT(x) assert(x)
#else
#  define ASSERT(x) ((void)0)
#endif

/* n = nelem * elsize; 1 if that overflows (the one calloc overflow check). */
ALWAYS_INLINE int
mul_overflows(size_t nelem, size_t elsize, size_t *n)
{
#if defined(__GNUC__) || defined(__clang__)
    return unlikely(__builtin_mul_overflow(nelem, elsize, n));
#else
    *n = nelem * elsize;
    return elsize != 0 && nelem > SIZE_MAX / elsize;
#endif
}

/* ---- constants ------------------------------------------------------------ */

#define ALIGNMENT ((size_t)16)
#define ROUND_UP(n, a) (((n) + ((a) - 1)) & ~((a) - 1))
#define IS_ALIGNED(p) (((uintptr_t)(p) & (ALIGNMENT - 1)) == 0)
#define GIL_CHUNK ((size_t)1 << 20)   /* granule the GIL arena takes from the cursor */
/* The smallest region install() accepts, exported as _core.MIN_SIZE (bump_global/
 * _config.py has the same value; tests/test_core_layout.py checks that they agree).
 * Not one GIL_CHUNK: a region must hold what the interpreter allocates after the
 * install -- the rest of its start-up and its shutdown, a session's files and
 * recorder, and the report's own imports when bump_global.report() is first called
 * -- or a program under on_exhausted="error" fails at once (1 MiB: "can't allocate
 * lock" while bump-global run starts the program).  scripts/min_size.py measures it:
 * 9 MiB at most (3.15, install() then report()), 3.75 MiB for the command line and
 * BUMP_GLOBAL=1 (3.14); 16 MiB leaves room for the versions to come. */
#define MIN_SIZE ((size_t)16 << 20)
#define RAW_CHUNK ((size_t)64 << 10)  /* granule of the RAW arena */
#define EMERGENCY_RESERVE ((uintptr_t)4 << 20)  /* beyond `size`, policy "error" */
#define LARGE_MIN ((size_t)64 << 10)  /* MEM/OBJ blocks this large go to the large area */
#define LARGE_HEADER ALIGNMENT        /* a large block's size is kept just before it */

/* Must match bump_global/_config.py. */
enum { SCOPE_OBJECTS = 1, SCOPE_PYTHON = 2, SCOPE_RAW = 3 };
enum { ON_EXHAUSTED_FALLBACK = 1, ON_EXHAUSTED_ERROR = 2 };
enum { RECLAIM_NONE = 0, RECLAIM_LAST = 1, RECLAIM_CLASSES = 2 };

/* ---- counters ------------------------------------------------------------- */

/* The counters, in the order stats() returns them (after its five sizes):
 * one list makes the struct, the sums and the field names. */
#define COUNTERS(X)                                                              \
    X(allocations)          /* blocks bumped (malloc, calloc, moved realloc) */  \
    X(frees_ignored)        /* frees of region pointers */                       \
    X(foreign_frees)        /* frees of blocks from before the install */        \
    X(foreign_reallocs)     /* reallocs of blocks from before the install */     \
    X(reallocs_in_place)                                                         \
    X(reallocs_moved)                                                            \
    X(bytes_copied)                                                              \
    X(fallback_allocations) /* served by the previous allocator: region full */  \
    X(fallback_bytes)                                                            \
    X(failed_allocations)   /* NULL returned (policy "error", or no memory) */   \
    X(large_allocations)    /* blocks placed in the large area */                \
    X(bytes_released)       /* pages of freed or moved large blocks given back */ \
    X(bytes_prefaulted)     /* faulted in ahead of the bump (prefault.c) */      \
    X(frees_reclaimed)      /* reclaim != none: frees that gave their block back */ \
    X(bytes_reclaimed)                                                           \
    X(allocations_reused)   /* reclaim == classes: served from a free list */ \
    X(fallback_frees)       /* frees of fallback blocks (fallback.c) */          \
    X(fallback_reallocs)    /* reallocs of fallback blocks */                    \
    X(fallback_untracked)   /* fallback blocks the set could not take */          \
    X(samples)              /* allocations sampled (sites.c keeps the count) */

typedef struct {
#define COUNTER_FIELD(name) uint64_t name;
    COUNTERS(COUNTER_FIELD)
#undef COUNTER_FIELD
} counters_t;

/* stats() gives five sizes (stats.c's STATS_SIZES), then the counters. */
#define PLUS_ONE(name) + 1
#define STATS_COUNT (5 COUNTERS(PLUS_ONE))

/* ---- arenas, domains, the region ------------------------------------------ */

/* The fast path reads top, end, last and the allocations counter; the rest is
 * the cold paths'. */
typedef struct {
    uintptr_t top;    /* next free byte of the current chunk */
    uintptr_t end;    /* the fast path's limit: chunk_end, or the next sampling
                       * point if nearer (sampling.c) */
    uintptr_t last;   /* start of the most recent block, 0 if none in this chunk */
    uintptr_t dirty;  /* bytes at or above max(top, dirty) were never handed out */
    uint64_t waste;   /* bytes left unused at the end of abandoned chunks */
    counters_t c;
    uintptr_t chunk_end;  /* end of the current chunk */
    uintptr_t sample_at;  /* sites: the next sampling point (>= top while armed) */
    uint64_t rng;         /* sites: the state its intervals are drawn from */
} arena_t;

/* A domain's description is const, so once a hook is inlined the compiler
 * folds `arena` and `is_raw` away: the GIL fast path has no lock and no test. */
typedef struct {
    arena_t *arena;
    int is_raw;
    PyMemAllocatorEx *prev;  /* allocator found at install time */
} domain_t;

/* Count `n` in counter `field` of domain d's arena: atomically for RAW (its
 * hooks update counters outside raw_lock), a plain add under the GIL. */
#define COUNT(d, field, n)                                                     \
    do {                                                                       \
        if ((d)->is_raw) {                                                     \
            ATOMIC_ADD(&(d)->arena->c.field, (n));                             \
        }                                                                      \
        else {                                                                 \
            (d)->arena->c.field += (n);                                        \
        }                                                                      \
    } while (0)

/* The reservation is [base, large_end): the small area [base, end), which is
 * `size` + EMERGENCY_RESERVE bytes (the budget plus the room the reserve of
 * policy "error" may use), then the large area [end, large_end), `size` bytes.
 * Neither area can take more than `budget` bytes with the other: `charged`
 * adds both up. */
static struct {
    uintptr_t base;
    uintptr_t size;         /* the budget: bytes the two areas may take together */
    uintptr_t end;          /* end of the small area: base + size + EMERGENCY_RESERVE */
    uintptr_t large_end;    /* end of the large area [end, large_end): end + size */
    uintptr_t budget;       /* atomic: `charged` stops here (size, or size + reserve
                             * once the reserve was released) */
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
    uintptr_t huge_applied; /* atomic: 1 once applied */
    int reclaim;            /* RECLAIM_*: chooses the MEM/OBJ hooks at install */
    int installed;
} region;

/* atomic: 1 while the report guard is on (exhausted.c): RAW reads it
 * without the GIL. */
static uintptr_t report_guard;

static arena_t gil_arena;  /* MEM and OBJ: guarded by the GIL */
static arena_t raw_arena;  /* RAW: guarded by raw_lock (region.c) */

/* The large area serves MEM/OBJ blocks of LARGE_MIN bytes and more: growing
 * buffers (list items, bytearrays, big strings) are usually the most recent
 * block there, so they grow in place.  Each block has a LARGE_HEADER holding
 * its size, cheap at these sizes: a moved block copies exactly its bytes, and
 * a freed or moved block's whole pages go back to the OS.  Guarded by the
 * GIL, like gil_arena. */
static struct {
    uintptr_t top;    /* next free byte */
    uintptr_t last;   /* the most recent block (after its header), 0 if none */
    uintptr_t dirty;  /* bytes at or above max(top, dirty) were never handed out */
} large;

static PyMemAllocatorEx raw_prev, mem_prev, obj_prev;
static const domain_t raw_dom = {&raw_arena, 1, &raw_prev};
static const domain_t mem_dom = {&gil_arena, 0, &mem_prev};
static const domain_t obj_dom = {&gil_arena, 0, &obj_prev};

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

ALWAYS_INLINE int
in_small_area(uintptr_t p)
{
    return p - region.base < region.end - region.base;
}

#endif /* BUMP_GLOBAL_INTERNAL_H */
