"""bump_global._flamegraph and ``bump-global flamegraph``: the allocation sites of a report
drawn as HTML, folded stacks and speedscope, each read back by its consumer's rules.

The reports are synthetic (built here, with a seeded random generator): a few processes,
dozens of locations, nested stacks.  The browser tests open the page in headless
Chromium and check what it shows after its script ran.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pytest

from bump_global import _flamegraph as fg
from bump_global.commands import main as cli_main

RATE = 524288

# --------------------------------------------------------------- synthetic reports

APP = "/srv/app/myapp"
LIB = "/usr/lib/python3.11"

#: key -> (function, file, line) of the synthetic program.
PLACES: Dict[str, Tuple[str, str, int]] = {
    "module": ("<module>", f"{APP}/__main__.py", 3),
    "main": ("main", f"{APP}/__main__.py", 18),
    "run": ("run", f"{APP}/cli.py", 54),
    "parse_args": ("parse_args", f"{APP}/cli.py", 21),
    "argparse": ("parse_known_args", f"{LIB}/argparse.py", 1901),
    "build_index": ("build_index", f"{APP}/build.py", 40),
    "add_document": ("add_document", f"{APP}/build.py", 77),
    "flush": ("flush", f"{APP}/build.py", 112),
    "load": ("load", f"{APP}/parse.py", 40),
    "tokenize": ("tokenize", f"{APP}/parse.py", 88),
    "parse_record": ("parse_record", f"{APP}/parse.py", 131),
    "decode_field": ("_decode_field", f"{APP}/parse.py", 160),
    "lire": ("lire_entrée", f"{APP}/données.py", 12),
    "index_add": ("Index.add", f"{APP}/index.py", 30),
    "grow": ("Index._grow", f"{APP}/index.py", 58),
    "posting": ("posting_list", f"{APP}/index.py", 91),
    "merge": ("merge_postings", f"{APP}/index.py", 140),
    "doc_init": ("Document.__init__", f"{APP}/model.py", 22),
    "field": ("Field.from_raw", f"{APP}/model.py", 61),
    "json_loads": ("loads", f"{LIB}/json/__init__.py", 346),
    "decode": ("JSONDecoder.decode", f"{LIB}/json/decoder.py", 337),
    "raw_decode": ("JSONDecoder.raw_decode", f"{LIB}/json/decoder.py", 353),
    "findall": ("findall", f"{LIB}/re/__init__.py", 216),
    "compile": ("_compile", f"{LIB}/re/__init__.py", 294),
    "sre_compile": ("compile", f"{LIB}/re/_compiler.py", 743),
    "namedtuple": ("namedtuple", f"{LIB}/collections/__init__.py", 355),
    "counter": ("Counter.update", f"{LIB}/collections/__init__.py", 670),
    "spawn_main": ("spawn_main", f"{LIB}/multiprocessing/spawn.py", 120),
    "spawn_inner": ("_main", f"{LIB}/multiprocessing/spawn.py", 133),
    "worker": ("worker", f"{LIB}/multiprocessing/pool.py", 125),
    "mapstar": ("mapstar", f"{LIB}/multiprocessing/pool.py", 48),
    "bootstrap": ("_bootstrap", f"{LIB}/threading.py", 995),
    "bootstrap_inner": ("_bootstrap_inner", f"{LIB}/threading.py", 1038),
    "thread_run": ("Thread.run", f"{LIB}/threading.py", 975),
    "prefetch": ("prefetch", f"{APP}/io.py", 19),
    "read_chunk": ("read_chunk", f"{APP}/io.py", 44),
    "readinto": ("BufferedReader.readinto", f"{LIB}/_pyio.py", 1033),
    "scanstring": ("py_scanstring", f"{LIB}/json/decoder.py", 69),
    "parse_object": ("JSONObject", f"{LIB}/json/decoder.py", 136),
    "parse_array": ("JSONArray", f"{LIB}/json/decoder.py", 214),
    "write_block": ("write_block", f"{APP}/storage.py", 33),
    "encode_block": ("encode_block", f"{APP}/storage.py", 71),
    "compress": ("compress", f"{LIB}/zlib_compat.py", 12),
    "sort_runs": ("sort_runs", f"{APP}/index.py", 171),
    "stem": ("stem", f"{APP}/text.py", 15),
    "normalize": ("normalize", f"{APP}/text.py", 48),
    "casefold": ("casefold_all", f"{APP}/text.py", 77),
    "dataclass_init": ("__init__", "<string>", 3),
    "copy": ("deepcopy", f"{LIB}/copy.py", 128),
    "copy_dict": ("_deepcopy_dict", f"{LIB}/copy.py", 227),
    "no_stack": (fg.NO_STACK, "", 0),
    "truncated": ("[truncated]", "", 0),
}

#: caller -> callees: the synthetic program's call graph.
CALLS: Dict[str, List[str]] = {
    "module": ["main"],
    "main": ["run", "run", "run", "parse_args"],
    "parse_args": ["argparse"],
    "run": ["build_index"],
    "build_index": ["load", "add_document", "flush", "namedtuple"],
    "load": ["tokenize", "json_loads", "read_chunk", "normalize"],
    "tokenize": ["findall", "stem", "normalize"],
    "normalize": ["casefold", "stem"],
    "read_chunk": ["readinto"],
    "findall": ["compile"],
    "compile": ["sre_compile"],
    "json_loads": ["decode"],
    "decode": ["raw_decode"],
    "raw_decode": ["parse_object", "parse_array"],
    "parse_object": ["scanstring", "parse_array", "parse_object"],
    "parse_array": ["scanstring", "parse_object"],
    "add_document": ["doc_init", "index_add"],
    "doc_init": ["field", "lire", "dataclass_init", "copy"],
    "copy": ["copy_dict"],
    "copy_dict": ["copy"],
    "index_add": ["grow", "posting"],
    "posting": ["counter"],
    "flush": ["merge", "write_block"],
    "merge": ["sort_runs"],
    "write_block": ["encode_block"],
    "encode_block": ["compress"],
    "spawn_main": ["spawn_inner"],
    "spawn_inner": ["worker"],
    "worker": ["mapstar"],
    "mapstar": ["parse_record"],
    "parse_record": ["decode_field", "field", "tokenize", "json_loads"],
    "decode_field": ["lire"],
    "bootstrap": ["bootstrap_inner"],
    "bootstrap_inner": ["thread_run"],
    "thread_run": ["prefetch", "flush"],
    "prefetch": ["read_chunk"],
}


def walk(rng: random.Random, start: str, keys: List[str]) -> List[int]:
    """A random call path from `start` down the call graph, as indices into `keys`."""
    path = [start]
    while path[-1] in CALLS and (len(path) < 3 or rng.random() > 0.12):
        path.append(rng.choice(CALLS[path[-1]]))
    return [keys.index(key) for key in path]


def sites(rng: random.Random, entries: Sequence[str], count: int,
          specials: bool = False) -> Dict[str, Any]:
    """A process's ``sites``: `count` random stacks from `entries` (some repeated, to be
    merged), each an estimate of whole samples of RATE bytes."""
    keys = list(PLACES)
    rng.shuffle(keys)  # the locations' order is the report's business, not ours
    stacks = []
    for _ in range(count):
        samples = rng.choice((1, 1, 1, 2, 3, 5, 8, 20))
        stacks.append({"frames": walk(rng, rng.choice(entries), keys),
                       "bytes": float(samples * RATE) * rng.uniform(0.9, 1.1),
                       "allocations": samples * rng.uniform(200.0, 4000.0)})
    stacks += [dict(stacks[k]) for k in range(0, count, 7)]  # repeats
    if specials:
        stacks.append({"frames": [keys.index("no_stack")], "bytes": 3.0 * RATE,
                       "allocations": 1.5})
        deep = walk(random.Random(1), "module", keys)
        stacks.append({"frames": [keys.index("truncated"), *deep[2:]], "bytes": 2.0 * RATE,
                       "allocations": 700.0})
    return {"rate": RATE, "samples": len(stacks) * 3, "lost": 0,
            "bytes": sum(s["bytes"] for s in stacks),
            "allocations": sum(s["allocations"] for s in stacks),
            "locations": [dict(zip(("function", "file", "line"), PLACES[key]))
                          for key in keys],
            "stacks": stacks}


WORKER_ARGV = ["/usr/bin/python3.11", "-c",
               "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, "
               "pipe_handle=7)", "--multiprocessing-fork"]


def synthetic_report(seed: int = 7) -> Dict[str, Any]:
    """A program of four processes: the root (stacks in the main thread, a thread, and
    without a Python stack), two spawned workers, a forked helper that did not sample."""
    rng = random.Random(seed)
    root_argv = ["/srv/app/venv/bin/python", "-m", "myapp", "build", "--config",
                 "/srv/app/config/production.toml", "--jobs", "2", "--output",
                 "/var/lib/myapp/index-2024-05-01.bin"]
    processes = [
        {"pid": 4100, "ppid": 4000, "argv": root_argv, "role": "root",
         "sites": sites(rng, ["module", "module", "bootstrap"], 120, specials=True)},
        {"pid": 4101, "ppid": 4100, "argv": [*WORKER_ARGV, "--worker", "1"], "role": "spawn",
         "sites": sites(rng, ["spawn_main"], 60)},
        {"pid": 4102, "ppid": 4100, "argv": [*WORKER_ARGV, "--worker", "2"], "role": "spawn",
         "sites": sites(rng, ["spawn_main"], 60)},
        {"pid": 4103, "ppid": 4100, "argv": ["/srv/app/venv/bin/python", "-m", "myapp"],
         "role": "fork"},
    ]
    return {"schema": fg.REPORT_SCHEMA, "python": "3.11.7", "processes": processes,
            "missing": [], "total": {"processes": len(processes)}}


def one_process(stacks: List[Dict[str, Any]], locations: List[Tuple[str, str, int]],
                argv: Sequence[str] = ("prog.py",)) -> Dict[str, Any]:
    """A report of one root process with these stacks and locations."""
    return {"schema": fg.REPORT_SCHEMA, "processes": [{
        "pid": 10, "ppid": 1, "argv": list(argv), "role": "root",
        "sites": {"rate": RATE, "samples": len(stacks), "lost": 0,
                  "bytes": sum(s["bytes"] for s in stacks),
                  "allocations": sum(s["allocations"] for s in stacks),
                  "locations": [dict(zip(("function", "file", "line"), place))
                                for place in locations],
                  "stacks": stacks}}]}


def expected_stacks(report: Dict[str, Any]) -> Dict[Tuple[str, ...], float]:
    """Bytes per distinct stack of names, straight from the report; with several
    processes sampled, each stack starts with its process's label."""
    sampled = [r for r in report["processes"] if r.get("sites") and r["sites"]["stacks"]]
    totals: Dict[Tuple[str, ...], float] = {}
    for record in sampled:
        places = record["sites"]["locations"]
        prefix = (fg.process_label(record),) if len(sampled) > 1 else ()
        for stack in record["sites"]["stacks"]:
            names = []
            for index in stack["frames"]:
                place = places[index]
                names.append(f"{place['function']} ({fg.short_path(place['file'])}:"
                             f"{place['line']})" if place["file"] else place["function"])
            key = prefix + tuple(names)
            totals[key] = totals.get(key, 0.0) + stack["bytes"]
    return totals


