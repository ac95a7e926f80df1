"""The report: a compact table for people, versioned dicts for tools.

- ``bump_global.report()``: one process, as text;
- ``bump_global.report_dict()``: one process, schema ``bump_global.report/1``.
- ``bump-global run --json`` and ``BUMP_GLOBAL_JSON``: the whole program, schema
  ``bump_global.report/2``: a ``processes`` list (one record per process that ran
  under the allocator: the /1 fields plus pid, ppid, argv, role, exit) and a
  ``total`` (docs/report.md, "JSON").
"""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from bump_global._api import is_installed, memory, stats
from bump_global._api import wall_time as _since_install
from bump_global._config import default_size, format_size
from bump_global._flamegraph import command_text, process_label, shorten
from bump_global._sites import format_sites, merge_sites, process_sites, sequence

if TYPE_CHECKING:
    from bump_global._records import Memory, Stats

SCHEMA = "bump_global.report/1"
SESSION_SCHEMA = "bump_global.report/2"

#: With more processes than this, the text report shows one table (the root's)
#: and a line per process.
FULL_TABLES_UP_TO = 3

#: Allocation sites listed in a text report (all are in the JSON and the flame graph).
TOP_SITES = 10


def counter_names() -> Tuple[str, ...]:
    """The counters of :class:`Stats`, in order (the fields after ``committed`` up to
    ``config``)."""
    from bump_global._records import Stats

    fields = Stats._fields
    return fields[fields.index("allocations"):fields.index("config")]


#: Figures that accumulate (a forked child's are what it did after the fork).
_CUMULATIVE_REGION = ("used", "consumed")


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


def region_full(counters: Dict[str, int]) -> bool:
    """True once an allocation did not fit in the region (served elsewhere or refused)."""
    return bool(counters.get("fallback_allocations") or counters.get("failed_allocations"))


def shared_budget() -> Optional[Dict[str, int]]:
    """The budget this process shares with the rest of its program (the automatic
    size, core/budget.c), or None when its budget is its own alone."""
    from bump_global import _core

    values = _core.shared_budget()
    if values is None:
        return None
    names = ("limit", "used", "own", "processes", "refusals", "refused_here")
    return dict(zip(names, values))


def _budget_note(size: int) -> str:
    auto, why = default_size()
    return f" (default: {why})" if size == auto else ""


def format_report(stats: Optional[Stats], mem: Memory, wall_time: Optional[float],
                  sites_end: Optional[int] = None) -> str:
    """The report of one process as a few aligned lines (docs/report.md)."""
    return format_record(record_dict(stats, mem, wall_time, sites_end=sites_end))


