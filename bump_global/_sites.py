"""Where the bytes come from: allocation samples and the sites they name.

With ``install(sites=True)`` (``--sites``, ``BUMP_GLOBAL_SITES=1``) the C core
samples allocations by bytes -- on average one every ``sites_rate`` bytes,
intervals exponentially distributed -- and records the Python stack of each
sample (bump_global/core/sampling.c, sites.c, frames.c).  The records go to a
file: an anonymous one, or ``<session>/<pid>.sites`` when the process is part of
a session (so that the session can read them even if the process is killed).
This module turns the records into estimates:

- each sample of an allocation of ``s`` bytes, taken with mean interval ``T``,
  stands for ``s / (1 - exp(-s / T))`` bytes and ``1 / (1 - exp(-s / T))``
  allocations (a sampled allocation of ``s`` bytes is taken with probability
  ``1 - exp(-s / T)``: dividing by it makes every total unbiased);
- a *stack* is a call path (outermost first), with its estimated bytes and
  allocations; a *site* is the innermost Python frame of a stack: the line that
  allocated (or called the C code that did).

The process's sites in the report and JSON (:func:`sites_dict`), ``measure()``'s
``m.sites(n)`` (the samples of one block), the pytest plugin's message, and the
flame graph (bump_global/_flamegraph.py) all read them here.  A record a killed
process did not finish is ignored.
"""

from __future__ import annotations

import math
import os
import struct
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

from bump_global._errors import BumpGlobalError, load_core
from bump_global._flamegraph import short_path

MAGIC = b"BGSITES1"
_LOCATION = struct.Struct("=ccHHHIii")   # 'L', 0, name len, file len, 0, id, line, first line
_SAMPLE = struct.Struct("=cBHIQQQ")      # 'S', flags, frames, 0, sequence, size, mean
_ID = struct.Struct("=I")
_DOMAINS = ("raw", "mem", "obj")
_TRUNCATED = 4
_GROWTH = 8

#: The location of a sample taken with no Python frame on its thread's stack.
NO_STACK = ("[no Python stack]", "", 0)
#: The outermost frame of a stack deeper than the C core keeps.
TRUNCATED = ("[truncated]", "", 0)

Location = Tuple[str, str, int]  # function, file, line

_output: Optional[IO[bytes]] = None     # the file the records go to
_directory: Optional[str] = None        # a session's directory, or None (anonymous)
_fork_hook = False


def _core() -> Any:
    return load_core()


def _open(directory: Optional[str]) -> IO[bytes]:
    """A new file for this process's records, starting with MAGIC."""
    if directory is None:
        out = _anonymous_file()
    else:
        out = open(os.path.join(directory, f"{os.getpid()}.sites"), "w+b")
    out.write(MAGIC)
    out.flush()
    return out


def _anonymous_file() -> IO[bytes]:
    """A file with no name: memfd_create where there is one (Linux), which spares
    each sampling process the import of tempfile (about 10 ms), else tempfile's."""
    try:
        return open(os.memfd_create("bump_global-sites", os.MFD_CLOEXEC), "w+b")
    except (AttributeError, OSError):
        import tempfile

        return tempfile.TemporaryFile(prefix="bump_global-sites-")


def start(rate: float, directory: Optional[str] = None) -> None:
    """Sample every `rate` bytes on average from now on (or change the rate);
    records go to `directory` (a session's) or an anonymous file."""
    global _output, _directory, _fork_hook
    core = _core()
    if _output is None:
        _directory = directory
        _output = _open(directory)
        core.sites_output(_output.fileno())
        if not _fork_hook and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)
            _fork_hook = True
    elif directory is not None and directory != _directory:
        move_to(directory)
    core.sites_start(float(rate))


def stop() -> None:
    """Sample no more (what was recorded stays readable)."""
    _core().sites_stop()


