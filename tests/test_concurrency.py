"""Threads, fork, processes, exhaustion and prefault: fixed-size scenarios (in subprocesses).

Each test runs a workload of a fixed size and checks exact figures (block counts, exit
statuses, counters): a few seconds each, so they run in the quick lane.  The time-bounded
random churn of the same features, every byte verified, is in test_stress.py (marked slow).
"""

import json
import sys

import pytest
from conftest import CAPI, RAW_NOGIL, run_python

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs os.fork")

THREADS = CAPI + RAW_NOGIL + """
import random, threading
rmalloc, _, rrealloc, _ = RAW_NOGIL

def worker(tid, n_ops, out):
    rng = random.Random(tid)
    blocks = []
    for i in range(n_ops):
        size = rng.choice((0, 8, 24, 100, 1000, 5000))
        p = rmalloc(size)
        if blocks and rng.random() < 0.3:
            q, qsize, _ = blocks.pop(rng.randrange(len(blocks)))
            qsize2 = qsize + rng.choice((0, 16, 3000))
            q = rrealloc(q, qsize2)
            ctypes.memset(q + qsize, tid, qsize2 - qsize)
            blocks.append((q, qsize2, tid))
        ctypes.memset(p, tid, size)
        blocks.append((p, size, tid))
        # Python objects from the MEM/OBJ domains at the same time.
        junk = [str(i)] * 3
    out.extend(blocks)

def run_threads(n_threads, n_ops):
    out = []
    threads = [threading.Thread(target=worker, args=(t + 1, n_ops, out)) for t in range(n_threads)]
    for t in threads: t.start()
    for t in threads: t.join()
    corrupt = sum(ctypes.string_at(p, n) != bytes([tid]) * n for p, n, tid in out)
    spans = sorted((p, p + max(n, 1)) for p, n, _ in out)
    overlaps = sum(a_end > b for (_, a_end), (b, _) in zip(spans, spans[1:]))
    return len(out), corrupt, overlaps
"""


def test_raw_threads_without_gil_never_share_blocks(py):
    out = py(THREADS + """
import bump_global, json
bump_global.install("1G")
s0 = bump_global.stats()
blocks, corrupt, overlaps = run_threads(4, 20000)
s1 = bump_global.stats()
print(json.dumps([blocks, corrupt, overlaps, s1.allocations - s0.allocations]))
""", timeout=300).stdout
    blocks, corrupt, overlaps, allocations = json.loads(out)
    assert blocks == 80000 and corrupt == 0 and overlaps == 0
    assert allocations >= 80000


@posix_only
def test_fork_parent_and_child_keep_their_data(py):
    out = py("""
        import bump_global, os, json
        bump_global.install("1G")
        data = {i: str(i) * 10 for i in range(100000)}
        pid = os.fork()
        # Both sides now allocate from their own copy of the region.
        mine = [bytes([65 + (pid == 0)]) * 100 for _ in range(50000)]
        ok = all(v == str(k) * 10 for k, v in data.items())
        ok &= all(m == bytes([65 + (pid == 0)]) * 100 for m in mine)
        if pid == 0:
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(json.dumps([ok, os.WEXITSTATUS(status), bump_global.is_installed()]))
    """).stdout
    assert json.loads(out) == [True, 0, True]


@posix_only
def test_fork_while_threads_allocate_through_raw(py):
    out = py(THREADS + """
import bump_global, json, os, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
bump_global.install("1G")
results = []
t = threading.Thread(target=lambda: results.append(run_threads(3, 5000)))
t.start()
children = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        # The child has one thread; the RAW lock must be usable.
        n, corrupt, overlaps = run_threads(2, 2000)
        os._exit(0 if (n, corrupt, overlaps) == (4000, 0, 0) else 1)
    children.append(pid)
statuses = [os.WEXITSTATUS(os.waitpid(pid, 0)[1]) for pid in children]
t.join()
print(json.dumps([statuses, results[0]]))
""", timeout=300).stdout
    statuses, (blocks, corrupt, overlaps) = json.loads(out)
    assert statuses == [0] * 5
    assert (blocks, corrupt, overlaps) == (15000, 0, 0)


@pytest.fixture(scope="module")
def activation_available() -> bool:
    """Does BUMP_GLOBAL=1 install the allocator at start-up here?  Asked once."""
    env = {"BUMP_GLOBAL": "1"}
    proc = run_python("import bump_global, sys; sys.exit(0 if bump_global.is_installed() else 1)",
                      env=env, check=False)
    return proc.returncode == 0


MP_WORKER = """
import json, os, sys
import bump_global

def work(seed):
    data = {str(i): [i, str(i) * 3, bytes([i % 256]) * 50] for i in range(seed, seed + 20000)}
    ok = all(v == [int(k), k * 3, bytes([int(k) % 256]) * 50] for k, v in data.items())
    s = bump_global.stats() if bump_global.is_installed() else None
    return dict(pid=os.getpid(), installed=bump_global.is_installed(), ok=ok,
                used=s.used if s else 0)

def main(method):
    import multiprocessing
    assert bump_global.is_installed()
    before = {str(i): i for i in range(50000)}
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        results = pool.map(work, range(0, 160000, 20000))
    q = ctx.Queue()
    p = ctx.Process(target=q.put, args=(b"x" * 100000,))
    p.start()
    payload = q.get(timeout=60)
    p.join()
    print(json.dumps(dict(results=results, parent_ok=all(before[str(i)] == i
                                                        for i in range(50000)),
                          payload=payload == b"x" * 100000, exitcode=p.exitcode)))
"""


