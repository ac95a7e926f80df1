/*
 * core/reclaim_last.c -- reclaim="last" (MEM/OBJ only), bumpalo's rule:
 * freeing the most recent block of the GIL arena or of the large area moves
 * the top back to it.  One level: afterwards the arena knows no "last" block
 * until the next allocation.  Only free differs from the default hooks.  With
 * sites on, a rollback also moves the sampling point back (sampling.c), so a
 * loop that allocates and frees the same block still reaches it.
 */

/* Under the GIL.  The arena's `last` is 0 once rolled back, so a second free
 * of the same pointer cannot roll back twice. */
ALWAYS_INLINE void
hook_free_last(const domain_t *d, void *p)
{
    arena_t *a = d->arena;
    uintptr_t addr = (uintptr_t)p;
    if (likely(in_region(p))) {
        if (addr == a->last) {
            ASSERT(addr < a->top && a->top <= a->chunk_end);
            if (a->top > a->dirty) {
                a->dirty = a->top;
            }
            size_t back = a->top - addr;
            a->c.frees_reclaimed++;
            a->c.bytes_reclaimed += back;
            a->top = addr;
            a->last = 0;
            if (unlikely(sampling.on)) {
                arena_gave_back(a, back);  /* the bytes will be handed out again */
            }
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

#define DEFINE_LAST_HOOKS(name, dom)                                           \
    static void name##_free_last(void *ctx, void *p)                           \
    { (void)ctx; hook_free_last(&dom, p); }

DEFINE_LAST_HOOKS(mem, mem_dom)
DEFINE_LAST_HOOKS(obj, obj_dom)