# ------------------------------------------------------------------- the model


def test_identical_stacks_and_locations_merge() -> None:
    places = [("f", "a.py", 1), ("g", "a.py", 2), ("f", "a.py", 1)]  # 0 and 2: one place
    report = one_process([
        {"frames": [0, 1], "bytes": 100.0, "allocations": 1.0},
        {"frames": [2, 1], "bytes": 50.5, "allocations": 2.5},
        {"frames": [0], "bytes": 7.0, "allocations": 1.0},
    ], places)
    (profile,) = fg.profiles_from_report(report)
    stacks = {tuple(f.name for f in s.frames): (s.bytes, s.allocations)
              for s in profile.stacks}
    assert stacks == {("f (a.py:1)", "g (a.py:2)"): (150.5, 3.5), ("f (a.py:1)",): (7.0, 1.0)}
    root = fg.build_tree([profile])
    (f,) = root.children
    assert (f.name, f.bytes, f.allocations) == ("f (a.py:1)", 157.5, 4.5)
    assert [(c.name, c.bytes) for c in f.children] == [("g (a.py:2)", 150.5)]


def test_a_location_under_two_parents_is_two_frames() -> None:
    places = [("a", "m.py", 1), ("b", "m.py", 2), ("leaf", "m.py", 3)]
    report = one_process([
        {"frames": [0, 2], "bytes": 10.0, "allocations": 1.0},
        {"frames": [1, 2], "bytes": 30.0, "allocations": 1.0},
    ], places)
    root = fg.build_tree(fg.profiles_from_report(report))
    assert [(c.name, [(g.name, g.bytes) for g in c.children]) for c in root.children] == [
        ("b (m.py:2)", [("leaf (m.py:3)", 30.0)]),
        ("a (m.py:1)", [("leaf (m.py:3)", 10.0)]),
    ]


