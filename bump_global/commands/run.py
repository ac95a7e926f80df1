"""``bump-global run [options] (SCRIPT | -m MODULE | -c CODE) [ARGS...]``.

Installs bump_global with the options given (the ``BUMP_GLOBAL_*`` variables are
their defaults: the command line wins), then runs the target exactly as
``python`` would (bump_global/_runner.py).  The program's Python child
processes run under the allocator too (``BUMP_GLOBAL=1`` and the options are
exported to them), and with ``--report``, ``--json`` or ``--timeline`` the
report at exit covers every process (bump_global/_session.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Dict, Sequence

from bump_global import _api, _config
from bump_global._config import INSTALL_OPTIONS, SESSION_OPTIONS, Config
from bump_global._errors import BumpGlobalError, OptionError
from bump_global._runner import Target, TargetError, split_run_args

PARSER: Dict[str, Any] = {
    "usage": "bump-global run [options] (SCRIPT | -m MODULE | -c CODE) [ARGS...]",
    "description": "Install bump_global, then run SCRIPT, -m MODULE or -c CODE exactly as "
                   "python would (same sys.argv, sys.path[0], __main__ and exit code). "
                   "Everything after the target goes to the target. The BUMP_GLOBAL_* "
                   "variables give the defaults of the options; the program's Python "
                   "children run under the allocator too.",
}

#: Modules whose frames are trimmed from the head of the target's traceback.
_OWN_MODULES = frozenset({__name__, "bump_global._runner", "bump_global._timeline", "runpy"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bump_global._config import add_arguments as add_options

    add_options(parser, INSTALL_OPTIONS + SESSION_OPTIONS)
    target = parser.add_argument_group("target (one of; everything after it is ARGS)")
    target.add_argument("SCRIPT", nargs="?", help="a Python file, or a directory or zip file "
                                                  "with __main__.py")
    target.add_argument("-m", metavar="MODULE", dest="module_help",
                        help="run a module, as python -m")
    target.add_argument("-c", metavar="CODE", dest="code_help",
                        help="run code, as python -c")


def _trimmed(tb: Any) -> Any:
    """`tb` without its leading frames of this CLI and runpy."""
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in _OWN_MODULES:
        tb = tb.tb_next
    return tb


def _print_uncaught(exc: BaseException) -> None:
    tb = _trimmed(exc.__traceback__)
    exc.__traceback__ = tb
    sys.excepthook(type(exc), exc, tb)


def _reexec_without_activation(args: Sequence[str]) -> int:
    """The environment installed the allocator in this very process (``python -m
    bump_global`` on 3.9 cannot be told apart at start-up) with other options:
    start again without it, so that the command line's options apply."""
    env = dict(os.environ, BUMP_GLOBAL="0")
    command = [sys.executable, "-m", "bump_global", "run", *args]
    if sys.platform == "win32":
        import subprocess

        return subprocess.call(command, env=env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached


def main(args: Sequence[str]) -> int:
    """``run``: validate everything, install, run the target as python would."""
    from bump_global import _session
    from bump_global.commands import UsageError, build_parser, error

    try:
        own, target = split_run_args(args)
    except TargetError as exc:
        raise UsageError(str(exc)) from exc
    ns, unknown = build_parser("run").parse_known_args(["run", *own])
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)} "
                         "(see 'bump-global run --help')")
    environment, problems = _config.read_environment(os.environ)
    if problems:
        raise UsageError("; ".join(problems) + ": fix or unset the variable (the "
                         "BUMP_GLOBAL_* variables are the defaults of run's options)")
    try:
        values, sources = _config.from_namespace(ns, INSTALL_OPTIONS, environment)
        outputs, output_sources = _config.from_namespace(ns, SESSION_OPTIONS, environment)
        sources.update(output_sources)
        # An option the user did not set is named by its flag: where to set it.
        sources = {name: "env" if where == "env" else "cli" for name, where in sources.items()}
        session = _config.check_report_options(outputs, "cli")
        if session.flamegraph is not None:
            if ns.sites is False:
                raise OptionError("--flamegraph needs the sites: drop --no-sites")
            values["sites"] = True  # a flame graph needs the sites
        config = Config.from_values(values, sources)
    except OptionError as exc:
        raise UsageError(str(exc)) from exc
    for option in SESSION_OPTIONS:
        path = getattr(session, option.name)
        if option.kind == "path" and path is not None:
            problem = _session.output_problem(path)
            if problem is not None:
                raise UsageError(f"{option.where(sources[option.name])} {path!r}: {problem}")
    if target is None:
        raise UsageError("nothing to run: give a SCRIPT, -m MODULE or -c CODE "
                         "(e.g. bump-global run script.py)")
    target.prepare_sys()  # before the check: -m searches from the target's sys.path
    try:
        target.check()
    except TargetError as exc:
        raise UsageError(str(exc)) from exc
    current = _api.installed_config()
    if current is not None:
        from bump_global import _region

        if current != config.replace(size=_region.round_size(config.size)):
            return _reexec_without_activation(args)
    if session.wanted:
        _session.prepare()  # before the install: the report counts none of it
    sampler = None
    if session.sample is not None:
        from bump_global._timeline import Sampler

        sampler = Sampler(session.sample)  # storage made before the install
    try:
        _api.install_config(config, sources)
    except BumpGlobalError as exc:
        raise UsageError(str(exc)) from exc
    _config.export_environment(config, os.environ)
    t0 = time.perf_counter()
    if session.wanted:
        _session.start(session, t0, sampler, warn=error)
        if sampler is not None:
            sampler.start(t0)
    return _execute(target)


def _execute(target: Target) -> int:
    try:
        target.execute()
    except SystemExit:
        raise  # the interpreter prints its message and exits with its code, as python
    except KeyboardInterrupt as exc:
        _print_uncaught(exc)
        # Re-raise so the interpreter exits as python does on Ctrl-C (killed by
        # SIGINT), without printing the traceback a second time.
        sys.excepthook = lambda *args: None
        raise
    except BaseException as exc:  # noqa: B036 - as python: any uncaught exception
        _print_uncaught(exc)
        return 1
    return 0
