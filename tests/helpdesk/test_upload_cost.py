"""What one upload may cost (issue 10, finding 4): measured, not timed.

Each input is built and cleaned by ``bench/uploads.py`` in a fresh Python process, whose peak
resident set (the kernel's high-water mark) is read before and after: the same allocations
each run, so the same figure give or take a few hundred kilobytes.  The budget is 80 MiB of
extra memory per upload; the tests keep a margin of 10 % (8 MiB).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a subprocess decoding each image bomb

BENCH = Path(__file__).resolve().parents[2] / "bench" / "uploads.py"
BUDGET_MIB = 80
MARGIN_MIB = 8


def cost(name: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--one", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures: dict[str, object] = json.loads(done.stdout)
    return figures


def test_the_worst_input_stays_under_the_budget_with_margin() -> None:
    """The most expensive input we know (about 69 MiB): 15 megapixels of noise in a 5 MB
    JPEG, read, decoded, then re-encoded until the 8 MiB output cap stops the encoder."""
    figures = cost("noisy JPEG at the cap, just under 5 MB")
    assert figures["outcome"] == "refused: too_big_encoded"
    assert isinstance(figures["peak_extra_mib"], float)
    assert 40 < figures["peak_extra_mib"] <= BUDGET_MIB - MARGIN_MIB


@pytest.mark.parametrize(
    ("name", "at_most_mib", "outcome"),
    [
        # Finding 4: a 39 KB palette PNG cost ~200 MiB (converted to RGBA).
        ("palette PNG at the cap, transparent", 24, "stored 3872x3872"),
        # Coefficients and pixels would pass the budget at full size: decoded at half size.
        ("progressive JPEG 5120x2880, 32 scans", BUDGET_MIB - MARGIN_MIB, "stored 2560x1440"),
        ("JPEG photo 4032x3024 to turn (EXIF)", 40, "stored 1512x2016"),
        # 4.4 MB read, 15 megapixels of 4 bytes, 7.4 MB written: about 66 MiB.
        ("CMYK JPEG at the cap", BUDGET_MIB - MARGIN_MIB, "stored 3872x3872"),
    ],
)
def test_known_bombs_cost_what_they_should(name: str, at_most_mib: int, outcome: str) -> None:
    figures = cost(name)
    assert str(figures["outcome"]).startswith(outcome)
    assert isinstance(figures["peak_extra_mib"], float)
    assert figures["peak_extra_mib"] <= at_most_mib
