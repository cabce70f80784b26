"""Episode artwork made fit to post: download, check, shrink, strip, cache.

    img = prepare_artwork(episode.image, cache_dir=settings.media_dir, session=session,
                          max_bytes=rules.image_max_bytes)
    Media(source=img.path, alt=alt_text, mime_type=img.mime_type)

What it guarantees about `img.path`:

- it is a JPEG or PNG of at most `max_bytes`, at most `max_side` pixels on its longer side and
  at most `max_pixels` pixels in all, shown the right way up (EXIF orientation applied);
- it carries no EXIF, XMP, IPTC, comments, PNG text chunks or trailing data (camera, GPS, the
  editing software: none of it is the audience's business); an RGB ICC profile is kept;
- a JPEG or PNG that already fits is not re-encoded: its image data goes out byte for byte, at
  most with those metadata segments cut out (`resized=False`);
- anything else is decoded once and re-encoded: scaled with LANCZOS to fit, transparency kept as
  PNG when that fits, else flattened onto white as JPEG, quality 90 then lower, then smaller
  dimensions until it fits (`resized=True`). The same input always gives the same bytes.

Untrusted input is handled as such: artwork a feed names (`trusted=False`, the default) is
fetched only over http(s), from public addresses or networks the host allowed, within a total
deadline (`bot.fetch` with a guarded session); the download is size-capped; only a few raster
formats are opened (never EPS, which Pillow hands to Ghostscript); before anything is decoded,
the header's size is checked against a memory budget (`DECODE_BUDGET`: width x height x the
bytes Pillow keeps per pixel in that mode, plus the RGB copy a conversion makes), so a small
file that would decode to hundreds of MB (a pixel bomb) is refused, and a big JPEG is decoded
at 1/2, 1/4 or 1/8 scale instead when that fits; and the whole image is decoded once so a
truncated file is refused here, not by the platform. A local path or file:// URL is read only
with `trusted=True` (what the host typed, e.g. `crier queue add --image`).

Cache (`cache_dir`, created 0o700; files 0o600, written to a temporary name and renamed):

    <sha256>.jpg|.png     the prepared image; sha256 of (algorithm version, limits, source bytes)
    <sha256>.json         its dimensions and mime type; written last, so it marks a complete entry
    url-<sha256>.json     http(s) URL + limits -> the entry above, trusted for `url_ttl` seconds

So the same artwork is prepared once per set of limits, and an http(s) URL is downloaded once
per `url_ttl` (a show that replaces its cover at the same URL is seen again after that). Nothing
is ever deleted here.

Every failure is an `ImageError` ("artwork <url>: <sentence>"); a download failure keeps the
HTTP `status` and `retry_after` of the `FetchError` it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from PIL import ExifTags, Image, ImageOps

from bot.errors import BlockedError, CrierError, FetchError
from bot.fetch import DEFAULT_TIMEOUT, IMAGE_DEADLINE, Timeout, fetch_bytes, redact_url

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

# -- platform facts ---------------------------------------------------------------------------
# https://github.com/mastodon/mastodon/blob/main/app/models/media_attachment.rb (IMAGE_LIMIT):
# 16 MB by default; an instance states its own in configuration.media_attachments
# .image_size_limit (GET /api/v2/instance), which MastodonPublisher puts in Rules.image_max_bytes.
MASTODON_IMAGE_MAX_BYTES = 16 * 1024 * 1024
# Same file, IMAGE_STYLES original `pixels: 8_294_400 # 3840x2160px`: Mastodon scales every
# image down to this many pixels anyway, so sending more only costs bytes.
MASTODON_IMAGE_MAX_PIXELS = 3840 * 2160
# https://developer.x.com/en/docs/x-api/v1/media/upload-media/uploading-media/media-best-practices
# and https://docs.x.com/x-api/media/introduction : images up to 5 MB.
X_IMAGE_MAX_BYTES = 5 * 1024 * 1024
# X accepts up to 8192 px a side (media best practices, above) but shows at most 4096; Mastodon
# takes more, but scales to 3840x2160 pixels. 4096 on the longer side suits both.
DEFAULT_MAX_SIDE = 4096
DEFAULT_MAX_PIXELS = MASTODON_IMAGE_MAX_PIXELS

# -- our own limits ---------------------------------------------------------------------------
DOWNLOAD_CAP = 30 * 1024 * 1024      # podcast covers are 0.1-5 MB; Apple asks for <= 3000 px
MAX_SOURCE_PIXELS = 64_000_000       # 8000x8000; a header claiming more is refused undecoded
# Bytes a decoded source may take (with its conversion to RGB/RGBA): 3000x3000 RGBA (Apple's
# largest cover) is 36 MB, 3500x3500 RGB 49 MB. Measured peak of a whole preparation with this
# budget: under ~110 MB RSS above the process's own (see tests/test_images.py: pixel bombs).
DECODE_BUDGET = 48 * 1024 * 1024
URL_CACHE_TTL = 24 * 3600.0          # seconds an http(s) URL's prepared image is reused
JPEG_QUALITIES = (90, 85, 80, 70)    # tried in order at each size
MIN_SIDE = 64                        # never shrink the longer side below this to hit a size
SHRINK_RANGE = (0.3, 0.9)            # each shrink step scales the sides by a factor in here
# Bump when the output for a given input changes, so old cache entries are not reused.
ALGORITHM_VERSION = 2

# Formats opened at all. Not EPS (Ghostscript), PSD, TIFF and the rest of Pillow's long tail:
# artwork comes as one of these, and each extra decoder is attack surface.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF")
JPEG, PNG = "image/jpeg", "image/png"
_EXTENSIONS = {JPEG: ".jpg", PNG: ".png"}


class ImageError(CrierError):
    """Artwork that cannot be posted: not downloadable, not an image, or not shrinkable."""

    def __init__(self, url: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, transient: bool = False):
        self.url, self.detail, self.status, self.retry_after = url, message, status, retry_after
        self.transient = transient  # the download failed in a way worth trying again
        super().__init__(f"artwork {url}: {message}")


@dataclass(frozen=True)
class PreparedImage:
    """A local image file ready to upload."""
    path: str          # absolute path inside the cache
    mime_type: str     # image/jpeg | image/png
    width: int
    height: int
    bytes: int
    source_url: str
    resized: bool      # re-encoded (scaled, rotated, converted or recompressed); False: the
    #                    original image data, at most with its metadata segments removed


def prepare_artwork(url: str, *, cache_dir: str | Path, session: requests.Session,
                    max_bytes: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                    max_side: int = DEFAULT_MAX_SIDE, download_cap: int = DOWNLOAD_CAP,
                    timeout: Timeout = DEFAULT_TIMEOUT,
                    max_source_pixels: int = MAX_SOURCE_PIXELS,
                    url_ttl: float = URL_CACHE_TTL,
                    clock: Callable[[], float] = time.time, trusted: bool = False,
                    deadline: float | None = IMAGE_DEADLINE,
                    decode_budget: int = DECODE_BUDGET) -> PreparedImage:
    """The artwork at `url` as a file that fits the limits.

    `url` comes from a feed unless `trusted`: then only http(s), and `session` must be a
    guarded one (`bot.fetch.new_session(guard=True, ...)`). With `trusted` (the host typed it)
    a local path or file:// URL is read too. `deadline`: seconds for the whole download.
    `max_bytes` is the platform's image size limit (`Rules.image_max_bytes`). `clock` gives
    epoch seconds, for the age of URL cache entries. Raises ImageError.
    """
    for name, value in (("max_bytes", max_bytes), ("max_pixels", max_pixels),
                        ("max_side", max_side), ("download_cap", download_cap)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, not {value}")
    shown = redact_url(url)
    directory = _cache_dir(cache_dir, shown)
    params = f"v{ALGORITHM_VERSION}|{max_bytes}|{max_pixels}|{max_side}|"
    try:
        remote = urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:   # "https://[bad": fetch_bytes says why, as an ImageError below
        remote = False
    ref_name = "url-" + hashlib.sha256((params + url).encode()).hexdigest() + ".json"

    if remote:
        hit = _cached_by_url(directory, ref_name, url, url_ttl, clock)
        if hit is not None:
            log.debug("artwork %s: cached as %s", shown, hit.path)
            return hit

    try:
        data = fetch_bytes(url, session=session, timeout=timeout, max_bytes=download_cap,
                           deadline=deadline, trusted=trusted)
    except FetchError as e:
        passing = e.status is None or e.status >= 500 or e.status == 429
        raise ImageError(shown, e.detail, status=e.status, retry_after=e.retry_after,
                         transient=passing and not isinstance(e, BlockedError)) from e
    key = hashlib.sha256(params.encode() + data).hexdigest()

    prepared = _cached(directory, key, url)
    if prepared is None:
        body, mime, width, height, resized = _prepare(
            data, shown, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side,
            max_source_pixels=max_source_pixels, decode_budget=decode_budget)
        name = key + _EXTENSIONS[mime]
        _write(directory / name, body, shown)
        meta = {"file": name, "mime_type": mime, "width": width, "height": height,
                "bytes": len(body), "resized": resized}
        _write(directory / f"{key}.json", json.dumps(meta, sort_keys=True).encode(), shown)
        prepared = _from_meta(directory, meta, url)
        if resized:
            log.info("artwork %s: %d bytes made into a %dx%d %s of %d bytes (limit %d)",
                     shown, len(data), width, height, mime, len(body), max_bytes)
        else:
            log.debug("artwork %s: %dx%d %s posted as is (%d of %d bytes)", shown, width,
                      height, mime, len(body), len(data))
    if remote:
        ref = {"key": key, "saved_at": clock()}
        _write(directory / ref_name, json.dumps(ref, sort_keys=True).encode(), shown)
    return prepared


# -- deciding and encoding (no I/O but Pillow's) ----------------------------------------------

def _prepare(data: bytes, shown: str, *, max_bytes: int, max_pixels: int, max_side: int,
             max_source_pixels: int, decode_budget: int = DECODE_BUDGET
             ) -> tuple[bytes, str, int, int, bool]:
    """Source bytes -> (output bytes, mime type, width, height, resized)."""
    img = _open(data, shown, max_source_pixels)
    size, fmt = img.size, img.format
    target = _fit(size, max_side, max_pixels)
    if fmt in ("JPEG", "MPO"):
        # let libjpeg decode at 1/2, 1/4 or 1/8 scale: never below the target, unless only a
        # coarser scale fits the decode budget (draft works once, so the scale is chosen first)
        scale = next(s for s in (8, 4, 2, 1) if s <= min(size[0] // target[0],
                                                         size[1] // target[1]))
        while scale < 8 and _decode_cost((-(-size[0] // scale), -(-size[1] // scale)),
                                         img.mode) > decode_budget:
            scale *= 2
        if scale > 1:
            img.draft(None, (max(1, size[0] // scale), max(1, size[1] // scale)))
    _check_budget(img.size, img.mode, shown, decode_budget)
    _decode(img, shown)  # all of it, once: a truncated file fails here, whatever comes next

    if fmt in ("JPEG", "MPO", "PNG") and target == size and _orientation(img) == 1:
        stripped = _strip_png(data) if fmt == "PNG" else _strip_jpeg(data)
        if stripped is not None and len(stripped) <= max_bytes and (
                stripped == data or _same(stripped, size)):
            mime = PNG if fmt == "PNG" else JPEG
            return stripped, mime, size[0], size[1], False

    icc = img.info.get("icc_profile")
    icc = icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None
    try:
        img = ImageOps.exif_transpose(img, in_place=True) or img  # (a copy costs memory)
    except Exception as e:  # a broken EXIF block: post it as stored rather than not at all
        log.warning("artwork %s: cannot apply its EXIF orientation (%s)", shown, _reason(e))
    img = _normalize(img)
    width, height = _fit(img.size, max_side, max_pixels)
    if img.size != (width, height):
        # Scaled as Pillow does inside one resize (premultiplied alpha, then a horizontal and
        # a vertical pass: the same pixels), but each step replaces `img`, so the full-size
        # source is freed before the next copy is made: about half the peak memory.
        alpha = img.mode == "RGBA"
        if alpha:
            img = img.convert("RGBa")
        if img.size[0] != width:
            img = img.resize((width, img.size[1]), Image.Resampling.LANCZOS)
        if img.size[1] != height:
            img = img.resize((width, height), Image.Resampling.LANCZOS)
        if alpha:
            img = img.convert("RGBA")
        img.info = {}

    if img.mode == "RGBA":
        body = _encode(img, "PNG", icc=icc)
        if len(body) <= max_bytes:
            return body, PNG, width, height, True
        log.debug("artwork %s: as PNG with transparency %d bytes, over %d; flattening to JPEG",
                  shown, len(body), max_bytes)
        img = _flatten(img)

    while True:
        scaled = _scaled(img, (width, height))
        for quality in JPEG_QUALITIES:
            body = _encode(scaled, "JPEG", icc=icc, quality=quality)
            if len(body) <= max_bytes:
                return body, JPEG, width, height, True
        if max(width, height) <= MIN_SIDE:
            raise ImageError(shown, f"cannot be made smaller than {max_bytes} bytes "
                                    f"(still {len(body)} bytes at {width}x{height})")
        factor = min(max(math.sqrt(max_bytes / len(body)) * 0.95, SHRINK_RANGE[0]),
                     SHRINK_RANGE[1])
        factor = max(factor, MIN_SIDE / max(width, height))
        width, height = max(1, int(width * factor)), max(1, int(height * factor))
        log.debug("artwork %s: %d bytes at quality %d, over %d; trying %dx%d", shown,
                  len(body), JPEG_QUALITIES[-1], max_bytes, width, height)


def _open(data: bytes, shown: str, max_source_pixels: int) -> Image.Image:
    """A verified, reopened, not yet decoded image; ImageError for anything else."""
    if not data:
        raise ImageError(shown, "not an image (the download was empty)")
    formats = _input_formats()
    try:
        with Image.open(io.BytesIO(data), formats=formats) as probe:
            _check_pixels(probe.size, shown, max_source_pixels)
            probe.verify()
        img = Image.open(io.BytesIO(data), formats=formats)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(shown, f"refused: too many pixels to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(shown, _not_an_image(data)) from None
    except Exception as e:  # any decoder failure on untrusted input
        raise ImageError(shown, f"damaged or truncated image ({_reason(e)})") from None
    _check_pixels(img.size, shown, max_source_pixels)
    return img


def _decode(img: Image.Image, shown: str) -> None:
    try:
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageError(shown, f"refused: too many pixels to decode safely ({e})") from None
    except Exception as e:  # any decoder failure on untrusted input
        raise ImageError(shown, f"damaged or truncated image ({_reason(e)})") from None


# Bytes Pillow keeps per pixel, by mode (it stores RGB in 4 bytes, LA in 4, 16-bit grey in 2).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


def _decode_cost(size: tuple[int, int], mode: str) -> int:
    """Bytes to decode an image of this size and mode, and convert it to RGB(A) (what
    `_normalize` does to every mode but RGB and RGBA)."""
    per_pixel = _PIXEL_BYTES.get(mode, 4) + (0 if mode in ("RGB", "RGBA") else 4)
    return size[0] * size[1] * per_pixel


def _check_budget(size: tuple[int, int], mode: str, shown: str, budget: int) -> None:
    cost = _decode_cost(size, mode)
    if cost > budget:
        raise ImageError(shown, f"refused: a {size[0]}x{size[1]} {mode} image takes "
                                f"{cost / 2**20:.0f} MB to decode, over the {budget / 2**20:.0f} "
                                f"MB crier allows (a pixel bomb?); a 3000x3000 RGB or RGBA "
                                f"cover fits")


def _check_pixels(size: tuple[int, int], shown: str, limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(shown, f"not a usable image ({width}x{height} pixels)")
    if width * height > limit:
        raise ImageError(shown, f"refused: {width}x{height} is {width * height:,} pixels, over "
                                f"the {limit:,} this decodes (a decompression bomb?)")


def _not_an_image(data: bytes) -> str:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "not an image (HTML page?); the address may point at a web page, not the file"
    if b"<svg" in head:
        return "an SVG drawing, not a bitmap image; use a JPEG or PNG"
    if head.startswith((b"{", b"[")):
        return "not an image (JSON?)"
    if head.startswith(b"%pdf"):
        return "a PDF, not an image"
    if head.startswith(b"<"):
        return "not an image (XML or HTML?)"
    return f"not an image crier reads ({', '.join(INPUT_FORMATS)})"


def _reason(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _input_formats() -> list[str]:
    Image.init()
    return [f for f in INPUT_FORMATS if f in Image.OPEN]


_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([1-8])')


def _orientation(img: Image.Image) -> int:
    """EXIF orientation (1 = upright), or XMP's when there is no EXIF one."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # a broken EXIF block: no orientation
        value = None
    if value is None:
        xmp = img.info.get("xmp")
        if isinstance(xmp, str):
            xmp = xmp.encode()
        match = _XMP_ORIENTATION.search(xmp) if isinstance(xmp, bytes) else None
        value = int(match.group(1)) if match else 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _fit(size: tuple[int, int], max_side: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio within both limits (never larger)."""
    width, height = size
    scale = min(1.0, max_side / max(width, height), math.sqrt(max_pixels / (width * height)))
    if scale >= 1.0:
        return size
    new = (max(1, int(width * scale)), max(1, int(height * scale)))
    while new[0] * new[1] > max_pixels or max(new) > max_side:  # float rounding, rarely
        new = (max(1, new[0] - 1), max(1, new[1] - 1))
    return new


def _normalize(img: Image.Image) -> Image.Image:
    """RGBA when some pixel is see-through, else RGB; with no metadata left in `info`."""
    transparent = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if transparent:
        if img.mode != "RGBA":
            img = img.convert("RGBA")
        low, _ = img.getchannel("A").getextrema()
        if low == 255:  # an alpha channel that hides nothing
            img = img.convert("RGB")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    img.info = {}
    return img


def _flatten(img: Image.Image) -> Image.Image:
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


def _scaled(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    scaled = img.resize(size, Image.Resampling.LANCZOS)
    scaled.info = {}
    return scaled


def _encode(img: Image.Image, fmt: str, *, icc: bytes | None, quality: int = 0) -> bytes:
    buf = io.BytesIO()
    options: dict = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality, optimize=True, **options)
    else:
        img.save(buf, "PNG", compress_level=6, **options)
    return buf.getvalue()


def _same(data: bytes, size: tuple[int, int]) -> bool:
    """The stripped file still decodes to an image of this size."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as img:
            img.load()
            return img.size == size and img.format in ("JPEG", "PNG")
    except Exception:  # then we re-encode instead
        return False


# -- lossless metadata removal ----------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that describe pixels and colour; everything else (tEXt, zTXt, iTXt, eXIf, tIME,
# private chunks) goes.
_PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP",
                       b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"hIST",
                       b"acTL", b"fcTL", b"fdAT"})


