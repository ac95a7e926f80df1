"""Reports at exit for a whole program: every process that ran under the allocator.

A *session* starts in the process that asked for a report (``bump-global run
--report/--json/--timeline``, or ``BUMP_GLOBAL_REPORT``, ``BUMP_GLOBAL_JSON``,
``BUMP_GLOBAL_TIMELINE`` at activation): the *root*.  It makes a directory and
exports ``BUMP_GLOBAL_SESSION=<dir>``, so that:

- a child that starts a new interpreter under the allocator (multiprocessing's
  spawn and forkserver, ``subprocess`` running Python, pip's build steps)
  *joins* the session at activation (role ``"spawn"``);
- a forked child joins through ``os.register_at_fork`` (role ``"fork"``); its
  figures are what it did after the fork (the counters it inherited are its
  parent's, so they are subtracted).

Every process that joined writes its record (:func:`bump_global._report.
snapshot_record`) to ``<dir>/<pid>.json`` when it ends: at exit (atexit), or in
``os._exit`` (wrapped: mypy and multiprocessing's forked workers end that way).
A process killed by a signal writes none: SIGKILL cannot be caught, and a
Python-level SIGTERM handler is not safe to add behind a program's back (it
runs only when the interpreter gets control: a pool worker that
multiprocessing terminates while it waits on a semaphore the parent holds
would never die).  Each process also appends "pid ppid argv" to
``<dir>/started`` when it joins.  When the root ends, it waits briefly for
children still alive, then prints and writes the combined report and removes
the directory; processes that joined but left no record are listed as missing.

Whatever the report needs runs with the C core's report guard on: an
allocation that no longer fits in the region is served by the previous
allocator, so a report after the region filled (even under
``on_exhausted="error"``) has memory to work with.  The figures are taken
before anything else, so they describe the program, not the report.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

from bump_global._config import ReportOptions
from bump_global._errors import warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

SESSION_VAR = "BUMP_GLOBAL_SESSION"

#: How long the root waits at exit for children that joined and are still alive.
#: Workers are joined or terminated before the root's exit handler runs
#: (multiprocessing and concurrent.futures do it first); what is still alive
#: then is a helper that outlives the root (multiprocessing's resource tracker
#: or fork server), listed as still running.
CHILD_WAIT_S = 0.5


class _State:
    """This process's part in a session (one per process; reset in forked children)."""

    def __init__(self) -> None:
        self.directory: Optional[str] = None
        self.options = ReportOptions()
        self.role = "root"
        self.pid = 0
        self.ppid = 0
        self.t0 = 0.0                 # time.perf_counter() when the program started
        self.session_t0 = 0.0         # the root's t0: timelines share its clock
        self.baseline: Optional[Tuple[Any, Any]] = None  # (stats, histogram) at fork
        self.sampler: Any = None
        self.finished = False
        self.emit: Optional[Callable[[str], None]] = None  # how the root says one line


_state = _State()
_real_exit: Optional[Callable[[int], Any]] = None


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


def active() -> bool:
    return _state.directory is not None


def prepare() -> None:
    """Import what a session needs, before the allocator is installed: the
    report then counts none of it, and needs no import at exit (when the
    region may be full)."""
    import platform
    import shutil  # noqa: F401
    import tempfile  # noqa: F401

    from bump_global import _report  # noqa: F401

    platform.platform()  # cached: the report asks again at exit


def start(options: ReportOptions, t0: float, sampler: Any = None,
          warn: Optional[Callable[[str], None]] = None) -> None:
    """Make this process the root of a session reporting as `options` asks."""
    import tempfile

    _state.options = options
    _state.role = "root"
    _state.pid, _state.ppid = os.getpid(), os.getppid()
    _state.t0 = _state.session_t0 = t0
    _state.sampler = sampler
    _state.emit = warn
    _state.directory = tempfile.mkdtemp(prefix="bump_global-session-")
    with open(os.path.join(_state.directory, "session.json"), "w", encoding="utf-8") as out:
        json.dump({"root": _state.pid, "t0": t0, "sample": options.sample}, out)
    os.environ[SESSION_VAR] = _state.directory
    from bump_global._config import SESSION_OPTIONS

    for option in SESSION_OPTIONS:  # children report through the session, never alone
        os.environ.pop(option.env, None)
    _hook_exits()


def join(directory: str, t0: float) -> bool:
    """Join the session in `directory` as a spawned child; False if it is gone."""
    try:
        with open(os.path.join(directory, "session.json"), encoding="utf-8") as src:
            info = json.load(src)
    except (OSError, ValueError):
        return False
    _state.directory = directory
    _state.options = ReportOptions(sample=info.get("sample"))
    _state.role = "spawn"
    _state.pid, _state.ppid = os.getpid(), os.getppid()
    _state.t0 = t0
    _state.session_t0 = float(info.get("t0", t0))
    if _state.options.sample is not None:
        _start_sampler()
    _announce()
    _hook_exits()
    return True


def _hook_exits() -> None:
    global _real_exit
    atexit.register(finish)
    if _real_exit is None:
        _real_exit = os._exit
        os._exit = _exit_with_record  # type: ignore[assignment]
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _exit_with_record(status: int) -> None:
    """os._exit, after this process's record is written."""
    finish("os._exit")
    assert _real_exit is not None
    _real_exit(status)


