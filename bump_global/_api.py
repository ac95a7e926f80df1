"""The body of the bump_global package: install(), stats(), memory(), report()...

``bump_global/__init__.py`` is thin and loads this module on first use of any of
these names, so that ``BUMP_GLOBAL=1`` start-up (bump_global/_startup.py), which
installs through the C core directly, does not pay for it.  The public names say
``bump_global`` as their module.
"""

from __future__ import annotations

import os
import sys
import time

from bump_global import _region, _startup
from bump_global._config import (
    DEFAULT_GC,
    DEFAULT_ON_EXHAUSTED,
    DEFAULT_RECLAIM,
    DEFAULT_SCOPE,
    DEFAULT_SIZE,
    Config,
    default_size,
    format_size,
    parse_size,
)
from bump_global._records import Memory, Stats

# Nothing here imports typing at run time.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from bump_global._config import SizeLike

#: What bump_global/__init__.py takes from here (the public names of this module).
__all__ = [
    "BumpGlobalError",
    "install",
    "installed_config",
    "is_installed",
    "memory",
    "parse_size",
    "report",
    "report_dict",
    "stats",
]


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


def install(
    size: SizeLike = DEFAULT_SIZE,
    scope: str = DEFAULT_SCOPE,
    on_exhausted: str = DEFAULT_ON_EXHAUSTED,
    histogram: bool = False,
    prefault: bool = True,
    huge_pages: bool = False,
    gc: str = DEFAULT_GC,
    reclaim: str = DEFAULT_RECLAIM,
    numpy: bool = False,
) -> None:
    """Reserve the region and route CPython's allocators through it.

    `size`: the budget, bytes or a string such as ``"512M"``, ``"4G"``,
    ``"64GiB"`` (binary units); by default (``"auto"``) half of the machine's
    physical memory (or of its cgroup's limit, if lower), so that a program
    that never frees reaches the fallback before the machine runs out.
    Address space is reserved, memory is only used as it is handed out.
    `scope`: ``"python"`` (RAW, MEM and OBJ domains: everything Python
    allocates), ``"objects"`` (OBJ only) or ``"raw"`` (RAW only).
    `on_exhausted`: ``"fallback"`` (the allocator that was there before serves
    what no longer fits) or ``"error"`` (the allocation fails: MemoryError).
    `histogram`: count requests per power-of-two size class (see
    :attr:`Stats.histogram`); off by default, when the hot path pays nothing.
    `prefault`: once the program has taken 32 MiB, a helper thread faults pages
    in ahead of the bump, on another core, while a core is idle; when none is,
    the program populates each new chunk in one call (Linux; ignored elsewhere).
    `huge_pages`: once the program has taken 32 MiB, ask for transparent huge
    pages over the region (``MADV_HUGEPAGE``, Linux): 2 MiB per page fault.  Off
    by default: what they cost depends on what ran before (the kernel compacts
    memory for them), 1.3x the CPU of 4 KiB pages in shuffled runs here.
    `gc`: what to do with CPython's cyclic GC, which gives no memory back to a
    bump allocator: ``"keep"`` it as configured, ``"relaxed"`` (collections 10
    times rarer) or ``"off"`` (``gc.disable()``).
    `reclaim`: ``"none"`` (free gives nothing back: the bump allocator),
    ``"last"`` (freeing the most recent block moves the pointer back) or
    ``"classes"`` (blocks up to 64 KiB reused through size classes, like
    pymalloc); both opt-in policies apply to the MEM and OBJ domains.
    `numpy`: serve numpy's array data from the region too (a NEP 49 data
    handler, numpy 1.22+, set now or when numpy is imported; arrays made
    before keep numpy's handler); the report counts array bytes exactly.

    Install once, as early as possible.  Calling it again with the same
    configuration does nothing; with another raises :class:`BumpGlobalError`,
    as do conditions that would make the allocator unsafe.  Bad arguments raise
    ValueError.  There is no uninstall: the hooks stay until the process exits.
    """
    _install(Config.make(size, scope, on_exhausted, histogram, prefault, huge_pages, gc,
                         reclaim, numpy), "api")


