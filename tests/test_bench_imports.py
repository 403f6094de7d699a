"""Every bench script still imports against today's code (a renamed module must not leave a
bench that only fails on the day someone measures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(path.stem for path in (ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_bench_script_imports(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path('bench/{name}.py', run_name='x')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
