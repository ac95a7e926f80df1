"""A sample of CPython's own regression tests, run with bump_global installed."""

import importlib.util
import re
import sys

import pytest

pytestmark = pytest.mark.slow  # minutes: a dozen of CPython's test modules per policy

SAMPLE = ["test_dict", "test_list", "test_tuple", "test_set", "test_bytes", "test_unicode",
          "test_str", "test_json", "test_re", "test_threading", "test_weakref", "test_gc"]
# Under reclaim="classes" blocks come back: the modules that free and reuse the most.
CLASSES_SAMPLE = ["test_dict", "test_list", "test_set", "test_bytes", "test_json", "test_re",
                  "test_weakref", "test_gc"]

RUNNER = """
import runpy, signal, sys
# A shell that starts a job in the background (cmd &) makes it ignore SIGINT, and children
# inherit that: test_threading's interrupt_main tests then see no KeyboardInterrupt.
# CPython's tests expect the default handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
import bump_global
# gc="keep": the sample checks the allocator; gc="relaxed" (the default) makes
# test_gc's test_bug1055820c wait longer than its 10000 iterations on 3.13, by design.
bump_global.install("8G", gc="keep", reclaim=sys.argv[1])
sys.argv = ["python -m test", *sys.argv[2:]]
try:
    runpy.run_module("test", run_name="__main__", alter_sys=True)
finally:
    s = bump_global.stats()
    print(f"bump_global used={s.used} allocations={s.allocations} "
          f"fallback={s.fallback_allocations} failed={s.failed_allocations}", file=sys.stderr)
"""


# Test cases that cannot hold by design, with the reason.
EXCLUDED = {
    # It creates a subinterpreter with its own GIL (3.12+), which bump_global
    # refuses while it serves the MEM/OBJ domains (see bump_global/_subinterp.py).
    "test_threads_join_with_no_main": sys.version_info >= (3, 12),
}


def available(names):
    return [n for n in names if importlib.util.find_spec(f"test.{n}") is not None]


@pytest.mark.skipif(importlib.util.find_spec("test.libregrtest") is None,
                    reason="this Python has no test package")
@pytest.mark.parametrize("reclaim, sample", [("none", SAMPLE), ("classes", CLASSES_SAMPLE)])
def test_cpython_regression_sample_passes_under_bump(py, reclaim, sample):
    tests = available(sample)
    if len(tests) < len(sample) - 2:
        # Debian (and others) ship CPython's test_* modules apart from the test package
        # (python3.X's libpython3.X-testsuite): without them there is nothing to run.
        pytest.skip(f"{len(sample) - len(tests)} of the {len(sample)} sampled test modules of "
                    f"CPython are not installed (missing: {sorted(set(sample) - set(tests))}); "
                    "install CPython's test suite (Debian: libpython3.X-testsuite)")
    ignores = [arg for name, on in EXCLUDED.items() if on for arg in ("-i", name)]
    proc = py(RUNNER, args=[reclaim, "-q", *ignores, *tests], timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert re.search(r"Tests result: SUCCESS|All \d+ tests OK", output), output[-3000:]
    stats = dict(re.findall(r"(\w+)=(\d+)", output.split("bump_global used=", 1)[1]))
    used = int(output.split("bump_global used=", 1)[1].split()[0])
    assert used > 100 << 20  # the tests really ran on the region
    assert stats["fallback"] == "0" and stats["failed"] == "0"
