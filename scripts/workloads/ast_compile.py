"""Build-and-exit: ``ast.parse`` + ``compile`` of a generated source of a few MB.

    python ast_compile.py [KB]       (default 2,048 KB of source)

The source is made of many small functions and classes (loops, comprehensions,
literals, f-strings, try blocks); generating it is cheap next to parsing it.
"""

from __future__ import annotations

import ast
import sys

TEMPLATE = '''
class Shape{i}:
    """Shape number {i}."""

    scale = {i} * 0.5

    def __init__(self, width, height=2):
        self.width = width
        self.height = height
        self.names = ["w{i}", "h{i}", "d{i}"]

    def area(self):
        return self.width * self.height * self.scale


def work_{i}(items, limit={i}):
    total = 0
    table = {{"a": 1, "b": [1, 2, 3], "c": (4, 5), "n": {i}}}
    for index, item in enumerate(items):
        if item > limit and index % 3 == 0:
            total += item * 2
        elif item < 0:
            total -= abs(item)
        else:
            total += table.get("a", 0)
    squares = [x * x for x in range(limit % 17) if x % 2]
    try:
        label = f"work {{limit}}: {{total:>8}} {{len(squares)}}"
    except (ValueError, KeyError) as exc:
        label = str(exc)
    return total, label, {{k: v for k, v in table.items() if k != "n"}}
'''


def generate(kilobytes: int) -> str:
    parts = []
    size = 0
    i = 0
    while size < kilobytes * 1024:
        chunk = TEMPLATE.format(i=i)
        parts.append(chunk)
        size += len(chunk)
        i += 1
    return "".join(parts)


def main(kilobytes: int) -> None:
    source = generate(kilobytes)
    tree = ast.parse(source, "<generated>")
    code = compile(tree, "<generated>", "exec")
    assert code.co_filename == "<generated>"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
