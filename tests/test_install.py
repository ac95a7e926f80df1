"""Installing the allocator, its API and its refusals (each in a subprocess)."""

import json

import pytest

from bump_global import BumpGlobalError, is_installed, stats
from bump_global._config import default_size


def test_objects_created_after_install_live_in_the_region(py):
    out = py("""
        import bump_global, json
        class C:
            pass
        before = [C() for _ in range(100)]
        bump_global.install()
        # Types without a CPython free list (lists, tuples, floats... recycle
        # their own objects without calling the allocator).
        after = [C() for _ in range(100)] + [bytes(i) for i in range(2, 100)] + ["x" * 5000]
        s = bump_global.stats()
        inside = lambda o: s.contains(id(o))
        print(json.dumps([sum(map(inside, before)), sum(map(inside, after)), len(after),
                          s.reserved, s.used, s.allocations, bump_global.is_installed()]))
    """).stdout
    n_before, n_after, total, reserved, used, allocations, installed = json.loads(out)
    assert n_before == 0 and n_after == total
    assert reserved == default_size()[0] and 0 < used < reserved  # half of the memory
    assert allocations >= total and installed is True


def test_frees_are_ignored_and_counted_and_memory_never_reused(py):
    out = py("""
        import bump_global, json
        bump_global.install()
        s0 = bump_global.stats()
        class C:
            pass
        addrs = set()
        for i in range(10000):
            o = C()          # freed at the next iteration
            addrs.add(id(o))
        s1 = bump_global.stats()
        print(json.dumps([len(addrs), s1.frees_ignored - s0.frees_ignored,
                          s1.used - s0.used]))
    """).stdout
    distinct, frees, grown = json.loads(out)
    assert distinct == 10000  # pymalloc would hand the same block back each time
    assert frees >= 10000
    assert grown >= 10000 * 32


def test_same_config_again_is_a_no_op_another_raises(py):
    out = py("""
        import bump_global
        bump_global.install("256M", scope="python")
        base = bump_global.stats().base
        bump_global.install(256 << 20)             # same configuration: nothing happens
        assert bump_global.stats().base == base
        for kwargs in ({"size": "512M"}, {"size": "256M", "scope": "objects"},
                       {"size": "256M", "on_exhausted": "error"}):
            try:
                bump_global.install(**kwargs)
            except bump_global.BumpGlobalError as exc:
                assert isinstance(exc, RuntimeError)
                print(exc)
            else:
                raise SystemExit("no error for " + repr(kwargs))
    """).stdout.splitlines()
    assert len(out) == 3
    assert all("already installed with size=256.0 MiB" in line for line in out)
    assert "scope='objects'" in out[1] and "on_exhausted='error'" in out[2]


def test_bad_arguments_raise_value_error_and_install_nothing(py):
    out = py("""
        import bump_global
        for kwargs in ({"size": "lots"}, {"size": 100}, {"scope": "all"},
                       {"on_exhausted": "abort"}):
            try:
                bump_global.install(**kwargs)
            except ValueError as exc:
                print(type(exc).__name__, exc)
        print(bump_global.is_installed())
    """).stdout.splitlines()
    assert out[-1] == "False"
    assert [line.split()[0] for line in out[:-1]] == ["ValueError"] * 4
    assert "expected a number of bytes" in out[0] and "at least 16M" in out[1]
    assert "expected one of 'objects'" in out[2] and "expected one of 'fallback'" in out[3]


def test_api_before_install_in_this_process():
    assert is_installed() is False
    with pytest.raises(BumpGlobalError, match="not installed"):
        stats()


def test_stats_memory_and_report(py):
    out = py("""
        import bump_global, json
        bump_global.install("512M")
        data = [bytes(1000) for _ in range(20000)]   # about 20 MB touched
        s = bump_global.stats()
        try:
            s.used = 0
        except AttributeError:
            frozen = True
        m = bump_global.memory()
        consumed_after = bump_global.stats().consumed
        print(json.dumps({"stats": s._asdict(), "memory": m._asdict(),
                          "consumed_after": consumed_after,
                          "frozen": frozen, "report": bump_global.report()}))
    """).stdout
    result = json.loads(out)
    s, m = result["stats"], result["memory"]
    assert result["frozen"]
    for field in ("base", "reserved", "used", "allocations", "frees_ignored", "foreign_frees",
                  "reallocs_in_place", "reallocs_moved", "bytes_copied",
                  "fallback_allocations", "fallback_bytes", "scope", "on_exhausted"):
        assert field in s
    assert (s["scope"], s["on_exhausted"], s["reserved"]) == ("python", "fallback", 512 << 20)
    assert s["used"] >= 20000 * 1008
    assert s["used"] <= s["consumed"] <= s["reserved"]
    # Both areas and the emergency reserve, committed up front here.
    assert s["committed"] == 2 * s["reserved"] + (4 << 20)
    # Resident bytes of the region: the touched data, at most the consumed part.
    assert 20000 * 1008 <= m["region_resident"] <= result["consumed_after"] + 4096
    assert m["rss"] >= m["region_resident"] and m["peak_rss"] >= m["rss"]
    report = result["report"]
    assert "512.0 MiB reserved" in report and "resident" in report and "peak RSS" in report