def _strip_png(data: bytes) -> bytes | None:
    """The PNG with only image chunks; None if it cannot be parsed. Unchanged bytes when
    there was nothing to remove."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    out, pos = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            return b"".join(out)  # anything after IEND is dropped too
    return None


_SOI, _EOI, _SOS, _COM, _APP0, _APP2, _APP14 = 0xD8, 0xD9, 0xDA, 0xFE, 0xE0, 0xE2, 0xEE
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field


def _strip_jpeg(data: bytes) -> bytes | None:
    """The JPEG without EXIF/XMP (APP1), IPTC (APP13), comments, MPF and other APPn segments,
    a JFIF thumbnail, or data after EOI. Keeps JFIF, ICC profile and Adobe segments. None if
    it cannot be parsed. Unchanged bytes when there was nothing to remove."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != _SOI:
        return None
    out, pos = [data[:2]], 2
    while pos < n:
        start = pos
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out.append(data[start:pos])
            return b"".join(out)
        if marker in _STANDALONE:
            out.append(data[start:pos])
            continue
        if pos + 2 > n:
            return None
        length = int.from_bytes(data[pos:pos + 2], "big")
        end = pos + length
        if length < 2 or end > n:
            return None
        if marker == _SOS:  # the scan header, then entropy-coded data up to the next marker
            while end < n - 1 and not (data[end] == 0xFF and data[end + 1] != 0
                                       and data[end + 1] not in _STANDALONE):
                end += 1
            if end >= n - 1:
                return None
            out.append(data[start:end])
        elif _keep_jpeg_segment(marker, data[pos + 2:end]):
            out.append(data[start:end])
        pos = end
    return None


