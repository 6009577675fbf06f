"""Never lose a library, never serve what was not ingested (issue #12), through the API: a refused prune job,
the file-swap 409, decompression bombs in uploads and image queries, the bounded thumbnail cache."""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from server_support import build_photo_tree, jpeg_bytes, server_config, wait_job

from assetrag.server.thumbs import Thumbnails


def _library_app(make_library, app_client, tmp_path, photo_arrays):
    root = build_photo_tree(tmp_path / "roots" / "library", photo_arrays)
    lib = make_library()
    lib.ingest(root)
    return lib, root, app_client(lib, server_config(tmp_path))


# -- prune ---------------------------------------------------------------------------------------------------


def test_an_api_prune_of_an_emptied_folder_is_refused(make_library, app_client, tmp_path, photo_arrays):
    lib, root, c = _library_app(make_library, app_client, tmp_path, photo_arrays)
    away = tmp_path / "away"
    shutil.move(root, away)
    root.mkdir()  # the mount point is there, the share is not
    r = c.post("/api/ingest", json={"path": "library", "prune": True})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"])
    assert job["status"] == "failed" and "holds no images" in job["error"] and "force" in job["error"]
    assert str(tmp_path) not in job["error"] and "library holds no images" in job["error"]  # relative to the root
    assert job["result"]["refused"] and job["result"]["pruned"] == 0
    assert lib.count() == 5

    # a prune over the limit: refused, but the new file is ingested all the same
    shutil.rmtree(root)
    shutil.move(away, root)
    shutil.rmtree(root / "people")
    (root / "new").mkdir()
    (root / "new" / "small-cat.jpg").write_bytes(jpeg_bytes(photo_arrays["cat"][::2, ::2]))
    job = wait_job(c, c.post("/api/ingest", json={"path": "library", "prune": True}).json()["id"])
    assert job["status"] == "failed" and "2 of 5" in job["error"]
    assert job["result"]["added"] == 1 and lib.count() == 6

    job = wait_job(c, c.post("/api/ingest", json={"path": "library", "prune": True, "dry_run": True}).json()["id"])
    assert job["status"] == "failed" and job["result"]["would_prune"] == []  # still over the limit
    body = {"path": "library", "prune": True, "dry_run": True, "max_delete": "2"}
    job = wait_job(c, c.post("/api/ingest", json=body).json()["id"])
    assert job["status"] == "done" and sorted(job["result"]["would_prune"]) == [
        "library/people/astronaut.jpg",
        "library/people/camera.jpg",
    ]
    assert lib.count() == 6
    job = wait_job(c, c.post("/api/ingest", json={"path": "library", "prune": True, "force": True}).json()["id"])
    assert job["status"] == "done" and job["result"]["pruned"] == 2 and lib.count() == 4
    assert c.post("/api/ingest", json={"path": "library", "max_delete": "a lot"}).status_code == 422


# -- serve only what was ingested ------------------------------------------------------------------------------


def _swap_for_hard_link(target: Path, source: Path) -> None:
    tmp = target.with_name(".swap")
    os.link(source, tmp)
    os.replace(tmp, target)


