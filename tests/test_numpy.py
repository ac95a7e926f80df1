"""numpy arrays in the region: the NEP 49 handler of bump_global._numpy.

Every test installs bump_global and enables the handler in a subprocess.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.conftest import run_python

np = pytest.importorskip("numpy")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Pasted at the top of the subprocesses: install, then enable before importing numpy.
BEFORE_IMPORT = """
import sys
import bump_global
from bump_global import _numpy_hook as h
bump_global.install(size="2G")
assert h.enable("--numpy") == "on import"
import numpy as np
region = lambda a: bump_global.stats().contains(a.ctypes.data)
"""


def run(code: str, prelude: str = BEFORE_IMPORT, **kwargs):  # type: ignore[no-untyped-def]
    return run_python(textwrap.dedent(prelude) + textwrap.dedent(code), **kwargs)


def test_arrays_land_in_the_region_when_enabled_before_numpy_is_imported():
    proc = run("""
        a = np.arange(1000, dtype=np.int64)
        assert h.handler_name() == "bump_global", h.handler_name()
        assert h.handler_name(a) == "bump_global"
        assert region(a)
        assert int(a.sum()) == 999 * 1000 // 2
        # the finder stepped aside and left numpy's module its own loader
        assert not any(type(f).__name__ == "_NumpyFinder" for f in sys.meta_path)
        mu = sys.modules["numpy._core._multiarray_umath" if hasattr(np, "_core")
                         else "numpy.core._multiarray_umath"]
        assert type(mu.__loader__).__name__ == "ExtensionFileLoader", mu.__loader__
        keep = [np.ones(n) for n in range(1, 200)]   # alive at exit: exit must be clean
        print("ok")
    """)
    assert proc.stdout.strip() == "ok"
    assert proc.stderr == ""


def test_enable_after_import_sets_the_handler_and_older_arrays_keep_numpys():
    proc = run("""
        import bump_global
        from bump_global import _numpy_hook as h
        bump_global.install(size="2G")
        import numpy as np
        old = np.arange(50000, dtype=np.float64)        # numpy's default handler
        old_small = [np.full(10, i) for i in range(100)]
        assert h.enable("numpy=True") == "set"
        new = np.arange(50000, dtype=np.float64)
        assert h.handler_name(old) == "default_allocator"
        assert h.handler_name(new) == "bump_global"
        stats = bump_global.stats()
        assert stats.contains(new.ctypes.data)
        # numpy's own handler takes data from PyMem_RawMalloc since numpy 2.5
        # (so from the region too), from the C library's malloc before.
        raw_default = tuple(int(x) for x in np.__version__.split(".")[:2]) >= (2, 5)
        assert stats.contains(old.ctypes.data) == raw_default
        before = h.numpy_stats()
        del old, old_small                               # freed by numpy's own handler
        after = h.numpy_stats()
        assert after.bytes_freed == before.bytes_freed, (before, after)
        assert float(new.sum()) == 49999 * 50000 / 2
        print("ok")
    """, prelude="")
    assert proc.stdout.strip() == "ok"
    assert proc.stderr == ""


def test_contents_stay_right_across_views_resizes_copies_and_pickling():
    proc = run("""
        import pickle
        a = np.arange(24, dtype=np.int32).reshape(4, 6)
        view = a[1:3, ::2]
        assert np.shares_memory(view, a) and view.tolist() == [[6, 8, 10], [12, 14, 16]]
        view[:] = -1                                    # writes through to a
        assert a[1].tolist() == [-1, 7, -1, 9, -1, 11]
        c = a.copy(order="F")
        assert region(c) and c.tolist() == a.tolist()
        r = np.arange(10, dtype=np.float64)
        r.resize(100000, refcheck=False)                # a realloc through the handler
        assert region(r) and r[:10].tolist() == list(range(10)) and not r[10:].any()
        r.resize(3, refcheck=False)
        assert r.tolist() == [0.0, 1.0, 2.0]
        assert np.resize(np.array([1, 2, 3]), 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
        s = h.numpy_stats()
        assert s.reallocs >= 2, s
        for obj in (a, c, np.arange(300000.0), np.array(["x", "yz"]),
                    np.array([(1, 2.5)], dtype=[("i", "<i4"), ("f", "<f8")])):
            back = pickle.loads(pickle.dumps(obj, protocol=5))
            assert region(back) and back.dtype == obj.dtype
            assert back.tolist() == obj.tolist()
        print("ok")
    """)
    assert proc.stdout.strip() == "ok"


def test_frombuffer_arrays_borrow_memory_the_handler_never_sees():
    proc = run("""
        data = bytes(range(256)) * 64
        a = np.frombuffer(data, dtype=np.uint8)
        assert h.handler_name(a) is None                # does not own its data
        assert a[:4].tolist() == [0, 1, 2, 3] and int(a.sum()) == 64 * 255 * 128
        before = h.numpy_stats()
        b = np.frombuffer(data, dtype=np.uint16)
        del a, b
        assert h.numpy_stats() == before, (before, h.numpy_stats())
        print("ok")
    """)
    assert proc.stdout.strip() == "ok"


def test_large_arrays_and_concatenate_are_served_from_the_region():
    proc = run("""
        parts = [np.full(1 << 20, i, dtype=np.float64) for i in range(8)]   # 8 MiB each
        whole = np.concatenate(parts)
        assert region(whole) and whole.nbytes == 64 << 20
        assert float(whole.sum()) == sum(i * (1 << 20) for i in range(8))
        s = h.numpy_stats()
        assert s.live_bytes >= 128 << 20 and s.peak_live_bytes >= s.live_bytes
        print(bump_global.stats().used >= s.live_bytes)
    """)
    assert proc.stdout.strip() == "True"


def test_the_handler_counts_exactly_the_bytes_of_the_arrays_made_and_freed():
    proc = run("""
        import gc
        gc.collect()
        shapes = [(1,), (7,), (1000,), (33, 17), (1 << 16,), (3, 5, 7), (1 << 20,)]
        dtypes = [np.int8, np.int32, np.float64, np.complex128, np.dtype("U5")]
        before = h.numpy_stats()
        arrays = [np.empty(shape, dtype=dt) for shape in shapes for dt in dtypes]
        arrays += [np.zeros(shape, dtype=dt) for shape in shapes for dt in dtypes]
        made = h.numpy_stats()
        nbytes = sum(a.nbytes for a in arrays)
        assert made.arrays - before.arrays == len(arrays), (before, made, len(arrays))
        assert made.bytes_allocated - before.bytes_allocated == nbytes, (made, nbytes)
        assert made.live_bytes - before.live_bytes == nbytes
        assert made.peak_live_bytes >= made.live_bytes
        del arrays
        gone = h.numpy_stats()
        assert gone.bytes_freed - made.bytes_freed == nbytes
        assert gone.live_bytes == before.live_bytes
        from bump_global import _numpy
        assert _numpy.frees_size_mismatch() == 0
        print(nbytes)
    """)
    assert int(proc.stdout) > 0


def test_numpy_calls_the_handler_without_the_gil_when_parsing_text():
    # The reason the handler uses the RAW domain (see bump_global/_numpy.c):
    # np.fromstring with a separator grows its result with the GIL released.
    proc = run("""
        from bump_global import _numpy
        before = _numpy.calls_without_gil()
        text = " ".join(str(i) for i in range(20000))
        a = np.fromstring(text, dtype=np.int64, sep=" ")
        assert a.tolist() == list(range(20000)) and region(a)
        print(_numpy.calls_without_gil() - before)
    """)
    assert int(proc.stdout) > 0


def test_sorting_a_structured_array_with_swapped_fields_gives_the_right_order():
    # numpy's comparison of such records takes temporary buffers from the
    # handler inside the sort loop, where the GIL is released.
    proc = run("""
        rng = np.random.default_rng(5)
        dt = np.dtype([("a", ">i4"), ("b", ">f8")])
        rec = np.zeros(5000, dtype=dt)
        rec["a"] = rng.integers(0, 50, 5000)
        rec["b"] = rng.random(5000)
        out = np.sort(rec)
        expect = sorted(zip(rec["a"].tolist(), rec["b"].tolist()))
        assert list(zip(out["a"].tolist(), out["b"].tolist())) == expect
        print("ok")
    """)
    assert proc.stdout.strip() == "ok"


def test_a_reclaim_classes_run_keeps_array_contents_right():
    proc = run("""
        import bump_global
        from bump_global import _numpy_hook as h
        bump_global.install(size="2G", reclaim="classes")
        h.enable("--numpy")
        import numpy as np
        total = 0.0
        for i in range(300):
            a = np.arange(i * 100 + 1, dtype=np.float64)
            b = (a * 2)[::3].copy()
            total += float(b.sum())
        expect = sum(float((np.arange(i * 100 + 1.0) * 2)[::3].sum()) for i in range(300))
        assert total == expect
        keep = np.arange(1000.0)
        assert bump_global.stats().contains(keep.ctypes.data)
        s = h.numpy_stats()
        assert s.arrays >= 900 and s.live_bytes < s.bytes_allocated
        print(bump_global.stats().reclaim)
    """, prelude="")
    assert proc.stdout.strip() == "classes"


def test_a_new_thread_gets_numpys_default_handler_until_it_sets_ours():
    # numpy keeps the handler in a context variable; threads start with an
    # empty context before Python 3.14 (unless sys.flags.thread_inherit_context).
    proc = run("""
        import threading
        out = {}
        def worker():
            out["fresh"] = h.handler_name(np.ones(1000))
            h.set_in_this_thread()
            b = np.ones(1000)
            out["set"] = (h.handler_name(b), region(b))
        t = threading.Thread(target=worker)
        t.start(); t.join()
        inherits = bool(getattr(sys.flags, "thread_inherit_context", 0))
        print(out["fresh"], inherits, *out["set"])
        print(h.handler_name(np.ones(3)))              # the main thread is unaffected
    """)
    fresh, inherits, name, in_region = proc.stdout.split("\n")[0].split()
    assert fresh == ("bump_global" if inherits == "True" else "default_allocator")
    assert (name, in_region) == ("bump_global", "True")
    assert proc.stdout.split("\n")[1] == "bump_global"


def test_enabling_twice_before_import_installs_one_finder():
    proc = run("""
        import sys
        from bump_global import _numpy_hook as h
        assert h.enable("--numpy") == h.enable("--numpy") == "on import"
        print(sum(type(f).__name__ == "_NumpyFinder" for f in sys.meta_path))
        import numpy
        print(h.handler_name())
    """, prelude="")
    assert proc.stdout.split() == ["1", "bump_global"]


def test_without_numpy_enable_says_so_in_one_line():
    # -S: no site-packages, so numpy cannot be imported; the package from the tree.
    proc = run(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        import bump_global
        from bump_global import _numpy_hook as h
        try:
            h.check("BUMP_GLOBAL_NUMPY=1", "python")
        except bump_global.BumpGlobalError as exc:
            print(exc)
        else:
            print("accepted")
    """, prelude="", python_args=["-S"])
    message = proc.stdout.strip()
    assert "\n" not in message
    assert message.startswith("BUMP_GLOBAL_NUMPY=1: numpy cannot be imported"), message
    assert "pip install" in message and message.endswith("drop BUMP_GLOBAL_NUMPY=1")


