"""The JSON API (bot/web/api*.py) over real HTTP, on SQLite and PostgreSQL: every endpoint's
happy path on a show that has really polled its feed and tried to post (tests/webapi_world.py),
and bad input answered 422 with the message `crier` prints for the same input."""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests import webapi_world

api = webapi_world.api  # the shared world (a fixture), per module and database
A = "/api/v1/shows/alpha"
PREVIEW_KEYS = {"account", "platform", "text", "length", "limit", "fits", "shortened", "link",
                "hashtags", "mentions", "image", "alt", "alt_length", "alt_limit", "trimmed"}


def _png() -> str:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 40, 40)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_shows_and_one_show_with_its_health(api):
    hana, cole = api.client("hana"), api.client("cole")
    shows = hana.get("/api/v1/shows").json()
    assert [s["slug"] for s in shows] == ["alpha", "beta", "gamma"]
    alpha = shows[0]
    assert alpha["failed"] == 1 and alpha["held"] == 3 and alpha["last_poll_at"]
    assert [s["slug"] for s in cole.get("/api/v1/shows").json()] == ["alpha"]
    assert cole.get("/api/v1/me").json()["may"] == {"accounts": False, "remove_post": False,
                                                    "users": False}
    one = hana.get(A).json()
    assert one["timezone"] == "Europe/Berlin" and len(one["held_episodes"]) == 3
    assert [d["id"] for d in one["failed"]] == [api.ids["failed"]]
    accounts = {a["name"]: a for a in hana.get(A + "/accounts").json()}
    assert set(accounts) == {"m-alpha", "d-alpha", "x-alpha"}
    assert accounts["m-alpha"]["configured"] and not accounts["m-alpha"]["dry_run"]


def test_episodes_list_and_detail_with_posts_and_share_url(api):
    c = api.client("cole")
    eps = c.get(A + "/episodes").json()
    assert len(eps) == 6 and eps[0]["title"].startswith("Episode 6")
    assert {e["status"] for e in eps} >= {"held", "announced", "baseline"}
    held = c.get(A + "/episodes", params={"status": "held", "limit": 2}).json()
    assert len(held) == 2 and {e["status"] for e in held} == {"held"}
    eid = api.ids["announced"]
    one = c.get(f"{A}/episodes/{eid}").json()
    assert one["share_url"] == f"{api.web.url}/share/alpha/{eid}"
    assert one["published_local"].endswith("UTC)") and "CE" in one["published_local"]
    posts = {p["account"]: p for p in one["posts"]}
    assert set(posts) == {"m-alpha", "d-alpha", "x-alpha"}
    assert posts["m-alpha"]["status"] == "failed" and "looks like spam" in posts["m-alpha"][
        "error"]
    assert posts["d-alpha"]["status"] == "dry_run" and "New episode" in posts["d-alpha"]["text"]
    assert one["share"]["texts"] and one["share"]["id"] == eid
    r = c.get(A + "/episodes", params={"status": "nonsense"})
    assert r.status_code == 422 and "status" in r.json()["detail"]


def test_release_and_dismiss_held_episodes(api):
    cole, hana = api.client("cole"), api.client("hana")
    rid, did = api.ids["held_release"], api.ids["held_dismiss"]
    r = cole.post(f"{A}/episodes/{rid}/release")       # a co-host may release
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "announced"
    assert {p["status"] for p in r.json()["posts"]} == {"pending"}
    assert len(r.json()["posts"]) == 3
    again = cole.post(f"{A}/episodes/{rid}/release")
    assert again.status_code == 422
    assert again.json()["detail"] == (f"not held: episode {rid} (see `crier status` for held "
                                      "episodes)")
    assert cole.post(f"{A}/episodes/{did}/dismiss").status_code == 403  # host only
    r = hana.post(f"{A}/episodes/{did}/dismiss")
    assert r.status_code == 200 and r.json()["status"] == "dismissed" and r.json()["posts"] == []
    r = hana.post(f"{A}/episodes/{did}/dismiss")
    assert r.status_code == 422 and f"episode {did} is dismissed" in r.json()["detail"]
    assert hana.post(f"{A}/episodes/999999/release").status_code == 404


