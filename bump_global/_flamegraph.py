"""Flame graphs of the allocation sites that sampling recorded (``sites`` in a report).

A report of schema ``bump_global.report/2`` holds, for each process that sampled its
allocations, a ``sites`` object: the distinct code locations, and the stacks sampled
(indices into the locations, the outermost call first) with the bytes and allocations
each stands for (unbiased estimates, floats).  This module turns that into what people
open to find which code allocated the most:

- ``html``: one self-contained page (no network: CSS, script and data inline) with a
  searchable, zoomable icicle graph (the root at the top), described in
  bump_global/_flamegraph_page.py.
- ``folded``: collapsed stacks, ``frame;frame;...;frame BYTES``, one line per distinct
  stack, for flamegraph.pl and inferno.
- ``speedscope``: speedscope's JSON file format, one sampled profile per process.

A frame is named ``function (file:line)`` everywhere (a marker such as
``[no Python stack]`` has no file, and is named by itself); the same location under the
same parent is one frame.  With several processes, each process is a frame of its own
under the root, labelled ``process PID (ROLE, parent PPID): ARGV``, and is the first frame
of every folded line; speedscope gets one profile per process, named by that label.
With one process the folded lines start at the outermost Python frame, so that the folded
files of two runs of one program can be compared (difffolded.pl) although their pids
differ.

Pure Python, standard library only; it knows nothing of the command line
(bump_global/commands/flamegraph.py wires it to ``bump-global flamegraph``).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from bump_global._config import format_size

#: The formats :func:`render` writes.
FORMATS = ("html", "folded", "speedscope")

#: The report schema that carries ``sites``.
REPORT_SCHEMA = "bump_global.report/2"

#: The ``$schema`` value of a speedscope file.
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"

#: About how many characters of a process's command line a label keeps.
COMMAND_WIDTH = 80

#: File name endings and the format each means (:func:`format_for_path`).
EXTENSIONS = {".html": "html", ".htm": "html", ".folded": "folded", ".txt": "folded",
              ".json": "speedscope"}

#: The words a label uses for the record's ``role`` (as the text report does).
ROLES = {"root": "root", "fork": "forked", "spawn": "spawned"}

#: In folded stacks ``;`` separates frames: one inside a name becomes this look-alike
#: (FULLWIDTH SEMICOLON), and line breaks and other control characters become spaces.
FOLDED_SEMICOLON = "\uff1b"

NO_STACK = "[no Python stack]"


class ReportError(ValueError):
    """The report cannot be drawn; the message is one line that says what is wrong."""


_LIBRARY = re.compile(r"^(.*[/\\](site|dist)-packages|.*[/\\]lib[/\\]python\d+\.\d+t?)[/\\]")


def short_path(path: str) -> str:
    """`path` as a reader wants it: from site-packages or the standard library if it
    is there (on whatever machine the report was made), relative to the working
    directory if under it, else as it is."""
    if not path or path.startswith("<"):
        return path
    library = _LIBRARY.match(path)
    if library is not None:
        return path[library.end():]
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


class Location(NamedTuple):
    """A place in the code: a stack's frame."""

    function: str
    file: str
    line: int

    @property
    def name(self) -> str:
        """``function (file:line)``, the file shortened (:func:`short_path`); a location
        without a file is its function alone."""
        if not self.file:
            return self.function
        return f"{self.function} ({short_path(self.file)}:{self.line})"

    @property
    def special(self) -> bool:
        """A marker of the recorder (``[no Python stack]``, ``[truncated]``), not code."""
        return not self.file and self.function.startswith("[") and self.function.endswith("]")


class Stack(NamedTuple):
    """The estimated bytes and allocations of one distinct stack."""

    frames: Tuple[Location, ...]
    """The outermost call first, the frame that allocated last."""
    bytes: float
    allocations: float