def test_numpy_older_than_1_22_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "numpy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '1.21.6'\n")
    meta = tmp_path / "numpy-1.21.6.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.21.6\n")
    proc = run(f"""
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {REPO!r}]
        import bump_global
        from bump_global import _numpy_hook as h
        try:
            h.check("numpy=True", "python")
        except bump_global.BumpGlobalError as exc:
            print(exc)
    """, prelude="", python_args=["-S"])
    message = proc.stdout.strip()
    assert "\n" not in message
    assert message.startswith("numpy=True: numpy 1.21.6 has no data-memory handlers"), message


def test_scope_objects_is_refused_because_array_data_goes_through_raw():
    proc = run("""
        import bump_global
        try:
            bump_global.install(size="1G", scope="objects", numpy=True)
        except bump_global.BumpGlobalError as exc:
            print(exc)
        print(bump_global.is_installed())
    """, prelude="")
    assert proc.stdout.startswith("numpy=True needs scope 'python' or 'raw'")
    assert proc.stdout.endswith("False\n")  # refused before anything was installed


def test_the_report_line_names_the_arrays_and_bytes():
    proc = run("""
        keep = np.zeros(1 << 20, dtype=np.uint8)
        from bump_global import _report
        print(_report._numpy_row(h.numpy_stats()._asdict()))
    """)
    line = proc.stdout.rstrip("\n")
    assert line.lstrip().startswith("numpy") and "arrays" in line and "MiB" in line
    assert "\n" not in line


