"""Count events per kind and the slowest ones, from a JSON-lines log (docs/finding-where-memory-goes.md)."""
import collections
import json
import sys


def read_events(path):
    with open(path, encoding="utf-8") as log:
        for line in log:
            yield json.loads(line)


def summarize(path):
    kinds = collections.Counter()
    slow = []
    for event in read_events(path):
        kinds[event["kind"]] += 1
        if event["ms"] > 1990:
            slow.append(event["id"])
    return kinds, slow


if __name__ == "__main__":
    kinds, slow = summarize(sys.argv[1])
    print(dict(sorted(kinds.items())), len(slow))