def format_record(record: Dict[str, Any], title: str = "bump_global report") -> str:
    """The text of one process's record (a /1 dict or a /2 process record)."""
    proc = record["process"]
    peak = format_size(proc["peak_rss"]) if proc["peak_rss"] is not None else "unknown"
    process = [f"RSS {format_size(proc['rss'])}", f"peak RSS {peak}"]
    if record.get("wall_time_s") is not None:
        process.append(f"wall {record['wall_time_s']:.3f} s")
    if not record["installed"]:
        return f"{title}: not installed\n" + _row("process", *process)
    config, region, c = record["config"], record["region"], record["counters"]
    resident = format_size(region["resident"]) if region["resident"] is not None else "unknown"
    lines = [
        f"{title} (scope {config['scope']}, on exhausted: {config['on_exhausted']}, "
        f"gc: {config['gc']}{', huge pages' if config['huge_pages'] else ''})",
    ]
    if "exit" in record and _ending(record):
        lines.append(_row("ended", _ending(record)))
    lines += [
        _row("region", f"{format_size(region['reserved'])} reserved"
                       f"{_budget_note(region['reserved'])}",
             _used_cell(region["used"], region["reserved"]), f"{resident} resident"),
    ]
    prefault = _prefault_cell(c["bytes_prefaulted"], region.get("consumed"))
    if prefault:
        lines.append(_row("prefault", prefault))
    lines.append(_row("blocks", f"{c['allocations']:,} allocations "
                                f"({c['large_allocations']:,} large)",
                      f"{c['frees_ignored']:,} frees ignored"))
    if config["reclaim"] != "none":
        lines.append(_row("reclaim", f"{config['reclaim']}: {c['frees_reclaimed']:,} frees "
                                     f"gave back {format_size(c['bytes_reclaimed'])}",
                          f"{c['allocations_reused']:,} allocations reused"))
    if record.get("numpy") is not None:
        lines.append(_numpy_row(record["numpy"]))
    lines.append(_row("reallocs", f"{c['reallocs_in_place']:,} in place",
                      f"{c['reallocs_moved']:,} moved ({format_size(c['bytes_copied'])} copied)",
                      f"{format_size(c['bytes_released'])} of freed large blocks released"))
    lines.append(_row("foreign", f"{c['foreign_frees']:,} frees",
                      f"{c['foreign_reallocs']:,} reallocs (blocks from before the install)"))
    shared = region.get("shared_budget")
    if shared is not None:
        lines.append(_row("budget", f"shared by the program's {shared['processes']:,} "
                                    f"process(es): {format_size(shared['used'])} of "
                                    f"{format_size(shared['limit'])} taken",
                          f"{shared['refused_here']:,} refused here "
                          f"({shared['refusals']:,} in all)"))
    full = [f"{c['fallback_allocations']:,} fallbacks ({format_size(c['fallback_bytes'])})",
            f"{c['failed_allocations']:,} refused"]
    if region_full(c):
        full.append(f"{c.get('fallback_frees', 0):,} fallback blocks freed, "
                    f"{c.get('fallback_reallocs', 0):,} reallocated")
        what = ("the program's shared budget was full:"
                if shared is not None and shared["refused_here"] else "the region was full:")
        full.insert(0, what)
    lines.append(_row("full", *full))
    lines.append(_row("process", *process))
    if record.get("histogram") is not None:
        lines.extend(format_histogram([(h["upper_bound"], h["count"], h["bytes"])
                                       for h in record["histogram"]]))
    if record.get("sites") is not None:
        lines.extend(format_sites(record["sites"], TOP_SITES, _row, format_size))
    return "\n".join(lines)


def _used_cell(used: int, reserved: int) -> str:
    """``X used (P%)``; past 100% only under on_exhausted="error", once the region
    was full: the emergency reserve beyond the region (EMERGENCY_RESERVE, core/
    exhausted.c) then serves the MemoryError's unwinding, and the cell says so."""
    cell = f"{format_size(used)} used ({_pct(used, reserved)})"
    if reserved and used > reserved:
        cell = (f"{format_size(used)} used ({_pct(used, reserved)}: "
                f"{format_size(used - reserved)} beyond the budget, from the emergency "
                "reserve that on_exhausted='error' opens for the MemoryError)")
    return cell


def _prefault_cell(prefaulted: int, consumed: Optional[int]) -> str:
    """The prefault row's text ('' when nothing was faulted ahead).

    The counter (``bytes_prefaulted``, kept as it is in the JSON) adds up the
    page-rounded ranges populated ahead of use: by the helper thread, up to a window
    ahead of each area's top, and by the program, each new chunk once (core/prefault.c).
    A window may lie past what was taken, so in a small region the sum can pass it:
    the row then says so, instead of reading as a size larger than the region's use."""
    if not prefaulted:
        return ""
    if consumed is None or prefaulted <= consumed:
        return f"{format_size(prefaulted)} faulted in ahead (helper thread or 1 MiB populates)"
    return (f"{format_size(prefaulted)} faulted in ahead, more than the "
            f"{format_size(consumed)} taken: the helper thread's window ahead of the top "
            "was not all used")


