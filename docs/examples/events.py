"""Write a JSON-lines event log for docs/finding-where-memory-goes.md.

    python docs/examples/events.py events.jsonl [LINES]
"""
import json
import random
import sys

random.seed(1)
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000):
        event = {"id": i, "user": f"u{random.randrange(5000)}",
                 "kind": random.choice(["click", "view", "buy"]),
                 "ms": random.randrange(2000),
                 "tags": [random.choice("abcdef") for _ in range(3)]}
        out.write(json.dumps(event) + "\n")
