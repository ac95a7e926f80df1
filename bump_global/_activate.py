"""Install the allocator at interpreter start-up when ``BUMP_GLOBAL=1``.

The ``bump_global_activate.pth`` file in site-packages reads the variable itself
and calls bump_global/_startup.py only when it is set to something other than an
"off" value, so an unset variable costs nothing; that module installs the
defaults itself when nothing else is set, and calls :func:`activate` here for
everything else.  :func:`activate` reads the
``BUMP_GLOBAL_*`` options (bump_global/_config.py defines them) and installs;
it never raises: a bad value or a refusal is one line on stderr and start-up
continues without the allocator.

Two cases change what it does:
- the process is the ``bump-global`` command line itself: it installs nothing,
  because ``bump-global run`` installs with its own options (the variables are
  their defaults, the command line wins);
- ``BUMP_GLOBAL_SESSION`` names the session of a parent that reports at exit:
  this process joins it (bump_global/_session.py) instead of reporting alone.
"""

from __future__ import annotations

import os
import sys
import time

from bump_global._config import (
    DEFAULT_GC,
    DEFAULT_RECLAIM,
    ENV_PREFIX,
    FALSE_VALUES,
    TRUE_VALUES,
    OptionError,
    parse_flag,
)
from bump_global._record import Record
from bump_global._startup import is_command_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Mapping, Optional

PREFIX = ENV_PREFIX
__all__ = ["FALSE_VALUES", "TRUE_VALUES", "Options", "activate", "is_command_line",
           "parse_flag", "read_options"]

_activated = False


class Options(Record):
    """What the environment asks for (sizes as written, everything else typed)."""

    size: str
    scope: str
    on_exhausted: str
    report: bool
    histogram: bool
    prefault: bool
    huge_pages: bool = False
    gc: str = DEFAULT_GC
    reclaim: str = DEFAULT_RECLAIM
    numpy: bool = False
    json: Optional[str] = None
    sample: Optional[float] = None
    timeline: Optional[str] = None


def read_options(environ: Mapping[str, str]) -> Optional[Options]:
    """The options `environ` asks for, or None if ``BUMP_GLOBAL`` is off or unset.

    Raises ValueError naming every variable with a bad value and what it accepts.
    """
    from bump_global._config import (
        INSTALL_OPTIONS,
        SESSION_OPTIONS,
        check_session,
        env_enabled,
        read_environment,
    )

    if not env_enabled(environ):
        return None
    values, problems = read_environment(environ)
    if problems:
        raise OptionError("; ".join(problems))
    check_session(values, "env")
    fields = {option.name: values.get(option.name, option.default)
              for option in INSTALL_OPTIONS + SESSION_OPTIONS}
    fields["size"] = environ.get(INSTALL_OPTIONS[0].env, INSTALL_OPTIONS[0].default)
    return Options(**fields)


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
    if options is None or is_command_line():
        return
    import bump_global
    from bump_global._config import Config, Session

    config = Config.from_values({**options._asdict(), "size": options.size}, "env")
    directory = environ.get("BUMP_GLOBAL_SESSION")  # _session.SESSION_VAR
    session = Session(report=options.report, json=options.json, sample=options.sample,
                      timeline=options.timeline)
    if directory or session.wanted:
        from bump_global import _session

        _session.prepare()
    sampler = None
    if options.sample is not None and not directory:
        from bump_global._timeline import Sampler

        sampler = Sampler(options.sample)  # storage made before the install
    try:
        bump_global._install(config, "env")
    except bump_global.BumpGlobalError as exc:
        # A refusal that names no option is about BUMP_GLOBAL itself.
        where = "" if f"{PREFIX}_" in str(exc) else f"{PREFIX}={environ[PREFIX]!r}: "
        _warn(f"{where}{exc}; the allocator is not installed")
        return
    if not (directory or session.wanted):
        return  # nothing to report: start-up imports nothing more
    from bump_global import _session

    if directory and _session.join(directory, start):
        return  # the session's root reports for every process
    if session.wanted:
        if sampler is not None:
            sampler.start(start)
        _session.start(session, start, sampler)


def _warn(message: str) -> None:
    """`message` as one line on stderr, whatever state stderr is in."""
    try:
        print("bump_global: " + " ".join(message.split()), file=sys.stderr, flush=True)
    except Exception:  # nowhere left to say it
        pass
