"""The report: a compact table for people, a versioned dict for tools."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from bump_global._config import format_size

if TYPE_CHECKING:
    from bump_global import Memory, Stats

SCHEMA = "bump_global.report/1"

COUNTERS = ("allocations", "frees_ignored", "foreign_frees", "foreign_reallocs",
            "reallocs_in_place", "reallocs_moved", "bytes_copied", "fallback_allocations",
            "fallback_bytes", "failed_allocations", "large_allocations", "bytes_released",
            "bytes_prefaulted", "frees_reclaimed", "bytes_reclaimed", "allocations_reused")


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _row(label: str, *cells: str) -> str:
    return f"  {label:<10} " + "   ".join(cells)


def format_histogram(rows: Any) -> List[str]:
    total = sum(count for _, count, _ in rows) or 1
    lines = [_row("sizes", f"{'up to':>9} {'requests':>14} {'share':>6} {'bytes':>11}")]
    for bound, count, nbytes in rows:
        lines.append(_row("", f"{format_size(bound):>9} {count:>14,} "
                              f"{_pct(count, total):>6} {format_size(nbytes):>11}"))
    return lines


def format_report(stats: Optional[Stats], mem: Memory, wall_time: Optional[float]) -> str:
    """The report as a few aligned lines (see the README: "Reading a report")."""
    peak = format_size(mem.peak_rss) if mem.peak_rss is not None else "unknown"
    process = [f"RSS {format_size(mem.rss)}", f"peak RSS {peak}"]
    if wall_time is not None:
        process.append(f"wall {wall_time:.3f} s")
    if stats is None:
        return "bump_global report: not installed\n" + _row("process", *process)
    resident = format_size(mem.region_resident) if mem.region_resident is not None else "unknown"
    lines = [
        f"bump_global report (scope {stats.scope}, on exhausted: {stats.on_exhausted}, "
        f"gc: {stats.gc}{', huge pages' if stats.huge_pages else ''})",
        _row("region", f"{format_size(stats.reserved)} reserved",
             f"{format_size(stats.used)} used ({_pct(stats.used, stats.reserved)})",
             f"{resident} resident"),
        _row("blocks", f"{stats.allocations:,} allocations ({stats.large_allocations:,} large)",
             f"{stats.frees_ignored:,} frees ignored"),
        _row("reallocs", f"{stats.reallocs_in_place:,} in place",
             f"{stats.reallocs_moved:,} moved ({format_size(stats.bytes_copied)} copied, "
             f"{format_size(stats.bytes_released)} released)"),
        _row("foreign", f"{stats.foreign_frees:,} frees",
             f"{stats.foreign_reallocs:,} reallocs (blocks from before the install)"),
        _row("full", f"{stats.fallback_allocations:,} fallbacks "
             f"({format_size(stats.fallback_bytes)})",
             f"{stats.failed_allocations:,} refused"),
        _row("process", *process),
    ]
    if stats.reclaim != "none":  # just after the "blocks" row
        lines.insert(3, _row("reclaim", f"{stats.reclaim}: {stats.frees_reclaimed:,} frees "
                                        f"gave back {format_size(stats.bytes_reclaimed)}",
                             f"{stats.allocations_reused:,} allocations reused"))
    if stats.bytes_prefaulted:
        lines.insert(2, _row("prefault", f"{format_size(stats.bytes_prefaulted)} faulted in "
                                         "ahead by the helper thread"))
    if stats.histogram is not None:
        lines.extend(format_histogram(stats.histogram))
    return "\n".join(lines)


def report_dict(stats: Optional[Stats], mem: Memory, wall_time: Optional[float]) -> Dict[str, Any]:
    """The report for tools; its layout is the schema documented in the README."""
    result: Dict[str, Any] = {
        "schema": SCHEMA,
        "installed": stats is not None,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "wall_time_s": wall_time,
        "config": None,
        "region": None,
        "counters": None,
        "histogram": None,
        "process": {"rss": mem.rss, "peak_rss": mem.peak_rss},
    }
    if stats is not None:
        result["config"] = {"scope": stats.scope, "on_exhausted": stats.on_exhausted,
                            "size": stats.reserved, "histogram": stats.histogram is not None,
                            "prefault": stats.prefault, "huge_pages": stats.huge_pages,
                            "gc": stats.gc, "reclaim": stats.reclaim}
        result["region"] = {"base": stats.base, "reserved": stats.reserved,
                            "address_space": stats.address_space, "used": stats.used,
                            "consumed": stats.consumed, "committed": stats.committed,
                            "resident": mem.region_resident}
        result["counters"] = {name: getattr(stats, name) for name in COUNTERS}
        if stats.histogram is not None:
            result["histogram"] = [{"upper_bound": b, "count": c, "bytes": n}
                                   for b, c, n in stats.histogram]
    return result
