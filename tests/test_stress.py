"""Stress under the installed allocator, each test bounded in time (in subprocesses).

Every block is filled with a byte of its own and checked whole before it is reallocated,
freed, and at the end: a block that overlaps another, or that another thread wrote into,
shows up as a wrong byte; the live blocks of all threads are also checked for overlapping
address ranges.  Each test prints its figures (threads x operations, bytes verified): run
``pytest -s tests/test_stress.py`` to see them.

Every test here is marked slow (seconds of churn each); the fixed-size checks of the same
features (threads, fork, exhaustion, prefault, processes) are in test_concurrency.py.
"""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import CAPI, RAW_NOGIL, run_python

pytestmark = pytest.mark.slow
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs os.fork")

SECONDS = 4.0  # how long each churning phase runs (the operation counts are bounded too)

# Pasted into the subprocesses, after CAPI.  churn() drives one domain with random
# malloc/calloc/realloc/free and checks every byte it wrote.
STRESS = CAPI + RAW_NOGIL + r"""
import json, os, random, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+

memcmp = ctypes.CDLL(None).memcmp
memcmp.restype, memcmp.argtypes = ctypes.c_int, [VP, VP, SZ]
# Operations per thread at most, whatever the speed of the machine: about 20 KiB are
# handed out per operation on average, so a 16G region holds every test's threads.
MAX_OPS = 30000
STOP = threading.Event()  # set by the first NULL of a churn with stop_on_null
DOMAINS = {"raw-nogil": tuple(RAW_NOGIL), "raw": FUNCS["raw"], "mem": FUNCS["mem"],
           "obj": FUNCS["obj"]}


def pick_size(rng, biggest):
    r = rng.random()
    if r < 0.6:
        n = rng.randrange(0, 129)
    elif r < 0.9:
        n = rng.randrange(129, 8193)
    elif r < 0.99:
        n = rng.randrange(8193, 262145)
    else:
        n = rng.randrange(262145, 2 << 20)
    return min(n, biggest)


class Churn:
    # Random malloc/calloc/realloc/free through one domain; every byte checked.

    def __init__(self, domain, seed, biggest=2 << 20, max_live=500, stop_on_null=False):
        self.funcs = DOMAINS[domain]
        self.ref_buffer = ctypes.create_string_buffer(max(biggest, 1))
        self.ref = ctypes.addressof(self.ref_buffer)
        self.domain, self.seed, self.biggest = domain, seed, biggest
        self.rng = random.Random(seed)
        self.max_live, self.stop_on_null = max_live, stop_on_null
        self.live = {}     # address -> (size, byte)
        self.keys = []
        self.ops = self.verified = self.nulls = self.counter = 0
        self.errors = []

    def byte(self):
        self.counter += 1
        return (self.seed * 37 + self.counter) % 255 + 1

    def check(self, p, n, b, what):
        # memcmp against a buffer made at the start: checking allocates nothing, so it
        # works in a full region and does not itself consume the region.
        self.verified += n
        if n == 0:
            return
        ctypes.memset(self.ref, b, n)
        if memcmp(p, self.ref, n) != 0:
            data = ctypes.string_at(p, n)
            bad = next(i for i in range(n) if data[i] != b)
            self.errors.append(f"{self.domain} {what}: {n}-byte block at {p:#x} holds "
                               f"{data[bad]} at offset {bad}, expected {b}")

    def take(self):
        i = self.rng.randrange(len(self.keys))
        p = self.keys[i]
        self.keys[i] = self.keys[-1]
        self.keys.pop()
        return p, self.live.pop(p)

    def put(self, p, n, b):
        if p in self.live:
            self.errors.append(f"{self.domain}: address {p:#x} handed out twice")
        self.live[p] = (n, b)
        self.keys.append(p)

    def null(self, what):
        self.nulls += 1
        if self.stop_on_null:
            STOP.set()
        else:
            self.errors.append(f"{self.domain}: {what} returned NULL")

    def step(self):
        malloc, calloc, realloc, free = self.funcs
        rng = self.rng
        op = rng.random()
        self.ops += 1
        if not self.keys or (op < 0.45 and len(self.keys) < self.max_live):
            n = pick_size(rng, self.biggest)
            if op < 0.15:
                p = calloc(n, 1) if op < 0.07 else calloc(1, n)
                if p is None:
                    return self.null("calloc")
                self.check(p, n, 0, "calloc (not zero)")
            else:
                p = malloc(n)
                if p is None:
                    return self.null("malloc")
            b = self.byte()
            ctypes.memset(p, b, n)
            self.put(p, n, b)
        elif op < 0.75:
            p, (n, b) = self.take()
            self.check(p, n, b, "before realloc")
            m = pick_size(rng, self.biggest)
            q = realloc(p, m)
            if q is None:
                self.put(p, n, b)  # the old block stays valid
                return self.null("realloc")
            self.check(q, min(n, m), b, "after realloc")
            if m > n:
                ctypes.memset(q + n, b, m - n)
            self.put(q, m, b)
        else:
            p, (n, b) = self.take()
            self.check(p, n, b, "before free")
            free(p)

    def run(self, deadline, max_ops):
        while self.ops < max_ops and time.monotonic() < deadline:
            if self.stop_on_null and STOP.is_set():
                break
            self.step()
        return self

    def finish(self):
        for p, (n, b) in self.live.items():
            self.check(p, n, b, "at the end")
        return self


class ObjectChurn:
    # Python objects of many kinds (MEM/OBJ domains), rebuilt and checked.

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed, self.ops, self.verified, self.errors = seed, 0, 0, []
        self.keep = []

    def run(self, deadline, max_ops):
        rng = self.rng
        while self.ops < max_ops and time.monotonic() < deadline:
            i = rng.randrange(1 << 20)
            item = (i, str(i) * rng.randrange(1, 20), bytearray([i % 256]) * rng.randrange(600),
                    {str(j): j for j in range(rng.randrange(30))}, [float(i)] * 5)
            item[2].extend(bytes([i % 256]) * rng.randrange(3000))
            self.keep.append(item)
            if len(self.keep) > 3000:
                self.check(self.keep.pop(rng.randrange(len(self.keep))))
            self.ops += 1
        return self

    def check(self, item):
        i, s, ba, d, fl = item
        self.verified += len(s) + len(ba) + 8 * (len(d) + len(fl))
        ok = (s == str(i) * (len(s) // len(str(i))) and ba == bytearray([i % 256]) * len(ba)
              and d == {str(j): j for j in range(len(d))} and fl == [float(i)] * 5)
        if not ok:
            self.errors.append(f"object item {i} corrupted")

    def finish(self):
        for item in self.keep:
            self.check(item)
        return self


def overlaps(churns):
    spans = sorted((p, p + max(n, 1)) for c in churns for p, (n, _) in c.live.items())
    return sum(a_end > b for (_, a_end), (b, _) in zip(spans, spans[1:]))


def run_parallel(workers, seconds, max_ops):
    deadline = time.monotonic() + seconds
    failures = []

    def body(w):
        try:
            w.run(deadline, max_ops)
        except BaseException as exc:  # reported, not lost in a thread
            failures.append(repr(exc))

    threads = [threading.Thread(target=body, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.finish()
    return failures


def summary(workers, **extra):
    result = {
        "threads": len(workers),
        "ops": sum(w.ops for w in workers),
        "ops_per_thread": [w.ops for w in workers],
        "bytes_verified": sum(w.verified for w in workers),
        "errors": [e for w in workers for e in w.errors][:20],
        "overlaps": overlaps([w for w in workers if isinstance(w, Churn)]),
    }
    result.update(extra)
    return result
"""


