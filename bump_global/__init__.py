"""bump_global: a process-wide bump allocator for CPython.

Call :func:`install` once, early: from then on every allocation the chosen
allocator domains make is served from one large virtual region by bumping an
offset, and freeing is a no-op.  Memory only grows, so this suits short-lived,
allocation-heavy programs and memory experiments ("what would it cost never to
free?").  :func:`stats`, :func:`memory` and :func:`report` tell what it did.

PYTEST_DONT_REWRITE: with ``BUMP_GLOBAL=1`` this package is imported at start-up,
before pytest can mark the distribution of its plugin for assertion rewriting;
this marker tells pytest not to warn (a suite run with ``-W error`` would fail).

This file is thin: every name is loaded on first use (module ``__getattr__``)
from bump_global/_api.py (install, stats, report...), _measure.py (measure) or
_records.py (Stats, Memory), so that ``BUMP_GLOBAL=1`` start-up, which installs
through bump_global/_startup.py and the C core, imports none of them.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from bump_global._api import (
        BumpGlobalError,
        install,
        is_installed,
        memory,
        parse_size,
        report,
        report_dict,
        stats,
    )
    from bump_global._api import (
        _guarded as _guarded,
    )
    from bump_global._api import (
        _install as _install,
    )
    from bump_global._api import (
        _load_core as _load_core,
    )
    from bump_global._api import (
        _numpy_enabled as _numpy_enabled,
    )
    from bump_global._api import (
        _sample as _sample,
    )
    from bump_global._api import (
        installed_config as installed_config,
    )
    from bump_global._measure import Measure, measure
    from bump_global._records import Memory, Stats

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
__version__ = "0.1.0"

#: Names loaded on first use: name -> module of this package.
_LAZY = {"Measure": "_measure", "measure": "_measure", "Memory": "_records",
         "Stats": "_records"}
#: Names of _api that other modules of the package use (besides its __all__).
_API_PRIVATE = frozenset({"_guarded", "_install", "_load_core", "_numpy_enabled", "_sample",
                          "_wall", "_set_guard", "_check_interpreter", "_reserve_failure",
                          "_apply_gc_policy", "installed_config"})
#: Values that change after install: read from _api on every access, never cached.
_LIVE = frozenset({"_numpy_enabled"})


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        # Only _api's own names: a submodule name (`from bump_global import _core`)
        # must get AttributeError here, so that the import system loads it.
        if name not in __all__ and name not in _API_PRIVATE:
            raise AttributeError(f"module 'bump_global' has no attribute {name!r}")
        module = "_api"
    value = getattr(__import__(f"bump_global.{module}", fromlist=[name]), name)
    if name not in _LIVE:
        globals()[name] = value
    return value


def __dir__() -> list:  # type: ignore[type-arg]
    return sorted(set(globals()) | set(__all__) | _API_PRIVATE)
