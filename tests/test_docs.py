"""The documents agree with the code and with themselves: the options table of
docs/options.md is the option table of bump_global/_config.py (``python
tests/test_docs.py`` rewrites it), every relative link of README.md and docs/ leads
to a file that exists, and nothing names a path outside the repository."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
OPTIONS_DOC = ROOT / "docs" / "options.md"
BEGIN = ("<!-- the options table: `python tests/test_docs.py` writes it from "
         "bump_global/_config.py -->")
END = "<!-- end of the options table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_options_table() -> str:
    sys.path.insert(0, str(ROOT))
    try:
        from bump_global import _config
    finally:
        sys.path.pop(0)
    rows: List[str] = [
        "| option (`install()` keyword) | command line | environment | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for group, options in (("install", _config.INSTALL_OPTIONS),
                           ("report", _config.SESSION_OPTIONS)):
        for option in options:
            name = f"`{option.name}`" if group == "install" else f"({option.name})"
            if option.kind == "flag":
                flag = f"`{option.flag}`, `--no-{option.flag[2:]}`"
                default = "on" if option.default else "off"
            else:
                flag = f"`{option.flag} {option.metavar or option.name.upper()}`"
                if option.kind == "bytes":
                    default = _config.format_size(option.default).replace(".0 ", " ")
                else:
                    default = "-" if option.default is None else str(option.default)
            what = option.help
            if option.choices:
                what += ": " + "; ".join(f"`{choice}`: {desc}"
                                         for choice, (_, desc) in option.choices.items())
            rows.append(f"| {name} | {flag} | `{option.env}` | {default} | {_cell(what)} |")
    return "\n".join(rows)


def _split(text: str) -> "tuple[str, str, str]":
    head, sep, rest = text.partition(BEGIN)
    assert sep, f"{OPTIONS_DOC.name} has no line {BEGIN!r}"
    body, sep, tail = rest.partition(END)
    assert sep, f"{OPTIONS_DOC.name} has no line {END!r}"
    return head, body, tail


def test_the_options_table_is_the_option_table_of_the_code() -> None:
    _, body, _ = _split(OPTIONS_DOC.read_text(encoding="utf-8"))
    assert body.strip() == render_options_table(), (
        "docs/options.md's table differs from bump_global/_config.py: "
        "run python tests/test_docs.py")


def _documents() -> List[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "experiments").glob("*.md"))]


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_leads_to_a_file() -> None:
    broken = []
    for doc in _documents():
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_no_document_names_a_path_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|/work/|/home/|/Users/|/tmp/bump")
    found = [f"{doc.relative_to(ROOT)}:{n}: {line.strip()}"
             for doc in _documents()
             for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
             if outside.search(line)]
    assert not found, found


if __name__ == "__main__":
    head, _, tail = _split(OPTIONS_DOC.read_text(encoding="utf-8"))
    OPTIONS_DOC.write_text(f"{head}{BEGIN}\n{render_options_table()}\n{END}{tail}",
                           encoding="utf-8")
    print(f"wrote the options table of {OPTIONS_DOC}")
