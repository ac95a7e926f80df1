"""A user without a compiler: the wheel, built from the sdist, installs and runs the quick start.

The sdist is built from this checkout and the wheel from that sdist (what ``python -m build``
does by default), so a source file missing from MANIFEST.in fails the build or the checks
below.  The wheel then goes into a fresh venv where no compiler can run (``CC=false``,
``CXX=false``, ``--no-index --no-deps --no-build-isolation``), and the README's quick-start
command runs there, followed by the import and ``BUMP_GLOBAL=1`` checks.

POSIX only: ``CC=false`` denies the compiler only where setuptools honours ``CC``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = (".c", ".h", ".py", ".pyi")
# Every extension setup.py declares (the runtime ones and the test probes the suite imports).
EXTENSIONS = re.findall(r'Extension\(\s*"bump_global\.(\w+)"', (ROOT / "setup.py").read_text())
PTH = "bump_global_activate.pth"
NO_COMPILER = {"CC": "false", "CXX": "false"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="CC=false only denies a POSIX compiler"),
]


class Built(NamedTuple):
    sdist: Path
    wheel: Path


class Venv(NamedTuple):
    python: Path
    bin: Path
    site_packages: Path
    env: Dict[str, str]
    pip_output: str


def _clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("BUMP_GLOBAL", "PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX")):
            del env[name]
    env.update(extra or {})
    return env


def _run(cmd: Sequence[object], *, env: Dict[str, str], cwd: Path,
         timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(part) for part in cmd], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def _build_module_env(tmp: Path) -> Dict[str, str]:
    """An environment in which ``python -m build`` imports; skip if build cannot be had."""
    env = _clean_env()
    spec = importlib.util.find_spec("build")
    # A build/ directory of setuptools (here, or in the current directory) is found as a
    # namespace package with no loader: that is not the build tool.
    if spec is not None and spec.loader is not None:
        if "PYTHONPATH" in os.environ:  # it may be where build was found
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return env
    target = tmp / "build-tool"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target",
                           str(target), "build"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"the 'build' module is not installed and pip could not install it:\n"
                    f"{proc.stderr.strip()[-2000:]}")
    env["PYTHONPATH"] = str(target)
    return env


def _quick_start_command() -> List[str]:
    """The README's quick-start command, without its ``pip install .`` (the wheel replaces it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"```sh\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's quick start has no ```sh block"
    first = block.group(1).strip().splitlines()[0]
    install, sep, command = first.partition("&&")
    assert sep and install.strip() == "pip install .", (
        f"the quick start's first command changed ({first!r}); update this test to match"
    )
    return shlex.split(command)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist of this checkout and the wheel built from that sdist."""
    tmp = tmp_path_factory.mktemp("dist")
    env = _build_module_env(tmp)
    # A copy of the checkout without its build products, so that building writes nothing
    # (egg-info) into the checkout and no in-place extension can stand in for a source file.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.so", "*.pyd", "*.egg-info", "build", "dist", ".venv*",
        ".pytest_cache", ".ruff_cache", ".mypy_cache"))
    out = tmp / "dist"
    # With no --sdist/--wheel, build makes the sdist, then the wheel from the unpacked sdist.
    _run([sys.executable, "-m", "build", "--outdir", out, source], env=env, cwd=tmp, timeout=600)
    sdists = sorted(out.glob("*.tar.gz"))
    wheels = sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Built(sdists[0], wheels[0])


@pytest.fixture(scope="module")
def venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv with psutil (a wheel) and the built wheel, installed where no compiler runs."""
    tmp = tmp_path_factory.mktemp("venv")
    home = tmp / "venv"
    _run([sys.executable, "-m", "venv", home], env=_clean_env(), cwd=tmp)
    bin_dir = home / "bin"
    python = bin_dir / "python"
    env = _clean_env({**NO_COMPILER, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                      "VIRTUAL_ENV": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    # The dependency, as a binary wheel fetched by this environment's pip (it has an index).
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
          "--dest", wheels, "psutil>=5.8"], env=_clean_env(), cwd=tmp)
    pip = [python, "-m", "pip", "install", "--no-index", "--only-binary=:all:",
           "--no-build-isolation"]
    out = _run([*pip, "--find-links", wheels, "psutil"], env=env, cwd=tmp).stdout
    out += _run([*pip, "--no-deps", built.wheel], env=env, cwd=tmp).stdout
    out += _run([python, "-m", "pip", "check"], env=env, cwd=tmp).stdout
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
                env=env, cwd=tmp).stdout.strip()
    return Venv(python, bin_dir, Path(site), env, out)


def test_sdist_holds_every_source_file_stub_and_the_quick_start_workload(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {name[len(top) + 1:] for name in tar.getnames()}
    package = ROOT / "bump_global"
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
        and (path.suffix in SOURCE_SUFFIXES or path.name == "py.typed")
    }
    expected |= {PTH, "setup.py", "pyproject.toml", "README.md", "MANIFEST.in",
                 "tests/conftest.py", "scripts/workloads/build_tuples.py"}
    assert any(name.endswith(".c") for name in expected)
    assert sorted(expected - names) == []
    built_products = [n for n in names if n.endswith((".so", ".pyd", ".o", ".pyc"))]
    assert built_products == []


def test_wheel_holds_extensions_stubs_and_startup_hook_but_no_c_sources(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        names = set(whl.namelist())
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert "_core" in EXTENSIONS, EXTENSIONS
    for ext in EXTENSIONS:
        assert f"bump_global/{ext}{ext_suffix}" in names
    stubs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bump_global").rglob("*.pyi")}
    assert stubs and stubs <= names
    assert {PTH, "bump_global/py.typed", "bump_global/commands/__init__.py"} <= names
    assert [n for n in names if n.endswith((".c", ".h"))] == []


def test_wheel_installs_into_a_fresh_venv_without_building(venv: Venv) -> None:
    assert re.search(r"Successfully installed bump[-_]global-", venv.pip_output)
    assert "Building wheel" not in venv.pip_output
    assert "No broken requirements found" in venv.pip_output
    assert (venv.site_packages / PTH).is_file()


def test_extensions_import_from_the_installed_wheel(venv: Venv, tmp_path: Path) -> None:
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)")
    names = ["bump_global"] + [f"bump_global.{ext}" for ext in EXTENSIONS]
    paths = _run([venv.python, "-c", code, *names], env=venv.env, cwd=tmp_path).stdout.split()
    assert len(paths) == len(names)
    for path in paths:
        assert Path(path).parent == venv.site_packages / "bump_global"


def test_readme_quick_start_runs_from_the_wheel(venv: Venv) -> None:
    command = _quick_start_command()
    assert command[:3] == ["bump-global", "run", "--report"], command
    executable = venv.bin / command[0]
    assert executable.is_file(), "the wheel did not install the bump-global command"
    # Run where the README runs it: the top of a checkout (the workload path is relative).
    proc = _run([executable, *command[1:]], env=venv.env, cwd=ROOT, timeout=300)
    assert "bump_global report" in proc.stderr
    assert re.search(r"blocks\s+[\d,]+ allocations", proc.stderr), proc.stderr


def test_bump_global_env_activates_the_allocator_through_the_wheels_pth(
    venv: Venv, tmp_path: Path
) -> None:
    code = "import bump_global; print(bump_global.is_installed())"
    off = _run([venv.python, "-c", code], env=venv.env, cwd=tmp_path)
    on = _run([venv.python, "-c", code], env={**venv.env, "BUMP_GLOBAL": "1"}, cwd=tmp_path)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True"), on.stderr
