/*
 * core/fallback.c -- the set of live fallback blocks: blocks the previous
 * allocator served after the region filled (exhausted.c).  Their frees and
 * reallocs go to the previous allocator like those of blocks from before the
 * install, but are counted apart (fallback_frees, fallback_reallocs instead
 * of foreign_frees, foreign_reallocs).
 *
 * A set of pointers (core/ptrmap.c, in OS memory).  Its own lock: RAW runs
 * without the GIL, and the lock is never held while another is taken or the
 * previous allocator is called.
 * `active` is set by the first fallback ever: until then free_foreign never
 * looks here, so freeing a foreign pointer costs nothing extra before the
 * region fills.  A block that cannot be tracked (the OS refused to grow the
 * set) is counted in fallback_untracked and still served; its free then
 * counts as foreign.
 */
static struct {
    ptrmap_t blocks;    /* the live fallback blocks (their values unused) */
    uintptr_t active;   /* atomic: 1 once a fallback happened */
    prim_lock_t lock;
} fallback = {{NULL, NULL, 0, 0, 0}, 0, PRIM_LOCK_INIT};

/* Track p, a block the previous allocator just served.  0 if it cannot. */
static int
fallback_add(void *p)
{
    ptrmap_value_t none = {0, 0};
    ATOMIC_STORE(&fallback.active, 1);
    LOCK(fallback.lock);
    int ok = ptrmap_put(&fallback.blocks, (uintptr_t)p, none);
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
    int found = ptrmap_take(&fallback.blocks, (uintptr_t)p, NULL);
    UNLOCK(fallback.lock);
    return found;
}
