/*
 * bump_global/_core.c -- the hot path of bump_global: CPython allocator hooks
 * that serve every allocation by bumping a pointer through one large region.
 *
 * One translation unit: this file keeps the design and #includes the parts in
 * bump_global/core/, each with one job (the list is at the bottom), so every
 * function stays static and the hot hooks inline as in a single file.
 *
 * Design
 * ======
 *
 * The region.  Python reserves one virtual region once per process
 * (bump_global/_region.py) and hands it to install() below.  It is never
 * unmapped: install() holds a buffer export on the mmap object that maps it
 * for the life of the process, so neither close() nor interpreter shutdown
 * can tear it down.  It spans 2 * size + EMERGENCY_RESERVE bytes of address
 * space, two areas: the small area [base, end), size + EMERGENCY_RESERVE
 * bytes (the whole budget plus the emergency reserve), and the large area
 * [end, large_end), size bytes; together they hand out at most `size` bytes
 * (the `charged` counter, moved by atomics in cold paths only), or
 * size + EMERGENCY_RESERVE once the reserve was released.  Where the platform
 * needs it (Windows, or Linux in strict overcommit mode) each area is committed
 * in steps of `commit_step` by the cold path (commit_upto).  Memory that has
 * never been handed out is zero (fresh anonymous pages).
 *
 * Chunks and arenas.  One global `cursor` consumes the region from the low end.
 * It only moves forward, by compare-and-swap, in cold paths.  Two arenas take
 * chunks from it and bump through them:
 *   - the GIL arena serves the MEM and OBJ domains.  In a default (GIL) build
 *     CPython calls those with the GIL held, and the GIL serialises every access
 *     to this arena: its fast path is plain loads and stores, no atomics.
 *   - the RAW arena serves the RAW domain, which CPython calls without the GIL
 *     from any thread.  A mutex guards it (uncontended: ~20 ns); RAW traffic is a
 *     small fraction of all allocations.  pthread_atfork keeps the mutex usable
 *     in a child of fork().
 * An arena whose chunk ends at the cursor extends it in place, so with one busy
 * arena the small area is one contiguous run.  When the other arena took the next
 * chunk meanwhile, the rest of the current chunk is abandoned (counted as
 * waste) and a new chunk starts at the cursor.  Because every byte below the
 * cursor belongs to some chunk and is committed before the cursor moves past
 * it, [base, cursor) is always safe to read.
 *
 * The large area.  MEM/OBJ blocks of LARGE_MIN bytes and more are bumped there
 * (under the GIL), each after a 16-byte header holding its size (core/large.c).  The blocks
 * that grow (list items, bytearrays, strings being built) are then usually the
 * most recent block of their area and grow in place, instead of being copied
 * over and over past the small objects created meanwhile.  When a large block
 * does move, exactly its bytes are copied and its whole pages are given back
 * to the OS (MADV_DONTNEED): it is garbage, and its addresses are never handed
 * out again, so this is no reuse.
 *
 * Alignment.  Every block is a multiple of 16 bytes and starts 16-aligned (the
 * region base is page aligned), as pymalloc gives on 64-bit builds.
 * malloc(0) takes a 16-byte block, so it is unique and non-NULL.
 *
 * Free.  A pointer inside the region: nothing to do (counted), except that a
 * large block's whole pages go back to the OS (MADV_DONTNEED, as for a moved
 * one): its addresses are never handed out again, but a program that frees
 * its big buffers does not keep them resident.  NULL: nothing.  Anything else
 * predates the install (foreign_frees) or came from a fallback
 * (fallback_frees) and goes to the free of the allocator that was installed
 * before us, saved per domain.
 *
 * Realloc.  NULL is malloc.  A pointer outside the region goes to the saved
 * previous realloc.  The most recent block of the calling domain's arena (or
 * of the large area) grows or shrinks in place (extending the chunk when it
 * ends at the cursor).  Any other block moves.  Small blocks keep no header, so
 * their old size is unknown and we copy min(new size, cursor - p, q - p)
 * bytes: everything the old block can hold, never a byte outside the used part
 * of the region, never a byte of the new block q itself.  The tail we copy
 * may be other blocks' bytes (the caller ignores them); reading them is a
 * benign race with RAW threads writing their own blocks.  If the new block cannot be had, NULL is returned and the old block
 * stays valid (we never free it).
 *
 * Calloc.  Checks nelem * elsize for overflow.  Memory above an arena's `dirty`
 * mark has never been handed out and is already zero: only a block that
 * starts below it (possible after an in-place shrink moved `top` back) is
 * cleared, and only the part below the mark.
 *
 * Exhaustion.  Policy "fallback": the allocator saved at install serves the
 * request (counted); its pointers are outside the region, so free/realloc
 * forward them correctly, and counted apart from those of blocks from before
 * the install (a set of live fallback blocks, core/fallback.c).  While the
 * report guard is on (report_guard(True)), every policy falls back, so a
 * report can still run in a full region.  Policy "error": the first request
 * that fails because the region is full returns NULL -- the program's
 * MemoryError, whatever its size -- and releases an emergency reserve of
 * EMERGENCY_RESERVE bytes beyond `size` (room the small area keeps for it) for
 * the unwinding that follows.  After that no request the reserve could serve
 * fails: the previous allocator serves it, up to an allowance, and past that
 * the process ends with one line.  A second MemoryError inside the unwinding
 * is one CPython does not always survive: core/exhausted.c says where it loops
 * or waits forever.
 *
 * Reclaim (opt-in, MEM/OBJ only; RAW never reclaims).  The default, "none",
 * is the mission: free gives nothing back.  Two other policies trade that for
 * speed and memory on programs that churn, each a separate set of hooks, so
 * the default hot path pays nothing for them:
 *   - "last" (bumpalo's rule): freeing the most recent block of the GIL arena
 *     or of the large area moves the top back to it.  One level: afterwards
 *     the arena knows no "last" block until the next allocation.
 *   - "classes" (the slab pattern, as pymalloc's pools): requests up to
 *     CLASS_MAX bytes are rounded to one of NCLASSES - 1 size classes; each
 *     class bumps through pages of CLASS_PAGE bytes that hold only its blocks,
 *     each page with a free list threaded through its free blocks' first word
 *     and a count of its live blocks; a page whose blocks are all freed goes
 *     to any class that needs a page (as pymalloc's empty pools do).  A
 *     block's class comes from its address: class_map has one byte per
 *     CLASS_PAGE of the small area (0: not a class page), so there are no
 *     headers.  A freed large block is rolled back if it is the last, else
 *     its whole pages go back to the OS (addresses are still never reused).
 *     calloc clears blocks taken from a free list and blocks bumped from a
 *     page that held other blocks before; a fresh page is zero.
 * (core/reclaim_last.c, core/reclaim_classes.c.)
 * Reclaimed blocks count in frees_reclaimed/bytes_reclaimed, and those served
 * again from a free list in allocations_reused (each class counts its own
 * pushes and pops, on its own cache line; stats() sums them); `used` leaves
 * them out.
 *
 * Installing (core/install.c).  Our functions ignore `ctx`; each finds its domain's state in a
 * static.  We install them with the previous allocator's ctx, so a thread that
 * reads a mix of old and new fields of the struct (CPython reads it without a
 * lock) still passes the right ctx to the previous functions.  RAW is installed
 * in two steps: first free/realloc (which forward foreign pointers), then
 * malloc/calloc, so no thread can hand a region pointer to the old free.
 *
 * Free-threaded builds (Py_GIL_DISABLED): MEM/OBJ are neither serialised nor
 * replaceable (the GC walks mimalloc heaps), so only the RAW domain is offered.
 *
 * Counters are plain integers in the GIL arena; in the RAW arena they are
 * updated under the mutex (allocations, reallocs) or atomically outside it
 * (frees, foreign and fallback traffic: the COUNT macro); stats() adds them
 * up.  bytes_released counts the pages of freed and of moved large blocks.
 *
 * Sites (opt-in: where the bytes come from).  Every stream of bytes handed out
 * is cut at random points, on average every `mean` bytes (core/sampling.c).
 * The bump fast path pays nothing for it: an arena's limit is the nearer of
 * its chunk's end and its next sampling point, so the allocation that reaches
 * the point takes the cold path, which records its size and the calling
 * thread's Python stack (core/frames.c, read as tracemalloc does, without
 * allocating) as a record in a stream (core/sites.c).  Python weighs each
 * sample by the inverse of its probability, so the totals per site are
 * unbiased estimates.  reclaim="classes" has no limit to borrow: it gets
 * count-down hooks while sampling is on (core/domains.c swaps them).
 *
 * The recorder (core/recorder.c, Linux).  A process that is killed, or ended by
 * SIGTERM as Pool ends its workers, runs no exit handler, so its figures would
 * be lost.  A native thread per process rewrites a snapshot of its figures in a
 * file its session reads, appends the timeline, and writes out the sites'
 * records; a SIGTERM handler, installed only where SIGTERM had its default
 * action, writes a last snapshot and re-raises.  It never takes the GIL nor
 * raw_lock, and never allocates from the region.
 *
 * Tracing (core/trace.c, opt-in: measure(live=True)).  While a traced
 * measurement runs, hooks that wrap the installed ones keep every block in a
 * pointer map (core/ptrmap.c), so the blocks still live at its end are known
 * exactly.  Off, the default hooks are installed and it costs nothing.
 *
 * Prefaulting and huge pages (opt-in, Linux): see core/prefault.c.
 *
 * The parts, in the order they are included (each may use those above it):
 *   core/internal.h        compiler shim, constants, types, shared state,
 *                          COUNT, ASSERT (Py_DEBUG), mul_overflows
 *   core/prim_posix.c      OS primitives (or core/prim_windows.c): commit,
 *                          page release, residency, huge pages, populate,
 *                          OS memory, locks, threads, fork handlers.  The
 *                          only files with platform #ifs.
 *   core/prefault.c        the prefault thread, huge pages (area_grew)
 *   core/budget.c          the budget the processes of a program share
 *   core/sampling.c        where the next allocation sample falls (sites):
 *                          the bump arenas' limit, the classes' byte count
 *   core/region.c          the locks, the budget, commits, chunks (arena_refill)
 *   core/bump.c            the fast path: one bump
 *   core/large.c           the large area; release_pages
 *   core/ptrmap.c          a map from pointers (fallback.c, trace.c)
 *   core/fallback.c        the set of live fallback blocks
 *   core/exhausted.c       the on_exhausted policy and the report guard
 *   core/frames.c          the calling thread's Python stack, read without
 *                          allocating (the only CPython-version #ifs)
 *   core/sites.c           what a sample records, and the stream of records
 *   core/hooks.c           malloc, calloc, realloc, free, generic over the domain
 *   core/reclaim_last.c    reclaim="last"
 *   core/reclaim_classes.c reclaim="classes"
 *   core/trace.c           measure(live=True): the blocks still live, traced
 *                          by hooks that wrap the installed ones (opt-in)
 *   core/domains.c         one set of hooks per domain; the choice at install
 *   core/histogram.c       the size histogram hooks and histogram()
 *   core/install.c         install(), fork handlers, buffer_address()
 *   core/stats.c           config(), stats(), sample(), region_resident()
 *   core/recorder.c        a process's recorder thread: its figures, timeline
 *                          and samples kept in files its session reads
 *   core/module.c          the method table and PyInit__core
 */
#include "core/internal.h"
#ifdef _WIN32
#  include "core/prim_windows.c"
#else
#  include "core/prim_posix.c"
#endif
#include "core/prefault.c"
#include "core/budget.c"
#include "core/sampling.c"
#include "core/region.c"
#include "core/bump.c"
#include "core/large.c"
#include "core/ptrmap.c"
#include "core/fallback.c"
#include "core/exhausted.c"
#include "core/frames.c"
#include "core/sites.c"
#include "core/hooks.c"
#include "core/reclaim_last.c"
#include "core/reclaim_classes.c"
#include "core/trace.c"
#include "core/domains.c"
#include "core/histogram.c"
#include "core/install.c"
#include "core/stats.c"
#include "core/recorder.c"
#include "core/module.c"
