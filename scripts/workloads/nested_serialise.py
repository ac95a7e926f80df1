"""Build-and-exit: a large nested structure, serialised with json and pickle.

    python nested_serialise.py [N]   (default 100,000 records)

Each record is a dict holding strings, floats, a list of small dicts and a
tuple; the whole list is then written to JSON text and to a pickle.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any, Dict, List


def record(i: int) -> Dict[str, Any]:
    return {
        "id": i,
        "name": "item-%07d" % i,
        "price": i * 0.25,
        "tags": ["tag%d" % (i % 13), "group%d" % (i % 101)],
        "parts": [{"sku": i * 10 + k, "qty": k, "ok": k % 2 == 0} for k in range(3)],
        "where": (i % 360, -(i % 180)),
    }


def main(n: int) -> None:
    data: List[Dict[str, Any]] = [record(i) for i in range(n)]
    text = json.dumps(data)
    blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    assert text.startswith("[{") and len(blob) > n


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
