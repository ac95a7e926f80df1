"""What ``BUMP_GLOBAL=1`` runs at interpreter start-up, kept small.

``bump_global_activate.pth`` calls :func:`activate` when ``BUMP_GLOBAL`` is set to
something other than an "off" value.  In the common case -- ``BUMP_GLOBAL`` set to
an "on" value and no other ``BUMP_GLOBAL_*`` variable, on Linux -- it installs the
default configuration itself: this module, the package's thin ``__init__`` and the C
core are all it loads (no mmap, no _config, no __future__, no typing), so a 50 ms
script does not pay for what only options, reports and big programs need
(docs/performance.md, "Start-up").  Every other case (an option or a session set,
the ``bump-global`` command line, a refusal, a reservation the fast path cannot
make) goes through :mod:`bump_global._activate`, which validates, installs, warns
and reports as it always did.

It also holds what both paths share: :func:`memory_limit` (what the default size
is half of), the GC policies, the time of the install, the command-line test.
Annotations are strings: ``from __future__ import annotations`` is itself an
import.
"""

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

#: Smallest region accepted: one chunk of the GIL arena (GIL_CHUNK in the C core).
MIN_SIZE = 1 << 20

#: Upper bound of the automatic default size, whatever the machine.
AUTO_SIZE_MAX = 1 << 40

#: The default size where the machine's memory is unknown.
UNKNOWN_MEMORY_SIZE = 16 << 30

#: The C core's install() arguments after the region's for the default
#: configuration (scope, on_exhausted, histogram, prefault, huge_pages, gc, reclaim):
#: bump_global/_config.py defines the defaults; tests/test_startup.py checks that
#: this is Config.make().core_arguments() and DEFAULT_GC is its gc.
DEFAULT_CORE_ARGUMENTS = (2, 1, False, True, False, 2, 0)
DEFAULT_GC = "relaxed"
DEFAULT_PREFAULT = True

_ON = ("1", "true", "yes", "on")  # _config.TRUE_VALUES (tests/test_startup.py checks)

#: time.perf_counter() at install (the report's default wall time), or None.
installed_at = None  # type: Optional[float]

_activated = False


def activate() -> None:
    """Install as the environment asks, once per process; never raises."""
    global _activated
    if _activated:
        return
    _activated = True
    try:
        if _fast_path(os.environ):
            return
    except Exception:  # the full path below decides and says what went wrong
        pass
    from bump_global._activate import activate as full_activate

    full_activate()


def _fast_path(environ: "os._Environ[str]") -> bool:
    """Install the defaults if the environment asks for nothing else; True if done."""
    if not sys.platform.startswith("linux"):
        return False
    if environ.get("BUMP_GLOBAL", "").strip().lower() not in _ON:
        return False
    for name in environ:
        if name.startswith("BUMP_GLOBAL_") and name != SHARED_BUDGET_VARIABLE:
            return False
    if is_command_line():
        return False
    from bump_global import _core

    if _core.FREE_THREADED or _core.config() is not None:
        return False
    import _tracemalloc

    if _tracemalloc.is_tracing():
        return False
    limit = memory_limit()[0]
    size = UNKNOWN_MEMORY_SIZE if limit is None else auto_size(limit)
    span = 2 * size + _core.EMERGENCY_RESERVE
    base = _core.reserve(span)
    if base is None:
        return False
    _core.install(None, base, size, span, 0, *DEFAULT_CORE_ARGUMENTS)
    installed()
    share_budget(size)
    apply_gc_policy(DEFAULT_GC)
    if DEFAULT_PREFAULT and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_core.prefault_stop)
    if sys.version_info >= (3, 12):  # before 3.12 every subinterpreter shares the GIL
        from bump_global._subinterp import install_guards

        install_guards("python")
    return True


#: Where a process that installs with the automatic size finds the budget it
#: shares with the rest of its program (core/budget.c): /proc/<pid>/fd/<fd> of
#: the process that made it.  Set by that process for its children.
SHARED_BUDGET_VARIABLE = "BUMP_GLOBAL_SHARED_BUDGET"

#: The descriptor of the shared budget's page this process made (kept open while
#: it lives, so that its children can open it), or None.
shared_budget_fd = None  # type: Optional[int]


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


def is_command_line() -> bool:
    """True in the ``bump-global`` command line's own process (console script or
    ``python -m bump_global``, as far as this Python lets us see at start-up)."""
    argv0 = os.path.basename(sys.argv[0]) if getattr(sys, "argv", None) else ""
    if argv0 in ("bump-global", "bump-global.exe", "bump-global-script.py"):
        return True
    argv = list(getattr(sys, "orig_argv", ()))  # 3.10+: the interpreter's own options
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-m":
            return i + 1 < len(argv) and argv[i + 1] == "bump_global"
        if argv[i] in ("-c", "--"):
            return False
        i += 2 if argv[i] in ("-X", "-W", "--check-hash-based-pycs") else 1
    return False


# ------------------------------------------------------------ the default size


def auto_size(limit: int) -> int:
    """The default region size for `limit` bytes of memory: half, rounded down to
    a MiB, between MIN_SIZE and AUTO_SIZE_MAX."""
    return max(MIN_SIZE, min(AUTO_SIZE_MAX, (limit // 2) >> 20 << 20))


def _read_bytes(path: str, limit: int) -> "Optional[bytes]":
    """Up to `limit` bytes of `path`, or None.  os.open/os.read: no io objects and
    no codec, so reading the default size costs start-up little."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_int(path: str) -> "Optional[int]":
    data = _read_bytes(path, 64)
    text = data.strip() if data is not None else b""
    return int(text) if text.isdigit() else None


def memory_limit() -> "Tuple[Optional[int], str]":
    """(bytes, where from) of the memory this process may use: the machine's
    physical memory, or its cgroup's limit when that is lower (containers);
    (None, why) where neither can be read."""
    physical = None
    if hasattr(os, "sysconf"):
        try:
            physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            physical = None
    if physical is None or physical <= 0:
        try:
            import psutil

            physical = int(psutil.virtual_memory().total)
        except Exception:  # psutil missing or unable: no figure
            return None, "physical memory unknown"
    limit, source = physical, "physical memory"
    if sys.platform.startswith("linux"):
        for path in _cgroup_limit_files():
            value = _read_int(path)
            if value is not None and 0 < value < limit:
                limit, source = value, "the cgroup's memory limit"
    return limit, source


def _cgroup_limit_files() -> "List[str]":
    """memory.max (cgroup v2) or memory.limit_in_bytes (v1) of this process's cgroup."""
    data = _read_bytes("/proc/self/cgroup", 1 << 16)
    if data is None:
        return []
    files = []
    for line in data.decode("ascii", "replace").splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            files.append(f"/sys/fs/cgroup{path}/memory.max")
        elif "memory" in controllers.split(","):
            files.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    return files
