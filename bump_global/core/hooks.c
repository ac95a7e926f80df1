/*
 * core/hooks.c -- malloc, calloc, realloc and free, generic over the domain.
 * Each is inlined into one hook per domain (domains.c), where `d` is a
 * constant: for MEM/OBJ the compiler drops the lock and the RAW tests.  MEM
 * and OBJ run under the GIL; RAW takes raw_lock around its arena.
 */

#define ARENA_LOCK(d) do { if ((d)->is_raw) LOCK(raw_lock); } while (0)
#define ARENA_UNLOCK(d) do { if ((d)->is_raw) UNLOCK(raw_lock); } while (0)

/* A bump that missed: zero bytes, a large block, a new chunk, a sampling
 * point.  NULL if the region cannot serve it.  *sampled: the bytes of the
 * block if it holds a sampling point (sampling.c), else left as it is.  Under
 * the arena's lock. */
static NOINLINE void *
arena_bump_cold(arena_t *a, size_t n, size_t *sampled)
{
    if (n == 0) {
        n = 1;  /* a unique, non-NULL 16-byte block */
    }
    if (n > (size_t)PY_SSIZE_T_MAX) {
        return NULL;
    }
    size_t sz = ROUND_UP(n, ALIGNMENT);
    if (a == &gil_arena && sz >= LARGE_MIN) {
        return large_alloc(a, n, sampled);
    }
    if (sz > a->chunk_end - a->top &&
        !arena_refill(a, sz, a == &raw_arena ? RAW_CHUNK : GIL_CHUNK, 0)) {
        return NULL;
    }
    /* The block fits the chunk (`end` may be a sampling point before it). */
    uintptr_t top = a->top;
    ASSERT(IS_ALIGNED(top) && top + sz <= a->chunk_end);
    a->top = top + sz;
    a->last = top;
    a->c.allocations++;
    *sampled = arena_sampled(a, top, sz);
    return (void *)top;
}

/* Bytes below an arena's `dirty` mark may have been handed out before (and
 * written): the part of block [p, p + n) below it, which calloc clears.
 * Under the arena's lock. */
ALWAYS_INLINE size_t
dirty_part(const domain_t *d, uintptr_t p, size_t n)
{
    uintptr_t dirty = d->arena->dirty;
    if (!d->is_raw && unlikely(in_large_area(p))) {
        dirty = large.dirty;
    }
    if (p != 0 && unlikely(p < dirty)) {
        return dirty - p < n ? dirty - p : n;
    }
    return 0;
}

/* The cold half of malloc and calloc (zero: clear what must be; n is nelem *
 * elsize, checked): a new chunk, a large block, a sample, or exhaustion. */
static NOINLINE void *
alloc_cold(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize, sampled = 0, to_clear = 0;
    ARENA_LOCK(d);
    void *p = arena_bump_cold(d->arena, n, &sampled);
    if (zero) {
        to_clear = dirty_part(d, (uintptr_t)p, n);
    }
    ARENA_UNLOCK(d);
    if (unlikely(sampled)) {
        sites_record(d, sampled, 0);
    }
    if (unlikely(p == NULL)) {
        return exhausted(d, nelem, elsize, zero);
    }
    if (unlikely(to_clear)) {
        memset(p, 0, to_clear);
    }
    return p;
}

static NOINLINE void *
malloc_cold(const domain_t *d, size_t n)
{
    return alloc_cold(d, n, 1, 0);
}

ALWAYS_INLINE void *
hook_malloc(const domain_t *d, size_t n)
{
    arena_t *a = d->arena;
    void *p;
    if (!d->is_raw) {
        /* The GIL fast path: a miss tail-calls the cold half, so the hit
         * saves no register and tests no NULL. */
        if (likely(bump(a, n, &p))) {
            return p;
        }
        return malloc_cold(d, n);
    }
    ARENA_LOCK(d);
    int hit = bump(a, n, &p);
    ARENA_UNLOCK(d);
    if (likely(hit)) {
        return p;
    }
    return malloc_cold(d, n);  /* takes the lock again */
}

/* Memory above an arena's `dirty` mark has never been handed out and is
 * already zero: only a block that starts below it (possible after an in-place
 * shrink moved `top` back) is cleared, and only the part below the mark. */
ALWAYS_INLINE void *
hook_calloc(const domain_t *d, size_t nelem, size_t elsize)
{
    size_t n;
    if (mul_overflows(nelem, elsize, &n)) {
        return NULL;
    }
    void *p;
    ARENA_LOCK(d);
    if (unlikely(!bump(d->arena, n, &p))) {
        ARENA_UNLOCK(d);
        return alloc_cold(d, nelem, elsize, 1);
    }
    size_t to_clear = dirty_part(d, (uintptr_t)p, n);
    ARENA_UNLOCK(d);
    if (unlikely(to_clear)) {
        memset(p, 0, to_clear);
    }
    return p;
}

/* The free of a block of the previous allocator once fallbacks happened: a
 * fallback block leaves the set before the free, so its address cannot be
 * served again while still in the set. */
