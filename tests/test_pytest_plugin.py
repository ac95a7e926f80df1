"""The pytest plugin (bump_global.pytest_plugin), driven through pytest's pytester.

Installing is irreversible, so every session runs in a subprocess
(runpytest_subprocess); the plugin is loaded through its pytest11 entry point.
"""

from __future__ import annotations

import re
import shutil
import sys

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest

def test_small():
    x = [1] * 100

@pytest.mark.limit_allocated("1 MB")
def test_within_budget():
    x = [0] * 1000

@pytest.mark.limit_allocated("10KiB")
def test_over_bytes():
    x = [0] * 100_000

@pytest.mark.limit_allocations(100)
def test_over_count():
    x = [str(i) for i in range(1000)]
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("BUMP_GLOBAL", "PYTHONMALLOC", "PYTHONTRACEMALLOC", "PYTHONDEVMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def figures(result: pytest.RunResult) -> dict:
    """nodeid -> (bytes, allocations) from the --bump-global-top table (by bytes)."""
    found = {}
    lines = result.outlines
    start = lines.index("by bytes:")
    for line in lines[start + 1:]:
        match = re.match(r"\s+([\d,]+) bytes\s+([\d,]+) allocations\s+(\S+)", line)
        if match is None:
            break
        size, count, nodeid = match.groups()
        found[nodeid] = (int(size.replace(",", "")), int(count.replace(",", "")))
    return found


def _line_of(text: str, source: str = SUITE) -> int:
    """The line number of `text` in the test file made from `source` (pytester strips it)."""
    return next(i for i, line in enumerate(source.strip().splitlines(), 1) if text in line)


def test_budgets_pass_and_fail_with_one_clear_message(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--bump-global", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert re.search(
        r"test_suite.py::test_over_bytes: its call allocated [\d,]+ bytes \(.*\), over the "
        r"limit of 10,240 bytes \(10.0 KiB\) \(@pytest.mark.limit_allocated\('10KiB'\)\); "
        r"where, estimated from \d+ samples?: [\d.]+ [KM]iB in test_over_bytes "
        rf"\(test_suite.py:{_line_of('[0] * 100_000')}\)(; [^;]+)*; "
        r"see which tests allocate most with pytest --bump-global --bump-global-top 10", out)
    assert re.search(
        r"test_suite.py::test_over_count: its call made [\d,]+ allocations, over the limit "
        r"of 100 allocations \(@pytest.mark.limit_allocations\(100\)\); where, estimated "
        r"from \d+ samples?: [\d,]+ allocations in "
        # the comprehension's own frame before 3.12, inlined into the test from 3.12
        r"((test_over_count.<locals>.)?<listcomp> "
        rf"\(test_suite.py:{_line_of('str(i) for i')}\) <- test_over_count"
        rf"|test_over_count \(test_suite.py:{_line_of('str(i) for i')}\))", out)
    assert "bump_global.measure(sites=True)" in out
    assert "bump_global: installed by --bump-global, reclaim='classes'" in out


def test_top_summary_lists_the_heaviest_tests(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--bump-global", "--bump-global-top", "2",
                                        "-p", "no:cacheprovider")
    table = figures(result)
    assert list(table) == ["test_suite.py::test_over_bytes", "test_suite.py::test_over_count"]
    assert table["test_suite.py::test_over_bytes"][0] >= 800_000
    assert table["test_suite.py::test_over_count"][1] >= 1000
    assert "by allocations:" in result.outlines


def test_plugin_is_inactive_without_the_option(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_probe="""
import bump_global
def test_not_installed():
    assert not bump_global.is_installed()
""")
    result = suite.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)  # the budgets are not checked
    result.stdout.fnmatch_lines([
        "*3 test(s) have allocation limits (limit_allocated / limit_allocations) that were "
        "not checked: run pytest --bump-global to check them*",
    ])


@pytest.mark.slow  # two pytest sessions
def test_reclaim_option_and_existing_install_are_used(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = suite.runpytest_subprocess("--bump-global", "--bump-global-reclaim", "none",
                                        "-p", "no:cacheprovider")
    assert "reclaim='none'" in result.stdout.str()
    monkeypatch.setenv("BUMP_GLOBAL", "1")
    result = suite.runpytest_subprocess("--bump-global", "-p", "no:cacheprovider")
    assert "installed before pytest started (BUMP_GLOBAL=1)" in result.stdout.str()
    result.assert_outcomes(passed=2, failed=2)


def test_warmup_leaves_first_call_caches_out(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_cache="""
import pytest
_cache = []

def fill():
    if not _cache:
        _cache.extend(str(i) for i in range(1000, 2000))

@pytest.mark.limit_allocations(10, warmup=1)
def test_warm():
    fill()

def test_cold():
    _cache.clear()
    fill()
""")
    result = suite.runpytest_subprocess("--bump-global", "--bump-global-top", "10",
                                        "-p", "no:cacheprovider", "test_cache.py")
    result.assert_outcomes(passed=2)
    table = figures(result)
    assert table["test_cache.py::test_warm"][1] <= 10
    assert table["test_cache.py::test_cold"][1] >= 1000


def test_bad_limit_is_one_clear_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_bad="""
import pytest
@pytest.mark.limit_allocated("ten megabytes")
def test_x():
    pass
""")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "test_bad.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*test_bad.py::test_x: @pytest.mark.limit_allocated: invalid limit 'ten megabytes'*",
    ])


