"""Baseline: an empty script.  Its time is the fixed cost of a run: interpreter
start-up, the allocator's set-up (for bump_global: importing it and installing)
and the harness around the workload.

    python startup.py [N]            (N is accepted and ignored)
"""

if __name__ == "__main__":
    pass
