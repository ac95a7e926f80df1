"""``bump_global.measure()``: what a block of code allocated, exactly, from the counters.

The installed allocator keeps process-wide counters (``_core.stats()``, one C
call).  A measurement reads them when its block starts and when it ends; its
figures are the differences, less the measurement's own work:

- The snapshot that starts a block is read *before* its tuple is built, so
  building that tuple (one tuple, and one int object per counter outside
  CPython's small-int cache) lands inside the block.  Its cost is computed
  exactly from the values it holds (``_snapshot_cost``) and taken off.
- The snapshot that ends a block is the first thing ``__exit__`` does: its
  own tuple is built after the read, outside.
- What the interpreter does between the two around an empty block (freeing
  the bound ``__enter__`` method, for one) is a constant of the interpreter,
  measured once on first use (``_calibrate``) and taken off.
- A measurement inside another (nesting, or a decorated function called in a
  measured block) takes one more snapshot before it starts and one after it
  ends, and leaves the outer one a record of its whole cost, which the outer
  one takes off when it ends (``_Entry.nested``).

So an empty block measures 0, and ``outer`` around ``inner`` around some code
measures what ``inner`` measures.  Counters are process-wide: allocations made
by other threads while the block runs are counted (as tracemalloc counts
them).
"""

from __future__ import annotations

import _thread
import sys
from _operator import add as _add
from _operator import sub as _sub

from bump_global._records import Stats

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])
    Snapshot = Tuple[int, ...]
    Figures = Tuple[int, ...]

#: The figures a measurement gives, in the order of its figures tuple.
FIGURES = (
    "allocations",
    "bytes",
    "bytes_net",
    "frees",
    "reallocs_in_place",
    "reallocs_moved",
    "bytes_copied",
    "large_allocations",
    "allocations_reused",
    "frees_reclaimed",
    "bytes_reclaimed",
    "fallback_allocations",
    "fallback_bytes",
    "failed_allocations",
    "foreign_frees",
    "foreign_reallocs",
    "samples",
)
_N = len(FIGURES)
_ZERO: Tuple[int, ...] = (0,) * _N

_i = Stats._fields.index
_USED, _ALLOC, _REUSED, _FALLBACK, _FALLBACK_BYTES = (
    _i("used"), _i("allocations"), _i("allocations_reused"), _i("fallback_allocations"),
    _i("fallback_bytes"))
_FREES_IGNORED, _FOREIGN_FREES, _FREES_RECLAIMED, _BYTES_RECLAIMED, _FALLBACK_FREES = (
    _i("frees_ignored"), _i("foreign_frees"), _i("frees_reclaimed"), _i("bytes_reclaimed"),
    _i("fallback_frees"))
_PLAIN = tuple(_i(name) for name in FIGURES[4:])  # figures that are one counter each
_SAMPLES = _i("samples")
del _i

#: The mean sampling interval of ``measure(sites=True)`` (fine: a block is short).
FINE_SITES_RATE = 64 << 10

_stats: Callable[[], Optional[Snapshot]]  # _core.stats, bound at first use
_trace_start: Callable[[], Snapshot]  # _core.trace_start, bound at first use
_trace_stop: Callable[[], Snapshot]  # _core.trace_stop, bound at first use
_live_residual: Tuple[int, int] = (0, 0)  # what an empty traced block leaves live
_sites_on: Callable[[], bool]  # _core.sites_on, bound at first use
_objects_counted = False  # the OBJ domain is served: snapshots cost allocations
_enter_residual: Figures = _ZERO  # what an empty block measures, snapshot cost aside
_nested_residual: Dict[bool, Figures] = {}  # per kind of pre-snapshot (see _calibrate)
_ready = False
_setup_lock = _thread.allocate_lock()

#: Measurements running now, process-wide, in the order they started.
_active: List[_Entry] = []


def _not_installed() -> Exception:
    from bump_global._errors import BumpGlobalError

    return BumpGlobalError(
        "bump_global.measure() reads the allocator's counters, and bump_global is not "
        "installed: call bump_global.install() first (or run with BUMP_GLOBAL=1, or "
        "pytest --bump-global)"
    )