def test_memory_before_install_has_no_region(py):
    out = py("""
        import bump_global
        m = bump_global.memory()
        print(m.region_resident, m.rss > 0)
        print(bump_global.report())
    """).stdout
    assert out.splitlines()[0] == "None True"
    assert "not installed" in out


@pytest.mark.parametrize("code, expected", [("pass", 0), ("raise SystemExit(7)", 7),
                                            ("1/0", 1), ("import os; os._exit(3)", 3)])
def test_exit_code_preserved_and_clean_shutdown(py, code, expected):
    proc = py(f"""
        import bump_global, atexit, threading
        bump_global.install()
        big = {{i: str(i) * 3 for i in range(100000)}}
        t = threading.Thread(target=lambda: [bytes(100) for _ in range(10000)])
        t.start(); t.join()
        atexit.register(lambda: print("atexit ran"))
        {code}
    """, check=False)
    assert proc.returncode == expected, proc.stderr
    assert "Fatal" not in proc.stderr and "Segmentation" not in proc.stderr
    if expected == 1:
        assert "ZeroDivisionError" in proc.stderr
    if "_exit" not in code:
        assert proc.stdout == "atexit ran\n"


def test_incremental_commit_grows_the_committed_part(py):
    out = py("""
        import bump_global, json
        bump_global.install("1G")
        s0 = bump_global.stats()
        data = [bytes(4000) for _ in range(50000)]   # 200 MB: several commit steps
        s1 = bump_global.stats()
        assert all(len(b) == 4000 for b in data)
        print(json.dumps([s0.committed, s1.committed, s1.consumed, s1.reserved]))
    """, env={"BUMP_GLOBAL_COMMIT": "incremental"}).stdout
    c0, c1, consumed, reserved = json.loads(out)
    assert c0 < 200 << 20 and consumed <= c1 < reserved
    assert c1 % (64 << 20) == 0


def test_objects_scope_replaces_only_the_obj_domain(py):
    out = py("""
        import bump_global, ctypes, json
        bump_global.install("256M", scope="objects")
        s = bump_global.stats()
        api = ctypes.pythonapi
        for name in ("PyMem_RawMalloc", "PyMem_Malloc", "PyObject_Malloc"):
            getattr(api, name).restype = ctypes.c_void_p
            getattr(api, name).argtypes = [ctypes.c_size_t]
        inside = lambda p: s.contains(p)
        print(json.dumps([inside(api.PyMem_RawMalloc(64)), inside(api.PyMem_Malloc(64)),
                          inside(api.PyObject_Malloc(64)), inside(id(object())),
                          bump_global.stats().scope]))
    """).stdout
    assert json.loads(out) == [False, False, True, True, "objects"]


def test_refuses_when_tracemalloc_is_tracing(py):
    early_start = "import tracemalloc; tracemalloc.start()"
    for how, prelude in ((["-X", "tracemalloc"], ""), ([], early_start)):
        proc = py(f"""
            {prelude}
            import bump_global
            try:
                bump_global.install()
            except bump_global.BumpGlobalError as exc:
                print(exc)
            print(bump_global.is_installed())
        """, python_args=how)
        message, installed = proc.stdout.splitlines()
        assert "tracemalloc is tracing" in message and "install bump_global first" in message
        assert installed == "False"


def test_region_that_cannot_be_reserved_is_a_clear_error(py):
    out = py("""
        import bump_global, resource
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        try:
            bump_global.install("64G")
        except bump_global.BumpGlobalError as exc:
            print(exc)
        print(bump_global.is_installed())
    """).stdout.splitlines()
    assert "cannot reserve a region of 64.0 GiB" in out[0] and "smaller size" in out[0]
    assert out[1] == "False"


def test_histogram_counts_requests_per_size_class(py):
    out = py("""
        import bump_global, json
        bump_global.install("256M", histogram=True)
        h0 = dict((b, c) for b, c, _ in bump_global.stats().histogram)
        blobs = [bytes(3000) for _ in range(1000)]     # about 3033 bytes: the 4 KiB class
        h1 = bump_global.stats().histogram
        try:
            bump_global.install("256M")                 # histogram off: another configuration
        except bump_global.BumpGlobalError as exc:
            print(json.dumps(["histogram=True" in str(exc)]))
        print(json.dumps([h0, h1, bump_global.report_dict()["histogram"][0],
                          "up to" in bump_global.report()]))
    """).stdout.splitlines()
    assert json.loads(out[0]) == [True]
    h0, h1, first_row, shown = json.loads(out[1])
    classes = {bound: (count, nbytes) for bound, count, nbytes in h1}
    assert all(bound & (bound - 1) == 0 for bound in classes)  # powers of two
    count, nbytes = classes[4096]
    assert count - h0.get("4096", 0) >= 1000 and nbytes >= 1000 * 3000
    assert set(first_row) == {"upper_bound", "count", "bytes"} and shown


