"""Fuzzing: random malloc/calloc/realloc/free sequences against a model (in subprocesses).

A hypothesis state machine, run inside a subprocess where bump_global is installed, calls
the RAW, MEM and OBJ domains through ctypes.pythonapi with sizes from 0 to 4 MiB (biased
to small ones).  The model maps each live block to its domain, size and pattern; blocks
made before the install ("foreign" ones, served by the previous allocator) are in the mix.
After every step: each live block holds its pattern, no two live blocks overlap.  calloc
memory is checked to be zero, and realloc to keep min(old, new) bytes.  The subprocess
prints a summary (sequences tried, operations, bytes verified): ``pytest -s`` shows it.
"""

import importlib.util
import json

import pytest
from conftest import CAPI, run_python

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("hypothesis") is None,
        reason="hypothesis is not installed (pip install -e '.[test]' installs it)"),
]

MACHINE = CAPI + r"""
import json, sys, time, traceback
import hypothesis
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, invariant,
                                 rule, run_state_machine_as_test)
import bump_global

MAX = 4 << 20
# One pattern buffer: a block of size n with pattern k holds PATTERN[k:k + n]; filling and
# checking are memmove/memcmp against it, so the checks allocate nothing.
PATTERN = ctypes.create_string_buffer(bytes(range(251)) * (MAX // 251 + 2))
ZERO = ctypes.create_string_buffer(MAX + 1)
P0, Z0 = ctypes.addressof(PATTERN), ctypes.addressof(ZERO)
memcmp = ctypes.CDLL(None).memcmp
memcmp.restype, memcmp.argtypes = ctypes.c_int, [VP, VP, SZ]
DOMAINS = ("raw", "mem", "obj")

# Blocks from before the install: the previous allocator owns them.  A slot is used once
# (None after); adopting a used slot mallocs a fresh block instead, so every step adds one
# block to the bundle and data generation never depends on what earlier examples did.
FOREIGN = []
for i in range(3000):
    d = DOMAINS[i % 3]
    n = (i * 97) % 3000
    p = FUNCS[d][0](n)
    ctypes.memmove(p, P0 + i % 251, n)
    FOREIGN.append((p, d, n, i % 251))

SIZE, STEPS, EXAMPLES, RECLAIM = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bump_global.install(SIZE, on_exhausted="fallback", reclaim=RECLAIM)
REGION = bump_global.stats()
TOTALS = dict(sequences=0, steps=0, malloc=0, calloc=0, realloc=0, free=0, foreign=0,
              bytes_written=0, bytes_verified=0, zero_verified=0, max_live=0)

sizes = st.one_of(st.integers(0, 32), st.integers(0, 512), st.integers(0, 8192),
                  st.integers(0, 1 << 18), st.integers(0, MAX))
domains = st.sampled_from(DOMAINS)
patterns = st.integers(0, 250)


class Heap(RuleBasedStateMachine):
    blocks = Bundle("blocks")

    def __init__(self):
        super().__init__()
        self.live = {}  # address -> (domain, size, pattern)
        TOTALS["sequences"] += 1

    def fill(self, p, n, k):
        ctypes.memmove(p, P0 + k, n)
        TOTALS["bytes_written"] += n

    def holds(self, p, n, k):
        TOTALS["bytes_verified"] += n
        return n == 0 or memcmp(p, P0 + k, n) == 0

    def add(self, p, domain, n, k):
        assert p is not None, f"{domain}: NULL for {n} bytes"
        assert p % 16 == 0, f"{domain}: {p:#x} is not 16-aligned"
        assert p not in self.live, f"{domain}: {p:#x} handed out twice"
        self.live[p] = (domain, n, k)
        TOTALS["max_live"] = max(TOTALS["max_live"], len(self.live))
        return p

    @rule(target=blocks, domain=domains, n=sizes, k=patterns)
    def malloc(self, domain, n, k):
        TOTALS["malloc"] += 1
        p = FUNCS[domain][0](n)
        self.add(p, domain, n, k)
        self.fill(p, n, k)
        return p

    @rule(target=blocks, domain=domains, n=sizes, k=patterns, split=st.booleans())
    def calloc(self, domain, n, k, split):
        TOTALS["calloc"] += 1
        # calloc(nelem, elsize) with a product of n; either factor may be 0 or 1.
        nelem, elsize = (n, 1) if split else (1, n)
        if n % 16 == 0 and n:
            nelem, elsize = n // 16, 16
        p = FUNCS[domain][1](nelem, elsize)
        self.add(p, domain, n, k)
        TOTALS["zero_verified"] += n
        assert n == 0 or memcmp(p, Z0, n) == 0, f"{domain}: calloc({nelem}, {elsize}) not zero"
        self.fill(p, n, k)
        return p

    @rule(target=blocks, slot=st.integers(0, len(FOREIGN) - 1))
    def adopt_foreign(self, slot):
        if FOREIGN[slot] is None:
            return self.malloc(DOMAINS[slot % 3], slot % 3000, slot % 251)
        p, domain, n, k = FOREIGN[slot]
        FOREIGN[slot] = None
        TOTALS["foreign"] += 1
        assert self.holds(p, n, k), f"foreign {domain} block changed before use"
        return self.add(p, domain, n, k)

    @rule(target=blocks, p=consumes(blocks), n=sizes)
    def realloc(self, p, n):
        if p not in self.live:  # the same address twice in the bundle: already consumed
            return p
        TOTALS["realloc"] += 1
        domain, old, k = self.live.pop(p)
        q = FUNCS[domain][2](p, n)
        assert q is not None, f"{domain}: realloc({p:#x}, {n}) returned NULL"
        keep = min(old, n)
        assert self.holds(q, keep, k), f"{domain}: realloc {old} -> {n} lost bytes"
        self.add(q, domain, n, k)
        if n > keep:
            ctypes.memmove(q + keep, P0 + k + keep, n - keep)
            TOTALS["bytes_written"] += n - keep
        return q

    @rule(p=consumes(blocks))
    def free(self, p):
        if p not in self.live:
            return
        TOTALS["free"] += 1
        domain, n, k = self.live.pop(p)
        assert self.holds(p, n, k), f"{domain}: block changed before free"
        FUNCS[domain][3](p)

    @invariant()
    def every_block_holds_its_pattern(self):
        TOTALS["steps"] += 1
        for p, (domain, n, k) in self.live.items():
            assert self.holds(p, n, k), f"{domain}: {n}-byte block at {p:#x} corrupted"

    @invariant()
    def no_overlap(self):
        spans = sorted((p, p + max(n, 1)) for p, (_, n, _) in self.live.items())
        for (a, a_end), (b, _) in zip(spans, spans[1:]):
            assert a_end <= b, f"blocks at {a:#x} and {b:#x} overlap"

    def teardown(self):
        # Everything goes back (a no-op for region blocks, forwarded for the others).
        for p, (domain, n, k) in self.live.items():
            FUNCS[domain][3](p)


start = time.monotonic()
failure = None
try:
    run_state_machine_as_test(Heap, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), print_blob=True))
except Exception:
    failure = traceback.format_exc()
s = bump_global.stats()
TOTALS.update(seconds=round(time.monotonic() - start, 1), region=s.reserved, used=s.used,
              fallback_allocations=s.fallback_allocations, foreign_frees=s.foreign_frees,
              foreign_reallocs=s.foreign_reallocs, failure=failure,
              frees_reclaimed=s.frees_reclaimed, allocations_reused=s.allocations_reused,
              hypothesis=hypothesis.__version__)
print(json.dumps(TOTALS))
"""


