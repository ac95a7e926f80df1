"""bump_global: a process-wide bump allocator for CPython.

Call :func:`install` once, early: from then on every allocation the chosen
allocator domains make is served from one large virtual region by bumping an
offset, and freeing is a no-op.  Memory only grows, so this suits short-lived,
allocation-heavy programs and memory experiments ("what would it cost never to
free?").  :func:`stats`, :func:`memory` and :func:`report` tell what it did.
"""

from __future__ import annotations

import os
import sys
import time

from bump_global import _region
from bump_global._config import (
    DEFAULT_GC,
    DEFAULT_ON_EXHAUSTED,
    DEFAULT_RECLAIM,
    DEFAULT_SCOPE,
    DEFAULT_SIZE,
    Config,
    format_size,
    parse_size,
)
from bump_global._records import Memory, Stats

# Installing at start-up must stay cheap: nothing here imports typing at run time.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from bump_global._config import SizeLike

__all__ = [
    "BumpGlobalError",
    "Memory",
    "Stats",
    "install",
    "is_installed",
    "memory",
    "parse_size",
    "report",
    "report_dict",
    "stats",
]
__version__ = "0.1.0"


class BumpGlobalError(RuntimeError):
    """bump_global cannot do what was asked (the message says what to do)."""


def _load_core():  # type: ignore[no-untyped-def]
    """The C extension, imported on first use with a clear error if unusable."""
    if sys.implementation.name != "cpython":
        raise BumpGlobalError(
            f"bump_global needs CPython (this is {sys.implementation.name}): "
            "it replaces CPython's PyMem allocators"
        )
    try:
        from bump_global import _core as core
    except ImportError as exc:
        raise BumpGlobalError(
            f"the bump_global C extension cannot be loaded ({exc}); reinstall the "
            "package with a C compiler available: pip install --force-reinstall bump_global"
        ) from exc
    return core


def is_installed() -> bool:
    """True once :func:`install` succeeded in this process (or a parent before fork)."""
    try:
        return _load_core().config() is not None
    except BumpGlobalError:
        return False


_installed_at: Optional[float] = None  # time.perf_counter() at install


def install(
    size: SizeLike = DEFAULT_SIZE,
    scope: str = DEFAULT_SCOPE,
    on_exhausted: str = DEFAULT_ON_EXHAUSTED,
    histogram: bool = False,
    prefault: bool = True,
    huge_pages: bool = True,
    gc: str = DEFAULT_GC,
    reclaim: str = DEFAULT_RECLAIM,
) -> None:
    """Reserve the region and route CPython's allocators through it.

    `size`: bytes, or a string such as ``"512M"``, ``"4G"``, ``"64GiB"`` (binary
    units); address space is reserved, memory is only used as it is handed out.
    `scope`: ``"python"`` (RAW, MEM and OBJ domains: everything Python
    allocates), ``"objects"`` (OBJ only) or ``"raw"`` (RAW only).
    `on_exhausted`: ``"fallback"`` (the allocator that was there before serves
    what no longer fits) or ``"error"`` (the allocation fails: MemoryError).
    `histogram`: count requests per power-of-two size class (see
    :attr:`Stats.histogram`); off by default, when the hot path pays nothing.
    `prefault`: once the program has taken 32 MiB, a helper thread faults pages
    in ahead of the bump, on another core (Linux; ignored elsewhere).
    `huge_pages`: once the program has taken 32 MiB, ask for transparent huge
    pages over the region (``MADV_HUGEPAGE``, Linux): 2 MiB per page fault.
    `gc`: what to do with CPython's cyclic GC, which gives no memory back to a
    bump allocator: ``"keep"`` it as configured, ``"relaxed"`` (collections 10
    times rarer) or ``"off"`` (``gc.disable()``).
    `reclaim`: ``"none"`` (free gives nothing back: the bump allocator),
    ``"last"`` (freeing the most recent block moves the pointer back) or
    ``"classes"`` (blocks up to 32 KiB reused through size classes, like
    pymalloc); both opt-in policies apply to the MEM and OBJ domains.

    Install once, as early as possible.  Calling it again with the same
    configuration does nothing; with another raises :class:`BumpGlobalError`,
    as do conditions that would make the allocator unsafe.  Bad arguments raise
    ValueError.  There is no uninstall: the hooks stay until the process exits.
    """
    global _installed_at
    config = Config.make(size, scope, on_exhausted, histogram, prefault, huge_pages, gc,
                         reclaim)
    core = _load_core()
    current = core.config()
    if current is not None:
        have = Config.from_core(current)
        wanted = Config(_region.round_size(config.size), config.scope, config.on_exhausted,
                        config.histogram, config.prefault, config.huge_pages, config.gc,
                        config.reclaim)
        if have == wanted:
            return
        raise BumpGlobalError(
            f"bump_global is already installed with {have.describe()}; "
            f"it cannot be reinstalled with {config.describe()}: "
            "install once per process, at start-up"
        )
    _check_interpreter(config, core)
    try:
        size = _region.round_size(config.size)
        region = _region.reserve(2 * size + core.EMERGENCY_RESERVE)
    except OSError as exc:
        raise BumpGlobalError(
            f"cannot reserve a region of {format_size(config.size)} ({exc.strerror or exc}): "
            "try a smaller size (e.g. size='256M'), or raise the address-space limit (ulimit -v)"
        ) from exc
    core.install(region.mapping, region.base, size, region.committed,
                 region.commit_step,
                 config.scope_code, config.on_exhausted_code, config.histogram, config.prefault,
                 config.huge_pages, config.gc_code, config.reclaim_code)
    _installed_at = time.perf_counter()
    _apply_gc_policy(config.gc)
    if config.prefault and hasattr(os, "register_at_fork"):
        # CPython warns when fork() copies a multi-threaded process: stop the
        # prefault thread before each os.fork() (it restarts when needed).
        os.register_at_fork(before=core.prefault_stop)
    from bump_global._subinterp import install_guards

    install_guards(config.scope)