def _delta(start: Snapshot, end: Snapshot) -> Figures:
    """The figures of the counters moving from `start` to `end` (nothing taken off)."""
    d = list(map(_sub, end, start))
    return (
        d[_ALLOC] + d[_REUSED] + d[_FALLBACK],
        d[_USED] + d[_BYTES_RECLAIMED] + d[_FALLBACK_BYTES],
        d[_USED],
        d[_FREES_IGNORED] + d[_FOREIGN_FREES] + d[_FREES_RECLAIMED] + d[_FALLBACK_FREES],
        *map(d.__getitem__, _PLAIN),
    )


def _round16(n: int) -> int:
    return (n + 15) & ~15


# Block of an int object holding a counter: one or two 30-bit digits below
# 2**60 (counters do not reach it; larger values take the exact path below).
_INT_BLOCK = _round16(sys.getsizeof(1 << 40))
_SMALL_INT_MAX = 256  # CPython caches ints -5..256: building them allocates nothing


def _snapshot_cost(snapshot: Snapshot) -> Tuple[int, int]:
    """(allocations, bytes) of building `snapshot`'s tuple after its counters were read.

    One tuple, and one int per value outside the small-int cache (counters are
    never negative); blocks are 16-byte rounded (so are the size classes up to
    512 bytes).  Nothing when the OBJ domain is not served (scope "raw").
    """
    if not _objects_counted:
        return 0, 0
    ints = sum(map(_SMALL_INT_MAX.__lt__, snapshot))
    if max(snapshot) < 1 << 60:
        return 1 + ints, _round16(sys.getsizeof(snapshot)) + ints * _INT_BLOCK
    return 1 + ints, _round16(sys.getsizeof(snapshot)) + sum(
        _round16(sys.getsizeof(value)) for value in snapshot if value > _SMALL_INT_MAX)


def _less(figures: Figures, minus: Figures) -> Figures:
    return tuple(map(_sub, figures, minus))


class _Entry:
    """One running block of a Measure: its snapshots and what nested blocks cost."""

    __slots__ = ("pre", "start", "nested", "factory")

    def __init__(self, pre: Optional[Snapshot], factory: bool) -> None:
        self.pre = pre  # read before this measurement's own machinery, if nested
        self.factory = factory  # `pre` was read by measure() itself (before the object)
        self.start: Snapshot = ()
        # Records [pre, span, end, factory] of blocks measured inside this one.
        self.nested: List[List[Any]] = []


def _finish(entry: _Entry, end: Snapshot) -> Tuple[Figures, Figures]:
    """(figures, span) of `entry`'s block.

    `span` is the counters' change less this measurement's own snapshot and
    the interpreter's constant around a block; `figures` is `span` less, in
    addition, what measurements inside it cost.  Each nested record holds its
    measurement's span, so its cost is its own machinery only: a measurement
    two levels down is taken off once, through its own record (every running
    measurement gets it), not again through its parent's.
    """
    count, size = _snapshot_cost(entry.start)
    span = _less(_delta(entry.start, end), _enter_residual)
    span = (span[0] - count, span[1] - size, span[2] - size, *span[3:])
    figures = span
    for pre, inner_span, after, factory in entry.nested:
        # From its first snapshot to its last, less its span; plus building its
        # last snapshot, and what the interpreter does around it outside those
        # two (a calibrated constant).
        cost = tuple(map(_add, _less(_delta(pre, after), inner_span),
                         _nested_residual[factory]))
        count, size = _snapshot_cost(after)
        figures = _less(figures, cost)
        figures = (figures[0] - count, figures[1] - size, figures[2] - size, *figures[3:])
    return figures, span


