"""bot.images against real files: Pillow-made images served over loopback HTTP (FeedServer),
prepared into a real cache directory, then uploaded through the real Mastodon and X publishers
to their local servers. No mocks."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import logging
import os
import random
import stat
import struct
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from bot import errors
from bot.fetch import new_session
from bot.images import (
    ALGORITHM_VERSION,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    MASTODON_IMAGE_MAX_BYTES,
    X_IMAGE_MAX_BYTES,
    ImageError,
    PreparedImage,
    prepare_artwork,
)
from bot.models import Media, Post
from bot.platforms.mastodon import MastodonPublisher
from bot.platforms.x import XPublisher
from tests.fakes import x_server
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer

KB = 1024
SECRET = "CrierTestCam-Serial-4242"   # stands in for camera, GPS and author metadata


# -- images, made with Pillow ------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@functools.cache
def noise(width: int, height: int, mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Random pixels: compress badly, so files are big for their size (deterministic)."""
    data = random.Random(seed).randbytes(width * height * len(mode))
    return Image.frombytes(mode, (width, height), data)


@functools.cache
def noisy_jpeg(width: int, height: int, quality: int = 95) -> bytes:
    return encode(noise(width, height), "JPEG", quality=quality)


def halves(size: tuple[int, int], left: str, right: str, mode: str = "RGB") -> Image.Image:
    img = Image.new(mode, size, right)
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=left)
    return img


def private_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = SECRET
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    return exif


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming `width`x`height`, one tiny IDAT, IEND: a bomb's
    header without its payload, built in microseconds."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def pixels(path_or_bytes: str | bytes) -> Image.Image:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    img = Image.open(source)
    img.load()
    return img


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def host():
    with FeedServer() as server:
        yield server


@pytest.fixture
def session():
    s = new_session(guard=True, allow_private=["127.0.0.0/8"])  # artwork served on loopback
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "data" / "media"   # does not exist yet: prepare_artwork makes it


_paths = itertools.count()


@pytest.fixture
def serve(host):
    """serve(body, content_type) -> a URL on the loopback host, used by no other test."""
    def serve(body: bytes, content_type: str = "image/jpeg", name: str = "art") -> str:
        path = f"/art/{next(_paths)}/{name}"
        host.set_feed(path, body, content_type=content_type, etag=False, last_modified=False)
        return host.url + path
    return serve


@pytest.fixture
def prepare(cache, session):
    def prepare(url: str, **kw) -> PreparedImage:
        kw.setdefault("max_bytes", MASTODON_IMAGE_MAX_BYTES)
        kw.setdefault("cache_dir", cache)
        return prepare_artwork(url, session=session, **kw)
    return prepare


def requests_for(host: FeedServer, url: str) -> int:
    path = url[len(host.url):]
    return sum(1 for _, p, _ in host.requests if p == path)


# -- passing through, scaling, recompressing ---------------------------------------------------

@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_small_jpeg_and_png_go_out_byte_for_byte(serve, prepare, fmt, mime):
    original = encode(halves((300, 200), "red", "navy"), fmt)
    url = serve(original, mime)
    img = prepare(url)
    assert Path(img.path).read_bytes() == original
    assert img == PreparedImage(path=img.path, mime_type=mime, width=300, height=200,
                                bytes=len(original), source_url=url, resized=False)
    assert Path(img.path).suffix == (".jpg" if fmt == "JPEG" else ".png")
    assert os.path.isabs(img.path)


def test_huge_dimensions_are_scaled_within_max_side(serve, prepare):
    wide = halves((5000, 400), "orange", "teal")
    img = prepare(serve(encode(wide, "PNG"), "image/png"))
    assert (img.width, img.height) == (DEFAULT_MAX_SIDE, 327)   # 400 * 4096 / 5000, floored
    assert img.resized and img.mime_type == "image/jpeg"        # opaque: JPEG
    out = pixels(img.path)
    assert out.size == (img.width, img.height) and out.format == "JPEG"
    assert close(out.getpixel((10, 10)), (255, 165, 0))
    assert close(out.getpixel((img.width - 10, 10)), (0, 128, 128))


