"""Churn: N iterations of ``x = (i, str(i))``; each tuple and string dies at once.

    python temporaries.py [N]        (default 10,000,000)

The worst case for an allocator that never reuses memory: the live set is a
few objects, while every iteration allocates two new ones.
"""

from __future__ import annotations

import sys


def main(n: int) -> None:
    x = None
    for i in range(n):
        x = (i, str(i))
    assert x is None or x[0] == n - 1


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
