"""bump_global: a process-wide bump allocator for CPython.

Call :func:`install` once, early: from then on every allocation the chosen
allocator domains make is served from one large virtual region by bumping an
offset, and freeing is a no-op.  Memory only grows, so this suits short-lived,
allocation-heavy programs and memory experiments ("what would it cost never to
free?").  :func:`stats`, :func:`memory` and :func:`report` tell what it did;
:func:`measure` what a block of code allocated, and where.

PYTEST_DONT_REWRITE: with ``BUMP_GLOBAL=1`` this package is imported at start-up,
before pytest can mark the distribution of its plugin for assertion rewriting;
this marker tells pytest not to warn (a suite run with ``-W error`` would fail).

This file is the public API and nothing else: each name is loaded on first use
(module ``__getattr__``) from the module that defines it, so that ``BUMP_GLOBAL=1``
start-up, which installs through bump_global/_startup.py and the C core, imports
none of them.  The package's own modules never import from here.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from bump_global._api import install, is_installed, memory, stats
    from bump_global._config import parse_size
    from bump_global._errors import BumpGlobalError
    from bump_global._measure import Measure, measure
    from bump_global._records import Memory, Stats
    from bump_global._report import report, report_dict
    from bump_global._version import __version__ as __version__

__all__ = [
    "BumpGlobalError",
    "Measure",
    "Memory",
    "Stats",
    "install",
    "is_installed",
    "measure",
    "memory",
    "parse_size",
    "report",
    "report_dict",
    "stats",
]
#: Each public name -> the module of this package that defines it.
_WHERE = {
    "BumpGlobalError": "_errors",
    "Measure": "_measure",
    "Memory": "_records",
    "Stats": "_records",
    "install": "_api",
    "is_installed": "_api",
    "measure": "_measure",
    "memory": "_api",
    "parse_size": "_config",
    "report": "_report",
    "report_dict": "_report",
    "stats": "_api",
    "__version__": "_version",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        # A submodule name (`from bump_global import _core`) must get AttributeError
        # here, so that the import system loads it.
        raise AttributeError(f"module 'bump_global' has no attribute {name!r}")
    # Loading a module allocates: after the region filled under on_exhausted="error"
    # (bump_global.report() in a MemoryError handler), the C core's report guard
    # serves that from the previous allocator.
    core = __import__("sys").modules.get("bump_global._core")
    guarded = core is not None and core.config() is not None and not core.report_guard(True)
    try:
        value = getattr(__import__(f"bump_global.{module}", fromlist=[name]), name)
    finally:
        if guarded:
            core.report_guard(False)
    globals()[name] = value
    return value


def __dir__() -> list:  # type: ignore[type-arg]
    return sorted(set(globals()) | set(_WHERE))
