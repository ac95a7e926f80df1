"""The profile instrument (scripts/perf_profile.py): how it sorts perf's samples.

perf itself is not needed: these feed the parser a report in perf's own format and
check which kind each symbol lands in, so that the published split (allocator, GC,
page faults, kernel, interpreter) means what docs/performance.md says it means.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def profile(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/perf_profile.py, with scripts/ on sys.path as when it runs (its harness)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("perf_profile_under_test",
                                                  ROOT / "scripts" / "perf_profile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 10K of event 'cpu-clock'
# Overhead       Samples  Shared Object                          Symbol
# ........  ............  .....................................  ......
#
    18.31%          4342  libpython3.11.so.1.0                   [.] _PyEval_EvalFrameDefault
     3.70%           878  libpython3.11.so.1.0                   [.] gc_collect_main
     2.10%           497  libpython3.11.so.1.0                   [.] visit_decref
     1.71%           405  libpython3.11.so.1.0                   [.] dict_traverse
     3.27%           776  libpython3.11.so.1.0                   [.] _PyObject_Malloc
     1.74%           413  libpython3.11.so.1.0                   [.] _PyObject_Free
     0.20%            48  libc.so.6                              [.] _int_malloc
     3.87%          1137  _core.cpython-311-x86_64-linux-gnu.so  [.] obj_malloc_classes
     0.50%           120  libmimalloc.so.2                       [.] mi_free
     1.51%           359  [kernel.kallsyms]                      [k] clear_page_erms
     0.59%            64  [kernel.kallsyms]                      [k] do_anonymous_page
     0.52%            58  [kernel.kallsyms]                      [k] __get_user_pages
     0.34%            35  [kernel.kallsyms]                      [k] finish_task_switch.isra.0
     0.45%           100  libc.so.6                              [.] __memmove_avx512_unaligned_erms
"""


def test_every_sample_of_the_report_is_counted_once(profile: ModuleType) -> None:
    kinds = profile.parse_report(REPORT)
    assert sum(kinds.values()) == 4342 + 878 + 497 + 405 + 776 + 413 + 48 + 1137 + 120 \
        + 359 + 64 + 58 + 35 + 100


def test_symbols_land_in_their_kind(profile: ModuleType) -> None:
    kinds = profile.parse_report(REPORT)
    assert kinds["gc"] == 878 + 497 + 405
    assert kinds["allocator"] == 776 + 413 + 48 + 1137 + 120
    assert kinds["faults"] == 359 + 64 + 58
    assert kinds["kernel"] == 35
    assert kinds["interpreter"] == 4342 + 100


@pytest.mark.parametrize("dso, symbol, kernel, kind", [
    ("libpython3.11.so.1.0", "pymalloc_alloc", False, "allocator"),
    ("libc.so.6", "malloc", False, "allocator"),
    ("libc.so.6", "memset", False, "interpreter"),  # copying is the program's
    ("libjemalloc.so.2", "anything_at_all", False, "allocator"),
    ("libpython3.11.so.1.0", "subtract_refs", False, "gc"),
    ("libpython3.11.so.1.0", "PyObject_GC_UnTrack", False, "interpreter"),
    ("[kernel.kallsyms]", "madvise_populate", True, "faults"),
    ("[kernel.kallsyms]", "do_syscall_64", True, "kernel"),
])
def test_classify(profile: ModuleType, dso: str, symbol: str, kernel: bool,
                  kind: str) -> None:
    assert profile.classify(dso, symbol, kernel) == kind
