"""``bump-global plot``: draw ``--timeline`` files (region used, region resident, RSS).

A timeline file (bump_global/_timeline.py) is CSV, with the header
:data:`~bump_global._timeline.COLUMNS` then the process's columns ``pid``,
``role`` and ``command`` (written with the csv module: a command may hold
commas), or JSON lines with those keys.  Older files are read too: without the
process's columns (one process), or with ``pid`` only.  The format is told by
the content, not the file name.

The picture has two panels sharing the time axis: the region (bytes handed
out, solid; resident, dashed) above, the process RSS below.  Each process has
its own colour and is named once, in the upper legend, as ``PID ROLE: command``
(shortened, head and tail); with several processes the lower panel also has a
line for the whole tree: the sum of the processes' RSS over time, each process
counting with its latest sample from its first sample to its last.  Drawn with
matplotlib's Agg canvas (no pyplot, no display, no global backend change).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bump_global._timeline import COLUMNS, PROCESS_COLUMNS

#: One process's samples: times, used, region resident (None: unknown), RSS.
Series = Tuple[List[float], List[int], List[Optional[int]], List[int]]

#: The columns of a timeline with pids (an older version's).
COLUMNS_WITH_PID = (*COLUMNS, "pid")
#: The columns of a timeline with the process's pid, role and command.
COLUMNS_WITH_PROCESS = (*COLUMNS, *PROCESS_COLUMNS)

#: What a legend keeps of a process's command (head and tail).
LABEL_WIDTH = 60

#: Processes: pid -> (role, command), as the file says ("" where it does not).
Processes = Dict[int, Tuple[str, str]]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")


class MatplotlibMissing(ImportError):
    """matplotlib (the ``plot`` extra) is not installed; the message says what to do."""


def check_matplotlib(option: str) -> None:
    """Raise MatplotlibMissing, one line naming `option`, if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MatplotlibMissing(
            f"{option} needs matplotlib, which is not installed: "
            "pip install 'bump_global[plot]'"
        ) from None


def _int(path: str, where: str, name: str, text: Any, optional: bool = False) -> Optional[int]:
    if optional and (text is None or text == ""):
        return None
    if isinstance(text, bool) or isinstance(text, float):
        raise ValueError(f"{path}: {where}: {name} must be a whole number, not {text!r}")
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {where}: {name} must be a whole number, not {text!r}") \
            from None
    if value < 0:
        raise ValueError(f"{path}: {where}: {name} must not be negative ({value})")
    return value


def _time(path: str, where: str, text: Any) -> float:
    try:
        if isinstance(text, bool):
            raise TypeError
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {where}: time_s must be a number, not {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise ValueError(f"{path}: {where}: time_s must be a finite number >= 0, not {text!r}")
    return value


def _add(series: Dict[int, Series], path: str, where: str, values: Sequence[Any],
         pid: Any) -> int:
    t = _time(path, where, values[0])
    used = _int(path, where, "used_bytes", values[1])
    resident = _int(path, where, "region_resident_bytes", values[2], optional=True)
    rss = _int(path, where, "rss_bytes", values[3])
    key = (0 if pid is None else _int(path, where, "pid", pid)) or 0
    times, used_col, resident_col, rss_col = series.setdefault(key, ([], [], [], []))
    times.append(t)
    used_col.append(used or 0)
    resident_col.append(resident)
    rss_col.append(rss or 0)
    return key


def _text(path: str, where: str, name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{path}: {where}: {name} must be text, not {value!r}")
    return value


def _read_csv(path: str, lines: List[str], series: Dict[int, Series],
              processes: Processes) -> None:
    rows = csv.reader(lines)
    header = tuple(cell.strip() for cell in next(rows))
    if header not in (COLUMNS, COLUMNS_WITH_PID, COLUMNS_WITH_PROCESS):
        raise ValueError(f"{path}: line 1: the CSV header is {','.join(header)!r}; expected "
                         f"{','.join(COLUMNS)!r}, optionally followed by "
                         f"',{','.join(PROCESS_COLUMNS)}' or ',pid'")
    for number, cells in enumerate(rows, start=2):
        if not cells or not "".join(cells).strip():
            continue
        if len(cells) != len(header):
            raise ValueError(f"{path}: line {number}: {len(cells)} fields, expected "
                             f"{len(header)} ({','.join(header)})")
        cells = [cell.strip() for cell in cells[:len(COLUMNS_WITH_PID)]] + cells[5:]
        pid = _add(series, path, f"line {number}", cells,
                   cells[4] if len(header) > len(COLUMNS) else None)
        if len(header) == len(COLUMNS_WITH_PROCESS):
            processes.setdefault(pid, (cells[5].strip(), cells[6]))


def _read_json_lines(path: str, lines: List[str], series: Dict[int, Series],
                     processes: Processes) -> None:
    with_pid = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}: {where}: not JSON ({exc.args[0].split(':')[0]})") \
                from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {where}: expected a JSON object with the keys "
                             f"{', '.join(COLUMNS)}")
        missing = [name for name in COLUMNS if name not in record]
        if missing:
            raise ValueError(f"{path}: {where}: missing {', '.join(missing)} (a timeline "
                             f"line has {', '.join(COLUMNS)}, and optionally "
                             f"{', '.join(PROCESS_COLUMNS)})")
        has_pid = "pid" in record
        if with_pid is None:
            with_pid = has_pid
        elif has_pid != with_pid:
            raise ValueError(f"{path}: {where}: some lines have a pid and some do not")
        pid = _add(series, path, where, [record[name] for name in COLUMNS], record.get("pid"))
        if "role" in record or "command" in record:
            processes.setdefault(pid, (_text(path, where, "role", record.get("role")),
                                       _text(path, where, "command", record.get("command"))))