def sample_for_a_while(rate: float) -> Any:
    """Sample every `rate` bytes on average from now on; the function that puts
    sampling back as it was (off, or at its former rate)."""
    on, former = _core().sites_state()[:2]
    start(rate)
    if on:
        return lambda: _core().sites_start(former)
    return stop


def active() -> bool:
    """True while allocations are being sampled."""
    try:
        return bool(_core().sites_state()[0])
    except BumpGlobalError:
        return False


def move_to(directory: str) -> None:
    """From now on write to `directory`/<pid>.sites, the records so far included
    (a process that joins a session after its install)."""
    global _output, _directory
    old = _output
    if old is None or directory == _directory:
        _directory = directory
        return
    core = _core()
    core.sites_flush()
    data = _read_all(old)
    new = open(os.path.join(directory, f"{os.getpid()}.sites"), "w+b")
    new.write(data)
    new.flush()
    core.sites_output(new.fileno())
    _output, _directory = new, directory
    old.close()


def _after_fork() -> None:
    """In a forked child: a file of its own (the C core dropped the parent's
    waiting records and numbers locations anew)."""
    global _output
    if _output is None:
        return
    try:
        _output.close()  # the child's copy of the parent's file: not its to write
    except OSError:
        pass
    try:
        _output = _open(_directory if _directory and os.path.isdir(_directory) else None)
        _core().sites_output(_output.fileno())
    except Exception:  # no file: the child's samples wait in the buffer, then are lost
        _output = None


def _read_all(file: IO[bytes]) -> bytes:
    chunks = []
    offset = 0
    fd = file.fileno()
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def own_records() -> Optional[bytes]:
    """This process's records so far (flushed first), or None if it samples nothing."""
    if _output is None:
        return None
    _core().sites_flush()
    return _read_all(_output)


def state() -> Dict[str, Any]:
    """The C core's sampling state: on, rate, samples taken, recorded, lost,
    reached while recording (must stay 0), locations."""
    names = ("on", "rate", "taken", "recorded", "lost", "inside", "locations")
    return dict(zip(names, _core().sites_state()))


# ------------------------------------------------------------------ reading


class Samples:
    """The samples of a stream of records: per stack (innermost location first),
    the estimated bytes and allocations, and the count of samples."""

    def __init__(self) -> None:
        self.locations: Dict[int, Location] = {}
        self.stacks: Dict[Tuple[Location, ...], List[float]] = {}  # -> [bytes, allocs, n]
        self.samples = 0
        self.rates: Dict[int, int] = {}  # mean interval -> samples taken with it

    def add(self, stack: Tuple[Location, ...], size: int, mean: int, growth: bool) -> None:
        probability = -math.expm1(-size / mean) if mean > 0 else 1.0
        figures = self.stacks.setdefault(stack, [0.0, 0.0, 0])
        figures[0] += size / probability
        figures[1] += 0.0 if growth else 1.0 / probability
        figures[2] += 1
        self.samples += 1
        self.rates[mean] = self.rates.get(mean, 0) + 1

    @property
    def bytes(self) -> float:
        return sum(figures[0] for figures in self.stacks.values())

    @property
    def allocations(self) -> float:
        return sum(figures[1] for figures in self.stacks.values())