def _install(config: Config, source: str) -> None:
    """install() of a validated `config`; messages spell options as `source` does
    ("api": ``size='4G'``, "env": ``BUMP_GLOBAL_SIZE='4G'``, "cli": ``--size '4G'``)."""
    core = _load_core()
    current = core.config()
    size = _region.round_size(config.size)
    if current is not None:
        have = installed_config()
        if have == config.replace(size=size):
            return
        raise BumpGlobalError(
            f"bump_global is already installed with {have.describe(source)}; "
            f"it cannot be reinstalled with {config.describe(source)}: "
            "install once per process, at start-up"
        )
    _check_interpreter(config, core)
    if config.numpy:
        _check_numpy(config, source)
    try:
        region = _region.reserve(2 * size + core.EMERGENCY_RESERVE)
    except OSError as exc:
        raise BumpGlobalError(_reserve_failure(config, source, exc)) from exc
    core.install(region.mapping, region.base, size, region.committed, region.commit_step,
                 *config.core_arguments())
    _startup.installed()
    if config.size == default_size()[0]:
        # The automatic size is the whole program's budget: share it with the
        # processes it starts (core/budget.c); an explicit size is per process.
        _startup.share_budget(size)
    _apply_gc_policy(config.gc)
    if config.prefault and hasattr(os, "register_at_fork"):
        # CPython warns when fork() copies a multi-threaded process: stop the
        # prefault thread before each os.fork() (it restarts when needed).
        os.register_at_fork(before=core.prefault_stop)
    if sys.version_info >= (3, 12):  # before 3.12 every subinterpreter shares the GIL
        from bump_global._subinterp import install_guards

        install_guards(config.scope)
    if config.numpy:
        _enable_numpy(config, source)


_numpy_enabled = False


def installed_config() -> Optional[Config]:
    """The configuration installed in this process, or None."""
    try:
        current = _load_core().config()
    except BumpGlobalError:
        return None
    return None if current is None else Config.from_core(current, _numpy_enabled)


def _check_numpy(config: Config, source: str) -> None:
    """Before installing: refuse, in one line, numpy=True where it cannot work."""
    from bump_global import _numpy_hook

    option = config.spell_flag("numpy", source)
    if config.scope == "objects":
        raise BumpGlobalError(f"{option} needs scope 'python' or 'raw': numpy's array data "
                              "goes through the RAW domain, which scope 'objects' leaves "
                              "to the previous allocator")
    if "numpy" not in sys.modules:
        _numpy_hook._check_installed_numpy(option)


def _enable_numpy(config: Config, source: str) -> None:
    global _numpy_enabled
    from bump_global import _numpy_hook

    _numpy_hook.enable(config.spell_flag("numpy", source))
    _numpy_enabled = True


def _reserve_failure(config: Config, source: str, exc: OSError) -> str:
    """One line: the size the user set, why it failed, the largest that fits, what to do."""
    from bump_global._config import OPTIONS
    from bump_global._platform import largest_region

    where = OPTIONS["size"].where(source)
    reason = exc.strerror or str(exc)
    largest = largest_region()
    limit = ""
    if largest is not None and largest // 2 >= (1 << 20):
        # The reservation spans twice the size (a small-block and a large-block area).
        limit = f" (at most {format_size(largest // 2)}: what this machine can reserve now)"
    auto, why = default_size()
    return (f"cannot reserve a region of {format_size(config.size)} ({where}): {reason}; "
            f"try a smaller size with {where}{limit}, or leave it unset for the default "
            f"({format_size(auto)}, {why})")


_apply_gc_policy = _startup.apply_gc_policy


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
    if wall_time is None and _startup.installed_at is not None:
        return time.perf_counter() - _startup.installed_at
    return wall_time


class _guarded:
    """A block whose allocations never fail for lack of room in the region.

    While it runs, an allocation that does not fit is served by the previous
    allocator whatever ``on_exhausted`` says (C core: ``report_guard``): the
    report and everything it imports work after the region filled, even under
    ``on_exhausted="error"``.  Other threads' allocations meanwhile are served
    the same way.  Nests; does nothing before install.
    """

    _depth = 0

    def __enter__(self) -> _guarded:
        _guarded._depth += 1
        if _guarded._depth == 1:
            _set_guard(True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _guarded._depth -= 1
        if _guarded._depth == 0:
            _set_guard(False)


def _set_guard(on: bool) -> None:
    try:
        core = _load_core()
    except BumpGlobalError:
        return
    core.report_guard(on)


def report(wall_time: Optional[float] = None) -> str:
    """A compact human table of :func:`stats` and :func:`memory`.

    `wall_time` (seconds) is shown as given; by default, the time since install.
    It works after the region filled (see :class:`_guarded`).
    """
    with _guarded():
        from bump_global import _report

        return _report.format_report(stats() if is_installed() else None, memory(),
                                     _wall(wall_time))


def report_dict(wall_time: Optional[float] = None) -> Dict[str, Any]:
    """The report as a JSON-ready dict, schema ``bump_global.report/1`` (README)."""
    with _guarded():
        from bump_global import _report

        return _report.report_dict(stats() if is_installed() else None, memory(),
                                   _wall(wall_time))


def _sample() -> Tuple[int, Optional[int]]:
    """(bytes used, resident bytes of the region) in one cheap C call, for samplers.

    It allocates one small tuple; (0, None) before install.
    """
    return _load_core().sample()  # type: ignore[no-any-return]


for _name in __all__:
    if getattr(globals()[_name], "__module__", None) == __name__:
        globals()[_name].__module__ = "bump_global"
del _name
