"""The records bump_global returns: :class:`Stats` and :class:`Memory`.

Immutable, typed records built on a small base instead of dataclasses, so that
installing at start-up (``BUMP_GLOBAL=1``) imports neither dataclasses nor
typing.
"""

from __future__ import annotations

from bump_global._record import Record as _Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Optional, Tuple


class Stats(_Record):
    """What the allocator has done since it was installed (see :func:`stats`)."""

    base: int
    """Address of the region."""
    reserved: int
    """The region's size: at most this many bytes are handed out (its address
    space is twice that: a small-block area and a large-block area)."""
    used: int
    """Bytes handed out (16-byte rounded), including blocks that were freed,
    except those a ``reclaim`` policy took back."""
    consumed: int
    """Bytes of the region taken by the arenas (used plus unused chunk tails)."""
    committed: int
    """Bytes of the region readable and writable now (all of it on Linux by default)."""
    allocations: int
    """Blocks bumped: malloc, calloc and moved reallocs."""
    frees_ignored: int
    """Frees of region blocks (a no-op)."""
    foreign_frees: int
    """Frees of blocks from before the install, forwarded to the previous allocator
    (frees of fallback blocks are ``fallback_frees``)."""
    foreign_reallocs: int
    """Reallocs of blocks from before the install, forwarded to the previous allocator
    (reallocs of fallback blocks are ``fallback_reallocs``)."""
    reallocs_in_place: int
    """Reallocs of the most recent block, grown or shrunk where it stands."""
    reallocs_moved: int
    """Reallocs that took a new block and copied."""
    bytes_copied: int
    """Bytes copied by moved reallocs."""
    fallback_allocations: int
    """Allocations served by the previous allocator because the region was full."""
    fallback_bytes: int
    """Bytes of those allocations."""
    failed_allocations: int
    """Allocations refused (policy "error", or a size CPython would refuse)."""
    large_allocations: int
    """Blocks placed in the large area (MEM/OBJ blocks of 64 KiB and more)."""
    bytes_released: int
    """Bytes of pages given back to the OS: the whole pages of large blocks that were
    freed or moved."""
    bytes_prefaulted: int
    """Bytes faulted in ahead of the bump (``prefault=True``): by the prefault thread,
    or, while no core is idle, by the program itself, one chunk per call."""
    frees_reclaimed: int
    """Frees that gave their block back (``reclaim`` "last" or "classes")."""
    bytes_reclaimed: int
    """Bytes of those blocks."""
    allocations_reused: int
    """Allocations served from a size class's free list (``reclaim="classes"``)."""
    fallback_frees: int
    """Frees of fallback blocks (served by the previous allocator after the region
    filled), forwarded to the previous allocator; not in ``foreign_frees``."""
    fallback_reallocs: int
    """Reallocs of fallback blocks, forwarded to the previous allocator."""
    fallback_untracked: int
    """Fallback blocks that could not be tracked (the OS refused memory for the
    set that tracks them): their frees and reallocs count as foreign ones."""
    scope: str
    """Which allocator domains are served: "objects", "python" or "raw"."""
    on_exhausted: str
    """What happens when the region is full: "fallback" or "error"."""
    prefault: bool = False
    """Whether the prefault thread is enabled (``install(prefault=...)``)."""
    huge_pages: bool = False
    """Whether transparent huge pages were asked for (``install(huge_pages=...)``)."""
    gc: str = "keep"
    """The cyclic GC policy (``install(gc=...)``): "keep", "relaxed" or "off"."""
    reclaim: str = "none"
    """What free gives back (``install(reclaim=...)``): "none", "last" or "classes"."""
    histogram: Optional[Tuple[Tuple[int, int, int], ...]] = None
    """With ``install(histogram=True)``: ``(upper_bound, count, bytes)`` per
    power-of-two size class of the requests (malloc, calloc and realloc sizes;
    class ``2**k`` holds sizes in ``(2**(k-1), 2**k]``, class 1 the 1-byte requests,
    class 0 the 0-byte requests), non-empty classes only."""

    @property
    def address_space(self) -> int:
        """Bytes of address space reserved: the small area (with the emergency
        reserve of on_exhausted="error"), then the large area."""
        from bump_global import _core

        return 2 * self.reserved + _core.EMERGENCY_RESERVE

    def contains(self, address: int) -> bool:
        """True if `address` (e.g. ``id(obj)``) lies in the region (either area)."""
        return self.base <= address < self.base + self.address_space

    @property
    def available(self) -> int:
        """Bytes of the region never handed to an arena."""
        return self.reserved - self.consumed


class Memory(_Record):
    """Process and region memory, in bytes (see :func:`memory`)."""

    rss: int
    """Resident set size of the process now."""
    peak_rss: Optional[int]
    """Highest resident set size so far, None where unknown."""
    region_resident: Optional[int]
    """Resident bytes of the region; None if not installed or unknown here."""