@posix_only
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_under_env_activation(tmp_path, activation_available, method):
    if not activation_available:
        pytest.skip("BUMP_GLOBAL=1 does not install the allocator at start-up in this "
                    "interpreter (bump_global_activate.pth is not in site-packages)")
    (tmp_path / "mp_worker.py").write_text(MP_WORKER)
    proc = run_python(f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
                      f"import mp_worker; mp_worker.main({method!r})",
                      env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SIZE": "2G"}, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["parent_ok"] and result["payload"] and result["exitcode"] == 0
    assert len(result["results"]) == 8
    for r in result["results"]:
        # fork children inherit the installed hooks; spawn children install them again
        # from the environment at start-up.
        assert r["installed"] and r["ok"] and r["used"] > 0, r


def test_exhaustion_fallback_keeps_running(py):
    out = py("""
        import bump_global, json
        bump_global.install("16M", on_exhausted="fallback")
        data = [str(i) * 5 for i in range(1000000)]     # far more than 16 MiB
        ok = all(d == str(i) * 5 for i, d in enumerate(data))
        s = bump_global.stats()
        print(json.dumps([ok, s.used <= s.reserved, s.fallback_allocations,
                          s.fallback_bytes, s.failed_allocations]))
    """).stdout
    ok, bounded, fallbacks, fallback_bytes, failed = json.loads(out)
    assert ok and bounded and failed == 0
    assert fallbacks > 100000 and fallback_bytes > 16 << 20


def test_exhaustion_error_raises_memory_error_and_survives(py):
    proc = py("""
        import bump_global
        bump_global.install("16M", on_exhausted="error")
        try:
            big = bytearray(32 << 20)
        except MemoryError:
            print("large: MemoryError")
        items = []
        try:
            while True:
                items.append(str(len(items)))
        except MemoryError:
            n = len(items)
            del items
            print("full: MemoryError after", n > 10000)
        s = bump_global.stats()
        print("failed", s.failed_allocations >= 2, "fallback", s.fallback_allocations)
        raise SystemExit(5)
    """, check=False)
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout.splitlines() == ["large: MemoryError", "full: MemoryError after True",
                                        "failed True fallback 0"]


def test_exhaustion_error_uncaught_exits_with_a_traceback(py):
    proc = py("""
        import bump_global
        bump_global.install("16M", on_exhausted="error")
        items = []
        while True:
            items.append(str(len(items)))
    """, check=False)
    assert proc.returncode == 1
    assert "MemoryError" in proc.stderr and "Fatal" not in proc.stderr


@pytest.mark.slow  # 5 s: 160 MB of objects, a fork, more after it
def test_prefault_thread_starts_only_for_big_programs_and_keeps_data(py):
    out = py("""
        import bump_global, json, os
        bump_global.install("2G")
        small = bump_global.stats().bytes_prefaulted
        data = [(i, str(i)) for i in range(1000000)]       # about 100 MB
        big = bump_global.stats()
        pid = os.fork()
        more = [bytes([i % 256]) * 200 for i in range(300000)]  # 60+ MB after the fork
        ok = all(d == (i, str(i)) for i, d in enumerate(data))
        ok &= all(m == bytes([i % 256]) * 200 for i, m in enumerate(more))
        after = bump_global.stats().bytes_prefaulted
        if pid == 0:
            os._exit(0 if ok and after > big.bytes_prefaulted else 1)
        _, status = os.waitpid(pid, 0)
        print(json.dumps([small, big.bytes_prefaulted, big.used, ok, os.WEXITSTATUS(status)]))
    """, python_args=["-W", "error::DeprecationWarning"]).stdout  # no "multi-threaded fork"
    small, prefaulted, used, ok, child = json.loads(out)
    assert small == 0  # under 32 MiB taken: no thread, nothing faulted ahead
    assert used // 2 < prefaulted <= used + (2 * 64 + 4) * (1 << 20)
    assert ok and child == 0  # the child restarted the thread and kept its data


def test_prefault_off(py):
    out = py("""
        import bump_global
        bump_global.install("1G", prefault=False)
        data = [(i, str(i)) for i in range(500000)]
        print(bump_global.stats().bytes_prefaulted)
    """).stdout
    assert out.strip() == "0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prefault is Linux only")
def test_a_program_that_populates_near_a_full_region_populates_each_page_once(py):
    """No core idle (one allowed core, and a process spinning on it): the program
    populates each new chunk itself.  Filling a 64 MiB region to the last byte, the
    chunks near its end are single blocks: each page is still populated, and counted,
    once, so what was populated stays within what was taken and the window ahead."""
    out = py("""
        import bump_global, json, os, subprocess, sys
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            bump_global.install("64M")
            items = []
            while bump_global.stats().fallback_allocations == 0:
                items.append(str(len(items)) * 4)
            s = bump_global.stats()
        finally:
            spinner.kill()
        print(json.dumps([s.bytes_prefaulted, s.consumed, s.reserved]))
    """).stdout
    prefaulted, consumed, reserved = json.loads(out)
    mib = 1 << 20
    assert consumed >= reserved - 2 * mib  # the region was full
    # nothing is faulted ahead before 32 MiB were taken; the helper thread's window
    # ahead of each of the two areas' tops is at most 8 MiB
    assert 0 < prefaulted <= consumed - 32 * mib + 2 * 8 * mib, (prefaulted / mib,
                                                                 consumed / mib)
