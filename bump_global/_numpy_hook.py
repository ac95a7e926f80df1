"""numpy arrays in the region: set bump_global's NEP 49 data-memory handler.

numpy (1.22 and later) allocates array data through a *data-memory handler*,
not through the PyMem domains bump_global hooks.  :func:`enable` makes the
handler of ``bump_global._numpy`` numpy's handler: at once if numpy is
imported, else right after numpy's ``_multiarray_umath`` extension is loaded
(a ``sys.meta_path`` finder that wraps its loader, and steps aside after).
That handler serves array data through ``PyMem_RawMalloc`` and friends, so
with bump_global installed (scope ``"python"`` or ``"raw"``) the arrays land
in the region; see bump_global/_numpy.c for why RAW (numpy calls handlers
without the GIL in places) and docs/numpy.md for what it means.

numpy keeps the handler in a context variable.  :func:`enable` sets it in the
current context, and numpy keeps each array's handler with the array, so:

- arrays made before keep numpy's handler, which also frees them;
- threads started later run in a fresh, empty context on Python 3.9 to 3.13
  (and on 3.14 unless ``sys.flags.thread_inherit_context``): their arrays get
  numpy's default handler.  Call :func:`set_in_this_thread` at the start of
  such a thread (for example as a ThreadPoolExecutor ``initializer``);
- asyncio tasks and ``contextvars.copy_context().run`` copy the context, and
  with it the handler.
"""

from __future__ import annotations

import sys

from bump_global._errors import BumpGlobalError
from bump_global._records import Record as _Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Optional, Sequence

#: numpy's extension module that holds the C-API table, numpy 2.x first.  In
#: numpy 2, ``numpy.core._multiarray_umath`` is a Python shim (skipped).
MULTIARRAY_MODULES = ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath")

#: The first numpy with data-memory handlers (NEP 49).
MIN_NUMPY = (1, 22)

HANDLER_NAME = "bump_global"


class NumpyStats(_Record):
    """What the handler did since the process started (exact: numpy tells sizes)."""

    arrays: int
    """Array buffers handed out (malloc and calloc calls)."""
    bytes_allocated: int
    """Bytes handed out: the buffers' sizes plus what reallocs grew them by."""
    bytes_freed: int
    """Bytes given back: freed buffers plus what reallocs shrank them by."""
    live_bytes: int
    """bytes_allocated - bytes_freed: array data alive now."""
    peak_live_bytes: int
    """The most live_bytes ever were."""
    reallocs: int
    """Buffers resized (ndarray.resize, np.fromstring/fromfile growing their result)."""


def _load_ext():  # type: ignore[no-untyped-def]
    try:
        from bump_global import _numpy as ext
    except ImportError as exc:
        raise BumpGlobalError(
            f"the bump_global numpy handler (C extension bump_global._numpy) cannot be loaded "
            f"({exc}); reinstall the package with a C compiler available"
        ) from exc
    return ext


def numpy_stats() -> NumpyStats:
    """The handler's counters (all zero until numpy allocates through it)."""
    return NumpyStats(*_load_ext().stats())


def _version_tuple(text: str) -> Optional[Sequence[int]]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            return None
        parts.append(int(digits))
    return tuple(parts) if len(parts) == 2 else None


def _too_old(option: str, version: str) -> Any:
    return BumpGlobalError(
        f"{option}: numpy {version} has no data-memory handlers (they came in numpy 1.22): "
        f"upgrade numpy (pip install 'numpy>=1.22') or drop {option}"
    )


def _multiarray() -> Optional[ModuleType]:
    """numpy's extension module with the C-API table, if it is imported."""
    for name in MULTIARRAY_MODULES:
        module = sys.modules.get(name)
        # numpy 2's numpy.core._multiarray_umath shim raises on attribute access:
        # look in its dict only.
        if module is not None and "_ARRAY_API" in vars(module):
            return module
    return None