def test_preorder_puts_parents_first_and_the_heaviest_child_first() -> None:
    root = fg.build_tree(fg.profiles_from_report(synthetic_report()))
    order = fg.preorder(root)
    assert order[0] == (root, -1)
    seen = set()
    for index, (node, parent) in enumerate(order):
        assert parent in seen or index == 0
        seen.add(index)
        weights = [child.bytes for child in node.children]
        assert weights == sorted(weights, reverse=True)
        assert node.bytes + 1e-6 >= sum(weights)
    assert len(order) == len({id(node) for node, _ in order})


def test_one_profile_per_sampled_process_labelled_with_role_parent_and_command() -> None:
    report = synthetic_report()
    profiles = fg.profiles_from_report(report)
    assert [p.pid for p in profiles] == [4100, 4101, 4102]
    assert profiles[0].label.startswith("process 4100 (root): /srv/app/venv/bin/python -m ")
    assert profiles[1].label.startswith("process 4101 (spawned, parent 4100): /usr/bin/")
    for profile, record in zip(profiles, report["processes"]):
        assert profile.bytes == pytest.approx(sum(s["bytes"] for s in record["sites"]
                                                  ["stacks"]))
        assert profile.allocations == pytest.approx(record["sites"]["allocations"])
    assert fg.processes_without_samples(report) == [
        "process 4103 (forked, parent 4100): /srv/app/venv/bin/python -m myapp"]


def test_long_commands_are_shortened_in_the_middle_and_stay_distinguishable() -> None:
    labels = [fg.process_label({"pid": 1, "ppid": 0, "role": "spawn",
                                "argv": [*WORKER_ARGV, "--worker", str(n)]})
              for n in (1, 2)]
    command = " ".join([*WORKER_ARGV, "--worker", "1"])
    assert len(command) > fg.COMMAND_WIDTH
    for label, n in zip(labels, (1, 2)):
        shown = label.split(": ", 1)[1]
        assert len(shown) <= fg.COMMAND_WIDTH
        assert shown.startswith("/usr/bin/python3.11 -c from multiproc")
        assert shown.endswith(f"--worker {n}") and "..." in shown
    assert labels[0] != labels[1]
    assert fg.shorten("short") == "short"


def test_no_sites_or_empty_stacks_give_no_profile() -> None:
    report = synthetic_report()
    for record in report["processes"][:3]:
        record["sites"] = None if record["pid"] == 4100 else {**record["sites"], "stacks": []}
    assert fg.profiles_from_report(report) == []
    assert len(fg.processes_without_samples(report)) == 4
    with pytest.raises(ValueError, match="nothing to draw"):
        fg.render([], "html")


@pytest.mark.parametrize("report, words", [
    ([1, 2], "not an object"),
    ({"schema": "bump_global.report/1"}, "'bump_global.report/1'"),
    ({"processes": []}, "no 'schema'"),
    ({"schema": fg.REPORT_SCHEMA, "processes": {}}, "'processes'"),
])
def test_what_is_not_a_whole_program_report_is_refused(report: Any, words: str) -> None:
    with pytest.raises(fg.ReportError, match=re.escape(words)):
        fg.profiles_from_report(report)