def test_histogram_off_by_default(py):
    out = py("""
        import bump_global, json
        bump_global.install("256M")
        print(json.dumps([bump_global.stats().histogram,
                          bump_global.report_dict()["histogram"]]))
    """).stdout
    assert json.loads(out) == [None, None]


def test_report_dict_schema_and_sample(py):
    out = py("""
        import bump_global, json
        before = bump_global.report_dict()
        bump_global.install("256M")
        data = [bytes(500) for _ in range(10000)]
        from bump_global._api import sample
        used, resident = sample()
        after = bump_global.report_dict(wall_time=1.5)
        print(json.dumps([before, after, used, resident, bump_global.report(wall_time=1.5)]))
    """).stdout
    before, after, used, resident, text = json.loads(out)
    assert before["schema"] == after["schema"] == "bump_global.report/1"
    assert before["installed"] is False and before["region"] is None
    assert before["process"]["rss"] > 0
    assert after["installed"] is True and after["wall_time_s"] == 1.5
    assert after["config"] == {"scope": "python", "on_exhausted": "fallback",
                               "size": 256 << 20, "histogram": False, "prefault": True,
                               "huge_pages": False, "gc": "relaxed", "reclaim": "none",
                               "numpy": False, "sites": False, "sites_rate": 256 << 10}
    assert set(after["region"]) == {"base", "reserved", "address_space", "used", "consumed",
                                    "committed", "resident", "shared_budget"}
    assert after["region"]["shared_budget"] is None  # an explicit size is per process
    assert set(after["counters"]) >= {"allocations", "frees_ignored", "reallocs_moved",
                                      "bytes_copied", "fallback_allocations"}
    assert 10000 * 512 <= used <= after["region"]["used"]
    assert 10000 * 512 <= resident <= after["region"]["consumed"]
    assert "wall 1.500 s" in text


def test_region_outlives_interpreter_shutdown(py):
    # Objects in the region are finalized during shutdown, after module globals
    # (including bump_global's, and the mmap module) are torn down: the mapping
    # must still be there.
    proc = py("""
        import bump_global
        bump_global.install("256M")

        class Late:
            def __init__(self, payload):
                self.payload = payload
            def __del__(self):
                print("finalized", len(self.payload), self.payload[:3])

        keep = [Late([str(i) for i in range(1000)]) for _ in range(3)]
        import sys
        sys.modules["__main__"].cycle = [keep]
        keep.append(keep)  # a cycle: collected by the final GC pass
    """)
    assert proc.stdout.splitlines() == ["finalized 1000 ['0', '1', '2']"] * 3
    assert proc.stderr == ""


@pytest.mark.parametrize("policy, expected", [("keep", "same"), ("relaxed", "x10"),
                                              ("off", "disabled")])
def test_gc_policy(py, policy, expected):
    out = py(f"""
        import bump_global, gc, json
        from bump_global._gc import collector_is_incremental, relaxed_thresholds
        before = gc.get_threshold()
        relaxed = relaxed_thresholds(before, collector_is_incremental(gc))
        bump_global.install("256M", gc={policy!r})
        print(json.dumps([before, gc.get_threshold(), gc.isenabled(), bump_global.stats().gc,
                          bump_global.report_dict()["config"]["gc"], relaxed]))
    """).stdout
    before, after, enabled, name, reported, relaxed = json.loads(out)
    assert name == reported == policy
    if expected == "same":
        assert after == before and enabled
    elif expected == "x10":
        # tests/test_gc_policy.py checks what the relaxed thresholds are on each collector.
        assert after == relaxed and after[0] == before[0] * 10 and enabled
    else:
        assert not enabled


def test_bad_gc_policy_and_flags():
    from bump_global._config import Config

    with pytest.raises(ValueError, match=r"invalid gc 'never'.*'keep'.*'relaxed'.*'off'"):
        Config.from_values({"size": "1G", "gc": "never"})
    with pytest.raises(ValueError, match=r"invalid reclaim 'all'.*'none'.*'last'.*'classes'"):
        Config.from_values({"size": "1G", "reclaim": "all"})
    with pytest.raises(ValueError, match="invalid huge_pages 1: expected True or False"):
        Config.from_values({"size": "1G", "huge_pages": 1})


def _thp_mode() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "unavailable"


@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"),
                    reason="transparent huge pages not available on this machine")
def test_huge_pages_only_past_the_threshold(py):
    code = """
        import bump_global, json
        bump_global.install("1G", huge_pages={huge})
        def anon_huge():
            for line in open("/proc/self/smaps_rollup"):
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
        small = anon_huge()
        data = [(i, str(i)) for i in range(1500000)]   # well past 32 MiB
        print(json.dumps([small, anon_huge(), bump_global.stats().huge_pages]))
    """
    small, big, flag = json.loads(py(code.format(huge=True)).stdout)
    assert flag is True and big >= 64 << 20
    if _thp_mode() == "madvise":
        # Only the region asked for them, and only once it was big.
        assert small == 0
        _, plain, flag = json.loads(py(code.format(huge=False)).stdout)
        assert flag is False and plain < big