class Measure:
    """What a block allocated through bump_global's domains (see :func:`measure`).

    A context manager (``with measure() as m``) and a decorator (``@measure()``:
    each call is measured; the object holds the figures of the latest call).
    The figures are set when a block ends; reading one before raises
    :class:`AttributeError`.
    """

    __slots__ = ("_figures", "_entries", "_pre", "_factory", "calls", "_rate", "_restore",
                 "_first", "_last", "_sampled", "_live", "_live_figures")

    def __init__(self, sites: Any = None, live: bool = False) -> None:
        self._figures: Optional[Figures] = None
        self._entries: List[_Entry] = []
        self._pre: Optional[Snapshot] = None
        self._factory = False
        #: Blocks measured so far by this object (calls, as a decorator).
        self.calls = 0
        self._rate: Optional[int] = _sites_rate(sites)
        self._restore: Any = None  # how to put sampling back when the block ends
        self._first = self._last = 0  # the block's samples: sequence numbers [first, last)
        self._sampled = False  # sampling was on when the block started
        self._live = bool(live)  # trace the blocks still live (core/trace.c)
        self._live_figures: Optional[Tuple[int, int]] = None

    def __enter__(self) -> Measure:
        if not _ready:
            _setup()
        pre = self._pre
        factory = self._factory
        if pre is not None:
            self._pre = None
            self._factory = False
        elif _active:
            pre = _stats()
        if self._rate is not None:  # between the snapshots: the measurement's own cost
            from bump_global import _sites

            self._restore = _sites.sample_for_a_while(self._rate)
        self._sampled = _sites_on()  # a bool: nothing allocated
        entry = _Entry(pre, factory)
        self._entries.append(entry)
        _active.append(entry)
        # last: its tuple is taken off (trace_start reads the counters, then traces)
        entry.start = _trace_start() if self._live else _stats()  # type: ignore[assignment]
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        end = _trace_stop() if self._live else _stats()  # first: nothing here is counted
        if self._live:
            count, size = end[-2:]  # type: ignore[index]
            self._live_figures = (count - _live_residual[0], size - _live_residual[1])
            end = end[:-2]  # type: ignore[index]
        entry = self._entries.pop()
        figures, span = _finish(entry, end)  # type: ignore[arg-type]
        self._figures = figures
        self._first, self._last = entry.start[_SAMPLES], end[_SAMPLES]  # type: ignore[index]
        self.calls += 1
        if self._restore is not None:
            restore, self._restore = self._restore, None
            restore()
        position = _active.index(entry)
        del _active[position]
        pre = entry.pre
        if position and pre is not None:
            # Measurements started before this one see its whole cost: leave
            # each a record to take off, completed by a last snapshot.
            record = [pre, span, None, entry.factory]
            for outer in _active[:position]:
                outer.nested.append(record)
            entry = end = pre = figures = span = None  # type: ignore[assignment]  # freed now
            record[2] = _stats()  # last

    def __call__(self, func: F) -> F:
        """Decorate `func`: each call is measured, as a ``with`` block around it."""
        import functools

        @functools.wraps(func)
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        measured.measure = self  # type: ignore[attr-defined]
        return measured  # type: ignore[return-value]

    def _get(self, index: int) -> int:
        figures = self._figures
        if figures is None:
            raise AttributeError(
                f"{FIGURES[index]}: this measurement has not finished a block yet (the "
                "figures are set when the with block ends or the decorated function returns)"
            )
        return figures[index]

    @property
    def allocations(self) -> int:
        """Blocks handed out: bumped, served again from a free list, or by the fallback."""
        return self._get(0)

    @property
    def bytes(self) -> int:
        """Bytes handed out, in the allocator's blocks (16-byte rounded, or the size class
        under reclaim="classes"; a large block with its 16-byte header), net of blocks
        resized in place; every allocation counts under every reclaim policy."""
        return self._get(1)

    @property
    def bytes_net(self) -> int:
        """Change of the region's used bytes: :attr:`bytes` less what a reclaim policy took
        back during the block (equal to :attr:`bytes` under reclaim="none")."""
        return self._get(2)

    @property
    def frees(self) -> int:
        """Frees: ignored (the bump allocator), reclaimed, or forwarded (blocks from
        before the install, or served by the fallback)."""
        return self._get(3)

    @property
    def reallocs_in_place(self) -> int:
        """Reallocs of the most recent block, resized where it stands."""
        return self._get(4)

    @property
    def reallocs_moved(self) -> int:
        """Reallocs that took a new block (counted in :attr:`allocations`) and copied."""
        return self._get(5)

    @property
    def bytes_copied(self) -> int:
        """Bytes copied by moved reallocs."""
        return self._get(6)

    @property
    def large_allocations(self) -> int:
        """Blocks of 64 KiB and more (MEM/OBJ), placed in the large area."""
        return self._get(7)

    @property
    def allocations_reused(self) -> int:
        """Of :attr:`allocations`, those served from a free list (reclaim="classes")."""
        return self._get(8)

    @property
    def frees_reclaimed(self) -> int:
        """Of :attr:`frees`, those that gave their block back (reclaim "last"/"classes")."""
        return self._get(9)

    @property
    def bytes_reclaimed(self) -> int:
        """Bytes of those blocks."""
        return self._get(10)

    @property
    def fallback_allocations(self) -> int:
        """Of :attr:`allocations`, those served by the previous allocator (region full)."""
        return self._get(11)

    @property
    def fallback_bytes(self) -> int:
        """Bytes requested by those (counted in :attr:`bytes` as requested, unrounded)."""
        return self._get(12)

    @property
    def failed_allocations(self) -> int:
        """Allocations refused (on_exhausted="error", or a size CPython would refuse)."""
        return self._get(13)

    @property
    def foreign_frees(self) -> int:
        """Of :attr:`frees`, frees of blocks from before the install (forwarded)."""
        return self._get(14)

    @property
    def foreign_reallocs(self) -> int:
        """Reallocs of blocks from before the install (forwarded)."""
        return self._get(15)

    @property
    def samples(self) -> int:
        """Allocations sampled during the block (with sites on): what :meth:`sites`
        reads."""
        return self._get(16)

    def _live_figure(self, index: int, name: str) -> int:
        self._get(0)  # the block must have ended
        if self._live_figures is None:
            raise AttributeError(f"{name}: measure(live=True) traces the blocks that stay "
                                 "live; this measurement did not")
        return self._live_figures[index]

    @property
    def allocations_live(self) -> int:
        """With ``measure(live=True)``: the blocks allocated in the block and still live
        at its end (neither freed nor reallocated)."""
        return self._live_figure(0, "allocations_live")

    @property
    def bytes_live(self) -> int:
        """With ``measure(live=True)``: their requested bytes, as tracemalloc counts
        them (its ``get_traced_memory()[0]`` after the block, less before, when it
        traces from the block's start)."""
        return self._live_figure(1, "bytes_live")

    def sites(self, n: int = 10) -> List[Dict[str, Any]]:
        """Where the block's bytes came from: its `n` top allocation sites, estimated
        from the samples taken during the block (``install(sites=True)``, or
        ``measure(sites=True)`` for this block alone).  Each is a dict: function,
        file, line, bytes, allocations (estimates), share of the block's sampled
        bytes, callers (innermost first).  Empty when the block took no sample (it
        allocated less than about one sampling interval)."""
        self._get(0)  # the block must have ended
        from bump_global import _sites

        found = _sites.measured(self._first, self._last) if self._sampled else None
        if found is None:
            from bump_global._errors import BumpGlobalError

            raise BumpGlobalError(
                "m.sites() reads allocation samples, and none were taken during this block: "
                "install with sites=True (or --sites, BUMP_GLOBAL_SITES=1), or measure the "
                "block with bump_global.measure(sites=True)")
        return _sites.top_sites(found, n)

    def as_dict(self) -> Dict[str, int]:
        """The figures by name, in the order of :data:`FIGURES`."""
        return {name: self._get(i) for i, name in enumerate(FIGURES)}

    def __repr__(self) -> str:
        if self._figures is None:
            return "Measure(<not finished>)"
        return "Measure(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