def read_timeline_file(path: str) -> Tuple[Dict[int, Series], Processes]:
    """The samples of one timeline file per pid (0: a file without pids), in time
    order, and the processes' (role, command) where the file has them.

    Raises ValueError with one line naming the file and what is wrong.
    """
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a timeline (not UTF-8 text)") from None
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise ValueError(f"{path}: empty: no samples to draw")
    series: Dict[int, Series] = {}
    processes: Processes = {}
    if lines[0].lstrip().startswith("{"):
        _read_json_lines(path, lines, series, processes)
    else:
        try:
            _read_csv(path, lines, series, processes)
        except csv.Error as exc:
            raise ValueError(f"{path}: not a CSV timeline ({exc})") from None
    if not series:
        raise ValueError(f"{path}: a header but no samples to draw")
    for key, (times, used, resident, rss) in series.items():
        order = sorted(range(len(times)), key=times.__getitem__)
        series[key] = ([times[i] for i in order], [used[i] for i in order],
                       [resident[i] for i in order], [rss[i] for i in order])
    return series, processes


def read_timeline(path: str) -> Dict[int, Series]:
    """The samples of one timeline file per pid (0: a file without pids), in time order.

    Raises ValueError with one line naming the file and what is wrong.
    """
    return read_timeline_file(path)[0]


def tree_rss(series: Dict[int, Series]) -> Tuple[List[float], List[int]]:
    """The whole tree's RSS over time: at each sample's time, the sum of every
    process's latest RSS sample, a process counting from its first sample to its
    last (bump_global/_report.py's timeline_tree_peak is the peak of this)."""
    spans = {pid: (data[0][0], data[0][-1]) for pid, data in series.items() if data[0]}
    events = sorted((t, pid, rss) for pid, data in series.items()
                    for t, rss in zip(data[0], data[3]))
    current: Dict[int, int] = {}
    times: List[float] = []
    sums: List[int] = []
    for t, pid, rss in events:
        current[pid] = rss
        for other in [p for p in current if spans[p][1] < t]:
            del current[other]  # its last sample is past
        if times and times[-1] == t:
            sums[-1] = sum(current.values())
        else:
            times.append(t)
            sums.append(sum(current.values()))
    return times, sums


def _unit(largest: float) -> Tuple[float, str]:
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if largest >= 2 * scale:
            return float(scale), name
    return 1.0, "bytes"


def _label(path: str, pid: int, process: Optional[Tuple[str, str]], many_files: bool,
           many_processes: bool) -> str:
    """``[file, ]PID ROLE: command`` (the parts known), or "" for a lone process of a
    lone file without a name."""
    from bump_global._flamegraph import shorten

    parts = []
    if many_files:
        parts.append(os.path.basename(path))
    if pid and (many_processes or process):
        who = f"{pid} {process[0]}" if process and process[0] else f"pid {pid}"
        if process and process[1]:
            who += f": {shorten(process[1], LABEL_WIDTH)}"
        parts.append(who)
    return ", ".join(parts)


