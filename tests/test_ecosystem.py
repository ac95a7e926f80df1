"""bump_global beside other allocators, CPython's tools and C extensions (in subprocesses).

Allocators: every PYTHONMALLOC value underneath (blocks made before the install are freed
through our hooks to the allocator they came from).  Tools: -X dev, faulthandler,
tracemalloc started after the install.  C extensions: numpy, msgpack and lxml are used when
importable (each test skips otherwise): they allocate heavily from C, through the
PyMem/PyObject domains (object headers, buffers) and through their own allocators (numpy's
data handler, libxml2's malloc).  Every result is checked against a value computed
independently.
"""

import importlib.util
import json
import os
import sys

import pytest
from conftest import run_python


def have(module):
    return importlib.util.find_spec(module) is not None


needs_numpy = pytest.mark.skipif(not have("numpy"), reason="numpy is not installed")
needs_msgpack = pytest.mark.skipif(not have("msgpack"), reason="msgpack is not installed")
needs_lxml = pytest.mark.skipif(not have("lxml"), reason="lxml is not installed")

# ------------------------------------------------------------ allocators and tools

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


def _has_mimalloc() -> bool:
    """CPython 3.13+ may be built with its own mimalloc (PYTHONMALLOC=mimalloc)."""
    import subprocess

    probe = subprocess.run([sys.executable, "-c", "pass"], capture_output=True,
                           env={**os.environ, "PYTHONMALLOC": "mimalloc"})
    return probe.returncode == 0


@pytest.mark.parametrize("pythonmalloc", [
    "debug", "malloc", "pymalloc", "pymalloc_debug", "malloc_debug",
    pytest.param("mimalloc", marks=pytest.mark.skipif(
        sys.version_info < (3, 13) or not _has_mimalloc(),
        reason="PYTHONMALLOC=mimalloc needs CPython 3.13+ built with mimalloc")),
])
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


# ------------------------------------------------------------ C extensions

NUMPY = """
import numpy as np
def numpy_work(rounds=300):
    total = 0.0
    for i in range(rounds):
        a = np.arange(i, i + 10000, dtype=np.float64)          # created and dropped
        b = a.reshape(100, 100)
        c = b @ b.T + np.sqrt(b) - b.mean(axis=0)
        total += float(c.trace())
        words = np.array([str(j) for j in range(200)], dtype=object)  # object arrays
        assert words[199] == "199"
        assert int(np.sum(np.arange(i + 1, dtype=np.int64))) == i * (i + 1) // 2
    m = np.random.default_rng(0).standard_normal((200, 200))
    inv = np.linalg.inv(m)
    assert np.allclose(m @ inv, np.eye(200), atol=1e-8)
    return total
"""

EXPECTED_NUMPY = """
def expected_total(rounds=300):
    import math
    total = 0.0
    for i in range(rounds):
        # trace(B B^T) = sum of squares; trace(sqrt(B)) and trace(column means)
        vals = [float(i + k) for k in range(10000)]
        rows = [vals[r * 100:(r + 1) * 100] for r in range(100)]
        sq = sum(v * v for v in vals)
        diag_sqrt = sum(math.sqrt(rows[r][r]) for r in range(100))
        means = [sum(rows[r][c] for r in range(100)) / 100 for c in range(100)]
        total += sq + diag_sqrt - sum(means[r] for r in range(100))
    return total
"""

MSGPACK = """
import msgpack
def msgpack_work(rounds=200):
    for i in range(rounds):
        data = {"id": i, "name": "x" * (i % 50), "values": list(range(i, i + 500)),
                "nested": [{"k": str(j), "b": bytes([j % 256]) * 100} for j in range(50)]}
        packed = msgpack.packb(data, use_bin_type=True)
        assert msgpack.unpackb(packed, raw=False, strict_map_key=False) == data
    # The streaming Unpacker allocates and frees a 256 KiB buffer per object it yields:
    # under a no-reuse allocator that is 256 KiB of the region per object (measured with
    # msgpack 1.2.4), so keep the stream short.
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(b"".join(msgpack.packb([i, str(i)]) for i in range(1000)))
    assert [x for x in unpacker] == [[i, str(i)] for i in range(1000)]
    return True
"""

LXML = """
from lxml import etree
def lxml_work(rounds=30):
    for i in range(rounds):
        root = etree.Element("root", n=str(i))
        for j in range(2000):
            child = etree.SubElement(root, "item", id=str(j))
            child.text = "text %d" % (j * i)
        xml = etree.tostring(root)
        parsed = etree.fromstring(xml)
        assert len(parsed) == 2000 and parsed[1999].get("id") == "1999"
        assert parsed.xpath("count(//item)") == 2000.0
        assert parsed.find("item[@id='1234']").text == "text %d" % (1234 * i)
    return True
"""


@pytest.mark.slow  # 5 s: 300 rounds of numpy, checked against pure Python
@needs_numpy
def test_numpy_arrays_created_and_dropped():
    out = run_python(EXPECTED_NUMPY + """
import bump_global, json
bump_global.install("4G")
""" + NUMPY + """
s0 = bump_global.stats()
total = numpy_work()
s1 = bump_global.stats()
expected = expected_total()
print(json.dumps([abs(total - expected) <= 1e-9 * abs(expected),
                  s1.allocations - s0.allocations, s1.fallback_allocations, np.__version__]))
""", timeout=300).stdout
    close, allocations, fallback, version = json.loads(out)
    print(f"\n[ecosystem] numpy {version}: {allocations} allocations from the region")
    assert close and fallback == 0
    assert allocations > 10000  # numpy's objects came from the region


