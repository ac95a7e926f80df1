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

For a program that starts workers, ``ru_maxrss`` is not the program's memory:
with ``sample_interval`` set, :func:`measure` also samples the process tree
below the launcher (the sum of the resident sizes of its processes, read from
``/proc``, every `sample_interval` seconds) and reports the largest sum seen as
``tree_peak_rss`` (never below ``peak_rss``).  New descendants are found by
reading ``/proc/PID/stat`` of the pids above the launcher's (pids grow, so a
descendant's pid is larger unless the kernel's pid counter wrapped during the
run): a sample costs a few file reads, not a scan of every process.

Also here: where the preloadable allocators (jemalloc, mimalloc) are, the
environment of a clean child (nothing that chooses or wraps the allocator), and
the core of every comparison (``bump-global compare`` and the scripts of
``scripts/``, docs/measuring.md): :func:`plan_rounds` (each round runs every
variant once, in an order shuffled for that round, warm-up rounds first, all
from one seed) and :func:`ratio_summary` (the median of the per-round ratios to a
reference, with their min-max spread), so that both say the same thing the same
way.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

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
# FD.  COMMAND[0] is looked up on PATH when it has no slash (posix_spawnp), so
# that a prefix such as `perf record ... --` or `valgrind ...` can lead.  SIGINT
# is ignored here (the command gets the default action back); SIGTERM is passed
# on to the command.
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
pid = os.posix_spawnp(argv[0], argv, env, setsigdef=(signal.SIGINT,))
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
    exit_code: int = 0
    """The command's exit code (only ever non-zero with ``accept_status=True``)."""
    tree_peak_rss: int = 0
    """Largest sampled sum of the RSS of the command's process tree, at least
    `peak_rss` (equal to it when the tree was not sampled), bytes."""
    tree_processes: int = 0
    """Distinct processes seen in the tree's samples (0 when not sampled)."""
    samples: int = 0
    """How many times the tree was sampled."""

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
    try:
        file.flush()
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(max(0, size - _STDERR_TAIL_BYTES))
        text = file.read().decode("utf-8", "replace")
    except (OSError, ValueError):  # a file the caller opened write-only
        return []
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


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class TreeSampler:
    """Samples the total RSS of the descendants of one process, from ``/proc``.

    Knows the tree's members; each :meth:`sample` reads ``/proc/PID/stat`` of
    the processes created since the root (pid above the root's) to find new
    members, then ``/proc/PID/statm`` of each member.  Linux only: elsewhere
    (no ``/proc``) every sample is 0 and `available` is False.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.members: Dict[int, int] = {}  # pid -> parent pid
        self.seen: set = set()
        self.peak = 0
        self.samples = 0
        self.available = os.path.isdir(f"/proc/{root}")

    @staticmethod
    def _parent(pid: int) -> Optional[int]:
        try:
            with open(f"/proc/{pid}/stat", "rb") as file:
                text = file.read()
        except OSError:
            return None
        return int(text[text.rindex(b")") + 2:].split(None, 2)[1])

    @staticmethod
    def _rss(pid: int) -> Optional[int]:
        try:
            with open(f"/proc/{pid}/statm", "rb") as file:
                return int(file.read().split()[1]) * _PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return None

    def sample(self) -> int:
        """The tree's RSS now (the root itself not counted), bytes."""
        if not self.available:
            return 0
        try:
            pids = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) > self.root]
        except OSError:
            return 0
        tree = {self.root}
        alive = {}
        for pid in sorted(pids):
            parent = self.members.get(pid)
            if parent is None:
                parent = self._parent(pid)
            if parent is not None and parent in tree:
                tree.add(pid)
                alive[pid] = parent
        self.members = alive
        total = 0
        for pid in alive:
            rss = self._rss(pid)
            if rss is not None:
                total += rss
                self.seen.add(pid)
        self.peak = max(self.peak, total)
        self.samples += 1
        return total

    def kill(self) -> None:
        """SIGKILL every member known (a run that timed out)."""
        for pid in list(self.members):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def measure_child(
    command: Sequence[str],
    extra_env: Dict[str, str],
    env: Dict[str, str],
    show_output: bool = False,
    *,
    stdout: Optional[IO[bytes]] = None,
    stderr: Optional[IO[bytes]] = None,
    cwd: Optional[str] = None,
    timeout: Optional[float] = None,
    sample_interval: Optional[float] = None,
    accept_status: bool = False,
) -> Union[Measurement, RunFailure]:
    """Run `command` once through the launcher; its time and peak RSS, or its failure.

    `env` is the environment of the run (already stripped), `extra_env` the
    allocator's variables (given to the script only, not to the launcher).
    `stdout`/`stderr`: files that receive the command's output (default: stdout
    discarded or shown with `show_output`, stderr kept for the failure message).
    `cwd`: the command's working directory.  `timeout`: seconds after which the
    tree is killed and a RunFailure returned.  `sample_interval`: sample the
    process tree's RSS this often (seconds; see :class:`TreeSampler`).
    `accept_status`: a non-zero exit code is a Measurement (its `exit_code`),
    not a RunFailure (a death by signal still is one).
    """
    read_fd, write_fd = os.pipe()
    assignments = [f"{name}={value}" for name, value in extra_env.items()]
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_fd),
                *assignments, "--", *command]
    with tempfile.TemporaryFile() as own_err:
        err = stderr if stderr is not None else own_err
        out: Union[int, IO[bytes], None] = stdout
        if out is None:
            out = None if show_output else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                launcher, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                pass_fds=(write_fd,), cwd=cwd,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        sampler = TreeSampler(proc.pid) if sample_interval else None
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        try:
            try:
                # os.wait4, not proc.wait(): the launcher's status is needed
                # here, and Popen must not reap the process a second time.
                if sampler is None and deadline is None:
                    _, status, _ = os.wait4(proc.pid, 0)
                else:
                    step = sample_interval or 0.05
                    while True:
                        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                        if pid:
                            break
                        if sampler is not None:
                            sampler.sample()
                        if deadline is not None and time.monotonic() > deadline:
                            timed_out = True
                            if sampler is None:
                                sampler = TreeSampler(proc.pid)
                                sampler.sample()
                            sampler.kill()
                            _, status, _ = os.wait4(proc.pid, 0)
                            break
                        time.sleep(step)
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
        if timed_out:
            return RunFailure(f"timed out after {timeout:g} s (its process tree was killed)",
                              _tail(err))
        if proc.returncode != 0 or len(fields) != 7:
            return RunFailure(
                f"could not be started (the launcher {_describe_status(proc.returncode)})",
                _tail(err),
            )
        exit_code = os.waitstatus_to_exitcode(int(fields[0]))
        if exit_code < 0 or (exit_code != 0 and not accept_status):
            return RunFailure(_describe_status(exit_code), _tail(err))
        maxrss = int(fields[2])
        # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
        return Measurement(wall=float(fields[1]), peak_rss=peak, user=float(fields[3]),
                           system=float(fields[4]), minor_faults=int(fields[5]),
                           major_faults=int(fields[6]), exit_code=exit_code,
                           tree_peak_rss=max(peak, sampler.peak if sampler else 0),
                           tree_processes=len(sampler.seen) if sampler else 0,
                           samples=sampler.samples if sampler else 0)


