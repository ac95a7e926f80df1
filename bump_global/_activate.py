"""Install the allocator at interpreter start-up when ``BUMP_GLOBAL=1``.

The ``bump_global_activate.pth`` file in site-packages reads the variable itself
and imports this module only when it is set to something other than an "off"
value, so an unset variable costs nothing.  :func:`activate` reads the
``BUMP_GLOBAL_*`` options and installs; it never raises: a bad value or a
refusal is one line on stderr and start-up continues without the allocator.
"""

from __future__ import annotations

import os
import sys
import time

from bump_global._config import DEFAULT_GC, DEFAULT_RECLAIM
from bump_global._records import _Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Callable, List, Mapping, Optional, TypeVar

    T = TypeVar("T")

PREFIX = "BUMP_GLOBAL"
TRUE_VALUES = ("1", "true", "yes", "on")
#: Keep in sync with the test in bump_global_activate.pth (it skips these without importing).
FALSE_VALUES = ("", "0", "false", "no", "off")
_FLAG_HELP = "expected 1, true, yes or on (enable), or 0, false, no, off or empty (disable)"

_activated = False


class Options(_Record):
    """What the environment asks for."""

    size: str
    scope: str
    on_exhausted: str
    report: bool
    histogram: bool
    prefault: bool
    huge_pages: bool = True
    gc: str = DEFAULT_GC
    reclaim: str = DEFAULT_RECLAIM


def parse_flag(value: str) -> bool:
    """An on/off value (case-insensitive, surrounding spaces ignored); ValueError otherwise."""
    word = value.strip().lower()
    if word in TRUE_VALUES:
        return True
    if word in FALSE_VALUES:
        return False
    raise ValueError(f"invalid value {value!r}: {_FLAG_HELP}")


def read_options(environ: Mapping[str, str]) -> Optional[Options]:
    """The options `environ` asks for, or None if ``BUMP_GLOBAL`` is off or unset.

    Raises ValueError naming every variable with a bad value and what it accepts.
    """
    from bump_global._config import (
        DEFAULT_ON_EXHAUSTED,
        DEFAULT_SCOPE,
        DEFAULT_SIZE,
        Config,
        parse_size,
    )

    problems: List[str] = []

    def get(suffix: str, default: T, parse: Callable[[str], T]) -> T:
        name = PREFIX + suffix
        value = environ.get(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            problems.append(f"{name}={value!r}: {exc}")
            return default

    def size(value: str) -> str:
        parse_size(value)
        return value

    if not get("", False, parse_flag):
        if problems:
            raise ValueError(problems[0])
        return None
    options = Options(
        size=get("_SIZE", DEFAULT_SIZE, size),
        scope=get("_SCOPE", DEFAULT_SCOPE,
                  lambda v: Config.make(DEFAULT_SIZE, v, DEFAULT_ON_EXHAUSTED).scope),
        on_exhausted=get("_ON_EXHAUSTED", DEFAULT_ON_EXHAUSTED,
                         lambda v: Config.make(DEFAULT_SIZE, DEFAULT_SCOPE, v).on_exhausted),
        report=get("_REPORT", False, parse_flag),
        histogram=get("_HISTOGRAM", False, parse_flag),
        prefault=get("_PREFAULT", True, parse_flag),
        huge_pages=get("_HUGE_PAGES", True, parse_flag),
        gc=get("_GC", DEFAULT_GC,
               lambda v: Config.make(DEFAULT_SIZE, DEFAULT_SCOPE, DEFAULT_ON_EXHAUSTED, gc=v).gc),
        reclaim=get("_RECLAIM", DEFAULT_RECLAIM,
                    lambda v: Config.make(DEFAULT_SIZE, DEFAULT_SCOPE, DEFAULT_ON_EXHAUSTED,
                                          reclaim=v).reclaim),
    )
    if problems:
        raise ValueError("; ".join(problems))
    return options


def activate(environ: Optional[Mapping[str, str]] = None) -> None:
    """Install as the environment asks (once per process); never raises."""
    global _activated
    if _activated:
        return
    _activated = True
    start = time.perf_counter()
    try:
        _activate(os.environ if environ is None else environ, start)
    except Exception as exc:  # a bug here must not stop the program from starting
        _warn(f"activation from {PREFIX} failed ({exc!r}); the allocator is not installed")


def _activate(environ: Mapping[str, str], start: float) -> None:
    try:
        options = read_options(environ)
    except ValueError as exc:
        _warn(f"{exc}; the allocator is not installed")
        return
    if options is None:
        return
    import bump_global

    try:
        bump_global.install(options.size, options.scope, options.on_exhausted,
                            histogram=options.histogram, prefault=options.prefault,
                            huge_pages=options.huge_pages, gc=options.gc,
                            reclaim=options.reclaim)
    except bump_global.BumpGlobalError as exc:
        _warn(f"{PREFIX}={environ[PREFIX]!r}: {exc}; the allocator is not installed")
        return
    if options.report:
        import atexit

        # Registered before the program runs: atexit is LIFO, so this prints last.
        atexit.register(_print_report, start)


def _print_report(start: float) -> None:
    """The report on stderr, after everything the program wrote on stdout."""
    wall_time = time.perf_counter() - start
    try:
        import bump_global

        text = bump_global.report(wall_time=wall_time)
        try:
            sys.stdout.flush()
        except Exception:  # stdout may be closed: the report goes to stderr
            pass
        print(text, file=sys.stderr, flush=True)
    except Exception as exc:
        _warn(f"{PREFIX}_REPORT: the report failed ({exc!r})")


def _warn(message: str) -> None:
    """`message` as one line on stderr, whatever state stderr is in."""
    try:
        print("bump_global: " + " ".join(message.split()), file=sys.stderr, flush=True)
    except Exception:  # nowhere left to say it
        pass
