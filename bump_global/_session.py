"""Reports of a whole program: every process that ran under the allocator, however
it ended.

A *session* starts when a report is asked for (``bump-global run --report/--json/
--timeline/--flamegraph``, or ``BUMP_GLOBAL_REPORT``, ``BUMP_GLOBAL_JSON``...).
Its directory holds, per process that joined it, files that outlive the process:

==================  ===========================================================
``session.json``    the session: its clock's origin, the timeline interval,
                    who collects
``started``         a line per process that joined: pid, parent, command, role
``<pid>.meta.json`` the process: parent, command, role, configuration, and for
                    a forked child the counters it inherited (subtracted)
``<pid>.state``     its recorder's snapshots of its figures (core/recorder.c):
                    rewritten as they change; at SIGTERM a last one
``<pid>.timeline``  its memory samples (``--sample``), appended as taken
``<pid>.sites``     its allocation samples (``--sites``), appended
``<pid>.json``      its exact record, written when it ends through Python
                    (normal exit, an exception, ``os._exit``)
==================  ===========================================================

So a record never depends on the dying process running code at its end: a worker
that ``Pool.__exit__`` terminates, a process killed by SIGKILL or a crash, is
reported from its files -- its figures as of its last snapshot (SIGTERM: its
end; otherwise at most a recorder tick, 20 ms, before it) -- marked with how it
ended.  Processes join: the root when the session starts; a child that starts a
new interpreter under the allocator (multiprocessing's spawn and forkserver,
``subprocess`` running Python, pip's build steps) at activation, through
``BUMP_GLOBAL_SESSION``; a forked child through ``os.register_at_fork``.

The *collector* reads every process's files when the program has ended and
writes the outputs (the text report, the JSON, the timeline, the flame graph):

- under ``bump-global run``, the command line's own process, which forked the
  program and waited for it (a supervisor that never installs the allocator):
  the report is written before ``bump-global`` exits, whatever ended the
  program, and the exit status is the program's (a signal's included);
- under ``BUMP_GLOBAL=1``, the root at its exit; if the root itself is killed,
  a watcher process started with the session (bump_global/_watch.py) writes
  the report just after it.

Whatever the report needs runs with the C core's report guard on: an allocation
that no longer fits is served by the previous allocator, so a report after the
region filled (even under ``on_exhausted="error"``) has memory to work with.  A
process's figures are taken before anything else, so they describe the program,
not the report.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import struct
import sys
import time
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from bump_global._config import OPTIONS, ReportOptions
from bump_global._errors import warn

SESSION_VAR = "BUMP_GLOBAL_SESSION"

#: How long a collector waits for processes that joined and are still alive.
#: Workers are joined or terminated before the root ends (multiprocessing and
#: concurrent.futures do it first); what is still alive then is a helper that
#: outlives the root (multiprocessing's resource tracker or fork server): it is
#: reported as still running, with its figures so far.
CHILD_WAIT_S = 0.5


class _Member:
    """This process's part in a session (reset in forked children)."""

    def __init__(self) -> None:
        self.directory: Optional[str] = None
        self.options = ReportOptions()
        self.role = "root"
        self.pid = 0
        self.ppid = 0
        self.argv: List[str] = []
        self.t0 = 0.0                  # time.perf_counter() when this process joined
        self.session_t0 = 0.0          # the session's clock origin (the root's t0)
        self.collects = False          # this process writes the report at its exit
        self.baseline: Optional[Tuple[Any, Any]] = None  # (stats, histogram) at fork
        self.recorder = False          # the native recorder runs
        self.sampler: Any = None       # the Python sampler, where the recorder cannot run
        self.files: List[Any] = []     # open state/timeline files (kept while alive)
        self.finished = False
        self.emit: Optional[Callable[[str], None]] = None  # how the collector says one line


_me = _Member()
_real_exit: Optional[Callable[[int], Any]] = None
_hooks = False


def active() -> bool:
    return _me.directory is not None


def directory() -> str:
    """This process's session directory (active() must be True)."""
    assert _me.directory is not None
    return _me.directory


def prepare(options: Optional[ReportOptions] = None) -> None:
    """Import what a session needs, before the allocator is installed: the report
    then counts none of it, and needs no import at exit (when the region may be
    full)."""
    import platform
    import shutil  # noqa: F401
    import tempfile  # noqa: F401

    from bump_global import _report  # noqa: F401

    platform.platform()  # cached: the report asks again at exit
    if options is not None and options.flamegraph is not None:
        from bump_global import _flamegraph  # noqa: F401


