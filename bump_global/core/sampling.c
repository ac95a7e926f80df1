/*
 * core/sampling.c -- where the next allocation sample falls (the sites
 * feature: `install(sites=True)`); what a sample records is core/sites.c.
 *
 * Sampling by bytes.  Each stream of bytes handed out -- the GIL arena with the
 * large area, the RAW arena, the size classes of reclaim="classes" -- is cut
 * by a Poisson process whose intervals are exponential with mean
 * `sampling.mean` bytes (tcmalloc's and Go's scheme: periodic allocation
 * patterns cannot alias with it).  An allocation of s bytes holds a sampling
 * point with probability 1 - exp(-s / mean); the sample of such an allocation
 * weighs s / (1 - exp(-s / mean)) bytes and 1 / (1 - exp(-s / mean))
 * allocations, which makes every estimated total unbiased (pprof's rule; the
 * record keeps s and the mean, Python computes the weights).  After a sampled
 * allocation the next point lies an exponential interval past its end (the
 * process is memoryless).
 *
 * No cost on the bump fast path.  A bump arena's limit `end` is the nearer of
 * its chunk's end (`chunk_end`) and its next point (`sample_at`): the
 * allocation that reaches the point misses the fast path as one that reaches
 * the chunk's end does, and the cold path takes the sample (arena_sampled).
 * The point is an address of the arena (>= top); when the arena moves to a new
 * chunk, the point keeps its distance from `top` (region.c).  Bytes handed
 * out elsewhere on the arena's stream (the large area; a block grown in place)
 * move the point closer by their size (arena_sampled_apart); bytes given back
 * where they can be handed out again (an in-place shrink, reclaim="last")
 * move it back (arena_gave_back), so a churning loop still reaches it.
 * reclaim="classes" has no byte limit to borrow (a pop from a free list
 * compares with nothing): its sampling hooks, installed only while sampling is
 * on, count bytes down in `classes_left` (reclaim_classes.c).
 *
 * Locks: a bump arena's point and random state are guarded by the arena's
 * lock (the GIL; raw_lock), `classes_left` by the GIL.  `sampling.on` and
 * `sampling.mean` change only with the GIL and raw_lock held (sites.c), so
 * every reader holds one of them.  Cost when on: one miss per sample, and an
 * interval (a log) per sample.
 */
#include <math.h>

static struct {
    int on;               /* sampling points are armed */
    double mean;          /* mean bytes between two points */
    int64_t classes_left; /* reclaim="classes": bytes before the next point */
    uint64_t classes_rng;
} sampling;

/* A uniform double in (0, 1] from xorshift64* state *s (never 0 once seeded). */
static double
sampling_uniform(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)(((x * 0x2545F4914F6CDD1DULL) >> 11) + 1) * (1.0 / 9007199254740992.0);
}

/* Bytes to the next point: exponential with mean sampling.mean. */
static uint64_t
sampling_interval(uint64_t *rng)
{
    double bytes = -log(sampling_uniform(rng)) * sampling.mean;
    return bytes < 9.0e18 ? (uint64_t)bytes : (uint64_t)9.0e18;
}

/* A state for xorshift64*, different per arena, process and call. */
static uint64_t
sampling_seed(const void *salt)
{
    uint64_t s = prim_now_ns() ^ (prim_pid() << 32) ^ (uint64_t)(uintptr_t)salt;
    s ^= s >> 31;
    s *= 0x9E3779B97F4A7C15ULL;
    return s ? s : 1;
}

/* The fast path's limit: the chunk's end, or the next point if nearer.  Only
 * the two bump arenas sample (class_arena carves pages for the classes). */
ALWAYS_INLINE void
arena_limit(arena_t *a)
{
    a->end = sampling.on && (a == &gil_arena || a == &raw_arena) &&
             a->sample_at < a->chunk_end ? a->sample_at : a->chunk_end;
}

/* Bytes [top, top + sz) of arena a were just handed out: sz if they hold the
 * next point (the next one is then drawn past them), else 0.  Under the
 * arena's lock. */
ALWAYS_INLINE size_t
arena_sampled(arena_t *a, uintptr_t top, size_t sz)
{
    if (!sampling.on) {
        return 0;
    }
    size_t hit = 0;
    if (top + sz > a->sample_at) {
        hit = sz;
        a->sample_at = top + sz + sampling_interval(&a->rng);
    }
    arena_limit(a);
    return hit;
}

/* sz bytes of arena a's stream were handed out elsewhere (a large block, a
 * block grown in place): sz if they hold the next point, else the point comes
 * sz bytes closer.  Under the arena's lock. */
ALWAYS_INLINE size_t
arena_sampled_apart(arena_t *a, size_t sz)
{
    if (!sampling.on) {
        return 0;
    }
    size_t hit = 0;
    if (sz > a->sample_at - a->top) {
        hit = sz;
        a->sample_at = a->top + sampling_interval(&a->rng);
    }
    else {
        a->sample_at -= sz;
    }
    arena_limit(a);
    return hit;
}

/* top moved back by k bytes that will be handed out again: the point moves
 * back too (it stays at its distance from what is still to be handed out). */
static NOINLINE void
arena_gave_back(arena_t *a, size_t k)
{
    a->sample_at -= k;
    arena_limit(a);
}

/* Arm (mean > 0) or disarm (mean == 0) arena a's point.  Under its lock. */
static void
arena_arm(arena_t *a, double mean)
{
    if (mean > 0) {
        if (a->rng == 0) {
            a->rng = sampling_seed(a);
        }
        a->sample_at = a->top + sampling_interval(&a->rng);
    }
    arena_limit(a);
}

/* In a child of fork(): new random states (parent and child would otherwise
 * sample the same points). */
static void
sampling_atfork_child(void)
{
    gil_arena.rng = sampling_seed(&gil_arena);
    raw_arena.rng = sampling_seed(&raw_arena);
    sampling.classes_rng = sampling_seed(&sampling);
}
