"""What one screenshot upload costs: peak extra memory and CPU of ``screenshots.clean``.

Run as ``.venv/bin/python bench/uploads.py`` (all inputs, a table) or ``… --one NAME`` (one
input, one JSON line: what the tests use).  Prints figures only.

Each input is built here with Pillow (no binary fixtures): the worst files we can make for the
memory a decode takes (at the pixel cap, in every mode Pillow stores with 4 bytes a pixel, a
palette image, 16-bit PNGs, a few-kilobyte file that decodes to the cap, progressive and CMYK
JPEGs, a JPEG that EXIF says to turn) and for its CPU (a progressive JPEG with many scans).

**How memory is measured.**  Each input is cleaned in a fresh Python process, so one input's
allocations (and the allocator's caches) cannot hide or inflate another's.  The child imports
everything and cleans a small image first (codecs loaded), then resets the kernel's high-water
mark of its resident set (``/proc/self/clear_refs``), reads its resident set size (RSS), opens
the file (as werkzeug hands over an upload larger than 500 kB: a file on disk), cleans it, and
reads the high-water mark again (``VmHWM``, what ``getrusage``'s ``ru_maxrss`` reports).  The
difference is the peak extra memory of one upload: the bytes read, the decoded pixels, the
libjpeg and zlib buffers, the re-encoded file.  RSS and not ``tracemalloc``: the pixels are
allocated by Pillow's C code, which ``tracemalloc`` does not see.  CPU is the process's user +
system time around the call (``getrusage``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from PIL import ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.helpdesk import screenshots

#: The budget of issue 10: extra memory per upload.
BUDGET_MIB = 80
MIB = 1024 * 1024
#: The largest square under the pixel cap, and a 5K screen.
SIDE = int(screenshots.MAX_PIXELS**0.5)
SCREEN = (5120, 2880)


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _screen(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Something like a screenshot: flat panels, lines of 'text', a gradient band."""
    width, height = size
    rng = random.Random(7)
    image = Image.new("RGB", size, (246, 247, 249))
    draw = ImageDraw.Draw(image)
    for top in range(0, height, 240):
        draw.rectangle((40, top + 20, width - 40, top + 220), fill=(255, 255, 255), outline=0)
        for line in range(top + 40, top + 200, 22):
            x = 60
            while x < width - 200:
                word = rng.randrange(20, 120)
                shade = rng.randrange(0, 90)
                draw.rectangle((x, line, x + word, line + 12), fill=(shade, shade, shade + 30))
                x += word + rng.randrange(8, 16)
    band = Image.linear_gradient("L").resize((width, 60))
    image.paste(Image.merge("RGB", (band, band, band)), (0, height // 2))
    return image.convert(mode) if mode != "RGB" else image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_raw(width: int, height: int, bit_depth: int, colour: int, row: bytes) -> bytes:
    """A PNG whose every row is ``row`` (filter byte included), compressed hard: tiny files
    that decode to the full size."""
    chunk = _chunk
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def palette_png() -> bytes:
    """Finding 4's file: a palette PNG at the pixel cap, a few tens of kilobytes."""
    image = Image.new("P", (SIDE, SIDE))
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
    draw = ImageDraw.Draw(image)
    for i in range(0, SIDE, 64):
        draw.line((0, i, SIDE, SIDE - i), fill=i % 256, width=9)
    return _save(image, "PNG", optimize=True, transparency=0)


def rgba_zero_png() -> bytes:
    """A few kilobytes that decode to 15 megapixels of RGBA (the smallest file at the cap)."""
    return _png_raw(SIDE, SIDE, 8, 6, b"\x00" * (1 + SIDE * 4))


def interlaced_png() -> bytes:
    """The same, interlaced (Adam7: seven passes over the image)."""
    packer = zlib.compressobj(9)
    rows = []
    for x0, y0, dx, dy in (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        width, height = -(-(SIDE - x0) // dx), -(-(SIDE - y0) // dy)
        rows += [packer.compress(b"\x00" * (1 + width * 4)) for _ in range(height)]
    body = b"".join(rows) + packer.flush()
    plain = _png_raw(SIDE, SIDE, 8, 6, b"")
    ihdr = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 6, 0, 0, 1)
    head = plain[:8] + _chunk(b"IHDR", ihdr)
    return head + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def rgba16_png() -> bytes:
    """16-bit RGBA at the cap (Pillow decodes it to 8-bit RGBA)."""
    row = b"\x00" + bytes(range(256)) * (SIDE * 8 // 256) + b"\x00" * (SIDE * 8 % 256)
    return _png_raw(SIDE, SIDE, 16, 6, row)


def grey16_png() -> bytes:
    """16-bit grey at the cap (Pillow keeps 16 bits: 2 bytes a pixel)."""
    row = b"\x00" + bytes(range(256)) * (SIDE * 2 // 256) + b"\x00" * (SIDE * 2 % 256)
    return _png_raw(SIDE, SIDE, 16, 0, row)


def screen_png() -> bytes:
    return _save(_screen(SCREEN, "RGBA"), "PNG", compress_level=9)


def screen_jpeg() -> bytes:
    return _save(_screen(SCREEN), "JPEG", quality=90)


def cmyk_jpeg() -> bytes:
    return _save(_screen((SIDE, SIDE), "CMYK"), "JPEG", quality=25)


def _scans(data: bytes) -> list[tuple[int, int]]:
    """Where each scan of a JPEG starts and ends (its SOS marker to the next marker)."""
    found, pos = [], data.find(b"\xff\xda")
    while pos != -1:
        end = screenshots._JPEG_MARKER.search(
            data, pos + 2 + int.from_bytes(data[pos + 2 : pos + 4])
        )
        stop = end.start() if end else len(data)
        found.append((pos, stop))
        pos = data.find(b"\xff\xda", stop)
    return found


def _more_scans(data: bytes, scans: int) -> bytes:
    """``data`` (a progressive JPEG) with its smallest scan repeated until it has ``scans``
    scans: libjpeg warns about the bogus progression and decodes every one of them."""
    have = _scans(data)
    start, stop = min(have, key=lambda span: span[1] - span[0])
    end = data.rfind(b"\xff\xd9")
    return data[:end] + data[start:stop] * (scans - len(have)) + data[end:]


def noisy_jpeg() -> bytes:
    """15 megapixels of noise, just under 5 MB: the most bytes read, decoded and written."""
    rng = random.Random(3)
    image = Image.frombytes("L", (SIDE, SIDE), rng.randbytes(SIDE * SIDE)).convert("RGB")
    quality = 30
    while True:
        data = _save(image, "JPEG", quality=quality)
        if len(data) > screenshots.MAX_BYTES:
            return _save(image, "JPEG", quality=quality - 2)
        quality += 2


def progressive_screen_jpeg() -> bytes:
    """A 5K screenshot as a progressive 4:2:0 JPEG with the most scans allowed: too costly
    at full size (coefficients and pixels), decoded at half size."""
    data = _save(_screen(SCREEN), "JPEG", quality=90, progressive=True, subsampling=2)
    return _more_scans(data, screenshots.MAX_JPEG_SCANS)


def progressive_full_jpeg() -> bytes:
    """The largest progressive 4:2:0 JPEG decoded at full size (cost just under the budget)."""
    side = int((screenshots.MAX_DECODE_BYTES / 7) ** 0.5) - 16
    data = _save(_screen((side, side)), "JPEG", quality=90, progressive=True, subsampling=2)
    return _more_scans(data, screenshots.MAX_JPEG_SCANS)


def progressive_444_jpeg() -> bytes:
    """Progressive 4:4:4 at 5K: its coefficients alone pass the budget, so it is refused."""
    return _save(_screen(SCREEN), "JPEG", quality=90, progressive=True, subsampling=0)


def many_scans_jpeg() -> bytes:
    """A progressive JPEG with 5,000 scans (seconds of CPU if decoded): refused unread."""
    data = _save(_screen((640, 480)), "JPEG", quality=90, progressive=True)
    return _more_scans(data, 5_000)


def turned_photo_jpeg() -> bytes:
    """A phone photo (4032 × 3024) that EXIF says to turn: turning needs a second copy, so it
    is decoded at half size."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(_screen((4032, 3024)), "JPEG", quality=90, exif=exif)


def pixel_flood_png() -> bytes:
    """20,000 × 20,000 one-bit pixels in about 50 kB: refused from its header."""
    return _png_raw(20_000, 20_000, 1, 0, b"\x00" * (1 + 20_000 // 8))


INPUTS: dict[str, tuple[Callable[[], bytes], str]] = {
    "palette PNG at the cap, transparent": (palette_png, "p.png"),
    "RGBA PNG, zeros at the cap (tiny file)": (rgba_zero_png, "z.png"),
    "interlaced RGBA PNG, zeros at the cap": (interlaced_png, "i.png"),
    "16-bit RGBA PNG at the cap": (rgba16_png, "r16.png"),
    "16-bit grey PNG at the cap": (grey16_png, "g16.png"),
    "RGBA PNG screenshot 5120x2880": (screen_png, "s.png"),
    "baseline JPEG screenshot 5120x2880": (screen_jpeg, "s.jpg"),
    "CMYK JPEG at the cap": (cmyk_jpeg, "c.jpg"),
    "noisy JPEG at the cap, just under 5 MB": (noisy_jpeg, "n.jpg"),
    "progressive JPEG 5120x2880, 32 scans": (progressive_screen_jpeg, "p.jpg"),
    "progressive JPEG, largest at full size": (progressive_full_jpeg, "pf.jpg"),
    "progressive 4:4:4 JPEG 5120x2880": (progressive_444_jpeg, "p444.jpg"),
    "progressive JPEG, 5,000 scans": (many_scans_jpeg, "m.jpg"),
    "JPEG photo 4032x3024 to turn (EXIF)": (turned_photo_jpeg, "t.jpg"),
    "pixel flood 20000x20000 PNG": (pixel_flood_png, "f.png"),
}


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(path: Path, filename: str) -> dict[str, Any]:
    """Clean the file at ``path`` in this process; what it cost (run in a fresh process)."""
    screenshots.clean(io.BytesIO(_save(_screen((320, 240)), "PNG")), "warm.png")
    screenshots.clean(io.BytesIO(_save(_screen((320, 240)), "JPEG")), "warm.jpg")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark = the RSS now
    before = _status("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    with path.open("rb") as upload:
        try:
            result = screenshots.clean(upload, filename)
            outcome = f"stored {result.width}x{result.height}, {len(result.data) // 1024} kB"
        except screenshots.ScreenshotRefused as refused:
            outcome = f"refused: {refused.reason}"
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_extra_mib": round((_status("VmHWM") - before) / MIB, 1),
        "cpu_s": round(
            after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime,
            2,
        ),
        "outcome": outcome,
    }


def measure_in_child(name: str, workdir: Path) -> dict[str, Any]:
    """Build input ``name`` and measure it in a fresh Python process."""
    build, filename = INPUTS[name]
    data = build()
    path = workdir / filename
    path.write_bytes(data)
    child = subprocess.run(
        [sys.executable, __file__, "--measure", str(path), filename],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(child.stdout)
    figures["input_kb"] = len(data) // 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=sorted(INPUTS), help="one input, as a JSON line")
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.one:
            print(json.dumps(measure_in_child(args.one, Path(tmp))))
            return
        print(f"| input | file | peak extra memory | CPU | result | ≤ {BUDGET_MIB} MiB |")
        print("|---|---:|---:|---:|---|---|")
        for name in INPUTS:
            f = measure_in_child(name, Path(tmp))
            verdict = "PASS" if f["peak_extra_mib"] <= BUDGET_MIB else "MISS"
            print(
                f"| {name} | {f['input_kb']:,} kB | {f['peak_extra_mib']} MiB "
                f"| {f['cpu_s']} s | {f['outcome']} | {verdict} |",
                flush=True,
            )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
