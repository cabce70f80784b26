"""Hostile artwork in a feed, through the whole worker cycle: each is refused or bounded, and
everything else is still delivered (the post goes out without the image, saying why).

Also: the three configuration keys, and the memory a pixel bomb costs (measured in a fresh
process, so the number is this preparation's alone).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bot import artwork, fetch
from bot.config import load_settings
from bot.errors import ConfigError
from bot.service import ARTWORK_PATIENCE
from tests import netaudit
from tests.conftest import ROOT
from tests.fakes.trickle_server import TrickleServer
from tests.world import new_episode

MB = 1024 * 1024


@pytest.fixture
def connects() -> list[tuple]:
    """Where every socket.connect of this test went (tests/netaudit.py)."""
    return netaudit.recording()


def png(size=(600, 600), color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


MEASURE = textwrap.dedent('''
    import sys
    from pathlib import Path
    from bot.fetch import new_session
    from bot.images import prepare_artwork

    def high_water():  # this process's peak resident memory, in bytes (VmHWM: not the
        # parent's, unlike ru_maxrss, which a child inherits across fork and exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    path = Path(sys.argv[1])
    session = new_session()
    before = high_water()
    try:
        img = prepare_artwork(str(path), cache_dir=path.parent / "cache", session=session,
                              max_bytes=16 * 1024 * 1024, trusted=True)
        result = f"ok {img.width}x{img.height}"
    except Exception as e:
        result = f"refused {e}"
    print(high_water() - before, result)
''')
MAKE_JPEG = ("import sys; from PIL import Image; Image.new('RGB', (int(sys.argv[2]), "
             "int(sys.argv[3])), (90, 20, 200)).save(sys.argv[1], 'JPEG', quality=90)")


def bomb(width: int, height: int, kind: str = "rgba") -> bytes:
    """A PNG of zeros: a few hundred KB that decode to width x height pixels."""
    color_type, bands = {"rgba": (6, 4), "rgb": (2, 3), "grey": (0, 1)}[kind]
    c = zlib.compressobj(9)
    row = bytes(1 + width * bands)
    data = b"".join(c.compress(row) for _ in range(height)) + c.flush()

    def chunk(k: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


def prepare_in_a_fresh_process(path: Path) -> tuple[int, str]:
    """(peak memory the preparation added, in bytes; its result), in a process that did
    nothing big before (so the high-water mark is this preparation's)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    grown, result = out.stdout.strip().split(" ", 1)
    return int(grown), result


def source(tmp_path: Path, width: int, height: int, kind: str) -> Path:
    path = tmp_path / f"{kind}-{width}.img"
    if kind == "jpeg":
        subprocess.run([sys.executable, "-c", MAKE_JPEG, str(path), str(width), str(height)],
                       check=True, timeout=60)
    else:
        path.write_bytes(bomb(width, height, kind))
    return path


# -- memory ---------------------------------------------------------------------------------

def test_a_pixel_bomb_is_refused_before_it_is_decoded(tmp_path):
    path = source(tmp_path, 8000, 8000, "rgba")
    assert path.stat().st_size < 300 * 1024       # a 243 KB PNG...
    grown, result = prepare_in_a_fresh_process(path)
    assert result.startswith("refused") and "pixel bomb" in result and "8000x8000 RGBA" in result
    assert grown < 20 * MB                        # ...that took ~613 MB more to prepare before


@pytest.mark.parametrize("width, height, kind", [(3000, 3000, "rgba"), (3500, 3500, "rgb"),
                                                 (3000, 3000, "grey"), (6000, 6000, "jpeg"),
                                                 (6000, 6000, "grey")])
def test_the_largest_images_allowed_stay_under_100_mb(tmp_path, width, height, kind):
    grown, result = prepare_in_a_fresh_process(source(tmp_path, width, height, kind))
    if kind == "grey" and width == 6000:   # 36 Mpx of grey (+ its RGB copy): refused
        assert result.startswith("refused") and grown < 20 * MB
        return
    assert result.startswith("ok"), result  # (a 6000 px JPEG is decoded at half scale)
    assert grown < 100 * MB, f"{grown / MB:.0f} MB"


# -- configuration ----------------------------------------------------------------------------

def config(tmp_path, extra: str):
    p = tmp_path / "crier.toml"
    p.write_text(f'show = "S"\nfeed = "feed.xml"\n{extra}\n', encoding="utf-8")
    return load_settings(p, env={})


def test_the_safety_keys(tmp_path):
    s = config(tmp_path, "")
    assert (s.allow_private_networks, s.feed_deadline, s.image_deadline) == ((), 60, 30)
    assert (fetch.FEED_DEADLINE, fetch.IMAGE_DEADLINE, artwork.IMAGE_DEADLINE) == (60, 30, 30)
    s = config(tmp_path, 'allow_private_networks = ["10.0.0.0/8", "fd00::/8", "192.168.1.5"]\n'
                         'feed_deadline = "2m"\nimage_deadline = 5')
    assert s.allow_private_networks == ("10.0.0.0/8", "fd00::/8", "192.168.1.5/32")
    assert (s.feed_deadline, s.image_deadline) == (120, 5)


@pytest.mark.parametrize("extra, says", [
    ('allow_private_networks = ["10.0.0.1/8"]', "allow_private_networks[0]"),
    ('allow_private_networks = ["intranet"]', "10.0.0.0/8"),
    ('allow_private_networks = "10.0.0.0/8"', "a list of networks"),
    ('image_deadline = "soon"', "image_deadline"),
    ("feed_deadline = 0", "at least 1"),
])
def test_bad_safety_keys_are_one_clear_line(tmp_path, extra, says):
    with pytest.raises(ConfigError) as info:
        config(tmp_path, extra)
    assert says in str(info.value) and "\n" not in str(info.value)


# -- through the worker cycle -----------------------------------------------------------------

def announce_with_artwork(world, n: int, url: str) -> None:
    it = new_episode(world, n)
    world.items[-1] = it.with_(image=url)
    world.publish_feed()


def masto_row(world, n: int) -> dict:
    return next(d for d in world.rows() if d.account == "masto" and d.episode_id and
                world.store.get_episode(d.episode_id).data["title"].startswith(
                    f"Episode {n}:"))


def test_hostile_artwork_is_refused_and_every_post_still_goes_out(world, tmp_path, connects):
    world.feed_srv.set_feed("/art/good.png", png(), content_type="image/png")
    world.feed_srv.set_feed("/art/bomb.png", bomb(8000, 8000), content_type="image/png")
    world.feed_srv.redirect("/art/moved.png", "http://169.254.169.254/latest/meta-data/",
                            status=302)
    secret = tmp_path / "private-photo.png"
    secret.write_bytes(png(color=(250, 0, 0)))   # a real image: uploaded today if read
    port = world.feed_srv.port
    world.configure(masto={"media": "artwork"}, media_dir=str(tmp_path / "media"),
                    allow_private_networks=("127.0.0.1/32",))   # the feed server only
    world.cycle()
    cases = {
        6: (secret.as_uri(), "only http(s)"),
        7: (f"file://localhost{secret}", "only http(s)"),
        8: (f"http://127.0.0.2:{port}/art/good.png", "127.0.0.2: a loopback address"),
        9: ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
        10: (f"http://[::ffff:169.254.169.254]:{port}/x.png", "IPv4-mapped 169.254.169.254"),
        11: (world.feed_srv.url + "/art/moved.png", "cloud metadata"),
        12: (world.feed_srv.url + "/art/bomb.png", "pixel bomb"),
        13: (world.feed_srv.url + "/art/good.png", None),
    }
    for n, (url, _) in cases.items():
        announce_with_artwork(world, n, url)
        world.cycle()
    assert len(world.masto.statuses) == len(world.x.tweets) == len(cases)
    for n, (_, says) in cases.items():
        row = masto_row(world, n)
        assert row.status == "sent", (n, row.last_error)
        if says is None:
            assert len(row.payload["media"]) == 1
            continue
        assert row.payload["media"] == [], n
        (note,) = row.payload["notes"]
        assert note.startswith("posted without artwork") and says in note, (n, note)
    with_media = [s for s in world.masto.statuses if s["media_ids"]]
    assert len(with_media) == 1 and "Episode 13:" in with_media[0]["text"]
    assert not [a for a in connects if a[0] in ("169.254.169.254", "127.0.0.2")]


def test_a_hanging_artwork_server_does_not_hold_up_other_deliveries(world, tmp_path):
    with TrickleServer(png(), phase="silent") as hang, \
            TrickleServer(png(), phase="body", interval=1.0) as trickle:
        world.configure(masto={"media": "artwork"}, media_dir=str(tmp_path / "media"),
                        allow_private_networks=("127.0.0.0/8",), image_deadline=3)
        world.cycle()
        announce_with_artwork(world, 6, hang.url + "/cover.png")
        world.svc.poll(force=True)
        started = time.monotonic()
        outcomes = world.svc.dispatch(artwork_wait=0.3)
        took = time.monotonic() - started
        assert took < 2.0, took               # not the artwork's 3 s deadline, let alone 30 s
        by = {o.account: o for o in outcomes}
        assert by["x"].status == "sent" and len(world.x.tweets) == 1  # went out meanwhile
        assert by["masto"].status == "pending" and "waiting for its artwork" in by["masto"].error
        assert world.masto.statuses == [] and hang.connections == 1

        # the download gives up at its deadline; a passing failure: the post waits a while,
        # then goes out without the image, saying why
        assert world.svc.artwork.wait(timeout=8)
        world.clock.advance(seconds=10)
        outcomes = world.svc.dispatch(artwork_wait=0.3)
        assert [o.status for o in outcomes] == ["pending"]
        assert "image_deadline" in masto_row(world, 6).last_error
        world.clock.advance(seconds=ARTWORK_PATIENCE.total_seconds() + 60)
        world.svc.dispatch(artwork_wait=5)   # one more try (still hanging), then without
        row = masto_row(world, 6)
        assert row.status == "sent" and row.payload["media"] == []
        assert "image_deadline" in row.payload["notes"][0]
        assert len(world.masto.statuses) == 1 and not world.masto.statuses[0]["media_ids"]

        # a byte a second: cut off at the deadline just the same
        announce_with_artwork(world, 7, trickle.url + "/cover.png")
        world.svc.poll(force=True)
        world.svc.dispatch(artwork_wait=5)
        assert "stopped after 3 s" in masto_row(world, 7).last_error
        assert len(world.x.tweets) == 2


def test_a_feed_that_never_answers_is_cut_off_and_deliveries_still_go_out(world):
    world.cycle()
    new_episode(world)
    world.svc.poll(force=True)                 # episode 6 queued for both accounts
    world.feed_srv.delay("/feed.xml", 30)      # then the feed host hangs
    world.configure(feed_deadline=1)
    started = time.monotonic()
    report, outcomes = world.cycle()
    assert time.monotonic() - started < 4      # not 30 s, nor the 30 s per-read timeout
    assert report.result == "error" and "feed_deadline" in report.error
    assert "stopped after 1 s" in report.error
    assert sorted(o.status for o in outcomes) == ["sent", "sent"]
    world.feed_srv.delay("/feed.xml", 0)