def _after_fork() -> None:
    """In a forked child: a new member of the session, with its own figures."""
    if _state.directory is None:
        return
    _state.role = "fork"
    _state.pid, _state.ppid = os.getpid(), os.getppid()
    _state.t0 = time.perf_counter()
    _state.finished = False
    _state.emit = None
    try:
        from bump_global import _core

        _state.baseline = (_core.stats(), _core.histogram())
    except Exception:  # no figures to subtract: the record says what it can
        _state.baseline = None
    if _state.options.sample is not None:
        _state.sampler = None
        _start_sampler()
    _announce()


def _start_sampler() -> None:
    try:
        from bump_global._timeline import Sampler

        sampler = Sampler(_state.options.sample or 10.0)
        sampler.start(_state.session_t0)
        _state.sampler = sampler
    except Exception:  # a child without a timeline is still reported
        _state.sampler = None


def _announce() -> None:
    """Append "pid ppid argv" to the session's list of processes that joined (one
    O_APPEND write of a short line: atomic among processes)."""
    assert _state.directory is not None
    line = json.dumps([_state.pid, _state.ppid, list(sys.argv)[:8]])[:2000]
    try:
        fd = os.open(os.path.join(_state.directory, "started"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def finish(exit_kind: str = "normal") -> None:
    """Write this process's record (a child) or the whole report (the root). Never raises."""
    if _state.directory is None or _state.finished or os.getpid() != _state.pid:
        return
    _state.finished = True
    from bump_global._api import guarded

    try:
        with guarded():  # before any import: the region may be full
            from bump_global import _report

            record = _report.snapshot_record(
                wall_time=time.perf_counter() - _state.t0, pid=_state.pid,
                ppid=_state.ppid, argv=list(sys.argv), role=_state.role, exit=exit_kind,
                baseline=_state.baseline)
            samples = _stop_sampler()
            if _state.role == "root":
                _finish_root(record, samples)
            else:
                _write_child(record, samples)
    except Exception as exc:  # a report must never take the program's exit status
        _say(f"the report of process {_state.pid} failed ({exc!r})")


def _stop_sampler() -> List[Any]:
    sampler = _state.sampler
    if sampler is None:
        return []
    sampler.stop()
    try:
        return list(sampler.samples())
    finally:
        sampler.close()


def _write_child(record: Dict[str, Any], samples: List[Any]) -> None:
    assert _state.directory is not None
    record["timeline"] = samples
    path = os.path.join(_state.directory, f"{_state.pid}.json")
    temporary = path + ".part"
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(temporary, path)
    except OSError:
        pass  # the session ended before this process (the root lists it as missing)


def _started() -> Dict[int, Tuple[int, List[str]]]:
    """{pid: (ppid, argv)} of every process that joined, in the order they did."""
    assert _state.directory is not None
    started: Dict[int, Tuple[int, List[str]]] = {}
    try:
        with open(os.path.join(_state.directory, "started"), encoding="utf-8") as src:
            for line in src:
                try:
                    pid, ppid, argv = json.loads(line)
                except ValueError:
                    continue  # a line cut short
                started[int(pid)] = (int(ppid), list(argv))
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
    # A zombie (our own child, not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            return src.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _collect(started: Dict[int, Tuple[int, List[str]]]
             ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(records, missing) of the children, waiting up to CHILD_WAIT_S for live ones."""
    assert _state.directory is not None
    deadline = time.monotonic() + CHILD_WAIT_S
    records: Dict[int, Dict[str, Any]] = {}
    while True:
        for pid in started:
            if pid in records:
                continue
            try:
                with open(os.path.join(_state.directory, f"{pid}.json"),
                          encoding="utf-8") as src:
                    records[pid] = json.load(src)
            except (OSError, ValueError):
                pass
        waiting = [pid for pid in started if pid not in records and _alive(pid)]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    ordered = [records[pid] for pid in started if pid in records]
    missing = [{"pid": pid, "ppid": ppid, "argv": argv,
                "state": "running" if _alive(pid) else "ended"}
               for pid, (ppid, argv) in started.items() if pid not in records]
    return ordered, missing


def _finish_root(record: Dict[str, Any], samples: List[Any]) -> None:
    import shutil

    from bump_global import _report

    assert _state.directory is not None
    children, missing = _collect(_started())
    shutil.rmtree(_state.directory, ignore_errors=True)
    os.environ.pop(SESSION_VAR, None)
    options = _state.options
    rows = [(_state.pid, *sample) for sample in samples]
    for child in children:
        rows.extend((child["pid"], *sample) for sample in child.pop("timeline", None) or ())
    if options.timeline is not None:
        _write_timeline(options.timeline, rows)
    combined = _report.session_dict([record, *children], missing,
                                    _report.timeline_tree_peak(rows))
    if options.json is not None:
        try:
            with open(options.json, "w", encoding="utf-8") as out:
                json.dump(combined, out, indent=2)
                out.write("\n")
        except OSError as exc:
            _say(f"cannot write the JSON report to {options.json!r}: {exc}")
    if options.report:
        text = _report.format_session(combined)
        try:
            sys.stdout.flush()
        except Exception:  # stdout may be closed: the report goes to stderr
            pass
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _write_timeline(path: str, rows: List[Tuple[Any, ...]]) -> None:
    from bump_global._timeline import write_session_rows

    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            write_session_rows(out.write, rows, csv=path.lower().endswith(".csv"))
    except OSError as exc:
        _say(f"cannot write the timeline to {path!r}: {exc}")


def _say(message: str) -> None:
    """One line for the user: through the command line's error printer in its
    process, else on stderr."""
    if _state.emit is not None:
        _state.emit(message)
    else:
        warn(message)
