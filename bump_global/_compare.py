"""The ``compare`` subcommand: one script, several allocators, paired runs.

    python -m bump_global compare [--runs N] [--allocators LIST] [--gc-policy]
                                  [--seed N] [--plot FILE.png] [--size SIZE]
                                  [--show-output] SCRIPT [ARGS...]

Each run is a fresh process.  Runs go in rounds: every round runs each allocator
once, in an order shuffled for that round (the seed is printed, ``--seed``
repeats it), so neither a noisy machine nor what ran just before favours one
allocator.  For each allocator it prints the median wall time and its min-max
range, the median CPU time (user + system), the median peak RSS, and the
medians of the per-round ratios of time, CPU time and peak RSS to pymalloc.
``--gc-policy`` adds the peer ``pymalloc+gc``: pymalloc with the GC thresholds
that bump_global's default ``gc="relaxed"`` sets (x10), and a column of time
ratios to it, which is the allocator's share of a difference.

Measurement: every run goes through the launcher of bump_global/_launch.py
(time, CPU, page faults and peak RSS from ``os.wait4``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Dict, List, Optional, Sequence, Tuple, Union

from bump_global._config import OPTIONS
from bump_global._launch import (  # noqa: F401 - part of this module's interface
    PACKAGE_HINTS,
    PRELOAD_NAMES,
    Measurement,
    RunFailure,
    child_environment,
    find_preload_libraries,
    measure,
)

DEFAULT_SIZE = OPTIONS["size"].default

PROG = "bump-global compare"

#: Every allocator compare knows: the default list, then bump_global's opt-in
#: reclaim policies (``--allocators bump,bump-last,bump-classes``).
ALLOCATORS = ("pymalloc", "malloc", "jemalloc", "mimalloc", "bump", "bump-last",
              "bump-classes")
DEFAULT_ALLOCATORS = ALLOCATORS[:5]
BASELINE = "pymalloc"
#: pymalloc with the GC policy of bump_global's gc="relaxed" (--gc-policy).
GC_PEER = "pymalloc+gc"
DEFAULT_RUNS = 5

#: The sitecustomize of the GC_PEER runs: the thresholds of gc="relaxed".
GC_SITECUSTOMIZE = """\
import gc
_young, _middle, _old = gc.get_threshold()
gc.set_threshold(_young * 10, _middle, _old * 10)
"""

class CompareError(Exception):
    """A usage problem found before anything runs (exit code 2)."""


@dataclass(frozen=True)
class Summary:
    """The runs of one allocator, summarised."""

    allocator: str
    walls: List[float]
    peak_rsses: List[int]
    cpus: Tuple[float, ...] = ()

    @property
    def median_wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def median_peak_rss(self) -> float:
        return statistics.median(self.peak_rsses)

    @property
    def median_cpu(self) -> Optional[float]:
        return statistics.median(self.cpus) if self.cpus else None


def paired_ratio(values: Sequence[float], bases: Sequence[float]) -> Optional[float]:
    """The median of the per-round ratios values[i] / bases[i] (None if none is defined)."""
    ratios = [v / b for v, b in zip(values, bases) if b > 0]
    return statistics.median(ratios) if ratios else None


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
        "--gc-policy", action="store_true",
        help=f"also run {GC_PEER}: pymalloc with the GC thresholds x10 that bump_global's "
        "default gc='relaxed' sets, and show the time ratios to it (the allocator's share)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="N",
        help="seed of the order shuffled in every round (default: a random one, printed)",
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
                    f"({PACKAGE_HINTS[name]})"
                )
            else:
                chosen.append(name)
        return chosen, notes
    chosen = []
    for raw in requested.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name not in ALLOCATORS and name != GC_PEER:
            raise CompareError(
                f"unknown allocator {raw.strip()!r} in --allocators: "
                f"expected a comma-separated list from {','.join(ALLOCATORS)},{GC_PEER}"
            )
        if name in PRELOAD_NAMES and not libraries.get(name):
            raise CompareError(
                f"{name} was asked for but {' or '.join(PRELOAD_NAMES[name])} is not "
                f"installed ({PACKAGE_HINTS[name]}); or leave it out of --allocators"
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise CompareError(f"--allocators is empty: name some of {','.join(ALLOCATORS)}")
    return chosen, []


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
    if allocator == GC_PEER:
        raise ValueError(f"{GC_PEER} needs the folder of its sitecustomize: see gc_peer_env")
    if allocator == "malloc":
        return command, {"PYTHONMALLOC": "malloc"}
    library = libraries.get(allocator)
    if allocator in PRELOAD_NAMES and library:
        return command, {"PYTHONMALLOC": "malloc", "LD_PRELOAD": library}
    raise ValueError(f"no command for allocator {allocator!r}")


def gc_peer_env(folder: str, env: Dict[str, str]) -> Dict[str, str]:
    """The variables of a GC_PEER run: `folder` (holding GC_SITECUSTOMIZE as
    sitecustomize.py) first on PYTHONPATH."""
    path = env.get("PYTHONPATH")
    return {"PYTHONPATH": folder + (os.pathsep + path if path else "")}


def round_orders(allocators: Sequence[str], runs: int, seed: int) -> List[List[str]]:
    """The order of every round: `allocators` shuffled, round by round, from `seed`."""
    rng = random.Random(seed)
    orders = []
    for _ in range(runs):
        order = list(allocators)
        rng.shuffle(order)
        orders.append(order)
    return orders


# ------------------------------------------------------------------ running


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
    """The results table: ratios are medians of per-round ratios ("n/a" if pymalloc did not
    run); a column of time ratios to pymalloc+gc when that peer ran."""
    base = next((s for s in summaries if s.allocator == BASELINE), None)
    peer = next((s for s in summaries if s.allocator == GC_PEER), None)
    header = ["allocator", "median time", "min-max time", "median CPU", "median peak RSS",
              f"time / {BASELINE}", f"CPU / {BASELINE}", f"peak RSS / {BASELINE}"]
    if peer is not None:
        header.append(f"time / {GC_PEER}")
    rows = [header]

    def ratio(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    for s in summaries:
        low, high = min(s.walls), max(s.walls)
        spread = f"{_seconds(low)[:-2]}-{_seconds(high)}"
        cpu = s.median_cpu
        row = [
            s.allocator, _seconds(s.median_wall), spread,
            "n/a" if cpu is None else _seconds(cpu), _mib(s.median_peak_rss),
            ratio(paired_ratio(s.walls, base.walls) if base else None),
            ratio(paired_ratio(s.cpus, base.cpus) if base and base.cpus else None),
            ratio(paired_ratio(s.peak_rsses, base.peak_rsses) if base else None),
        ]
        if peer is not None:
            row.append(ratio(paired_ratio(s.walls, peer.walls)))
        rows.append(row)
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
    known = (*ALLOCATORS, GC_PEER)
    colors = [palette[known.index(n) % len(palette)] for n in names]

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
    line = " ".join(str(message).split())
    sys.stderr.write(f"bump-global: error: {line}\n")  # the command line's prefix
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Run the comparison described by `args`; the exit code (0, 1 on a failed run, 2)."""
    runs: int = args.runs
    script: str = args.script
    script_args: List[str] = list(getattr(args, "script_args", None) or [])
    size: str = getattr(args, "size", None) or DEFAULT_SIZE
    plot_path: Optional[str] = getattr(args, "plot", None)
    show_output = bool(getattr(args, "show_output", False))
    seed: Optional[int] = getattr(args, "seed", None)
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)

    libraries = find_preload_libraries()
    try:
        if runs < 1:
            raise CompareError(f"--runs must be at least 1, not {runs}")
        if not hasattr(os, "wait4") or not hasattr(os, "posix_spawn"):
            raise CompareError("compare needs os.wait4 and os.posix_spawn (Linux, macOS)")
        if not os.path.exists(script):
            raise CompareError(f"no such script: {script}")
        allocators, notes = select_allocators(getattr(args, "allocators", None), libraries)
        if getattr(args, "gc_policy", False) and GC_PEER not in allocators:
            at = allocators.index(BASELINE) + 1 if BASELINE in allocators else 0
            allocators.insert(at, GC_PEER)
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
    with tempfile.TemporaryDirectory(prefix="bump-global-compare-") as folder:
        with open(os.path.join(folder, "sitecustomize.py"), "w") as file:
            file.write(GC_SITECUSTOMIZE)
        commands = {}
        for a in allocators:
            if a == GC_PEER:
                commands[a] = ([sys.executable, script, *script_args], gc_peer_env(folder, env))
            else:
                commands[a] = command_for(a, script, script_args, size, libraries)
        results = _run_rounds(allocators, commands, runs, seed, env, show_output, progress)
    if isinstance(results, int):
        return results
    summaries = [Summary(a, [m.wall for m in results[a]], [m.peak_rss for m in results[a]],
                         tuple(m.cpu for m in results[a]))
                 for a in allocators]
    label = _script_label(script, script_args)
    python = sys.version.split()[0]
    sys.stdout.write(
        f"{label}: {runs} round{'s' if runs > 1 else ''}, each allocator once per round in "
        f"a shuffled order (--seed {seed}), Python {python}\n{format_table(summaries)}\n"
    )
    sys.stdout.flush()
    if plot_path is not None:
        title = f"{label}: {runs} shuffled round{'s' if runs > 1 else ''}"
        plot(plot_path, summaries, title)
        sys.stderr.write(f"{PROG}: plot written to {plot_path}\n")
    return 0


def _run_rounds(
    allocators: Sequence[str],
    commands: Dict[str, Tuple[List[str], Dict[str, str]]],
    runs: int,
    seed: int,
    env: Dict[str, str],
    show_output: bool,
    progress: Progress,
) -> "Union[Dict[str, List[Measurement]], int]":
    """Every round, each allocator once in the round's shuffled order (announced on
    stderr); the measurements per allocator in round order, or the exit code of a failure."""
    results: Dict[str, List[Measurement]] = {a: [] for a in allocators}
    total = runs * len(allocators)
    done = 0
    started = time.perf_counter()
    try:
        for round_index, order in enumerate(round_orders(allocators, runs, seed), 1):
            progress.note(f"round {round_index}/{runs} order: {', '.join(order)}")
            for allocator in order:
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
                    f"{where}: {_seconds(outcome.wall)}, CPU {_seconds(outcome.cpu)}, "
                    f"peak RSS {_mib(outcome.peak_rss)}"
                )
    except KeyboardInterrupt:
        progress.clear()
        _error("interrupted")
        return 130
    progress.clear()
    return results
