"""The ``compare`` subcommand: one script, several allocators, paired runs.

    python -m bump_global compare [--runs N] [--allocators LIST] [--plot FILE.png]
                                  [--size SIZE] [--show-output] SCRIPT [ARGS...]

Each run is a fresh process.  Runs are interleaved (A, B, C, A, B, C...) so a
noisy machine disturbs every allocator alike.  For each allocator it prints the
median wall time, the min-max range, the median peak RSS and both ratios to
pymalloc measured in the same session.

Measurement: every run goes through a tiny launcher process (``python -I -S``)
that takes the time just before spawning the script and just after reaping it
with ``os.wait4``, whose rusage gives the script's peak RSS.  The launcher is
there because Linux counts the memory of the process that spawns a child into
the child's peak RSS (the spawning process's address space is the child's until
it execs): spawning directly from this process, whatever it holds (a test
runner, matplotlib) would become the floor of every measurement.  The launcher
is smaller than any Python running a script, so it never shows.
"""

from __future__ import annotations

import argparse
import os
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
from typing import IO, Dict, List, Optional, Sequence, Tuple, Union

from bump_global._config import DEFAULT_SIZE

PROG = "bump-global compare"

#: Every allocator compare knows: the default list, then bump_global's opt-in
#: reclaim policies (``--allocators bump,bump-last,bump-classes``).
ALLOCATORS = ("pymalloc", "malloc", "jemalloc", "mimalloc", "bump", "bump-last",
              "bump-classes")
DEFAULT_ALLOCATORS = ALLOCATORS[:5]
BASELINE = "pymalloc"
DEFAULT_RUNS = 5

#: Shared library file names tried for each preloadable allocator, best first.
PRELOAD_NAMES: Dict[str, Tuple[str, ...]] = {
    "jemalloc": ("libjemalloc.so.2",),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc.so"),
}
_PACKAGE_HINTS = {
    "jemalloc": "Debian/Ubuntu: apt install libjemalloc2",
    "mimalloc": "Debian/Ubuntu: apt install libmimalloc2.0",
}

#: Variables that choose or wrap the allocator: never inherited by the runs.
_STRIPPED_VARS = ("PYTHONMALLOC", "LD_PRELOAD", "PYTHONTRACEMALLOC")
_STRIPPED_PREFIX = "BUMP_GLOBAL"

_STDERR_TAIL_LINES = 15
_STDERR_TAIL_BYTES = 16 * 1024

# Runs as `python -I -S -c _LAUNCHER FD NAME=VALUE... -- COMMAND...`: spawns
# COMMAND with NAME=VALUE added to its environment, waits for it, and writes
# "wait-status wall-seconds ru_maxrss" to FD.  SIGINT is ignored here (the
# script gets the default action back); SIGTERM is passed on to the script.
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
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
os.write(fd, ("%d %r %d\\n" % (status, wall, usage.ru_maxrss)).encode())
"""


class CompareError(Exception):
    """A usage problem found before anything runs (exit code 2)."""


@dataclass(frozen=True)
class Measurement:
    """One run of the script under one allocator."""

    wall: float
    """Seconds from just before the spawn to the reaping of the process."""
    peak_rss: int
    """Peak resident set size of the process, bytes."""


@dataclass(frozen=True)
class RunFailure:
    """A run that did not exit with code 0."""

    description: str
    """What happened, e.g. "exited with code 1" or "was killed by SIGKILL"."""
    stderr_tail: List[str]
    """The last lines the run wrote to stderr."""


@dataclass(frozen=True)
class Summary:
    """The runs of one allocator, summarised."""

    allocator: str
    walls: List[float]
    peak_rsses: List[int]

    @property
    def median_wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def median_peak_rss(self) -> float:
        return statistics.median(self.peak_rsses)


# ---------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``compare`` to `parser`."""
    parser.add_argument(
        "--runs", type=_positive_int, default=DEFAULT_RUNS, metavar="N",
        help=f"runs per allocator, interleaved (default: {DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--allocators", default=None, metavar="LIST",
        help="comma-separated, from " + ",".join(ALLOCATORS)
        + " (default: all of them; jemalloc and mimalloc when installed)",
    )
    parser.add_argument(
        "--plot", default=None, metavar="FILE.png",
        help="also draw the results as a PNG (needs matplotlib: "
        "pip install 'bump_global[plot]')",
    )
    parser.add_argument(
        "--size", default=DEFAULT_SIZE, metavar="SIZE",
        help=f"region size of the bump runs (default: {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--show-output", action="store_true",
        help="let the script's stdout through (default: discarded)",
    )
    parser.add_argument("script", metavar="SCRIPT", help="the Python script to run")
    parser.add_argument(
        "script_args", nargs=argparse.REMAINDER, metavar="ARGS",
        help="arguments passed to the script",
    )


