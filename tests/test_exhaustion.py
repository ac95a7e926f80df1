"""Programs that fill the region under on_exhausted="error" end, whatever their handler does.

Each program fills a 64 MiB region until MemoryError, then its ``except MemoryError``
handler does something ordinary: re-raise, chain, import, log, warn, start a thread, run
atexit handlers, call ``bump_global.report()``, start a child process.  Every program runs
in a fresh interpreter, through ``bump-global run`` and through ``BUMP_GLOBAL=1``, under a
timeout: it must end, with its own output and traceback and its own exit status.  Two
fills: many small objects (the failing request is small, or the list holding them
growing), and one buffer growing by large steps (the failing request is megabytes).

A handler that keeps allocating once the region and what the allocator keeps for the
unwinding are used up ends with one line from the allocator and a non-zero status.
The "fallback" policy still falls back.  (core/exhausted.c says why the unwinding must
never see a second MemoryError: CPython's Thread.start() waits forever for a thread that
died of one.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

from bump_global._launch import child_environment

pytestmark = pytest.mark.slow  # 40-odd interpreters, each filling 64 MiB

SIZE = "64M"
TIMEOUT = 60  # seconds; each program ends in about one

FILLS = {
    # Many small objects: the list holding them grows too, so the failing request is a
    # string or the list's next (multi-megabyte) block.
    "small": """\
        keep = []
        try:
            while True:
                keep.append(str(len(keep)))
        except MemoryError as exc:
        """,
    # One buffer growing by megabyte steps: the failing request is megabytes.
    "large": """\
        buf = bytearray()
        try:
            while True:
                buf += bytes(1 << 20)
        except MemoryError as exc:
        """,
}


class Handler(NamedTuple):
    body: str
    status: int
    stdout: str = ""            # expected at the end of stdout
    stderr: List[str] = []      # expected in stderr, in this order


HANDLERS: Dict[str, Handler] = {
    "reraise": Handler("raise", 1, stderr=["Traceback (most recent call last)",
                                           "MemoryError"]),
    "chain": Handler("raise ValueError('handler failed')", 1, stderr=[
        "MemoryError", "During handling of the above exception, another exception occurred",
        "ValueError: handler failed"]),
    "cause": Handler("raise RuntimeError('out of room') from exc", 1, stderr=[
        "MemoryError", "The above exception was the direct cause of the following exception",
        "RuntimeError: out of room"]),
    "name_error": Handler("undefined_name", 1, stderr=[
        "NameError: name 'undefined_name' is not defined"]),
    "import": Handler("""\
        import decimal, json
        print(json.dumps({"caught": type(exc).__name__}), decimal.Decimal("1.5") * 2)
        sys.exit(3)""", 3, stdout='{"caught": "MemoryError"} 3.0\n'),
    "log": Handler("""\
        import logging
        logging.basicConfig(format="%(levelname)s %(message)s")
        logging.error("out of room: %s", type(exc).__name__)
        sys.exit(4)""", 4, stderr=["ERROR out of room: MemoryError"]),
    "warn": Handler("""\
        import warnings
        warnings.warn("out of room")
        sys.exit(5)""", 5, stderr=["UserWarning: out of room"]),
    "thread": Handler("""\
        import threading
        t = threading.Thread(target=print, args=("thread ran",))
        t.start()
        t.join()
        sys.exit(6)""", 6, stdout="thread ran\n"),
    "atexit": Handler("""\
        import atexit
        atexit.register(print, "atexit ran")
        raise""", 1, stdout="atexit ran\n", stderr=["MemoryError"]),
    "report": Handler("""\
        import bump_global
        print("the region was full" in bump_global.report())
        sys.exit(7)""", 7, stdout="True\n"),
    # One buffer grown without end: past what the reserve could serve, its growth is a
    # request of the program's own that fails (MemoryError), not the unwinding's.
    "grow": Handler("""\
        chunk = bytes(4096)
        grown = bytearray()
        while True:
            grown += chunk""", 1, stderr=["grown += chunk", "MemoryError"]),
    "child": Handler("""\
        import subprocess
        subprocess.run([sys.executable, "-c", "print('child ran')"], check=True)
        sys.exit(8)""", 8, stdout="child ran\n"),
}


def program(fill: str, body: str) -> str:
    handler = textwrap.indent(textwrap.dedent(body), "    ")
    return "import sys\n" + textwrap.dedent(FILLS[fill]) + handler + "\n"


def bump_global_command() -> List[str]:
    """The bump-global console script beside this python, else python -m bump_global."""
    script = Path(sys.executable).with_name("bump-global")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bump_global"]


def run(how: str, path: Path, on_exhausted: str = "error",
        extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run the script at `path` under the allocator; fail the test if it does not end."""
    env = child_environment(**(extra_env or {}))
    if how == "cli":
        args = [*bump_global_command(), "run", "--size", SIZE, "--on-exhausted", on_exhausted,
                str(path)]
    else:
        args = [sys.executable, str(path)]
        env.update(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE=SIZE, BUMP_GLOBAL_ON_EXHAUSTED=on_exhausted)
    try:
        return subprocess.run(args, capture_output=True, text=True, env=env, cwd=path.parent,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        pytest.fail(f"{how}: {path.name} did not end within {TIMEOUT} s (a hang)\n{err[-3000:]}")


def check_in_order(text: str, parts: List[str]) -> None:
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} missing (in order) from:\n{text[-4000:]}"
        at = found + len(part)


