"""The lock files pin every dependency that pyproject.toml names, within its range.

A dependency added to pyproject.toml without ``make lock`` fails here, before ``make run`` or
``make test`` installs a set of versions nobody resolved.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", re.MULTILINE)
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, str]:
    text = (REPO / lock).read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        (
            "requirements-dev.lock",
            PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"],
        ),
        (
            "requirements-bench.lock",
            PROJECT["dependencies"] + PROJECT["optional-dependencies"]["bench"],
        ),
    ],
)
def test_the_lock_pins_every_dependency_within_its_range(
    lock: str, requirements: list[str]
) -> None:
    pinned = pins(lock)
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in {lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {req.name}=={pinned[name]}, outside {req.specifier}: run `make lock`"
        )


@pytest.mark.parametrize("other", ["requirements-dev.lock", "requirements-bench.lock"])
def test_the_other_locks_agree_with_the_runtime_lock(other: str) -> None:
    runtime, dev = pins("requirements.lock"), pins(other)
    differ = {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v}
    assert not differ, f"{other} pins other versions: {differ} (run `make lock`)"