def output_problem(path: str) -> Optional[str]:
    """None if a report output can be written at `path`, else why not, with what to
    do.  Checked before the program runs: the file is opened for appending (made if
    it did not exist, then removed again), so a directory, a missing or read-only
    directory, or a file system that refuses files (/proc) is found now, not after."""
    if not path or os.path.isdir(path):
        return "is a directory: give a file name"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"directory {parent!r} does not exist: create it first or write elsewhere"
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc}): write elsewhere"
    if not existed:
        try:
            os.unlink(path)
        except OSError:
            pass
    return None


def command_line() -> List[str]:
    """This process's command as it was typed, without the interpreter: ``-m black
    --check src``, ``script.py arg``, ``-c CODE``."""
    from bump_global._startup import original_argv

    argv = original_argv()[1:]
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-m", "-c"):
        i += 2 if argv[i] in ("-X", "-W", "--check-hash-based-pycs") else 1
    return argv[i:] or list(sys.argv)


# ------------------------------------------------------------------ joining


def create(options: ReportOptions, t0: float, collector: str) -> str:
    """Make a session's directory (for the program about to run, or running here);
    `collector`: "root" (the root reports at its exit) or "supervisor"."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="bump_global-session-")
    with open(os.path.join(directory, "session.json"), "w", encoding="utf-8") as out:
        json.dump({"t0": t0, "sample": options.sample, "collector": collector,
                   "creator": os.getpid()}, out)
    os.environ[SESSION_VAR] = directory
    from bump_global._config import SESSION_OPTIONS

    for option in SESSION_OPTIONS:  # children report through the session, never alone
        os.environ.pop(option.env, None)
    return directory


def start(options: ReportOptions, t0: float, argv: Optional[List[str]] = None,
          emit: Optional[Callable[[str], None]] = None) -> None:
    """Make this process the root of a session that reports at its exit as `options`
    asks (``BUMP_GLOBAL=1``); a watcher reports instead if it is killed."""
    directory = create(options, t0, "root")
    if not join(directory, t0, "root", argv or command_line(), options):
        return
    _me.collects = True
    _me.emit = emit
    _start_watcher(directory)


def join(directory: str, t0: float, role: str = "spawn", argv: Optional[List[str]] = None,
         options: Optional[ReportOptions] = None) -> bool:
    """Join the session in `directory` (a spawned child, or the root); False if it
    is gone.  The process's files are made and its recorder started."""
    try:
        with open(os.path.join(directory, "session.json"), encoding="utf-8") as src:
            info = json.load(src)
    except (OSError, ValueError):
        return False
    _me.directory = directory
    _me.options = options or ReportOptions(sample=info.get("sample"))
    _me.role = role
    _me.pid, _me.ppid = os.getpid(), os.getppid()
    _me.argv = list(argv) if argv is not None else command_line()
    _me.t0 = t0
    _me.session_t0 = float(info.get("t0", t0))
    _me.finished = False
    _me.collects = False
    _begin()
    _hook_exits()
    return True


def _path(name: str, pid: Optional[int] = None) -> str:
    assert _me.directory is not None
    return os.path.join(_me.directory, f"{_me.pid if pid is None else pid}.{name}")


def _begin() -> None:
    """Files, recorder and sites of this process, and its line in ``started``."""
    from bump_global import _api, _sites

    config = _api.installed_config()
    meta = {"pid": _me.pid, "ppid": _me.ppid, "argv": _me.argv, "role": _me.role,
            "t0": _me.t0, "config": config._asdict() if config is not None else None,
            "baseline": list(_me.baseline[0]) if _me.baseline else None}
    with open(_path("meta.json"), "w", encoding="utf-8") as out:
        json.dump(meta, out)
    _start_recorder()
    if config is not None and config.sites:
        _sites.move_to(_me.directory)  # type: ignore[arg-type]
    _announce()


def _start_recorder() -> None:
    from bump_global._errors import load_core
    from bump_global._timeline import PythonSampler, native_unavailable

    _me.recorder = False
    _me.sampler = None
    for file in _me.files:
        file.close()
    _me.files = []
    interval = _me.options.sample
    if native_unavailable() is None:
        state = open(_path("state"), "wb", buffering=0)  # only its descriptor is used
        timeline = open(_path("timeline"), "wb", buffering=0) if interval is not None else None
        _me.files = [f for f in (state, timeline) if f is not None]
        try:
            load_core().recorder_start(_me.session_t0, state.fileno(),
                                       timeline.fileno() if timeline else -1,
                                       (interval or 0) / 1000.0)
        except (OSError, RuntimeError, ValueError):
            pass  # reported only when it ends through Python
        else:
            _me.recorder = True
            return
    if interval is not None:
        _me.sampler = PythonSampler(interval)
        _me.sampler.start(_me.session_t0)


