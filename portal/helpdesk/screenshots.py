"""The Contact Us screenshot: checked by name and content, fully decoded, re-encoded (SECURITY
UP-02).

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

Pillow's own decompression-bomb guard is set to the same cap (``Image.MAX_IMAGE_PIXELS``, once,
at import; nothing else in the app uses Pillow): it raises :class:`PIL.Image.DecompressionBombError`
at twice the cap, and warns between one and two times it, after which our own check refuses.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import IO

from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
#: 40 megapixels: more than a 6K monitor's screenshot (6016 × 3384 ≈ 20 MP), and at most
#: 160 MB of memory while one is decoded.
MAX_PIXELS = 40_000_000
#: A re-encoded image larger than this is refused (an unusually incompressible picture).
MAX_STORED_BYTES = 10 * 1024 * 1024
FORMATS = ("PNG", "JPEG")
EXTENSIONS = (".png", ".jpg", ".jpeg")
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
JPEG_QUALITY = 90

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

NOT_AN_IMAGE = "The screenshot must be a PNG or JPEG image"
TOO_BIG = "The screenshot must be 5 MB or smaller"
EMPTY = "The selected screenshot is empty"
TOO_MANY_PIXELS = (
    "The screenshot is too large in pixels: crop it to the part that shows the problem"
)
DAMAGED = "The screenshot could not be read: it may be damaged. Save it again and choose it again"


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


def _normalised(image: Image.Image, fmt: str) -> Image.Image:
    """The pixels in a mode the format stores, turned as EXIF said, with no metadata."""
    ImageOps.exif_transpose(image, in_place=True)  # no second full copy of the pixels
    if fmt == "JPEG":
        wanted = "L" if image.mode in ("1", "L", "I;16") else "RGB"
    elif image.mode in ("1", "L", "LA", "I", "I;16", "RGB", "RGBA"):
        wanted = image.mode
    elif image.mode == "P" or "transparency" in image.info:
        wanted = "RGBA"
    else:
        wanted = "RGB"
    if image.mode != wanted:
        image = image.convert(wanted)
    # The pixels only: drop what the encoders could carry over (EXIF, ICC profile, text…)
    # rather than copy the pixels into a fresh image (a third full copy in memory).
    image.info.clear()
    return image


def clean(
    stream: IO[bytes],
    filename: str | None,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> CleanImage:
    """Check and re-encode an uploaded screenshot; raises :class:`ScreenshotRefused`.

    The name's extension must be on the allowlist; the *content* decides which of the two
    formats the image is (a PNG named ``.jpg`` is kept as the PNG it is).
    """
    if _extension(filename) not in EXTENSIONS:
        raise ScreenshotRefused(NOT_AN_IMAGE, "extension")
    data = _read_capped(stream, max_bytes)
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise ScreenshotRefused(TOO_MANY_PIXELS, "pixels")
            # The JPEG decoder reports a camera's multi-picture JPEG as "MPO": still a JPEG.
            fmt = "PNG" if image.format == "PNG" else "JPEG"
            image.load()  # decode every pixel now: a truncated or corrupt file fails here
            bare = _normalised(image, fmt)
        out = io.BytesIO()
        if fmt == "JPEG":
            bare.save(out, format="JPEG", quality=JPEG_QUALITY)
        else:
            bare.save(out, format="PNG")
    except ScreenshotRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # DecompressionBombWarning is raised only where warnings are errors (the tests).
        raise ScreenshotRefused(TOO_MANY_PIXELS, "decompression_bomb") from None
    except UnidentifiedImageError:
        raise ScreenshotRefused(NOT_AN_IMAGE, "content") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError):
        # What Pillow's decoders raise for damaged data (OSError: "image file is truncated"),
        # and an image mode we cannot convert.
        raise ScreenshotRefused(DAMAGED, "damaged") from None
    encoded = out.getvalue()
    if len(encoded) > MAX_STORED_BYTES:
        raise ScreenshotRefused(TOO_MANY_PIXELS, "too_big_encoded")
    return CleanImage(
        data=encoded,
        content_type=CONTENT_TYPES[fmt],
        extension=".png" if fmt == "PNG" else ".jpg",
        width=bare.width,
        height=bare.height,
    )