def _keep_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == _APP0:  # JFIF, unless it carries a thumbnail (of what the image was?)
        return payload.startswith(b"JFIF\x00") and payload[12:14] == b"\x00\x00"
    if marker == _APP2:
        return payload.startswith(b"ICC_PROFILE\x00")
    if marker == _APP14:
        return payload.startswith(b"Adobe")
    return not (0xE0 <= marker <= 0xEF or marker == _COM)


# -- the cache --------------------------------------------------------------------------------

def _cache_dir(path: str | Path, shown: str) -> Path:
    directory = Path(path).expanduser().absolute()
    if not directory.is_dir():
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)  # whatever the umask
        except OSError as e:
            raise ImageError(shown, f"cannot create the artwork cache {directory} "
                                    f"({e.strerror or type(e).__name__})") from None
    return directory


def _write(path: Path, data: bytes, shown: str) -> None:
    """Write atomically: a temporary file (0o600) in the same directory, then rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as e:
        raise ImageError(shown, f"cannot write to the artwork cache {path.parent} "
                                f"({e.strerror or type(e).__name__})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise ImageError(shown, f"cannot write {path} ({e.strerror or type(e).__name__})") \
            from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _cached(directory: Path, key: str, url: str) -> PreparedImage | None:
    meta = _read_json(directory / f"{key}.json")
    if meta is None:
        return None
    try:
        prepared = _from_meta(directory, meta, url)
        if os.path.getsize(prepared.path) != prepared.bytes:
            return None
    except (KeyError, TypeError, ValueError, OSError):
        return None
    return prepared


def _cached_by_url(directory: Path, ref_name: str, url: str, ttl: float,
                   clock: Callable[[], float]) -> PreparedImage | None:
    ref = _read_json(directory / ref_name)
    if ref is None:
        return None
    key, saved_at = ref.get("key"), ref.get("saved_at")
    if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key) \
            or not isinstance(saved_at, int | float):
        return None
    age = clock() - saved_at
    if age < 0 or age >= ttl:
        return None
    return _cached(directory, key, url)


def _from_meta(directory: Path, meta: dict, url: str) -> PreparedImage:
    name = meta["file"]
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise ValueError("bad file name in cache entry")
    mime = meta["mime_type"]
    if mime not in _EXTENSIONS:
        raise ValueError("bad mime type in cache entry")
    return PreparedImage(path=str(directory / name), mime_type=mime, width=int(meta["width"]),
                         height=int(meta["height"]), bytes=int(meta["bytes"]), source_url=url,
                         resized=bool(meta["resized"]))
