"""Build-and-exit: a dict of N ``str(i) -> i`` entries, then exit.

    python dict_str.py [N]           (default 2,000,000)
"""

from __future__ import annotations

import sys


def main(n: int) -> None:
    table = {str(i): i for i in range(n)}
    assert len(table) == n and table[str(n - 1)] == n - 1


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