@pytest.mark.parametrize("change, words", [
    (lambda s: s["stacks"][0].update(frames=[99]), "not an index into the 2 locations"),
    (lambda s: s["stacks"][0].update(frames=[True]), "not an index"),
    (lambda s: s["stacks"][0].update(bytes=-1.0), "stacks[0].bytes"),
    (lambda s: s["stacks"][0].update(bytes=float("nan")), "stacks[0].bytes"),
    (lambda s: s["stacks"][0].pop("allocations"), "stacks[0].allocations"),
    (lambda s: s["locations"][1].pop("file"), "locations[1]"),
    (lambda s: s["locations"][1].update(line="7"), "locations[1].line"),
    (lambda s: s.pop("stacks"), "'stacks'"),
    (lambda s: s.update(rate=None), "sites.rate"),
])
def test_damaged_sites_are_refused_with_where(change: Any, words: str) -> None:
    report = one_process([{"frames": [0, 1], "bytes": 8.0, "allocations": 1.0}],
                         [("f", "a.py", 1), ("g", "a.py", 2)])
    change(report["processes"][0]["sites"])
    with pytest.raises(fg.ReportError, match=re.escape(words)) as info:
        fg.profiles_from_report(report)
    assert "process 10" in str(info.value) and "\n" not in str(info.value)


def test_special_frames_keep_their_names_and_kind() -> None:
    report = one_process([
        {"frames": [0], "bytes": 40.0, "allocations": 2.0},
        {"frames": [1, 2], "bytes": 20.0, "allocations": 1.0},
        {"frames": [], "bytes": 5.0, "allocations": 1.0},
    ], [(fg.NO_STACK, "", 0), ("[truncated]", "", 0), ("deep", "d.py", 9)])
    root = fg.build_tree(fg.profiles_from_report(report))
    assert [(c.name, c.kind, c.bytes) for c in root.children] == [
        (fg.NO_STACK, "special", 45.0), ("[truncated]", "special", 20.0)]
    assert root.children[1].children[0].kind == "frame"
    folded = fg.render(fg.profiles_from_report(report), "folded")
    assert folded.splitlines() == ["[no Python stack] 45", "[truncated];deep (d.py:9) 20"]


# ---------------------------------------------------------------------- folded

#: How flamegraph.pl reads a line: the stack, then whitespace, then the count (the last
#: whitespace splits them); frames are separated by ";".
FLAMEGRAPH_PL_LINE = re.compile(r"^(.*)\s+?(\d+(?:\.\d*)?)$")


def read_folded(text: str) -> Dict[Tuple[str, ...], int]:
    stacks: Dict[Tuple[str, ...], int] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        match = FLAMEGRAPH_PL_LINE.match(line)
        assert match, line
        assert match.group(2).isdigit(), line  # an integer count
        key = tuple(match.group(1).split(";"))
        assert key not in stacks, f"two lines for one stack: {line}"
        stacks[key] = int(match.group(2))
    return stacks


def test_folded_lines_read_back_like_flamegraph_pl_give_the_reports_bytes() -> None:
    report = synthetic_report()
    folded = fg.render(fg.profiles_from_report(report), "folded")
    expected = {key: round(value) for key, value in expected_stacks(report).items()
                if round(value) > 0}
    assert read_folded(folded) == expected
    assert len(expected) > 60


def test_folded_with_several_processes_starts_each_line_with_its_process() -> None:
    report = synthetic_report()
    profiles = fg.profiles_from_report(report)
    parsed = read_folded(fg.render(profiles, "folded"))
    firsts = {stack[0] for stack in parsed}
    assert firsts == {fg.folded_name(p.label) for p in profiles}
    for profile in profiles:
        lines = [n for stack, n in parsed.items() if stack[0] == fg.folded_name(profile.label)]
        assert sum(lines) == pytest.approx(profile.bytes, abs=len(lines))


def test_folded_with_one_process_starts_at_the_outermost_python_frame() -> None:
    report = synthetic_report()
    report["processes"] = report["processes"][:1]
    parsed = read_folded(fg.render(fg.profiles_from_report(report), "folded"))
    assert {stack[0] for stack in parsed} == {
        "<module> (/srv/app/myapp/__main__.py:3)", "_bootstrap (threading.py:995)",
        fg.NO_STACK, "[truncated]"}  # the standard library's files from the library


def test_file_names_are_shown_from_the_library_or_the_working_directory() -> None:
    assert fg.short_path("/usr/lib/python3.11/json/decoder.py") == "json/decoder.py"
    assert fg.short_path("/opt/py/lib/python3.15t/enum.py") == "enum.py"
    assert fg.short_path("/srv/venv/lib/python3.9/site-packages/black/linegen.py") == \
        "black/linegen.py"
    assert fg.short_path(os.path.join(os.getcwd(), "app", "main.py")) == \
        os.path.join("app", "main.py")
    assert fg.short_path("/elsewhere/tool.py") == "/elsewhere/tool.py"
    assert fg.short_path("<frozen runpy>") == "<frozen runpy>"


