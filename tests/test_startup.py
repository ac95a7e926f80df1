"""BUMP_GLOBAL=1 start-up: the fast path of bump_global/_startup.py installs exactly the
configuration the full path would, loads only what it needs, and hands every other
case to bump_global/_activate.py."""

from __future__ import annotations

import json
import sys

import pytest

import bump_global
from bump_global import _config
from bump_global._config import Config, default_size

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the fast path is Linux only")

STATE = """
    import json, sys
    from bump_global import _api
    print(json.dumps({
        "config": repr(_api.installed_config()),
        "modules": sorted(m for m in sys.modules if m.startswith("bump_global")),
        "mmap": "mmap" in sys.modules,
    }))
"""


def test_fast_path_defaults_are_the_option_tables() -> None:
    # The fast path passes the engine the defaults of the one option table.
    options = _config.engine_options()
    assert set(options) == {o.name for o in _config.INSTALL_OPTIONS} - {"size"}
    assert options == Config.from_values({}).engine_options()
    assert options["scope"] == _config.SCOPES[_config.OPTIONS["scope"].default][0]


def test_default_size_is_half_the_memory_limit() -> None:
    assert _config.MIN_SIZE == 16 << 20 and _config.AUTO_SIZE_MAX == 1 << 40
    limit, _ = _config.memory_limit()
    assert limit is None or default_size()[0] == _config.auto_size(limit)
    assert _config.auto_size(1 << 10) == _config.MIN_SIZE
    assert _config.auto_size(1 << 50) == _config.AUTO_SIZE_MAX
    assert _config.auto_size((3 << 30) + 12345) == 1536 << 20


@linux_only
def test_bump_global_1_alone_installs_the_defaults_without_the_full_path(py) -> None:
    state = json.loads(py(STATE, env={"BUMP_GLOBAL": "1"}).stdout)
    assert state["config"] == repr(Config.from_values({}))
    # what start-up loaded, plus _api (installed_config) and what it imports
    assert "bump_global._activate" not in state["modules"]
    assert "bump_global._measure" not in state["modules"]


@linux_only
def test_start_up_loads_only_the_startup_module_and_the_core(py) -> None:
    out = py("""
        import sys
        print(sorted(m for m in sys.modules if m.startswith("bump_global")), "mmap" in sys.modules)
    """, env={"BUMP_GLOBAL": "1"}).stdout
    modules = ["bump_global", "bump_global._config", "bump_global._core", "bump_global._gc",
               "bump_global._records", "bump_global._startup"]
    if sys.version_info >= (3, 12):  # the subinterpreter guards
        modules.append("bump_global._subinterp")
    assert out == f"{modules} False\n"


@pytest.mark.parametrize("extra", [{"BUMP_GLOBAL_SIZE": "2G"}, {"BUMP_GLOBAL_GC": "keep"},
                                   {"BUMP_GLOBAL": "yes", "BUMP_GLOBAL_RECLAIM": "classes"}])
def test_any_option_takes_the_full_path(py, extra) -> None:
    env = {"BUMP_GLOBAL": "1", **extra}
    state = json.loads(py(STATE, env=env).stdout)
    assert "bump_global._activate" in state["modules"]
    values = {k[len("BUMP_GLOBAL_"):].lower(): v for k, v in extra.items()
              if k.startswith("BUMP_GLOBAL_")}
    expected = Config.from_values({"size": values.pop("size", "auto"), **values})
    assert state["config"] == repr(expected)


def test_a_bad_bump_global_value_still_gets_its_message(py) -> None:
    proc = py("print('ran')", env={"BUMP_GLOBAL": "maybe"})
    assert proc.stdout == "ran\n"
    assert proc.stderr.startswith("bump_global: BUMP_GLOBAL='maybe': invalid value")


def test_report_wall_time_counts_from_the_fast_install(py) -> None:
    out = py("""
        import time, bump_global
        from bump_global import _startup
        assert _startup.installed_at is not None and _startup.installed_at <= time.perf_counter()
        print(bump_global.report_dict()["wall_time_s"] is not None)
    """, env={"BUMP_GLOBAL": "1"}).stdout
    assert out == "True\n"


def test_lazy_names_resolve_and_unknown_ones_raise() -> None:
    assert bump_global.measure.__module__ == "bump_global._measure"
    assert bump_global.Stats.__name__ == "Stats"
    assert bump_global.install.__module__ == "bump_global"
    assert bump_global.report.__module__ == "bump_global"
    assert bump_global.BumpGlobalError.__module__ == "bump_global._errors"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        bump_global.nothing_here  # noqa: B018
    assert set(bump_global.__all__) <= set(dir(bump_global))


def test_core_reserve_gives_fresh_writable_space_or_none() -> None:
    from bump_global import _core

    base = _core.reserve(1 << 30)
    if not sys.platform.startswith("linux"):
        assert base is None
        return
    assert isinstance(base, int) and base % 4096 == 0
    assert _core.reserve(0) is None
