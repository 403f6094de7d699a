"""The Contact Us screenshot: checked by name and content, fully decoded, re-encoded
(docs/security.md UP-02), at a bounded cost in memory and CPU.

:func:`clean` is the only way an uploaded file becomes something we store.  It accepts a PNG
or JPEG only: the name must end in ``.png``, ``.jpg`` or ``.jpeg`` **and** Pillow must
recognise the content as one of those two formats (``Image.open(..., formats=["PNG", "JPEG"])``:
no other decoder ever sees the bytes, so an SVG, a GIF/JS polyglot, a PHP file renamed
``.png`` or a FITS bomb is refused unread).  The file is at most :data:`MAX_BYTES`; its
declared size is checked against :data:`MAX_PIXELS` *before* any pixel is decoded (a pixel
flood costs nothing), then the whole image is decoded (a truncated file is refused), and the
pixels alone are written out again as a new file of the same format.  That drops EXIF (GPS
positions, camera serials), text chunks, ICC profiles, comments and anything appended after
the image (polyglots), and turns the image the way EXIF said it is shown.

**Bounded cost** (issue 10, finding 4: a 39 KB palette PNG used to cost ~200 MiB).  Before any
pixel is decoded, the memory the decode will take is worked out from the header
(:func:`decode_cost`): the pixels in Pillow's own layout (1 byte a pixel for palette, grey and
1-bit images, 2 for 16-bit grey, 4 for everything else), a second copy when EXIF says the image
must be turned, and for a JPEG in several scans (progressive) libjpeg's buffer of every DCT
coefficient (2 bytes a sample).  Over :data:`MAX_DECODE_BYTES` a JPEG is decoded at a half, a
quarter or an eighth of its size (``Image.draft``: libjpeg scales while it decodes); anything
else is refused.  The image keeps its own mode: a palette image is re-encoded as a palette
image, a CMYK JPEG as CMYK, a 16-bit PNG as Pillow decoded it, so there is never a converted
copy.  The uploaded bytes are let go once decoded, and the re-encoded file may not grow past
:data:`MAX_STORED_BYTES` (the encoder stops there).  A progressive JPEG may have at most
:data:`MAX_JPEG_SCANS` scans (each scan is a pass over the whole image: thousands of them cost
seconds of CPU in a few kilobytes).  And one decode at a time per process (:data:`_decoding`):
a second upload waits up to :data:`DECODE_WAIT_SECONDS`, then is asked to send again; and
every decode runs in one thread of its own (:data:`_decoder`), so the memory it frees is
reused by the next one instead of being kept, thread by thread, by the allocator.  The
measured peaks are in ``bench/uploads.py`` and the README.

Pillow's own decompression-bomb guard is set to the same cap (``Image.MAX_IMAGE_PIXELS``, once,
at import; nothing else in the app uses Pillow): it raises :class:`PIL.Image.DecompressionBombError`
at twice the cap, and warns between one and two times it, after which our own check refuses.
"""

from __future__ import annotations

import io
import logging
import mmap
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import IO
from typing import Any
from typing import cast

from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
#: 15 megapixels: a 5K monitor's whole screen (5120 × 2880 ≈ 14.7 MP) still fits.
MAX_PIXELS = 15_000_000
#: The memory one decode may take (pixels, a turned copy, JPEG coefficients): 60 MiB, so that
#: with the upload (at most 5 MB) and the re-encoded file (at most 8 MiB) the peak stays under
#: 80 MiB.
MAX_DECODE_BYTES = 60 * 1024 * 1024
#: A re-encoded image larger than this is refused (an unusually incompressible picture): the
#: encoder is stopped when it gets there.
MAX_STORED_BYTES = 8 * 1024 * 1024
#: Scans in one JPEG.  Encoders write 1 (baseline) to about 10 (progressive); libjpeg-turbo's
#: own fuzzers stop at 500.  Each is a pass over the whole image.
MAX_JPEG_SCANS = 32
#: How long an upload waits for another one's decode in the same process before it is refused.
DECODE_WAIT_SECONDS = 10.0
FORMATS = ("PNG", "JPEG")
EXTENSIONS = (".png", ".jpg", ".jpeg")
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
JPEG_QUALITY = 90
#: zlib level for re-encoded PNGs: 6 (zlib's default) costs about twice the CPU of 3 on a
#: screenshot for a file a few per cent smaller.
PNG_COMPRESS_LEVEL = 3

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