@pytest.mark.slow
def test_figures_are_identical_in_five_fresh_sessions(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makepyfile(test_more="""
import json, re, collections
def test_parse(tmp_path):
    doc = {"k%d" % i: list(range(i)) for i in range(200)}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    assert json.loads((tmp_path / "d.json").read_text()) == doc

def test_regex():
    words = collections.Counter(re.findall(r"\\w+", "the quick brown fox " * 500))
    assert words["fox"] == 500
""")
    # Fresh sessions start from the same state: no bytecode written by the first
    # one, and the same temporary directory, absent at the start (removing an
    # existing one with pathlib interns its names, which a test then finds
    # interned: fewer allocations).  Explicit files: no walk of the growing tree.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    basetemp = suite.path / "basetemp"
    runs = []
    for _ in range(5):
        shutil.rmtree(basetemp, ignore_errors=True)
        result = suite.runpytest_subprocess(
            "--bump-global", "--bump-global-top", "10", "-p", "no:cacheprovider",
            f"--basetemp={basetemp}", "test_suite.py", "test_more.py")
        runs.append(figures(result))
    assert len(runs[0]) == 6
    # Identical, but for a rare outlier: in one full CI run on 3.9 one session of
    # five had test_parse two blocks (48 bytes) above the others (not reproduced in
    # 300 sessions since, nor traced); in another, four blocks (592 bytes of 5.9 MB).
    # So: every test has the same figures in at least four sessions, and an odd one is
    # off by a few blocks only.
    for nodeid in runs[0]:
        values = [run[nodeid] for run in runs]
        common = max(set(values), key=values.count)
        assert values.count(common) >= 4, (nodeid, values)
        for size, count in values:
            assert abs(size - common[0]) <= 1024 and abs(count - common[1]) <= 8, (nodeid, values)


@pytest.mark.slow  # a controller and two worker sessions
def test_xdist_workers_install_and_report_their_figures(suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = suite.runpytest_subprocess("--bump-global", "--bump-global-top", "10",
                                        "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*test_suite.py::test_over_bytes: its call allocated*"])
    assert len(figures(result)) == 4  # the workers' figures reach the controller


def test_empty_tests_measure_zero(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_empty="""
import pytest
def test_empty():
    pass

def test_fixtures(tmp_path, monkeypatch, capsys):
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    pass

class TestClass:
    def test_method(self):
        pass
""")
    result = suite.runpytest_subprocess("--bump-global", "--bump-global-top", "10",
                                        "-p", "no:cacheprovider", "test_empty.py")
    table = figures(result)
    assert len(table) == 5
    for nodeid, measured in table.items():
        if nodeid.endswith("test_fixtures") and sys.version_info < (3, 11):
            continue  # 3.9/3.10: its frame object, made by the call, is the call's
        assert measured == (0, 0), nodeid


def test_numpy_option_counts_array_data(suite: pytest.Pytester) -> None:
    pytest.importorskip("numpy")
    suite.makepyfile(test_arrays="""
import numpy as np
import pytest

@pytest.mark.limit_allocated("1 MB")
def test_array():
    np.ones(1_000_000)
""")
    with_numpy = suite.runpytest_subprocess("--bump-global", "--bump-global-numpy",
                                            "-p", "no:cacheprovider", "test_arrays.py")
    with_numpy.assert_outcomes(failed=1)
    with_numpy.stdout.fnmatch_lines(["*reclaim='classes', numpy=True*",
                                     "*test_array: its call allocated 8,00*"])


def test_a_suite_that_turns_warnings_into_errors_runs_under_bump_global_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BUMP_GLOBAL=1 the package is imported before pytest marks the plugin's
    distribution for assertion rewriting: no warning may come of it (toolz's suite
    runs with filterwarnings = error)."""
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile("def test_one():\n    assert 1 + 1 == 2\n")
    monkeypatch.setenv("BUMP_GLOBAL", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "PytestAssertRewriteWarning" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)


def test_pytest_is_told_not_to_rewrite_the_package() -> None:
    """The condition pytest checks before warning about an already imported module of a
    plugin's distribution (a regular install lists bump_global among them; an editable
    one lists only its finder, so the subprocess test above can only fail there)."""
    from _pytest.assertion.rewrite import AssertionRewriter

    import bump_global

    assert AssertionRewriter.is_rewrite_disabled(bump_global.__doc__ or "")