def _announce() -> None:
    """Append "[pid, ppid, argv, role]" to the session's list of processes that
    joined (one O_APPEND write of a short line: atomic among processes)."""
    line = json.dumps([_me.pid, _me.ppid, _me.argv[:8], _me.role])[:2000]
    try:
        fd = os.open(os.path.join(_me.directory, "started"),  # type: ignore[arg-type]
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _hook_exits() -> None:
    global _real_exit, _hooks
    atexit.register(finish)
    if _real_exit is None:
        _real_exit = os._exit
        os._exit = _exit_with_record  # type: ignore[assignment]
    if not _hooks and hasattr(os, "register_at_fork"):
        from bump_global._errors import load_core

        core = load_core()
        # The recorder does not follow a fork, and CPython warns when fork() copies
        # a multi-threaded process: paused before, resumed in the parent at its
        # next bytecode (C hooks: Python ones would run the pending call at once).
        import functools

        os.register_at_fork(before=core.recorder_pause,
                            after_in_parent=functools.partial(core.recorder_resume, True),
                            after_in_child=_after_fork)
        _hooks = True


def _exit_with_record(status: int) -> None:
    """os._exit, after this process's record is written."""
    finish("os._exit", status)
    assert _real_exit is not None
    _real_exit(status)


def _after_fork() -> None:
    """In a forked child: a new member of the session, with its own figures."""
    if _me.directory is None or not os.path.isdir(_me.directory):
        _me.directory = None
        return
    try:
        from bump_global._errors import load_core

        core = load_core()
        _me.baseline = (core.stats(), core.histogram())
    except Exception:  # no figures to subtract: the record says what it can
        _me.baseline = None
    _me.role = "fork"
    _me.pid, _me.ppid = os.getpid(), os.getppid()
    _me.t0 = time.perf_counter()
    _me.finished = False
    _me.collects = False
    _me.emit = None
    try:
        _begin()
    except Exception:  # a child without its files is still reported at its exit
        pass


# ------------------------------------------------------------------ ending


def _interrupted() -> bool:
    """True when the interpreter is ending on an unhandled KeyboardInterrupt (Ctrl-C):
    CPython then dies of SIGINT once it has finalized, after the exit handlers."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)


def finish(exit_kind: str = "normal", status: Optional[int] = None) -> None:
    """Write this process's record, and, if it collects, the report. Never raises.
    `status`: the status given to os._exit."""
    if _me.directory is None or _me.finished or os.getpid() != _me.pid:
        return
    _me.finished = True
    signal_name = None
    if exit_kind == "normal" and _interrupted():
        exit_kind, signal_name = "signal", "SIGINT"
    from bump_global._api import guarded

    try:
        with guarded():  # before any import: the region may be full
            from bump_global import _report
            from bump_global._errors import load_core

            record = _report.snapshot_record(
                wall_time=time.perf_counter() - _me.t0, pid=_me.pid, ppid=_me.ppid,
                argv=_me.argv, role=_me.role, exit=exit_kind, baseline=_me.baseline)
            if signal_name is not None:
                record["signal"] = signal_name
            if status is not None:
                record["status"] = status
            if _me.recorder:
                load_core().recorder_stop()
            if _me.sampler is not None:
                _me.sampler.stop()
                _me.sampler.write(_path("timeline"))
            _write_json(_path("json"), record)
            if _me.collects:
                collect_and_report(_me.directory, _me.options, _me.emit)  # type: ignore[arg-type]
    except Exception as exc:  # a report must never take the program's exit status
        _say(f"the report of process {_me.pid} failed ({exc!r})")


def _write_json(path: str, data: Any) -> None:
    temporary = path + ".part"
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(temporary, path)
    except OSError:
        pass  # the session ended before this process (it is reported from its state)


def _say(message: str) -> None:
    if _me.emit is not None:
        _me.emit(message)
    else:
        warn(message)


# --------------------------------------------------------------- collecting


def _started(directory: str) -> Dict[int, Tuple[int, List[str], str]]:
    """{pid: (ppid, argv, role)} of every process that joined, in order."""
    started: Dict[int, Tuple[int, List[str], str]] = {}
    try:
        with open(os.path.join(directory, "started"), encoding="utf-8") as src:
            for line in src:
                try:
                    pid, ppid, argv, role = json.loads(line)
                except ValueError:
                    continue  # a line cut short
                started[int(pid)] = (int(ppid), list(argv), str(role))
    except OSError:
        pass
    return started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    # A zombie (a child not yet reaped) has ended.
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            return src.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def read_state(path: str) -> Optional[Dict[str, Any]]:
    """The last whole snapshot of a ``<pid>.state`` file: the one written at SIGTERM
    (slot 1) if any, else the periodic one; None if there is none."""
    from bump_global._errors import load_core

    magic, slot, size, nvalues, _ = load_core().recorder_layout()
    layout = struct.Struct(f"=QQQqQqqqQ{nvalues}QQ")
    assert layout.size == size
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError:
        return None
    found = None
    for offset in (slot, 0):
        if len(data) < offset + size:
            continue
        fields = layout.unpack_from(data, offset)
        head, values, seq_end = fields[:9], fields[9:9 + nvalues], fields[-1]
        if head[0] != magic or head[1] != seq_end or head[8] > nvalues:
            continue
        found = {"t_s": head[3] / 1e9, "ended": head[4], "rss": head[5],
                 "peak_rss": head[6], "resident": head[7], "values": values[:head[8]]}
        break
    return found


def _record_from_files(directory: str, pid: int, ppid: int, argv: List[str], role: str,
                       running: bool) -> Optional[Dict[str, Any]]:
    """The record of a process that left no exact record, from its files."""
    from bump_global import _report, _sites
    from bump_global._errors import load_core

    state = read_state(os.path.join(directory, f"{pid}.state"))
    if state is None:
        return None
    try:
        with open(os.path.join(directory, f"{pid}.meta.json"), encoding="utf-8") as src:
            meta = json.load(src)
    except (OSError, ValueError):
        meta = {}
    names = load_core().STATS_FIELDS
    values = dict(zip(names, state["values"]))
    before = dict(zip(names, meta.get("baseline") or ()))
    if running:
        exit_kind, how = "running", None
    elif state["ended"]:
        exit_kind, how = "signal", signal.Signals(state["ended"]).name
    else:
        exit_kind, how = "killed", None
    sites = None
    try:
        with open(os.path.join(directory, f"{pid}.sites"), "rb") as src:
            sites = _sites.sites_dict(_sites.parse(src.read()))
    except OSError:
        pass
    return _report.state_record(
        pid=pid, ppid=ppid, argv=argv, role=role, exit=exit_kind, signal=how,
        t_s=state["t_s"] - (meta.get("t0", 0.0) - _session_t0(directory)),
        config=meta.get("config"), values=values, before=before,
        process={"rss": state["rss"] if state["rss"] >= 0 else None,
                 "peak_rss": state["peak_rss"] if state["peak_rss"] >= 0 else None},
        resident=state["resident"] if state["resident"] >= 0 else None, sites=sites)


def _session_t0(directory: str) -> float:
    try:
        with open(os.path.join(directory, "session.json"), encoding="utf-8") as src:
            return float(json.load(src)["t0"])
    except (OSError, ValueError, KeyError):
        return 0.0


def collect(directory: str, root_ended: Optional[str] = None
            ) -> Tuple[Dict[str, Any], List[Tuple[Any, ...]], Dict[int, Tuple[str, str]]]:
    """(the program's report, its timeline rows, {pid: (role, command)}) from the
    session's files, waiting up to CHILD_WAIT_S for processes still alive.
    `root_ended`: the signal that ended the root, if the collector knows it."""
    from bump_global import _report
    from bump_global._flamegraph import command_text
    from bump_global._timeline import read_samples

    started = _started(directory)
    deadline = time.monotonic() + CHILD_WAIT_S
    records: Dict[int, Dict[str, Any]] = {}
    while True:
        for pid in started:
            if pid in records:
                continue
            try:
                with open(os.path.join(directory, f"{pid}.json"), encoding="utf-8") as src:
                    records[pid] = json.load(src)
            except (OSError, ValueError):
                pass
        waiting = [pid for pid in started if pid not in records and _alive(pid)]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    ordered, missing = [], []
    for pid, (ppid, argv, role) in started.items():
        record = records.get(pid)
        if record is None:
            record = _record_from_files(directory, pid, ppid, argv, role, _alive(pid))
        if record is None:
            missing.append({"pid": pid, "ppid": ppid, "argv": argv,
                            "state": "running" if _alive(pid) else "ended"})
            continue
        if role == "root" and root_ended is not None:  # the supervisor saw its end
            record["exit"], record["signal"] = "signal", root_ended
        ordered.append(record)
    rows: List[Tuple[Any, ...]] = []
    processes: Dict[int, Tuple[str, str]] = {}
    for record in ordered:
        pid = record["pid"]
        rows.extend((pid, *sample)
                    for sample in read_samples(os.path.join(directory, f"{pid}.timeline")))
        processes[pid] = (record["role"], command_text(record.get("argv")))
    combined = _report.session_dict(ordered, missing, _report.timeline_tree_peak(rows))
    return combined, rows, processes


def collect_and_report(directory: str, options: ReportOptions,
                       emit: Optional[Callable[[str], None]],
                       root_ended: Optional[str] = None) -> bool:
    """Collect the session's files, remove its directory (which tells its watcher
    that the report is written), write the outputs `options` asks for; False if
    one could not be written."""
    combined, rows, processes = collect(directory, root_ended)
    discard(directory)
    return write_outputs(combined, rows, processes, options, emit)


def joined(directory: str) -> bool:
    """True if a process joined the session in `directory`."""
    return os.path.exists(os.path.join(directory, "started"))


def discard(directory: str) -> None:
    """Remove a session's directory."""
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    if os.environ.get(SESSION_VAR) == directory:
        os.environ.pop(SESSION_VAR, None)


def _write_output(option: str, path: str, what: str, write: Callable[[IO[str]], None],
                  say: Callable[[str], None]) -> bool:
    """Write one output with `write` to `path` (the value of the session option
    `option`); where that fails at the end of a run, into a file of the temporary
    directory instead, so the figures are not lost, and one line says where.
    True if `path` was written."""
    import tempfile

    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            write(out)
        return True
    except OSError as exc:
        problem = exc.strerror or str(exc)
    spelled = "/".join((OPTIONS[option].flag, OPTIONS[option].env))
    base, ext = os.path.splitext(os.path.basename(path))
    try:
        fd, rescue = tempfile.mkstemp(prefix=f"bump_global-{base or what}-", suffix=ext)
        with open(fd, "w", encoding="utf-8", newline="") as out:
            write(out)
    except OSError as exc:
        say(f"{spelled} {path!r}: cannot write the {what} there ({problem}), nor in "
            f"the temporary directory ({exc.strerror or exc}): it is lost; give a path "
            "in a directory that exists and is writable")
    else:
        say(f"{spelled} {path!r}: cannot write the {what} there ({problem}); it is in "
            f"{rescue} instead")
    return False


def write_outputs(combined: Dict[str, Any], rows: Sequence[Tuple[Any, ...]],
                  processes: Dict[int, Tuple[str, str]], options: ReportOptions,
                  emit: Optional[Callable[[str], None]]) -> bool:
    """Write the report's outputs; False if one of them could not be written where
    asked (each failure is one line, saying where it went instead)."""
    from bump_global import _report

    say = emit or warn
    ok = True
    if options.timeline is not None:
        from bump_global._timeline import write_rows

        csv = options.timeline.lower().endswith(".csv")
        ok &= _write_output("timeline", options.timeline, "timeline",
                            lambda out: write_rows(out.write, rows, csv, processes), say)
    if options.json is not None:
        def write_json(out: IO[str]) -> None:
            json.dump(combined, out, indent=2)
            out.write("\n")

        ok &= _write_output("json", options.json, "JSON report", write_json, say)
    if options.flamegraph is not None:
        from bump_global import _flamegraph

        try:
            profiles = _flamegraph.profiles_from_report(combined)
            notes = [f"{label}: no allocation sampled"
                     for label in _flamegraph.processes_without_samples(combined)]
            text = _flamegraph.render(profiles, _flamegraph.format_for_path(options.flamegraph),
                                      notes=notes)
        except ValueError as exc:
            say(f"cannot draw the flame graph: {exc}")
            ok = False
        else:
            ok &= _write_output("flamegraph", options.flamegraph, "flame graph",
                                lambda out: out.write(text), say)
    if options.report:
        text = _report.format_session(combined)
        try:
            sys.stdout.flush()
        except Exception:  # stdout may be closed: the report goes to stderr
            pass
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:
            ok = False
    return ok


# ------------------------------------------------------------------ watching


def _start_watcher(directory: str) -> None:
    """Start the process that reports if the root is killed (BUMP_GLOBAL=1 roots;
    bump-global run's supervisor needs none)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("BUMP_GLOBAL")}
    try:
        subprocess.Popen([sys.executable, "-I", "-m", "bump_global._watch", directory,
                          str(os.getpid()), json.dumps(_me.options._asdict())],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         close_fds=True, start_new_session=True)
    except OSError:
        pass  # no watcher: a root killed by a signal is not reported
