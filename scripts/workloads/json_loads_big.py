"""Build-and-exit: ``json.loads`` of one large generated document (about 100 MB).

    python json_loads_big.py --write PATH [MB]   write the document (deterministic)
    python json_loads_big.py PATH                read PATH and json.loads it
    python json_loads_big.py [MB]                generate in memory, then json.loads it

The benchmark writes the document once, untimed (first form), and times the
second form: reading the file (from the page cache) and parsing it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

DEFAULT_MB = 100.0


def record(i: int) -> Dict[str, Any]:
    return {
        "id": i,
        "user": "user%06d" % (i % 500_000),
        "email": "user%d@example.org" % i,
        "score": round((i * 7919 % 10_007) / 101.0, 3),
        "active": i % 3 != 0,
        "tags": ["alpha", "beta%d" % (i % 17), "gamma%d" % (i % 5)],
        "point": {"x": i % 1000, "y": (i * 31) % 1000, "label": None},
    }


def generate(megabytes: float) -> str:
    """A JSON list of records, of about `megabytes` MB (10**6 bytes)."""
    target = int(megabytes * 1_000_000)
    sample = len(json.dumps(record(123456))) + 2
    count = max(1, target // sample)
    return json.dumps([record(i) for i in range(count)])


def main(argv: list) -> None:
    if argv and argv[0] == "--write":
        text = generate(float(argv[2]) if len(argv) > 2 else DEFAULT_MB)
        with open(argv[1], "w", encoding="ascii") as out:
            out.write(text)
        return
    if argv and os.path.exists(argv[0]):
        with open(argv[0], encoding="ascii") as src:
            text = src.read()
    else:
        text = generate(float(argv[0]) if argv else DEFAULT_MB)
    data = json.loads(text)
    assert isinstance(data, list) and data[0]["id"] == 0


if __name__ == "__main__":
    main(sys.argv[1:])
