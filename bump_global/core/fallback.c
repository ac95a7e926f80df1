/*
 * core/fallback.c -- the set of live fallback blocks: blocks the previous
 * allocator served after the region filled (exhausted.c).  Their frees and
 * reallocs go to the previous allocator like those of blocks from before the
 * install, but are counted apart (fallback_frees, fallback_reallocs instead
 * of foreign_frees, foreign_reallocs).
 *
 * An open-addressing hash set of pointers (linear probing, deletion by
 * backward shift, so no tombstones), grown by rehash at 3/4 load.  Its memory
 * comes from the OS directly (prim_os_alloc), never from Python's allocators,
 * which are ours.  Its own lock: RAW runs without the GIL, and the lock is
 * never held while another is taken or the previous allocator is called.
 * `active` is set by the first fallback ever: until then free_foreign never
 * looks here, so freeing a foreign pointer costs nothing extra before the
 * region fills.  A block that cannot be tracked (the OS refused to grow the
 * set) is counted in fallback_untracked and still served; its free then
 * counts as foreign.
 */
#define FALLBACK_MIN_SLOTS ((size_t)4096)  /* 32 KiB */

static struct {
    uintptr_t *slots;   /* 0: empty; else a live fallback block */
    size_t mask;        /* slots - 1 (a power of two), 0 before the first */
    unsigned shift;     /* 64 - log2(slots) */
    size_t live;
    uintptr_t active;   /* atomic: 1 once a fallback happened */
    prim_lock_t lock;
} fallback = {NULL, 0, 0, 0, 0, PRIM_LOCK_INIT};

ALWAYS_INLINE size_t
fallback_home(uintptr_t p)
{
    return (size_t)(((p >> 4) * (uint64_t)0x9E3779B97F4A7C15ULL) >> fallback.shift);
}

/* Put p in slots (it is not there; there is room).  Under the lock. */
static void
fallback_place(uintptr_t *slots, size_t mask, uintptr_t p)
{
    size_t i = fallback_home(p) & mask;
    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = p;
}

/* Double the table (or make the first).  0 if the OS refuses.  Under the lock. */
static int
fallback_grow(void)
{
    size_t old_n = fallback.slots ? fallback.mask + 1 : 0;
    size_t n = old_n ? 2 * old_n : FALLBACK_MIN_SLOTS;
    uintptr_t *slots = prim_os_alloc(n * sizeof(uintptr_t));
    if (slots == NULL) {
        return 0;
    }
    uintptr_t *old = fallback.slots;
    fallback.slots = slots;
    fallback.mask = n - 1;
    fallback.shift = 64 - (unsigned)(63 - CLZ64(n));
    for (size_t i = 0; i < old_n; i++) {
        if (old[i] != 0) {
            fallback_place(slots, fallback.mask, old[i]);
        }
    }
    if (old != NULL) {
        prim_os_free(old, old_n * sizeof(uintptr_t));
    }
    return 1;
}

/* Slot of p, or -1.  Under the lock. */
static Py_ssize_t
fallback_find(uintptr_t p)
{
    if (fallback.slots == NULL) {
        return -1;
    }
    size_t i = fallback_home(p) & fallback.mask;
    while (fallback.slots[i] != 0) {
        if (fallback.slots[i] == p) {
            return (Py_ssize_t)i;
        }
        i = (i + 1) & fallback.mask;
    }
    return -1;
}

/* Empty slot i, moving back the entries after it that probed past it. */
static void
fallback_delete(size_t i)
{
    uintptr_t *slots = fallback.slots;
    size_t mask = fallback.mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (slots[j] == 0) {
            break;
        }
        size_t home = fallback_home(slots[j]) & mask;
        /* The entry at j may move to i unless its home lies in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i] = 0;
    fallback.live--;
}

/* Track p, a block the previous allocator just served.  0 if it cannot. */
static int
fallback_add(void *p)
{
    int ok = 1;
    ATOMIC_STORE(&fallback.active, 1);
    LOCK(fallback.lock);
    if ((fallback.live + 1) * 4 > (fallback.slots ? fallback.mask + 1 : 0) * 3 &&
        !fallback_grow()) {
        ok = 0;
    }
    else if (fallback_find((uintptr_t)p) < 0) {
        fallback_place(fallback.slots, fallback.mask, (uintptr_t)p);
        fallback.live++;
    }
    UNLOCK(fallback.lock);
    return ok;
}

/* Forget p if it is a tracked fallback block: 1 if it was.  Before the first
 * fallback, one load. */
static int fallback_remove(void *p);

ALWAYS_INLINE int
fallback_forget(void *p)
{
    if (likely(!ATOMIC_LOAD(&fallback.active))) {
        return 0;
    }
    return fallback_remove(p);
}

static NOINLINE int
fallback_remove(void *p)
{
    LOCK(fallback.lock);
    Py_ssize_t i = fallback_find((uintptr_t)p);
    if (i >= 0) {
        fallback_delete((size_t)i);
    }
    UNLOCK(fallback.lock);
    return i >= 0;
}
