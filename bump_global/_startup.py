"""What ``BUMP_GLOBAL=1`` runs at interpreter start-up, kept small, and what both
install paths share.

``bump_global_activate.pth`` calls :func:`install_defaults` when ``BUMP_GLOBAL`` is
set to something other than an "off" value, and the full path
(:func:`bump_global._activate.activate`) when that returns False.  In the common
case -- ``BUMP_GLOBAL`` set to an "on" value and no other ``BUMP_GLOBAL_*``
variable, on Linux -- it installs the default configuration itself: the package's
thin ``__init__``, this module, the option table (bump_global/_config.py, which
holds the defaults), the GC policy and the C core are all it loads (no mmap, no
__future__, no typing), so a 50 ms script does not pay for what only options,
reports and big programs need (docs/performance.md, "Start-up").  Every other case
(an option or a report set, the ``bump-global`` command line, a refusal, a
reservation the fast path cannot make) goes through the full path, which
validates, installs, warns and reports.

Also here, for both paths: the time of the install, the budget the processes of
a program share, the command-line test.  Annotations are strings:
``from __future__ import annotations`` is itself an import.
"""

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import List, Optional

#: time.perf_counter() at install (the report's default wall time), or None.
installed_at: "Optional[float]" = None

#: Where a process that installs with the automatic size finds the budget it
#: shares with the rest of its program (core/budget.c): /proc/<pid>/fd/<fd> of
#: the process that made it.  Set by that process for its children.
SHARED_BUDGET_VARIABLE = "BUMP_GLOBAL_SHARED_BUDGET"

#: The descriptor of the shared budget's page this process made (kept open while
#: it lives, so that its children can open it), or None.
shared_budget_fd: "Optional[int]" = None

#: What install_defaults() did (None: not called yet).  site.py may read the .pth
#: twice (a venv's lib64 is a link to lib): the second call answers the same.
_fast_path_done: "Optional[bool]" = None


def install_defaults() -> bool:
    """Install the default configuration if the environment asks for nothing else
    (once per process); True if done.  Never raises: anything unusual is left to
    the full path, which decides and says what went wrong."""
    global _fast_path_done
    if _fast_path_done is None:
        try:
            _fast_path_done = _fast_path(os.environ)
        except Exception:
            _fast_path_done = False
    return _fast_path_done


def _fast_path(environ: "os._Environ[str]") -> bool:
    from bump_global import _config

    if not sys.platform.startswith("linux"):
        return False
    if environ.get(_config.ENV_PREFIX, "").strip().lower() not in _config.TRUE_VALUES:
        return False
    prefix = _config.ENV_PREFIX + "_"
    for name in environ:
        if name.startswith(prefix) and name != SHARED_BUDGET_VARIABLE:
            return False
    options = _config.OPTIONS
    if options["numpy"].default or options["sites"].default:
        return False  # options Python applies after the install: the full path does
    if is_command_line():
        return False
    from bump_global import _core

    if _core.FREE_THREADED or _core.config() is not None:
        return False
    import _tracemalloc

    if _tracemalloc.is_tracing():
        return False
    limit = _config.memory_limit()[0]
    size = _config.UNKNOWN_MEMORY_SIZE if limit is None else _config.auto_size(limit)
    span = 2 * size + _core.EMERGENCY_RESERVE
    base = _core.reserve(span)
    if base is None:
        return False
    _core.install(None, base, size, span, 0, _config.engine_options())
    installed()
    share_budget(size)
    apply_gc_policy(options["gc"].default)
    if options["prefault"].default and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_core.prefault_stop)
    if sys.version_info >= (3, 12):  # before 3.12 every subinterpreter shares the GIL
        from bump_global._subinterp import install_guards

        install_guards(options["scope"].default)
    return True


def share_budget(limit: int) -> None:
    """After an install with the automatic size: join the program's shared budget
    (the one ``BUMP_GLOBAL_SHARED_BUDGET`` names, if it can be opened), else make one
    of `limit` bytes and name it in this process's environment for its children.
    Where neither can be had (not Linux, /proc not readable), the process keeps its
    own budget alone; nothing is raised."""
    global shared_budget_fd
    from bump_global import _core

    path = os.environ.get(SHARED_BUDGET_VARIABLE, "")
    if path.startswith("/proc/"):
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:  # the process that made it has ended: make our own
            pass
        else:
            try:
                if _core.share_budget(fd, limit) is not None:
                    return
            finally:
                os.close(fd)
    fd = _core.share_budget(-1, limit)
    if fd is None:
        os.environ.pop(SHARED_BUDGET_VARIABLE, None)
        return
    shared_budget_fd = fd
    os.environ[SHARED_BUDGET_VARIABLE] = "/proc/%d/fd/%d" % (os.getpid(), fd)


def installed() -> None:
    """Record the time of the install (both paths)."""
    global installed_at
    import time

    installed_at = time.perf_counter()


def apply_gc_policy(policy: str) -> None:
    """Apply gc policy `policy` to CPython's cyclic GC (bump_global/_gc.py)."""
    from bump_global._gc import apply_gc_policy as apply

    apply(policy)


def original_argv() -> "List[str]":
    """The interpreter's command line as it was typed (``python -X dev -m mod a``):
    sys.orig_argv from 3.10; before, /proc/self/cmdline (Linux); else []."""
    argv = getattr(sys, "orig_argv", None)
    if argv is not None:
        return list(argv)
    try:
        fd = os.open("/proc/self/cmdline", os.O_RDONLY)
    except OSError:
        return []
    try:
        data = os.read(fd, 1 << 20)
    except OSError:
        return []
    finally:
        os.close(fd)
    return [arg.decode(errors="surrogateescape") for arg in data.split(b"\0")[:-1]]


def is_command_line() -> bool:
    """True in the ``bump-global`` command line's own process (console script or
    ``python -m bump_global``, as far as this Python lets us see at start-up)."""
    argv0 = os.path.basename(sys.argv[0]) if getattr(sys, "argv", None) else ""
    if argv0 in ("bump-global", "bump-global.exe", "bump-global-script.py"):
        return True
    argv = original_argv()  # the interpreter's own options too
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-m":
            return i + 1 < len(argv) and argv[i + 1] == "bump_global"
        if argv[i] in ("-c", "--"):
            return False
        i += 2 if argv[i] in ("-X", "-W", "--check-hash-based-pycs") else 1
    return False