class Profile(NamedTuple):
    """One process's sampled stacks, merged: each distinct stack once."""

    pid: int
    label: str
    """``process PID (ROLE[, parent PPID]): COMMAND``."""
    command: str
    """The process's argv joined by spaces, shortened in the middle (:func:`shorten`)."""
    rate: int
    """Mean bytes between samples."""
    samples: int
    lost: int
    stacks: Tuple[Stack, ...]
    """Stacks with bytes, in the order they first appear in the report."""

    @property
    def bytes(self) -> float:
        return sum(stack.bytes for stack in self.stacks)

    @property
    def allocations(self) -> float:
        return sum(stack.allocations for stack in self.stacks)


# ----------------------------------------------------------------------- reading


def shorten(text: str, width: int = COMMAND_WIDTH) -> str:
    """`text` if it has at most `width` characters, else its head and its tail around
    ``...``: two commands that share a long prefix stay distinguishable."""
    if len(text) <= width:
        return text
    tail = (width - 3) // 2
    head = width - 3 - tail
    return f"{text[:head]}...{text[-tail:]}"


def command_text(argv: Any) -> str:
    """A process's command on one line: its arguments joined, a newline (in the
    code of ``-c``) written ``\\n``."""
    if not isinstance(argv, list):
        return ""
    return " ".join(str(arg) for arg in argv).replace("\n", "\\n")


def process_label(record: Dict[str, Any]) -> str:
    """``process PID (ROLE[, parent PPID]): COMMAND`` for a record of the report."""
    role = str(record.get("role", "?"))
    parent = "" if role == "root" or record.get("ppid") is None else \
        f", parent {record['ppid']}"
    command = command_text(record.get("argv"))
    return f"process {record.get('pid', '?')} ({ROLES.get(role, role)}{parent}): " \
        f"{shorten(command)}"


def _records(report: Any) -> List[Dict[str, Any]]:
    if not isinstance(report, dict):
        raise ReportError(f"is not a bump_global report (a JSON {type(report).__name__}, "
                          "not an object)")
    schema = report.get("schema")
    if schema != REPORT_SCHEMA:
        what = "has no 'schema'" if schema is None else f"has schema {schema!r}"
        raise ReportError(f"is not a bump_global report of a whole program ({what}, not "
                          f"{REPORT_SCHEMA!r})")
    records = report.get("processes")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ReportError("is a damaged report ('processes' is not a list of objects)")
    return records


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ReportError(f"is a damaged report ({where} is {value!r}, not a number >= 0)")
    return float(value)


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(f"is a damaged report ({where} is {value!r}, not a whole "
                          "number >= 0)")
    return value


def _location(value: Any, where: str) -> Location:
    if not isinstance(value, dict) or not isinstance(value.get("function"), str) \
            or not isinstance(value.get("file"), str):
        raise ReportError(f"is a damaged report ({where} is not an object with a "
                          "'function' and a 'file')")
    return Location(value["function"], value["file"], _whole(value.get("line"),
                                                             f"{where}.line"))


def _profile(record: Dict[str, Any], sites: Any) -> Profile:
    where = f"process {record.get('pid')}: sites"
    if not isinstance(sites, dict):
        raise ReportError(f"is a damaged report ({where} is not an object)")
    locations = sites.get("locations")
    stacks = sites.get("stacks")
    if not isinstance(locations, list) or not isinstance(stacks, list):
        raise ReportError(f"is a damaged report ({where} has no 'locations' and 'stacks' "
                          "lists)")
    places = [_location(value, f"{where}.locations[{k}]") for k, value in enumerate(locations)]
    merged: Dict[Tuple[Location, ...], List[float]] = {}
    for k, stack in enumerate(stacks):
        at = f"{where}.stacks[{k}]"
        frames = stack.get("frames") if isinstance(stack, dict) else None
        if not isinstance(frames, list):
            raise ReportError(f"is a damaged report ({at} has no 'frames' list)")
        for index in frames:
            if isinstance(index, bool) or not isinstance(index, int) \
                    or not 0 <= index < len(places):
                raise ReportError(f"is a damaged report ({at}.frames holds {index!r}, not "
                                  f"an index into the {len(places)} locations)")
        key = tuple(places[index] for index in frames) or (Location(NO_STACK, "", 0),)
        nbytes = _number(stack.get("bytes"), f"{at}.bytes")
        allocations = _number(stack.get("allocations"), f"{at}.allocations")
        if nbytes > 0:
            total = merged.setdefault(key, [0.0, 0.0])
            total[0] += nbytes
            total[1] += allocations
    argv = record.get("argv")
    return Profile(
        pid=_whole(record.get("pid"), f"process {record.get('pid')!r}: pid"),
        label=process_label(record),
        command=shorten(" ".join(map(str, argv)) if isinstance(argv, list) else ""),
        rate=_whole(sites.get("rate"), f"{where}.rate"),
        samples=_whole(sites.get("samples"), f"{where}.samples"),
        lost=_whole(sites.get("lost", 0), f"{where}.lost"),
        stacks=tuple(Stack(frames, b, a) for frames, (b, a) in merged.items()),
    )