def plot_timelines(paths: Sequence[str], output: str, title: Optional[str] = None) -> None:
    """Draw the timelines in `paths` as one PNG (or any format matplotlib saves) at `output`."""
    fig = figure(paths, title)
    try:
        fig.savefig(output)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{output}: cannot write the picture ({exc})") from None


def figure(paths: Sequence[str], title: Optional[str] = None) -> Any:
    """The matplotlib Figure of the timelines in `paths` (what plot_timelines saves)."""
    if not paths:
        raise ValueError("no timeline files given: pass one or more files written by "
                         "bump-global run --sample MS --timeline FILE")
    loaded = [(path, *read_timeline_file(path)) for path in paths]  # bad input first
    check_matplotlib("plot")
    curves = [(path, pid, processes.get(pid), data) for path, by_pid, processes in loaded
              for pid, data in sorted(by_pid.items(), key=lambda item: item[1][0][0])]
    trees = [(path, tree_rss(by_pid)) for path, by_pid, _ in loaded if len(by_pid) > 1]

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    largest = 0
    for _, _, _, (_, used, resident, rss) in curves:
        known = [r for r in resident if r is not None]
        largest = max(largest, max(used), max(rss), max(known, default=0))
    for _, (_, sums) in trees:
        largest = max(largest, max(sums))
    scale, unit = _unit(float(largest))
    many_files = len(paths) > 1
    many_processes = len(curves) > 1
    fig = Figure(figsize=(10.0, 6.4 + (0.22 * len(curves) if many_processes else 0.0)),
                 dpi=120)
    FigureCanvasAgg(fig)
    ax_region, ax_rss = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    handles: List[Any] = []
    for index, (path, pid, process, (times, used, resident, rss)) in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        name = _label(path, pid, process, many_files, many_processes)
        line, = ax_region.plot(times, [u / scale for u in used], color=color, linewidth=1.8,
                               label=name or "region used")
        if any(r is not None for r in resident):
            shown = [float("nan") if r is None else r / scale for r in resident]
            ax_region.plot(times, shown, color=color, linewidth=1.4, linestyle="--",
                           label="_" if name else "region resident")
        ax_rss.plot(times, [r / scale for r in rss], color=color, linewidth=1.6,
                    label="_" if name else "RSS")
        if name:
            handles.append(line)
    for path, (times, sums) in trees:
        ax_rss.plot(times, [v / scale for v in sums], color="black", linewidth=2.2,
                    drawstyle="steps-post",
                    label="whole tree (sum of RSS)" + (f", {os.path.basename(path)}"
                                                       if many_files else ""))
    ax_region.set_title("Region: bytes handed out (solid) and resident (dashed)", fontsize=11)
    ax_region.set_ylabel(unit)
    ax_rss.set_title(("RSS of each process" + (" and of the whole tree" if trees else ""))
                     if many_processes else "Process RSS", fontsize=11)
    ax_rss.set_ylabel(unit)
    ax_rss.set_xlabel("time since start (s)")
    for ax in (ax_region, ax_rss):
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    if handles:  # one entry per process (its colour), under the picture
        styles = [Line2D([], [], color="gray", linewidth=1.8, label="region used"),
                  Line2D([], [], color="gray", linewidth=1.4, linestyle="--",
                         label="region resident")]
        ax_region.legend(handles=styles, loc="upper left", fontsize=8, framealpha=0.85)
        fig.legend(handles=handles, loc="lower center", fontsize=8, framealpha=0.85,
                   ncol=1 if len(handles) <= 4 else 2)  # as `columns` below
        if trees:
            ax_rss.legend(loc="upper left", fontsize=8, framealpha=0.85)
    else:
        for ax in (ax_region, ax_rss):
            ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    processes = len(curves)
    default = ", ".join(os.path.basename(p) for p in paths)
    subtitle = f" ({processes} processes)" if processes > len(paths) else ""
    fig.suptitle(f"{title or default}{subtitle}", fontsize=12)
    columns = 1 if len(handles) <= 4 else 2
    rows = -(-len(handles) // columns)
    fig.tight_layout(rect=(0.0, min(0.45, 0.03 * rows + 0.01) if handles else 0.0, 1.0, 1.0))
    return fig