static NOINLINE void
free_prev_tracked(const domain_t *d, void *p)
{
    if (fallback_remove(p)) {
        COUNT(d, fallback_frees, 1);
    }
    else {
        COUNT(d, foreign_frees, 1);
    }
    d->prev->free(d->prev->ctx, p);
}

/* A pointer outside the region: NULL, or the previous allocator's (a block
 * from before the install, or a fallback block).  Until the first fallback
 * this costs one more load and branch than a plain forward. */
static NOINLINE void
free_foreign(const domain_t *d, void *p)
{
    if (p == NULL) {
        return;
    }
    if (unlikely(ATOMIC_LOAD(&fallback.active))) {
        free_prev_tracked(d, p);
        return;
    }
    COUNT(d, foreign_frees, 1);
    d->prev->free(d->prev->ctx, p);
}

/* Realloc of the previous allocator's block.  A fallback block leaves the set
 * during the call (no other thread can be given its address meanwhile) and
 * comes back as the new block, or as itself if the realloc failed. */
static NOINLINE void *
realloc_foreign(const domain_t *d, void *p, size_t n)
{
    int tracked = fallback_forget(p);
    if (tracked) {
        COUNT(d, fallback_reallocs, 1);
    }
    else {
        COUNT(d, foreign_reallocs, 1);
    }
    void *q = tracked && !unwind_may_realloc(d, n) ? NULL  /* exhausted.c, step 3 */
                                                   : d->prev->realloc(d->prev->ctx, p, n);
    if (tracked && !fallback_add(q != NULL ? q : p)) {
        COUNT(d, fallback_untracked, 1);
    }
    return q;
}

/* A pointer inside the region: nothing to do (counted), except that a large
 * block's whole pages go back to the OS. */
ALWAYS_INLINE void
hook_free(const domain_t *d, void *p)
{
    if (likely(in_region(p))) {
        if (!d->is_raw && unlikely(in_large_area((uintptr_t)p))) {
            free_large(d->arena, (uintptr_t)p);
        }
        else {
            COUNT(d, frees_ignored, 1);
        }
        return;
    }
    free_foreign(d, p);
}

/* Resize the arena's most recent block in place.  Returns 0 if it cannot.
 * Its growth counts against the sampling point (*sampled: the growth, if it
 * holds the point); a shrink moves the point back.  Called with the arena's
 * lock held. */
static int
resize_last(arena_t *a, uintptr_t p, size_t n, size_t granule, size_t *sampled)
{
    ASSERT(p == a->last && p < a->top && a->top <= a->chunk_end);
    size_t sz = n == 0 ? ALIGNMENT : ROUND_UP(n, ALIGNMENT);
    if (sz > a->chunk_end - p && !arena_refill(a, sz - (a->top - p), granule, 1)) {
        return 0;
    }
    uintptr_t old_top = a->top;
    if (p + sz < old_top && old_top > a->dirty) {
        a->dirty = old_top;  /* the bytes we give back were handed out */
    }
    a->top = p + sz;
    ASSERT(a->top <= a->chunk_end);
    if (a->top > old_top) {
        *sampled = arena_sampled(a, old_top, a->top - old_top);
    }
    else if (sampling.on) {
        arena_gave_back(a, old_top - a->top);
    }
    a->c.reallocs_in_place++;
    return 1;
}

/* NULL is malloc; a foreign pointer goes to the previous realloc (counted
 * as a foreign or a fallback realloc); the most
 * recent block of the arena (or of the large area) is resized in place; any
 * other block moves.  Small blocks keep no header, so their old size is
 * unknown and we copy min(n, cursor - p, q - p) bytes: everything the old
 * block can hold, never a byte outside the used part of the region, never a
 * byte of the new block q itself.  The tail we copy may be other blocks'
 * bytes (the caller ignores them); reading them is a benign race with RAW
 * threads writing their own blocks.  If the new block cannot be had, NULL is
 * returned and the old block stays valid (we never free it). */
static NOINLINE void *
hook_realloc(const domain_t *d, void *p, size_t n)
{
    arena_t *a = d->arena;
    if (p == NULL) {
        return hook_malloc(d, n);
    }
    if (!in_region(p)) {
        return realloc_foreign(d, p, n);
    }
    if (n > (size_t)PY_SSIZE_T_MAX) {
        return NULL;
    }
    uintptr_t addr = (uintptr_t)p;
    int is_large = in_large_area(addr);
    size_t avail, grown = 0;
    if (is_large) {
        /* Only the GIL domains own the large area (RAW may meet its blocks
         * through a mismatched call, and then just moves them). */
        if (!d->is_raw && addr == large.last && large_resize_last(a, addr, n, &grown)) {
            if (unlikely(grown)) {
                sites_record(d, grown, SITE_GROWTH);
            }
            return p;
        }
        avail = large_size(addr);
    }
    else {
        ARENA_LOCK(d);
        int done = addr == a->last &&
                   resize_last(a, addr, n, d->is_raw ? RAW_CHUNK : GIL_CHUNK, &grown);
        ARENA_UNLOCK(d);
        if (done) {
            if (unlikely(grown)) {
                sites_record(d, grown, SITE_GROWTH);
            }
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
        release_pages(a, addr, avail);
    }
    return q;
}
