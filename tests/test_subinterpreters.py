"""Subinterpreters: own-GIL ones are refused while MEM/OBJ are served."""

import importlib.util
import json
import sys

import pytest

HAVE = [m for m in ("_xxsubinterpreters", "_interpreters") if importlib.util.find_spec(m)]


@pytest.mark.skipif(not HAVE, reason="no subinterpreter module in this Python")
def test_subinterpreters(py):
    module = HAVE[-1]
    if module == "_interpreters":
        shared, run = "config='legacy'", "mod.exec(iid, code)"
    else:
        shared, run = "isolated=False", "mod.run_string(iid, code)"
    out = py(f"""
        import bump_global, json, {module} as mod
        bump_global.install("1G")
        errors = []
        try:
            mod.create()
        except bump_global.BumpGlobalError as exc:
            errors.append(str(exc))
        iid = mod.create({shared}) if {sys.version_info >= (3, 12)} else mod.create()
        code = "data = [str(i) * 3 for i in range(20000)]; assert data[-1] == '19999' * 3"
        before = bump_global.stats().used
        {run}
        mod.destroy(iid)
        print(json.dumps([errors, bump_global.stats().used - before]))
    """).stdout
    errors, grown = json.loads(out)
    if sys.version_info >= (3, 12):
        assert len(errors) == 1 and "its own GIL" in errors[0] and shared in errors[0]
    else:
        assert errors == []  # the GIL is shared: nothing to refuse
    assert grown > 20000 * 40  # the subinterpreter allocated from the region


@pytest.mark.skipif(not HAVE or sys.version_info < (3, 12), reason="own GIL from 3.12")
def test_raw_scope_allows_own_gil_subinterpreters(py):
    module = HAVE[-1]
    out = py(f"""
        import bump_global, {module} as mod
        bump_global.install("1G", scope="raw")
        iid = mod.create()
        mod.destroy(iid)
        print("ok")
    """).stdout
    assert out == "ok\n"