def _sites_rate(sites: Any) -> Optional[int]:
    """measure()'s `sites` argument as a mean sampling interval, or None."""
    if sites is None or sites is False:
        return None
    if sites is True:
        return FINE_SITES_RATE
    from bump_global._config import parse_bytes

    return parse_bytes(sites, "sites rate", 1)


def measure(sites: Any = None, live: bool = False) -> Measure:
    """Measure exactly what a block allocates through bump_global's domains.

    ``with bump_global.measure() as m: ...`` then ``m.allocations``, ``m.bytes``,
    ``m.frees``, ``m.reallocs_moved``, ``m.bytes_copied`` and the other figures
    of :class:`Measure`.  As a decorator, ``@bump_global.measure()`` measures
    each call (the figures of the latest one on ``func.measure``).

    The figures come from the allocator's process-wide counters: other
    threads' allocations during the block are counted.  The measurement's own
    allocations are not: an empty block measures 0.  Measurements nest: an
    outer one counts what the inner block did, not the inner measurement.
    Every reclaim policy counts every allocation (reused blocks too).

    `sites`: sample the block's allocations so that ``m.sites(n)`` can say where
    its bytes came from: True (every 64 KiB on average, the block alone), or a
    mean interval (``"16K"``); by default the process's own sampling
    (``install(sites=True)``), if any.  Sampling allocates nothing from the
    region: the figures are the same with it.  Under an outer measurement, turning
    sampling on and off is the inner measurement's cost, taken off the outer one.

    `live`: also trace which of the block's blocks are still live at its end
    (``m.bytes_live``, ``m.allocations_live``, comparable with tracemalloc's
    ``get_traced_memory()``).  Exact, and not free: while the block runs every
    allocation and free also updates a map (about tracemalloc's cost, without its
    stacks); the other figures are the same with it.

    Raises BumpGlobalError when the block starts if bump_global is not installed.
    """
    pre = _stats() if _active else None  # first: the Measure object is nested cost
    m = Measure(sites, live)
    if pre is not None:
        m._pre = pre
        m._factory = True
    return m