def figures(name, result):
    """Print the figures of a run (visible with pytest -s)."""
    print(f"\n[stress] {name}: {json.dumps(result, sort_keys=True)}")


def run_stress(code, timeout=120, **kwargs):
    proc = run_python(STRESS + textwrap.dedent(code), timeout=timeout, **kwargs)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_raw_threads_without_gil_with_mem_and_obj_threads():
    result = run_stress(f"""
        import bump_global
        bump_global.install("16G")
        workers = ([Churn("raw-nogil", seed) for seed in range(1, 5)]
                   + [Churn("mem", 11), Churn("obj", 12), ObjectChurn(13)])
        failures = run_parallel(workers, {SECONDS}, MAX_OPS)
        s = bump_global.stats()
        print(json.dumps(summary(workers, failures=failures, used=s.used,
                                 fallback=s.fallback_allocations, failed=s.failed_allocations,
                                 inside=all(s.contains(p)
                                            for w in workers if isinstance(w, Churn)
                                            for p in w.live))))
    """)
    figures("RAW threads without the GIL + MEM/OBJ threads", result)
    assert result["failures"] == [] and result["errors"] == [] and result["overlaps"] == 0
    assert result["inside"] and result["fallback"] == 0 and result["failed"] == 0
    assert result["threads"] == 7 and all(n > 500 for n in result["ops_per_thread"])


