"""The `pds` fixture is Bluesky's real PDS: accounts registered with the PLC stand-in, records
validated against the lexicon, blobs stored, sessions and rate limits as the server does them.
The answers checked here are the ones tests/pds.py's docstring promises the Bluesky adapter."""

from __future__ import annotations

import io
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from tests.fakes.plc_server import PLCServer, cid_for
from tests.pds import LocalPDS, PDSUnavailable, XRPCError, tid

POST = "app.bsky.feed.post"
NOW = "2026-12-06T20:00:00.000Z"


def _post(text: str, **extra) -> dict:
    return {"$type": POST, "text": text, "createdAt": NOW, **extra}


def _create(pds, acct, record: dict, rkey: str | None = None, collection: str = POST):
    body = {"repo": acct.did, "collection": collection, "record": record}
    if rkey:
        body["rkey"] = rkey
    return pds.xrpc("POST", "com.atproto.repo.createRecord", token=acct.access_jwt, json=body)


@pytest.fixture(scope="module")
def show(pds):
    return pds.create_account("tbshow.test")


def _png(w: int = 64, h: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_pds_starts_in_seconds_and_is_healthy(pds):
    assert pds.start_seconds < 30, f"the PDS took {pds.start_seconds:.1f} s to start"
    assert pds.xrpc("GET", "_health").status_code == 200
    desc = pds.call("GET", "com.atproto.server.describeServer")
    assert desc["availableUserDomains"] == [".test"]
    assert desc["did"] == "did:web:localhost"


def test_accounts_are_did_plc_registered_with_the_directory_stand_in(pds):
    a = pds.create_account("ann.test")
    b = pds.create_account("bob.test")
    assert a.did != b.did and a.did.startswith("did:plc:") and b.did.startswith("did:plc:")
    assert (a.handle, b.handle) == ("ann.test", "bob.test")
    for acct in (a, b):
        doc = pds.plc.document(acct.did)
        assert doc["alsoKnownAs"] == [f"at://{acct.handle}"]
        assert doc["service"][0]["serviceEndpoint"] == pds.public_url
        # the PDS resolved the DID through the stand-in and serves the same document
        repo = pds.call("GET", "com.atproto.repo.describeRepo", params={"repo": acct.handle})
        assert repo["did"] == acct.did and repo["didDoc"] == doc
        assert pds.call("GET", "com.atproto.identity.resolveHandle",
                        params={"handle": acct.handle}) == {"did": acct.did}
    # the app password logs in (and is not the account password)
    assert a.app_password != a.password
    assert pds.login(a.handle, a.app_password)["did"] == a.did


def test_post_with_a_tid_rkey_is_valid_and_a_second_create_is_refused(pds, show):
    rkey = tid()
    first = _create(pds, show, _post("Episode 1 is out"), rkey)
    assert first.status_code == 200, first.text
    assert first.json()["validationStatus"] == "valid"
    assert first.json()["uri"] == f"at://{show.did}/{POST}/{rkey}"
    again = _create(pds, show, _post("Episode 1 is out, again"), rkey)
    # what the PDS answers for an existing rkey: a 500, not a 4xx (see tests/pds.py)
    assert (again.status_code, again.json()["error"]) == (500, "InternalServerError")
    stored = pds.get_record(show.did, POST, rkey)
    assert stored["value"]["text"] == "Episode 1 is out"
    assert stored["cid"] == first.json()["cid"]
    # putRecord of the identical value is idempotent: same cid, no second record
    put = pds.xrpc("POST", "com.atproto.repo.putRecord", token=show.access_jwt,
                   json={"repo": show.did, "collection": POST, "rkey": rkey,
                         "record": _post("Episode 1 is out")})
    assert put.status_code == 200 and put.json()["cid"] == first.json()["cid"]
    assert "commit" not in put.json()
    assert [r["uri"] for r in pds.list_records(show.did, POST)].count(first.json()["uri"]) == 1
    batch = pds.xrpc("POST", "com.atproto.repo.applyWrites", token=show.access_jwt, json={
        "repo": show.did, "writes": [{"$type": "com.atproto.repo.applyWrites#create",
                                      "collection": POST, "rkey": rkey, "value": _post("b")}]})
    assert (batch.status_code, batch.json()["error"]) == (500, "InternalServerError")
    assert first.headers["ratelimit-policy"] == "3000;w=300"
    assert pds.get_record(show.did, POST, tid()) is None


def test_lexicon_validation_refuses_what_bluesky_refuses(pds, show):
    before = len(pds.list_records(show.did, POST))
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"   # 1 grapheme, 25 B
    cases = {
        "301 graphemes": _post("é" * 301),
        "3001 bytes": _post(family * 120 + "a"),
        "a link facet without a URI": _post("hello", facets=[{
            "index": {"byteStart": 0, "byteEnd": 5},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "not a uri"}]}]),
        "no createdAt": {"$type": POST, "text": "hi"},
    }
    for name, record in cases.items():
        resp = _create(pds, show, record)
        assert resp.status_code == 400, (name, resp.text)
        assert resp.json()["error"] == "InvalidRequest", name
        assert resp.json()["message"].startswith(f"Invalid {POST} record"), name
    assert "grapheme too big (maximum 300, got 301)" in _create(
        pds, show, _post("é" * 301)).json()["message"]
    assert len(pds.list_records(show.did, POST)) == before
    # the limits themselves are accepted: 300 graphemes, and 3000 bytes in 120 graphemes
    for text in ("é" * 300, family * 120):
        resp = _create(pds, show, _post(text))
        assert resp.json()["validationStatus"] == "valid", resp.text
    bad_key = _create(pds, show, _post("x"), rkey="not a key")
    assert (bad_key.status_code, bad_key.json()["error"]) == (400, "InvalidRequest")