NOT_AN_IMAGE = "The screenshot must be a PNG or JPEG image"
TOO_BIG = "The screenshot must be 5 MB or smaller"
EMPTY = "The selected screenshot is empty"
TOO_MANY_PIXELS = (
    "The screenshot is too large in pixels (at most 15 megapixels, for example 5120 × 2880): "
    "crop it to the part that shows the problem"
)
TOO_COSTLY = (
    "The screenshot is too large to open in this form of JPEG: save it as a PNG, "
    "or crop it to the part that shows the problem"
)
TOO_COSTLY_TO_TURN = (
    "The screenshot is marked to be shown turned, and is too large to turn: "
    "crop it to the part that shows the problem"
)
TOO_MANY_SCANS = (
    "The screenshot is a JPEG saved in too many passes (progressive scans): "
    "save it as a PNG or as a standard JPEG"
)
TOO_DETAILED = (
    "The screenshot has too much detail to store: crop it to the part that shows the problem"
)
BUSY = (
    "The Helpdesk is busy with other screenshots just now: "
    "choose your screenshot again and send the form in a minute"
)
DAMAGED = "The screenshot could not be read: it may be damaged. Save it again and choose it again"

#: One decode at a time in this process (a gunicorn worker serves several threads) ...
_decoding = threading.Lock()
#: ... and always in the same thread.  glibc gives each thread its own malloc arena and keeps
#: what a decode freed there for that thread's next use: four request threads decoding in turn
#: kept four decodes' worth of memory (measured: +176 MiB for four 57 MiB uploads).  One
#: decoding thread reuses the same memory every time.
_decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screenshot-decode")

#: A marker in a JPEG's entropy-coded data: 0xFF not followed by 0x00 (a stuffed byte), a
#: restart marker or another 0xFF (fill).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI = 0xDA, 0xD9
#: EXIF orientations that turn or flip the image (1 is "as stored").
_TURNING = frozenset(range(2, 9))


