/*
 * core/recycle.c -- EXPERIMENT (built only with -DBUMP_GLOBAL_RECYCLE, by
 * scripts/perf_recycle.py; normal builds compile it to nothing): give the
 * physical pages of dead 64 KiB units of the small area to the bump frontier
 * instead of faulting fresh ones, while addresses are still never reused.
 *
 * Counting.  recycle_live[u] is the number of GIL-domain blocks that start
 * in unit u and were neither freed nor moved: bump() adds one (MEM/OBJ
 * only: a compile-time test), the MEM/OBJ free and a moved realloc subtract
 * one, under the GIL, with plain adds.  Units of RAW chunks (and of class
 * pages) are pinned with a bias so that they never reach 0 (RAW frees run
 * without the GIL and are not counted).
 *
 * Death.  When a free takes a unit to 0 and the unit lies wholly below the
 * GIL arena's top (it can get no new block), its index goes on a stack.
 *
 * Transfer.  When the GIL arena takes a new chunk [lo, hi) from the cursor
 * (arena_refill, cold: once per MiB), each whole unit of it that the prefault
 * thread has not populated yet takes a dead unit's pages with one
 * mremap(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP): the pages move
 * (no copy, no fault, no zeroing) and the dead unit stays mapped, empty (a read
 * there gives zeros: realloc may read past a block's end).  The moved pages hold
 * old bytes, so the arena's `dirty` mark goes up to the chunk's end and calloc
 * clears what it hands out below it.  Each move makes one more mapping (Linux
 * allows vm.max_map_count, 65,530 by default): past RECYCLE_MAX_MOVES it stops.
 * Any failure stops it for good (the chunk then faults fresh pages as before).
 */
#ifdef BUMP_GLOBAL_RECYCLE
#include <sys/mman.h>
#ifndef MREMAP_DONTUNMAP
#  define MREMAP_DONTUNMAP 4
#endif
#define RECYCLE_SHIFT 16
#define RECYCLE_UNIT ((uintptr_t)1 << RECYCLE_SHIFT)
#define RECYCLE_PIN ((int32_t)1 << 30)
#define RECYCLE_MAX_MOVES 30000

static int32_t *recycle_live;
static uint32_t *recycle_stack;
static size_t recycle_cap;  /* recycle_n: internal.h */
static int recycle_on;
static uint64_t recycle_moves, recycle_deaths, recycle_failures;

static void
recycle_init(size_t region_bytes)
{
    recycle_live = calloc((region_bytes >> RECYCLE_SHIFT) + 1, sizeof(int32_t));
    recycle_on = recycle_live != NULL;
}

ALWAYS_INLINE size_t
recycle_unit(uintptr_t p)
{
    return (size_t)((p - region.base) >> RECYCLE_SHIFT);
}

/* Pin the units of [lo, hi): RAW chunks and class pages never recycle. */
static void
recycle_pin(uintptr_t lo, uintptr_t hi)
{
    if (recycle_live == NULL || hi <= lo) {
        return;
    }
    for (size_t u = recycle_unit(lo); u <= recycle_unit(hi - 1); u++) {
        if (recycle_live[u] < RECYCLE_PIN) {
            recycle_live[u] += RECYCLE_PIN;
        }
    }
}

/* Unit u's last block died (cold). */
static NOINLINE void
recycle_dead(size_t u)
{
    uintptr_t start = region.base + ((uintptr_t)u << RECYCLE_SHIFT);
    if (!recycle_on || start + RECYCLE_UNIT > gil_arena.top) {
        return;  /* the arena may still bump into it */
    }
    if (recycle_n == recycle_cap) {
        size_t cap = recycle_cap ? 2 * recycle_cap : 1024;
        uint32_t *s = realloc(recycle_stack, cap * sizeof(uint32_t));
        if (s == NULL) {
            return;
        }
        recycle_stack = s;
        recycle_cap = cap;
    }
    recycle_stack[recycle_n++] = (uint32_t)u;
    recycle_deaths++;
}

#define RECYCLE_ALLOC(a, p)                                                   \
    do {                                                                      \
        if ((a) == &gil_arena && recycle_live != NULL) {                       \
            recycle_live[recycle_unit((uintptr_t)(p))]++;                      \
        }                                                                     \
    } while (0)
