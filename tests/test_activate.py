"""Activation from the environment (BUMP_GLOBAL=1) through the installed .pth file.

These tests need bump_global installed in the running environment (``pip install .``
or ``pip install -e .``): the .pth file must be in site-packages.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Dict, List

import pytest

from bump_global import _activate, _config
from bump_global._config import default_size
from bump_global._launch import child_environment

PTH = "bump_global_activate.pth"
REPO_PTH = Path(__file__).resolve().parents[1] / PTH

PROGRAM = """
    import sys
    print("program output")
    sys.stdout.flush()
    sys.exit(3)
"""


def clean_env(**extra: str) -> Dict[str, str]:
    """os.environ without the variables that change how bump_global starts, plus `extra`."""
    return child_environment(**extra)


def stderr_lines(proc: subprocess.CompletedProcess) -> List[str]:
    return proc.stderr.splitlines()


def site_dirs() -> List[Path]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [Path(d) for d in dirs]


def installed_pth() -> Path:
    found = [d / PTH for d in site_dirs() if (d / PTH).is_file()]
    assert found, f"{PTH} is in none of {site_dirs()}: packaging bug, or bump_global not installed"
    return found[0]


def test_pth_file_is_installed_in_site_packages() -> None:
    path = installed_pth()
    dist = metadata.distribution("bump_global")
    assert any(f.name == PTH and len(f.parts) == 1 for f in dist.files or ()), (
        f"{PTH} is not recorded as part of the installed bump_global"
    )
    # site.py reads the .pth files in sorted order: ours must come after the editable
    # install's own, which makes bump_global importable.
    names = sorted(os.listdir(path.parent))
    editable = [n for n in names if n.startswith("__editable__") and "bump_global" in n
                and n.endswith(".pth")]
    assert all(names.index(name) < names.index(PTH) for name in editable), names
    if REPO_PTH.is_file():  # running from the source tree: the install is up to date
        assert path.read_text() == REPO_PTH.read_text(), (
            f"{path} differs from {REPO_PTH}: reinstall (pip install -e .)"
        )


@pytest.mark.parametrize("value", ["1", "true", "Yes", " ON "])
def test_activates_with_defaults(py, value: str) -> None:
    out = py("""
        import json, sys
        assert "bump_global" in sys.modules
        import bump_global
        s = bump_global.stats()
        print(json.dumps([bump_global.is_installed(), s.reserved, s.scope, s.on_exhausted]))
    """, env={"BUMP_GLOBAL": value})
    assert json.loads(out.stdout) == [True, default_size()[0], "python", "fallback"]
    assert out.stderr == ""


@pytest.mark.parametrize(("size", "scope", "on_exhausted", "reserved"), [
    ("256M", "objects", "error", 256 << 20),
    ("2GiB", "raw", "fallback", 2 << 30),
    ("64m", "python", "error", 64 << 20),
])
def test_activates_with_options(py, size: str, scope: str, on_exhausted: str,
                                reserved: int) -> None:
    out = py("""
        import bump_global, json
        s = bump_global.stats()
        print(json.dumps([bump_global.is_installed(), s.reserved, s.scope, s.on_exhausted]))
    """, env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SIZE": size, "BUMP_GLOBAL_SCOPE": scope,
              "BUMP_GLOBAL_ON_EXHAUSTED": on_exhausted})
    assert json.loads(out.stdout) == [True, reserved, scope, on_exhausted]
    assert out.stderr == ""


@pytest.mark.parametrize("env", [
    {},
    {"BUMP_GLOBAL": ""},
    {"BUMP_GLOBAL": "0"},
    {"BUMP_GLOBAL": "off"},
    {"BUMP_GLOBAL": "FALSE"},
    {"BUMP_GLOBAL": "no"},
    # Options without BUMP_GLOBAL=1 do nothing, even bad ones.
    {"BUMP_GLOBAL_SIZE": "lots", "BUMP_GLOBAL_SCOPE": "all", "BUMP_GLOBAL_REPORT": "1"},
    {"BUMP_GLOBAL": "0", "BUMP_GLOBAL_SIZE": "lots"},
])
def test_off_does_not_even_import(py, env: Dict[str, str]) -> None:
    out = py("""
        import sys
        print(sorted(m for m in sys.modules if m.startswith("bump_global")))
    """, env=env)
    assert out.stdout == "[]\n"
    assert out.stderr == ""


@pytest.mark.parametrize(("env", "variable", "hint"), [
    ({"BUMP_GLOBAL": "maybe"}, "BUMP_GLOBAL", "true"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SIZE": "lots"}, "BUMP_GLOBAL_SIZE", "'512M'"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SIZE": "1K"}, "BUMP_GLOBAL_SIZE", "at least 16M"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SCOPE": "all"}, "BUMP_GLOBAL_SCOPE", "'objects'"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_ON_EXHAUSTED": "crash"},
     "BUMP_GLOBAL_ON_EXHAUSTED", "'fallback'"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_REPORT": "loud"}, "BUMP_GLOBAL_REPORT", "true"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_HISTOGRAM": "2"}, "BUMP_GLOBAL_HISTOGRAM", "true"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_GC": "never"}, "BUMP_GLOBAL_GC", "'relaxed'"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_HUGE_PAGES": "big"}, "BUMP_GLOBAL_HUGE_PAGES", "true"),
    ({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_RECLAIM": "some"}, "BUMP_GLOBAL_RECLAIM", "'classes'"),
])
def test_bad_value_is_one_line_and_the_program_runs(
    py, env: Dict[str, str], variable: str, hint: str
) -> None:
    proc = py(PROGRAM, env=env, check=False)
    assert proc.returncode == 3
    assert proc.stdout == "program output\n"
    [line] = stderr_lines(proc)
    assert line.startswith(f"bump_global: {variable}={env[variable]!r}: ")
    assert hint in line
    assert line.endswith("; the allocator is not installed")
    out = py("import bump_global; print(bump_global.is_installed())", env=env)
    assert out.stdout == "False\n"


def test_several_bad_values_are_still_one_line(py) -> None:
    proc = py(PROGRAM, env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SIZE": "lots",
                            "BUMP_GLOBAL_SCOPE": "all"}, check=False)
    assert proc.returncode == 3 and proc.stdout == "program output\n"
    [line] = stderr_lines(proc)
    assert "BUMP_GLOBAL_SIZE='lots'" in line and "BUMP_GLOBAL_SCOPE='all'" in line


def test_report_at_exit_on_stderr_after_the_program(py) -> None:
    proc = py("""
        import atexit, sys
        atexit.register(lambda: print("program atexit", file=sys.stderr, flush=True))
        data = [str(i) * 10 for i in range(10000)]
        print("program output")
    """, env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_REPORT": "1", "BUMP_GLOBAL_SIZE": "512M"})
    assert proc.stdout == "program output\n"
    lines = stderr_lines(proc)
    assert lines[0] == "program atexit"
    report = "\n".join(lines[1:])
    assert "scope python" in report and "512.0 MiB reserved" in report


def test_no_report_unless_asked(py) -> None:
    proc = py("print('x')", env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_REPORT": "0"})
    assert proc.stdout == "x\n" and proc.stderr == ""


def test_histogram_and_prefault_options(py) -> None:
    proc = py("""
        import bump_global
        s = bump_global.stats()
        print(bump_global.is_installed(), s.histogram is not None, s.prefault, s.huge_pages,
              s.gc, s.reclaim)
    """, env={"BUMP_GLOBAL": "1", "BUMP_GLOBAL_HISTOGRAM": "1", "BUMP_GLOBAL_PREFAULT": "0",
              "BUMP_GLOBAL_HUGE_PAGES": "0", "BUMP_GLOBAL_GC": "off",
              "BUMP_GLOBAL_RECLAIM": "last"})
    assert proc.stdout == "True True False False off last\n" and proc.stderr == ""


def test_tracemalloc_refusal_is_one_line(py) -> None:
    proc = py(PROGRAM, env={"BUMP_GLOBAL": "1", "PYTHONTRACEMALLOC": "1"}, check=False)
    assert proc.returncode == 3 and proc.stdout == "program output\n"
    [line] = stderr_lines(proc)
    assert line.startswith("bump_global: BUMP_GLOBAL='1': tracemalloc is tracing")
    assert line.endswith("; the allocator is not installed")


def test_pth_line_reports_an_unimportable_package_in_one_line(py) -> None:
    # Run the installed .pth line as site.py does, with bump_global made unimportable.
    proc = py("""
        import os, sys
        sys.modules["bump_global"] = None
        os.environ["BUMP_GLOBAL"] = "1"
        for line in open(sys.argv[1]):
            if line.startswith("import"):
                exec(line)
        print("program output")
    """, args=[str(installed_pth())])
    assert proc.stdout == "program output\n"
    [line] = stderr_lines(proc)
    assert line.startswith("bump_global: BUMP_GLOBAL is set but bump_global cannot be imported")


@pytest.mark.slow  # 4-6 s: a pytest session under BUMP_GLOBAL=1
def test_pytest_runs_under_the_allocator(tmp_path: Path) -> None:
    test_file = tmp_path / "test_under_bump.py"
    test_file.write_text(textwrap.dedent("""
        import bump_global

        def test_installed():
            assert bump_global.is_installed()
            assert bump_global.stats().allocations > 0
    """))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE="2G"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


# In-process tests of the parsing and the report hook (nothing is installed here).

@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("TRUE", True), ("yes", True), ("On", True),
    ("", False), ("0", False), ("false", False), ("NO", False), (" off ", False),
])
def test_parse_flag(value: str, expected: bool) -> None:
    assert _config.parse_flag(value) is expected


def test_read_options() -> None:
    assert _activate.read_options({}) is None
    assert _activate.read_options({"BUMP_GLOBAL": "0", "BUMP_GLOBAL_SIZE": "x"}) is None
    config, report = _activate.read_options({"BUMP_GLOBAL": "yes", "BUMP_GLOBAL_SIZE": "4G",
                                              "BUMP_GLOBAL_REPORT": "1"})
    assert config == _config.Config.from_values({"size": "4G"})
    assert report == _config.ReportOptions(report=True)
    config, report = _activate.read_options({"BUMP_GLOBAL": "1",
                                              "BUMP_GLOBAL_FLAMEGRAPH": "f.html"})
    assert config.sites and report.flamegraph == "f.html"
    with pytest.raises(ValueError, match=r"^BUMP_GLOBAL_SCOPE='OBJECTS': invalid scope"):
        _activate.read_options({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SCOPE": "OBJECTS"})