@pytest.mark.parametrize(
    "size, steps, examples, reclaim",
    [
        ("16G", 40, 160, "none"),    # everything fits: region blocks and foreign ones
        ("32M", 40, 120, "none"),    # the region fills up: fallback blocks join the foreign ones
        ("16G", 40, 120, "classes"),  # freed blocks come back: reuse must never overlap
        ("16M", 40, 80, "classes"),   # small enough to fill up even with reuse (MIN_SIZE)
        ("16G", 40, 80, "last"),
    ],
)
def test_random_heap_operations_match_the_model(size, steps, examples, reclaim):
    proc = run_python(MACHINE, args=[size, str(steps), str(examples), reclaim], timeout=300)
    totals = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n[fuzz] region {size}: {json.dumps(totals)}")
    assert totals["failure"] is None, totals["failure"]
    assert totals["sequences"] >= examples // 2
    assert totals["malloc"] and totals["calloc"] and totals["realloc"] and totals["free"]
    assert totals["foreign"] > 0 and totals["foreign_frees"] + totals["foreign_reallocs"] > 0
    if reclaim == "classes":
        assert totals["frees_reclaimed"] > 0 and totals["allocations_reused"] > 0
    if size in ("32M", "16M"):
        assert totals["fallback_allocations"] > 0
    else:
        assert totals["fallback_allocations"] == 0