@posix_only
def test_fork_parent_and_child_allocate_and_verify(tmp_path):
    result = run_stress(f"""
        import bump_global
        bump_global.install("16G")
        # Blocks and objects made before the fork, in every domain.
        before = [Churn(d, seed).run(time.monotonic() + 1, 3000)
                  for seed, d in enumerate(("raw", "mem", "obj"), 1)]
        objects = ObjectChurn(4).run(time.monotonic() + 1, 2000)
        to_parent, from_child = os.pipe()
        to_child, from_parent = os.pipe()
        pid = os.fork()
        me = "child" if pid == 0 else "parent"
        # Both allocate from the same offsets of their own copy of the region: fill the
        # new blocks with a byte of each side, let the other side write, then check.
        fresh = [FUNCS[d][0](4096) for d in ("raw", "mem", "obj") for _ in range(100)]
        mark = 0xC1 if pid == 0 else 0x9A
        for p in fresh:
            ctypes.memset(p, mark, 4096)
        if pid == 0:
            os.write(from_child, json.dumps(fresh).encode() + b"\\n")
            os.read(to_child, 1)   # the parent has written its blocks
        else:
            child_fresh = json.loads(os.fdopen(to_parent).readline())
            os.write(from_parent, b"x")
        fresh_ok = all(ctypes.string_at(p, 4096) == bytes([mark]) * 4096 for p in fresh)
        after = [Churn(d, seed + (50 if pid == 0 else 100))
                 for seed, d in enumerate(("raw-nogil", "raw-nogil", "mem", "obj"), 1)]
        failures = run_parallel(after + [ObjectChurn(7)], {SECONDS / 2}, MAX_OPS)
        workers = before + [objects] + after
        for w in before + [objects]:
            w.finish()
        result = summary(workers, failures=failures, fresh_ok=fresh_ok)
        if pid == 0:
            with open(sys.argv[1], "w") as f:
                json.dump(result, f)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        with open(sys.argv[1]) as f:
            child = json.load(f)
        shared = len(set(fresh) & set(child_fresh))
        print(json.dumps(dict(parent=result, child=child, status=status,
                              same_addresses=shared)))
    """, args=[str(tmp_path / "child.json")])
    figures("fork: parent", result["parent"])
    figures("fork: child", result["child"])
    assert result["status"] == 0
    for side in ("parent", "child"):
        r = result[side]
        assert r["errors"] == [] and r["failures"] == [] and r["overlaps"] == 0, side
        assert r["fresh_ok"], side
    # Parent and child handed out the same addresses, each with its own contents: the
    # region is private to each process.
    assert result["same_addresses"] > 0


@posix_only
def test_fork_repeatedly_while_threads_allocate():
    result = run_stress(f"""
        import bump_global
        bump_global.install("16G")
        mine = Churn("mem", 1).run(time.monotonic() + 0.5, 2000)  # the main thread's blocks
        workers = [Churn("raw-nogil", 2), Churn("raw-nogil", 3), Churn("obj", 4), ObjectChurn(5)]
        failures = []
        t = threading.Thread(target=lambda: failures.extend(
            run_parallel(workers, {SECONDS}, MAX_OPS)))
        t.start()
        children = []
        deadline = time.monotonic() + {SECONDS} - 1
        while time.monotonic() < deadline and len(children) < 25:
            pid = os.fork()
            if pid == 0:
                # One thread survives; the RAW lock must be usable, the main thread's blocks
                # intact, and new threads must work.
                mine.finish()
                kids = [Churn("raw-nogil", 20 + i) for i in range(2)] + [Churn("obj", 30)]
                bad = run_parallel(kids, 0.5, 3000)
                errors = bad + mine.errors + [e for k in kids for e in k.errors]
                os._exit(0 if not errors and overlaps(kids) == 0 else 1)
            children.append(pid)
            time.sleep(0.05)
        statuses = [os.waitpid(pid, 0)[1] for pid in children]
        t.join()
        mine.finish()
        print(json.dumps(summary(workers + [mine], failures=failures, forks=len(children),
                                 statuses=statuses)))
    """)
    figures("fork while threads allocate", result)
    assert result["failures"] == [] and result["errors"] == [] and result["overlaps"] == 0
    assert result["forks"] >= 10 and result["statuses"] == [0] * result["forks"]


def test_exhaustion_fallback_with_threads():
    result = run_stress(f"""
        import bump_global
        bump_global.install("64M", on_exhausted="fallback")
        workers = ([Churn("raw-nogil", seed, max_live=2000) for seed in range(1, 4)]
                   + [Churn("mem", 11, max_live=2000), Churn("obj", 12, max_live=2000),
                      ObjectChurn(13)])
        failures = run_parallel(workers, {SECONDS}, MAX_OPS)
        s = bump_global.stats()
        outside = sum(not s.contains(p)
                      for w in workers if isinstance(w, Churn) for p in w.live)
        print(json.dumps(summary(workers, failures=failures, used=s.used, reserved=s.reserved,
                                 fallback=s.fallback_allocations,
                                 fallback_bytes=s.fallback_bytes,
                                 foreign_frees=s.foreign_frees,
                                 foreign_reallocs=s.foreign_reallocs,
                                 failed=s.failed_allocations, outside=outside)))
    """)
    figures("exhaustion, policy fallback, 6 threads", result)
    assert result["failures"] == [] and result["errors"] == [] and result["overlaps"] == 0
    assert result["fallback"] > 0 and result["failed"] == 0 and result["outside"] > 0
    assert result["used"] <= result["reserved"]
    # Fallback blocks were freed and reallocated through the previous allocator.
    assert result["foreign_frees"] > 0 and result["foreign_reallocs"] > 0