class ScreenshotRefused(ValueError):
    """The file is not a screenshot we accept; ``str(exc)`` is the message for the sender."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        #: A short word for the logs (never the file's name or content).
        self.reason = reason


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded screenshot, ready to store."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _extension(filename: str | None) -> str:
    name = (filename or "").strip().lower()
    if "\x00" in name or "/" in name or "\\" in name:
        return ""
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _read_capped(stream: IO[bytes], max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ScreenshotRefused(TOO_BIG, "too_big")
    if not data:
        raise ScreenshotRefused(EMPTY, "empty")
    return data


def jpeg_scans(data: bytes, stop_after: int = MAX_JPEG_SCANS) -> int:
    """The number of scans (SOS markers) in the JPEG ``data``, counting at most one past
    ``stop_after``.  Marker segments are skipped by their length, so a thumbnail inside EXIF
    is not counted; malformed data ends the count (the decoder then judges it)."""
    scans, pos, size = 0, 2, len(data)
    while pos + 4 <= size and scans <= stop_after:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _SOS:
            scans += 1
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return scans


def pixel_bytes(mode: str) -> int:
    """Bytes a pixel takes in Pillow's memory for ``mode``."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _jpeg_coefficient_bytes(image: Any, width: int, height: int) -> int:
    """libjpeg's whole-image coefficient buffer (multi-scan JPEGs): 64 two-byte coefficients
    per 8×8 block of every component, at the component's own sampling."""
    layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * 3
    h_max = max(h for _, h, _, _ in layers) or 1
    v_max = max(v for _, _, v, _ in layers) or 1
    mcus_x = -(-width // (8 * h_max))
    mcus_y = -(-height // (8 * v_max))
    blocks = sum(mcus_x * h * mcus_y * v for _, h, v, _ in layers)
    return blocks * 64 * 2


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, read without decoding any pixel (1 when there is none)."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # a PNG's eXIf chunk after the pixels is seen after the decode (see clean)
    try:
        value = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        return 1
    return value if isinstance(value, int) else 1


def decode_cost(image: Image.Image, scans: int, scale: int = 1) -> int:
    """The bytes that decoding ``image`` (opened, not loaded) at 1/``scale`` will hold at
    its peak: the decode itself, or turning it as EXIF says (a second copy of the pixels)."""
    width, height = image.size
    pixels = -(-width // scale) * -(-height // scale) * pixel_bytes(image.mode)
    decoding = pixels
    if image.format != "PNG" and (scans > 1 or image.info.get("progressive")):
        decoding += _jpeg_coefficient_bytes(image, width, height)
    turning = 2 * pixels if _orientation(image) in _TURNING else pixels
    return max(decoding, turning)


def _plan_decode(image: Image.Image, scans: int, max_decode_bytes: int) -> None:
    """Decode at full size when it fits, else (JPEG) at the largest size that fits."""
    if decode_cost(image, scans) <= max_decode_bytes:
        return
    if image.format == "PNG":  # within the pixel cap only turning it can cost that much
        raise ScreenshotRefused(TOO_COSTLY_TO_TURN, "decode_cost")
    for scale in (2, 4, 8):
        if decode_cost(image, scans, scale) <= max_decode_bytes:
            width, height = image.size
            if image.draft(image.mode, (width // scale, height // scale)) is None:
                break  # a JPEG Pillow cannot scale while decoding
            return
    raise ScreenshotRefused(TOO_COSTLY, "decode_cost")


class _CappedOutput:
    """Where the encoder writes the re-encoded file, stopped as soon as it passes ``cap``.

    An anonymous memory map of ``cap`` bytes, not a growing ``BytesIO``: its pages take memory
    only once written, and it never reallocates (a growing buffer can briefly hold two copies
    of itself, depending on the allocator's state: a peak that varies from run to run).
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._buffer = mmap.mmap(-1, cap)
        self._size = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self._size + size > self._cap:
            raise ScreenshotRefused(TOO_DETAILED, "too_big_encoded")
        self._buffer[self._size : self._size + size] = data
        self._size += size
        return size

    def getvalue(self) -> bytes:
        """The file, as bytes (a copy: call it once the pixels are let go)."""
        return self._buffer[: self._size]

    def close(self) -> None:
        self._buffer.close()


def _stored_mode(image: Image.Image, fmt: str) -> Image.Image:
    """The pixels in a mode the format stores: the decoded mode itself, always, for what
    Pillow's PNG and JPEG decoders give; a conversion only for anything unexpected."""
    keeps = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA") if fmt == "PNG" else ("L", "RGB")
    if image.mode in keeps or (fmt == "JPEG" and image.mode == "CMYK"):
        return image
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def _encode(image: Image.Image, fmt: str, transparency: Any, capped: _CappedOutput) -> None:
    out = cast("IO[bytes]", capped)  # the encoder only calls write() on it
    if fmt == "JPEG":
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
    elif transparency is not None and image.mode in ("P", "L", "RGB", "I", "I;16"):
        image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL, transparency=transparency)
    else:
        image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def clean(
    stream: IO[bytes],
    filename: str | None,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_decode_bytes: int = MAX_DECODE_BYTES,
    wait_seconds: float = DECODE_WAIT_SECONDS,
) -> CleanImage:
    """Check and re-encode an uploaded screenshot; raises :class:`ScreenshotRefused`.

    The name's extension must be on the allowlist; the *content* decides which of the two
    formats the image is (a PNG named ``.jpg`` is kept as the PNG it is).  The file is read
    only once this process's decode lock is held: an upload that waits holds no decoded bytes.
    """
    if _extension(filename) not in EXTENSIONS:
        raise ScreenshotRefused(NOT_AN_IMAGE, "extension")
    if not _decoding.acquire(timeout=wait_seconds):
        raise ScreenshotRefused(BUSY, "busy")
    try:
        job = _decoder.submit(_decode_and_encode, stream, max_bytes, max_pixels, max_decode_bytes)
        return job.result()
    finally:
        _decoding.release()


def _decode_and_encode(
    stream: IO[bytes], max_bytes: int, max_pixels: int, max_decode_bytes: int
) -> CleanImage:
    data = _read_capped(stream, max_bytes)
    source = io.BytesIO(data)  # shares ``data``'s buffer: no copy
    out = _CappedOutput(MAX_STORED_BYTES)
    try:
        # closing(): leaving a Pillow image's own ``with`` closes its file, not its pixels.
        with closing(Image.open(source, formats=list(FORMATS))) as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise ScreenshotRefused(TOO_MANY_PIXELS, "pixels")
            # The JPEG decoder reports a camera's multi-picture JPEG as "MPO": still a JPEG.
            fmt = "PNG" if image.format == "PNG" else "JPEG"
            scans = jpeg_scans(data) if fmt == "JPEG" else 0
            if scans > MAX_JPEG_SCANS:
                raise ScreenshotRefused(TOO_MANY_SCANS, "jpeg_scans")
            _plan_decode(image, scans, max_decode_bytes)
            del data
            image.load()  # decode every pixel now: a truncated or corrupt file fails here
            source.close()  # the uploaded bytes are no longer needed
            if _orientation(image) in _TURNING:
                if 2 * image.width * image.height * pixel_bytes(image.mode) > max_decode_bytes:
                    raise ScreenshotRefused(TOO_COSTLY_TO_TURN, "decode_cost")  # late eXIf
                ImageOps.exif_transpose(image, in_place=True)
            transparency = image.info.get("transparency")
            # The pixels only: drop what the encoders could carry over (EXIF, ICC profile,
            # text…) rather than copy the pixels into a fresh image.
            image.info.clear()
            bare = _stored_mode(image, fmt)
            _encode(bare, fmt, transparency, out)
            size = bare.size
            bare.close()  # the pixels go before the copy below
        encoded = out.getvalue()  # the re-encoded file, copied once
    except ScreenshotRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # DecompressionBombWarning is raised only where warnings are errors (the tests).
        raise ScreenshotRefused(TOO_MANY_PIXELS, "decompression_bomb") from None
    except UnidentifiedImageError:
        raise ScreenshotRefused(NOT_AN_IMAGE, "content") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError):
        # What Pillow's decoders raise for damaged data (OSError: "image file is truncated"),
        # and an image mode we cannot store.
        raise ScreenshotRefused(DAMAGED, "damaged") from None
    finally:
        out.close()
    return CleanImage(
        data=encoded,
        content_type=CONTENT_TYPES[fmt],
        extension=".png" if fmt == "PNG" else ".jpg",
        width=size[0],
        height=size[1],
    )
