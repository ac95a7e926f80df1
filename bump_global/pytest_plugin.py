"""pytest plugin: allocation budgets measured exactly by bump_global (docs/pytest.md).

Registered through the ``pytest11`` entry point; it does nothing unless asked:

- ``pytest --bump-global`` installs the allocator before the tests run (with
  ``reclaim="classes"`` by default, so a whole suite's memory stays bounded;
  ``--bump-global-reclaim`` picks another policy) and measures the call of
  every test function with :func:`bump_global.measure`;
- ``@pytest.mark.limit_allocated("10 MB")`` and
  ``@pytest.mark.limit_allocations(50_000)`` fail a test whose call allocates
  more (``warmup=N`` calls the function N times unmeasured first);
- ``--bump-global-top N`` lists the tests that allocate most.

Without ``--bump-global`` the markers are registered (``--strict-markers``
works) but not checked, and the terminal summary says so in one line.
"""

from __future__ import annotations

import gc
import inspect
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from bump_global._config import RECLAIM, format_size, parse_bytes

_MARKERS = ("limit_allocated", "limit_allocations")
_PROPERTY = "bump_global"  # user_properties key: (allocations, bytes) of the call
_stash_limits = pytest.StashKey[Dict[str, Tuple[int, int, str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bump_global", "allocation budgets (bump_global)")
    group.addoption(
        "--bump-global", action="store_true", default=False,
        help="run the session under bump_global and measure each test's call; check "
             "the limit_allocated / limit_allocations markers",
    )
    group.addoption(
        "--bump-global-reclaim", choices=sorted(RECLAIM), default="classes",
        help="reclaim policy for --bump-global (default: classes, which keeps a whole "
             "suite's memory bounded; none is the pure bump allocator)",
    )
    group.addoption(
        "--bump-global-numpy", action="store_true", default=False,
        help="with --bump-global: serve numpy's array data from the region too "
             "(install(numpy=True)), so that the figures count array bytes",
    )
    group.addoption(
        "--bump-global-top", type=int, default=0, metavar="N",
        help="with --bump-global: list the N tests whose calls allocate most",
    )


def parse_limit(value: object) -> int:
    """Bytes (or a count) from an int or a string such as ``"10 MB"``, ``"512KiB"``.

    Units are binary, as everywhere in bump_global: K, KB and KiB are 1024.
    Raises ValueError saying what is accepted.
    """
    return parse_bytes(value, "limit")  # type: ignore[arg-type]


def _read_limits(item: pytest.Item) -> Dict[str, Tuple[int, int, str]]:
    """marker name -> (limit, warmup, how it was written), for the markers on `item`."""
    limits = {}
    for name in _MARKERS:
        marker = item.get_closest_marker(name)
        if marker is None:
            continue
        where = f"{item.nodeid}: @pytest.mark.{name}"
        if len(marker.args) != 1 or set(marker.kwargs) - {"warmup"}:
            example = '"10 MB"' if name == "limit_allocated" else "1000"
            raise pytest.UsageError(
                f"{where} takes one limit and an optional warmup=N, e.g. "
                f"@pytest.mark.{name}({example})"
            )
        written = marker.args[0]
        try:
            if name == "limit_allocations" and not isinstance(written, int):
                raise ValueError(f"invalid limit {written!r}: expected an int (a count)")
            limit = parse_limit(written)
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        warmup = marker.kwargs.get("warmup", 0)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise pytest.UsageError(
                f"{where}: warmup={warmup!r}: expected a number of unmeasured calls >= 0"
            )
        limits[name] = (limit, warmup, repr(written))
    return limits


class _State:
    """What the plugin keeps for a session."""

    def __init__(self, active: bool, top: int) -> None:
        self.active = active
        self.top = top
        self.unchecked = 0  # tests with limits not checked (no --bump-global)
        self.figures: List[Tuple[str, int, int]] = []  # (nodeid, allocations, bytes)
        self.how = ""


_state_key = pytest.StashKey[_State]()


def _install(reclaim: str, numpy: bool) -> str:
    """Install bump_global (or keep the install BUMP_GLOBAL=1 made); say which."""
    from bump_global._api import install, is_installed, stats
    from bump_global._errors import BumpGlobalError

    if is_installed():
        reclaim = stats().reclaim
        return f"installed before pytest started (BUMP_GLOBAL=1), reclaim={reclaim!r}"
    try:
        install(reclaim=reclaim, numpy=numpy)
    except (BumpGlobalError, ValueError) as exc:
        raise pytest.UsageError(f"--bump-global: {exc}") from None
    return f"installed by --bump-global, reclaim={reclaim!r}" + (", numpy=True" * numpy)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # As early as a plugin can: before conftest files are imported.
    if early_config.known_args_namespace.bump_global:
        early_config.stash[_state_key] = _State(True, 0)
        namespace = early_config.known_args_namespace
        how = _install(namespace.bump_global_reclaim, namespace.bump_global_numpy)
        early_config.stash[_state_key].how = how


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "limit_allocated(size, warmup=0): fail the test if its call allocates more bytes "
        "(e.g. '10 MB'; checked with --bump-global)",
    )
    config.addinivalue_line(
        "markers",
        "limit_allocations(count, warmup=0): fail the test if its call makes more "
        "allocations (checked with --bump-global)",
    )
    active = bool(config.getoption("bump_global"))
    del _reports[:]
    state = config.stash.get(_state_key, None)
    if state is None:
        state = _State(active, 0)
        config.stash[_state_key] = state
        if active:  # e.g. an xdist worker, or the plugin given with -p
            state.how = _install(config.getoption("bump_global_reclaim"),
                                 config.getoption("bump_global_numpy"))
    state.top = config.getoption("bump_global_top") or 0
    if state.top < 0:
        raise pytest.UsageError(f"--bump-global-top {state.top}: expected a count >= 0")


def pytest_report_header(config: pytest.Config) -> Optional[str]:
    state = config.stash.get(_state_key, None)
    if state is not None and state.active:
        return f"bump_global: {state.how}; each test's call is measured"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    state = config.stash[_state_key]
    for item in items:
        limits = _read_limits(item)  # bad markers are reported with or without the flag
        if limits:
            item.stash[_stash_limits] = limits
            if not state.active:
                state.unchecked += 1


def _bind(
    func: Callable[..., Any], kwargs: Dict[str, Any]
) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The fixtures as positional arguments where possible: a call with keywords
    builds a names tuple inside the measured window, a positional one does not."""
    try:
        bound = inspect.signature(func).bind(**kwargs)
    except (TypeError, ValueError):
        return (), kwargs
    return bound.args, bound.kwargs


#: Sites named in a failing limit's message.
_SITES_SHOWN = 3


def _sites_rate(limits: Dict[str, Tuple[int, int, str]]) -> int:
    """The mean sampling interval for a call with limits: about 64 samples at the
    byte limit (between 4 KiB and 256 KiB), 16 KiB for a count limit alone."""
    if "limit_allocated" in limits:
        return min(256 << 10, max(4 << 10, limits["limit_allocated"][0] // 64))
    return 16 << 10


def _where(m: Any, what: str) -> str:
    """Where the call's bytes (or allocations) came from: its top sites, estimated
    from the samples taken during the call, each with its caller unless that is
    this plugin (which calls the test function)."""
    from bump_global._sites import describe

    key = "bytes" if what == "limit_allocated" else "allocations"
    sites = sorted(m.sites(50), key=lambda site: -site[key])[:_SITES_SHOWN]
    if not sites:
        return ""
    shown = []
    for site in sites:
        path = [site] + [c for c in site["callers"][:1]
                         if os.path.abspath(c["file"]) != os.path.abspath(__file__)]
        where = " <- ".join(describe(location) for location in path)
        shown.append(f"{format_size(site['bytes'])} in {where}" if key == "bytes"
                     else f"{site['allocations']:,.0f} allocations in {where}")
    samples = f"{m.samples} sample{'s' if m.samples != 1 else ''}"
    return f"; where, estimated from {samples}: " + "; ".join(shown)


def _message(item: pytest.Item, what: str, measured: int, limit: int, written: str,
             unit: Callable[[int], str], where: str) -> str:
    limit_text = unit(limit).split(" ", 1)[1]  # "10,240 bytes (10.0 KiB)"
    return (
        f"{item.nodeid}: its call {unit(measured)}, over the limit of {limit_text} "
        f"(@pytest.mark.{what}({written})){where}; see which tests allocate most with "
        "pytest --bump-global --bump-global-top 10, and which parts of this one with "
        "`with bump_global.measure(sites=True) as m:` and m.sites()"
    )


def _bytes(n: int) -> str:
    return f"allocated {n:,} bytes ({format_size(n)})"


def _count(n: int) -> str:
    return f"made {n:,} allocations"


def _check(item: pytest.Function, m: Any, limits: Dict[str, Tuple[int, int, str]]) -> None:
    """Record the call's figures on the report; fail the test if over a limit."""
    item.user_properties.append((_PROPERTY, (m.allocations, m.bytes)))
    failures = []
    if "limit_allocated" in limits and m.bytes > limits["limit_allocated"][0]:
        limit, _, written = limits["limit_allocated"]
        failures.append(_message(item, "limit_allocated", m.bytes, limit, written, _bytes,
                                 _where(m, "limit_allocated")))
    if "limit_allocations" in limits and m.allocations > limits["limit_allocations"][0]:
        limit, _, written = limits["limit_allocations"]
        failures.append(_message(item, "limit_allocations", m.allocations, limit, written,
                                 _count, _where(m, "limit_allocations")))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Swap the test function for one that measures its call, while pytest calls it.

    Only the function's own call is inside the measured block: pytest's fixture
    handling and this plugin's bookkeeping happen before or after it."""
    state = pyfuncitem.config.stash[_state_key]
    original = pyfuncitem.obj
    if not state.active or inspect.iscoroutinefunction(original):
        yield
        return
    from bump_global._measure import measure

    limits = pyfuncitem.stash.get(_stash_limits, {})
    warmup = max((w for _, w, _ in limits.values()), default=0)

    def measured(**kwargs: Any) -> Any:
        args, keywords = _bind(original, kwargs)
        for _ in range(warmup):
            original(*args, **keywords)
        gc.collect(0)  # garbage left by earlier tests does not trigger a collection here
        # A call with limits is sampled, so that a failure can say where its
        # bytes came from; sampling allocates nothing from the region.
        m = measure(sites=_sites_rate(limits) if limits else None)
        if keywords:
            with m:
                value = original(*args, **keywords)
        else:
            with m:
                value = original(*args)
        _check(pyfuncitem, m, limits)
        return value

    pyfuncitem.obj = measured
    try:
        yield
    finally:
        pyfuncitem.obj = original


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs where the report is shown: in the controller under pytest-xdist too
    # (user_properties travel with the report).
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == _PROPERTY:
            _reports.append((report.nodeid, int(value[0]), int(value[1])))


_reports: List[Tuple[str, int, int]] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    write = terminalreporter.write_line
    if state.unchecked:
        terminalreporter.section("bump_global")
        write(
            f"{state.unchecked} test(s) have allocation limits (limit_allocated / "
            "limit_allocations) that were not checked: run pytest --bump-global to check them"
        )
    if state.top and not state.active:
        terminalreporter.section("bump_global")
        write(f"--bump-global-top {state.top} lists nothing without --bump-global")
    if state.active and state.top and _reports:
        terminalreporter.section(f"bump_global: top {state.top} tests by allocation")
        width = max(len(nodeid) for nodeid, _, _ in _reports)
        for title, key in (("bytes", 2), ("allocations", 1)):
            write(f"by {title}:")
            ranked = sorted(_reports, key=lambda r: (-r[key], r[0]))[: state.top]
            for nodeid, count, size in ranked:
                write(f"  {size:>15,} bytes {count:>12,} allocations  {nodeid:<{width}}")
