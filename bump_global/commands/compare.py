"""``bump-global compare``: one script, several allocators, interleaved runs.

The work is in bump_global/_compare.py; this module wires it to the command line.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Sequence

PARSER: Dict[str, Any] = {"description": "Compare allocators on a workload."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bump_global import _compare

    _compare.add_arguments(parser)


def main(args: Sequence[str]) -> int:
    from bump_global import _compare
    from bump_global.commands import UsageError, build_parser

    ns = build_parser("compare").parse_args(["compare", *args])
    try:
        return int(_compare.run(ns))
    except _compare.CompareError as exc:
        raise UsageError(str(exc)) from exc
