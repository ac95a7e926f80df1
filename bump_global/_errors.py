"""The errors bump_global raises, and loading its C core with a clear one.

Every module of the package takes its error types from here, never through the
package front (``bump_global/__init__.py``), so that no module depends on it.
Imports nothing of the package.
"""

import sys


class BumpGlobalError(RuntimeError):
    """bump_global cannot do what was asked (the message says what to do)."""


class OptionError(ValueError):
    """A bad option value; the message is one line naming what the user set (the
    keyword, the environment variable or the command-line flag), what is accepted
    and what to do."""


def load_core():  # type: ignore[no-untyped-def]
    """The C extension ``bump_global._core``, with a BumpGlobalError saying what to do
    where it cannot be loaded (another Python implementation, a broken install)."""
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


def warn(message: str) -> None:
    """`message` as one line on stderr, prefixed ``bump_global:``, whatever state
    stderr is in (a report at exit, a refusal at start-up)."""
    try:
        print("bump_global: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
    except Exception:  # nowhere left to say it
        pass