def test_exhaustion_error_with_threads():
    proc = run_python(STRESS + textwrap.dedent(f"""
        import bump_global
        bump_global.install("64M", on_exhausted="error")
        workers = ([Churn("raw-nogil", seed, biggest=1 << 18, max_live=10 ** 6,
                          stop_on_null=True) for seed in range(1, 4)]
                   + [Churn(d, seed, biggest=1 << 18, max_live=10 ** 6, stop_on_null=True)
                      for seed, d in ((11, "mem"), (12, "obj"))])
        memory_errors = []
        deadline = time.monotonic() + {SECONDS * 2}

        def body(w):
            try:
                w.run(deadline, 10 ** 7)
            except (MemoryError, ctypes.ArgumentError) as exc:
                # ctypes reports a MemoryError met while converting arguments as an
                # ArgumentError; either way the region ran dry in Python code.
                STOP.set()
                memory_errors.append(w.domain)
                if isinstance(exc, ctypes.ArgumentError) and "MemoryError" not in str(exc):
                    raise

        threads = [threading.Thread(target=body, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Every block handed out before the region ran dry still holds its bytes.  (All
        # threads stop at the first failure: the emergency reserve it released is for the
        # unwinding, and threads that went on allocating would use it up.)
        for w in workers:
            w.finish()
        s = bump_global.stats()
        print(json.dumps(summary(workers, nulls=sum(w.nulls for w in workers),
                                 memory_errors=len(memory_errors), used=s.used,
                                 reserved=s.reserved, fallback=s.fallback_allocations,
                                 fallback_bytes=s.fallback_bytes,
                                 failed=s.failed_allocations)))
        raise SystemExit(7)
    """), timeout=120, check=False)
    assert proc.returncode == 7, proc.stderr[-3000:]
    assert "Fatal" not in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    figures("exhaustion, policy error, 5 threads", result)
    assert result["errors"] == [] and result["overlaps"] == 0
    assert result["failed"] > 0 and result["nulls"] + result["memory_errors"] > 0
    # At most the region, plus the emergency reserve released by the first failure.
    assert result["used"] <= result["reserved"] + (4 << 20)
    # What the threads still asked for before they saw STOP is the unwinding's: past the
    # reserve it may be served by the previous allocator, never past its allowance
    # (core/exhausted.c, step 3).
    assert result["fallback_bytes"] <= 64 << 20


def _subinterpreter_module():
    """The newest subinterpreter module this Python has (asked in a subprocess), or None."""
    have = [m for m in ("_xxsubinterpreters", "_interpreters")
            if subprocess.run([sys.executable, "-c", f"import {m}"],
                              capture_output=True).returncode == 0]
    return have[-1] if have else None


def test_shared_gil_subinterpreters_while_raw_threads_run():
    module = _subinterpreter_module()
    if module is None:
        pytest.skip("no subinterpreter module in this Python")
    if module == "_interpreters":
        create, run = "mod.create(config='legacy')", "mod.exec(iid, code)"
    elif sys.version_info >= (3, 12):
        create, run = "mod.create(isolated=False)", "mod.run_string(iid, code)"
    else:
        create, run = "mod.create()", "mod.run_string(iid, code)"
    result = run_stress(f"""
        import bump_global, {module} as mod
        bump_global.install("16G")
        workers = [Churn("raw-nogil", seed) for seed in range(1, 4)]
        failures = []
        t = threading.Thread(target=lambda: failures.extend(
            run_parallel(workers, {SECONDS / 2}, MAX_OPS)))
        t.start()
        code = ("d = {{str(i): bytes([i % 256]) * 100 for i in range(30000)}}\\n"
                "assert all(v == bytes([int(k) % 256]) * 100 for k, v in d.items())\\n")
        rounds = 0
        while t.is_alive() or rounds < 3:
            iid = {create}
            {run}
            mod.destroy(iid)
            rounds += 1
        t.join()
        print(json.dumps(summary(workers, failures=failures, subinterpreters=rounds)))
    """)
    figures(f"{module} (shared GIL) + RAW threads", result)
    assert result["failures"] == [] and result["errors"] == [] and result["overlaps"] == 0
    assert result["subinterpreters"] >= 3
