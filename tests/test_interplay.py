"""bump_global on top of other allocators and tools (in subprocesses)."""

import json

import pytest

WORKLOAD = """
import bump_global, json, threading, sys
before = [bytearray(100) for _ in range(1000)] + [str(i) * 30 for i in range(1000)]
bump_global.install("1G")
del before  # 2,000 blocks of the previous allocator, freed through our hooks
d = {str(i): [i, float(i), (i, str(i))] for i in range(50000)}
b = bytearray()
for i in range(2000):
    b.extend(bytes([i % 256]) * 100)
src = "\\n".join(f"x{i} = {i} * 2" for i in range(3000))
ns = {}
exec(compile(src, "<gen>", "exec"), ns)
t = threading.Thread(target=lambda: [bytearray(300) for _ in range(20000)])
t.start(); t.join()
ok = (len(d) == 50000 and d["49999"][2] == (49999, "49999") and len(b) == 200000
      and b[150] == 1 and ns["x2999"] == 5998)
s = bump_global.stats()
print(json.dumps([ok, s.allocations > 50000, s.foreign_frees >= 2000]))
"""


@pytest.mark.parametrize("pythonmalloc", ["debug", "malloc", "pymalloc", "pymalloc_debug",
                                          "malloc_debug"])
def test_on_top_of_pythonmalloc(py, pythonmalloc):
    proc = py(WORKLOAD, env={"PYTHONMALLOC": pythonmalloc})
    assert json.loads(proc.stdout) == [True, True, True]
    assert proc.stderr == ""


def test_with_dev_mode_and_faulthandler(py):
    proc = py("import faulthandler; faulthandler.enable()\n" + WORKLOAD, python_args=["-X", "dev"])
    assert json.loads(proc.stdout) == [True, True, True]


def test_tracemalloc_started_after_install(py):
    out = py("""
        import bump_global, tracemalloc, json
        bump_global.install("512M")
        tracemalloc.start()
        data = [str(i) * 10 for i in range(20000)]
        traced, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
        top = snapshot.statistics("lineno")[0]
        tracemalloc.stop()                  # restores our hooks, not the defaults
        s0 = bump_global.stats()
        more = [bytes(100) for i in range(10000)]
        s1 = bump_global.stats()
        print(json.dumps([traced > 200000, top.size > 200000,
                          s1.allocations - s0.allocations >= 10000]))
    """).stdout
    assert json.loads(out) == [True, True, True]
