/*
 * core/bump.c -- the fast path: one bump of an arena.
 *
 * One comparison rejects a zero size, a size that overflows the rounding, and
 * a block that does not fit (sz - 1 wraps to SIZE_MAX for 0); for the GIL
 * arena a second, well-predicted test sends large blocks to the large area.
 * All go to the caller's cold path.  The caller holds the arena's lock (the
 * GIL, or raw_lock for the RAW arena).
 *
 * Cost: inlined into the GIL malloc hooks (obj_malloc, mem_malloc), gcc -O2
 * on x86-64, the hit is 16 instructions with no call, no atomic and no
 * register saved: load top and end, round the size (lea, and), sz - 1 (lea),
 * end - top (sub), two compare-and-branch pairs (fits, not large), top + sz
 * (add), three stores (allocations, top, last), the result (mov), ret.  A
 * miss tail-calls the cold half (malloc_cold, hooks.c) with two more.
 */

/* Bump n bytes in arena a.  1 and the block in *out if it fits, else 0. */
ALWAYS_INLINE int
bump(arena_t *a, size_t n, void **out)
{
    size_t sz = (n + (ALIGNMENT - 1)) & ~(ALIGNMENT - 1);
    uintptr_t top = a->top;
    if (likely(sz - 1 < a->end - top && (a == &raw_arena || sz < LARGE_MIN))) {
        ASSERT(IS_ALIGNED(top) && in_small_area(top) && top + sz <= a->end);
        a->top = top + sz;
        a->last = top;
        a->c.allocations++;
        *out = (void *)top;
        return 1;
    }
    return 0;
}