# The option in its three spellings: install(numpy=True), run --numpy, BUMP_GLOBAL_NUMPY=1.

ARRAYS = "import numpy as np\nkeep = [np.ones(1 << 17) for _ in range(8)]\nprint('ok')\n"


def test_install_numpy_true_counts_the_arrays_in_stats_and_report():
    out = run_python("""
        import bump_global
        bump_global.install(numpy=True)
        import numpy as np
        keep = [np.ones(1 << 17) for _ in range(8)]
        d = bump_global.report_dict()
        print(d["numpy"]["bytes_allocated"] >= 8 * 8 * (1 << 17), "numpy" in bump_global.report())
    """)
    assert out.stdout == "True True\n"


@pytest.mark.parametrize("how", ["cli", "env"])
def test_the_numpy_option_reaches_the_whole_program_report(tmp_path, how):
    import json
    import subprocess
    import sys

    script = tmp_path / "arrays.py"
    script.write_text(ARRAYS)
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUMP_GLOBAL")}
    if how == "cli":
        command = [sys.executable, "-m", "bump_global", "run", "--numpy", "--json", str(out),
                   str(script)]
    else:
        command = [sys.executable, str(script)]
        env.update(BUMP_GLOBAL="1", BUMP_GLOBAL_NUMPY="1", BUMP_GLOBAL_JSON=str(out))
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr
    (root,) = json.loads(out.read_text())["processes"]
    assert root["config"]["size"] > 0
    assert root["numpy"]["arrays"] >= 8
    assert root["numpy"]["live_bytes"] >= 8 * 8 * (1 << 17)


def test_the_numpy_option_with_scope_objects_is_one_line_before_anything_is_installed():
    out = run_python("""
        import bump_global
        try:
            bump_global.install(scope="objects", numpy=True)
        except bump_global.BumpGlobalError as exc:
            print(exc)
        print(bump_global.is_installed())
    """)
    first, second = out.stdout.splitlines()
    assert first.startswith("numpy=True needs scope 'python' or 'raw'")
    assert second == "False"