def test_blob_upload_embed_and_read_back(pds, show):
    png = _png()
    up = pds.xrpc("POST", "com.atproto.repo.uploadBlob", token=show.access_jwt, content=png,
                  headers={"Content-Type": "image/png"})
    assert up.status_code == 200, up.text
    blob = up.json()["blob"]
    assert (blob["mimeType"], blob["size"]) == ("image/png", len(png))
    assert up.headers["ratelimit-policy"] == "1000;w=86400"
    with pytest.raises(XRPCError) as unreferenced:
        pds.get_blob(show.did, blob["ref"]["$link"])
    assert unreferenced.value.status == 400
    card = {"$type": "app.bsky.embed.external",
            "external": {"uri": "https://example.com/ep/1", "title": "Episode 1",
                         "description": "The first one", "thumb": blob}}
    made = _create(pds, show, _post("card", embed=card), tid())
    assert made.json()["validationStatus"] == "valid", made.text
    rkey = made.json()["uri"].rsplit("/", 1)[1]
    stored = pds.get_record(show.did, POST, rkey)["value"]
    assert stored["embed"]["external"]["thumb"]["ref"]["$link"] == blob["ref"]["$link"]
    assert pds.get_blob(show.did, blob["ref"]["$link"]) == png
    images = {"$type": "app.bsky.embed.images",
              "images": [{"image": blob, "alt": "Cover art: a red square",
                          "aspectRatio": {"width": 64, "height": 32}}]}
    made = _create(pds, show, _post("art", embed=images))
    rkey = made.json()["uri"].rsplit("/", 1)[1]
    assert pds.get_record(show.did, POST, rkey)["value"]["embed"]["images"][0]["alt"] == \
        "Cover art: a red square"
    # an embed pointing at a blob nobody uploaded is refused
    ghost = dict(blob, ref={"$link": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"})
    resp = _create(pds, show, _post("ghost", embed=dict(images, images=[
        {"image": ghost, "alt": "", "aspectRatio": {"width": 1, "height": 1}}])))
    assert (resp.status_code, resp.json()["error"]) == (400, "BlobNotFound"), resp.text
    corrupt = pds.xrpc("POST", "com.atproto.repo.uploadBlob", token=show.access_jwt,
                       content=png[:40], headers={"Content-Type": "image/png"})
    assert (corrupt.status_code, corrupt.json()["error"]) == (500, "InternalServerError")


def test_sessions_refresh_expiry_and_rate_limit_headers(pds):
    acct = pds.create_account("sess.test")
    login = pds.xrpc("POST", "com.atproto.server.createSession",
                     json={"identifier": acct.handle, "password": acct.app_password})
    assert login.status_code == 200
    h = login.headers
    assert (h["ratelimit-limit"], h["ratelimit-policy"]) == ("30", "30;w=300")
    assert int(h["ratelimit-remaining"]) == 29
    assert time.time() < int(h["ratelimit-reset"]) <= time.time() + 301
    session = login.json()
    assert session["did"] == acct.did and session["handle"] == acct.handle

    fresh = pds.call("POST", "com.atproto.server.refreshSession", token=session["refreshJwt"])
    assert fresh["refreshJwt"] != session["refreshJwt"]   # a new refresh token (new jti)
    # the used refresh token stays good for a grace period (2 h): a retry after a lost answer
    again = pds.xrpc("POST", "com.atproto.server.refreshSession", token=session["refreshJwt"])
    assert again.status_code == 200
    me = pds.call("GET", "com.atproto.server.getSession", token=fresh["accessJwt"])
    assert me["did"] == acct.did

    for token, nsid, method in ((pds.expired(fresh["accessJwt"]),
                                 "com.atproto.server.getSession", "GET"),
                                (pds.expired(fresh["refreshJwt"]),
                                 "com.atproto.server.refreshSession", "POST")):
        resp = pds.xrpc(method, nsid, token=token)
        assert (resp.status_code, resp.json()["error"]) == (400, "ExpiredToken"), nsid
        assert "ratelimit-limit" not in resp.headers
    garbled = pds.xrpc("GET", "com.atproto.server.getSession",
                       token=fresh["accessJwt"][:-4] + "AAAA")
    assert (garbled.status_code, garbled.json()["error"]) == (400, "InvalidToken")
    wrong = pds.xrpc("POST", "com.atproto.server.createSession",
                     json={"identifier": acct.handle, "password": "not-it"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "AuthenticationRequired")


def test_create_session_is_limited_to_30_per_5_minutes(pds):
    acct = pds.create_account("limit.test")
    def login():   # the account password: one scrypt a login (an app password costs two)
        return pds.xrpc("POST", "com.atproto.server.createSession",
                        json={"identifier": acct.handle, "password": acct.password})

    # each login takes at least 350 ms (the PDS pads it against timing attacks): 10 at a time
    with ThreadPoolExecutor(10) as pool:
        first = [f.result().status_code for f in [pool.submit(login) for _ in range(30)]]
    assert first == [200] * 30
    resp = login()
    assert resp.status_code == 429
    assert resp.json()["error"] == "RateLimitExceeded"
    assert resp.headers["ratelimit-remaining"] == "0"
    assert int(resp.headers["ratelimit-reset"]) > time.time()
    # the key is the identifier as sent: the DID is a separate bucket
    assert pds.login(acct.did, acct.app_password)["did"] == acct.did
    # other calls of the account are not limited by it
    assert pds.xrpc("GET", "com.atproto.server.getSession",
                    token=acct.access_jwt).status_code == 200


def test_no_app_view_but_handles_resolve(pds, show):
    prof = pds.xrpc("GET", "app.bsky.actor.getProfile", token=show.access_jwt,
                    params={"actor": show.did})
    assert (prof.status_code, prof.json()["error"]) == (400, "InvalidRequest")
    assert "No service configured" in prof.json()["message"]
    unknown = pds.xrpc("GET", "com.atproto.identity.resolveHandle",
                       params={"handle": "nobody-here.test"})
    assert (unknown.status_code, unknown.json()["message"]) == (400, "Unable to resolve handle")


def test_takedown_refuses_writes(pds):
    acct = pds.create_account("gone.test")
    pds.takedown(acct.did)
    resp = _create(pds, acct, _post("still here?"))
    assert (resp.status_code, resp.json()["error"]) == (401, "AccountTakedown")


def test_plc_stand_in_keeps_the_log_honest(pds):
    acct = pds.create_account("ledger.test")
    genesis = pds.plc.operations[acct.did][0]
    forged = dict(genesis, alsoKnownAs=["at://someone-else.test"])
    plc = pds.plc
    assert plc._answer("POST", f"/{acct.did}", _json(forged))[0] == 400   # hash mismatch
    # a handle change goes through the PDS as a signed update naming the genesis as prev
    pds.call("POST", "com.atproto.identity.updateHandle", token=acct.access_jwt,
             json={"handle": "ledger2.test"})
    log = plc.operations[acct.did]
    assert len(log) == 2 and log[1]["prev"] == cid_for(genesis)
    assert plc.document(acct.did)["alsoKnownAs"] == ["at://ledger2.test"]
    replay = plc._answer("POST", f"/{acct.did}", _json(log[1]))
    assert replay[0] == 400 and "prev" in replay[1]["message"]
    tampered = dict(log[1], prev=cid_for(log[1]), alsoKnownAs=["at://x.test"])
    assert plc._answer("POST", f"/{acct.did}", _json(tampered)) == (
        400, {"message": "Invalid signature on op"})
    assert len(plc.operations[acct.did]) == 2


def test_a_missing_install_is_installed_and_a_failed_one_says_why(tmp_path, monkeypatch):
    """Not installed: the fixture runs install.sh (a first `python -m pytest` needs no other
    step); when that fails, its own words, never a skip."""
    monkeypatch.setenv("CRIER_PDS_DIR", str(tmp_path / "nothing"))
    script = tmp_path / "install.sh"
    script.write_text(f"echo ran >> {tmp_path / 'ran'}\n"
                      "echo 'install.sh: npm not found (apt-get install nodejs npm)' >&2; exit 1\n")
    monkeypatch.setattr("tests.pds.INSTALL_SH", script)
    with pytest.raises(PDSUnavailable, match=r"install\.sh failed \(1\): .*npm not found"):
        LocalPDS().start()
    assert (tmp_path / "ran").read_text() == "ran\n"


def test_a_pds_that_dies_at_start_fails_with_its_own_words(tmp_path, monkeypatch):
    script = tmp_path / "run.js"
    script.write_text("console.error('cannot open the database: disk full'); process.exit(3)\n")
    monkeypatch.setattr("tests.pds.RUN_JS", script)
    server = LocalPDS()
    with pytest.raises(PDSUnavailable, match=r"(?s)exit code 3.*disk full"):
        server.start()
    assert server.plc is None and server.proc.poll() == 3
    shutil.rmtree(server.tmp)


def test_plc_stand_in_alone_knows_no_dids():
    with PLCServer() as plc:
        import httpx
        assert httpx.get(plc.url + "/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").status_code == 404
        assert httpx.get(plc.url + "/_health").status_code == 200


def _json(obj) -> bytes:
    import json
    return json.dumps(obj).encode()