@pytest.mark.parametrize("how", ["cli", "env"])
@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("kind", list(HANDLERS))
def test_a_program_that_fills_the_region_ends_as_its_handler_says(
        tmp_path: Path, kind: str, fill: str, how: str) -> None:
    handler = HANDLERS[kind]
    script = tmp_path / f"{kind}_{fill}.py"
    script.write_text(program(fill, handler.body))
    proc = run(how, script)
    assert proc.returncode == handler.status, proc.stderr[-4000:]
    assert proc.stdout.endswith(handler.stdout), (proc.stdout[-2000:], proc.stderr[-2000:])
    check_in_order(proc.stderr, handler.stderr)
    if handler.stderr and "Traceback" in proc.stderr:
        # The traceback is the program's own: its file and line, not a dump of the object.
        assert f'File "{script}"' in proc.stderr or script.name in proc.stderr, proc.stderr
    assert "lost sys.stderr" not in proc.stderr and "bump_global: out of memory" \
        not in proc.stderr, proc.stderr[-4000:]


TIGHT = """\
import sys, threading
from bump_global import _core
room = int(sys.argv[1])
size = _core.config()["size"]
CONSUMED = _core.STATS_FIELDS.index("consumed")  # what both areas took
keep = []
try:
    while _core.stats()[CONSUMED] < size - room - (1 << 20):
        keep.extend(str(i) for i in range(len(keep), len(keep) + 2000))
    while _core.stats()[CONSUMED] < size - room:
        keep.append(str(len(keep)))
    big = bytearray(8 << 20)   # megabytes: it fails, with `room` bytes left for small ones
except MemoryError:
    t = threading.Thread(target=print, args=("thread ran",))
    t.start()
    t.join()
    sys.exit(6)
"""


@pytest.mark.parametrize("room", [0, 2048, 5000, 7250, 9000, 16384, 40000])
def test_a_thread_started_once_a_large_request_failed_runs(tmp_path: Path, room: int) -> None:
    """The region is left with `room` bytes when a megabyte request fails.  The handler's
    small requests then fill those bytes; wherever the first one that no longer fits
    lands -- in the main thread, or in the new thread before it says it started, which
    Thread.start() waits for with no timeout -- it must be served."""
    script = tmp_path / "tight.py"
    script.write_text(TIGHT)
    env = child_environment(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE=SIZE,
                            BUMP_GLOBAL_ON_EXHAUSTED="error")
    try:
        proc = subprocess.run([sys.executable, str(script), str(room)], capture_output=True,
                              text=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"room={room}: the program did not end within {TIMEOUT} s (a hang)")
    assert (proc.returncode, proc.stdout) == (6, "thread ran\n"), proc.stderr[-3000:]


GREEDY = {
    # New objects, each a request of its own.
    "objects": """\
        more = []
        while True:
            more.append(str(len(more)))""",
    # Buffers of up to 2 MiB, each grown by reallocs.
    "buffers": """\
        chunk = bytes(4096)
        kept = []
        while True:
            grown = bytearray()
            while len(grown) < 2 << 20:
                grown += chunk
            kept.append(grown)""",
}


@pytest.mark.parametrize("how", ["cli", "env"])
@pytest.mark.parametrize("greed", list(GREEDY))
def test_a_handler_that_never_stops_allocating_ends_with_one_line(tmp_path: Path, greed: str,
                                                                  how: str) -> None:
    script = tmp_path / "greedy.py"
    script.write_text(program("small", GREEDY[greed]))
    proc = run(how, script)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("bump_global:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    line = lines[0]
    assert "out of memory" in line and "64 MiB" in line and "on_exhausted='error'" in line
    assert f"exit status {proc.returncode}" in line and "on_exhausted='fallback'" in line


@pytest.mark.parametrize("how", ["cli", "env"])
def test_the_fallback_policy_still_falls_back(tmp_path: Path, how: str) -> None:
    script = tmp_path / "fallback.py"
    script.write_text(textwrap.dedent("""\
        import bump_global
        keep = [str(i) for i in range(1_500_000)]   # about twice the region
        s = bump_global.stats()
        print(len(keep), keep[-1], s.fallback_allocations > 100_000, s.failed_allocations)
        """))
    proc = run(how, script, on_exhausted="fallback")
    assert (proc.returncode, proc.stdout) == (0, "1500000 1499999 True 0\n"), proc.stderr