def test_folded_drops_what_rounds_to_zero() -> None:
    report = one_process([{"frames": [0], "bytes": 0.4, "allocations": 1.0},
                          {"frames": [1], "bytes": 0.6, "allocations": 1.0}],
                         [("tiny", "t.py", 1), ("small", "t.py", 2)])
    assert fg.render(fg.profiles_from_report(report), "folded") == "small (t.py:2) 1\n"


def test_folded_names_with_semicolons_and_line_breaks_stay_one_frame() -> None:
    report = one_process([{"frames": [0, 1], "bytes": 1000.0, "allocations": 1.0}],
                         [("<lambda>", "x;y.py", 1), ("a\nb\r\tc", "z.py", 2)],
                         argv=["python", "-c", "import a; a.main()"])
    report["processes"].append({**report["processes"][0], "pid": 11, "role": "fork"})
    parsed = read_folded(fg.render(fg.profiles_from_report(report), "folded"))
    assert len(parsed) == 2
    for stack in parsed:
        assert len(stack) == 3
        assert stack[0].endswith(f"import a{fg.FOLDED_SEMICOLON} a.main()")
        assert stack[1:] == (f"<lambda> (x{fg.FOLDED_SEMICOLON}y.py:1)", "a b  c (z.py:2)")


# ------------------------------------------------------------------ speedscope


def check_speedscope(doc: Dict[str, Any]) -> None:
    """The speedscope file-format spec (file-format-spec.ts): the required fields and
    their types, for sampled profiles."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert isinstance(frames, list)
    for frame in frames:
        assert isinstance(frame["name"], str)
        assert set(frame) <= {"name", "file", "line", "col"}
        assert isinstance(frame.get("file", ""), str)
        assert isinstance(frame.get("line", 0), int)
    assert isinstance(doc["name"], str) and isinstance(doc["exporter"], str)
    assert 0 <= doc["activeProfileIndex"] < len(doc["profiles"])
    for profile in doc["profiles"]:
        assert profile["type"] == "sampled"
        assert isinstance(profile["name"], str)
        assert profile["unit"] in ("none", "nanoseconds", "microseconds", "milliseconds",
                                   "seconds", "bytes")
        for key in ("startValue", "endValue"):
            assert isinstance(profile[key], (int, float))
        assert len(profile["samples"]) == len(profile["weights"])
        for sample, weight in zip(profile["samples"], profile["weights"]):
            assert sample and all(isinstance(k, int) and 0 <= k < len(frames)
                                  for k in sample)
            assert isinstance(weight, (int, float)) and weight > 0
        assert profile["endValue"] - profile["startValue"] == pytest.approx(
            sum(profile["weights"]))


def test_speedscope_follows_the_file_format_and_keeps_every_stack() -> None:
    report = synthetic_report()
    profiles = fg.profiles_from_report(report)
    doc = json.loads(fg.render(profiles, "speedscope", title="T"))
    check_speedscope(doc)
    assert doc["name"] == "T" and doc["exporter"].startswith("bump_global ")
    assert [p["name"] for p in doc["profiles"]] == [p.label for p in profiles]
    assert all(p["unit"] == "bytes" for p in doc["profiles"])
    frames = doc["shared"]["frames"]
    assert len({(f["name"], f.get("file"), f.get("line")) for f in frames}) == len(frames)
    for profile, record in zip(doc["profiles"], report["processes"]):
        assert sum(profile["weights"]) == pytest.approx(
            sum(s["bytes"] for s in record["sites"]["stacks"]))
        alone = {**report, "processes": [record]}
        stacks: Dict[Tuple[str, ...], float] = {}
        for sample, weight in zip(profile["samples"], profile["weights"]):
            key = tuple(frames[k]["name"] for k in sample)  # the root first
            stacks[key] = stacks.get(key, 0.0) + weight
        assert stacks == pytest.approx(expected_stacks(alone))
    heaviest = max(range(len(profiles)), key=lambda k: profiles[k].bytes)
    assert doc["activeProfileIndex"] == heaviest


def test_speedscope_frames_carry_file_and_line_except_markers() -> None:
    report = one_process([{"frames": [0, 1], "bytes": 64.0, "allocations": 1.0}],
                         [("[truncated]", "", 0), ("f", "/a/b.py", 12)])
    doc = json.loads(fg.render(fg.profiles_from_report(report), "speedscope"))
    check_speedscope(doc)
    assert doc["shared"]["frames"] == [
        {"name": "[truncated]"}, {"name": "f (/a/b.py:12)", "file": "/a/b.py", "line": 12}]


# ------------------------------------------------------------------------ html


#: Elements without an end tag.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class PageParser(HTMLParser):
    """What a page holds: its ``div.frame`` elements (by id: classes, style, text), the
    text of every element with an id, its scripts' text, and every src/href value."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: Dict[int, Dict[str, Any]] = {}
        self.links: List[str] = []
        self._scripts: List[Dict[str, Any]] = []
        self._ids: Dict[str, Dict[str, Any]] = {}
        self._open: List[Tuple[str, Optional[Dict[str, Any]]]] = []

    @property
    def texts(self) -> Dict[str, str]:
        return {key: value["text"] for key, value in self._ids.items()}

    @property
    def scripts(self) -> List[str]:
        return [script["text"] for script in self._scripts]

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        values = {key: value or "" for key, value in attrs}
        self.links += [values[key] for key in ("src", "href") if key in values]
        if tag in VOID:
            return
        capture: Optional[Dict[str, Any]] = None
        if tag == "script":
            capture = {"text": ""}
            self._scripts.append(capture)
        elif tag == "div" and "frame" in values.get("class", "").split():
            style = dict((part.split(":", 1)[0].strip(), part.split(":", 1)[1].strip())
                         for part in values.get("style", "").split(";") if ":" in part)
            capture = {"classes": set(values["class"].split()), "style": style, "text": ""}
            self.frames[int(values["data-id"])] = capture
        elif "id" in values:
            capture = self._ids[values["id"]] = {"text": ""}
        self._open.append((tag, capture))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, capture in self._open:
            if capture is not None:
                capture["text"] += data


