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
    bump_global`` where the interpreter's command line cannot be read at start-up)
    with other options: start again without it, so that the command line's options
    apply (a session the environment started here is dropped: its watcher stays
    quiet)."""
    from bump_global import _session

    if _session.active():
        _session.discard(_session.directory())
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
        _session.prepare(session)  # before the install: the report counts none of it
        if hasattr(os, "fork"):
            return _supervise(target, config, sources, session, error)
    try:
        _api.install_config(config, sources)
    except BumpGlobalError as exc:
        raise UsageError(str(exc)) from exc
    _config.export_environment(config, os.environ)
    t0 = time.perf_counter()
    if session.wanted:  # no fork here (Windows): the program reports at its exit
        _session.start(session, t0, target.command(), emit=error)
    _api.start_sites(config)
    return _execute(target)


#: Signals the supervisor passes on to the program.  SIGINT is not among them: a
#: terminal's Ctrl-C reaches both, and the supervisor ignores it (the program
#: decides what Ctrl-C does, and the supervisor reports when it has ended).
_FORWARDED = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _supervise(target: Target, config: Config, sources: Dict[str, str], session: Any,
               error: Any) -> int:
    """Run the program in a child process and report when it has ended, however it
    ended (bump_global/_session.py): this process never installs the allocator, and
    exits with the program's status -- the same signal if one ended it."""
    import signal

    from bump_global import _session

    t0 = time.perf_counter()
    directory = _session.create(session, t0, "supervisor")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the program
        try:
            _api.install_config(config, sources)
        except BumpGlobalError as exc:
            error(str(exc))
            os._exit(2)
        _config.export_environment(config, os.environ)
        _session.join(directory, t0, "root", target.command(), session)
        _api.start_sites(config)
        return _execute(target)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _FORWARDED:
        signal.signal(getattr(signal, name), lambda signo, frame: os.kill(pid, signo))
    _, status = os.waitpid(pid, 0)
    for name in _FORWARDED + ("SIGINT",):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    code = os.waitstatus_to_exitcode(status)
    ended = signal.Signals(-code).name if code < 0 else None
    if _session.joined(directory):
        ok = _session.collect_and_report(directory, session, error, ended)
        if not ok and code == 0:
            code = 1  # an output could not be written
    else:
        _session.discard(directory)  # the program never ran (a refused install)
    if code < 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), -code)  # the program's signal: the same status for the shell
    return code


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
