"""Files are served and read only from inside the allowed folders: every escape attempt is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import build_photo_tree, jpeg_bytes, server_config

from assetrag.store import SCALAR_FIELDS

SECRET_TEXT = "TOP-SECRET-CONTENTS"


@pytest.fixture(scope="module")
def outside(tmp_path_factory, photo_arrays) -> Path:
    """A folder outside every root, holding a real image and a text file an attacker would want."""
    out = tmp_path_factory.mktemp("outside")
    (out / "secret.txt").write_text(SECRET_TEXT)
    (out / "private.jpg").write_bytes(jpeg_bytes(photo_arrays["camera"][::-1]))
    return out


def _refused(r) -> None:
    assert r.status_code in (400, 403, 404, 422), (r.request.url, r.status_code, r.text[:200])
    assert SECRET_TEXT not in r.text and "root:" not in r.text and "[project]" not in r.text


# -- URL paths ----------------------------------------------------------------------------------------

STATIC_ESCAPES = [
    "/static/../../pyproject.toml",
    "/static/..%2f..%2fpyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/%252e%252e%252f%252e%252e%252fpyproject.toml",  # double-encoded
    "/static/..%5c..%5cpyproject.toml",  # backslashes
    "/static/..\\..\\pyproject.toml",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/app.js%00.png",
    "/static/__init__.py",
]


@pytest.mark.parametrize("url", STATIC_ESCAPES)
def test_static_files_cannot_escape_the_web_folder(client, url):
    r = client.get(url)
    _refused(r)


ASSET_ID_ESCAPES = [
    "/api/assets/..%2f..%2f..%2fetc%2fpasswd/image",
    "/api/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd/thumb",
    "/api/assets/%252e%252e%252fetc%252fpasswd/image",
    "/api/assets/..%5c..%5cetc%5cpasswd/image",
    "/api/assets/%2fetc%2fpasswd/image",
    "/api/assets/etc/passwd/image",
    "/api/assets/not-hex/image",
    "/api/assets/" + "A" * 64 + "/image",  # ids are lowercase hex
    "/api/assets/" + "g" * 64 + "/thumb",
    "/api/assets/" + "a" * 63 + "/image",
    "/api/assets/" + "a" * 64 + "%00/image",
    "/api/assets/..%2f" + "a" * 60 + "/similar",
    "/api/generate/..%2f..%2fetc%2fpasswd/image",
    "/api/generate/" + "0" * 31 + "g/image",
]


@pytest.mark.parametrize("url", ASSET_ID_ESCAPES)
def test_asset_ids_that_are_not_hex_are_refused(client, url):
    _refused(client.get(url))


def _raw_get(app, raw_path: str) -> tuple[int, bytes]:
    """GET `raw_path` exactly as written: an HTTP client would normalise the '..' away before sending."""
    import asyncio
    from urllib.parse import unquote

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "raw",
    [
        "/static/../../pyproject.toml",
        "/static/../__init__.py",
        "/static/..%2F..%2Fpyproject.toml",
        "/api/assets/../../../etc/passwd/image",
        "/api/assets/..%2F..%2F..%2Fetc%2Fpasswd/image",
        "/../../../../etc/passwd",
    ],
)
def test_raw_request_paths_are_refused(client, raw):
    status, body = _raw_get(client.app, raw)
    assert status in (400, 404), (raw, status)
    assert b"[project]" not in body and b"root:" not in body and b"import" not in body


# -- folders given to ingest --------------------------------------------------------------------------


def test_ingest_paths_outside_the_roots_are_refused(client, photo_root, outside, served):
    root = served[1] / "roots"
    (root / "escape").unlink(missing_ok=True)
    os.symlink(outside, root / "escape")  # a link inside the root to a folder outside it
    bad = [
        "../",
        "..",
        str(root / ".."),
        str(root / "library" / ".." / ".." / ".."),
        "library/../../",
        "%2e%2e%2f",
        "%2e%2e/%2e%2e",
        "%252e%252e%252f",
        "..%2f..%2fetc",
        "..\\..\\etc",
        "library\\..\\..",
        "/etc",
        "/",
        str(outside),
        str(root / "escape"),
        "escape",
        "escape/private.jpg",
        "~",
        "~/.ssh",
        "library\x00/etc",
        "",
        "   ",
    ]
    before = len(client.get("/api/jobs", params={"limit": 200}).json()["items"])
    for path in bad:
        r = client.post("/api/ingest", json={"path": path})
        assert r.status_code in (400, 403, 404), (path, r.status_code, r.text)
    assert len(client.get("/api/jobs", params={"limit": 200}).json()["items"]) == before  # no job started
    (root / "escape").unlink()


# -- symlinks and stored paths when serving -------------------------------------------------------------


@pytest.mark.parametrize("with_roots", [True, False], ids=["configured-roots", "own-folder"])
def test_a_symlink_out_of_the_root_is_not_served(make_library, app_client, tmp_path, photo_arrays, outside, with_roots):
    lib_root = build_photo_tree(tmp_path / "roots" / "library", photo_arrays)
    link = lib_root / "people" / "leak.jpg"
    os.symlink(outside / "private.jpg", link)  # ingest follows symlinked files out of the root when asked …
    lib = make_library()
    report = lib.ingest(lib_root, follow_symlinks=True)
    assert report.added == 6
    config = server_config(tmp_path) if with_roots else server_config(tmp_path, roots=())
    c = app_client(lib, config)
    hits = c.get("/api/assets", params={"limit": 50}).json()["items"]
    leak = next(h for h in hits if h["filename"] == "leak.jpg")
    normal = next(h for h in hits if h["filename"] == "cat.jpg")
    # … but the server never serves what the link points at
    assert c.get(leak["image_url"]).status_code == 404
    assert c.get(leak["thumb_url"]).status_code == 404
    assert c.get(f"/api/assets/{leak['id']}").json()["file_available"] is False
    assert c.get(normal["image_url"]).status_code == 200


def test_tampered_stored_paths_are_not_served(make_library, app_client, tmp_path, photo_dir, outside):
    """Even a store whose rows point elsewhere (absolute paths out of the roots, relative paths, non-image
    files) cannot make the server read them."""
    lib = make_library()
    lib.ingest(photo_dir)
    c: TestClient = app_client(lib, server_config(tmp_path, roots=(photo_dir,)))
    first_id = lib.store.query("", ("id",), limit=1)[0]["id"]
    row = lib.store.get([first_id], (*SCALAR_FIELDS, "vector"))[0]
    for evil in [
        str(outside / "private.jpg"),
        str(outside / "secret.txt"),
        "/etc/passwd",
        str(photo_dir / ".." / ".." / "outside" / "private.jpg"),
        "relative/cat.jpg",
        str(photo_dir / "animals" / "cats" / ".." / ".." / ".." / "secret.txt"),
    ]:
        row.update(path=evil, paths=[evil])
        lib.store.upsert([row])
        _refused(c.get(f"/api/assets/{row['id']}/image"))
        _refused(c.get(f"/api/assets/{row['id']}/thumb", params={"size": 512}))


def test_upload_file_names_cannot_escape_the_upload_folder(make_library, app_client, tmp_path, photo_arrays):
    config = server_config(tmp_path)
    c = app_client(make_library(), config)
    names = ["../../evil.jpg", "..\\..\\evil2.jpg", "/etc/evil3.jpg", "%2e%2e%2fevil4.jpg", ".htaccess.jpg"]
    coffee = photo_arrays["coffee"]
    files = [("files", (n, jpeg_bytes(coffee, quality=70 + i), "image/jpeg")) for i, n in enumerate(names)]
    # the collection becomes a folder name too
    r = c.post("/api/ingest/uploads", files=files, data={"collection": "../../../etc"})
    assert r.status_code == 202, r.text
    upload_dir = config.upload_dir.resolve()
    for saved in r.json()["saved"]:
        path = Path(saved["path"])
        assert path.parent == upload_dir / "etc", path
        assert not path.name.startswith(".")
    assert not (tmp_path / "evil.jpg").exists() and not Path("/etc/evil3.jpg").exists()