def parse_page(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def page_nodes(text: str) -> List[Dict[str, Any]]:
    """The nodes embedded in a page, rebuilt from its JSON as the page's script does."""
    (data_script,) = [s for s in parse_page(text).scripts if s.lstrip().startswith("{")]
    data = json.loads(data_script)
    strings, columns = data["strings"], data["nodes"]
    nodes = []
    for k in range(len(columns["parent"])):
        function, file = strings[columns["function"][k]], strings[columns["short"][k]]
        nodes.append({"name": f"{function} ({file}:{columns['line'][k]})" if file
                      else function, "parent": columns["parent"][k],
                      "bytes": columns["bytes"][k], "kind": columns["kind"][k]})
    return nodes


def test_html_is_one_self_contained_file_with_the_data_inside() -> None:
    report = synthetic_report()
    profiles = fg.profiles_from_report(report)
    page = fg.render(profiles, "html", title="Index build")
    assert "http://" not in page and "https://" not in page
    parsed = parse_page(page)
    assert parsed.links == []
    assert not re.search(r"@import|url\(|\bsrc\s*=|\bhref\s*=", page)
    assert "<title>Index build</title>" in page and "<h1>Index build</h1>" in page
    nodes = page_nodes(page)
    tree = fg.preorder(fg.build_tree(profiles))
    assert [n["name"] for n in nodes] == [node.name for node, _ in tree]
    assert [n["parent"] for n in nodes] == [parent for _, parent in tree]
    assert nodes[0]["name"] == "all (3 processes)"
    assert [n["name"] for n in nodes if n["parent"] == 0] == [p.label for p in sorted(
        profiles, key=lambda p: -p.bytes)]
    assert nodes[0]["bytes"] == pytest.approx(sum(p.bytes for p in profiles))


def test_html_header_has_the_totals_and_says_they_are_estimates() -> None:
    profiles = fg.profiles_from_report(synthetic_report())
    page = fg.render(profiles, "html", notes=["1 process without samples: process 4103"])
    header = page[page.index("<header>"):page.index("</header>")]
    nbytes = sum(p.bytes for p in profiles)
    allocations = sum(p.allocations for p in profiles)
    assert f"{nbytes / 2**20:.1f} MiB allocated" in header
    assert f"{round(allocations):,} allocations" in header
    assert f"{sum(p.samples for p in profiles):,} samples, one per 512.0 KiB" in header
    assert "3 processes" in header and "estimates from sampling" in header
    assert "1 process without samples: process 4103" in header
    assert "<title>Allocations of /srv/app/venv/bin/python -m myapp build" in page


def test_html_header_counts_lost_samples_and_says_when_rates_differ() -> None:
    report = synthetic_report()
    report["processes"][0]["sites"]["lost"] = 4
    report["processes"][2]["sites"]["lost"] = 3
    report["processes"][1]["sites"]["rate"] = 4 * RATE
    page = fg.render(fg.profiles_from_report(report), "html")
    header = page[page.index("<header>"):page.index("</header>")]
    assert "one per 512.0 KiB to 2.0 MiB on average" in header
    assert "7 samples lost (not in the graph)" in header


def test_html_names_with_script_tags_and_non_ascii_stay_inert_data() -> None:
    nasty = "</script><script>alert(1)</script>"
    report = one_process([{"frames": [0, 1], "bytes": 4096.0, "allocations": 1.0}],
                         [(nasty, "<b>&amp;.py", 1), ("données_été", "/ü/ñ.py", 2)],
                         argv=["prog", "</script>"])
    page = fg.render(fg.profiles_from_report(report), "html", title="<i>t</i> & é")
    assert page.count("</script>") == 2  # the data's and the code's: no other
    assert "<h1>&lt;i&gt;t&lt;/i&gt; &amp; é</h1>" in page
    names = [n["name"] for n in page_nodes(page)]
    assert names == ["process 10 (root): prog </script>", f"{nasty} (<b>&amp;.py:1)",
                     "données_été (/ü/ñ.py:2)"]


def test_render_and_write_choose_the_format() -> None:
    assert [fg.format_for_path(p) for p in ("a.HTML", "a.htm", "a.folded", "a.txt",
                                            "a.json", "a.speedscope.json", "a.svg", "a")] \
        == ["html", "html", "folded", "folded", "speedscope", "speedscope", "html", "html"]
    with pytest.raises(ValueError, match="unknown format 'svg'"):
        fg.render(fg.profiles_from_report(synthetic_report()), "svg")


def test_write_puts_the_rendering_in_the_file(tmp_path: Path) -> None:
    profiles = fg.profiles_from_report(synthetic_report())
    for name, fmt in (("g.folded", "folded"), ("g.json", "speedscope"), ("g.html", "html")):
        fg.write(profiles, str(tmp_path / name), title="t")
        assert (tmp_path / name).read_text(encoding="utf-8") == fg.render(profiles, fmt, "t")


# ------------------------------------------------------------------------- CLI


def cli(*args: str) -> int:
    return cli_main(["flamegraph", *args])


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(synthetic_report()), encoding="utf-8")
    return path


