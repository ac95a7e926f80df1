"""``bump-global info``: what this platform and interpreter allow."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, Sequence

PARSER: Dict[str, Any] = {"description": "Show what this platform and interpreter allow: "
                                         "memory, the default budget, the largest region."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def main(args: Sequence[str]) -> int:
    from bump_global._platform import collect_info
    from bump_global.commands import build_parser

    ns = build_parser("info").parse_args(["info", *args])
    rows = collect_info()
    if ns.json:
        print(json.dumps({key: value for key, value, _ in rows}, indent=2))
        return 0
    width = max(len(key) for key, _, _ in rows) + 1
    for key, _, text in rows:
        print(f"{key + ':':<{width}} {text}")
    return 0