# ---------------------------------------------------------------- shuffled rounds


@dataclass(frozen=True)
class Turn:
    """One run of a plan: `item` (a workload, a program, compare's script) under `variant`."""

    round: int
    """0, 1, ... for the measured rounds; negative for the warm-up rounds before them."""
    item: str
    variant: str
    position: int
    """The run's place in the order of its round and item (0 first)."""


def plan_rounds(items: Sequence[str], variants: Sequence[str], rounds: int, warmup: int,
                seed: int) -> List[List[Turn]]:
    """The runs of every round, round after round: `warmup` rounds, then `rounds`.

    In every round each item runs once under every variant, in an order shuffled
    for that round and item: a fixed order would let a variant always follow the
    same other one, and what ran just before changes what a run costs (a process
    using transparent huge pages right after one that did not paid far more system
    time).  One ``random.Random(seed)`` shuffles every order, round by round and
    item by item, so the seed alone repeats the plan.
    """
    rng = random.Random(seed)
    plan = []
    for number in range(-warmup, rounds):
        turns = []
        for item in items:
            order = list(variants)
            rng.shuffle(order)
            turns += [Turn(number, item, name, position) for position, name in enumerate(order)]
        plan.append(turns)
    return plan


def per_round_ratios(values: Mapping[int, float], bases: Mapping[int, float]) -> List[float]:
    """values[r] / bases[r] for every round r that both have (and a positive base),
    in round order."""
    return [values[r] / bases[r] for r in sorted(values) if r in bases and bases[r] > 0]


def ratio_summary(ratios: Sequence[float]) -> Dict[str, Any]:
    """The median of per-round ratios with their spread: ``{"median", "min", "max",
    "rounds"}`` (None where there is no ratio).  A ratio of medians is not this: the
    median round of one variant and of the reference need not be the same round."""
    values = list(ratios)
    return {"median": statistics.median(values) if values else None,
            "min": min(values, default=None), "max": max(values, default=None),
            "rounds": values}


def format_ratio(stat: Optional[Mapping[str, Any]], missing: str = "-") -> str:
    """"median (min-max)" of a :func:`ratio_summary`, two decimals; the median alone
    when every round gave the same ratio; `missing` when there is none."""
    if not stat or stat.get("median") is None:
        return missing
    median = f"{stat['median']:.2f}"
    if stat["min"] == stat["max"]:
        return median
    return f"{median} ({stat['min']:.2f}-{stat['max']:.2f})"


# ---------------------------------------------------------------- the GC policy's peer

#: The variable that gives a run the GC policy of bump_global's ``gc="relaxed"``
#: through :data:`GC_PEER_SITECUSTOMIZE` (the peers "with the same GC policy").
GC_PEER_VARIABLES = {"GCX": "1"}

#: The sitecustomize of every comparison (compare and scripts/), on every run's
#: PYTHONPATH so that all pay the same import: with ``GCX=1`` it applies exactly what
#: bump_global's ``gc="relaxed"`` applies, by calling the same function.
GC_PEER_SITECUSTOMIZE = """\
import os
if os.environ.get("GCX") == "1":
    from bump_global._gc import apply_gc_policy
    apply_gc_policy("relaxed")
"""


def write_gc_peer_site(folder: str) -> str:
    """Write :data:`GC_PEER_SITECUSTOMIZE` as `folder`/sitecustomize.py; `folder`."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sitecustomize.py"), "w") as file:
        file.write(GC_PEER_SITECUSTOMIZE)
    return folder


def prepend_path(folder: str, path: Optional[str]) -> str:
    """`folder` first on a PYTHONPATH-like `path` (None or empty: `folder` alone)."""
    return folder + (os.pathsep + path if path else "")
