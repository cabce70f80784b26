"""Bluesky's pure parts: record keys (TIDs), rich-text facets, `langs`, and image fitting.

Part of the Bluesky adapter (`bot.platforms.bluesky` does the network); nothing here does I/O.

**TIDs** (https://atproto.com/specs/tid): a 64-bit integer, top bit 0, then 53 bits of
microseconds since the UNIX epoch and 10 bits of clock id, written as 13 characters of
base32-sortable (`234567abcdefghijklmnopqrstuvwxyz`). crier picks one per delivery and uses it
as the post's record key, so a retry can ask for exactly that record.

**Facets** (lexicon app.bsky.richtext.facet): each annotates a slice of the text by UTF-8
BYTE offsets (start inclusive, end exclusive), never by characters. Links, mentions and
hashtags are found the way Bluesky's own app finds them: the `atproto` SDK's `facet_detection`
is a port of `detectFacets` from @atproto/api. On top of it:
- a link the composer showed shortened (`Post.links`: (shown, full URL) pairs) gets a link
  facet over the shown text carrying the whole URL; nothing else may claim that slice;
- a mention gets a facet only when its handle resolved to a DID;
- a hashtag follows Bluesky's rules: not all digits, trailing punctuation not part of it, at
  most 64 graphemes and 640 bytes (else it is plain text); `$cashtags` are left as text;
- facets never overlap: explicit links, then mentions, then detected links, then tags.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.textlen import graphemes

# https://atproto.com/specs/tid
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
# lexicon app.bsky.richtext.facet#tag: maxGraphemes 64, maxLength 640 (bytes)
TAG_MAX_GRAPHEMES, TAG_MAX_BYTES = 64, 640
# lexicon app.bsky.feed.post: langs maxLength 3
MAX_LANGS = 3
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")

FACET = "app.bsky.richtext.facet"


# -- TIDs -------------------------------------------------------------------------------------

def make_tid(micros: int, clock_id: int) -> str:
    """The TID for `micros` microseconds since the epoch and a 10-bit `clock_id`."""
    if not 0 <= micros < 1 << 53 or not 0 <= clock_id < 1 << 10:
        raise ValueError(f"TID out of range: {micros} µs, clock id {clock_id}")
    n = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[n & 31])
        n >>= 5
    return "".join(reversed(chars))


def parse_tid(tid: str) -> tuple[int, int]:
    """(microseconds since the epoch, clock id) of a TID; ValueError if it is not one."""
    if not TID_RE.match(tid):
        raise ValueError(f"not a TID: {tid!r}")
    n = 0
    for ch in tid:
        n = n << 5 | TID_ALPHABET.index(ch)
    return n >> 10, n & 0x3FF


# -- text -------------------------------------------------------------------------------------

def byte_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of string index `index` in `text`."""
    return len(text[:index].encode("utf-8"))


def mention_pattern(handle: str) -> re.Pattern[str]:
    """"@handle" as a whole word (not the start of a longer handle, not inside an e-mail
    address or a URL's path)."""
    bare = handle.lstrip("@")
    return re.compile(r"(?<![\w@./])@" + re.escape(bare) + r"(?![\w-]|\.[A-Za-z0-9])",
                      re.IGNORECASE)


def handles_in(text: str, known: Iterable[str] = ()) -> list[str]:
    """The handles mentioned in `text` (lower case, without "@", in order, once each):
    those Bluesky's app would link, and any of `known` ("@handle") written in it."""
    from atproto_client.utils.facet_detection import detect_mentions

    found = [m.handle.lower() for m in detect_mentions(text)]
    found += [h.lstrip("@").lower() for h in known if mention_pattern(h).search(text)]
    return list(dict.fromkeys(found))


def write_names(text: str, names: Mapping[str, str]) -> str:
    """`text` with each "@handle" of `names` (handle -> the person's name) replaced by the
    name: what a post says when a handle cannot be linked."""
    for handle, name in names.items():
        text = mention_pattern(handle).sub(lambda _m, n=name: n, text)
    return text