def profiles_from_report(report: Dict[str, Any]) -> List[Profile]:
    """One profile per process of `report` (schema ``bump_global.report/2``) that has
    sampled stacks with bytes, in the report's order (the root first).

    A process without ``sites`` (sampling was off) or with no stack is left out
    (:func:`processes_without_samples` names them).  Identical stacks are merged, a
    stack with no frame is ``[no Python stack]``.  Raises :class:`ReportError` for
    anything that is not such a report or is damaged.
    """
    profiles = []
    for record in _records(report):
        if record.get("sites") is not None:
            profile = _profile(record, record["sites"])
            if profile.stacks:
                profiles.append(profile)
    return profiles


def processes_without_samples(report: Dict[str, Any]) -> List[str]:
    """The labels of the processes of `report` that contribute nothing to a graph: no
    ``sites`` (sampling was off there) or no stack with bytes."""
    return [process_label(record) for record in _records(report)
            if record.get("sites") is None or not _profile(record, record["sites"]).stacks]


# -------------------------------------------------------------------------- tree


class Node:
    """A frame of the graph: a location under a given parent, with the estimated bytes
    and allocations of every stack that passes through it.

    ``kind`` is ``"frame"`` (code), ``"special"`` (a marker such as ``[truncated]``),
    ``"process"`` (a process, named by its label) or ``"root"`` (all processes).
    """

    __slots__ = ("function", "file", "line", "kind", "bytes", "allocations", "_children")

    def __init__(self, function: str, file: str = "", line: int = 0,
                 kind: str = "frame") -> None:
        self.function = function
        self.file = file
        self.line = line
        self.kind = kind
        self.bytes = 0.0
        self.allocations = 0.0
        self._children: Dict[Any, Node] = {}

    @property
    def name(self) -> str:
        return Location(self.function, self.file, self.line).name

    def child(self, key: Any, function: str, file: str = "", line: int = 0,
              kind: str = "frame") -> Node:
        """The child known by `key`, made on first use."""
        node = self._children.get(key)
        if node is None:
            node = self._children[key] = Node(function, file, line, kind)
        return node

    @property
    def children(self) -> List[Node]:
        """The heaviest first (ties by function, file, line): the graph's left-to-right
        order."""
        return sorted(self._children.values(),
                      key=lambda node: (-node.bytes, node.function, node.file, node.line))

    def add(self, frames: Sequence[Location], nbytes: float, allocations: float) -> None:
        """Count a stack below this node (this node included)."""
        node = self
        node.bytes += nbytes
        node.allocations += allocations
        for frame in frames:
            node = node.child(frame, frame.function, frame.file, frame.line,
                              "special" if frame.special else "frame")
            node.bytes += nbytes
            node.allocations += allocations


def build_tree(profiles: Sequence[Profile]) -> Node:
    """The graph's root: the process itself with one profile; with several, a root
    ``all (N processes)`` whose children are the processes, labelled."""
    if len(profiles) == 1:
        root = Node(profiles[0].label, kind="process")
        for stack in profiles[0].stacks:
            root.add(stack.frames, stack.bytes, stack.allocations)
        return root
    root = Node(f"all ({len(profiles)} processes)", kind="root")
    for index, profile in enumerate(profiles):
        process = root.child(("process", index), profile.label, kind="process")
        for stack in profile.stacks:
            root.bytes += stack.bytes
            root.allocations += stack.allocations
            process.add(stack.frames, stack.bytes, stack.allocations)
    return root


