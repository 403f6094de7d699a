"""The repository explains itself (docs/README.md): code, tests and deploy files cite the
project's own docs/ by id, never documents outside the repository, and every cited id is a
heading of the file it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("portal", "tests", "bench", "tools", "deploy")
SUFFIXES = {".py", ".html", ".txt", ".toml", ".conf", ".service", ".timer", ".yml", ".sh"}

#: A citation of a document kept outside the repository (the team's shared folder).
OUTSIDE = re.compile(
    r"\.\./shared|\bSPEC(?= ?[§R(]| section)|\bSECURITY(?= [A-Z]{1,2}-\d| section)|\bSTYLE(?= ?§)"
)
#: ``docs/rules.md R7``, ``docs/security.md EN-03``, ``docs/architecture.md §4``.
CITATION = re.compile(
    r"docs/(rules|security|architecture)\.md ((?:§\d+)|(?:R\d+)|(?:[A-Z]{1,2}-\d+)|(?:section \d+))"
)


def _files() -> list[Path]:
    found = [Path(__file__).resolve().parent.parent / "Makefile", ROOT / "pyproject.toml"]
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in SUFFIXES and "vendor" not in path.parts:
                found.append(path)
    return [p for p in found if p.resolve() != Path(__file__).resolve()]


def _headings(name: str) -> set[str]:
    ids: set[str] = set()
    for line in (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"#+ (?:(Section \d+)|(\S+))", line)
        if match:
            ids.add((match.group(1) or match.group(2)).lower())
    return ids


def test_no_citation_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_cited_id_is_a_heading_of_its_file() -> None:
    headings = {name: _headings(name) for name in ("rules", "security", "architecture")}
    missing = sorted(
        {
            f"docs/{name}.md {ident}"
            for path in _files()
            for name, ident in CITATION.findall(path.read_text(encoding="utf-8"))
            if ident.lower() not in headings[name]
        }
    )
    assert missing == []
