"""Build-and-exit workload: a list of COUNT small tuples, then exit.

    python scripts/workloads/build_tuples.py [COUNT]    (default: 2000000)

Each element is a fresh tuple of two ints, ``(i, 2 * i)``: three small
allocations per element and one list that keeps growing, the allocation
pattern of a script that builds a structure, writes a result and exits.
Used by ``python -m bump_global compare`` (see docs/compare.md).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 2_000_000
    data = [(i, 2 * i) for i in range(count)]
    assert len(data) == count and (count == 0 or data[-1] == (count - 1, 2 * (count - 1)))
    print(f"built {count:,} tuples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