@pytest.mark.parametrize("name, fmt, check", [
    ("out.html", [], lambda t: t.startswith("<!DOCTYPE html>")),
    ("out.folded", [], lambda t: FLAMEGRAPH_PL_LINE.match(t.splitlines()[0])),
    ("out.txt", [], lambda t: FLAMEGRAPH_PL_LINE.match(t.splitlines()[0])),
    ("out.json", [], lambda t: json.loads(t)["$schema"].endswith("file-format-schema.json")),
    ("out", [], lambda t: t.startswith("<!DOCTYPE html>")),
    ("out.html", ["--format", "folded"], lambda t: FLAMEGRAPH_PL_LINE.match(t.split("\n")[0])),
    ("out.data", ["--format", "speedscope"], lambda t: json.loads(t)["profiles"]),
])
def test_cli_writes_the_format_its_extension_or_option_says(
        report_file: Path, capsys: Any, name: str, fmt: List[str], check: Any) -> None:
    out = report_file.parent / name
    assert cli(str(report_file), "-o", str(out), *fmt) == 0
    assert check(out.read_text(encoding="utf-8"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "bump-global: note: not in the graph (no samples): process 4103 (forked, parent "
        "4100): /srv/app/venv/bin/python -m myapp"]


def test_cli_title_and_processes_without_samples_reach_the_page(report_file: Path) -> None:
    out = report_file.parent / "g.html"
    assert cli(str(report_file), "-o", str(out), "--title", "Nightly build") == 0
    page = out.read_text(encoding="utf-8")
    assert "<h1>Nightly build</h1>" in page
    assert "Not in the graph (no samples): process 4103 (forked, parent 4100)" in page


def test_cli_is_wired_as_a_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "bump_global", "flamegraph", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: bump-global flamegraph")
    assert "--format {html,folded,speedscope}" in proc.stdout


def _bad_inputs(tmp: Path) -> None:
    (tmp / "dir").mkdir()
    (tmp / "text.json").write_text("this is not JSON\n")
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "v1.json").write_text(json.dumps({"schema": "bump_global.report/1"}))
    (tmp / "other.json").write_text(json.dumps({"traceEvents": []}))
    unsampled = synthetic_report()
    for record in unsampled["processes"]:
        record.pop("sites", None)
    (tmp / "nosites.json").write_text(json.dumps(unsampled))
    damaged = synthetic_report()
    damaged["processes"][1]["sites"]["stacks"][3]["frames"] = [1000]
    (tmp / "damaged.json").write_text(json.dumps(damaged))
    (tmp / "good.json").write_text(json.dumps(synthetic_report()))


@pytest.mark.parametrize("args, words", [
    (["missing.json", "-o", "g.html"], "argument REPORT: 'missing.json' does not exist"),
    (["dir", "-o", "g.html"], "argument REPORT: 'dir' is a directory"),
    (["text.json", "-o", "g.html"], "argument REPORT: 'text.json' is not JSON"),
    (["binary.json", "-o", "g.html"], "argument REPORT: 'binary.json' is not JSON"),
    (["list.json", "-o", "g.html"], "is not a bump_global report"),
    (["v1.json", "-o", "g.html"], "'bump_global.report/1'"),
    (["other.json", "-o", "g.html"], "is not a bump_global report"),
    (["nosites.json", "-o", "g.html"], "run with --sites"),
    (["damaged.json", "-o", "g.html"], "process 4101: sites.stacks[3].frames"),
    (["good.json"], "-o/--output"),
    (["good.json", "-o", "no/such/dir/g.html"], "argument -o/--output: directory 'no/such"),
    (["good.json", "-o", "dir"], "argument -o/--output: 'dir' is a directory"),
    (["good.json", "-o", "good.json"], "is the report itself"),
    (["good.json", "-o", "g.svg", "--format", "svg"], "argument --format: invalid choice"),
    ([], "REPORT"),
])
def test_cli_bad_input_is_one_line_and_status_2(
        tmp_path: Path, monkeypatch: Any, capsys: Any, args: List[str], words: str) -> None:
    _bad_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli(*args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("bump-global: error: ")
    assert words in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert json.loads((tmp_path / "good.json").read_text())["schema"] == fg.REPORT_SCHEMA


def test_cli_unwritable_output_is_one_line_and_status_2(
        report_file: Path, monkeypatch: Any, capsys: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fg, "open", refuse, raising=False)  # root may write anywhere
    assert cli(str(report_file), "-o", str(report_file.parent / "g.html")) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"bump-global: error: argument -o/--output: cannot write "
                     f"'{report_file.parent / 'g.html'}': Permission denied"]


# -------------------------------------------------------------- a real browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary on PATH (tried: " + ", ".join(BROWSERS) + "); on "
                "Debian or Ubuntu: apt-get install -y chromium")


def headless(browser: str, tmp: Path, url: str, *args: str) -> str:
    """Chromium, headless, on `url` after its scripts ran: what it prints."""
    command = [browser, "--headless", "--disable-gpu", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
               "--virtual-time-budget=3000", *args, url]
    if os.name == "posix" and os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory: Any) -> Tuple[Path, List[fg.Profile]]:
    """The synthetic report's page in a file, and its profiles."""
    profiles = fg.profiles_from_report(synthetic_report())
    path = tmp_path_factory.mktemp("flame") / "flame.html"
    fg.write(profiles, str(path), "html", title="Index build")
    return path, profiles