# --------------------------------------------------------- preload libraries


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


def select_allocators(
    requested: Optional[str], libraries: Dict[str, Optional[str]]
) -> Tuple[List[str], List[str]]:
    """The allocators to run and notes on those skipped.

    `requested` is the --allocators value (None: the default list, which skips
    absent preload libraries with a note).  Raises CompareError for an unknown
    name, an empty list, or an explicitly requested library that is absent.
    """
    if requested is None:
        chosen: List[str] = []
        notes = []
        for name in DEFAULT_ALLOCATORS:
            if name in PRELOAD_NAMES and not libraries.get(name):
                notes.append(
                    f"{name} skipped: {' or '.join(PRELOAD_NAMES[name])} not found "
                    f"({_PACKAGE_HINTS[name]})"
                )
            else:
                chosen.append(name)
        return chosen, notes
    chosen = []
    for raw in requested.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name not in ALLOCATORS:
            raise CompareError(
                f"unknown allocator {raw.strip()!r} in --allocators: "
                f"expected a comma-separated list from {','.join(ALLOCATORS)}"
            )
        if name in PRELOAD_NAMES and not libraries.get(name):
            raise CompareError(
                f"{name} was asked for but {' or '.join(PRELOAD_NAMES[name])} is not "
                f"installed ({_PACKAGE_HINTS[name]}); or leave it out of --allocators"
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise CompareError(f"--allocators is empty: name some of {','.join(ALLOCATORS)}")
    return chosen, []


def child_environment(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """`base` (default: this environment) without what chooses the allocator."""
    env = dict(os.environ if base is None else base)
    for name in list(env):
        if name.startswith(_STRIPPED_PREFIX) or name in _STRIPPED_VARS:
            del env[name]
    return env


def command_for(
    allocator: str,
    script: str,
    script_args: Sequence[str],
    size: str,
    libraries: Dict[str, Optional[str]],
) -> Tuple[List[str], Dict[str, str]]:
    """The command line of one run and the variables to add to its environment."""
    if allocator == "bump" or allocator.startswith("bump-"):
        # bump-last, bump-classes: the opt-in reclaim policy of that name.
        reclaim = ["--reclaim", allocator[len("bump-"):]] if allocator != "bump" else []
        return [sys.executable, "-m", "bump_global", "run", "--size", size, *reclaim,
                script, *script_args], {}
    command = [sys.executable, script, *script_args]
    if allocator == "pymalloc":
        return command, {}
    if allocator == "malloc":
        return command, {"PYTHONMALLOC": "malloc"}
    library = libraries.get(allocator)
    if allocator in PRELOAD_NAMES and library:
        return command, {"PYTHONMALLOC": "malloc", "LD_PRELOAD": library}
    raise ValueError(f"no command for allocator {allocator!r}")


# ------------------------------------------------------------------ running


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
        if proc.returncode != 0 or len(fields) != 3:
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
        return Measurement(wall=float(fields[1]), peak_rss=peak)


class Progress:
    """Progress on `stream`: one updating line on a terminal, plain lines otherwise."""

    def __init__(self, stream: IO[str], single_line: Optional[bool] = None) -> None:
        self.stream = stream
        if single_line is None:
            isatty = getattr(stream, "isatty", None)
            single_line = bool(isatty and isatty())
        self.single_line = single_line
        self._shown = False

    def running(self, text: str) -> None:
        """A run starts (shown on a terminal only)."""
        if self.single_line:
            self._show(text)

    def finished(self, text: str) -> None:
        """A run is done."""
        if self.single_line:
            self._show(text)
        else:
            self.stream.write(f"{PROG}: {text}\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        """A message that stays (a skipped allocator...)."""
        self.clear()
        self.stream.write(f"{PROG}: {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def _show(self, text: str) -> None:
        width = shutil.get_terminal_size((80, 24)).columns - 1
        line = f"{PROG}: {text}"
        if len(line) > width:
            line = line[: max(width - 3, 0)] + "..."
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._shown = True


# ------------------------------------------------------------------- output


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _seconds(t: float) -> str:
    return f"{t:.3f} s" if t < 100 else f"{t:.1f} s"


def _ratio(value: float, base: Optional[float]) -> str:
    return f"{value / base:.2f}" if base else "n/a"


def format_table(summaries: Sequence[Summary]) -> str:
    """The results table (ratios to pymalloc, "n/a" if pymalloc did not run)."""
    base = next((s for s in summaries if s.allocator == BASELINE), None)
    header = ("allocator", "median time", "min-max time", "median peak RSS",
              f"time / {BASELINE}", f"peak RSS / {BASELINE}")
    rows = [header]
    for s in summaries:
        low, high = min(s.walls), max(s.walls)
        spread = f"{_seconds(low)[:-2]}-{_seconds(high)}"
        rows.append((
            s.allocator, _seconds(s.median_wall), spread, _mib(s.median_peak_rss),
            _ratio(s.median_wall, base.median_wall if base else None),
            _ratio(s.median_peak_rss, base.median_peak_rss if base else None),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _script_label(script: str, script_args: Sequence[str]) -> str:
    label = " ".join([os.path.basename(script), *script_args])
    return label if len(label) <= 60 else label[:57] + "..."


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CompareError(
            "--plot needs matplotlib, which is not installed: pip install 'bump_global[plot]'"
        ) from None


def plot(path: str, summaries: Sequence[Summary], title: str) -> None:
    """Two bar charts side by side: median wall time (min-max bars), median peak RSS."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [s.allocator for s in summaries]
    base = next((s for s in summaries if s.allocator == BASELINE), None)
    positions = list(range(len(names)))
    palette = ["#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b"]
    colors = [palette[ALLOCATORS.index(n) % len(palette)] for n in names]

    fig = Figure(figsize=(max(9.0, 2.2 * len(names) + 1.0), 4.8), dpi=150)
    FigureCanvasAgg(fig)
    ax_time, ax_rss = fig.subplots(1, 2)

    medians = [s.median_wall for s in summaries]
    below = [s.median_wall - min(s.walls) for s in summaries]
    above = [max(s.walls) - s.median_wall for s in summaries]
    ax_time.bar(positions, medians, color=colors, yerr=[below, above], capsize=5,
                error_kw={"elinewidth": 1.2, "ecolor": "#333333"})
    tops = [max(s.walls) for s in summaries]
    ax_time.set_ylabel("wall time (s)")
    ax_time.set_title("Median wall time, min–max error bars (lower is better)", fontsize=11)
    ax_time.set_ylim(0, max(tops) * 1.18)

    rss = [s.median_peak_rss / (1 << 20) for s in summaries]
    ax_rss.bar(positions, rss, color=colors)
    ax_rss.set_ylabel("peak RSS (MiB)")
    ax_rss.set_title("Median peak RSS (lower is better)", fontsize=11)
    ax_rss.set_ylim(0, max(rss) * 1.18)

    charts = ((ax_time, medians, tops, "{:.3f} s"), (ax_rss, rss, rss, "{:.0f} MiB"))
    for ax, values, heights, value_format in charts:
        ax.set_xticks(positions)
        ax.set_xticklabels(names)
        ax.set_xlabel("allocator")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        base_value = None
        if base is not None:
            base_value = values[names.index(BASELINE)]
        for x, value, height in zip(positions, values, heights):
            label = value_format.format(value)
            if base_value:
                label += f"\n×{value / base_value:.2f}"
            ax.annotate(label, xy=(x, height), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=9)
    note = f"(× = ratio to {BASELINE})" if base is not None else ""
    fig.suptitle(f"{title}  {note}".rstrip(), fontsize=12)
    fig.tight_layout()
    fig.savefig(path)


# ---------------------------------------------------------------------- run


def _error(message: str) -> None:
    from bump_global.commands import error

    error(message)  # one prefix for every usage error of the command line


def run(args: argparse.Namespace) -> int:
    """Run the comparison described by `args`; the exit code (0, 1 on a failed run, 2)."""
    runs: int = args.runs
    script: str = args.script
    script_args: List[str] = list(getattr(args, "script_args", None) or [])
    size: str = getattr(args, "size", None) or DEFAULT_SIZE
    plot_path: Optional[str] = getattr(args, "plot", None)
    show_output = bool(getattr(args, "show_output", False))

    libraries = find_preload_libraries()
    try:
        if runs < 1:
            raise CompareError(f"--runs must be at least 1, not {runs}")
        if not hasattr(os, "wait4") or not hasattr(os, "posix_spawn"):
            raise CompareError("compare needs os.wait4 and os.posix_spawn (Linux, macOS)")
        if not os.path.exists(script):
            raise CompareError(f"no such script: {script}")
        allocators, notes = select_allocators(getattr(args, "allocators", None), libraries)
        if any(name.startswith("bump") for name in allocators):
            from bump_global._config import parse_size

            try:
                parse_size(size)
            except ValueError as exc:
                raise CompareError(f"--size: {exc}") from None
        if plot_path is not None:
            _check_matplotlib()
            directory = os.path.dirname(os.path.abspath(plot_path))
            if not os.path.isdir(directory):
                raise CompareError(f"--plot: no such directory: {directory}")
    except CompareError as exc:
        _error(str(exc))
        return 2

    progress = Progress(sys.stderr, single_line=False if show_output else None)
    for note in notes:
        progress.note(note)
    if BASELINE not in allocators:
        progress.note(f"{BASELINE} is not in the list: no ratios")

    env = child_environment()
    commands = {a: command_for(a, script, script_args, size, libraries) for a in allocators}
    results: Dict[str, List[Measurement]] = {a: [] for a in allocators}
    total = runs * len(allocators)
    done = 0
    started = time.perf_counter()
    try:
        for round_index in range(1, runs + 1):
            for allocator in allocators:
                done += 1
                where = f"[{done}/{total}] run {round_index}/{runs} {allocator}"
                progress.running(
                    f"{where} running... ({time.perf_counter() - started:.0f} s elapsed)"
                )
                command, extra = commands[allocator]
                outcome = measure(command, extra, env, show_output=show_output)
                if isinstance(outcome, RunFailure):
                    progress.clear()
                    _error(f"the {allocator} run ({round_index} of {runs}) {outcome.description}"
                           + ("; the end of its stderr:" if outcome.stderr_tail
                              else "; its stderr was empty"))
                    for line in outcome.stderr_tail:
                        sys.stderr.write(f"    {line}\n")
                    sys.stderr.flush()
                    return 1
                results[allocator].append(outcome)
                progress.finished(
                    f"{where}: {_seconds(outcome.wall)}, peak RSS {_mib(outcome.peak_rss)}"
                )
    except KeyboardInterrupt:
        progress.clear()
        _error("interrupted")
        return 130
    progress.clear()

    summaries = [Summary(a, [m.wall for m in results[a]], [m.peak_rss for m in results[a]])
                 for a in allocators]
    label = _script_label(script, script_args)
    python = sys.version.split()[0]
    sys.stdout.write(
        f"{label}: {runs} interleaved run{'s' if runs > 1 else ''} per allocator, "
        f"Python {python}\n{format_table(summaries)}\n"
    )
    sys.stdout.flush()
    if plot_path is not None:
        title = f"{label}: {runs} interleaved run{'s' if runs > 1 else ''} per allocator"
        plot(plot_path, summaries, title)
        sys.stderr.write(f"{PROG}: plot written to {plot_path}\n")
    return 0
