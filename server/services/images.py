"""Checking and re-encoding uploaded images with Pillow. Everything here is CPU-bound and synchronous:
callers run it in a worker thread (see services/media.py), never on the event loop.

Untrusted bytes go through these steps: the format is sniffed from the magic bytes (never the file
name or the claimed type), Pillow opens only that format, the pixel count is checked against the
limit before anything is decoded, the file is decoded completely (truncated or corrupt files fail
here), and the picture is written anew, which leaves EXIF, XMP, comments and text chunks behind.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from PIL import Image, ImageOps, ImageSequence

_loading = threading.Lock()


def _load_pillow() -> None:
    """Import Pillow on the first picture (an instance that never sees one does not carry it in memory).
    A picture whose header promises more pixels than allowed fails instead of being decoded; the
    warning Pillow gives between one and two times MAX_IMAGE_PIXELS becomes an error too (set once,
    process-wide)."""
    if "Image" in globals():
        return
    with _loading:
        if "Image" in globals():
            return
        from PIL import Image as image
        from PIL import ImageOps as ops
        from PIL import ImageSequence as sequence
        warnings.simplefilter("error", image.DecompressionBombWarning)
        globals().update(ImageOps=ops, ImageSequence=sequence)
        globals()["Image"] = image  # last: its presence means the others are there

PREVIEW_SIDE = 640
AVATAR_SIZE = (400, 400)
HEADER_SIZE = (1500, 500)
MAX_FRAMES = 1000

# Pillow format → (MIME type, file extension)
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif"),
           "WEBP": ("image/webp", "webp")}


class ImageRejected(Exception):
    """The upload is not an image we accept; the message is safe to show to the uploader."""


class Encoded(msgspec.Struct, frozen=True):
    data: bytes
    mime: str
    ext: str
    width: int
    height: int


class Processed(msgspec.Struct, frozen=True):
    original: Encoded
    preview: Encoded
    blurhash: str
    frames: int
    duration: float  # seconds, 0 for a still image


def sniff(data: bytes) -> str | None:
    """The Pillow format name of the bytes, from their signature alone."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open(source: bytes | IO[bytes], max_pixels: int) -> tuple[Image.Image, str]:
    """Open an upload, given as bytes or as a seekable file (uploads are spooled to disk)."""
    _load_pillow()
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    stream.seek(0)
    fmt = sniff(stream.read(12))
    if fmt is None:
        raise ImageRejected("File is not a supported image (JPEG, PNG, GIF or WebP)")
    Image.MAX_IMAGE_PIXELS = max_pixels  # the same configured value on every call
    try:
        # verify() reads the whole structure (PNG checksums included) without decoding; the file
        # object is spent afterwards, so the picture is opened a second time for real.
        stream.seek(0)
        with Image.open(stream, formats=[fmt]) as probe:
            probe.verify()
        stream.seek(0)
        img = Image.open(stream, formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"Image is larger than {max_pixels} pixels") from None
    except Exception:  # any failure on untrusted bytes means a corrupt file
        raise ImageRejected("File could not be read as an image; it may be truncated or corrupt") from None
    width, height = img.size
    if width < 1 or height < 1 or width * height > max_pixels:
        img.close()
        raise ImageRejected(f"Image is larger than {max_pixels} pixels")
    return img, fmt


