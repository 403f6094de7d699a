"""portal.helpdesk.screenshots.clean: the docs/security.md UP-02 corpus, made here with Pillow.

Every hostile file is refused with a message for the sender (never an exception of another
kind); every good one comes back re-encoded: new bytes, the same pixels, no metadata, nothing
appended.  The same corpus goes through the HTTP form in ``test_contact_http.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image
from PIL import PngImagePlugin

from portal.helpdesk import screenshots
from portal.helpdesk.screenshots import ScreenshotRefused

from .conftest import image_bytes
from .conftest import noise_png
from .conftest import png_declaring

PHP = b"<?php system($_GET['c']); ?>\n"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script></svg>"
)


def gif_js_polyglot() -> bytes:
    """A real GIF whose bytes also run as JavaScript (the classic ``GIF89a/*…*/`` trick)."""
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, format="GIF")
    return b"GIF89a/*" + out.getvalue()[8:] + b"*/=1;alert(document.domain);"


def fits() -> bytes:
    header = b"".join(
        card.ljust(80).encode()
        for card in (
            "SIMPLE  = T",
            "BITPIX  = 8",
            "NAXIS   = 2",
            "NAXIS1  = 10",
            "NAXIS2  = 10",
            "END",
        )
    )
    return header.ljust(2880, b" ") + b"\x00" * 2880


def truncated_png() -> bytes:
    whole = noise_png(200)
    return whole[: len(whole) // 2]


def clean(data: bytes, name: str = "shot.png", **kwargs: int) -> screenshots.CleanImage:
    return screenshots.clean(io.BytesIO(data), name, **kwargs)


CORPUS: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("php renamed .png", lambda: PHP, "shell.png", screenshots.NOT_AN_IMAGE),
    ("png named .png.php", lambda: image_bytes(), "a.png.php", screenshots.NOT_AN_IMAGE),
    ("NUL byte in the name", lambda: image_bytes(), "a.php\x00.png", screenshots.NOT_AN_IMAGE),
    ("path in the name", lambda: image_bytes(), "../../app.py/x.png", screenshots.NOT_AN_IMAGE),
    ("no extension", lambda: image_bytes(), "screenshot", screenshots.NOT_AN_IMAGE),
    ("svg with a script", lambda: SVG, "x.svg", screenshots.NOT_AN_IMAGE),
    ("svg renamed .png", lambda: SVG, "x.png", screenshots.NOT_AN_IMAGE),
    ("gif/js polyglot renamed .png", gif_js_polyglot, "x.png", screenshots.NOT_AN_IMAGE),
    (
        "a real GIF renamed .jpg",
        lambda: image_bytes("GIF", mode="P"),
        "x.jpg",
        screenshots.NOT_AN_IMAGE,
    ),
    ("FITS renamed .png", fits, "x.png", screenshots.NOT_AN_IMAGE),
    ("0-byte file", lambda: b"", "empty.png", screenshots.EMPTY),
    ("truncated png", truncated_png, "cut.png", screenshots.DAMAGED),
    ("png signature only", lambda: b"\x89PNG\r\n\x1a\n", "x.png", screenshots.NOT_AN_IMAGE),
    (
        "pixel flood 20000x20000",
        lambda: png_declaring(20_000, 20_000),
        "flood.png",
        screenshots.TOO_MANY_PIXELS,
    ),
    (
        "pixel flood 7000x7000",
        lambda: png_declaring(7_000, 7_000),
        "flood.png",
        screenshots.TOO_MANY_PIXELS,
    ),
    ("zero-width png", lambda: png_declaring(0, 10), "x.png", screenshots.NOT_AN_IMAGE),
    (
        "jpeg cut after its header",
        lambda: image_bytes("JPEG", size=(300, 300))[:400],
        "x.jpg",
        screenshots.DAMAGED,
    ),
]


@pytest.mark.parametrize(
    ("make", "name", "message"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_the_corpus_is_refused_with_a_message(
    make: Callable[[], bytes], name: str, message: str
) -> None:
    with pytest.raises(ScreenshotRefused) as refused:
        clean(make(), name)
    assert str(refused.value) == message


def test_over_five_megabytes_is_refused_before_it_is_decoded() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * screenshots.MAX_BYTES
    with pytest.raises(ScreenshotRefused, match="5 MB or smaller"):
        clean(data)
    exactly = noise_png(1000)  # about 3 MB: well inside
    assert len(exactly) < screenshots.MAX_BYTES
    assert clean(exactly).width == 1000


def test_our_pixel_cap_applies_below_pillows() -> None:
    with pytest.raises(ScreenshotRefused, match="too large in pixels"):
        clean(image_bytes(size=(100, 100)), max_pixels=9_999)
    assert clean(image_bytes(size=(100, 100)), max_pixels=10_000).width == 100


def test_pillows_own_guard_is_set_to_our_cap() -> None:
    assert Image.MAX_IMAGE_PIXELS == screenshots.MAX_PIXELS


def test_a_png_is_re_encoded_with_the_same_pixels() -> None:
    original = image_bytes("PNG", size=(64, 48), compress_level=1)
    result = clean(original)
    assert (result.content_type, result.extension, result.width, result.height) == (
        "image/png",
        ".png",
        64,
        48,
    )
    assert result.data != original
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(result.data)) as after:
        assert after.format == "PNG"
        assert after.convert("RGB").tobytes() == before.convert("RGB").tobytes()


def test_png_text_chunks_icc_profiles_and_trailing_data_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-comment-7731")
    info.add_itxt("Author", "secret-author-7731")
    polyglot = image_bytes("PNG", pnginfo=info, icc_profile=b"fake-icc-7731" * 10)
    polyglot += PHP + b"PK\x03\x04zip-payload-7731"
    result = clean(polyglot, "polyglot.png")
    assert b"7731" not in result.data
    assert b"<?php" not in result.data
    with Image.open(io.BytesIO(result.data)) as after:
        assert "Comment" not in after.info
        assert "icc_profile" not in after.info
        assert not after.text  # type: ignore[attr-defined]


def test_jpeg_exif_is_stripped_and_the_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam-7731"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    original = image_bytes("JPEG", size=(60, 20), exif=exif, quality=95)
    result = clean(original, "photo.JPEG")
    assert result.content_type == "image/jpeg"
    assert result.extension == ".jpg"
    assert b"SpyCam" not in result.data
    assert b"Exif" not in result.data
    assert (result.width, result.height) == (20, 60)  # turned as it was shown
    with Image.open(io.BytesIO(result.data)) as after:
        assert after.format == "JPEG"
        assert not after.getexif()


def test_the_content_decides_the_format_not_the_name() -> None:
    result = clean(image_bytes("PNG"), "actually-a-png.jpg")
    assert result.content_type == "image/png"
    assert result.extension == ".png"


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "P"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "1"),
        ("PNG", "I;16"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
    ],
)
def test_other_modes_are_stored_too(fmt: str, mode: str) -> None:
    result = clean(image_bytes(fmt, size=(16, 8), mode=mode), f"x.{fmt.lower()}")
    assert (result.width, result.height) == (16, 8)
    with Image.open(io.BytesIO(result.data)) as after:
        after.load()


# --- bounded cost (issue 10, finding 4) -----------------------------------------------------


def test_the_pixel_cap_admits_a_5k_screen_and_says_so() -> None:
    assert clean(png_declaring(5120, 2880)).width == 5120
    with pytest.raises(ScreenshotRefused) as refused:
        clean(png_declaring(5120, 2930))
    assert "at most 15 megapixels, for example 5120 × 2880" in str(refused.value)


def test_a_palette_image_stays_a_palette_image_with_its_transparency() -> None:
    image = Image.new("P", (30, 20), 1)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    image.paste(2, (0, 0, 10, 10))
    result = clean(image_bytes_of(image, "PNG", transparency=1))
    with Image.open(io.BytesIO(result.data)) as after:
        assert after.mode == "P"
        assert after.info["transparency"] == 1
        assert after.convert("RGBA").getpixel((0, 0)) == (0, 255, 0, 255)
        assert after.convert("RGBA").getpixel((20, 15))[3] == 0


def test_a_cmyk_jpeg_is_stored_as_cmyk_without_a_converted_copy() -> None:
    original = Image.new("CMYK", (16, 16), (10, 200, 30, 40))
    result = clean(image_bytes_of(original, "JPEG", quality=95), "c.jpg")
    with Image.open(io.BytesIO(result.data)) as after:
        assert after.mode == "CMYK"
        assert all(
            abs(a - b) <= 2 for a, b in zip(after.getpixel((8, 8)), (10, 200, 30, 40), strict=True)
        )


def image_bytes_of(image: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def progressive(size: tuple[int, int], subsampling: int = 2) -> bytes:
    return image_bytes("JPEG", size=size, progressive=True, subsampling=subsampling)


def test_jpeg_scans_are_counted_from_the_markers() -> None:
    assert screenshots.jpeg_scans(image_bytes("JPEG", size=(64, 64))) == 1
    assert screenshots.jpeg_scans(progressive((64, 64))) == 10
    exif = Image.Exif()
    exif[0x0112] = 1
    with_thumbnail_marker = image_bytes("JPEG", size=(64, 64), exif=exif, comment=b"\xff\xda")
    assert screenshots.jpeg_scans(with_thumbnail_marker) == 1


def test_a_jpeg_with_too_many_scans_is_refused_unread() -> None:
    data = progressive((64, 64))
    last = data.rfind(b"\xff\xda")
    end = data.rfind(b"\xff\xd9")
    many = data[:end] + data[last:end] * screenshots.MAX_JPEG_SCANS + data[end:]
    with pytest.raises(ScreenshotRefused) as refused:
        clean(many, "m.jpg")
    assert str(refused.value) == screenshots.TOO_MANY_SCANS


def test_a_progressive_jpeg_too_costly_at_full_size_is_decoded_smaller() -> None:
    data = progressive((160, 160))  # 100 kB of pixels + 75 kB of coefficients at full size
    assert clean(data, "p.jpg", max_decode_bytes=200_000).width == 160
    assert clean(data, "p.jpg", max_decode_bytes=120_000).width == 80
    with pytest.raises(ScreenshotRefused) as refused:  # the coefficients alone pass it
        clean(data, "p.jpg", max_decode_bytes=60_000)
    assert str(refused.value) == screenshots.TOO_COSTLY


def test_a_png_too_costly_to_turn_is_refused() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = image_bytes("PNG", size=(100, 100), exif=exif)
    assert (clean(data, max_decode_bytes=80_000).width, clean(data).height) == (100, 100)
    with pytest.raises(ScreenshotRefused) as refused:
        clean(data, max_decode_bytes=79_999)
    assert str(refused.value) == screenshots.TOO_COSTLY_TO_TURN


def test_one_decode_at_a_time_and_a_waiting_upload_is_told_to_send_again() -> None:
    with screenshots._decoding:  # another upload is being decoded in this process
        with pytest.raises(ScreenshotRefused) as refused:
            clean(image_bytes(), wait_seconds=0.01)
        assert str(refused.value) == screenshots.BUSY
        assert refused.value.reason == "busy"
    assert clean(image_bytes()).width == 40  # and released after each upload
    with pytest.raises(ScreenshotRefused):
        clean(b"not an image")
    assert clean(image_bytes(), wait_seconds=0).width == 40  # released after a refusal too
