"""``bump-global plot TIMELINE... -o FILE.png``: memory over time, one line per process."""

from __future__ import annotations

import argparse
from typing import Any, Dict, Sequence

PARSER: Dict[str, Any] = {
    "description": "Draw region used, region resident and RSS over time from the files "
                   "that 'run --sample MS --timeline FILE' writes (one line per process). "
                   "Needs matplotlib: pip install 'bump_global[plot]'.",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timelines", nargs="+", metavar="TIMELINE",
                        help="timeline files (CSV or JSON lines)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png",
                        help="the picture to write")
    parser.add_argument("--title", default=None, help="a title for the picture")


def main(args: Sequence[str]) -> int:
    from bump_global.commands import UsageError, build_parser

    ns = build_parser("plot").parse_args(["plot", *args])
    try:
        from bump_global import _plot
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise UsageError(f"plotting is not available: {exc}") from exc
    try:
        _plot.check_matplotlib("plot")
        _plot.plot_timelines(ns.timelines, ns.output, title=ns.title)
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from exc
    return 0