def _numpy_row(figures: Dict[str, int]) -> str:
    """The row of the numpy handler's counters (bump_global/_numpy_hook.py)."""
    return _row("numpy", f"{figures['arrays']:,} arrays, "
                         f"{format_size(figures['bytes_allocated'])} allocated",
                f"{format_size(figures['bytes_freed'])} freed",
                f"{format_size(figures['live_bytes'])} live "
                f"(peak {format_size(figures['peak_live_bytes'])})",
                f"{figures['reallocs']:,} reallocs")


def _environment() -> Dict[str, Any]:
    return {"python": platform.python_version(), "implementation": sys.implementation.name,
            "platform": platform.platform()}


def record_dict(stats: Optional[Stats], mem: Memory, wall_time: Optional[float],
                baseline: Optional[Sequence[Any]] = None,
                sites_end: Optional[int] = None) -> Dict[str, Any]:
    """One process's figures: the fields of schema /1 after ``schema`` and the environment.

    `baseline`: ``(stats tuple, histogram)`` taken at a fork, subtracted from the
    cumulative figures so that a forked child reports what it did itself.
    `sites_end`: the sampling sequence number when the figures were taken
    (:func:`bump_global._sites.sequence`): later samples are the report's own.
    """
    result: Dict[str, Any] = {
        "installed": stats is not None,
        "wall_time_s": wall_time,
        "config": None,
        "region": None,
        "counters": None,
        "histogram": None,
        "process": {"rss": mem.rss, "peak_rss": mem.peak_rss},
    }
    if stats is None:
        return result
    before: Dict[str, int] = {}
    before_hist: Dict[int, Tuple[int, int]] = {}
    if baseline is not None:
        from bump_global._records import Stats as StatsType

        fields = StatsType._fields
        before = dict(zip(fields, baseline[0]))
        before_hist = {b: (n, s) for b, n, s in baseline[1] or ()}
    result["config"] = stats.config._asdict()  # every install option, from _config's list
    counters = {name: getattr(stats, name) - before.get(name, 0) for name in counter_names()}
    region = {"base": stats.base, "reserved": stats.reserved,
              "address_space": stats.address_space, "used": stats.used,
              "consumed": stats.consumed, "committed": stats.committed,
              "resident": mem.region_resident}
    for name in _CUMULATIVE_REGION:
        region[name] -= before.get(name, 0)
    region["shared_budget"] = shared_budget()
    result["region"] = region
    result["counters"] = counters
    if stats.config.numpy:
        from bump_global._numpy_hook import numpy_stats

        result["numpy"] = numpy_stats()._asdict()
    sites = process_sites(sites_end)
    if sites is not None:
        result["sites"] = sites
    if stats.histogram is not None:
        rows = []
        for b, n, s in stats.histogram:
            n0, s0 = before_hist.get(b, (0, 0))
            if n > n0:
                rows.append({"upper_bound": b, "count": n - n0, "bytes": s - s0})
        result["histogram"] = rows
    return result


def snapshot_record(wall_time: float, pid: int, ppid: int, argv: List[str], role: str,
                    exit: str, baseline: Optional[Sequence[Any]] = None) -> Dict[str, Any]:
    """This process's record for a session report, its figures taken now."""
    sites_end = sequence()
    current = stats() if is_installed() else None
    mem = memory()
    record = {"pid": pid, "ppid": ppid, "argv": argv, "role": role, "exit": exit}
    record.update(record_dict(current, mem, wall_time, baseline, sites_end))
    if record["installed"]:
        record["region"]["full"] = region_full(record["counters"])
    return record


#: How a process ended, as a report says it (the record's ``exit``).
ENDINGS = {
    "normal": "",
    "os._exit": "ended by os._exit({status})",
    "signal": "ended by {signal}: figures of its end",
    "killed": "ended without a word (SIGKILL or a crash): figures of its last snapshot",
    "running": "still running when the program ended: figures so far",
}


