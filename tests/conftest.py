"""Shared helpers: every test that installs the allocator runs in a subprocess.

Two lanes.  ``python -m pytest`` (the README's command, and CI's) runs every test.
``python -m pytest -m "not slow"`` is the quick lane: it leaves out the tests marked
``@pytest.mark.slow`` (the marker is registered in pyproject.toml): test_stress.py,
test_fuzz.py, test_regrtest.py, test_bench.py, test_packaging.py, the plugin tests that start
several pytest sessions, and any other test of about 5 s or more (``--durations=40`` finds
them).  Mark a new test slow when it takes that long; an expensive result that several tests
or parameters share (a baseline, a tool's path) goes in a module-scoped fixture, and nothing
is run at collection (no subprocess in a skipif or a parametrize list).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Callable, Optional

import pytest

from bump_global._launch import child_environment

Runner = Callable[..., subprocess.CompletedProcess]


def run_python(
    code: str,
    *,
    python_args: Sequence[str] = (),
    args: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter; with `check`, fail on a non-zero exit."""
    full_env = child_environment(**(env or {}))
    proc = subprocess.run(
        [sys.executable, *python_args, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"subprocess exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def py() -> Runner:
    return run_python


# Helpers pasted into subprocesses that drive the C API through ctypes.
CAPI = """
import ctypes
api = ctypes.pythonapi
VP, SZ = ctypes.c_void_p, ctypes.c_size_t
FUNCS = {}
for dom, prefix in (("raw", "PyMem_Raw"), ("mem", "PyMem_"), ("obj", "PyObject_")):
    m = getattr(api, prefix + "Malloc"); m.restype, m.argtypes = VP, [SZ]
    c = getattr(api, prefix + "Calloc"); c.restype, c.argtypes = VP, [SZ, SZ]
    r = getattr(api, prefix + "Realloc"); r.restype, r.argtypes = VP, [VP, SZ]
    f = getattr(api, prefix + "Free"); f.restype, f.argtypes = None, [VP]
    FUNCS[dom] = (m, c, r, f)

def fill(p, n, seed):
    ctypes.memmove(p, bytes((seed + i) % 251 for i in range(n)), n)

def check(p, n, seed):
    return ctypes.string_at(p, n) == bytes((seed + i) % 251 for i in range(n))
"""

# After CAPI: the RAW functions of the same library, but their calls release the GIL, so
# the RAW hooks run truly concurrently, as they do for CPython's own callers without it.
RAW_NOGIL = """
_nogil = ctypes.CDLL("python", handle=api._handle)
RAW_NOGIL = []
for _name, _res, _args in (("Malloc", VP, [SZ]), ("Calloc", VP, [SZ, SZ]),
                           ("Realloc", VP, [VP, SZ]), ("Free", None, [VP])):
    _f = getattr(_nogil, "PyMem_Raw" + _name)
    _f.restype, _f.argtypes = _res, _args
    RAW_NOGIL.append(_f)
"""
