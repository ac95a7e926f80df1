"""Churn: small JSON documents parsed over and over (in the spirit of
pyperformance's json_loads); every parsed document is dropped at once.

    python json_loads_small.py [N]   (default 40,000 rounds of 3 documents)
"""

from __future__ import annotations

import json
import sys
from typing import Any, List


def documents() -> List[str]:
    flat = {"key%d" % i: ("value %d" % i if i % 2 else i * 1.5) for i in range(20)}
    nested: Any = {"id": 7, "tags": ["a", "b", "c"], "child": None}
    for depth in range(6):
        nested = {"id": depth, "tags": ["t%d" % depth] * 3, "child": nested, "ok": True}
    rows = [{"name": "row %d" % i, "values": list(range(i % 7)), "flag": i % 3 == 0}
            for i in range(25)]
    return [json.dumps(doc) for doc in (flat, nested, rows)]


def main(n: int) -> None:
    docs = documents()
    total = 0
    for _ in range(n):
        for text in docs:
            total += len(json.loads(text))
    assert total == n * (20 + 4 + 25)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40_000)