def facets(text: str, *, links: Sequence[tuple[str, str]] = (),
           dids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The facets of the final `text`, as record JSON, sorted by position (module docstring).

    `links`: (shown, full URL) pairs; `dids`: resolved handles (lower case, no "@") -> DID.
    """
    from atproto_client.utils.facet_detection import detect_facets, detect_mentions

    dids = dids or {}
    taken: list[tuple[int, int]] = []
    out: list[tuple[int, int, dict[str, Any]]] = []

    def claim(start: int, end: int, feature: dict[str, Any]) -> None:
        if start >= end or any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        out.append((start, end, feature))

    searched_from: dict[str, int] = {}
    for shown, full in links:
        if not shown:
            continue
        at = text.find(shown, searched_from.get(shown, 0))
        if at < 0:
            continue
        searched_from[shown] = at + len(shown)
        claim(byte_offset(text, at), byte_offset(text, at + len(shown)),
              {"$type": f"{FACET}#link", "uri": full})
    for m in detect_mentions(text):
        did = dids.get(m.handle.lower())
        if did:
            claim(m.byte_start, m.byte_end, {"$type": f"{FACET}#mention", "did": did})
    detected = detect_facets(text)
    for kind in ("link", "tag"):
        for f in detected:
            feature = f.features[0]
            start, end = f.index.byte_start, f.index.byte_end
            if kind == "link" and hasattr(feature, "uri"):
                claim(start, end, {"$type": f"{FACET}#link", "uri": feature.uri})
            elif kind == "tag" and hasattr(feature, "tag") and tag_ok(feature.tag):
                claim(start, end, {"$type": f"{FACET}#tag", "tag": feature.tag})
    out.sort(key=lambda item: item[0])
    return [{"index": {"byteStart": s, "byteEnd": e}, "features": [feature]}
            for s, e, feature in out]


def tag_ok(tag: str) -> bool:
    """Whether Bluesky would make `tag` (without "#") a hashtag: not a cashtag, not only
    digits, no trailing punctuation, within 64 graphemes and 640 bytes."""
    import unicodedata

    if not tag or tag.startswith("$") or tag.isdigit():
        return False
    if unicodedata.category(tag[-1]).startswith("P"):
        return False
    return len(graphemes(tag)) <= TAG_MAX_GRAPHEMES and len(tag.encode()) <= TAG_MAX_BYTES


def langs(language: str | None) -> list[str]:
    """`langs` for a post from the feed's language ("en-us", "de_DE"): BCP-47 tags, or none."""
    if not language:
        return []
    out = []
    for part in re.split(r"[,;\s]+", language.strip()):
        tag = part.replace("_", "-")
        if _LANGUAGE.match(tag):
            primary, _, rest = tag.partition("-")
            out.append(primary.lower() + ("-" + rest.upper() if len(rest) == 2 else
                                          "-" + rest if rest else ""))
    return list(dict.fromkeys(out))[:MAX_LANGS]


# -- images -----------------------------------------------------------------------------------

# https://docs.bsky.app/docs/advanced-guides/posts (the app shrinks images to 2000 px a side)
MAX_SIDE = 2000
MAX_SOURCE_PIXELS = 64_000_000
JPEG_QUALITIES = (90, 82, 75, 65)


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    mime_type: str
    width: int
    height: int


def fit_image(data: bytes, max_bytes: int, *, max_side: int = MAX_SIDE) -> FittedImage:
    """`data` as an image of at most `max_bytes` and `max_side` pixels a side.

    Kept as it is when it already fits (a JPEG, PNG or WebP); else re-encoded as JPEG (on
    white where it was transparent), quality lowered, then sides shrunk, until it fits.
    ValueError when `data` is not an image Pillow can read (or claims too many pixels).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, size = probe.format, probe.size
            if size[0] * size[1] > MAX_SOURCE_PIXELS:
                raise ValueError(f"{size[0]}x{size[1]} pixels is too big to use")
            img = ImageOps.exif_transpose(probe)
            img.load()
    except (OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise ValueError(f"not an image: {e}") from None
    mimes = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
    if (len(data) <= max_bytes and fmt in mimes and max(size) <= max_side
            and _exif_orientation_plain(data, fmt)):
        return FittedImage(data, mimes[fmt], size[0], size[1])
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.split()[-1])
    elif img.mode != "RGB":
        img = img.convert("RGB")
    scale = min(1.0, max_side / max(img.size))
    while True:
        w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        frame = img if (w, h) == img.size else img.resize((w, h), Image.LANCZOS)
        for quality in JPEG_QUALITIES:
            buf = io.BytesIO()
            frame.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= max_bytes:
                return FittedImage(buf.getvalue(), "image/jpeg", w, h)
        if max(w, h) <= 64:
            raise ValueError(f"cannot bring the image under {max_bytes} bytes")
        scale *= 0.75


def _exif_orientation_plain(data: bytes, fmt: str | None) -> bool:
    """True unless a JPEG says it must be rotated for display (then it is re-encoded)."""
    if fmt != "JPEG":
        return True
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.getexif().get(0x0112, 1) == 1
