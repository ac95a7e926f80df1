"""Launching and measuring child processes: one place for compare, the benchmarks and tests.

Every measured run goes through a tiny launcher process (``python -I -S``) that
takes the time just before spawning the command and just after reaping it with
``os.wait4``, whose rusage gives the command's CPU time, page faults and peak
RSS.  The launcher is there because Linux counts the memory of the process that
spawns a child into the child's peak RSS (the spawning process's address space
is the child's until it execs): spawning directly from this process, whatever
it holds (a test runner, matplotlib) would become the floor of every
measurement.  The launcher is smaller than any Python running a script, so it
never shows.  ``ru_maxrss`` from ``wait4`` is the largest peak of the command
and the descendants it waited for, not their sum.

Also here: where the preloadable allocators (jemalloc, mimalloc) are, and the
environment of a clean child (nothing that chooses or wraps the allocator).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from typing import IO, Dict, List, Optional, Sequence, Tuple, Union

#: Shared library file names tried for each preloadable allocator, best first.
PRELOAD_NAMES: Dict[str, Tuple[str, ...]] = {
    "jemalloc": ("libjemalloc.so.2",),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc.so"),
}
PACKAGE_HINTS = {
    "jemalloc": "Debian/Ubuntu: apt install libjemalloc2",
    "mimalloc": "Debian/Ubuntu: apt install libmimalloc2.0",
}

#: Variables that choose or wrap the allocator, and the -X dev switch: a clean
#: child inherits none of them.
STRIPPED_VARS = ("PYTHONMALLOC", "LD_PRELOAD", "PYTHONTRACEMALLOC", "PYTHONDEVMODE")
STRIPPED_PREFIX = "BUMP_GLOBAL"

_STDERR_TAIL_LINES = 15
_STDERR_TAIL_BYTES = 16 * 1024

# Runs as `python -I -S -c _LAUNCHER FD NAME=VALUE... -- COMMAND...`: spawns
# COMMAND with NAME=VALUE added to its environment, waits for it, and writes
# "wait-status wall-seconds ru_maxrss ru_utime ru_stime ru_minflt ru_majflt" to
# FD.  SIGINT is ignored here (the command gets the default action back);
# SIGTERM is passed on to the command.
_LAUNCHER = """\
import os, signal, sys, time
fd = int(sys.argv[1])
env = dict(os.environ)
i = 2
while sys.argv[i] != "--":
    name, _, value = sys.argv[i].partition("=")
    env[name] = value
    i += 1
argv = sys.argv[i + 1:]
os.set_inheritable(fd, False)
signal.signal(signal.SIGINT, signal.SIG_IGN)
start = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, env, setsigdef=(signal.SIGINT,))
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
_, status, u = os.wait4(pid, 0)
wall = time.perf_counter() - start
os.write(fd, ("%d %r %d %r %r %d %d\\n" % (status, wall, u.ru_maxrss, u.ru_utime, u.ru_stime,
                                          u.ru_minflt, u.ru_majflt)).encode())
"""


@dataclass(frozen=True)
class Measurement:
    """One run of a command."""

    wall: float
    """Seconds from just before the spawn to the reaping of the process."""
    peak_rss: int
    """Peak resident set size of the process (or of its largest waited-for descendant), bytes."""
    user: float = 0.0
    """CPU seconds in user mode (the process and the descendants it waited for)."""
    system: float = 0.0
    """CPU seconds in the kernel (likewise)."""
    minor_faults: int = 0
    major_faults: int = 0

    @property
    def cpu(self) -> float:
        """user + system CPU seconds."""
        return self.user + self.system


@dataclass(frozen=True)
class RunFailure:
    """A run that did not exit with code 0."""

    description: str
    """What happened, e.g. "exited with code 1" or "was killed by SIGKILL"."""
    stderr_tail: List[str]
    """The last lines the run wrote to stderr."""




def _elf_signature(path: str) -> Optional[bytes]:
    """ELF class, byte order and machine of `path`; None if not an ELF file."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return header[4:6] + header[18:20]