def test_too_many_pixels_are_scaled_within_max_pixels(serve, prepare):
    square = encode(halves((3000, 3000), "white", "black"), "JPEG", quality=90)
    img = prepare(serve(square), max_pixels=1_000_000)
    assert img.width == img.height and 990 <= img.width <= 1000
    assert img.width * img.height <= 1_000_000 and img.resized
    assert pixels(img.path).size == (img.width, img.height)
    assert DEFAULT_MAX_PIXELS == 3840 * 2160


def test_big_noisy_jpeg_is_recompressed_under_the_cap(serve, prepare, caplog):
    source = noisy_jpeg(1000, 800)
    assert len(source) > 600 * KB
    caplog.set_level(logging.INFO, logger="bot.images")
    img = prepare(serve(source), max_bytes=200 * KB)
    assert img.bytes == os.path.getsize(img.path) <= 200 * KB
    assert img.mime_type == "image/jpeg" and img.resized
    assert img.width < 1000 and abs(img.width / img.height - 1000 / 800) < 0.01
    assert pixels(img.path).size == (img.width, img.height)
    assert "made into a" in caplog.text and str(200 * KB) in caplog.text


def test_png_with_transparency_over_the_cap_becomes_a_flattened_jpeg(serve, prepare):
    img = noise(300, 300, "RGBA").copy()
    img.putalpha(halves((300, 300), "black", "white", mode="L"))  # left half see-through
    source = encode(img, "PNG")
    assert len(source) > 150 * KB
    out = prepare(serve(source, "image/png"), max_bytes=120 * KB)
    assert out.mime_type == "image/jpeg" and out.resized and out.bytes <= 120 * KB
    flat = pixels(out.path)
    assert flat.mode == "RGB" and flat.size == (300, 300)
    assert close(flat.getpixel((40, 150)), (255, 255, 255), tolerance=8)  # white, not black


def test_png_with_transparency_that_fits_stays_a_png(serve, prepare):
    logo = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((500, 100, 1500, 900), fill=(200, 30, 30, 255))
    out = prepare(serve(encode(logo, "PNG"), "image/png"), max_side=500)
    assert (out.mime_type, out.width, out.height, out.resized) == ("image/png", 500, 250, True)
    small = pixels(out.path)
    assert small.mode == "RGBA"
    assert small.getpixel((5, 5))[3] == 0 and small.getpixel((250, 125)) == (200, 30, 30, 255)


def test_fully_opaque_alpha_channel_is_treated_as_opaque(serve, prepare):
    opaque = Image.new("RGBA", (3000, 100), (10, 200, 10, 255))
    out = prepare(serve(encode(opaque, "PNG"), "image/png"), max_side=1000)
    assert out.mime_type == "image/jpeg" and (out.width, out.height) == (1000, 33)


@pytest.mark.parametrize("fmt, options, mime", [
    ("GIF", {"transparency": 0}, "image/png"),   # palette with a see-through colour
    ("WEBP", {"quality": 80}, "image/jpeg"),
    ("BMP", {}, "image/jpeg"),
])
def test_other_formats_are_converted(serve, prepare, fmt, options, mime):
    img = halves((120, 80), "black", "yellow")
    if fmt == "GIF":   # palette entry 0 (the left half) is the see-through one
        img = Image.new("P", (120, 80), 1)
        img.putpalette([0, 0, 0, 255, 255, 0])
        ImageDraw.Draw(img).rectangle((0, 0, 59, 79), fill=0)
    out = prepare(serve(encode(img, fmt, **options), f"image/{fmt.lower()}"))
    assert (out.mime_type, out.width, out.height, out.resized) == (mime, 120, 80, True)
    decoded = pixels(out.path)
    assert decoded.format == mime.split("/")[1].upper()
    if fmt == "GIF":
        assert decoded.getpixel((100, 40)) == (255, 255, 0, 255)
        assert decoded.getpixel((10, 40))[3] == 0


# -- orientation and privacy -------------------------------------------------------------------