def state_record(pid: int, ppid: int, argv: List[str], role: str, exit: str,
                 signal: Optional[str], t_s: float, config: Optional[Dict[str, Any]],
                 values: Dict[str, int], before: Dict[str, int], process: Dict[str, Any],
                 resident: Optional[int], sites: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The record of a process that did not write its own (it was killed, or still
    runs), from the snapshot its recorder kept (bump_global/_session.py): the same
    fields as :func:`snapshot_record`'s, no histogram, and `exit` saying how it
    ended (``signal`` with the signal's name, ``killed``, ``running``)."""
    counters = {name: values.get(name, 0) - before.get(name, 0) for name in counter_names()}
    reserved = values.get("reserved", 0)
    from bump_global._errors import load_core

    region = {"base": values.get("base"), "reserved": reserved,
              "address_space": 2 * reserved + load_core().EMERGENCY_RESERVE,
              "used": values.get("used", 0) - before.get("used", 0),
              "consumed": values.get("consumed", 0) - before.get("consumed", 0),
              "committed": values.get("committed"), "resident": resident,
              "shared_budget": None, "full": region_full(counters)}
    record: Dict[str, Any] = {
        "pid": pid, "ppid": ppid, "argv": argv, "role": role, "exit": exit,
        "installed": True, "wall_time_s": t_s, "config": config, "region": region,
        "counters": counters, "histogram": None, "process": process}
    if signal is not None:
        record["signal"] = signal
    if sites is not None:
        record["sites"] = sites
    return record


def session_dict(records: List[Dict[str, Any]], missing: Sequence[Dict[str, Any]] = (),
                 tree_peak: Optional[int] = None) -> Dict[str, Any]:
    """The report of a whole program: schema /2 (docs/report.md, "JSON")."""
    installed = [r for r in records if r["installed"]]
    peaks = [r["process"]["peak_rss"] for r in records if r["process"]["peak_rss"] is not None]
    total = {
        "processes": len(records),
        "used": sum(r["region"]["used"] for r in installed),
        "allocations": sum(r["counters"]["allocations"] for r in installed),
        "peak_rss_max": max(peaks) if peaks else None,
        "peak_rss_sum": sum(peaks) if peaks else None,
        "tree_peak_rss": _tree_peak(records) if len(records) == 1 else tree_peak,
    }
    return {"schema": SESSION_SCHEMA, **_environment(), "processes": records,
            "missing": list(missing), "total": total}


def _tree_peak(records: List[Dict[str, Any]]) -> Optional[int]:
    """The tree's peak RSS without a timeline: with one process, its own peak;
    with several, only samples of all of them over time can tell (None)."""
    if len(records) == 1:
        peak = records[0]["process"]["peak_rss"]
        return int(peak) if peak is not None else None
    return None


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ending(record: Dict[str, Any]) -> str:
    text = ENDINGS.get(record["exit"], f"ended by {record['exit']}").format(
        signal=record.get("signal", "a signal"), status=record.get("status", ""))
    return text.replace("os._exit()", "os._exit")


def _label(record: Dict[str, Any]) -> str:
    """``process PID (ROLE, parent PPID): COMMAND``."""
    return process_label(record)


def format_session(data: Dict[str, Any]) -> str:
    """The text report of a whole program: one table with one process; labelled
    tables, or a table and a line per process, with several; then the totals."""
    records = data["processes"]
    if len(records) == 1 and not data["missing"] and records[0]["exit"] == "normal":
        return format_record(records[0])
    lines = [f"bump_global report: {_plural(len(records), 'process', 'processes')}"]
    if len(records) <= FULL_TABLES_UP_TO:
        for record in records:
            lines.append(format_record(record, title=_label(record)))
    else:
        lines.append(format_record(records[0], title=_label(records[0])))
        lines.append(_row("processes", f"{'pid':>8} {'role':<6} {'parent':>8} {'used':>10} "
                                       f"{'allocations':>12} {'peak RSS':>10} {'ended':<9} "
                                       "command"))
        for record in records:
            used = format_size(record["region"]["used"]) if record["installed"] else "-"
            allocations = (f"{record['counters']['allocations']:,}" if record["installed"]
                           else "-")
            peak = record["process"]["peak_rss"]
            command = shorten(command_text(record.get("argv")), 60)
            ended = record.get("signal") or {"normal": "-"}.get(record["exit"], record["exit"])
            lines.append(_row("", f"{record['pid']:>8} {record['role']:<6} "
                                  f"{record['ppid']:>8} {used:>10} {allocations:>12} "
                                  f"{format_size(peak) if peak is not None else '-':>10} "
                                  f"{ended:<9} {command}"))
    for gone in data["missing"]:
        why = ("still running when the root ended" if gone.get("state") == "running"
               else "ended before its recorder wrote anything")
        lines.append(_row("missing", f"process {gone['pid']} (parent {gone['ppid']}) {why}: "
                                     + shorten(command_text(gone.get("argv")), 60)))
    total = data["total"]
    peak_max = total["peak_rss_max"]
    peak_sum = total["peak_rss_sum"]
    lines.append(_row("total", _plural(total["processes"], "process", "processes"),
                      f"{format_size(total['used'])} handed out",
                      f"{total['allocations']:,} allocations",
                      f"largest peak RSS {format_size(peak_max) if peak_max else '-'}",
                      f"sum of peaks {format_size(peak_sum) if peak_sum else '-'}"))
    sampled = [r["sites"] for r in records if r.get("sites") is not None]
    if len(sampled) > 1:  # the sites of the whole program, after its totals
        lines.extend(format_sites(merge_sites(sampled), TOP_SITES, _row, format_size,
                                  label="all sites"))
    return "\n".join(lines)


def timeline_tree_peak(rows: Sequence[Tuple[Any, ...]]) -> Optional[int]:
    """The largest sum of the processes' RSS over a merged timeline of rows
    (pid, time_s, used, resident, rss): each process counts with its latest
    sample from its first to its last one.  None without samples."""
    if not rows:
        return None
    last_time: Dict[Any, float] = {}
    for pid, t, *_ in rows:
        last_time[pid] = max(t, last_time.get(pid, t))
    current: Dict[Any, int] = {}
    peak = 0
    for pid, t, _, _, rss in sorted(rows, key=lambda row: row[1]):
        current[pid] = rss
        for other in [p for p in current if last_time[p] < t]:
            del current[other]  # ended before this moment
        peak = max(peak, sum(current.values()))
    return peak


def _guard_switch() -> Any:
    """The C core's report_guard (None without the core), taken at import."""
    from bump_global._errors import BumpGlobalError, load_core

    try:
        return load_core().report_guard
    except BumpGlobalError:
        return None


#: The guard of report() and report_dict(), a C function taken at import (under the
#: package's guarded import) and called directly: a guard object made at the call, or
#: a ``with`` block's bound __enter__, is an allocation before the guard is on, which
#: a region that the report's own imports just filled refuses under
#: on_exhausted="error" (report() right after install() raised MemoryError).
_SWITCH = _guard_switch()


def report(wall_time: Optional[float] = None) -> str:
    """A compact human table of :func:`bump_global.stats` and :func:`bump_global.memory`.

    `wall_time` (seconds) is shown as given; by default, the time since install.
    It works after the region filled (see :class:`bump_global._api.guarded`).
    """
    previous = _SWITCH(True) if _SWITCH is not None else False
    try:
        sites_end = sequence()
        return format_report(stats() if is_installed() else None, memory(),
                             _since_install(wall_time), sites_end)
    finally:
        if _SWITCH is not None:
            _SWITCH(previous)


def report_dict(wall_time: Optional[float] = None) -> Dict[str, Any]:
    """The report as a JSON-ready dict, schema ``bump_global.report/1`` (docs/report.md)."""
    previous = _SWITCH(True) if _SWITCH is not None else False
    try:
        sites_end = sequence()
        return {"schema": SCHEMA, **record_dict(stats() if is_installed() else None,
                                                memory(), _since_install(wall_time),
                                                sites_end=sites_end),
                **_environment()}
    finally:
        if _SWITCH is not None:
            _SWITCH(previous)


report.__module__ = report_dict.__module__ = "bump_global"
