/*
 * core/region.c -- the region's cold paths: the budget (charge), commits
 * (commit_upto) and the chunks the small arenas take from the cursor
 * (arena_refill).  Also the two locks of the engine.
 *
 * Locks.  raw_lock guards the RAW arena (RAW hooks run without the GIL).
 * commit_lock serialises commits.  Lock order everywhere: raw_lock, then
 * commit_lock, then prefault.lock (fallback.lock is never held with another,
 * but comes last); the fork handlers (install.c) take all four so a child of
 * fork() gets them unlocked and consistent.
 */
static prim_lock_t raw_lock = PRIM_LOCK_INIT;
static prim_lock_t commit_lock = PRIM_LOCK_INIT;

/* Take n bytes from the budget the two areas share, and from the program's
 * shared budget if there is one (budget.c).  0 if either has not enough.
 * While the report guard is on, the emergency reserve is not part of it: the
 * report falls back instead, and the program keeps the reserve. */
static int
charge(uintptr_t n)
{
    uintptr_t have = ATOMIC_LOAD(&region.charged);
    for (;;) {
        uintptr_t budget = ATOMIC_LOAD(&region.budget);
        if (unlikely(ATOMIC_LOAD(&report_guard)) && budget > region.size) {
            budget = region.size;
        }
        if (n > budget || have > budget - n) {
            return 0;
        }
        if (ATOMIC_CAS(&region.charged, have, have + n)) {
            if (unlikely(!shared_charge(n, budget - region.size))) {
                ATOMIC_SUB(&region.charged, n);
                return 0;
            }
            return 1;
        }
    }
}

/* Give n charged bytes back (a large block's pages, a chunk not taken). */
static void
uncharge(uintptr_t n)
{
    ATOMIC_SUB(&region.charged, n);
    shared_uncharge(n);
}

/* Make [area_base, upto) readable and writable, where *committed is the
 * area's committed end (it only grows, in steps of commit_step, never past
 * area_end).  Returns 0 if the OS refuses. */
static int
commit_upto(uintptr_t *committed, uintptr_t area_base, uintptr_t area_end, uintptr_t upto)
{
    ASSERT(upto <= area_end);
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
        ok = prim_commit(have, want - have);
        if (ok) {
            ATOMIC_STORE(committed, want);
        }
    }
    UNLOCK(commit_lock);
    return ok;
}

/* Give arena `a` at least `need` bytes at a->top.  If a->top is in a chunk
 * that ends at the cursor, the chunk is extended in place; otherwise, unless
 * `in_place_only`, a new chunk starts at the cursor and the old one's tail is
 * abandoned.  Called with the arena's lock (the GIL or raw_lock) held.
 * Returns 0 when the region cannot provide it.  On success the arena has
 * a->top + need <= a->chunk_end <= region.end, all of it committed. */
static NOINLINE int
arena_refill(arena_t *a, size_t need, size_t granule, int in_place_only)
{
    uintptr_t cur = ATOMIC_LOAD(&region.cursor);
    for (;;) {
        int contiguous = (a->chunk_end != 0 && a->chunk_end == cur);
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
        /* Bytes newly taken: [cur, new_end) (when contiguous, a->chunk_end == cur).
         * Near the end of the budget, take only what `need` asks for. */
        if (!charge(new_end - cur)) {
            new_end = start + need;
            if (!charge(new_end - cur)) {
                return 0;
            }
        }
        uintptr_t grabbed = new_end - cur;
        if (!commit_upto(&region.committed, region.base, region.end, new_end)) {
            uncharge(grabbed);
            return 0;
        }
        if (ATOMIC_CAS(&region.cursor, cur, new_end)) {
            if (!contiguous) {
                a->waste += a->chunk_end - a->top;
                a->sample_at += start - a->top;  /* the next point keeps its distance */
                a->top = start;
                a->last = 0;  /* the previous block cannot grow into this chunk */
            }
            a->chunk_end = new_end;
            arena_limit(a);
            ASSERT(IS_ALIGNED(a->top) && a->top + need <= a->chunk_end &&
                   a->chunk_end <= region.end);
            area_grew(0, a->top);
            chunk_taken(cur, new_end);  /* [cur, new_end) was just taken */
            return 1;
        }
        uncharge(grabbed);
        /* `cur` now holds the cursor another arena moved; try again. */
    }
}