def test_exif_orientation_is_applied_and_metadata_stripped(serve, prepare):
    # stored 40x20, red left, blue right; orientation 6 shows it turned 90 degrees clockwise
    stored = halves((40, 20), "red", "blue")
    source = encode(stored, "JPEG", quality=95, exif=private_exif(6), comment=SECRET.encode(),
                    xmp=f"<x:xmpmeta>{SECRET}</x:xmpmeta>".encode())
    assert SECRET.encode() in source
    out = prepare(serve(source))
    assert (out.width, out.height, out.resized) == (20, 40, True)
    data = Path(out.path).read_bytes()
    assert SECRET.encode() not in data and b"Exif" not in data and b"xmpmeta" not in data
    shown = pixels(data)
    assert shown.size == (20, 40)
    assert close(shown.getpixel((10, 5)), (255, 0, 0))     # red on top
    assert close(shown.getpixel((10, 35)), (0, 0, 255))    # blue below
    assert not shown.getexif() and "comment" not in shown.info and "xmp" not in shown.info


def test_upright_jpeg_metadata_is_removed_without_reencoding(serve, prepare):
    source = encode(noise(64, 48), "JPEG", quality=90, exif=private_exif(1),
                    comment=SECRET.encode()) + b"trailing " + SECRET.encode()
    out = prepare(serve(source))
    data = Path(out.path).read_bytes()
    assert not out.resized and len(data) < len(source) and SECRET.encode() not in data
    assert pixels(data).tobytes() == pixels(source).tobytes()   # same DCT data: lossless
    assert not pixels(data).getexif() and "comment" not in pixels(data).info


def test_hidden_second_picture_and_progressive_scans(serve, prepare):
    picture = noise(64, 48)
    mpo = encode(picture, "MPO", save_all=True, append_images=[halves((64, 48), "red", "red")])
    assert Image.open(io.BytesIO(mpo)).n_frames == 2   # a phone's depth map, a pre-crop copy
    out = prepare(serve(mpo))
    single = pixels(Path(out.path).read_bytes())
    assert not out.resized and single.format == "JPEG" and getattr(single, "n_frames", 1) == 1
    assert single.tobytes() == pixels(mpo).tobytes()
    progressive = encode(picture, "JPEG", progressive=True, comment=SECRET.encode())
    out = prepare(serve(progressive))
    data = Path(out.path).read_bytes()
    assert not out.resized and SECRET.encode() not in data
    assert pixels(data).tobytes() == pixels(progressive).tobytes()