#define RECYCLE_FREE(d, p)                                                    \
    do {                                                                      \
        if (!(d)->is_raw && recycle_live != NULL) {                            \
            size_t u_ = recycle_unit((uintptr_t)(p));                          \
            if (--recycle_live[u_] == 0) {                                     \
                recycle_dead(u_);                                             \
            }                                                                 \
        }                                                                     \
    } while (0)

/* The GIL arena took [lo, hi) from the cursor: fill its whole units that
 * the prefault thread has not populated with dead units' pages.  Under the
 * GIL. */
static void
recycle_into(uintptr_t lo, uintptr_t hi)
{
    if (!recycle_on || recycle_n == 0) {
        return;
    }
    uintptr_t from = region.base + ROUND_UP(lo - region.base, RECYCLE_UNIT);
    uintptr_t populated = ATOMIC_LOAD(&prefault.area[0].done);
    if (populated > from) {
        from = region.base + ROUND_UP(populated - region.base, RECYCLE_UNIT);
    }
    uintptr_t moved_to = 0;
    for (uintptr_t dst = from; dst + RECYCLE_UNIT <= hi && recycle_n > 0; dst += RECYCLE_UNIT) {
        if (recycle_moves >= RECYCLE_MAX_MOVES) {
            recycle_on = 0;
            break;
        }
        size_t u = recycle_stack[--recycle_n];
        uintptr_t src = region.base + ((uintptr_t)u << RECYCLE_SHIFT);
        void *r = mremap((void *)src, RECYCLE_UNIT, RECYCLE_UNIT,
                         MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, (void *)dst);
        if (r == MAP_FAILED) {
            recycle_failures++;
            recycle_on = 0;
            break;
        }
        recycle_live[u] = -RECYCLE_PIN;  /* gone: stray frees never list it again */
        recycle_moves++;
        moved_to = dst + RECYCLE_UNIT;
    }
    if (moved_to > gil_arena.dirty) {
        gil_arena.dirty = moved_to;  /* calloc clears below it */
    }
}

/* No block may straddle two units (a live block's tail in a unit whose own
 * blocks all died would lose its pages): the GIL arena's `end` is kept at the
 * next unit boundary above its top ("soft end"; the chunk's real end is
 * recycle_chunk_end), so a block that would cross it misses the fast path;
 * recycle_soft_end then abandons the unit's tail and moves the soft end one
 * unit on (cold: once per 64 KiB).  Returns 1 if it moved the soft end. */
static uintptr_t recycle_chunk_end;

static void
recycle_clamp(arena_t *a)
{
    recycle_chunk_end = a->end;
    uintptr_t next = region.base + ROUND_UP(a->top + 1 - region.base, RECYCLE_UNIT);
    if (next < a->end) {
        a->end = next;
    }
}

static int
recycle_soft_end(arena_t *a, size_t sz)
{
    if (recycle_live == NULL || a != &gil_arena || a->end >= recycle_chunk_end) {
        return 0;
    }
    if (sz > a->end - a->top) {
        a->waste += a->end - a->top;
        a->top = a->end;
        a->last = 0;
    }
    uintptr_t next = a->end + RECYCLE_UNIT;
    a->end = next < recycle_chunk_end ? next : recycle_chunk_end;
    return 1;
}

/* Would a block [p, p + sz) cross a unit boundary? */
#define RECYCLE_CROSSES(p, sz)                                                \
    (recycle_live != NULL &&                                                  \
     (((p) - region.base) >> RECYCLE_SHIFT) != (((p) + (sz) - 1 - region.base) >> RECYCLE_SHIFT))

/* recycle_counts() -> (moves, deaths, failures, dead units waiting). */
static PyObject *
core_recycle_counts(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("(KKKn)", (unsigned long long)recycle_moves,
                         (unsigned long long)recycle_deaths,
                         (unsigned long long)recycle_failures, (Py_ssize_t)recycle_n);
}
#else
#  define RECYCLE_ALLOC(a, p) ((void)0)
#  define RECYCLE_FREE(d, p) ((void)0)
#  define recycle_pin(lo, hi) ((void)0)
#  define recycle_into(lo, hi) ((void)0)
#  define recycle_init(n) ((void)0)
#  define recycle_clamp(a) ((void)0)
#  define recycle_soft_end(a, sz) 0
#  define RECYCLE_CROSSES(p, sz) 0
#endif
