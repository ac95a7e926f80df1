"""Refuse subinterpreters with their own GIL while MEM/OBJ are served.

From 3.12, a subinterpreter created with its own GIL (the default of
``_xxsubinterpreters.create()`` in 3.12 and ``_interpreters.create()`` in 3.13)
calls the MEM and OBJ allocators concurrently with the main interpreter.  Our
GIL arena relies on the GIL to serialise those domains (it takes no lock on its
fast path), so such interpreters are refused with a clear error.  Legacy
subinterpreters share the main GIL and work.  Interpreters created directly
from C with ``Py_NewInterpreterFromConfig`` cannot be intercepted:
docs/api.md ("Refusals") says not to.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Callable

_MESSAGE = (
    "bump_global serves the MEM/OBJ allocator domains, which a subinterpreter with its own "
    "GIL would call concurrently: create it with a shared GIL ({how}), or install "
    "bump_global with scope='raw'"
)


def _own_gil_312(isolated: Any = True, **_: Any) -> bool:
    return bool(isolated)


def _guard(module: Any, own_gil: Callable[..., bool], how: str) -> None:
    create = module.create
    if getattr(create, "__bump_global_guard__", False):
        return

    def guarded_create(*args: Any, **kwargs: Any) -> Any:
        if own_gil(*args, **kwargs):
            from bump_global._errors import BumpGlobalError

            raise BumpGlobalError(_MESSAGE.format(how=how))
        return create(*args, **kwargs)

    guarded_create.__name__ = create.__name__
    guarded_create.__doc__ = create.__doc__
    guarded_create.__wrapped__ = create  # type: ignore[attr-defined]
    guarded_create.__bump_global_guard__ = True  # type: ignore[attr-defined]
    module.create = guarded_create


def install_guards(scope: str) -> None:
    """Guard the subinterpreter modules this Python has, if MEM/OBJ are ours."""
    if scope == "raw" or sys.version_info < (3, 12):  # before 3.12 one GIL is shared
        return
    try:
        module = __import__("_xxsubinterpreters")
    except ImportError:
        pass
    else:
        _guard(module, _own_gil_312, "isolated=False")
    try:
        module = __import__("_interpreters")
    except ImportError:
        return

    def own_gil_313(config: Any = None, *_: Any, **__: Any) -> bool:
        if config is None or isinstance(config, str):
            config = module.new_config(config) if config else module.new_config()
        return getattr(config, "gil", "own") != "shared" or not getattr(
            config, "use_main_obmalloc", False)

    _guard(module, own_gil_313, "config='legacy'")
