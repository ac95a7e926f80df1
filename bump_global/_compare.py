"""The work of ``bump-global compare``: one script, several allocators, shuffled rounds.

    python -m bump_global compare [--runs N] [--warmup N] [--allocators LIST]
                                  [--gc-policy] [--seed N] [--plot FILE.png]
                                  [--size SIZE] [--show-output] SCRIPT [ARGS...]

The command line is bump_global/commands/compare.py; this module takes its
:class:`Settings`.  Each run is a fresh process.  Runs go in rounds (the plan of
:func:`bump_global._launch.plan_rounds`, the one the benchmark scripts use):
warm-up rounds first, then every round runs each allocator once, in an order
shuffled for that round (the seed is printed, ``--seed`` repeats it), so neither
a noisy machine nor what ran just before favours one allocator.  For each
allocator it prints the median wall time and its min-max range, the median CPU
time (user + system), the median peak RSS, and the medians of the per-round
ratios of time, CPU time and peak RSS to pymalloc with their min-max spread; the
plot labels its bars with the same figures.  ``--gc-policy`` adds the peer
``pymalloc+gc``: pymalloc with the GC policy of bump_global's default
``gc="relaxed"``, and a column of time ratios to it, which is the allocator's
share of a difference.

Measurement: every run goes through the launcher of bump_global/_launch.py
(time, CPU, page faults and peak RSS from ``os.wait4``).  Usage problems raise
:class:`CompareError` before anything runs, a failed run :class:`RunFailed`; the
command line turns them into its one-line errors.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

from bump_global._config import OPTIONS
from bump_global._launch import (
    GC_PEER_VARIABLES,
    PACKAGE_HINTS,
    PRELOAD_NAMES,
    Measurement,
    RunFailure,
    child_environment,
    find_preload_libraries,
    format_ratio,
    measure_child,
    per_round_ratios,
    plan_rounds,
    prepend_path,
    ratio_summary,
    write_gc_peer_site,
)

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
DEFAULT_WARMUP = 1


class CompareError(Exception):
    """A usage problem found before anything runs (the command exits with 2)."""


class RunFailed(Exception):
    """A run did not exit with code 0: what happened, and the end of its stderr."""

    def __init__(self, message: str, stderr_tail: List[str]) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


@dataclass
class Settings:
    """What to compare (the command line's options)."""

    script: str
    script_args: List[str] = field(default_factory=list)
    runs: int = DEFAULT_RUNS
    warmup: int = DEFAULT_WARMUP
    allocators: Optional[str] = None
    gc_policy: bool = False
    seed: Optional[int] = None
    plot: Optional[str] = None
    size: str = OPTIONS["size"].default
    show_output: bool = False


@dataclass(frozen=True)
class Summary:
    """The measured runs of one allocator, in round order."""

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


def ratio_to(values: Sequence[float], bases: Sequence[float]) -> Dict[str, Any]:
    """The median of the per-round ratios values[r] / bases[r], with their spread
    (:func:`bump_global._launch.ratio_summary`): what the table and the plot show."""
    return ratio_summary(per_round_ratios(dict(enumerate(values)), dict(enumerate(bases))))


# --------------------------------------------------------- allocators


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
        return command, dict(GC_PEER_VARIABLES)
    if allocator == "malloc":
        return command, {"PYTHONMALLOC": "malloc"}
    library = libraries.get(allocator)
    if allocator in PRELOAD_NAMES and library:
        return command, {"PYTHONMALLOC": "malloc", "LD_PRELOAD": library}
    raise ValueError(f"no command for allocator {allocator!r}")


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


def ratios(summary: Summary, base: Optional[Summary]) -> Dict[str, Dict[str, Any]]:
    """{"time", "cpu", "rss"} -> :func:`ratio_to` of `summary` against `base` (the
    figures of the table's ratio columns and of the plot's labels)."""
    if base is None:
        return {}
    return {"time": ratio_to(summary.walls, base.walls),
            "cpu": ratio_to(summary.cpus, base.cpus),
            "rss": ratio_to(summary.peak_rsses, base.peak_rsses)}


def format_table(summaries: Sequence[Summary]) -> str:
    """The results table: ratios are medians of per-round ratios with their min-max
    spread ("n/a" if pymalloc did not run); a column of time ratios to pymalloc+gc
    when that peer ran."""
    base = next((s for s in summaries if s.allocator == BASELINE), None)
    peer = next((s for s in summaries if s.allocator == GC_PEER), None)
    header = ["allocator", "median time", "min-max time", "median CPU", "median peak RSS",
              f"time / {BASELINE}", f"CPU / {BASELINE}", f"peak RSS / {BASELINE}"]
    if peer is not None:
        header.append(f"time / {GC_PEER}")
    rows = [header]
    for s in summaries:
        low, high = min(s.walls), max(s.walls)
        cpu = s.median_cpu
        figures = ratios(s, base)
        row = [
            s.allocator, _seconds(s.median_wall), f"{_seconds(low)[:-2]}-{_seconds(high)}",
            "n/a" if cpu is None else _seconds(cpu), _mib(s.median_peak_rss),
            *(format_ratio(figures.get(key), "n/a") for key in ("time", "cpu", "rss")),
        ]
        if peer is not None:
            row.append(format_ratio(ratio_to(s.walls, peer.walls), "n/a"))
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
    from bump_global._plot import check_matplotlib

    try:
        check_matplotlib("--plot")
    except ImportError as exc:
        raise CompareError(str(exc)) from None


def plot(path: str, summaries: Sequence[Summary], title: str) -> Any:
    """Two bar charts side by side: median wall time (min-max bars), median peak RSS;
    each bar labelled with its median and, as in the table, the median of its
    per-round ratios to pymalloc with their spread.  Returns the matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [s.allocator for s in summaries]
    base = next((s for s in summaries if s.allocator == BASELINE), None)
    positions = list(range(len(names)))
    palette = ["#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b"]
    known = (*ALLOCATORS, GC_PEER)
    colors = [palette[known.index(n) % len(palette)] for n in names]

    fig = Figure(figsize=(max(9.0, 2.2 * len(names) + 1.0), 5.0), dpi=150)
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
    ax_time.set_ylim(0, max(tops) * 1.25)

    rss = [s.median_peak_rss / (1 << 20) for s in summaries]
    ax_rss.bar(positions, rss, color=colors)
    ax_rss.set_ylabel("peak RSS (MiB)")
    ax_rss.set_title("Median peak RSS (lower is better)", fontsize=11)
    ax_rss.set_ylim(0, max(rss) * 1.25)

    charts = ((ax_time, medians, tops, "{:.3f} s", "time"),
              (ax_rss, rss, rss, "{:.0f} MiB", "rss"))
    for ax, values, heights, value_format, key in charts:
        ax.set_xticks(positions)
        ax.set_xticklabels(names)
        ax.set_xlabel("allocator")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        for x, s, value, height in zip(positions, summaries, values, heights):
            label = value_format.format(value)
            if base is not None:  # the table's figure; its spread on a line of its own
                figure = format_ratio(ratios(s, base)[key], "n/a")
                label += "\n×" + figure.replace(" (", "\n(")
            ax.annotate(label, xy=(x, height), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
    note = (f"(× = median of the per-round ratios to {BASELINE}, min-max)"
            if base is not None else "")
    fig.suptitle(f"{title}  {note}".rstrip(), fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return fig


# ---------------------------------------------------------------------- run


def check(settings: Settings,
          libraries: Dict[str, Optional[str]]) -> Tuple[List[str], List[str]]:
    """The allocators to run and the notes on those left out; CompareError for a
    usage problem (nothing has run)."""
    if settings.runs < 1 or settings.warmup < 0:
        raise CompareError(f"--runs must be at least 1 and --warmup at least 0, not "
                           f"{settings.runs} and {settings.warmup}")
    if not hasattr(os, "wait4") or not hasattr(os, "posix_spawnp"):
        raise CompareError("compare needs os.wait4 and os.posix_spawnp (Linux, macOS)")
    if not os.path.exists(settings.script):
        raise CompareError(f"no such script: {settings.script}")
    allocators, notes = select_allocators(settings.allocators, libraries)
    if settings.gc_policy and GC_PEER not in allocators:
        at = allocators.index(BASELINE) + 1 if BASELINE in allocators else 0
        allocators.insert(at, GC_PEER)
    if any(name.startswith("bump") for name in allocators):
        from bump_global._config import parse_size

        try:
            parse_size(settings.size)
        except ValueError as exc:
            raise CompareError(f"--size: {exc}") from None
    if settings.plot is not None:
        _check_matplotlib()
        directory = os.path.dirname(os.path.abspath(settings.plot))
        if not os.path.isdir(directory):
            raise CompareError(f"--plot: no such directory: {directory}")
    return allocators, notes


def run(settings: Settings, progress: Optional[Progress] = None) -> int:
    """Run the comparison: the table on stdout (and the plot), progress on stderr; 0.
    Raises CompareError before running anything, RunFailed at the first failed run
    (KeyboardInterrupt goes through)."""
    libraries = find_preload_libraries()
    allocators, notes = check(settings, libraries)
    seed = settings.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "big") % 1_000_000
    if progress is None:
        progress = Progress(sys.stderr, single_line=False if settings.show_output else None)
    for note in notes:
        progress.note(note)
    if BASELINE not in allocators:
        progress.note(f"{BASELINE} is not in the list: no ratios")

    env = child_environment()
    with tempfile.TemporaryDirectory(prefix="bump-global-compare-") as folder:
        # Every run has the peer's sitecustomize on its PYTHONPATH (all pay its import);
        # GCX=1 in the peer's variables switches the GC policy on.
        env["PYTHONPATH"] = prepend_path(write_gc_peer_site(folder), env.get("PYTHONPATH"))
        commands = {a: command_for(a, settings.script, settings.script_args, settings.size,
                                   libraries) for a in allocators}
        try:
            results = _run_rounds(allocators, commands, settings, seed, env, progress)
        finally:
            progress.clear()
    summaries = [Summary(a, [m.wall for m in results[a]], [m.peak_rss for m in results[a]],
                         tuple(m.cpu for m in results[a]))
                 for a in allocators]
    label = _script_label(settings.script, settings.script_args)
    python = sys.version.split()[0]
    runs, warmup = settings.runs, settings.warmup
    rounds = f"{runs} round{'s' if runs > 1 else ''}"
    sys.stdout.write(
        f"{label}: {rounds} after {warmup} warm-up, each allocator once per round in a "
        f"shuffled order (--seed {seed}), Python {python}\n{format_table(summaries)}\n"
    )
    sys.stdout.flush()
    if settings.plot is not None:
        plot(settings.plot, summaries, f"{label}: {rounds}, shuffled")
        sys.stderr.write(f"{PROG}: plot written to {settings.plot}\n")
    return 0


def _run_rounds(
    allocators: Sequence[str],
    commands: Dict[str, Tuple[List[str], Dict[str, str]]],
    settings: Settings,
    seed: int,
    env: Dict[str, str],
    progress: Progress,
) -> Dict[str, List[Measurement]]:
    """Every round of the plan, each allocator once in the round's shuffled order
    (announced on stderr); the measurements of the measured rounds per allocator, in
    round order.  RunFailed at the first run that fails."""
    results: Dict[str, List[Measurement]] = {a: [] for a in allocators}
    plan = plan_rounds([settings.script], allocators, settings.runs, settings.warmup, seed)
    total = sum(len(turns) for turns in plan)
    done = 0
    started = time.perf_counter()
    for turns in plan:
        number = turns[0].round
        which = (f"warm-up {number + settings.warmup + 1}/{settings.warmup}" if number < 0
                 else f"run {number + 1}/{settings.runs}")
        title = which.replace("run", "round")
        progress.note(f"{title} order: {', '.join(t.variant for t in turns)}")
        for turn in turns:
            done += 1
            where = f"[{done}/{total}] {which} {turn.variant}"
            progress.running(f"{where} running... ({time.perf_counter() - started:.0f} s elapsed)")
            command, extra = commands[turn.variant]
            outcome = measure_child(command, extra, env, show_output=settings.show_output)
            if isinstance(outcome, RunFailure):
                of = which.split()[1].replace("/", " of ")
                kind = "warm-up " if number < 0 else ""
                raise RunFailed(f"the {turn.variant} run ({kind}{of}) {outcome.description}",
                                outcome.stderr_tail)
            if number >= 0:
                results[turn.variant].append(outcome)
            progress.finished(f"{where}: {_seconds(outcome.wall)}, CPU {_seconds(outcome.cpu)}, "
                              f"peak RSS {_mib(outcome.peak_rss)}")
    return results
