"""The automatic size is the whole program's budget: its processes share it.

core/budget.c keeps one counter page for the processes of a program (Linux);
bump_global._startup.share_budget joins or makes it.  Each test installs in a fresh
interpreter (run_python); a small shared limit is set with share_budget() itself, as
the automatic size would, so that a test can fill it.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="a shared budget needs memfd and /proc (Linux)")

# The parent installs with a region of its own larger than the shared limit, makes a
# shared budget of 64 MiB, and keeps 40 MiB alive; bytearrays of 40 MiB are large
# blocks, charged at once.
PARENT = """
import json, os, subprocess, sys
import bump_global
from bump_global import _core, _startup
bump_global.install(size="256M")
_startup.share_budget(64 << 20)
held = bytearray(40 << 20)
"""


def test_automatic_size_makes_a_shared_budget_and_names_it_for_children() -> None:
    proc = run_python("""
import json, os
import bump_global
from bump_global import _core
bump_global.install()
print(json.dumps([os.environ.get("BUMP_GLOBAL_SHARED_BUDGET"), _core.shared_budget()]))
""")
    path, shared = json.loads(proc.stdout)
    assert path.startswith("/proc/") and path.split("/")[2].isdigit()
    limit, used, own, processes, refusals, refused_here = shared
    assert limit == json.loads(run_python("""
import json
from bump_global._config import default_size
print(default_size()[0])
""").stdout)
    assert 0 < used == own and processes == 1 and refusals == refused_here == 0


def test_an_explicit_size_is_per_process_and_shares_nothing() -> None:
    proc = run_python("""
import json, os
import bump_global
from bump_global import _core
bump_global.install(size="64M")
print(json.dumps([os.environ.get("BUMP_GLOBAL_SHARED_BUDGET"), _core.shared_budget()]))
""")
    assert json.loads(proc.stdout) == [None, None]


def test_a_forked_child_is_refused_what_the_parent_already_took() -> None:
    proc = run_python(PARENT + """
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    x = bytearray(40 << 20)  # 40 + 40 > 64 MiB: past the shared budget
    s = bump_global.stats()
    os.write(w, json.dumps([_core.shared_budget(), s.fallback_allocations,
                            s.fallback_bytes]).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(r, 4096))
print(json.dumps({"child": child, "parent": _core.shared_budget()}))
""")
    out = json.loads(proc.stdout)
    shared, fallbacks, fallback_bytes = out["child"]
    assert shared[3] == 2  # two processes joined
    assert shared[5] >= 1  # refused in the child
    assert fallbacks >= 1 and fallback_bytes >= 40 << 20  # the fallback served it
    assert out["parent"][5] == 0  # nothing refused in the parent


def test_a_spawned_child_with_bump_global_joins_through_the_environment() -> None:
    proc = run_python(PARENT + """
env = dict(os.environ, BUMP_GLOBAL="1")
code = ("import json, bump_global; from bump_global import _core; "
        "x = bytearray(40 << 20); s = bump_global.stats(); "
        "print(json.dumps([_core.shared_budget(), s.fallback_allocations]))")
out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                     text=True, check=True).stdout
print(out)
""")
    shared, fallbacks = json.loads(proc.stdout)
    assert shared[0] == 64 << 20 and shared[3] == 2
    assert shared[5] >= 1 and fallbacks >= 1


def test_processes_that_ended_give_their_share_back() -> None:
    # Five children in turn each take 20 MiB and end without freeing it (os._exit);
    # with the parent's 40 MiB, two of them together would pass 64 MiB: each is
    # served because the slots of those that ended are taken off.
    proc = run_python(PARENT + """
served = []
for _ in range(5):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        x = bytearray(20 << 20)
        os.write(w, str(bump_global.stats().fallback_allocations).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    served.append(int(os.read(r, 64)))
print(json.dumps([served, _core.shared_budget()]))
""")
    served, shared = json.loads(proc.stdout)
    assert served == [0] * 5
    assert shared[3] == 6 and shared[4] == 0
    assert shared[1] < 64 << 20  # only the parent's share is left


def test_a_stale_or_bogus_variable_gives_a_budget_of_its_own() -> None:
    proc = run_python("""
import json, os
os.environ["BUMP_GLOBAL_SHARED_BUDGET"] = "/proc/999999999/fd/3"
import bump_global
from bump_global import _core
bump_global.install()
first = [os.environ["BUMP_GLOBAL_SHARED_BUDGET"], _core.shared_budget()[3]]
print(json.dumps(first))
""")
    path, processes = json.loads(proc.stdout)
    assert path != "/proc/999999999/fd/3" and processes == 1
    # A file that is not a budget page is not joined either.
    proc = run_python("""
import json, os, tempfile
fd, name = tempfile.mkstemp()
os.write(fd, b"x" * 8192)
os.environ["BUMP_GLOBAL_SHARED_BUDGET"] = "/proc/%d/fd/%d" % (os.getpid(), fd)
import bump_global
from bump_global import _core
bump_global.install()
print(json.dumps(_core.shared_budget()[3]))
os.unlink(name)
""")
    assert json.loads(proc.stdout) == 1


def test_the_report_shows_the_shared_budget_and_says_it_was_full() -> None:
    proc = run_python(PARENT + """
x = bytearray(40 << 20)
print(bump_global.report())
""")
    assert "budget     shared by the program's 1 process(es)" in proc.stdout
    assert "the program's shared budget was full:" in proc.stdout


def test_error_policy_raises_memoryerror_and_reports_when_the_shared_budget_is_full() -> None:
    proc = run_python("""
import bump_global
from bump_global import _startup
bump_global.install(size="256M", on_exhausted="error")
_startup.share_budget(64 << 20)
held = []
try:
    while True:
        held.append(str(len(held)) * 100)
except MemoryError:
    n = len(held)
    held.clear()
print(n > 10_000)
print(bump_global.report())
""")
    assert proc.stdout.startswith("True\n")
    assert "the program's shared budget was full:" in proc.stdout
