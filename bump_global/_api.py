"""The engine's Python side: install(), stats(), memory(), and what reports read.

``bump_global/__init__.py`` is thin and loads this module on first use of any of
these names, so that ``BUMP_GLOBAL=1`` start-up (bump_global/_startup.py), which
installs the defaults through the C core directly, does not pay for it.  The
public names say ``bump_global`` as their module.  Every option is defined in
bump_global/_config.py; this module only passes them on.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, Tuple, Union

from bump_global import _config, _region, _startup
from bump_global._config import Config, default_size, format_size
from bump_global._errors import BumpGlobalError, load_core
from bump_global._records import Memory, Stats

if TYPE_CHECKING:
    from bump_global._config import SizeLike

#: Where each option's value came from: one source for all ("api", "env", "cli"),
#: or a source per option name (the command line mixes "cli" and "env").
Sources = Union[str, Mapping[str, str]]


def _source(sources: Sources, name: str) -> str:
    return sources if isinstance(sources, str) else sources.get(name, "api")


def is_installed() -> bool:
    """True once :func:`install` succeeded in this process (or a parent before fork)."""
    try:
        return load_core().config() is not None
    except BumpGlobalError:
        return False


def install(
    size: Optional[SizeLike] = None,
    scope: Optional[str] = None,
    on_exhausted: Optional[str] = None,
    histogram: Optional[bool] = None,
    prefault: Optional[bool] = None,
    huge_pages: Optional[bool] = None,
    gc: Optional[str] = None,
    reclaim: Optional[str] = None,
    numpy: Optional[bool] = None,
    sites: Optional[bool] = None,
    sites_rate: Optional[SizeLike] = None,
) -> None:
    # The docstring is made from the option table below (install_docstring).
    install_config(Config.from_values(locals()), "api", sample_now=True)


install.__doc__ = _config.install_docstring("""\
    Reserve the region and route CPython's allocators through it.

    Install once, as early as possible.  Calling it again with the same
    configuration does nothing; with another raises :class:`BumpGlobalError`,
    as do conditions that would make the allocator unsafe.  Bad arguments raise
    ValueError.  There is no uninstall: the hooks stay until the process exits.""")


def install_config(config: Config, sources: Sources, sample_now: bool = False) -> None:
    """install() of a validated `config`; messages spell each option as its source
    does ("api": ``size='4G'``, "env": ``BUMP_GLOBAL_SIZE='4G'``, "cli": ``--size '4G'``).
    `sample_now`: start sampling now if config.sites (else the caller does, with
    :func:`start_sites`, just before the program runs: the activation and the
    command line's own work is not the program's)."""
    core = load_core()
    size = _region.round_size(config.size)
    if core.config() is not None:
        have = installed_config()
        if have == config.replace(size=size):
            return
        source = _source(sources, "size")
        raise BumpGlobalError(
            f"bump_global is already installed with {have.describe(source)}; "
            f"it cannot be reinstalled with {config.describe(source)}: "
            "install once per process, at start-up"
        )
    _check_interpreter(config, core)
    if config.numpy:
        from bump_global import _numpy_hook

        _numpy_hook.check(_config.OPTIONS["numpy"].spell_on(_source(sources, "numpy")),
                          config.scope)
    try:
        region = _region.reserve(2 * size + core.EMERGENCY_RESERVE)
    except OSError as exc:
        raise BumpGlobalError(_reserve_failure(config, _source(sources, "size"), exc)) from exc
    core.install(region.mapping, region.base, size, region.committed, region.commit_step,
                 config.engine_options())
    _startup.installed()
    if config.size == default_size()[0]:
        # The automatic size is the whole program's budget: share it with the
        # processes it starts (core/budget.c); an explicit size is per process.
        _startup.share_budget(size)
    _startup.apply_gc_policy(config.gc)
    if config.prefault and hasattr(os, "register_at_fork"):
        # CPython warns when fork() copies a multi-threaded process: stop the
        # prefault thread before each os.fork() (it restarts when needed).
        os.register_at_fork(before=core.prefault_stop)
    if sys.version_info >= (3, 12):  # before 3.12 every subinterpreter shares the GIL
        from bump_global._subinterp import install_guards

        install_guards(config.scope)
    if config.numpy:
        from bump_global import _numpy_hook

        _numpy_hook.enable(_config.OPTIONS["numpy"].spell_on(_source(sources, "numpy")))
    if sample_now:
        start_sites(config)


def start_sites(config: Config) -> None:
    """Start sampling allocation sites if `config` asks for it, into this process's
    session (``BUMP_GLOBAL_SESSION``) if it is in one."""
    if config.sites:
        from bump_global import _sites

        _sites.start(config.sites_rate, os.environ.get("BUMP_GLOBAL_SESSION"))


def installed_config() -> Optional[Config]:
    """The configuration installed in this process, or None."""
    try:
        current = load_core().config()
    except BumpGlobalError:
        return None
    return None if current is None else Config.from_engine(current)


def _reserve_failure(config: Config, source: str, exc: OSError) -> str:
    """One line: the size the user set (where they set it), why it failed, the largest
    that fits, what to do."""
    from bump_global._platform import largest_region

    where = _config.OPTIONS["size"].where(source)
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


def _check_interpreter(config: Config, core: Any) -> None:
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
    core = load_core()
    raw = core.stats()
    if raw is None:
        raise BumpGlobalError("bump_global is not installed: call bump_global.install() first")
    return Stats(*raw, config=Config.from_engine(core.config()), histogram=core.histogram())


def memory() -> Memory:
    """Process RSS and peak RSS (psutil), and the resident bytes of the region.

    The region figure is exact on Linux and macOS (``mincore`` over the part
    handed out); it is None before install and where the OS cannot tell.
    """
    from bump_global import _memory

    resident = load_core().region_resident()
    rss, peak = _memory.process_rss()
    return Memory(rss=rss, peak_rss=peak, region_resident=resident)


def wall_time(given: Optional[float] = None) -> Optional[float]:
    """`given`, or the seconds since the install (None before)."""
    if given is None and _startup.installed_at is not None:
        return time.perf_counter() - _startup.installed_at
    return given


class guarded:
    """A block whose allocations never fail for lack of room in the region.

    While it runs, an allocation that does not fit is served by the previous
    allocator whatever ``on_exhausted`` says (C core: ``report_guard``): the
    report and everything it imports work after the region filled, even under
    ``on_exhausted="error"``.  Other threads' allocations meanwhile are served
    the same way.  Nests; does nothing before install.
    """

    _depth = 0

    def __enter__(self) -> guarded:
        guarded._depth += 1
        if guarded._depth == 1:
            _set_guard(True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        guarded._depth -= 1
        if guarded._depth == 0:
            _set_guard(False)


def _set_guard(on: bool) -> None:
    try:
        core = load_core()
    except BumpGlobalError:
        return
    core.report_guard(on)


def sample() -> Tuple[int, Optional[int]]:
    """(bytes used, resident bytes of the region) in one cheap C call, for samplers.

    It allocates one small tuple; (0, None) before install.
    """
    return load_core().sample()  # type: ignore[no-any-return]


for _name in ("install", "installed_config", "is_installed", "memory", "stats"):
    globals()[_name].__module__ = "bump_global"
del _name