def preorder(root: Node) -> List[Tuple[Node, int]]:
    """(node, parent's index) for every node, parents before children, children in
    :attr:`Node.children` order; the root's parent is -1.  A node's index is its id in
    the HTML page (``#zoom=ID``)."""
    order: List[Tuple[Node, int]] = []
    pending: List[Tuple[Node, int]] = [(root, -1)]
    while pending:
        node, parent = pending.pop()
        order.append((node, parent))
        here = len(order) - 1
        pending.extend((child, here) for child in reversed(node.children))
    return order


# ------------------------------------------------------------------------ folded


def folded_name(name: str) -> str:
    """`name` as a frame of a folded line: no ``;`` (:data:`FOLDED_SEMICOLON` instead),
    no line break or other control character (a space instead)."""
    return "".join(" " if ord(c) < 32 or c == "\x7f" else c
                   for c in name.replace(";", FOLDED_SEMICOLON))


def folded_lines(profiles: Sequence[Profile]) -> Iterator[Tuple[str, int]]:
    """(frames joined by ``;``, bytes rounded) per distinct stack, sorted; stacks that
    round to 0 bytes are left out.  With several profiles the process's label is the
    first frame."""
    totals: Dict[str, float] = {}
    for profile in profiles:
        prefix = [profile.label] if len(profiles) > 1 else []
        for stack in profile.stacks:
            line = ";".join(folded_name(name)
                            for name in prefix + [frame.name for frame in stack.frames])
            totals[line] = totals.get(line, 0.0) + stack.bytes
    for line in sorted(totals):
        count = round(totals[line])
        if count > 0:
            yield line, count


def render_folded(profiles: Sequence[Profile]) -> str:
    return "".join(f"{line} {count}\n" for line, count in folded_lines(profiles))


# -------------------------------------------------------------------- speedscope


def speedscope_document(profiles: Sequence[Profile], title: str) -> Dict[str, Any]:
    """The speedscope file as a dict: a sampled profile per process (unit bytes, one
    sample per distinct stack, weighted by its bytes), frames shared; the profile shown
    first is the one with the most bytes."""
    from bump_global._version import __version__

    frames: List[Dict[str, Any]] = []
    index: Dict[Location, int] = {}
    documents = []
    for profile in profiles:
        samples = []
        for stack in profile.stacks:
            sample = []
            for frame in stack.frames:
                if frame not in index:
                    index[frame] = len(frames)
                    entry: Dict[str, Any] = {"name": frame.name}
                    if frame.file:
                        entry.update(file=frame.file, line=frame.line)
                    frames.append(entry)
                sample.append(index[frame])
            samples.append(sample)
        weights = [stack.bytes for stack in profile.stacks]
        documents.append({"type": "sampled", "name": profile.label, "unit": "bytes",
                          "startValue": 0, "endValue": sum(weights),
                          "samples": samples, "weights": weights})
    heaviest = max(range(len(profiles)), key=lambda k: profiles[k].bytes) if profiles else 0
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": frames},
            "profiles": documents, "name": title, "activeProfileIndex": heaviest,
            "exporter": f"bump_global {__version__}"}


def render_speedscope(profiles: Sequence[Profile], title: str) -> str:
    return json.dumps(speedscope_document(profiles, title), separators=(",", ":")) + "\n"


# -------------------------------------------------------------------------- html

#: The kinds of node, as the page's script numbers them.
KINDS = {"frame": 0, "special": 1, "process": 2, "root": 3}