def parse(data: bytes, first: int = 0, end: Optional[int] = None) -> Samples:
    """The samples of a stream of records whose sequence numbers are in
    [first, end) (all by default).  A last record cut short is ignored."""
    result = Samples()
    if not data.startswith(MAGIC):
        return result
    locations = result.locations
    # Samples of the same frames share one stack, named once: a location number
    # means one location for the whole stream (its record comes before any use).
    stacks: Dict[Tuple[bytes, int], Tuple[Location, ...]] = {}
    i = len(MAGIC)
    size = len(data)
    unpack_sample, sample_size = _SAMPLE.unpack_from, _SAMPLE.size
    add = result.add
    while i < size:
        tag = data[i]
        if tag == 0x53:  # "S", the most frequent
            if i + sample_size > size:
                break
            _, flags, nframes, _, seq, nbytes, mean = unpack_sample(data, i)
            j = i + sample_size
            if j + 4 * nframes > size:
                break
            if first <= seq and (end is None or seq < end):
                key = (data[j:j + 4 * nframes], flags & _TRUNCATED)
                stack = stacks.get(key)
                if stack is None:  # a stack met for the first time: name its frames
                    ids = struct.unpack_from(f"={nframes}I", data, j)
                    stack = _without_the_tool(tuple(locations.get(k, ("?", "", 0))
                                                    for k in ids)) or (NO_STACK,)
                    if flags & _TRUNCATED:
                        stack = stack + (TRUNCATED,)
                    stacks[key] = stack
                add(stack, nbytes, mean, bool(flags & _GROWTH))
            i = j + 4 * nframes
        elif tag == 0x4C:  # "L"
            if i + _LOCATION.size > size:
                break
            _, _, name_len, file_len, _, ident, line, first_line = _LOCATION.unpack_from(data, i)
            j = i + _LOCATION.size
            if j + name_len + file_len > size:
                break
            name = data[j:j + name_len].decode("utf-8", "replace")
            path = data[j + name_len:j + name_len + file_len].decode("utf-8", "replace")
            locations[ident] = (name, path, line)
            i = j + name_len + file_len
        else:
            break  # not a record: a damaged stream ends here
    return result


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _ours(location: Location) -> bool:
    """A frame of bump_global's own (its command line running the target) or of runpy."""
    path = location[1]
    return (path.startswith(_PACKAGE) or path == "<frozen runpy>"
            or os.path.basename(path) in ("runpy.py", "bump-global", "bump-global-script.py"))


def _without_the_tool(stack: Tuple[Location, ...]) -> Tuple[Location, ...]:
    """`stack` (innermost first) without its outermost frames that are the command
    line's, which runs the target (python's own tracebacks hide them too).  A stack
    that is all the command line's (reading and compiling the program's script)
    becomes empty, as python's own loading of a script has no Python frame."""
    end = len(stack)
    while end > 0 and _ours(stack[end - 1]):
        end -= 1
    return stack[:end]


def sites_dict(samples: Samples, lost: int = 0) -> Dict[str, Any]:
    """The ``sites`` of a process's JSON record (docs/report.md, "JSON"): every
    stack with its estimates, outermost frame first, frames as indices into
    ``locations``."""
    index: Dict[Location, int] = {}
    stacks = []
    for stack, (nbytes, allocations, count) in sorted(
            samples.stacks.items(), key=lambda item: -item[1][0]):
        frames = []
        for location in reversed(stack):
            if location not in index:
                index[location] = len(index)
            frames.append(index[location])
        stacks.append({"frames": frames, "bytes": round(nbytes, 1),
                       "allocations": round(allocations, 2), "samples": count})
    rate = max(samples.rates, key=samples.rates.__getitem__) if samples.rates else None
    return {
        "rate": rate,
        "samples": samples.samples,
        "lost": lost,
        "bytes": round(samples.bytes, 1),
        "allocations": round(samples.allocations, 2),
        "locations": [{"function": f, "file": p, "line": n} for f, p, n in index],
        "stacks": stacks,
    }


