"""``bump-global plot``: draw ``--timeline`` files (region used, region resident, RSS).

A timeline file (bump_global/_timeline.py) is CSV, with the header
:data:`~bump_global._timeline.COLUMNS` and optionally a last ``pid`` column,
or JSON lines with those keys (``pid`` optional).  A file without pids is one
process.  The format is told by the content, not the file name.

The picture has two panels sharing the time axis: the region (bytes handed
out, solid; resident, dashed) above, the process RSS below.  Each process has
its own colour; with one process the legend names the lines only.  Drawn with
matplotlib's Agg canvas (no pyplot, no display, no global backend change).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bump_global._timeline import COLUMNS

#: One process's samples: times, used, region resident (None: unknown), RSS.
Series = Tuple[List[float], List[int], List[Optional[int]], List[int]]

#: The columns of a timeline with pids.
COLUMNS_WITH_PID = (*COLUMNS, "pid")

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
         pid: Any) -> None:
    t = _time(path, where, values[0])
    used = _int(path, where, "used_bytes", values[1])
    resident = _int(path, where, "region_resident_bytes", values[2], optional=True)
    rss = _int(path, where, "rss_bytes", values[3])
    key = 0 if pid is None else _int(path, where, "pid", pid)
    times, used_col, resident_col, rss_col = series.setdefault(key or 0, ([], [], [], []))
    times.append(t)
    used_col.append(used or 0)
    resident_col.append(resident)
    rss_col.append(rss or 0)


def _read_csv(path: str, lines: List[str], series: Dict[int, Series]) -> bool:
    header = tuple(cell.strip() for cell in lines[0].split(","))
    if header not in (COLUMNS, COLUMNS_WITH_PID):
        raise ValueError(f"{path}: line 1: the CSV header is {','.join(header)!r}; expected "
                         f"{','.join(COLUMNS)!r}, optionally followed by ',pid'")
    with_pid = header == COLUMNS_WITH_PID
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(header):
            raise ValueError(f"{path}: line {number}: {len(cells)} fields, expected "
                             f"{len(header)} ({','.join(header)})")
        _add(series, path, f"line {number}", cells, cells[4] if with_pid else None)
    return with_pid


def _read_json_lines(path: str, lines: List[str], series: Dict[int, Series]) -> bool:
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
                             f"line has {', '.join(COLUMNS)}, and optionally pid)")
        has_pid = "pid" in record
        if with_pid is None:
            with_pid = has_pid
        elif has_pid != with_pid:
            raise ValueError(f"{path}: {where}: some lines have a pid and some do not")
        _add(series, path, where, [record[name] for name in COLUMNS], record.get("pid"))
    return bool(with_pid)


def read_timeline(path: str) -> Dict[int, Series]:
    """The samples of one timeline file per pid (0: a file without pids), in time order.

    Raises ValueError with one line naming the file and what is wrong.
    """
    try:
        with open(path, encoding="utf-8") as handle:
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
    if lines[0].lstrip().startswith("{"):
        _read_json_lines(path, lines, series)
    else:
        _read_csv(path, lines, series)
    if not series:
        raise ValueError(f"{path}: a header but no samples to draw")
    for key, (times, used, resident, rss) in series.items():
        order = sorted(range(len(times)), key=times.__getitem__)
        series[key] = ([times[i] for i in order], [used[i] for i in order],
                       [resident[i] for i in order], [rss[i] for i in order])
    return series


def _unit(largest: float) -> Tuple[float, str]:
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if largest >= 2 * scale:
            return float(scale), name
    return 1.0, "bytes"


def _label(path: str, pid: int, many_files: bool, many_processes: bool) -> str:
    parts = []
    if many_files:
        parts.append(os.path.basename(path))
    if many_processes and pid:
        parts.append(f"pid {pid}")
    return ", ".join(parts)


def plot_timelines(paths: Sequence[str], output: str, title: Optional[str] = None) -> None:
    """Draw the timelines in `paths` as one PNG (or any format matplotlib saves) at `output`."""
    if not paths:
        raise ValueError("no timeline files given: pass one or more files written by "
                         "bump-global run --sample MS --timeline FILE")
    loaded = [(path, read_timeline(path)) for path in paths]  # bad input first
    check_matplotlib("plot")
    curves = [(path, pid, data) for path, by_pid in loaded for pid, data in sorted(by_pid.items())]

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    largest = 0
    for _, _, (_, used, resident, rss) in curves:
        known = [r for r in resident if r is not None]
        largest = max(largest, max(used), max(rss), max(known, default=0))
    scale, unit = _unit(float(largest))
    fig = Figure(figsize=(10.0, 6.4), dpi=120)
    FigureCanvasAgg(fig)
    ax_region, ax_rss = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    many_files = len(paths) > 1
    many_processes = len(curves) > 1
    for index, (path, pid, (times, used, resident, rss)) in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        name = _label(path, pid, many_files, many_processes)
        prefix = f"{name}: " if name else ""
        ax_region.plot(times, [u / scale for u in used], color=color, linewidth=1.8,
                       label=f"{prefix}region used")
        if any(r is not None for r in resident):
            shown = [float("nan") if r is None else r / scale for r in resident]
            ax_region.plot(times, shown, color=color, linewidth=1.4, linestyle="--",
                           label=f"{prefix}region resident")
        ax_rss.plot(times, [r / scale for r in rss], color=color, linewidth=1.6,
                    label=f"{prefix}RSS")
    ax_region.set_title("Region: bytes handed out (solid) and resident (dashed)", fontsize=11)
    ax_region.set_ylabel(unit)
    ax_rss.set_title("Process RSS", fontsize=11)
    ax_rss.set_ylabel(unit)
    ax_rss.set_xlabel("time since start (s)")
    for ax in (ax_region, ax_rss):
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", fontsize=8, ncol=2 if many_processes else 1,
                  framealpha=0.85)
    processes = len(curves)
    default = ", ".join(os.path.basename(p) for p in paths)
    subtitle = f" ({processes} processes)" if processes > len(paths) else ""
    fig.suptitle(f"{title or default}{subtitle}", fontsize=12)
    fig.tight_layout()
    try:
        fig.savefig(output)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{output}: cannot write the picture ({exc})") from None
