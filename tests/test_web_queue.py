"""The queue pages over real HTTP (bot/web/pages_queue.py), on SQLite and PostgreSQL: a host
queues a promo through the form (CSRF required), sees it in the list and on the calendar at
its local time (the show's time zone, moved by quiet hours as the dispatcher will), edits its
text and time, pauses, resumes and cancels it; an over-the-limit text re-renders the form with
each account's counts (the page without JavaScript); the live preview's calls to the JSON
API (POST /api/v1/shows/{slug}/preview, what the page draws from it); a co-host may do all of
it; another show's pages answer 404."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from tests.webapp import WebApp

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)      # Monday 09:00 in Berlin (CET, UTC+1)


def _config(tmp_path) -> str:
    from tests.test_web_auth import BUNDLED
    parts = []
    for slug in ("alpha", "beta"):
        (tmp_path / f"{slug}.xml").write_text((BUNDLED / "sample-feed.xml").read_text())
        parts.append(f'[[shows]]\nshow = "Show {slug}"\nslug = "{slug}"\nfeed = "{slug}.xml"\n'
                     f'timezone = "Europe/Berlin"\n'
                     f'[shows.promos]\nquiet_hours = "22:00-07:00"\nmin_gap = "30m"\n'
                     f'[[shows.accounts]]\nplatform = "mastodon"\nname = "m-{slug}"\n'
                     f'instance = "https://social.example"\ndry_run = true\n'
                     f'max_characters = 500\n'
                     f'[[shows.accounts]]\nplatform = "x"\nname = "x-{slug}"\ndry_run = true\n')
    path = tmp_path / "crier.toml"
    path.write_text("\n".join(parts))
    return str(path)


@pytest.fixture
def web(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    with WebApp(db_url, _config(tmp_path), clock=lambda: NOW) as w:
        w.add_user("host", role="host", shows=["alpha"])
        w.add_user("co", role="cohost", shows=["alpha"])
        yield w


def _promos(web, slug="alpha"):
    with web.store.tx() as c:
        import sqlalchemy as sa

        from bot.store import promos, shows
        sid = c.execute(sa.select(shows.c.id).where(shows.c.slug == slug)).scalar()
        return [dict(r) for r in c.execute(sa.select(promos).where(
            promos.c.show_id == sid).order_by(promos.c.id)).mappings()]


def _form(csrf, **fields):
    data = {"csrf_token": csrf, "text": "", "at": "", "every": "", "until": "", "alt": ""}
    data.update(fields)
    return data


def test_queue_a_promo_through_the_form_and_see_it_everywhere(web):
    c, csrf = web.login("host")
    page = c.get("/shows/alpha/queue/new")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text and "m-alpha" in page.text and "x-alpha" in page.text
    data = _form(csrf, text="Listen to us! #podcast https://example.com/ep1",
                 at="2026-12-09 18:30", accounts=["m-alpha", "x-alpha"])
    r = c.post("/shows/alpha/queue/new", data={k: v for k, v in data.items()
                                                if k != "csrf_token"})
    assert r.status_code == 403 and _promos(web) == []
    r = c.post("/shows/alpha/queue/new", data=data)
    assert r.status_code == 303, r.text
    [row] = _promos(web)
    assert r.headers["location"] == f"/shows/alpha/queue?did=queued&id={row['id']}"
    assert row["text"] == data["text"] and row["status"] == "active"
    # 18:30 in Berlin (CET) is 17:30 UTC
    assert row["next_at"].replace(tzinfo=UTC) == datetime(2026, 12, 9, 17, 30, tzinfo=UTC)
    listing = c.get(r.headers["location"])
    assert f"Queued #{row['id']}." in listing.text
    assert "Wed 09 Dec 2026, 18:30 CET" in listing.text and "Listen to us!" in listing.text
    week = c.get("/shows/alpha/calendar?view=week&date=2026-12-09")
    assert week.status_code == 200
    cell = _day_cell(week.text, "2026-12-09")
    assert cell.count(">18:30</time>") == 2 and "m-alpha" in cell and "x-alpha" in cell
    assert "Listen to us!" not in _day_cell(week.text, "2026-12-08")
    month = c.get("/shows/alpha/calendar?view=month&date=2026-12-01")
    assert "Listen to us!" in _day_cell(month.text, "2026-12-09")
    assert "December 2026" in month.text
    other_week = c.get("/shows/alpha/calendar?view=week&date=2026-12-16")
    assert "Listen to us!" not in other_week.text


def _day_cell(html: str, iso: str) -> str:
    m = re.search(rf'data-date="{iso}".*?</ul>', html, re.S)
    assert m, f"no day {iso} on the page"
    return m.group(0)


def test_the_calendar_shows_the_time_it_really_goes_out(web):
    """Quiet hours 22:00-07:00 (Berlin): a post due at 23:00 goes out at 07:00 next day."""
    c, csrf = web.login("host")
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="Late night thoughts",
                                                    at="2026-12-09 23:00",
                                                    accounts=["m-alpha"]))
    assert r.status_code == 303
    week = c.get("/shows/alpha/calendar?date=2026-12-10")
    cell = _day_cell(week.text, "2026-12-10")
    assert "07:00" in cell and "Late night thoughts" in cell and "moved from 23:00" in cell
    assert "Late night thoughts" not in _day_cell(week.text, "2026-12-09")
    listing = c.get("/shows/alpha/queue")
    assert "Thu 10 Dec 2026, 07:00 CET" in listing.text


def test_a_recurring_post_shows_every_occurrence_in_the_month(web):
    c, csrf = web.login("host")
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="Every Friday {{ show }}",
                                                    every="fri 17:00", accounts=["m-alpha"]))
    assert r.status_code == 303, r.text
    month = c.get("/shows/alpha/calendar?view=month&date=2026-12-15")
    for day in ("2026-12-11", "2026-12-18", "2026-12-25"):
        assert "17:00" in _day_cell(month.text, day), day
    assert "Every Friday" not in _day_cell(month.text, "2026-12-10")


def test_edit_text_and_time_then_pause_resume_cancel(web):
    c, csrf = web.login("host")
    c.post("/shows/alpha/queue/new", data=_form(csrf, text="First words", at="2026-12-09 18:30"))
    [row] = _promos(web)
    pid = row["id"]
    form = c.get(f"/shows/alpha/queue/{pid}/edit")
    assert form.status_code == 200 and "First words" in form.text
    assert 'value="2026-12-09 18:30"' in form.text
    r = c.post(f"/shows/alpha/queue/{pid}/edit",
               data=_form(csrf, text="Better words", at="2026-12-10 12:15",
                          accounts=["m-alpha", "x-alpha"]))
    assert r.status_code == 303, r.text
    [row] = _promos(web)
    assert row["text"] == "Better words"
    assert row["next_at"].replace(tzinfo=UTC) == datetime(2026, 12, 10, 11, 15, tzinfo=UTC)
    assert "12:15" in _day_cell(c.get("/shows/alpha/calendar?date=2026-12-10").text,
                                "2026-12-10")
    assert c.post(f"/shows/alpha/queue/{pid}/pause", data={}).status_code == 403
    r = c.post(f"/shows/alpha/queue/{pid}/pause", data={"csrf_token": csrf})
    assert r.status_code == 303 and _promos(web)[0]["status"] == "paused"
    listing = c.get(r.headers["location"])
    assert f"Paused #{pid}." in listing.text and f"Resume #{pid}" in listing.text
    paused = _day_cell(c.get("/shows/alpha/calendar?date=2026-12-10").text, "2026-12-10")
    assert "Better words" in paused and "paused" in paused
    r = c.post(f"/shows/alpha/queue/{pid}/pause", data={"csrf_token": csrf})
    assert r.status_code == 422 and f"queued post {pid} is paused; cannot pause it" in r.text
    r = c.post(f"/shows/alpha/queue/{pid}/resume", data={"csrf_token": csrf})
    assert r.status_code == 303 and _promos(web)[0]["status"] == "active"
    r = c.post(f"/shows/alpha/queue/{pid}/cancel", data={"csrf_token": csrf})
    assert r.status_code == 303 and _promos(web)[0]["status"] == "cancelled"
    assert "Better words" not in c.get("/shows/alpha/queue").text
    assert "Better words" in c.get("/shows/alpha/queue?all=1").text
    assert "Better words" not in c.get("/shows/alpha/calendar?date=2026-12-10").text


def test_over_the_limit_re_renders_the_form_with_the_counts(web):
    c, csrf = web.login("host")
    text = "word " * 70 + "end"        # 353 characters: fits Mastodon's 500, not X's 280
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text=text, at="2026-12-09 18:30"))
    assert r.status_code == 422 and _promos(web) == []
    assert "too long: x-alpha (x) 353/280 characters" in r.text
    assert "353/500" in r.text and "73 over the limit on X" in r.text
    assert text in r.text                         # what the host typed is kept
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text=text, at="2026-12-09 18:30",
                                                    fit="1"))
    assert r.status_code == 303
    [row] = _promos(web)
    assert row["fit"] is True or row["fit"] == 1


def test_bad_input_says_what_as_the_cli_does(web):
    c, csrf = web.login("host")
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="hi", at="2026-12-01 10:00"))
    assert r.status_code == 422 and "is in the past" in r.text
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="hi", at="someday"))
    assert r.status_code == 422 and "someday" in r.text
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="  "))
    assert r.status_code == 422 and "the post&#39;s text is empty" in r.text
    assert _promos(web) == []
    assert c.get("/shows/alpha/calendar?date=tomorrow").status_code == 422
    assert c.get("/shows/alpha/calendar?view=year").status_code == 422
    assert c.get("/shows/alpha/queue/999/edit").status_code == 404


def test_the_live_preview_is_the_json_api(web):
    """The form's live preview (static/queue.js) calls the API a script would: POST
    /api/v1/shows/{slug}/preview with the session's cookie and CSRF header. Its PREVIEWs carry
    what the page draws: the network's name, the show's name, the text cut into links,
    mentions and hashtags, and the counts, also over the limit (fits false)."""
    c, csrf = web.login("host")
    form = c.get("/shows/alpha/queue/new").text
    assert 'data-api-preview="/api/v1/shows/alpha/preview"' in form
    assert "/queue/preview" not in form and "Type the post's text" in form
    url, h = "/api/v1/shows/alpha/preview", {"X-CSRF-Token": csrf}
    text = "Hello @ana@social.example #crier https://example.com/x"
    assert c.post(url, json={"text": text}).status_code == 403      # no CSRF header
    assert web.client().post(url, json={"text": text}).status_code == 401
    r = c.post(url, json={"text": text}, headers=h)
    assert r.status_code == 200, r.text
    m, x = r.json()["previews"]
    assert (m["account"], m["network"], x["account"], x["network"]) == (
        "m-alpha", "Mastodon", "x-alpha", "X")
    assert m["display_name"] == x["display_name"] == "Show alpha"
    assert m["segments"] == [
        {"kind": "text", "text": "Hello ", "href": None},
        {"kind": "mention", "text": "@ana@social.example", "href": None},
        {"kind": "text", "text": " ", "href": None},
        {"kind": "hashtag", "text": "#crier", "href": None},
        {"kind": "text", "text": " ", "href": None},
        {"kind": "link", "text": "example.com/x", "href": "https://example.com/x"}]
    assert m["length"] == len("Hello @ana #crier ") + 23 and m["limit"] == 500
    assert x["length"] == len("Hello @ana@social.example #crier ") + 23 and x["limit"] == 280
    assert m["hashtags"] == ["crier"] and m["mentions"] == ["@ana@social.example"]
    assert m["fits"] and x["fits"]
    long = {p["account"]: p for p in c.post(url, json={"text": "x" * 300},
                                            headers=h).json()["previews"]}
    assert (long["x-alpha"]["length"], long["x-alpha"]["limit"]) == (300, 280)
    assert not long["x-alpha"]["fits"] and long["m-alpha"]["fits"]
    fit = c.post(url, json={"text": "One sentence here. " * 20, "fit": True}, headers=h)
    fx = next(p for p in fit.json()["previews"] if p["account"] == "x-alpha")
    assert fx["shortened"] and fx["fits"] and "sentences dropped" in " ".join(fx["trimmed"])
    r = c.post(url, json={"text": "hi", "episode": "latest"}, headers=h)   # none polled yet
    assert r.status_code == 422 and "no episode with GUID or id 'latest'" in r.json()["detail"]
    r = c.post(url, json={"text": "hi", "accounts": ["x-alpha"]}, headers=h)
    assert r.status_code == 200, r.text
    [only] = r.json()["previews"]
    assert only["account"] == "x-alpha" and only["text"] == "hi"
    assert _promos(web) == []
    # a long link is shown cut as the networks cut it; the href keeps all of it
    long_url = "https://example.com/" + "very-long-path/" * 4
    [seg] = [s for s in c.post(url, json={"text": long_url, "accounts": ["m-alpha"]},
                               headers=h).json()["previews"][0]["segments"]
             if s["kind"] == "link"]
    assert seg["href"] == long_url and seg["text"] == long_url[8:38] + "…"


def test_the_page_only_preview_route_is_gone(web):
    c, csrf = web.login("host")
    r = c.post("/shows/alpha/queue/preview", data=_form(csrf, text="hi"))
    assert r.status_code in (404, 405) and _promos(web) == []


def test_the_preview_fields_are_in_the_openapi_schema(web):
    c, _ = web.login("host")
    schemas = c.get("/api/v1/openapi.json").json()["components"]["schemas"]
    fields = schemas["PreviewOut"]["properties"]
    assert {"network", "display_name", "segments"} <= set(fields)
    assert set(schemas["Segment"]["properties"]) == {"kind", "text", "href"}


def test_cohost_may_queue_and_steer(web):
    c, csrf = web.login("co")
    r = c.post("/shows/alpha/queue/new", data=_form(csrf, text="From the co-host",
                                                    at="2026-12-09 10:00"))
    assert r.status_code == 303
    pid = _promos(web)[0]["id"]
    assert c.post(f"/shows/alpha/queue/{pid}/edit", data=_form(
        csrf, text="Edited by the co-host", at="2026-12-09 10:00")).status_code == 303
    assert c.post(f"/shows/alpha/queue/{pid}/cancel",
                  data={"csrf_token": csrf}).status_code == 303
    assert _promos(web)[0]["status"] == "cancelled"


def test_another_show_is_404(web):
    c, csrf = web.login("host")
    for path in ("/shows/beta/queue", "/shows/beta/queue/new", "/shows/beta/calendar",
                 "/shows/nope/calendar"):
        assert c.get(path).status_code == 404, path
    r = c.post("/shows/beta/queue/new", data=_form(csrf, text="sneaky", at="2026-12-09 10:00"))
    assert r.status_code == 404 and _promos(web, "beta") == []
    # a promo of beta (queued by someone who may) is not reachable through alpha either
    web.add_user("boss", role="host")
    b, bcsrf = web.login("boss")
    assert b.post("/shows/beta/queue/new", data=_form(bcsrf, text="beta's own",
                                                     at="2026-12-09 10:00")).status_code == 303
    pid = _promos(web, "beta")[0]["id"]
    assert c.get(f"/shows/alpha/queue/{pid}/edit").status_code == 404
    r = c.post(f"/shows/alpha/queue/{pid}/cancel", data={"csrf_token": csrf})
    assert r.status_code == 422 and f"no queued post {pid} in show alpha" in r.text
    assert _promos(web, "beta")[0]["status"] == "active"


def test_pages_need_a_session(web):
    c = web.client()
    for path in ("/shows/alpha/queue", "/shows/alpha/calendar", "/shows/alpha/queue/new"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert c.post("/api/v1/shows/alpha/preview", json={"text": "x"}).status_code == 401


def test_move_reschedules_a_one_off_post(web):
    """The calendar's drag and drop, as its script does it: the JSON API's PATCH with the
    session cookie and the CSRF header. The post keeps its accounts, moves to the new time."""
    c, csrf = web.login("host")
    c.post("/shows/alpha/queue/new", data=_form(csrf, text="Moving day", at="2026-12-09 18:30"))
    pid = _promos(web)[0]["id"]
    url = f"/api/v1/shows/alpha/queue/{pid}"
    assert c.patch(url, json={"at": "2026-12-11 18:30"}).status_code == 403
    r = c.patch(url, json={"at": "2026-12-11 18:30"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert _promos(web)[0]["next_at"].replace(tzinfo=UTC) == datetime(2026, 12, 11, 17, 30,
                                                                      tzinfo=UTC)
    month = c.get("/shows/alpha/calendar?view=month&date=2026-12-11")
    assert "Moving day" in _day_cell(month.text, "2026-12-11")
    assert "Moving day" not in _day_cell(month.text, "2026-12-09")
    c.post("/shows/alpha/queue/new", data=_form(csrf, text="Weekly", every="fri 17:00"))
    weekly = _promos(web)[1]["id"]
    r = c.patch(f"/api/v1/shows/alpha/queue/{weekly}", json={"at": "2026-12-12 17:00"},
                headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and "this post repeats" in r.json()["detail"]


def _png(tmp_path):
    from PIL import Image
    path = tmp_path / "cover.png"
    Image.new("RGB", (40, 30), (200, 30, 90)).save(path)
    return path.read_bytes()


def test_an_image_with_its_alt_text(web, tmp_path):
    c, csrf = web.login("host")
    png = _png(tmp_path)
    files = {"image": ("cover.png", png, "image/png")}
    r = c.post("/shows/alpha/queue/new", files=files,
               data=_form(csrf, text="With a picture", at="2026-12-09 18:30"))
    assert r.status_code == 422 and "--alt is required with --image" in r.text
    assert re.search(r'name="image_name" value="[0-9a-f]{64}\.png"', r.text)
    name = re.search(r'name="image_name" value="([0-9a-f]{64}\.png)"', r.text).group(1)
    # the live preview fetches the kept upload and sends it to the API as a data: URL
    assert f'data-image-url="/shows/alpha/queue/upload/{name}"' in r.text
    kept = c.get(f"/shows/alpha/queue/upload/{name}")
    assert kept.status_code == 200 and kept.content == png
    for bad in ("..%2F..%2Fcrier.toml", "a" * 64 + ".png", "crier.db"):
        assert c.get(f"/shows/alpha/queue/upload/{bad}").status_code == 404, bad
    assert c.get(f"/shows/beta/queue/upload/{name}").status_code == 404   # not beta's host
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    r = c.post("/api/v1/shows/alpha/preview", headers={"X-CSRF-Token": csrf},
               json={"text": "With a picture", "image": data_url, "alt": "A red card"})
    m = r.json()["previews"][0]
    assert (m["alt"], m["alt_length"], m["alt_limit"]) == ("A red card", 10, 1500) and m["image"]
    r = c.post("/api/v1/shows/alpha/preview", headers={"X-CSRF-Token": csrf},
               json={"text": "With a picture", "image": data_url})
    assert r.status_code == 422 and "--alt is required with --image" in r.json()["detail"]
    r = c.post("/shows/alpha/queue/new", files=files,
               data=_form(csrf, text="With a picture", at="2026-12-09 18:30", alt="A red card"))
    assert r.status_code == 303, r.text
    row = _promos(web)[0]
    assert row["alt"] == "A red card" and "/uploads/" in row["image_path"]
    got = c.get(f"/shows/alpha/queue/{row['id']}/image")
    assert got.status_code == 200 and got.content == png
    r = c.post("/shows/alpha/queue/new", files={"image": ("x.txt", b"hello", "text/plain")},
               data=_form(csrf, text="Not an image", alt="nothing"))
    assert r.status_code == 422 and "PNG, JPEG, GIF or WebP only" in r.text