def test_upright_png_metadata_is_removed_without_reencoding(serve, prepare):
    info = PngInfo()
    info.add_text("Author", SECRET)
    info.add_itxt("Comment", SECRET, zip=True)
    source = encode(noise(50, 40, "RGBA"), "PNG", pnginfo=info, exif=private_exif(1))
    out = prepare(serve(source, "image/png"))
    data = Path(out.path).read_bytes()
    assert not out.resized and out.mime_type == "image/png"
    assert SECRET.encode() not in data and b"eXIf" not in data and b"tEXt" not in data
    assert pixels(data).tobytes() == pixels(source).tobytes()


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, says", [
    (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>nope</body></html>",
     "not an image (HTML page?)"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),  # no Ghostscript
    (random.Random(7).randbytes(2048), "not an image"),
    (b"", "empty"),
])
def test_what_is_not_an_image_is_refused(serve, prepare, cache, body, says):
    url = serve(body, "image/jpeg")
    with pytest.raises(ImageError) as info:
        prepare(url)
    assert str(info.value).startswith(f"artwork {url}: ")
    assert says in str(info.value)
    assert isinstance(info.value, errors.CrierError)
    assert not list(cache.glob("*.json"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_refused(serve, prepare, fmt):
    whole = noisy_jpeg(200, 200) if fmt == "JPEG" else encode(noise(200, 200), "PNG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        prepare(serve(whole[:len(whole) * 2 // 3]))


def test_png_with_valid_checksums_but_too_little_image_data_is_refused(serve, prepare):
    with pytest.raises(ImageError, match="damaged or truncated"):  # passes verify(), not load()
        prepare(serve(png_header_only(100, 100), "image/png"))


def test_decompression_bombs_are_refused_undecoded(serve, prepare):
    with pytest.raises(ImageError, match="too many pixels"):          # Pillow's own guard
        prepare(serve(png_header_only(100_000, 100_000), "image/png"))
    with pytest.raises(ImageError, match="decompression bomb"):       # ours, below Pillow's
        prepare(serve(png_header_only(9000, 8000), "image/png"))
    with pytest.raises(ImageError, match="decompression bomb"):
        prepare(serve(encode(Image.new("L", (300, 300)), "PNG"), "image/png"),
                max_source_pixels=50_000)


def test_download_over_the_cap_and_http_errors_are_image_errors(host, serve, prepare):
    url = serve(noisy_jpeg(200, 200))
    with pytest.raises(ImageError, match="over the .* cap") as info:
        prepare(url, download_cap=10 * KB)
    assert str(info.value).startswith(f"artwork {url}: ")
    assert isinstance(info.value.__cause__, errors.FetchError)
    host.fail_next(url[len(host.url):], status=503, headers={"Retry-After": "120"})
    with pytest.raises(ImageError) as info:
        prepare(url)
    assert (info.value.status, info.value.retry_after) == (503, 120.0)
    with pytest.raises(ImageError, match="not found"):
        prepare(host.url + "/no/such/art.jpg")


def test_an_image_that_cannot_get_small_enough_is_refused(serve, prepare):
    with pytest.raises(ImageError, match="cannot be made smaller than 500 bytes"):
        prepare(serve(noisy_jpeg(300, 300)), max_bytes=500)


def test_bad_limits_are_a_programming_error(prepare):
    with pytest.raises(ValueError, match="max_bytes"):
        prepare("http://127.0.0.1:9/a.jpg", max_bytes=0)


# -- the cache ---------------------------------------------------------------------------------

def test_cache_hit_does_not_download_again(host, serve, prepare):
    url = serve(noisy_jpeg(400, 300))
    now = [1_000_000.0]

    def first():
        return prepare(url, max_bytes=40 * KB, clock=lambda: now[0])
    a = first()
    inode = os.stat(a.path).st_ino
    b = first()
    assert a == b and requests_for(host, url) == 1
    now[0] += 3600
    assert first() == a and requests_for(host, url) == 1     # within the day: no request
    now[0] += 24 * 3600
    assert first() == a and requests_for(host, url) == 2     # stale: asked again...
    assert os.stat(a.path).st_ino == inode                    # ...same bytes: not re-encoded
    other = prepare(url, max_bytes=30 * KB, clock=lambda: now[0])
    assert other.path != a.path and other.bytes <= 30 * KB   # other limits, other entry


def test_a_changed_image_at_the_same_url_is_seen_after_the_ttl(host, serve, prepare):
    url = serve(encode(Image.new("RGB", (50, 50), "red"), "PNG"), "image/png")
    before = prepare(url, clock=lambda: 0.0)
    host.set_feed(url[len(host.url):], encode(Image.new("RGB", (50, 50), "blue"), "PNG"),
                  content_type="image/png")
    assert prepare(url, clock=lambda: 60.0) == before
    after = prepare(url, clock=lambda: 2 * 24 * 3600.0)
    assert after.path != before.path
    assert pixels(after.path).getpixel((0, 0)) == (0, 0, 255)


def test_local_files_are_read_each_time_but_prepared_once(tmp_path, prepare):
    source = tmp_path / "cover.jpg"
    source.write_bytes(noisy_jpeg(400, 300))
    a = prepare(str(source), max_bytes=40 * KB, trusted=True)   # a path the host typed
    mtime = os.stat(a.path).st_mtime_ns
    assert prepare(source.as_uri(), max_bytes=40 * KB, trusted=True).path == a.path
    assert os.stat(a.path).st_mtime_ns == mtime
    assert not list(Path(a.path).parent.glob("url-*"))   # no URL entry for files


def test_cache_is_private_named_by_content_and_written_atomically(serve, prepare, cache):
    source = noisy_jpeg(400, 300)
    url = serve(source)
    img = prepare(url, max_bytes=40 * KB)
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    names = sorted(p.name for p in cache.iterdir())
    for name in names:
        assert stat.S_IMODE(os.stat(cache / name).st_mode) == 0o600, name
    key = hashlib.sha256(f"v{ALGORITHM_VERSION}|{40 * KB}|{DEFAULT_MAX_PIXELS}|"
                         f"{DEFAULT_MAX_SIDE}|".encode() + source).hexdigest()
    assert Path(img.path).name == f"{key}.jpg"
    assert f"{key}.json" in names and sum(n.startswith("url-") for n in names) == 1
    assert len(names) == 3   # no temporary files left behind


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, prepare):
    source = tmp_path / "cover.jpg"
    source.write_bytes(noisy_jpeg(400, 300))
    a = prepare(str(source), max_bytes=40 * KB, trusted=True)
    good = Path(a.path).read_bytes()
    Path(a.path).write_bytes(good[:100])
    assert prepare(str(source), max_bytes=40 * KB, trusted=True) == a
    assert Path(a.path).read_bytes() == good


def test_output_is_deterministic(tmp_path, serve, session):
    url = serve(noisy_jpeg(700, 500))
    runs = [prepare_artwork(url, cache_dir=tmp_path / f"run{i}", session=session,
                            max_bytes=60 * KB, max_side=600) for i in range(2)]
    assert runs[0].path != runs[1].path
    assert Path(runs[0].path).read_bytes() == Path(runs[1].path).read_bytes()
    assert Path(runs[0].path).name == Path(runs[1].path).name


# -- end to end: the real publishers upload what was prepared ----------------------------------

MASTODON_TOKEN = "tok-images-SECRET"
X_CREDS = {"consumer_key": "ck-img", "consumer_secret": "cs-img-SECRET",
           "access_token": "1072250532645998596-at-img", "access_token_secret": "ats-img-SECRET"}


def test_prepared_artwork_posts_to_mastodon_with_alt_text(tmp_path, serve, prepare, caplog):
    limit = 150 * KB   # the instance's configuration.media_attachments.image_size_limit
    source = noisy_jpeg(800, 600)
    assert len(source) > limit
    alt = "Cover art: a fox reading a newspaper"
    with MastodonServer(token=MASTODON_TOKEN, image_size_limit=limit) as masto:
        pub = MastodonPublisher("main", masto.url, MASTODON_TOKEN, media_poll_interval=0.01)
        rules = pub.rules()
        assert rules.image_max_bytes == limit
        img = prepare(serve(source), max_bytes=rules.image_max_bytes)
        media = Media(img.path, alt=alt, mime_type=img.mime_type)
        published = pub.publish(Post("New episode!", media=(media,)), "k-art")
        status = masto.statuses[-1]
        assert published.remote_id == status["id"]
        [attachment] = status["media_attachments"]
        assert attachment["description"] == alt and attachment["type"] == "image"
        assert attachment["meta"]["original"]["width"] == img.width
        assert masto.media[attachment["id"]]["_data"] == Path(img.path).read_bytes()

        raw = tmp_path / "raw.jpg"   # the control: the unprepared file is refused...
        raw.write_bytes(source)
        with caplog.at_level(logging.WARNING):
            pub.publish(Post("raw", media=(Media(str(raw), alt=alt),)), "k-raw")
        assert "file size" in caplog.text  # ...and the post goes out without it, said so
        assert masto.statuses[-1]["media_attachments"] == []


def test_prepared_artwork_posts_to_x_with_alt_text(tmp_path, serve, prepare, caplog):
    source = encode(noise(1400, 1400), "PNG")
    assert len(source) > X_IMAGE_MAX_BYTES == x_server.IMAGE_MAX_BYTES
    alt = "Cover art: a fox reading a newspaper"
    with XServer(**X_CREDS) as xs:
        pub = XPublisher("tbs", **X_CREDS, api_base=xs.url, timeout=5.0)
        assert pub.rules().image_max_bytes == X_IMAGE_MAX_BYTES
        img = prepare(serve(source, "image/png"), max_bytes=pub.rules().image_max_bytes)
        assert img.bytes <= X_IMAGE_MAX_BYTES and (img.width, img.height) == (1400, 1400)
        published = pub.publish(Post("New episode!", media=(Media(img.path, alt=alt),)), "k")
        tweet = xs.tweets[-1]
        assert published.remote_id == tweet["id"]
        [media_id] = tweet["media_ids"]
        assert xs.media[media_id]["alt_text"] == alt
        assert xs.media[media_id]["size"] == img.bytes
        paths = [r["path"] for r in xs.requests]
        assert "/2/media/metadata" in paths

        raw = tmp_path / "raw.png"   # the control: X refuses the unprepared file
        raw.write_bytes(source)
        with caplog.at_level(logging.WARNING, logger="bot.platforms.x"):
            pub.publish(Post("raw", media=(Media(str(raw), alt=alt),)), "k-raw")
        assert xs.tweets[-1]["media_ids"] == [] and "refused image" in caplog.text