def shown(browser: str, page: Path, fragment: str = "") -> PageParser:
    dom = headless(browser, page.parent, page.as_uri() + fragment, "--dump-dom",
                   "--window-size=1400,900")
    return parse_page(dom)


def expected_share(profiles: Sequence[fg.Profile], needle: str) -> Tuple[Set[int], float]:
    """The ids of the nodes whose name holds `needle` and the share of the total they
    cover (a node below a matched node counted once), as the page must compute them."""
    order = fg.preorder(fg.build_tree(profiles))
    ids: Set[int] = set()
    covered: Set[int] = set()
    total = 0.0
    for index, (node, parent) in enumerate(order):
        inherited = parent in covered or parent in ids
        if inherited:
            covered.add(index)
        if node.kind != "root" and needle.lower() in node.name.lower():
            ids.add(index)
            if not inherited:
                total += node.bytes
    return ids, total / order[0][0].bytes


@pytest.mark.slow
def test_browser_shows_the_frames_search_and_zoom(browser: str, page: Any) -> None:
    path, profiles = page
    started = time.monotonic()
    order = fg.preorder(fg.build_tree(profiles))

    plain = shown(browser, path)
    assert len(plain.frames) > 50
    root = plain.frames[0]
    assert root["text"] == "all (3 processes)"
    assert float(root["style"]["width"].rstrip("%")) == pytest.approx(100)
    for index, (node, _) in enumerate(order[:12]):
        if index in plain.frames and node.bytes / order[0][0].bytes > 0.05:
            assert plain.frames[index]["text"] == node.name  # the label, clipped by CSS only
    assert all("match" not in f["classes"] for f in plain.frames.values())

    ids, share = expected_share(profiles, "Parse.py")
    searched = shown(browser, path, "#search=Parse.py")
    highlighted = {i for i, f in searched.frames.items() if "match" in f["classes"]}
    assert highlighted and highlighted == ids & set(searched.frames)
    assert searched.texts["matched"].startswith(f"Matched: {100 * share:.1f}% (")
    assert f"in {len(ids)} frames" in searched.texts["matched"]

    target = next(i for i, (node, _) in enumerate(order)
                  if node.name.startswith("build_index ("))
    zoomed = shown(browser, path, f"#zoom={target}")
    frame = zoomed.frames[target]
    assert float(frame["style"]["left"].rstrip("%")) == pytest.approx(0)
    assert float(frame["style"]["width"].rstrip("%")) == pytest.approx(100)
    assert frame["text"] == order[target][0].name
    ancestors, parent = set(), order[target][1]
    while parent >= 0:
        ancestors.add(parent)
        parent = order[parent][1]
    assert {i for i, f in zoomed.frames.items() if "ancestor" in f["classes"]} == ancestors
    drawn = set(zoomed.frames) - ancestors - {target}
    below, stack = set(), [target]
    while stack:
        above = stack.pop()
        kids = [i for i, (_, p) in enumerate(order) if p == above]
        below.update(kids)
        stack.extend(kids)
    assert drawn and drawn <= below  # nothing outside the zoomed frame
    assert zoomed.texts["zoominfo"].startswith("Zoomed to " + order[target][0].name)

    both = shown(browser, path, f"#search=parse_record&zoom={target}")
    assert float(both.frames[target]["style"]["width"].rstrip("%")) == pytest.approx(100)
    assert both.texts["matched"].startswith("Matched: ")
    print(f"browser checks took {time.monotonic() - started:.1f} s")


#: Appended to a copy of the page: the pointer moves over a frame, as a person's would.
HOVER = """<script>
(function () {
  var el = document.querySelector('.frame[data-id="ID"]'), box = el.getBoundingClientRect();
  el.dispatchEvent(new MouseEvent("mousemove", {bubbles: true, clientX: box.left + 20,
                                                clientY: box.top + 8}));
})();
</script></body>"""


@pytest.mark.slow
def test_browser_hover_shows_the_frames_figures(browser: str, page: Any) -> None:
    path, profiles = page
    order = fg.preorder(fg.build_tree(profiles))
    target = next(i for i, (node, _) in enumerate(order) if node.name.startswith("load ("))
    node = order[target][0]
    hover = path.parent / "hover.html"
    hover.write_text(path.read_text(encoding="utf-8").replace(
        "</body>", HOVER.replace("ID", str(target))), encoding="utf-8")
    dom = parse_page(headless(browser, path.parent, hover.as_uri(), "--dump-dom",
                              "--window-size=1400,900"))
    tip = dom.texts["tip"]
    share = 100 * node.bytes / order[0][0].bytes
    assert f"{node.bytes / 2**20:.1f} MiB ({share:.1f}% of all)" in tip
    assert f"Allocations (estimated): {round(node.allocations):,}" in tip
    assert dom.texts["detail"].startswith(f"{node.name} \u2014 {node.bytes / 2**20:.1f} MiB")


@pytest.mark.slow
def test_browser_screenshot_is_not_empty(browser: str, page: Any) -> None:
    path, _ = page
    shot = path.parent / "flame.png"
    headless(browser, path.parent, path.as_uri() + "#search=parse", f"--screenshot={shot}",
             "--window-size=1400,900", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a page of coloured frames, not a blank one
