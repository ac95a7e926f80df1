"""``bump-global compare``: one script, several allocators, shuffled rounds.

The command line lives here (its options, and its errors as one line each); the
work is in bump_global/_compare.py, which takes a :class:`~bump_global._compare.Settings`
and never imports this package.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Sequence

PARSER: Dict[str, Any] = {"description": "Compare allocators on a workload."}


def _count(least: int) -> Any:
    """An argparse type: a whole number of at least `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected at least {least}, got {value}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``compare`` to `parser`."""
    from bump_global._compare import (
        ALLOCATORS,
        DEFAULT_RUNS,
        DEFAULT_WARMUP,
        GC_PEER,
    )
    from bump_global._config import OPTIONS

    parser.add_argument(
        "--runs", type=_count(1), default=DEFAULT_RUNS, metavar="N",
        help=f"measured rounds: runs per allocator, interleaved (default: {DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--warmup", type=_count(0), default=DEFAULT_WARMUP, metavar="N",
        help=f"rounds run first and not counted (default: {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--allocators", default=None, metavar="LIST",
        help="comma-separated, from " + ",".join(ALLOCATORS)
        + " (default: the first five; jemalloc and mimalloc when installed)",
    )
    parser.add_argument(
        "--gc-policy", action="store_true",
        help=f"also run {GC_PEER}: pymalloc with the GC policy of bump_global's default "
        "gc='relaxed' (thresholds x10), and show the time ratios to it (the allocator's "
        "share)",
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
        "--size", default=OPTIONS["size"].default, metavar="SIZE",
        help=f"region size of the bump runs (default: {OPTIONS['size'].default})",
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


def main(args: Sequence[str]) -> int:
    from bump_global import _compare
    from bump_global.commands import UsageError, build_parser, error

    ns = build_parser("compare").parse_args(["compare", *args])
    settings = _compare.Settings(
        script=ns.script, script_args=list(ns.script_args), runs=ns.runs, warmup=ns.warmup,
        allocators=ns.allocators, gc_policy=ns.gc_policy, seed=ns.seed, plot=ns.plot,
        size=ns.size, show_output=ns.show_output)
    try:
        return _compare.run(settings)
    except _compare.CompareError as exc:
        raise UsageError(str(exc)) from exc
    except _compare.RunFailed as exc:
        error(f"{exc}" + ("; the end of its stderr:" if exc.stderr_tail
                          else "; its stderr was empty"))
        for line in exc.stderr_tail:
            sys.stderr.write(f"    {line}\n")
        sys.stderr.flush()
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