def _apply_gc_policy(policy: str) -> None:
    import gc

    if policy == "off":
        gc.disable()
    elif policy == "relaxed":
        # Ten times rarer young collections, and full ones (threshold2 is 0 where
        # the interpreter does not use it).
        young, middle, old = gc.get_threshold()
        gc.set_threshold(young * 10, middle, old * 10)


def _check_interpreter(config: Config, core) -> None:  # type: ignore[no-untyped-def]
    if core.FREE_THREADED and config.scope != "raw":
        raise BumpGlobalError(
            f"scope {config.scope!r} is not possible on a free-threaded build: its garbage "
            "collector finds objects by walking mimalloc heaps; use scope='raw'"
        )
    import _tracemalloc

    if _tracemalloc.is_tracing():
        raise BumpGlobalError(
            "tracemalloc is tracing: when it stops it would restore the allocators it saved "
            "and bump blocks would reach the old free(); install bump_global first, then "
            "start tracemalloc (do not use -X tracemalloc or PYTHONTRACEMALLOC with it)"
        )


def stats() -> Stats:
    """Counters of the installed allocator.  Raises BumpGlobalError before install."""
    core = _load_core()
    raw = core.stats()
    if raw is None:
        raise BumpGlobalError("bump_global is not installed: call bump_global.install() first")
    config = Config.from_core(core.config())
    return Stats(*raw, scope=config.scope, on_exhausted=config.on_exhausted,
                 prefault=config.prefault, huge_pages=config.huge_pages, gc=config.gc,
                 reclaim=config.reclaim, histogram=core.histogram())


def memory() -> Memory:
    """Process RSS and peak RSS (psutil), and the resident bytes of the region.

    The region figure is exact on Linux and macOS (``mincore`` over the part
    handed out); it is None before install and where the OS cannot tell.
    """
    from bump_global import _memory
    resident = _load_core().region_resident()
    rss, peak = _memory.process_rss()
    return Memory(rss=rss, peak_rss=peak, region_resident=resident)


def _wall(wall_time: Optional[float]) -> Optional[float]:
    if wall_time is None and _installed_at is not None:
        return time.perf_counter() - _installed_at
    return wall_time


def report(wall_time: Optional[float] = None) -> str:
    """A compact human table of :func:`stats` and :func:`memory`.

    `wall_time` (seconds) is shown as given; by default, the time since install.
    """
    from bump_global import _report

    return _report.format_report(stats() if is_installed() else None, memory(), _wall(wall_time))


def report_dict(wall_time: Optional[float] = None) -> Dict[str, Any]:
    """The report as a JSON-ready dict, schema ``bump_global.report/1`` (README)."""
    from bump_global import _report

    return _report.report_dict(stats() if is_installed() else None, memory(), _wall(wall_time))


def _sample() -> Tuple[int, Optional[int]]:
    """(bytes used, resident bytes of the region) in one cheap C call, for samplers.

    It allocates one small tuple; (0, None) before install.
    """
    return _load_core().sample()  # type: ignore[no-any-return]