def _ldconfig_entries() -> List[Tuple[str, str]]:
    """(file name, path) pairs of the dynamic linker cache (`ldconfig -p`)."""
    candidates = [shutil.which("ldconfig"), "/sbin/ldconfig", "/usr/sbin/ldconfig"]
    for ldconfig in candidates:
        if not ldconfig or not os.path.isfile(ldconfig):
            continue
        try:
            output = subprocess.run(
                [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        entries = []
        for line in output.splitlines():
            match = re.match(r"\s*(\S+)\s+\(.*\)\s+=>\s+(\S.*?)\s*$", line)
            if match:
                entries.append((match.group(1), match.group(2)))
        return entries
    return []


def _library_dirs() -> List[str]:
    """Directories where shared libraries usually are, this architecture's first."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs += [f"/usr/local/lib/{multiarch}", f"/lib/{multiarch}", f"/usr/lib/{multiarch}"]
    dirs += ["/usr/local/lib64", "/usr/local/lib", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    return dirs


def find_preload_libraries() -> Dict[str, Optional[str]]:
    """Paths of the jemalloc and mimalloc shared libraries, None where not found.

    Looks in the dynamic linker cache (``ldconfig -p``), then in the usual
    library directories (multiarch ones included), and keeps only a library
    built for the same architecture as this Python (so LD_PRELOAD works).
    """
    own = _elf_signature(sys.executable)
    cache = _ldconfig_entries()
    dirs = _library_dirs()
    found: Dict[str, Optional[str]] = {}
    for allocator, names in PRELOAD_NAMES.items():
        found[allocator] = None
        for name in names:
            paths = [path for entry, path in cache if entry == name]
            paths += [os.path.join(d, name) for d in dirs]
            for path in paths:
                if os.path.isfile(path) and (own is None or _elf_signature(path) == own):
                    found[allocator] = path
                    break
            if found[allocator]:
                break
    return found


# ---------------------------------------------------------------- selection



def child_environment(base: Optional[Dict[str, str]] = None, **extra: str) -> Dict[str, str]:
    """`base` (default: this environment) without what chooses or wraps the allocator,
    plus `extra`."""
    env = dict(os.environ if base is None else base)
    for name in list(env):
        if name.startswith(STRIPPED_PREFIX) or name in STRIPPED_VARS:
            del env[name]
    env.update(extra)
    return env



def _tail(file: IO[bytes]) -> List[str]:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(0, size - _STDERR_TAIL_BYTES))
    text = file.read().decode("utf-8", "replace")
    lines = text.splitlines()
    if size > _STDERR_TAIL_BYTES and lines:
        lines = lines[1:]  # probably cut in the middle
    return lines[-_STDERR_TAIL_LINES:]


def _describe_status(exit_code: int) -> str:
    if exit_code >= 0:
        return f"exited with code {exit_code}"
    try:
        name = signal.Signals(-exit_code).name
    except ValueError:
        name = f"signal {-exit_code}"
    return f"was killed by {name} (exit code {exit_code})"


def measure(
    command: Sequence[str],
    extra_env: Dict[str, str],
    env: Dict[str, str],
    show_output: bool = False,
) -> Union[Measurement, RunFailure]:
    """Run `command` once through the launcher; its time and peak RSS, or its failure.

    `env` is the environment of the run (already stripped), `extra_env` the
    allocator's variables (given to the script only, not to the launcher).
    """
    read_fd, write_fd = os.pipe()
    assignments = [f"{name}={value}" for name, value in extra_env.items()]
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_fd),
                *assignments, "--", *command]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                launcher, env=env, stdin=subprocess.DEVNULL,
                stdout=None if show_output else subprocess.DEVNULL, stderr=err,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            try:
                # os.wait4, not proc.wait(): the launcher's status is needed
                # here, and Popen must not reap the process a second time.
                _, status, _ = os.wait4(proc.pid, 0)
            except KeyboardInterrupt:
                proc.terminate()  # the launcher passes SIGTERM on to the script
                os.wait4(proc.pid, 0)
                proc.returncode = -signal.SIGTERM
                raise
            proc.returncode = os.waitstatus_to_exitcode(status)
            report = b""
            while True:
                chunk = os.read(read_fd, 4096)
                if not chunk:
                    break
                report += chunk
        finally:
            os.close(read_fd)
        fields = report.split()
        if proc.returncode != 0 or len(fields) != 7:
            return RunFailure(
                f"could not be started (the launcher {_describe_status(proc.returncode)})",
                _tail(err),
            )
        exit_code = os.waitstatus_to_exitcode(int(fields[0]))
        if exit_code != 0:
            return RunFailure(_describe_status(exit_code), _tail(err))
        maxrss = int(fields[2])
        # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
        return Measurement(wall=float(fields[1]), peak_rss=peak, user=float(fields[3]),
                           system=float(fields[4]), minor_faults=int(fields[5]),
                           major_faults=int(fields[6]))