def page_data(profiles: Sequence[Profile]) -> Dict[str, Any]:
    """What the page's script draws: the nodes in :func:`preorder` (the index is the
    id), as columns; strings (functions, files) once each in ``strings``.  Bytes are
    rounded to a tenth, allocations to a hundredth: estimates need no more, and the
    page of a large profile stays small."""
    strings: Dict[str, int] = {}

    def string(text: str) -> int:
        return strings.setdefault(text, len(strings))

    columns: Dict[str, List[Any]] = {key: [] for key in
                                     ("parent", "function", "file", "short", "line", "bytes",
                                      "allocations", "kind")}
    for node, parent in preorder(build_tree(profiles)):
        columns["parent"].append(parent)
        columns["function"].append(string(node.function))
        columns["file"].append(string(node.file))
        columns["short"].append(string(short_path(node.file)))  # the frames' labels
        columns["line"].append(node.line)
        columns["bytes"].append(round(node.bytes, 1))
        columns["allocations"].append(round(node.allocations, 2))
        columns["kind"].append(KINDS[node.kind])
    return {"strings": list(strings), "nodes": columns}


def embed_json(value: Any) -> str:
    """`value` as JSON that is inert inside ``<script type="application/json">``: no
    ``<``, ``>`` or ``&`` (a name holding ``</script>`` cannot close the element)."""
    return (json.dumps(value, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _count(value: float) -> str:
    return f"{round(value):,}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def header_lines(profiles: Sequence[Profile]) -> List[str]:
    """The totals under the title: bytes and allocations, samples and the rate."""
    nbytes = sum(profile.bytes for profile in profiles)
    allocations = sum(profile.allocations for profile in profiles)
    samples = sum(profile.samples for profile in profiles)
    lost = sum(profile.lost for profile in profiles)
    rates = sorted({profile.rate for profile in profiles})
    rate = format_size(rates[0]) if len(rates) == 1 else \
        f"{format_size(rates[0])} to {format_size(rates[-1])}"
    totals = [f"{format_size(nbytes)} allocated", f"{_count(allocations)} allocations",
              f"{_plural(samples, 'sample', 'samples')}, one per {rate} on average"]
    if lost:
        totals.append(f"{_plural(lost, 'sample', 'samples')} lost (not in the graph)")
    if len(profiles) > 1:
        totals.append(_plural(len(profiles), "process", "processes"))
    return [" \u00b7 ".join(totals)]


def render_html(profiles: Sequence[Profile], title: str, notes: Sequence[str] = ()) -> str:
    from bump_global._flamegraph_page import PAGE

    header = "".join(f'<p class="totals">{html.escape(line)}</p>'
                     for line in header_lines(profiles))
    header += "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    return (PAGE.replace("{{TITLE}}", html.escape(title))
            .replace("{{HEADER}}", header)
            .replace("{{DATA}}", embed_json(page_data(profiles))))


# ------------------------------------------------------------------------ output


def default_title(profiles: Sequence[Profile]) -> str:
    """``Allocations of COMMAND`` (the first process's command line)."""
    return f"Allocations of {profiles[0].command}" if profiles else "Allocations"


def format_for_path(path: str) -> str:
    """The format a file name asks for (:data:`EXTENSIONS`); html for any other name."""
    lower = str(path).lower()
    for ending, fmt in EXTENSIONS.items():
        if lower.endswith(ending):
            return fmt
    return "html"


def render(profiles: Sequence[Profile], fmt: str, title: Optional[str] = None,
           notes: Sequence[str] = ()) -> str:
    """The graph of `profiles` in `fmt` (one of :data:`FORMATS`) as text.

    `title` defaults to :func:`default_title`.  `notes` are lines shown under the
    page's header (html only: the other formats have no place for them), e.g. the
    processes that :func:`processes_without_samples` names.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not profiles:
        raise ValueError("nothing to draw: no process has sampled stacks")
    title = default_title(profiles) if title is None else title
    if fmt == "html":
        return render_html(profiles, title, notes)
    if fmt == "folded":
        return render_folded(profiles)
    return render_speedscope(profiles, title)


def write(profiles: Sequence[Profile], path: str, fmt: Optional[str] = None,
          title: Optional[str] = None, notes: Sequence[str] = ()) -> None:
    """:func:`render` into the file `path` (UTF-8, ``\\n`` line ends); `fmt` defaults
    to :func:`format_for_path`."""
    text = render(profiles, format_for_path(path) if fmt is None else fmt, title, notes)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)
