"""Does an engine change alter the hot path?  The hooks' machine code, before and after.

    python scripts/hooks_disasm.py [--python PY] [--rev REV] [--functions f,g,...]

Builds the C core of this working tree and of git revision REV (default HEAD) with
PY (default: this interpreter), in temporary copies, disassembles the hook
functions CPython calls (objdump), names addresses by their symbols (the targets
of calls and jumps, and RIP-relative data: they move with any change elsewhere),
and prints, per function, whether
its instructions are identical, else the two listings side by side as a unified
diff.  Exit status 0 when every hook is identical, 1 otherwise.

The default functions are the fast paths: the malloc, calloc, free and realloc
hooks of each domain, under the default policy and under reclaim="classes".
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

REPO = Path(__file__).resolve().parent.parent
HOOKS = [f"{domain}_{op}{suffix}" for suffix in ("", "_classes")
         for domain in ("obj", "mem", "raw") for op in ("malloc", "calloc", "free", "realloc")
         if not (suffix and domain == "raw")]


def build(tree: Path, python: str) -> Path:
    """Build the C core of the source tree `tree` in place; the path of the .so."""
    subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next((tree / "bump_global").glob("_core.*.so"))


def copy_worktree(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", "*.so", "__pycache__", "build", "*.egg-info", ".pytest_cache"))
    return dest


def copy_revision(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


_ADDRESS = re.compile(r"\b(?:0x)?[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>")


def functions(so: Path, names: Sequence[str]) -> Dict[str, List[str]]:
    """name -> its instructions, normalised (no addresses, no encodings)."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "intel", str(so)],
                          check=True, capture_output=True, text=True).stdout
    wanted = set(names)
    result: Dict[str, List[str]] = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            current = head.group(1) if head.group(1) in wanted else None
            if current:
                result[current] = []
            continue
        if current and "\t" in line:
            instruction = line.split("\t", 1)[1].strip()
            # A RIP-relative operand is named by objdump's comment (`# addr
            # <symbol+offset>`): keep the symbol and offset, not the distance.
            comment = re.search(r"#\s+[0-9a-f]+ <([^>]+)>$", instruction)
            instruction = re.sub(r"\s+#.*$", "", instruction)
            if comment:
                instruction = re.sub(r"rip\+0x[0-9a-f]+", f"rip+<{comment.group(1)}>",
                                     instruction)
            # A jump or call names its target: keep the symbol, not the address.
            instruction = _ADDRESS.sub(lambda m: f"<{m.group(1)}>", instruction)
            result[current].append(instruction)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--functions", default=",".join(HOOKS))
    ns = ap.parse_args(argv)
    if shutil.which("objdump") is None:
        print("objdump not found (Debian: apt install binutils)", file=sys.stderr)
        return 2
    names = ns.functions.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        before = functions(build(copy_revision(ns.rev, Path(tmp) / "before"), ns.python), names)
        after = functions(build(copy_worktree(Path(tmp) / "after"), ns.python), names)
    same = True
    for name in names:
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            print(f"{name}: {'absent before' if old is None else 'absent now'}")
            same = same and old is None and new is None
        elif old == new:
            print(f"{name}: identical ({len(new)} instructions)")
        else:
            same = False
            print(f"{name}: differs ({len(old)} -> {len(new)} instructions)")
            sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(
                old, new, f"{name} at {ns.rev}", f"{name} now", lineterm="", n=2))
    print("every hook identical" if same else "the hooks changed", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