def test_a_file_swapped_for_a_hard_link_is_409(make_library, app_client, tmp_path, photo_arrays):
    lib, root, c = _library_app(make_library, app_client, tmp_path, photo_arrays)
    cat = root / "animals" / "cats" / "cat.jpg"
    hit = lib.search("a cat", k=1, where=f'path == "{cat}"')[0]
    original = cat.read_bytes()
    assert c.get(f"/api/assets/{hit.id}/image").content == original
    assert c.get(f"/api/assets/{hit.id}/thumb").status_code == 200  # cached now

    secret = Path("/etc/passwd")
    try:
        _swap_for_hard_link(cat, secret)
    except OSError:  # another file system, or protected hard links: a secret of our own, outside the roots
        secret = tmp_path / "secret.txt"
        secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
        _swap_for_hard_link(cat, secret)
    assert cat.read_bytes() == secret.read_bytes()
    for route in ("image", "thumb"):
        r = c.get(f"/api/assets/{hit.id}/{route}")
        assert r.status_code == 409, (route, r.status_code)
        assert "changed since ingest" in r.json()["detail"] and "re-ingest" in r.json()["detail"]
        assert secret.read_bytes()[:20] not in r.content
    assert c.get(f"/api/assets/{hit.id}").json()["file_available"] is False

    # other bytes of the very same size (only the hash can tell)
    same_size = bytearray(original)
    same_size[len(same_size) // 2] ^= 0xFF
    cat.unlink()
    cat.write_bytes(bytes(same_size))
    assert c.get(f"/api/assets/{hit.id}/image").status_code == 409

    # the ingested bytes again, with a new mtime (touched, restored from a backup): served
    cat.write_bytes(original)
    later = time.time() + 60
    os.utime(cat, (later, later))
    r = c.get(f"/api/assets/{hit.id}/image")
    assert r.status_code == 200 and r.content == original
    assert c.get(f"/api/assets/{hit.id}/thumb").status_code == 200


# -- bombs and bad images ----------------------------------------------------------------------------------------


def _png_bomb(side: int) -> bytes:
    """A 1-bit side×side PNG of zeros: ~109 kB for 30000×30000 (900 million pixels)."""
    raw = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    data = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {"error": _png_bomb(30000), "warning": _png_bomb(10000)}  # Pillow: error over 2× its limit, else warns


def test_a_bomb_upload_is_refused_and_the_good_file_is_ingested(
    make_library, app_client, tmp_path, photo_arrays, bombs
):
    config = server_config(tmp_path)
    lib = make_library()
    c = app_client(lib, config)
    assert len(bombs["error"]) < 200_000
    rocket = jpeg_bytes(photo_arrays["rocket"])
    files = [
        ("files", ("bomb.png", bombs["error"], "image/png")),
        ("files", ("rocket.jpg", rocket, "image/jpeg")),
        ("files", ("warn.png", bombs["warning"], "image/png")),
    ]
    r = c.post("/api/ingest/uploads", files=files)
    assert r.status_code == 422, r.text
    body = r.json()
    assert [x["name"] for x in body["rejected"]] == ["bomb.png", "warn.png"]
    assert all("decompression bomb" in x["reason"] for x in body["rejected"])
    assert [s["name"] for s in body["saved"]] == ["rocket.jpg"]
    job = wait_job(c, body["job"]["id"])
    assert job["status"] == "done" and job["result"]["added"] == 1 and lib.count() == 1
    kept = sorted(p.name for p in config.upload_dir.rglob("*") if p.is_file())
    assert kept == ["rocket.jpg"]  # nothing saved but not ingested

    r = c.post("/api/ingest/uploads", files=[("files", ("bomb.png", bombs["error"], "image/png"))])
    assert r.status_code == 415 and "decompression bomb" in r.json()["detail"]


@pytest.mark.parametrize("kind", ["error", "warning", "truncated", "unsupported"])
def test_a_bad_query_image_is_4xx_with_the_reason(client, bombs, photo_arrays, kind):
    data = {
        "error": bombs["error"],
        "warning": bombs["warning"],
        "truncated": jpeg_bytes(photo_arrays["camera"], quality=50)[:3000],
        "unsupported": b"GIF89a" + b"\x00" * 40,
    }[kind]
    r = client.post("/api/search", files={"image": ("q.png", data, "image/png")})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["detail"].startswith("q.png: ")
    reason = {"error": "decompression bomb", "warning": "decompression bomb", "truncated": "truncated"}
    assert reason.get(kind, "") in r.json()["detail"]


# -- the thumbnail cache is bounded ------------------------------------------------------------------------------


def test_thumbnail_cache_evicts_the_least_recently_used(tmp_path, photo_arrays):
    picture = tmp_path / "cat.png"  # one picture under four ids: thumbnails of one size
    Image.fromarray(photo_arrays["cat"]).save(picture)
    sources = dict.fromkeys(("cat", "coffee", "rocket", "astronaut"), picture)
    ids = {name: f"{i:02d}" + "a" * 62 for i, name in enumerate(sources)}
    probe = Thumbnails(tmp_path / "probe")
    one = probe.get(ids["cat"], sources["cat"], 256).stat().st_size
    thumbs = Thumbnails(tmp_path / "thumbs", max_bytes=int(one * 2.6))  # room for about two
    made = {}
    for name in ("cat", "coffee"):
        made[name] = thumbs.get(ids[name], sources[name], 256)
    thumbs.get(ids["cat"], sources["cat"], 256)  # cat used again: coffee is now the least recently used
    made["rocket"] = thumbs.get(ids["rocket"], sources["rocket"], 256)
    assert made["cat"].exists() and made["rocket"].exists() and not made["coffee"].exists()
    assert thumbs.bytes <= thumbs.max_bytes
    assert sum(p.stat().st_size for p in (tmp_path / "thumbs").rglob("*.jpg")) <= thumbs.max_bytes

    again = Thumbnails(tmp_path / "thumbs", max_bytes=thumbs.max_bytes)  # a restart: the bound still holds
    made["astronaut"] = again.get(ids["astronaut"], sources["astronaut"], 256)
    assert made["astronaut"].exists() and again.bytes <= again.max_bytes
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 2


def test_thumb_cache_size_comes_from_the_environment(monkeypatch):
    from assetrag.server import ServerConfig

    monkeypatch.setenv("ASSETRAG_THUMB_CACHE_MB", "3")
    assert ServerConfig.from_env().thumb_cache_bytes == 3 * 1024 * 1024
    monkeypatch.delenv("ASSETRAG_THUMB_CACHE_MB")
    assert ServerConfig.from_env().thumb_cache_bytes == 256 * 1024 * 1024


def test_the_sha256_of_a_touched_file_is_computed_once_per_change(tmp_path, monkeypatch):
    """Same size, another mtime: hashed to compare with the asset id, and the answer remembered by (path,
    size, mtime) — a second request does not read the file again; a new change is hashed anew."""
    import hashlib

    from assetrag.server import security

    path = tmp_path / "a.jpg"
    path.write_bytes(b"ingested bytes")
    asset_id = hashlib.sha256(b"ingested bytes").hexdigest()
    st = path.stat()
    hashed = []
    real = security._sha256_file
    monkeypatch.setattr(security, "_sha256_file", lambda p: hashed.append(p) or real(p))
    check = security.IngestedCheck()
    assert check.same(path, asset_id, st.st_size, st.st_mtime_ns) and hashed == []  # as stored: no hash
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    assert check.same(path, asset_id, st.st_size, st.st_mtime_ns) and len(hashed) == 1
    assert check.same(path, asset_id, st.st_size, st.st_mtime_ns) and len(hashed) == 1  # remembered
    path.write_bytes(b"ingested bytez")  # other bytes, the same size, a new mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    assert not check.same(path, asset_id, st.st_size, st.st_mtime_ns) and len(hashed) == 2
    assert not check.same(path, asset_id, st.st_size, st.st_mtime_ns) and len(hashed) == 2
    assert not check.same(path, asset_id, st.st_size + 1, st.st_mtime_ns) and len(hashed) == 2  # size: no hash
    small = security.IngestedCheck(max_entries=1)  # bounded: the oldest answer goes first
    small.same(path, asset_id, st.st_size, None)
    (tmp_path / "b.jpg").write_bytes(b"ingested bytes")
    small.same(tmp_path / "b.jpg", asset_id, st.st_size, None)
    assert len(small._hashes) == 1 and len(hashed) == 4