def _setup() -> None:
    """On first use: bind the counters, check the install, measure the residuals."""
    global _stats, _trace_start, _trace_stop, _sites_on, _objects_counted, _ready
    with _setup_lock:
        if _ready:
            return
        from bump_global._config import Config
        from bump_global._errors import load_core

        core = load_core()
        raw_config = core.config()
        if raw_config is None:
            raise _not_installed()
        _stats = core.stats
        _trace_start, _trace_stop = core.trace_start, core.trace_stop
        _sites_on = core.sites_on
        _objects_counted = Config.from_engine(raw_config).scope != "raw"
        _calibrate()
        _ready = True


def _smallest(runs: List[Measure]) -> Figures:
    """Each figure's smallest value over `runs` (a collection only ever adds)."""
    return tuple(min(run._figures[i] for run in runs) for i in range(_N))  # type: ignore[index]


def _calibrate() -> None:
    """What the interpreter does around an empty block, once per process.

    Three runs of each shape (the first runs create per-code caches, such as
    3.9's frame objects; the cyclic GC may run in one), the smallest figure of
    each kind kept.  Shapes: an empty block; an empty block inside another,
    its Measure made by measure() inside the outer block (factory) or before it.
    """
    global _enter_residual, _live_residual
    global _ready
    _ready = True  # the runs below use the normal path
    _enter_residual = _ZERO
    _live_residual = (0, 0)
    _nested_residual[True] = _nested_residual[False] = _ZERO
    kept: List[Measure] = []  # no block may free an earlier run's objects
    try:
        for _ in range(4):
            with measure() as m:
                pass
            kept.append(m)
        _enter_residual = _smallest(kept)
        traced = []  # what stays live around an empty traced block (its own bound method)
        for _ in range(4):
            with measure(live=True) as m:
                pass
            traced.append(m._live_figures or (0, 0))
        _live_residual = (min(f[0] for f in traced), min(f[1] for f in traced))
        for factory in (True, False):
            kept = []
            for _ in range(4):
                if factory:
                    with measure() as outer:
                        with measure() as inner:
                            pass
                else:
                    inner = Measure()
                    with measure() as outer:
                        with inner:
                            pass
                kept.append(outer)
                kept.append(inner)
            _nested_residual[factory] = _smallest(kept[::2])
    finally:
        _ready = False
