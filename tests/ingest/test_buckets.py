"""Archives in object storage (issue #14): `assetrag ingest s3://bucket/prefix` against a real S3-protocol
server (moto's server mode on 127.0.0.1) through the real s3fs/boto clients; real offline model, real Milvus.

Incremental by size + LastModified (a re-run reads no object), moves inside a bucket are path updates, prune
follows the local rules, hits carry s3:// paths, the server streams thumbnails and originals of s3 assets
only under a configured bucket root."""

from __future__ import annotations

import os
import uuid

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from buckets_support import S3Server

PHOTOS = 5  # the `photo_dir` library


@pytest.fixture(scope="module")
def s3_server():
    server = S3Server()
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ASSETRAG_S3_ENDPOINT")}
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "ASSETRAG_S3_ENDPOINT": server.endpoint}
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture
def bucket(s3_server, photo_dir):
    """A fresh bucket holding the photo library under `archive/`; its name."""
    name = f"assets-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=name)
    s3_server.upload_tree(name, "archive", photo_dir)
    return name


def _paths(lib) -> set[str]:
    return {p for row in lib.iterate(("paths",)) for p in row["paths"]}


def test_ingest_from_s3_then_rerun_reads_nothing(make_library, bucket, photo_dir):
    lib = make_library()
    root = f"s3://{bucket}/archive"
    report = lib.ingest(root)
    assert report.errors == [] and report.added == PHOTOS and report.decoded == PHOTOS
    assert _paths(lib) == {f"{root}/{p.relative_to(photo_dir).as_posix()}" for p in photo_dir.rglob("*.jpg")}
    local = make_library("local")
    local.ingest(photo_dir)
    assert {r["id"] for r in lib.iterate(("id",))} == {r["id"] for r in local.iterate(("id",))}  # sha256 of bytes
    cat = lib.get(next(r["id"] for r in lib.iterate(("id", "path")) if r["path"].endswith("cat.jpg")))
    assert cat.collection == "animals" and "cats" in cat.tags and cat.metadata.get("etag")

    again = lib.ingest(root + "/")
    assert again.unchanged == PHOTOS and again.decoded == 0 and again.added == 0 and again.updated == 0

    hits = lib.search("a cat", k=1)
    assert hits[0].path == f"{root}/animals/cats/cat.jpg"


def test_a_moved_object_is_a_path_update(make_library, bucket, s3_server):
    lib = make_library()
    root = f"s3://{bucket}/archive"
    lib.ingest(root)
    s3 = s3_server.client()
    s3.copy_object(Bucket=bucket, Key="archive/moved/cat.jpg", CopySource=f"{bucket}/archive/animals/cats/cat.jpg")
    s3.delete_object(Bucket=bucket, Key="archive/animals/cats/cat.jpg")
    report = lib.ingest(root)
    assert report.decoded == 0 and report.added == 0 and report.updated == 1 and lib.count() == PHOTOS
    paths = _paths(lib)
    assert f"{root}/moved/cat.jpg" in paths and f"{root}/animals/cats/cat.jpg" not in paths


def test_prune_follows_the_local_rules(make_library, bucket, s3_server, tmp_path):
    lib = make_library()
    root = f"s3://{bucket}/archive"
    lib.ingest(root)
    # a prefix with nothing under it (a typo, a bucket emptied by mistake) is refused
    empty = lib.ingest(f"s3://{bucket}/archive-typo", prune=True)
    assert empty.pruned == 0 and empty.refused == []  # nothing stored under it: nothing to refuse
    s3 = s3_server.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="archive/")["Contents"]]
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)
    report = lib.ingest(root, prune=True, max_delete="100%")
    assert report.pruned == 0 and lib.count() == PHOTOS
    assert len(report.refused) == 1 and root in report.refused[0] and "--force" in report.refused[0]
    # one object deleted under a listed prefix: pruned
    s3_server.client().put_object(Bucket=bucket, Key="archive/keep.txt", Body=b"not an image")
    lib2 = make_library("two")
    s3_server.upload_tree(bucket, "again", _two_pictures(tmp_path / "two"))
    lib2.ingest(f"s3://{bucket}/again")
    s3.delete_object(Bucket=bucket, Key="again/b.png")
    pruned = lib2.ingest(f"s3://{bucket}/again", prune=True, max_delete="100%")
    assert pruned.refused == [] and pruned.pruned == 1 and lib2.count() == 1


def _two_pictures(folder):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "b.png")
    return folder


def test_a_missing_extra_names_the_install(monkeypatch):
    import builtins

    from assetrag import objects
    from assetrag.errors import ConfigError

    real_import = builtins.__import__

    def no_gcsfs(name, *a, **kw):
        if name == "gcsfs" or name.startswith("gcsfs."):
            raise ImportError("No module named 'gcsfs'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_gcsfs)
    monkeypatch.setattr(objects, "_filesystems", {})
    with pytest.raises(ConfigError, match=r"pip install 'assetrag\[gcs\]'"):
        objects.filesystem("gs://bucket/x.jpg")


def test_the_server_streams_s3_assets_only_under_a_configured_bucket(make_library, bucket, tmp_path, photo_dir):
    from fastapi.testclient import TestClient
    from PIL import Image

    from assetrag.server import ServerConfig, create_app

    lib = make_library()
    root = f"s3://{bucket}/archive"
    lib.ingest(root)
    cat = next(r["id"] for r in lib.iterate(("id", "path")) if r["path"].endswith("cat.jpg"))
    config = ServerConfig(upload_dir=tmp_path / "up", cache_dir=tmp_path / "cache")
    with TestClient(create_app(lib, config)) as c:  # no bucket configured: nothing is served from one
        assert c.get(f"/api/assets/{cat}/thumb").status_code == 404
    with TestClient(create_app(lib, ServerConfig(**{**config.__dict__, "buckets": (root,)}))) as c:
        thumb = c.get(f"/api/assets/{cat}/thumb?size=256")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        import io

        assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256
        original = c.get(f"/api/assets/{cat}/image")
        assert original.status_code == 200
        assert original.content == (photo_dir / "animals" / "cats" / "cat.jpg").read_bytes()


def test_generation_references_and_contact_sheets_read_objects(make_library, bucket, tmp_path):
    from assetrag.generation.types import Reference
    from assetrag.render import SheetTile, render_contact_sheet

    lib = make_library()
    url = f"s3://{bucket}/archive/animals/cats/cat.jpg"
    ref = Reference.from_path(url)
    assert ref.id and ref.image.size[0] > 0
    from assetrag.objects import load_image

    sheet = render_contact_sheet("cat", [SheetTile(load_image(url, 512), "cat", 1.0)], tmp_path / "sheet.png")
    assert sheet.is_file()
    del lib
