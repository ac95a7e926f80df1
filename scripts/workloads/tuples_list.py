"""Build-and-exit: a list of N small tuples ``(i, 2*i)``, then exit.

    python tuples_list.py [N]        (default 5,000,000)
"""

from __future__ import annotations

import sys


def main(n: int) -> None:
    data = [(i, 2 * i) for i in range(n)]
    assert data[-1] == (n - 1, 2 * (n - 1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000)
