"""The REST API over a real Milvus Lite library and the offline model (FastAPI's TestClient)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from server_support import TOKEN, jpeg_bytes, server_config, wait_job

from assetrag.server import ServerConfig
from assetrag.server.security import signed_url

# -- health, stats, docs, the page ------------------------------------------------------------------


def test_health_stats_facets(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["exists"] and health["auth"] is False
    stats = client.get("/api/stats").json()
    assert stats["count"] == 5 and stats["collections"] == {"animals": 1, "people": 2, "things": 2}
    facets = client.get("/api/facets").json()
    assert {c["name"]: c["count"] for c in facets["collections"]} == {"animals": 1, "people": 2, "things": 2}
    assert {"name": "space", "count": 1} in facets["tags"]


def test_openapi_docs_and_page(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/search", "/api/assets/{asset_id}/thumb", "/api/ingest", "/api/generate/plan", "/api/jobs"):
        assert p in paths
    page = client.get("/")
    assert page.status_code == 200 and "<title>assetrag</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    js = client.get("/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


def test_openapi_refs_all_resolve(client):
    """Every `$ref` in /openapi.json names a schema it defines (the generate routes document their JSON body
    themselves: a dangling `#/components/schemas/PlanRequest` broke /docs for them)."""
    spec = client.get("/openapi.json").json()
    defined = set(spec["components"]["schemas"])
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs and refs <= defined, sorted(refs - defined)
    assert "#/$defs/" not in json.dumps(spec)  # an inlined model's own definitions would dangle too
    body = spec["paths"]["/api/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
    assert {"brief", "refs", "timeout_s"} <= set(schema["properties"])


# -- search -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "expected"), [("a cat", "cat.jpg"), ("a rocket", "rocket.jpg")])
def test_text_search_ranks_the_right_photo_first(client, q, expected):
    page = client.get("/api/search", params={"q": q, "limit": 3}).json()
    items = page["items"]
    assert items[0]["filename"] == expected
    assert [i["rank"] for i in items] == [1, 2, 3]
    vector = client.get("/api/search", params={"q": q, "limit": 3, "mode": "vector"}).json()["items"]
    assert vector[0]["filename"] == expected
    assert vector[0]["score"] > vector[1]["score"] > vector[2]["score"]
    assert items[0]["thumb_url"] == f"/api/assets/{items[0]['id']}/thumb"
    assert page["offset"] == 0 and page["limit"] == 3 and page["next_offset"] == 3


def test_search_pages_do_not_overlap(client):
    whole = client.get("/api/search", params={"q": "a photo", "limit": 5}).json()["items"]
    first = client.get("/api/search", params={"q": "a photo", "limit": 2}).json()
    second = client.get("/api/search", params={"q": "a photo", "limit": 2, "offset": first["next_offset"]}).json()
    last = client.get("/api/search", params={"q": "a photo", "limit": 2, "offset": 4}).json()
    assert [i["id"] for i in first["items"] + second["items"] + last["items"]] == [i["id"] for i in whole]
    assert [i["rank"] for i in second["items"]] == [3, 4]
    assert last["next_offset"] is None


def test_search_filters(client):
    things = client.get("/api/search", params={"q": "a photo", "collection": "things"}).json()["items"]
    assert {i["collection"] for i in things} == {"things"} and len(things) == 2
    two = client.get("/api/search", params=[("q", "x"), ("collection", "animals"), ("collection", "people")])
    assert {i["filename"] for i in two.json()["items"]} == {"cat.jpg", "astronaut.jpg", "camera.jpg"}
    space = client.get("/api/search", params={"q": "a photo", "tag": "space"}).json()["items"]
    assert [i["filename"] for i in space] == ["rocket.jpg"]
    assert client.get("/api/search", params={"q": "a photo", "source": "synthetic"}).json()["items"] == []
    assert client.get("/api/search", params={"q": "a cat", "min_score": 0.999}).json()["items"] == []
    assert client.get("/api/search", params={"q": "a cat", "source": "stolen"}).status_code == 422
    assert client.get("/api/search", params={"q": "a cat", "mode": "magic"}).status_code == 422
    assert client.get("/api/search", params={"q": "a cat", "limit": 10_000}).status_code == 422
    assert client.get("/api/search", params={"q": ""}).status_code == 422


def test_search_reads_names_in_the_query_as_the_cli_does(client):
    q = "a cup of coffee from the things collection"
    page = client.get("/api/search", params={"q": q, "limit": 5}).json()
    assert page["mode"] == "hybrid"
    u = page["understood"]
    assert u["applied"] is True and u["original"] == q and u["text"] == "a cup of coffee"
    assert [(f["field"], f["values"], f["phrase"]) for f in u["filters"]] == [
        ("collection", ["things"], "things collection")
    ]
    assert u["description"].startswith("understood: collection = things (from 'things collection')")
    assert {i["collection"] for i in page["items"]} == {"things"} and page["items"][0]["filename"] == "coffee.jpg"

    off = client.get("/api/search", params={"q": q, "limit": 5, "understand": "false"}).json()
    assert off["understood"] is None and len({i["collection"] for i in off["items"]}) > 1  # no filter
    # filters chosen explicitly win over understood ones (and the response says so)
    mine = client.get("/api/search", params={"q": q, "collection": "people"}).json()
    assert mine["understood"]["applied"] is False and {i["collection"] for i in mine["items"]} == {"people"}
    # nothing to understand: an empty list of filters, the words searched as given
    plain = client.get("/api/search", params={"q": "a cat", "mode": "vector"}).json()
    assert plain["mode"] == "vector" and plain["understood"]["filters"] == []
    assert plain["understood"]["text"] == "a cat"


def test_search_mode_and_understand_are_validated_by_name(client):
    for params, loc in (({"mode": "magic"}, ["query", "mode"]), ({"understand": "maybe"}, ["query", "understand"])):
        r = client.get("/api/search", params={"q": "a cat", **params})
        assert r.status_code == 422
        assert [e["loc"] for e in r.json()["detail"]] == [loc]
    msg = client.get("/api/search", params={"q": "x", "mode": "x"}).json()["detail"][0]["msg"]
    assert "'vector' or 'hybrid'" in msg
    r = client.post("/api/search", data={"q": "a cat", "mode": "lexicon"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "mode"]
    form = client.post("/api/search", data={"q": "a rocket from the things collection", "understand": "false"}).json()
    assert form["understood"] is None and form["mode"] == "hybrid"


def test_search_in_another_language_goes_through_the_multilingual_encoder(client):
    # the photo_dir library (5 photos, file names that say nothing in French): the vector side must find it
    page = client.get("/api/search", params={"q": "un chat", "mode": "vector", "limit": 1}).json()
    assert page["items"][0]["filename"] == "cat.jpg"
    forced = client.get("/api/search", params={"q": "un chat", "mode": "vector", "lang": "fr", "limit": 1}).json()
    assert forced["items"][0]["id"] == page["items"][0]["id"]  # auto detected French: the same query vector
    r = client.get("/api/search", params={"q": "un chat", "lang": "klingon"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "lang"]
    r = client.post("/api/search", data={"q": "un chat", "lang": "xx"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "lang"]


def test_api_asset_model_has_exactly_the_search_hit_fields():
    """`search.SearchHit` is the one declaration of a hit's fields: the API's models are built from it."""
    import dataclasses

    from assetrag.search import SearchHit, Understood
    from assetrag.server.schemas import Asset, AssetDetail, UnderstoodFilter

    hit_fields = [f.name for f in dataclasses.fields(SearchHit)]
    assert list(Asset.model_fields) == [*hit_fields, "image_url", "thumb_url"]
    assert set(hit_fields) < set(AssetDetail.model_fields)
    for f in dataclasses.fields(SearchHit):  # same defaults: optional in the dataclass, optional in the API
        assert Asset.model_fields[f.name].is_required() == (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ), f.name
    assert list(UnderstoodFilter.model_fields) == [f.name for f in dataclasses.fields(Understood)]
    hit = SearchHit(1, "a" * 64, 0.5, "/x.png", "x.png", "c", ["t"], "ingested", 1, 2, 3, fused_score=0.1)
    assert Asset(**hit.to_dict(), image_url="/i", thumb_url="/t").model_dump(exclude={"image_url", "thumb_url"}) == (
        hit.to_dict()
    )


def test_image_search_finds_the_same_photo(client, photo_arrays):
    files = {"image": ("query.jpg", jpeg_bytes(photo_arrays["rocket"]), "image/jpeg")}
    items = client.post("/api/search", files=files, data={"limit": "3"}).json()["items"]
    assert items[0]["filename"] == "rocket.jpg" and items[0]["score"] > 0.98


def test_text_plus_image_search_blends_both(client, photo_arrays):
    files = {"image": ("cat.jpg", jpeg_bytes(photo_arrays["cat"]), "image/jpeg")}
    data = {"q": "a cup of coffee", "text_weight": "0.9", "limit": "2"}
    assert client.post("/api/search", files=files, data=data).json()["items"][0]["filename"] == "coffee.jpg"
    filtered = client.post("/api/search", files=files, data={"collection": "people", "limit": "5"}).json()
    assert {i["collection"] for i in filtered["items"]} == {"people"}


def test_image_search_refuses_what_is_not_an_image(client):
    r = client.post("/api/search", files={"image": ("x.jpg", b"<html>not an image</html>", "image/jpeg")})
    assert r.status_code == 415 and "not an image" in r.json()["detail"]
    assert client.post("/api/search", data={"limit": "3"}).status_code == 400


# -- assets -----------------------------------------------------------------------------------------


def _id_of(client, filename: str) -> str:
    items = client.get("/api/assets", params={"limit": 50}).json()["items"]
    return next(i["id"] for i in items if i["filename"] == filename)


def test_browse_assets_is_paginated(client):
    first = client.get("/api/assets", params={"limit": 3}).json()
    assert first["total"] == 5 and len(first["items"]) == 3 and first["next_offset"] == 3
    rest = client.get("/api/assets", params={"limit": 3, "offset": 3}).json()
    assert len(rest["items"]) == 2 and rest["next_offset"] is None
    ids = {i["id"] for i in first["items"] + rest["items"]}
    assert len(ids) == 5
    people = client.get("/api/assets", params={"collection": "people"}).json()
    assert people["total"] == 2 and {i["collection"] for i in people["items"]} == {"people"}


def test_asset_detail(client, photo_root):
    aid = _id_of(client, "rocket.jpg")
    a = client.get(f"/api/assets/{aid}").json()
    assert a["path"] == str(photo_root / "things" / "space" / "rocket.jpg")
    assert a["collection"] == "things" and set(a["tags"]) >= {"things", "space"}
    assert a["source"] == "ingested" and a["lineage"] == {} and a["references"] == []
    assert a["file_available"] is True and a["width"] > 0 and a["height"] > 0
    assert client.get(f"/api/assets/{'0' * 64}").status_code == 404


def test_image_is_the_original_file(client, photo_root):
    aid = _id_of(client, "coffee.jpg")
    r = client.get(f"/api/assets/{aid}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == (photo_root / "things" / "drinks" / "coffee.jpg").read_bytes()


def test_thumbnail_is_made_once_and_cached(client, served):
    aid = _id_of(client, "astronaut.jpg")
    cached = served[1] / "cache" / "thumbs" / aid[:2] / f"{aid}-256.jpg"
    cached.unlink(missing_ok=True)
    r = client.get(f"/api/assets/{aid}/thumb")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"]
    assert max(Image.open(io.BytesIO(r.content)).size) == 256
    assert cached.is_file() and cached.read_bytes() == r.content
    made = cached.stat().st_mtime_ns
    again = client.get(f"/api/assets/{aid}/thumb")
    assert again.content == r.content and cached.stat().st_mtime_ns == made  # served from the cache
    big = client.get(f"/api/assets/{aid}/thumb", params={"size": 512})
    assert max(Image.open(io.BytesIO(big.content)).size) == 512
    assert client.get(f"/api/assets/{aid}/thumb", params={"size": 333}).status_code == 400


def test_find_similar_excludes_itself_and_pages(client):
    aid = _id_of(client, "cat.jpg")
    whole = client.get(f"/api/assets/{aid}/similar", params={"limit": 4}).json()
    assert len(whole["items"]) == 4 and aid not in {i["id"] for i in whole["items"]}
    assert [i["rank"] for i in whole["items"]] == [1, 2, 3, 4]
    p1 = client.get(f"/api/assets/{aid}/similar", params={"limit": 2}).json()
    p2 = client.get(f"/api/assets/{aid}/similar", params={"limit": 2, "offset": 2}).json()
    assert [i["id"] for i in p1["items"] + p2["items"]] == [i["id"] for i in whole["items"]]
    assert [i["rank"] for i in p2["items"]] == [3, 4]
    end = client.get(f"/api/assets/{aid}/similar", params={"limit": 2, "offset": 4}).json()
    assert end["items"] == [] and end["next_offset"] is None
    filtered = client.get(f"/api/assets/{aid}/similar", params={"collection": "people"}).json()
    assert {i["collection"] for i in filtered["items"]} == {"people"}
    assert client.get(f"/api/assets/{'f' * 64}/similar").status_code == 404


# -- ingest and uploads (each on a library of its own) ----------------------------------------------


def test_ingest_folder_job_reports_progress_and_result(make_library, photo_dir, app_client, tmp_path):
    lib = make_library()
    c = app_client(lib, server_config(tmp_path, roots=(photo_dir.parent,)))
    assert c.get("/api/assets").json() == {"items": [], "offset": 0, "limit": 24, "next_offset": None, "total": 0}
    r = c.post("/api/ingest", json={"path": str(photo_dir), "tags": ["brand"], "collection": "photos"})
    assert r.status_code == 202 and r.json()["kind"] == "ingest"
    job = wait_job(c, r.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"] == {"total": 5, "done": 5, "fraction": 1.0, "description": "done"}
    assert job["result"]["added"] == 5 and job["result"]["errors"] == []
    hits = c.get("/api/search", params={"q": "a cup of coffee", "tag": "brand"}).json()["items"]
    assert hits[0]["filename"] == "coffee.jpg" and hits[0]["collection"] == "photos"
    listed = c.get("/api/jobs").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    again = wait_job(c, c.post("/api/ingest", json={"path": str(photo_dir)}).json()["id"])
    assert again["result"]["unchanged"] == 5 and again["result"]["decoded"] == 0
    assert c.get("/api/jobs/" + "0" * 32).status_code == 404


def test_ingest_relative_path_is_under_the_first_root(make_library, photo_dir, app_client, tmp_path):
    c = app_client(make_library(), server_config(tmp_path, roots=(photo_dir,)))
    job = wait_job(c, c.post("/api/ingest", json={"path": "things"}).json()["id"])
    assert job["status"] == "done" and job["result"]["added"] == 2
    assert c.post("/api/ingest", json={"path": "nowhere"}).status_code == 404


def test_upload_then_find_it(make_library, app_client, tmp_path, photo_arrays):
    lib = make_library()
    config = server_config(tmp_path)
    c = app_client(lib, config)
    rocket = jpeg_bytes(photo_arrays["rocket"])
    r = c.post(
        "/api/ingest/uploads",
        files=[("files", ("My Rocket!.JPG", rocket, "image/jpeg")), ("files", ("notes.png", b"hello", "image/png"))],
        data={"collection": "launch", "tag": ["campaign"]},
    )
    assert r.status_code == 422, r.text  # one file rejected: said by the status; the other is ingested all the same
    body = r.json()
    assert "1 of 2 file(s) rejected" in body["detail"] and "notes.png" in body["detail"]
    assert [s["name"] for s in body["saved"]] == ["My Rocket!.JPG"]
    saved = body["saved"][0]
    assert saved["path"] == str(config.upload_dir / "launch" / "My-Rocket.jpg")
    assert Path(saved["path"]).read_bytes() == rocket
    assert body["rejected"] == [{"name": "notes.png", "reason": body["rejected"][0]["reason"]}]
    assert "not an image" in body["rejected"][0]["reason"]
    job = wait_job(c, body["job"]["id"])
    assert job["status"] == "done" and job["result"]["added"] == 1
    files = {"image": ("q.jpg", rocket, "image/jpeg")}
    hit = c.post("/api/search", files=files).json()["items"][0]
    assert hit["id"] == saved["id"] and hit["collection"] == "launch" and set(hit["tags"]) >= {"upload", "campaign"}
    assert c.get(hit["image_url"]).content == rocket  # the upload folder is always servable


def test_uploads_are_size_limited_and_checked(make_library, app_client, tmp_path, photo_arrays):
    config = server_config(tmp_path, max_upload_bytes=20_000, max_request_bytes=200_000)
    c = app_client(make_library(), config)
    big = jpeg_bytes(photo_arrays["astronaut"], quality=95)
    assert len(big) > 20_000
    r = c.post("/api/ingest/uploads", files=[("files", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413 and "upload limit" in r.json()["detail"]
    huge = b"\xff" * 300_000
    r = c.post("/api/ingest/uploads", files=[("files", ("huge.jpg", huge, "image/jpeg"))])
    assert r.status_code == 413
    truncated = jpeg_bytes(photo_arrays["camera"], quality=50)[:5000]
    r = c.post("/api/ingest/uploads", files=[("files", ("cut.jpg", truncated, "image/jpeg"))])
    assert r.status_code == 415 and "truncated" in r.json()["detail"]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert c.post("/api/ingest/uploads", files=[("files", ("x.svg", svg, "image/svg+xml"))]).status_code == 415
    assert not any((config.upload_dir).rglob("*.*"))  # nothing was kept


# -- security ---------------------------------------------------------------------------------------


@pytest.fixture
def token_client(served, app_client, tmp_path):
    return app_client(served[0], server_config(tmp_path, api_token=TOKEN, roots=(served[1] / "roots",)))


def test_token_is_required_on_every_api_route(token_client):
    c = token_client
    for method, path in [
        ("get", "/api/health"),
        ("get", "/api/stats"),
        ("get", "/api/search?q=cat"),
        ("get", "/api/assets"),
        ("get", "/api/facets"),
        ("get", "/api/jobs"),
        ("get", f"/api/assets/{'a' * 64}"),
        ("get", f"/api/assets/{'a' * 64}/image"),
        ("get", f"/api/assets/{'a' * 64}/thumb"),
        ("post", "/api/ingest"),
        ("post", "/api/generate/plan"),
    ]:
        r = getattr(c, method)(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/api/health", headers={"X-API-Token": TOKEN}).status_code == 200
    assert c.get("/api/health", params={"token": TOKEN}).status_code == 401  # never in a URL
    assert c.get("/").status_code == 200  # the page itself holds no data; it asks for the token


def test_image_urls_are_signed_and_the_token_never_echoed(token_client):
    c = token_client
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = c.get("/api/search", params={"q": "a cat", "limit": 2}, headers=auth)
    assert TOKEN not in r.text
    hit = r.json()["items"][0]
    assert "sig=" in hit["thumb_url"] and TOKEN not in hit["thumb_url"]
    assert c.get(hit["thumb_url"]).status_code == 200  # an <img src> needs no header
    assert c.get(hit["image_url"]).status_code == 200
    other = r.json()["items"][1]["id"]
    forged = hit["thumb_url"].replace(hit["id"], other)  # a signature is for one asset only
    assert c.get(forged).status_code == 401
    assert c.get(hit["thumb_url"].replace("sig=", "sig=0")).status_code == 401
    expired = hit["thumb_url"].split("?")[0] + "?exp=1&sig=" + hit["thumb_url"].split("sig=")[1]
    assert c.get(expired).status_code == 401
    assert c.get(f"/api/assets/{hit['id']}", params=hit["thumb_url"].split("?")[1]).status_code == 401


def test_signed_urls_stay_within_their_ttl():
    for ttl in (2, 7, 3600, 12 * 3600):
        for _ in range(3):
            now = time.time()
            url = signed_url(TOKEN, "/api/assets/x/thumb", ttl)
            exp = int(parse_qs(urlsplit(url).query)["exp"][0])
            assert now + ttl / 2 - 1 <= exp <= now + ttl, (ttl, exp - now)


def test_a_valid_signed_url_expires_after_its_ttl(served, app_client, tmp_path):
    """A URL that worked is refused once its `exp` has passed (a tiny url_ttl_s: seconds, not hours)."""
    config = server_config(tmp_path, api_token=TOKEN, roots=(served[1] / "roots",), url_ttl_s=4)
    c = app_client(served[0], config)
    r = c.get("/api/search", params={"q": "a cat", "limit": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
    url = r.json()["items"][0]["image_url"]
    exp = int(parse_qs(urlsplit(url).query)["exp"][0])
    assert time.time() <= exp <= time.time() + 4
    assert c.get(url).status_code == 200  # valid now: at least ttl / 2 = 2 s left
    while time.time() <= exp + 0.05:  # wait for the condition itself: the clock past `exp` (≤ 4 s)
        time.sleep(min(0.1, max(0.0, exp + 0.06 - time.time())))
    r = c.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.get(url.split("?")[0], headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200  # token still


def test_a_wrong_host_header_is_refused(served, app_client, tmp_path):
    config = server_config(tmp_path, allowed_hosts=("127.0.0.1", "localhost"))
    c = app_client(served[0], config, base_url="http://127.0.0.1:8000")
    assert c.get("/api/health").status_code == 200
    assert c.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.attacker.test:8000"):  # DNS rebinding
        r = c.get("/api/health", headers={"Host": host})
        assert r.status_code == 400, (host, r.status_code)
        assert "health" not in r.text and "Invalid host header" in r.text
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 400  # the page too


def test_upload_file_count_limit(make_library, app_client, tmp_path, photo_arrays):
    config = server_config(tmp_path, max_upload_files=2)
    c = app_client(make_library(), config)
    small = jpeg_bytes(photo_arrays["cat"][:64, :64])
    three = [("files", (f"{i}.jpg", small, "image/jpeg")) for i in range(3)]
    r = c.post("/api/ingest/uploads", files=three)
    assert r.status_code == 413 and "3 files in one request; send at most 2" in r.json()["detail"]
    assert not config.upload_dir.exists() or not any(config.upload_dir.rglob("*.*"))  # none kept
    r = c.post("/api/ingest/uploads", files=three[:2])
    assert r.status_code == 202, r.text
    assert len(r.json()["saved"]) == 2


def test_a_chunked_body_without_content_length_is_limited_as_it_streams(served, app_client, tmp_path):
    c = app_client(served[0], server_config(tmp_path, max_request_bytes=1000))
    sent = []

    def chunks():
        for _ in range(50):  # 5000 bytes in 100-byte pieces, no Content-Length
            sent.append(1)
            yield b" " * 100

    json_type = {"Content-Type": "application/json"}
    r = c.post("/api/ingest", content=chunks(), headers=json_type)
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413 and r.json()["detail"] == "request body over the 0.000954 MB limit"  # not "0 MB"
    assert len(sent) == 50  # (TestClient's transport reads the whole body first; the limit counts as it arrives)
    # under the limit, the same way: the route gets the body (and answers for the path)
    r = c.post("/api/ingest", content=iter([b'{"path": ', b'"/nonexistent-x"}']), headers=json_type)
    assert "content-length" not in r.request.headers
    assert r.status_code == 403 and "outside the folders this server may read" in r.json()["detail"], r.text


def test_secrets_are_redacted_from_errors_and_logs(served, app_client, tmp_path, monkeypatch, caplog):
    secret = "sk-test-SECRET-" + "x" * 24
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    config = server_config(tmp_path)
    c = app_client(served[0], config)
    caplog.set_level(logging.INFO)
    logging.getLogger("assetrag.server").warning("calling with key %s", secret)
    r = c.post("/api/ingest", json={"path": str(config.roots[0] / secret)})
    assert r.status_code == 404
    assert secret not in r.text and "***" in r.json()["detail"]
    assert secret not in caplog.text and "calling with key ***" in caplog.text
    assert secret not in repr(ServerConfig(api_token=secret))


def test_cross_site_writes_are_refused(client, photo_root):
    body = {"path": str(photo_root)}
    assert client.post("/api/ingest", json=body, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/api/ingest", json=body, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post("/api/ingest", json=body, headers={"Origin": "null"}).status_code == 403
    # a text/plain "simple request" from another page is not read as JSON
    r = client.post("/api/ingest", content=b'{"path": "/"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 422


def test_request_body_limit(served, app_client, tmp_path):
    c = app_client(served[0], server_config(tmp_path, max_request_bytes=1000))
    r = c.post("/api/search", files={"image": ("x.jpg", b"\0" * 5000, "image/jpeg")})
    assert r.status_code == 413


# -- generation -------------------------------------------------------------------------------------


def test_generate_plan_edit_and_run_with_the_board(client):
    brief = "a cat next to a cup of coffee"
    r = client.post("/api/generate/plan", json={"brief": brief, "backend": "board"})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["backend"] == "board" and plan["limit"] >= 2
    by_item = {it["item"]: it for it in plan["items"]}
    assert by_item["cat"]["chosen"]["filename"] == "cat.jpg"
    assert by_item["cup of coffee"]["chosen"]["filename"] == "coffee.jpg"
    assert all(c["thumb_url"].startswith("/api/assets/") for it in plan["items"] for c in it["candidates"])

    # the user keeps the cat, swaps the coffee for the rocket, and drops everything else
    rocket = next(c for c in plan["chosen"] + by_item["cat"]["candidates"] if c["filename"] != "cat.jpg")
    refs = {"cat": [by_item["cat"]["chosen"]["id"]], "cup of coffee": [rocket["id"]]}
    r = client.post("/api/generate", json={"brief": brief, "backend": "board", "refs": refs})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"], timeout=120)
    assert job["status"] == "done", job["error"]
    run_plan, result = job["result"]["plan"], job["result"]["result"]
    assert [c["id"] for c in run_plan["chosen"]] == [refs["cat"][0], rocket["id"]]
    assert [c["item"] for c in run_plan["chosen"]] == ["cat", "cup of coffee"]
    scores = {c["id"]: c["score"] for c in run_plan["chosen"]}  # retrieval scores, not the 1.0 of a lookup
    assert scores[refs["cat"][0]] == by_item["cat"]["chosen"]["score"]
    assert 0.0 < scores[rocket["id"]] < 0.99
    assert result["backend"] == "board" and result["reference_ids"] == [refs["cat"][0], rocket["id"]]
    board = client.get(result["output_url"])
    assert board.status_code == 200 and board.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(board.content)).size == (result["width"], result["height"])
    assert not os.path.exists("generated")  # rag.run wrote into the server's folder, not the CWD


def test_generated_image_comes_back_as_a_synthetic_asset_with_lineage(make_library, photo_dir, app_client, tmp_path):
    lib = make_library()
    lib.ingest(photo_dir)
    c = app_client(lib, server_config(tmp_path, roots=(photo_dir,)))
    r = c.post("/api/generate", json={"brief": "a rocket", "backend": "board", "store_back": True})
    job = wait_job(c, r.json()["id"], timeout=120)
    assert job["status"] == "done", job["error"]
    result = job["result"]["result"]
    assert result["asset"]["source"] == "synthetic" and result["asset_id"] == result["asset"]["id"]
    synthetic = c.get("/api/assets", params={"source": "synthetic"}).json()
    assert synthetic["total"] == 1 and synthetic["items"][0]["id"] == result["asset_id"]
    detail = c.get(f"/api/assets/{result['asset_id']}").json()
    assert detail["lineage"]["brief"] == "a rocket" and detail["file_available"] is True
    # the whole stored lineage, read back from Milvus: how the board was made and from what
    lineage = detail["lineage"]
    assert lineage["backend"] == "board" and lineage["model"] == "reference-board"
    assert lineage["prompt"] == "a rocket"  # a board is titled with the brief itself
    assert [r["id"] for r in lineage["references"]] == result["reference_ids"]
    assert lineage["references"][0]["item"] == "rocket" and lineage["references"][0]["path"].endswith("rocket.jpg")
    assert 0.0 < lineage["references"][0]["score"] <= 1.0
    assert lineage["fidelity"] == {"mean": None, "min": None, "per_reference": []}
    assert lineage["created"] and "store_s" not in lineage  # timed after the write
    assert lib.get(result["asset_id"]).lineage == lineage  # the API serves what the store holds
    assert detail["references"] and detail["references"][0]["filename"] == "rocket.jpg"
    assert detail["references"][0]["item"] == "rocket" and "thumb_url" in detail["references"][0]
    assert c.get(detail["image_url"]).content == c.get(result["output_url"]).content


@pytest.mark.parametrize(
    ("answer", "key", "words", "timeouts"),
    [
        (lambda f: f.script(f.finish("IMAGE_SAFETY")), None, "IMAGE_SAFETY", {}),
        (lambda f: f.script(f.prompt_blocked("PROHIBITED_CONTENT")), None, "blocked the prompt", {}),
        (lambda f: None, "wrong-key-0123456789", "API key not valid", {}),
        (lambda f: f.always(f.server_error(503)), None, "overloaded", {}),  # the default retries: 1 + 2 + 4 s
        (lambda f: f.always(f.rate_limited("0.02s")), None, "gave up after 4 attempt(s)", {}),  # retried the same
        # slower than the server's setting (ASSETRAG_GENERATION_TIMEOUT), or than the request's timeout_s over it
        (lambda f: f.script(f.slow(4.0)), None, "timed out: no answer within timeout_s=1.5 s", {"env": "1.5"}),
        (lambda f: f.script(f.slow(4.0)), None, "timed out: no answer within timeout_s=1 s", {"env": "600", "body": 1}),
    ],
    ids=["safety", "prompt-blocked", "bad-key", "503", "429", "timeout-setting", "timeout-request"],
)
def test_a_failed_generation_is_a_failed_job_with_the_reason(
    make_library, photo_dir, app_client, tmp_path, monkeypatch, answer, key, words, timeouts
):
    from fakes.gemini_server import DEFAULT_KEY, FakeGemini

    if "env" in timeouts:
        monkeypatch.setenv("ASSETRAG_GENERATION_TIMEOUT", timeouts["env"])  # read by the library's Settings
    lib = make_library()
    lib.ingest(photo_dir)
    config = server_config(tmp_path, roots=(photo_dir,))
    c = app_client(lib, config)
    body = {"brief": "a rocket", "backend": "gemini"}
    if "body" in timeouts:
        for out_of_bounds in (0, 0.5, 601):
            r = c.post("/api/generate", json={**body, "timeout_s": out_of_bounds})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["timeout_s"], r.text
        body["timeout_s"] = timeouts["body"]
    with FakeGemini() as fake:
        monkeypatch.setenv("GEMINI_API_KEY", key or DEFAULT_KEY)
        monkeypatch.setenv("ASSETRAG_GEMINI_BASE_URL", fake.base_url)
        answer(fake)
        r = c.post("/api/generate", json=body)
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"], timeout=120)
        retried = "overloaded" in words or "gave up" in words
        assert len(fake.requests) == (4 if retried else 1)  # only a 5xx and a 429 are retried
    assert job["status"] == "failed" and job["result"] is None
    assert words in job["error"], job["error"]
    assert (key or DEFAULT_KEY) not in job["error"]
    assert c.get("/api/assets", params={"source": "synthetic"}).json()["total"] == 0
    assert c.get(f"/api/generate/{r.json()['id']}/image").status_code == 404
    assert not config.generated_dir.exists() or not any(config.generated_dir.rglob("*.png"))


@pytest.mark.parametrize("seed", [0, 7])
def test_a_generation_request_passes_its_options_to_the_vendor(
    make_library, photo_dir, app_client, tmp_path, monkeypatch, seed
):
    """The request's seed (0 included), aspect ratio and timeout reach the vendor's request."""
    from fakes.gemini_server import DEFAULT_KEY, FakeGemini

    lib = make_library()
    lib.ingest(photo_dir)
    c = app_client(lib, server_config(tmp_path, roots=(photo_dir,)))
    with FakeGemini() as fake:
        monkeypatch.setenv("GEMINI_API_KEY", DEFAULT_KEY)
        monkeypatch.setenv("ASSETRAG_GEMINI_BASE_URL", fake.base_url)
        body = {"brief": "a rocket", "backend": "gemini", "seed": seed, "aspect_ratio": "16:9", "timeout_s": 30}
        r = c.post("/api/generate", json=body)
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"], timeout=120)
        assert job["status"] == "done", job["error"]
        config = fake.requests[0].json["generationConfig"]
    assert config["seed"] == seed and config["imageConfig"]["aspectRatio"] == "16:9", config


def test_generate_backends_say_which_can_run_and_why_not(client, monkeypatch, tmp_path):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "ASSETRAG_DIFFUSERS_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)
    body = client.get("/api/generate/backends").json()
    assert body["items"] == ["gemini", "openai", "diffusers", "board"] and body["default"] == "board"  # as before
    by_name = {b["name"]: b for b in body["backends"]}
    assert list(by_name) == body["items"]
    assert by_name["board"] == {"name": "board", "available": True, "reason": None}
    assert not by_name["gemini"]["available"] and "GEMINI_API_KEY" in by_name["gemini"]["reason"]
    assert "GOOGLE_API_KEY" in by_name["gemini"]["reason"] and "on the server" in by_name["gemini"]["reason"]
    assert not by_name["openai"]["available"] and "OPENAI_API_KEY" in by_name["openai"]["reason"]
    assert not by_name["diffusers"]["available"] and "ASSETRAG_DIFFUSERS_CHECKPOINT" in by_name["diffusers"]["reason"]

    secret = "sk-secret-value-0123456789"
    monkeypatch.setenv("GOOGLE_API_KEY", secret)  # either of Gemini's two names will do
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ASSETRAG_DIFFUSERS_CHECKPOINT", str(tmp_path))  # a folder, but no pipeline in it
    r = client.get("/api/generate/backends")
    assert secret not in r.text and str(tmp_path) not in r.text  # names the settings, never their values
    by_name = {b["name"]: b for b in r.json()["backends"]}
    for name, module in (("gemini", "google.genai"), ("openai", "openai")):
        installed = importlib.util.find_spec(module) is not None
        assert by_name[name]["available"] is installed, by_name[name]
    assert not by_name["diffusers"]["available"] and "model_index.json" in by_name["diffusers"]["reason"]


def test_a_backend_the_server_cannot_run_is_a_400_before_any_job(client, monkeypatch):
    """What /api/generate/backends says cannot run is refused up front with its reason, not a job that fails."""
    for var in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    jobs = len(client.get("/api/jobs").json()["items"])
    for backend, setting in (("openai", "OPENAI_API_KEY"), ("gemini:gemini-2.5-flash-image", "GEMINI_API_KEY")):
        r = client.post("/api/generate", json={"brief": "a rocket", "backend": backend})
        detail = r.json()["detail"]
        assert r.status_code == 400 and setting in detail and "cannot run here" in detail, r.text
    assert len(client.get("/api/jobs").json()["items"]) == jobs
    assert client.post("/api/generate", json={"brief": "a rocket", "backend": "board"}).status_code == 202


def test_generate_refuses_bad_references(client):
    bad = client.post("/api/generate", json={"brief": "a cat", "refs": {"cat": ["../../etc/passwd"]}})
    assert bad.status_code == 400
    unknown = client.post("/api/generate", json={"brief": "a cat", "refs": {"cat": ["e" * 64]}})
    assert unknown.status_code == 400 and "not in this library" in unknown.json()["detail"]
    ids = [i["id"] for i in client.get("/api/assets").json()["items"]]
    too_many = client.post("/api/generate", json={"brief": "a cat", "refs": {"cat": ids}, "max_refs": 2})
    assert too_many.status_code == 400 and "at most 2" in too_many.json()["detail"]
    assert client.get("/api/generate/" + "0" * 32 + "/image").status_code == 404
    assert client.get("/api/generate/nothex/image").status_code == 400


def test_unknown_routes_and_methods(client):
    assert client.get("/api/nothing").status_code == 404
    assert client.delete("/api/search").status_code == 405
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_generate_from_an_uploaded_image_of_the_users_own(make_library, photo_dir, app_client, tmp_path, photo_arrays):
    """A multipart plan / generate with the user's own image: the item pointing at it is bound to it, the
    lineage names it, and it is never ingested."""
    import hashlib
    import json

    lib = make_library()
    lib.ingest(photo_dir)
    config = server_config(tmp_path, roots=(photo_dir,))
    c = app_client(lib, config)
    mine = io.BytesIO()
    Image.fromarray(photo_arrays["astronaut"][::-1]).save(mine, format="PNG")  # not a file of the library
    mine = mine.getvalue()
    sha = hashlib.sha256(mine).hexdigest()
    brief = "A figurine of this character holding a cup of coffee"

    def multipart(body):
        return {"data": {"request": json.dumps(body)}, "files": [("ref", ("player one.png", mine, "image/png"))]}

    r = c.post("/api/generate/plan", **multipart({"brief": brief, "backend": "board"}))
    assert r.status_code == 200, r.text
    plan = r.json()
    bound, coffee = plan["items"]
    assert bound["item"] == "figurine of this character" and bound["bound"] and bound["candidates"] == []
    assert bound["chosen"]["id"] == sha and bound["chosen"]["path"] == "player one.png"  # no server path
    assert coffee["chosen"]["filename"] == "coffee.jpg"
    assert not [p for p in config.generated_dir.rglob("*") if p.is_file()]  # the plan's upload is removed

    r = c.post("/api/generate", **multipart({"brief": brief, "backend": "board", "store_back": True}))
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], timeout=120)
    assert job["status"] == "done", job["error"]
    assert job["params"]["given"] == [{"name": "player one.png", "id": sha}]
    detail = c.get(f"/api/assets/{job['result']['result']['asset_id']}").json()
    given = [ref for ref in detail["lineage"]["references"] if ref["role"] == "given"]
    assert len(given) == 1 and given[0]["id"] == sha and given[0]["item"] == "figurine of this character"
    kept = Path(given[0]["path"])
    assert given[0]["filename"] == kept.name == "player-one.png" and kept.read_bytes() == mine
    assert kept.is_relative_to(config.generated_dir)
    assert lib.get(sha) is None and lib.stats()["count"] == 6  # 5 photos + the output, not the upload

    # JSON still works; a bad upload or a multipart without its JSON is refused before anything runs
    assert c.post("/api/generate/plan", json={"brief": brief}).json()["items"][0]["bound"] is False
    bad = c.post(
        "/api/generate/plan",
        data={"request": json.dumps({"brief": brief})},
        files=[("ref", ("x.png", b"no", "image/png"))],
    )
    assert bad.status_code == 400 and "x.png" in bad.json()["detail"]
    assert c.post("/api/generate", files=[("ref", ("a.png", mine, "image/png"))]).status_code == 400
    assert c.post("/api/generate/plan", **multipart({"brief": ""})).status_code == 422


def test_generate_with_uploads_keeps_them_when_the_user_edits_the_references(
    make_library, photo_dir, app_client, tmp_path, photo_arrays
):
    """The page always sends its edited `refs`, which name the uploaded images by their sha256: those stay the
    given references (they are not in the library); one left out of `refs` is removed like any other."""
    import hashlib
    import json

    lib = make_library()
    lib.ingest(photo_dir)
    c = app_client(lib, server_config(tmp_path, roots=(photo_dir,)))
    limits = c.get("/api/generate/backends").json()["uploads"]
    assert limits == {"max_files": 8, "max_bytes": 50 * 1024 * 1024}  # what the page checks before sending
    mine = io.BytesIO()
    Image.fromarray(photo_arrays["astronaut"][::-1]).save(mine, format="PNG")
    mine = mine.getvalue()
    sha = hashlib.sha256(mine).hexdigest()
    brief = "A figurine of this character holding a cup of coffee"
    files = [("ref", ("player one.png", mine, "image/png"))]
    plan = c.post("/api/generate/plan", data={"request": json.dumps({"brief": brief})}, files=files).json()
    coffee = plan["items"][1]["chosen"]["id"]
    refs = {"figurine of this character": [sha], "cup of coffee": [coffee]}

    body = {"brief": brief, "backend": "board", "refs": refs}
    r = c.post("/api/generate", data={"request": json.dumps(body)}, files=files)
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], timeout=120)
    assert job["status"] == "done", job["error"]
    chosen = job["result"]["plan"]["chosen"]
    assert [(x["id"], x["role"], x["item"]) for x in chosen] == [
        (sha, "given", "figurine of this character"),
        (coffee, "item", "cup of coffee"),
    ]
    assert job["result"]["result"]["reference_ids"] == [sha, coffee]

    body["refs"] = {"cup of coffee": [coffee]}  # the user removed their image from the plan
    r = c.post("/api/generate", data={"request": json.dumps(body)}, files=files)
    job = wait_job(c, r.json()["id"], timeout=120)
    assert job["status"] == "done", job["error"]
    assert [x["id"] for x in job["result"]["plan"]["chosen"]] == [coffee]
    assert sha in [x["id"] for x in job["result"]["plan"]["dropped"]]

    body["refs"] = {"cup of coffee": [sha]}  # an upload's id without the upload is not a library asset
    r = c.post("/api/generate", json=body)
    assert r.status_code == 400 and "not in this library" in r.json()["detail"]


def test_duplicates_route_pages_groups(make_library, photo_dir, app_client, tmp_path):
    import shutil

    cat = photo_dir / "animals" / "cats" / "cat.jpg"
    Image.open(cat).resize((200, 133)).save(photo_dir / "animals" / "cat-small.jpg", quality=80)
    shutil.copy(cat, photo_dir / "things" / "cat-copy.jpg")
    lib = make_library()
    lib.ingest(photo_dir)
    c = app_client(lib, server_config(tmp_path, roots=(photo_dir,)))
    page = c.get("/api/duplicates").json()
    assert page["total"] == 2 and page["not_hashed"] == 0 and page["threshold"] is None
    exact, near = page["items"]
    assert exact["kind"] == "exact" and exact["size"] == 2
    assert near["kind"] == "near" and {m["filename"] for m in near["members"]} == {"cat.jpg", "cat-small.jpg"}
    assert all("thumb_url" in m and "distance" in m for m in near["members"])
    second = c.get("/api/duplicates", params={"offset": 1, "limit": 1}).json()
    assert [g["kind"] for g in second["items"]] == ["near"] and second["next_offset"] is None
    assert c.get("/api/duplicates", params={"distance": 99}).status_code == 422
