"""``bump-global flamegraph REPORT -o OUT``: the allocation sites of a report as a flame graph.

The work is in bump_global/_flamegraph.py; this module reads the report, checks the
paths and says, in one line naming the argument, what is wrong with either.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Sequence

PARSER: Dict[str, Any] = {
    "description": "Draw where the bytes come from: the allocation stacks that "
                   "'run --sites' sampled, from the report that 'run --json' wrote, as a "
                   "flame graph (an HTML page), folded stacks (flamegraph.pl, inferno) or a "
                   "speedscope file. Several processes make one graph, a frame each.",
}

#: What a REPORT must be, said after each complaint about it.
GIVE_REPORT = "give the JSON file that 'bump-global run --sites --json FILE' wrote"

#: How many processes without samples a note names before it counts the rest.
NAMED_UP_TO = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bump_global._flamegraph import FORMATS

    parser.add_argument("report", metavar="REPORT",
                        help="the JSON report of 'bump-global run --sites --json FILE'")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the file to write")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="html (a page for any browser), folded (flamegraph.pl, inferno) "
                             "or speedscope (speedscope.app); default: from OUT's extension "
                             "(.html, .folded or .txt, .json), else html")
    parser.add_argument("--title", default=None,
                        help="the page's title (default: 'Allocations of COMMAND')")


def read_report(path: str) -> Any:
    """The JSON in `path`; UsageError, naming REPORT, if there is none."""
    from bump_global.commands import UsageError

    if not os.path.exists(path):
        raise UsageError(f"argument REPORT: {path!r} does not exist: {GIVE_REPORT}")
    if os.path.isdir(path):
        raise UsageError(f"argument REPORT: {path!r} is a directory: {GIVE_REPORT}")
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except UnicodeDecodeError:
        raise UsageError(f"argument REPORT: {path!r} is not JSON (not UTF-8 text): "
                         f"{GIVE_REPORT}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"argument REPORT: {path!r} is not JSON (line {exc.lineno}, "
                         f"column {exc.colno}: {exc.msg}): {GIVE_REPORT}") from None
    except OSError as exc:
        raise UsageError(f"argument REPORT: cannot read {path!r}: {exc.strerror}") from None


def check_output(path: str, report: str) -> None:
    """UsageError, naming -o/--output, unless `path` can be a new or replaced file."""
    from bump_global.commands import UsageError

    where = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"argument -o/--output: {path!r} is a directory: give a file "
                         f"name, e.g. {os.path.join(path, 'flamegraph.html')!r}")
    if not os.path.isdir(where):
        raise UsageError(f"argument -o/--output: directory {os.path.dirname(path)!r} does "
                         "not exist: create it or write elsewhere")
    if os.path.exists(path) and os.path.samefile(path, report):
        raise UsageError(f"argument -o/--output: {path!r} is the report itself: choose "
                         "another file name")


def unsampled_note(labels: List[str]) -> str:
    """One line naming the processes that are not in the graph."""
    named = "; ".join(labels[:NAMED_UP_TO])
    more = len(labels) - NAMED_UP_TO
    return f"not in the graph (no samples): {named}" + (f"; and {more} more" if more > 0
                                                        else "")


def main(args: Sequence[str]) -> int:
    import sys

    from bump_global import _flamegraph
    from bump_global.commands import PROG, UsageError, build_parser

    ns = build_parser("flamegraph").parse_args(["flamegraph", *args])
    report = read_report(ns.report)
    try:
        profiles = _flamegraph.profiles_from_report(report)
        unsampled = _flamegraph.processes_without_samples(report)
    except _flamegraph.ReportError as exc:
        raise UsageError(f"argument REPORT: {ns.report!r} {exc}: {GIVE_REPORT}") from exc
    if not profiles:
        raise UsageError(f"argument REPORT: {ns.report!r} has no allocation sites (no "
                         "process sampled its allocations): run with --sites, e.g. "
                         "'bump-global run --sites --json report.json SCRIPT'")
    check_output(ns.output, ns.report)
    note = unsampled_note(unsampled) if unsampled else ""
    try:
        _flamegraph.write(profiles, ns.output, ns.format, ns.title,
                          notes=[note[:1].upper() + note[1:]] if note else [])
    except OSError as exc:
        raise UsageError(f"argument -o/--output: cannot write {ns.output!r}: "
                         f"{exc.strerror or exc}") from None
    if note:
        sys.stderr.write(f"{PROG}: note: {note}\n")
    return 0