def _set_handler(module: ModuleType, option: str) -> None:
    """Make ours the current context's handler through `module`'s C-API table."""
    ext = _load_ext()
    api = vars(module)["_ARRAY_API"]
    get_name = vars(module).get("get_handler_name")
    try:
        ours = ext.current_handler_name(api)
        if get_name is not None and ours != get_name():
            raise RuntimeError(f"the C-API table's handler is {ours!r}, numpy says "
                               f"{get_name()!r}")
        ext.set_handler(api)
        if get_name is not None and get_name() != HANDLER_NAME:
            raise RuntimeError(f"numpy's handler is still {get_name()!r}")
    except (RuntimeError, TypeError, ValueError) as exc:
        version = getattr(sys.modules.get("numpy"), "__version__", "?")
        if "need numpy 1.22" in str(exc):
            raise _too_old(option, version) from exc
        raise BumpGlobalError(
            f"{option}: cannot set bump_global's handler in numpy {version} ({exc}); "
            f"drop {option} and report this"
        ) from exc


def check(option: str, scope: str) -> None:
    """Before installing with numpy=True (spelled `option`): one clear line where it
    cannot work: scope "objects" (array data goes through RAW), numpy not importable,
    or too old (checked without importing it)."""
    if scope == "objects":
        raise BumpGlobalError(f"{option} needs scope 'python' or 'raw': numpy's array data "
                              "goes through the RAW domain, which scope 'objects' leaves "
                              "to the previous allocator")
    if "numpy" in sys.modules:
        return  # checked when the handler is set (enable)
    import importlib.util

    try:
        found = importlib.util.find_spec("numpy") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BumpGlobalError(
            f"{option}: numpy cannot be imported here, so there are no arrays to put in the "
            f"region: install numpy (pip install 'numpy>=1.22') or drop {option}"
        )
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python 3.8
        return
    try:
        text = version("numpy")
    except PackageNotFoundError:
        return  # importable but without metadata (a source tree): checked when it loads
    parsed = _version_tuple(text)
    if parsed is not None and tuple(parsed) < MIN_NUMPY:
        raise _too_old(option, text)


class _SettingLoader:
    """Wraps numpy's multiarray loader: sets the handler once the module is executed."""

    def __init__(self, loader: Any, option: str) -> None:
        self._loader = loader
        self._option = option

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Give the module its own loader back: it should not see this wrapper.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        if "_ARRAY_API" not in vars(module):
            return  # numpy 2's numpy.core shim; the real module is numpy._core's
        _uninstall_finder()
        try:
            _set_handler(module, self._option)
        except Exception as exc:  # never break the user's `import numpy`
            sys.stderr.write(f"bump_global: {exc}\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _NumpyFinder:
    """A sys.meta_path finder that only wraps the loader of numpy's multiarray module."""

    def __init__(self, option: str) -> None:
        self.option = option

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in MULTIARRAY_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _NumpyFinder):
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _SettingLoader(spec.loader, self.option)
        return spec


def _uninstall_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _NumpyFinder)]


def enable(option: str) -> str:
    """Serve numpy's array data from the region, from now on or from numpy's import.

    `option` is how the user asked for it ("numpy=True", "--numpy",
    "BUMP_GLOBAL_NUMPY=1"): error messages name it.  Returns ``"set"`` (numpy
    was imported: the handler is numpy's now, in this context) or
    ``"on import"`` (a finder sets it when numpy's multiarray module loads).
    Raises BumpGlobalError, with one line, when numpy's handler cannot be set
    (:func:`check` refuses the rest before the install).
    """
    _load_ext()
    module = _multiarray()
    if module is not None:
        _set_handler(module, option)
        return "set"
    if not any(isinstance(f, _NumpyFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _NumpyFinder(option))
    return "on import"


def set_in_this_thread() -> None:
    """Set the handler in the calling thread's context (numpy must be imported).

    Threads start with an empty context before Python 3.14, where numpy's
    default handler applies; call this first thing in such a thread.
    """
    module = _multiarray()
    if module is None:
        raise BumpGlobalError("set_in_this_thread(): numpy is not imported yet; import it first")
    _set_handler(module, "set_in_this_thread()")


def handler_name(array: Any = None) -> Optional[str]:
    """numpy's name for the current handler, or for `array`'s (None: not imported)."""
    module = _multiarray()
    if module is None:
        return None
    get_name = vars(module)["get_handler_name"]
    return get_name() if array is None else get_name(array)
