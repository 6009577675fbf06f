"""Videos through the server: a search hit carries `time` and `play_url` (`…/image#t=4`), the original is
streamed with Range requests (206), the thumbnail is the keyframe's own frame; and in headless Chromium the
result card's ▶ opens a player that starts at the hit's time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_support import TOKEN, serve_in_thread, server_config

from assetrag import Library
from assetrag.server import create_app
from fakes.videos import make_video


@pytest.fixture(scope="module")
def video_served(tmp_path_factory, photo_arrays, offline_embedder) -> Iterator[tuple[Library, Path]]:
    """A library holding one VP9 WebM (cat [0, 2) s, rocket [2, 4) s) — a codec every Chromium plays."""
    base = tmp_path_factory.mktemp("video-served")
    root = base / "roots" / "library"
    make_video(root / "campaign" / "lunar.webm", [photo_arrays["cat"], photo_arrays["rocket"]], codec="libvpx-vp9")
    lib = Library(base / "lib.db", library="assets", embedder=offline_embedder)
    report = lib.ingest(root)
    assert report.keyframes == 2, report.errors
    yield lib, base
    lib.close()


def test_a_video_hit_has_its_time_a_play_url_a_range_served_original_and_a_frame_thumbnail(video_served):
    lib, base = video_served
    with TestClient(create_app(lib, server_config(base))) as client:
        res = client.get("/api/search", params={"q": "a rocket", "limit": 1, "mode": "vector"})
        assert res.status_code == 200, res.text
        hit = res.json()["items"][0]
        assert hit["media"] == "video_frame" and hit["time"] == pytest.approx(2.0)
        assert hit["label"] == "lunar.webm @ 2.0s" and hit["play_url"].endswith("#t=2")
        size = (base / "roots" / "library" / "campaign" / "lunar.webm").stat().st_size
        part = client.get(hit["image_url"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and len(part.content) == 100
        assert part.headers["content-type"] == "video/webm"
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        thumb = client.get(hit["thumb_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        img = np.asarray(Image.open(__import__("io").BytesIO(thumb.content)).convert("RGB"), np.float32)
        rocket = np.asarray(Image.fromarray(lib_frame_reference(base)).resize(img.shape[1::-1]), np.float32)
        assert np.abs(img - rocket).mean() < 25  # the rocket frame, not the cat at 0 s
        grouped = client.get("/api/search", params={"q": "a rocket", "limit": 5, "group_videos": True}).json()
        assert len(grouped["items"]) == 1 and grouped["items"][0]["moments"] == [pytest.approx(0.0)]


def test_a_touched_video_is_still_served_and_one_with_other_bytes_is_a_409(tmp_path, photo_arrays, offline_embedder):
    """The same bytes with a new mtime (touched, restored from a backup) are the ingested video: its keyframes
    are compared by the video's sha256 (`video_id`), not by their own ids."""
    root = tmp_path / "roots" / "library"
    video = make_video(root / "films" / "promo.mp4", [photo_arrays["cat"], photo_arrays["rocket"]])
    original = video.read_bytes()
    with Library(tmp_path / "lib.db", library="assets", embedder=offline_embedder) as lib:
        assert lib.ingest(root).keyframes == 2
        with TestClient(create_app(lib, server_config(tmp_path))) as client:
            hits = client.get("/api/search", params={"q": "a rocket", "limit": 5, "mode": "vector"}).json()["items"]
            assert {h["media"] for h in hits} == {"video_frame"} and len(hits) == 2
            later = video.stat().st_mtime + 60
            os.utime(video, (later, later))  # touched: the same bytes
            for hit in hits:
                assert client.get(hit["image_url"], headers={"Range": "bytes=0-99"}).status_code == 206
                assert client.get(hit["thumb_url"]).status_code == 200
            changed = bytearray(original)
            changed[len(changed) // 2] ^= 0xFF  # other bytes, the same size
            video.write_bytes(bytes(changed))
            os.utime(video, (later + 60, later + 60))
            res = client.get(hits[0]["image_url"])
            assert res.status_code == 409 and "changed since ingest" in res.json()["detail"]


def lib_frame_reference(base: Path) -> np.ndarray:
    from assetrag.video import frame_at

    return np.asarray(frame_at(base / "roots" / "library" / "campaign" / "lunar.webm", 2.0))


@pytest.fixture(scope="module")
def live_server(video_served) -> Iterator[str]:
    lib, base = video_served
    app = create_app(lib, server_config(base, api_token=TOKEN))
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.browser
def test_the_result_card_plays_the_video_from_the_hit(live_server):
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS, REQUIRE_BROWSER_ENV, chromium_missing, open_app, search

    chromium_missing(os.environ.get(REQUIRE_BROWSER_ENV) == "1")  # skip locally, a failure in CI

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(base_url=live_server).new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        open_app(page)
        search(page, "a rocket")
        card = page.locator("#results .asset").first
        assert card.locator(".asset-name").inner_text() == "lunar.webm @ 2.0s"
        play = card.locator(".play")
        assert play.get_attribute("data-href").split("#")[1] == "t=2"
        play.click()
        page.wait_for_selector("#player[open] video")
        # the browser seeks to the media fragment's time once it has the metadata (fetched by Range)
        page.wait_for_function("() => { const v = document.querySelector('#player video'); return v.readyState >= 1; }")
        start = page.eval_on_selector("#player video", "v => v.currentTime")
        assert 1.9 <= start <= 4.0, start
        assert page.locator("#results .asset").count() >= 1
        browser.close()
        assert errors == [], errors


def test_the_api_filters_by_media_like_the_cli(tmp_path, photo_arrays, offline_embedder):
    """`media=image|video_frame` on text search, image search and browsing (the CLI's --media)."""
    root = tmp_path / "roots" / "library"
    make_video(root / "films" / "promo.mp4", [photo_arrays["cat"], photo_arrays["rocket"]])
    (root / "stills").mkdir(parents=True)
    Image.fromarray(photo_arrays["rocket"]).save(root / "stills" / "rocket.jpg")
    with Library(tmp_path / "lib.db", library="assets", embedder=offline_embedder) as lib:
        assert lib.ingest(root).keyframes == 2
        with TestClient(create_app(lib, server_config(tmp_path))) as client:
            for media, expected in (("image", {"image"}), ("video_frame", {"video_frame"}), (None, None)):
                params = {"q": "a rocket", "limit": 10, "mode": "vector", **({"media": media} if media else {})}
                hits = client.get("/api/search", params=params).json()["items"]
                assert {h["media"] for h in hits} == (expected or {"image", "video_frame"}), hits
                browsed = client.get("/api/assets", params={"media": media} if media else {}).json()
                assert browsed["total"] == {"image": 1, "video_frame": 2, None: 3}[media]
            with (root / "stills" / "rocket.jpg").open("rb") as fh:
                by_image = client.post("/api/search", files={"image": fh}, data={"media": "video_frame"}).json()
            assert {h["media"] for h in by_image["items"]} == {"video_frame"}
            assert client.get("/api/search", params={"q": "a rocket", "media": "audio"}).status_code == 422
