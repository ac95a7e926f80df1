/*
 * core/large.c -- the large area: MEM/OBJ blocks of LARGE_MIN bytes and more,
 * bumped from region.end upwards, each after a LARGE_HEADER holding its size.
 * Under the GIL (only the GIL domains allocate here).  A freed or moved large
 * block's whole pages go back to the OS (release_pages); its addresses are
 * never handed out again, so this is no reuse.  Under a reclaim policy the
 * most recent large block is rolled back instead (large_rollback).  Its
 * blocks count against the GIL arena's sampling point (sampling.c): *sampled
 * is set to the bytes of a block that holds it.
 */

ALWAYS_INLINE size_t
large_size(uintptr_t p)
{
    return *(size_t *)(p - LARGE_HEADER);
}

static void *
large_alloc(arena_t *a, size_t n, size_t *sampled)
{
    size_t sz = ROUND_UP(n, ALIGNMENT) + LARGE_HEADER;
    uintptr_t h = large.top;
    if (sz > region.large_end - h || !charge(sz)) {
        return NULL;
    }
    if (!commit_upto(&region.large_committed, region.end, region.large_end, h + sz)) {
        uncharge(sz);
        return NULL;
    }
    *(size_t *)h = sz - LARGE_HEADER;
    large.top = h + sz;
    large.last = h + LARGE_HEADER;
    ASSERT(IS_ALIGNED(large.last) && in_large_area(large.last) &&
           large.top <= region.large_end);
    area_grew(1, large.top);
    a->c.allocations++;
    a->c.large_allocations++;
    *sampled = arena_sampled_apart(a, sz);
    return (void *)large.last;
}

/* Resize the most recent large block where it stands.  0 if it cannot.  Its
 * growth counts against the sampling point (*sampled: the growth, if sampled). */
static int
large_resize_last(arena_t *a, uintptr_t p, size_t n, size_t *sampled)
{
    ASSERT(p == large.last);
    size_t new_sz = n == 0 ? ALIGNMENT : ROUND_UP(n, ALIGNMENT);
    size_t old_sz = large_size(p);
    if (new_sz > old_sz) {
        size_t grow = new_sz - old_sz;
        if (grow > region.large_end - large.top || !charge(grow)) {
            return 0;
        }
        if (!commit_upto(&region.large_committed, region.end, region.large_end, p + new_sz)) {
            uncharge(grow);
            return 0;
        }
    }
    else if (new_sz < old_sz) {
        uncharge(old_sz - new_sz);
        if (large.top > large.dirty) {
            large.dirty = large.top;  /* the bytes we give back were handed out */
        }
    }
    *(size_t *)(p - LARGE_HEADER) = new_sz;
    large.top = p + new_sz;
    ASSERT(large.top <= region.large_end);
    if (new_sz > old_sz) {
        area_grew(1, large.top);
        *sampled = arena_sampled_apart(a, new_sz - old_sz);
    }
    a->c.reallocs_in_place++;
    return 1;
}

/* Give back to the OS the whole pages inside [p, p + size), a large block
 * that was freed or moved: it is garbage, and its addresses are never handed
 * out again.  Counted in bytes_released. */
static void
release_pages(arena_t *a, uintptr_t p, size_t size)
{
    uintptr_t lo = ROUND_UP(p, region.page);
    uintptr_t hi = (p + size) & ~(region.page - 1);
    if (hi > lo && prim_release_pages(lo, hi - lo)) {
        a->c.bytes_released += hi - lo;
    }
}

/* reclaim "last" or "classes": give back the most recent large block (the top
 * moves back to its header). */
static NOINLINE void
large_rollback(arena_t *a, uintptr_t p)
{
    ASSERT(p == large.last);
    size_t sz = large_size(p) + LARGE_HEADER;
    if (large.top > large.dirty) {
        large.dirty = large.top;  /* calloc must clear what we hand out again */
    }
    large.top = p - LARGE_HEADER;
    large.last = 0;
    uncharge(sz);
    a->c.frees_reclaimed++;
    a->c.bytes_reclaimed += sz;
}

/* A large block freed (GIL domains): its whole pages go back to the OS, its
 * addresses are never handed out again.  Under a reclaim policy the most
 * recent large block is rolled back instead. */
static NOINLINE void
free_large(arena_t *a, uintptr_t p)
{
    ASSERT(in_large_area(p) && IS_ALIGNED(p));
    if (region.reclaim != RECLAIM_NONE && p == large.last) {
        large_rollback(a, p);
        return;
    }
    release_pages(a, p, large_size(p));
    a->c.frees_ignored++;
}