@needs_numpy
def test_numpy_imported_before_install_and_threads():
    # Arrays made before the install are freed and resized after it (numpy's own handler
    # and the previous PyMem allocator own them); numpy releases the GIL in its loops.
    out = run_python(NUMPY + """
old = [np.arange(1000) * k for k in range(500)]
objs = np.array([str(k) for k in range(5000)], dtype=object)
import bump_global, json, threading
bump_global.install("4G")
results = []
threads = [threading.Thread(target=lambda: results.append(numpy_work(100))) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
ok = all(int(a[999]) == 999 * k for k, a in enumerate(old)) and objs[4999] == "4999"
del old, objs
grown = np.resize(np.arange(10), 100000)
print(json.dumps([len(results) == 3 and len(set(results)) == 1, ok, int(grown[99999])]))
""", timeout=300).stdout
    assert json.loads(out) == [True, True, 99999 % 10]


@needs_msgpack
def test_msgpack_round_trips():
    out = run_python("""
import bump_global, json
bump_global.install("2G")
""" + MSGPACK + """
ok = msgpack_work()
# What msgpack's C code builds comes from the region: the packed bytes (its Packer's
# buffer), and the containers, strings and bytes its Unpacker makes.
data = {"list": list(range(1000)), "text": "x" * 5000, "blob": bytes(range(256)) * 40,
        "nested": [{"k": str(j)} for j in range(100)]}
s0 = bump_global.stats()
packed = [msgpack.packb(data, use_bin_type=True) for _ in range(200)]
back = msgpack.unpackb(packed[-1], raw=False)
s1 = bump_global.stats()
made = [packed[0], back, back["list"], back["text"], back["blob"], back["nested"],
        back["nested"][-1], back["nested"][-1]["k"]]
print(json.dumps([ok, back == data, all(s1.contains(id(obj)) for obj in made),
                  s1.used - s0.used >= sum(len(p) for p in packed)]))
""", timeout=300).stdout
    assert json.loads(out) == [True, True, True, True]


@needs_lxml
def test_lxml_builds_parses_and_queries():
    out = run_python("""
import bump_global, json
bump_global.install("2G")
""" + LXML + """
print(json.dumps(lxml_work()))
""", timeout=300).stdout
    assert json.loads(out) is True


@pytest.fixture(scope="module")
def available_workloads():
    """The code and calls of the extensions' workloads that can run here (looked up once)."""
    parts, calls = [], []
    for module, code, call in (("numpy", NUMPY, "numpy_work(50)"),
                               ("msgpack", MSGPACK, "msgpack_work(50)"),
                               ("lxml", LXML, "lxml_work(5)")):
        if have(module):
            parts.append(code)
            calls.append(call)
    return "".join(parts), calls


TOOLS = """
import bump_global, faulthandler, json, sys, tempfile, threading, tracemalloc
faulthandler.enable()
bump_global.install("4G")
faulthandler.dump_traceback_later(600, exit=True)   # a watchdog thread, cancelled below
{workloads}
def pure_python():
    d = {{str(i): [i, (i, str(i))] for i in range(30000)}}
    b = bytearray()
    for i in range(1000):
        b.extend(bytes([i % 256]) * 100)
    return len(d) == 30000 and d["29999"][1] == (29999, "29999") and b[150] == 1

results = []
for cycle in range(3):
    # tracemalloc started after the install wraps our hooks; stop() restores them.
    tracemalloc.start(10)
    t = threading.Thread(target=lambda: results.append(pure_python()))
    t.start()
    results.append(pure_python())
    {calls}
    t.join()
    snapshot = tracemalloc.take_snapshot()
    peak = tracemalloc.get_traced_memory()[1]
    results.append(peak > 1000000 and len(snapshot.traces) > 0)
    tracemalloc.stop()
    s0 = bump_global.stats()
    more = [bytes(100) for _ in range(10000)]
    results.append(bump_global.stats().allocations - s0.allocations >= 10000)
with tempfile.TemporaryFile("w+") as f:
    faulthandler.dump_traceback(f, all_threads=True)
    f.seek(0)
    results.append("most recent call first" in f.read())
faulthandler.cancel_dump_traceback_later()
print(json.dumps([all(results), len(results), sys.flags.dev_mode]))
"""


@pytest.mark.slow  # 10-15 s each: three extensions, three tracemalloc cycles, debug hooks
@pytest.mark.parametrize("pythonmalloc", [None, "debug", "malloc", "pymalloc_debug"])
def test_dev_mode_faulthandler_tracemalloc_and_extensions(available_workloads, pythonmalloc):
    workloads, calls = available_workloads
    code = TOOLS.format(workloads=workloads, calls="; ".join(calls) or "pass")
    env = {"PYTHONMALLOC": pythonmalloc} if pythonmalloc else {}
    proc = run_python(code, python_args=["-X", "dev", "-X", "faulthandler"], env=env,
                      timeout=300)
    ok, checks, dev_mode = json.loads(proc.stdout)
    assert ok and checks == 3 * 4 + 1 and dev_mode
    # -X dev shows ResourceWarnings and the debug hooks' complaints on stderr: none.
    assert "Debug memory block" not in proc.stderr and "Fatal" not in proc.stderr