def _upright(frame: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, since the EXIF block that carried it is about to go."""
    try:
        orientation = frame.getexif().get(0x0112, 1)
    except Exception:  # an unreadable EXIF block is simply dropped
        orientation = 1
    return ImageOps.exif_transpose(frame) if orientation not in (1, None) else frame


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _colour_family(mode: str) -> str:
    return {"CMYK": "cmyk", "1": "gray", "L": "gray", "LA": "gray", "I": "gray", "I;16": "gray", "F": "gray"}.get(
        mode, "rgb")


def _normalise(img: Image.Image, fmt: str) -> Image.Image:
    """A mode the output format can store without surprises."""
    if fmt == "JPEG":
        return img if img.mode in ("L", "RGB") else img.convert("RGB")
    if fmt == "PNG":
        if img.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            return img
        return img.convert("RGBA" if _has_alpha(img) else "RGB")
    return img.convert("RGBA" if _has_alpha(img) else "RGB")


def _encode(img: Image.Image, fmt: str, icc: bytes | None, **options: object) -> bytes:
    """Write the picture alone: of what the upload carried, only the colour profile and the transparent
    colour go along; comments, text chunks, XMP and EXIF stay behind."""
    out = io.BytesIO()
    extra = dict(options)
    if icc:
        extra["icc_profile"] = icc  # colour data, kept as Mastodon keeps it
    if fmt in ("PNG", "GIF") and "transparency" in img.info:
        extra["transparency"] = img.info["transparency"]
    kept, img.info = img.info, {}
    try:
        img.save(out, fmt, **extra)
    finally:
        img.info = kept
    return out.getvalue()


def _still(img: Image.Image, fmt: str, icc: bytes | None) -> bytes:
    if fmt == "JPEG":
        if img.format == "JPEG":  # untouched JPEG: reuse its quantisation tables, fast and without loss of quality
            return _encode(img, fmt, icc, quality="keep", subsampling="keep")
        return _encode(img, fmt, icc, quality=90)
    if fmt == "PNG":
        return _encode(img, fmt, icc, optimize=False, compress_level=6)
    if fmt == "WEBP":
        return _encode(img, fmt, icc, quality=90, method=4)
    return _encode(img, fmt, None)


def _preview(img: Image.Image) -> tuple[Encoded, Image.Image]:
    """At most PREVIEW_SIDE on the longer side; resized before any mode change, which is cheaper."""
    alpha = _has_alpha(img)
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if alpha else "RGB")  # palette images cannot be resampled smoothly
    scale = min(1.0, PREVIEW_SIDE / max(img.width, img.height))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    small = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if scale < 1 else img.copy()
    small = small.convert("RGBA" if alpha else "RGB")
    if alpha:
        data, mime, ext = _encode(small, "PNG", None, optimize=False), "image/png", "png"
    else:
        data, mime, ext = _encode(small, "JPEG", None, quality=85), "image/jpeg", "jpg"
    return Encoded(data=data, mime=mime, ext=ext, width=small.width, height=small.height), small


def _frames(img: Image.Image, max_pixels: int) -> tuple[list[Image.Image], list[int]]:
    """Every frame of an animation, decoded, within a budget of max_pixels pixels in all."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    budget = max_pixels
    for frame in ImageSequence.Iterator(img):
        budget -= frame.width * frame.height
        if budget < 0 or len(frames) >= MAX_FRAMES:
            raise ImageRejected(f"Animation is too long (more than {max_pixels} pixels in all frames)")
        durations.append(int(frame.info.get("duration") or 100))
        frames.append(frame.convert("RGBA").copy())
    return frames, durations


def process_attachment(data: bytes | IO[bytes], max_pixels: int) -> Processed:
    """Check an uploaded picture and produce its clean copy, preview and blurhash."""
    img, fmt = _open(data, max_pixels)
    mime, ext = FORMATS[fmt]
    try:
        icc = img.info.get("icc_profile") or None
        animated = fmt in ("GIF", "WEBP") and bool(getattr(img, "is_animated", False))
        if animated:
            frames, durations = _frames(img, max_pixels)
            loop = int(img.info.get("loop", 0) or 0)
            first = frames[0]
            for f in frames:
                f.info = {}
            if fmt == "GIF":
                body = _encode(first, "GIF", None, save_all=True, append_images=frames[1:], duration=durations,
                               loop=loop, disposal=2, optimize=False)
            else:
                body = _encode(first, "WEBP", icc, save_all=True, append_images=frames[1:], duration=durations,
                               loop=loop, quality=90, method=4)
            still = first
        else:
            img.load()
            still = _normalise(_upright(img), fmt)
            if _colour_family(still.mode) != _colour_family(img.mode):
                icc = None  # e.g. CMYK turned RGB: the old profile would describe the wrong colours
            body = _still(still, fmt, icc)
            durations = []
        preview, small = _preview(still)
        hashed = blurhash_of(small)
    except ImageRejected:
        raise
    except Exception:  # decoding untrusted data: every failure is a bad file
        raise ImageRejected("File could not be read as an image; it may be truncated or corrupt") from None
    finally:
        img.close()
    return Processed(original=Encoded(data=body, mime=mime, ext=ext, width=still.width, height=still.height),
                     preview=preview, blurhash=hashed, frames=max(1, len(durations)),
                     duration=sum(durations) / 1000.0)


def process_profile_image(data: bytes | IO[bytes], max_pixels: int, size: tuple[int, int]) -> Encoded:
    """An avatar or header: the first frame, upright, cropped to the box's shape and at most its size."""
    img, _fmt = _open(data, max_pixels)
    try:
        img.seek(0)
        img.load()
        still = _upright(img)
        still = still.convert("RGBA" if _has_alpha(still) else "RGB")
        box_w, box_h = size
        scale = min(1.0, still.width / box_w, still.height / box_h)  # never enlarged
        target = (max(1, round(box_w * scale)), max(1, round(box_h * scale)))
        fitted = ImageOps.fit(still, target, Image.Resampling.LANCZOS)
        if fitted.mode == "RGBA":
            return Encoded(data=_encode(fitted, "PNG", None, optimize=False), mime="image/png", ext="png",
                           width=fitted.width, height=fitted.height)
        return Encoded(data=_encode(fitted, "JPEG", None, quality=90, optimize=True), mime="image/jpeg", ext="jpg",
                       width=fitted.width, height=fitted.height)
    except ImageRejected:
        raise
    except Exception:  # decoding untrusted data: every failure is a bad file
        raise ImageRejected("File could not be read as an image; it may be truncated or corrupt") from None
    finally:
        img.close()


# -- BlurHash (https://blurha.sh, MIT-licensed algorithm), encoder only -------------------------------

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [((v / 255) / 12.92) if v / 255 <= 0.04045 else (((v / 255) + 0.055) / 1.055) ** 2.4
              for v in range(256)]


def _base83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return int(v * 12.92 * 255 + 0.5) if v <= 0.0031308 else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def blurhash_encode(pixels: Sequence[tuple[int, int, int]], width: int, height: int,
                    x_components: int = 4, y_components: int = 4) -> str:
    """BlurHash of row-major RGB pixels."""
    linear = [(_TO_LINEAR[r], _TO_LINEAR[g], _TO_LINEAR[b]) for r, g, b in pixels]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    factors = []
    for j in range(y_components):
        for i in range(x_components):
            norm = (1 if i == 0 and j == 0 else 2) / (width * height)
            r = g = b = 0.0
            for y in range(height):
                cy = cos_y[j][y]
                row = y * width
                for x in range(width):
                    basis = cos_x[i][x] * cy
                    pr, pg, pb = linear[row + x]
                    r += basis * pr
                    g += basis * pg
                    b += basis * pb
            factors.append((r * norm, g * norm, b * norm))
    dc, ac = factors[0], factors[1:]
    out = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        quantised = max(0, min(82, math.floor(max(abs(c) for f in ac for c in f) * 166 - 0.5)))
        max_ac = (quantised + 1) / 166
        out += _base83(quantised, 1)
    else:
        max_ac = 1.0
        out += _base83(0, 1)
    out += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, math.floor(_sign_pow(c / max_ac, 0.5) * 9 + 9.5))) for c in f]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def blurhash_of(img: Image.Image) -> str:
    """BlurHash of a picture, computed on a 32-pixel thumbnail (transparent parts on white)."""
    _load_pillow()
    small = img.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    if _has_alpha(small):
        rgba = small.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        small = flat
    rgb = small.convert("RGB")
    return blurhash_encode(list(rgb.getdata()), rgb.width, rgb.height)