def test_deliveries_and_retrying_a_failed_one_until_it_is_sent(api):
    c = api.client("cole")
    failed = c.get(A + "/deliveries", params={"status": "failed"}).json()
    assert [d["id"] for d in failed] == [api.ids["failed"]]
    d = failed[0]
    assert d["state"] == "failed" and "looks like spam" in d["error"] and d["url"] is None
    sent = c.get(A + "/deliveries", params={"status": "sent"}).json()
    assert sent and {x["status"] for x in sent} == {"dry_run"}
    r = c.post(f"{A}/deliveries/{d['id']}/retry")       # a co-host may retry
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["action"] == "queued again"
    again = c.post(f"{A}/deliveries/{d['id']}/retry")
    assert again.status_code == 422 and again.json()["detail"].startswith(
        f"delivery {d['id']} is ")
    with api.service("alpha") as svc:
        svc.dispatch()                                 # the server takes it this time
    now = c.get(A + "/deliveries", params={"status": "sent"}).json()
    done = next(x for x in now if x["id"] == d["id"])
    assert done["status"] == "sent" and done["url"].startswith(api.masto.url)
    assert c.post(f"{A}/deliveries/999999/retry").status_code == 404


def test_queue_add_list_edit_pause_resume_cancel(api):
    c = api.client("cole")                             # a co-host may queue and edit
    body = {"text": "Our book is out! #AlphaShow @fan@other.example https://example.com/b",
            "at": "2031-03-01 09:00", "accounts": ["m-alpha", "x-alpha"]}
    dry = c.post(A + "/queue", json={**body, "dry": True})
    assert dry.status_code == 200 and dry.json()["id"] is None and not dry.json()["queued"]
    prev = {p["account"]: p for p in dry.json()["previews"]}
    assert set(prev) == {"m-alpha", "x-alpha"}
    assert PREVIEW_KEYS <= set(prev["x-alpha"])
    assert prev["x-alpha"]["limit"] == 280 and prev["m-alpha"]["limit"] == 500
    assert prev["x-alpha"]["fits"] and prev["x-alpha"]["hashtags"] == ["AlphaShow"]
    assert prev["m-alpha"]["mentions"] == ["@fan@other.example"]
    assert c.get(A + "/queue").json() == []
    r = c.post(A + "/queue", json=body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    promo = r.json()["promo"]
    assert promo["status"] == "active" and promo["next_at"] == "2031-03-01T08:00:00+00:00"
    assert set(promo["goes_out"]) == {"m-alpha", "x-alpha"} and promo["next_local"]
    assert [v["id"] for v in c.get(A + "/queue").json()] == [pid]
    assert c.get(f"{A}/queue/{pid}").json()["deliveries"] == []
    r = c.patch(f"{A}/queue/{pid}", json={"text": "Changed: the book", "at": "2031-03-02 10:00"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "Changed: the book" and r.json()["next_at"].startswith(
        "2031-03-02T09:00")
    assert {p["text"] for p in r.json()["previews"]} == {"Changed: the book"}
    assert c.post(f"{A}/queue/{pid}/pause").json()["status"] == "paused"
    assert c.post(f"{A}/queue/{pid}/resume").json()["status"] == "active"
    r = c.post(f"{A}/queue/{pid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = c.post(f"{A}/queue/{pid}/cancel")
    assert r.status_code == 422
    assert r.json()["detail"] == f"queued post {pid} is cancelled; cannot cancel it"
    assert c.get(A + "/queue").json() == []
    assert [v["id"] for v in c.get(A + "/queue", params={"all": 1}).json()] == [pid]
    assert c.get(f"{A}/queue/999999").status_code == 404


def test_a_post_that_does_not_fit_is_422_with_every_accounts_numbers(api):
    c = api.client("hana")
    text = "A long one. " + "word " * 70
    r = c.post(A + "/queue", json={"text": text, "in": "2h"})
    assert r.status_code == 422
    detail, previews = r.json()["detail"], {p["account"]: p for p in r.json()["previews"]}
    assert re.fullmatch(r"too long: x-alpha \(x\) \d+/280 characters — shorten it, or --fit "
                        r"to have it shortened", detail), detail
    assert not previews["x-alpha"]["fits"] and previews["x-alpha"]["length"] > 280
    assert previews["m-alpha"]["fits"] and previews["m-alpha"]["limit"] == 500
    assert c.get(A + "/queue").json() == []           # nothing queued
    r = c.post(A + "/queue", json={"text": text, "in": "2h", "fit": True})
    assert r.status_code == 201, r.text
    x = next(p for p in r.json()["previews"] if p["account"] == "x-alpha")
    assert x["fits"] and x["shortened"] and x["length"] <= 280
    pid = r.json()["id"]
    r = c.patch(f"{A}/queue/{pid}", json={"fit": False})
    assert r.status_code == 422 and r.json()["detail"].startswith("too long: x-alpha")
    assert len(r.json()["previews"]) == 3
    assert c.post(f"{A}/queue/{pid}/cancel").status_code == 200


def _cli(api, *args) -> str:
    result = CliRunner().invoke(main, ["--config", api.config, "queue", "add", *args,
                                       "--show", "alpha"])
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize("body, args", [
    ({"text": "hello", "at": "fri 9:00", "in": "1h"},
     ["hello", "--at", "fri 9:00", "--in", "1h"]),
    ({"text": "hello", "in": "1h", "accounts": ["bluesky"]},
     ["hello", "--in", "1h", "--account", "bluesky"]),
    ({"text": "hello", "at": "someday soon"}, ["hello", "--at", "someday soon"]),
    ({"text": "hello", "in": "1h", "until": "2031-01-01"},
     ["hello", "--in", "1h", "--until", "2031-01-01"]),
    ({"text": "  ", "in": "1h"}, ["  ", "--in", "1h"]),
    ({"text": "hi", "in": "1h", "episode": "no-such-guid"},
     ["hi", "--in", "1h", "--episode", "no-such-guid"]),
    ({"text": "x " * 200, "in": "1h"}, ["x " * 200, "--in", "1h"]),
])
def test_bad_input_is_422_with_the_message_the_cli_prints(api, body, args):
    r = api.client("hana").post(A + "/queue", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f"Error: {detail}" in _cli(api, *args)
    assert api.client("hana").get(A + "/queue").json() == []


def test_a_time_in_the_past_is_refused_as_the_cli_refuses_it(api):
    r = api.client("hana").post(A + "/queue", json={"text": "hi", "at": "2020-01-01 9:00"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("'2020-01-01 9:00' is in the past (Wed 2020-01-01")
    assert "Error: '2020-01-01 9:00' is in the past (Wed 2020-01-01" in _cli(
        api, "hi", "--at", "2020-01-01 9:00")


@pytest.mark.parametrize("body, field", [
    ({"text": "hi", "fit": "maybe"}, "fit"),
    ({"text": "hi", "accounts": "m-alpha"}, "accounts"),
    ({"txt": "hi"}, "txt"),
    ({"text": "hi", "cooldown": -1}, "cooldown"),
])
def test_wrong_types_and_unknown_fields_name_the_field(api, body, field):
    r = api.client("hana").post(A + "/queue", json=body)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"{field}: "), r.json()


def test_an_image_as_a_data_url_is_saved_and_checked_like_the_clis(api):
    c = api.client("cole")
    r = c.post(A + "/queue", json={"text": "Look", "in": "3h", "image": _png(),
                                    "alt": "A red rectangle"})
    assert r.status_code == 201, r.text
    path = Path(r.json()["promo"]["image"])
    assert path.parent.name == "uploads" and path.suffix == ".png" and path.is_file()
    assert os.stat(path).st_mode & 0o777 == 0o600
    p = r.json()["previews"][0]
    assert p["image"] == str(path) and p["alt_length"] == 15 and p["alt_limit"] >= 420
    r = c.patch(f"{A}/queue/{r.json()['id']}", json={"alt": "A red box"})
    assert r.status_code == 200 and r.json()["alt"] == "A red box"
    assert c.post(f"{A}/queue/{r.json()['id']}/cancel").status_code == 200
    for body, message in [
        ({"image": _png()}, "--alt is required with --image"),
        ({"image": "data:image/png;base64," + base64.b64encode(b"no png").decode(),
          "alt": "x"}, "is not an image Pillow can read"),
        ({"image": "data:image/tiff;base64,AAAA", "alt": "x"}, "image/tiff is not accepted"),
        ({"image": "/etc/passwd", "alt": "x"}, "expected a data: URL"),
        ({"alt": "x"}, "--alt describes an image: give --image too"),
        ({"image": "data:image/png;base64," + "A" * (14 * 1024 * 1024), "alt": "x"},
         "image: larger than 10 MB"),
    ]:
        r = c.post(A + "/queue", json={"text": "Look", "in": "3h", **body})
        assert r.status_code == 422 and message in r.json()["detail"], (body, r.text)
    assert c.get(A + "/queue").json() == []


def test_preview_of_a_text_and_of_an_episode(api):
    c = api.client("cole")
    r = c.post(A + "/preview", json={"text": "Hi #AlphaShow", "accounts": ["x-alpha"]})
    assert r.status_code == 200
    [p] = r.json()["previews"]
    assert p["account"] == "x-alpha" and p["text"] == "Hi #AlphaShow" and p["fits"]
    long = c.post(A + "/preview", json={"text": "word " * 100, "accounts": None,
                                         "episode": None, "image": ""}).json()["previews"]
    assert {p["account"]: p["fits"] for p in long} == {"m-alpha": True, "d-alpha": True,
                                                       "x-alpha": False}
    eid = api.ids["announced"]
    ann = c.post(A + "/preview", json={"episode": eid}).json()["previews"]
    assert len(ann) == 3 and all(p["episode"].startswith("Episode 3") for p in ann)
    assert all(p["link"].endswith("/1000003") and PREVIEW_KEYS <= set(p) for p in ann)
    latest = c.post(A + "/preview", json={}).json()["previews"]
    assert latest[0]["episode"].startswith("Episode 6")
    r = c.post(A + "/preview", json={"episode": "latest", "accounts": ["nope"]})
    assert r.status_code == 422 and "unknown account 'nope'" in r.json()["detail"]


def test_another_shows_episode_cannot_be_named_by_its_id(api):
    """Defect: an episode id resolved across shows (Store.get_episode was not scoped), so a
    user of one show could preview, queue or share another show's episode."""
    other = api.ids["beta_episode"]
    c = api.client("hana")
    for path, body in [(A + "/preview", {"episode": other}),
                       (A + "/queue", {"text": "{{ title }}", "in": "1h", "episode": other})]:
        r = c.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(f"no episode with GUID or id '{other}'")
    assert c.get(f"{A}/episodes/{other}").status_code == 404


def test_community_approve_and_reject(api):
    c = api.client("cole")                             # a co-host may approve
    waiting = c.get(A + "/community").json()
    assert {p["id"] for p in waiting} == {api.ids["approve"], api.ids["reject"]}
    assert all(p["status"] == "proposed" and p["url"] for p in waiting)
    r = c.post(f"{A}/community/{api.ids['approve']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = c.post(f"{A}/community/{api.ids['reject']}/reject")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = c.post(f"{A}/community/{api.ids['reject']}/approve")
    assert r.status_code == 422 and str(api.ids["reject"]) in r.json()["detail"]
    assert c.get(A + "/community").json() == []
    assert len(c.get(A + "/community", params={"all": 1}).json()) == 2
    assert c.post(f"{A}/community/999999/approve").status_code == 404
