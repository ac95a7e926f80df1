"""The CPython versions the package says it supports are the ones CI tests and wheels build."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent


def classifier_versions() -> List[str]:
    text = (ROOT / "pyproject.toml").read_text()
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


def wheel_versions() -> List[str]:
    text = (ROOT / "pyproject.toml").read_text()
    (build,) = re.findall(r'^build = "([^"]*)"', text, flags=re.M)
    return [f"3.{tag[3:]}" for tag in re.findall(r"cp3\d+", build)]


def ci_versions() -> List[str]:
    text = (ROOT / ".ci" / "run").read_text()
    (line,) = re.findall(r'^VERSIONS=\$\{CI_VERSIONS:-"([^"]*)"\}', text, flags=re.M)
    return line.split()


def test_classifiers_wheels_and_ci_name_the_same_versions() -> None:
    expected = [f"3.{minor}" for minor in range(9, 16)]
    assert classifier_versions() == expected
    assert wheel_versions() == expected
    assert ci_versions() == expected


def test_the_running_interpreter_is_a_supported_one() -> None:
    assert "%d.%d" % sys.version_info[:2] in classifier_versions()
