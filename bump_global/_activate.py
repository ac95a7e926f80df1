"""Install the allocator at interpreter start-up when ``BUMP_GLOBAL=1`` asks for more
than the defaults: the full path.

``bump_global_activate.pth`` in site-packages reads the variable itself, tries
bump_global/_startup.py's fast path (the defaults), and calls :func:`activate`
here for everything else: it reads the ``BUMP_GLOBAL_*`` options (defined in
bump_global/_config.py) and installs.  It never raises: a bad value or a refusal
is one line on stderr and start-up continues without the allocator.

Two cases change what it does:
- the process is the ``bump-global`` command line itself: it installs nothing,
  because ``bump-global run`` installs with its own options (the variables are
  their defaults, the command line wins);
- ``BUMP_GLOBAL_SESSION`` names the session of a parent that reports at exit:
  this process joins it (bump_global/_session.py) instead of reporting alone.

Nothing imports this module: it is the top of the package's import graph.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Optional

from bump_global import _config, _startup
from bump_global._errors import BumpGlobalError, OptionError
from bump_global._errors import warn as _warn

_activated = False


def read_options(environ: Mapping[str, str]
                 ) -> Optional[tuple[_config.Config, _config.ReportOptions]]:
    """(install configuration, what to report) `environ` asks for, or None if
    ``BUMP_GLOBAL`` is off or unset.  OptionError naming every variable with a bad
    value and what it accepts."""
    if not _config.env_enabled(environ):
        return None
    values, problems = _config.read_environment(environ)
    if problems:
        raise OptionError("; ".join(problems))
    report = _config.check_report_options(values, "env")
    if report.flamegraph is not None:
        values.setdefault("sites", True)  # a flame graph needs the sites
    return _config.Config.from_values(values, "env"), report


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
        _warn(f"activation from {_config.ENV_PREFIX} failed ({exc!r}); the allocator is "
              "not installed")


def _activate(environ: Mapping[str, str], start: float) -> None:
    try:
        options = read_options(environ)
    except ValueError as exc:
        _warn(f"{exc}; the allocator is not installed")
        return
    if options is None or _startup.is_command_line():
        return
    config, report = options
    from bump_global import _api

    directory = environ.get("BUMP_GLOBAL_SESSION")  # _session.SESSION_VAR
    if directory or report.wanted:
        from bump_global import _session

        _session.prepare(report)
        report = _checked_outputs(report, _session.output_problem)
    try:
        _api.install_config(config, "env")
    except BumpGlobalError as exc:
        # A refusal that names no option is about BUMP_GLOBAL itself.
        prefix = _config.ENV_PREFIX
        where = "" if f"{prefix}_" in str(exc) else f"{prefix}={environ[prefix]!r}: "
        _warn(f"{where}{exc}; the allocator is not installed")
        return
    if directory or report.wanted:
        from bump_global import _session

        if not (directory and _session.join(directory, start)) and report.wanted:
            _session.start(report, start)
    _api.start_sites(config)  # last: the activation's own work is not the program's


def _checked_outputs(report: _config.ReportOptions, problem_of: Callable[[str], Optional[str]]
                     ) -> _config.ReportOptions:
    """`report` without the outputs that cannot be written, each refused in one line
    naming its variable (checked before the program starts)."""
    changes = {}
    for option in _config.SESSION_OPTIONS:
        path = getattr(report, option.name)
        if option.kind == "path" and path is not None:
            problem = problem_of(path)
            if problem is not None:
                _warn(f"{option.env}={path!r}: {problem}; nothing is written there")
                changes[option.name] = None
    if changes.get("timeline", report.timeline) is None:
        changes["sample"] = None
    return report.replace(**changes) if changes else report