def process_sites(end: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """This process's ``sites`` for its report (the samples taken before sequence
    number `end`, all by default), or None when it never sampled."""
    data = own_records()
    if data is None:
        return None
    return sites_dict(parse(data, 0, end), state()["lost"])


# ------------------------------------------------------------------ showing


def top_sites(sites: Dict[str, Any], n: int = 10) -> List[Dict[str, Any]]:
    """The `n` sites (innermost frames) that allocated most, from a ``sites`` dict:
    function, file, line, bytes, allocations, share of the bytes, and the callers
    of the stack that holds most of the site's bytes (innermost first)."""
    locations = sites["locations"]
    total = sites["bytes"] or 1.0
    per_site: Dict[int, List[Any]] = {}
    for stack in sites["stacks"]:
        frames = stack["frames"]
        if not frames:
            continue
        figures = per_site.setdefault(frames[-1], [0.0, 0.0, None, -1.0])
        figures[0] += stack["bytes"]
        figures[1] += stack["allocations"]
        if stack["bytes"] > figures[3]:
            figures[2], figures[3] = frames[:-1], stack["bytes"]
    ranked = sorted(per_site.items(), key=lambda item: -item[1][0])[:n]
    return [{**locations[site], "bytes": nbytes, "allocations": allocations,
             "share": nbytes / total,
             "callers": [locations[k] for k in reversed(callers or [])]}
            for site, (nbytes, allocations, callers, _) in ranked]


def describe(location: Dict[str, Any]) -> str:
    """``function (file:line)``; a special location as its name alone."""
    if not location["file"]:
        return location["function"]
    return f"{location['function']} ({short_path(location['file'])}:{location['line']})"


def site_line(site: Dict[str, Any], callers: int = 1) -> str:
    """``load (parse.py:40) <- main (app.py:12)``: the site and its first callers."""
    return " <- ".join(describe(location) for location in
                       [site, *site["callers"][:callers]])


def format_sites(sites: Dict[str, Any], n: int, row: Any, size: Any,
                 label: str = "sites") -> List[str]:
    """The report's rows of a ``sites`` dict: a summary labelled `label`, then the
    top `n` sites (estimated bytes and share), with `row` the report's row
    formatter and `size` its size formatter."""
    if not sites["samples"]:
        return [row(label, f"no sample yet (one every {size(sites['rate'] or 0)} on "
                             "average): too little was allocated")]
    lines = [row(label, f"{sites['samples']:,} samples, one every "
                          f"{size(sites['rate'])} on average: estimates"
                          + (f"   {sites['lost']:,} lost" if sites["lost"] else ""))]
    for site in top_sites(sites, n):
        lines.append(row("", f"{100 * site['share']:5.1f}%  {size(site['bytes']):>10}  "
                             f"{site_line(site)}"))
    return lines


def measured(first: int, end: int) -> Optional[Dict[str, Any]]:
    """The ``sites`` of the samples whose sequence numbers are in [first, end), or
    None when this process samples nothing."""
    data = own_records()
    if data is None:
        return None
    return sites_dict(parse(data, first, end))


def sequence() -> Optional[int]:
    """Samples taken so far in this process (a report and measure() mark their start
    with it), or None when it never sampled."""
    if _output is None:
        return None
    return int(_core().sites_state()[2])


def merge_sites(many: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """One ``sites`` dict from several (the processes of a program): stacks with the
    same frames add up."""
    merged = Samples()
    lost = 0
    for sites in many:
        locations = [(loc["function"], loc["file"], loc["line"]) for loc in sites["locations"]]
        for stack in sites["stacks"]:
            key = tuple(locations[k] for k in reversed(stack["frames"]))
            figures = merged.stacks.setdefault(key, [0.0, 0.0, 0])
            figures[0] += stack["bytes"]
            figures[1] += stack["allocations"]
            figures[2] += stack.get("samples", 0)
        merged.samples += sites["samples"]
        lost += sites.get("lost", 0)
        if sites.get("rate"):
            merged.rates[sites["rate"]] = merged.rates.get(sites["rate"], 0) + sites["samples"]
    return sites_dict(merged, lost)


def from_records(records: Sequence[bytes]) -> Samples:
    """All samples of several streams (a process's file read by its session)."""
    merged = Samples()
    for data in records:
        one = parse(data)
        for stack, (nbytes, allocations, count) in one.stacks.items():
            figures = merged.stacks.setdefault(stack, [0.0, 0.0, 0])
            figures[0] += nbytes
            figures[1] += allocations
            figures[2] += count
        merged.samples += one.samples
        for rate, count in one.rates.items():
            merged.rates[rate] = merged.rates.get(rate, 0) + count
    return merged
