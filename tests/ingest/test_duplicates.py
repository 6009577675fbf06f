"""Duplicates that mean something: exact copies, near-duplicates by perceptual hash, calibrated look-alikes."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

from assetrag.decode import hash_distance, perceptual_hash
from assetrag.library import DUPLICATE_COSINE, NEAR_DUPLICATE_DISTANCE
from assetrag.store import SCALAR_FIELDS
from assetrag.store.schema import MEDIA_VIDEO_FRAME

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "library"
LOOK_ALIKE_NOISE = [  # distinct things the offline model puts at cosine > 0.95
    ("footwear/high-heel-pump-red.png", "footwear/hiking-boot-leather.png"),
    ("accessories/charms/teddy-bear-with-bow.png", "fashion/woman-in-green-dress.png"),
]


def _copies(photo_arrays, root: Path) -> dict[str, Path]:
    """An original photo and real copies of it, plus distinct images."""
    root.mkdir(parents=True)
    original = Image.fromarray(photo_arrays["astronaut"])
    files = {"original": root / "astronaut.png"}
    original.save(files["original"])
    files["resized"] = root / "astronaut-small.jpg"
    original.resize((256, 256), Image.Resampling.LANCZOS).save(files["resized"], quality=85)
    files["reencoded"] = root / "astronaut-q25.jpg"
    original.save(files["reencoded"], quality=25)
    w, h = original.size
    files["cropped"] = root / "astronaut-crop.png"
    original.crop((w // 40, h // 40, w - w // 40, h - h // 40)).save(files["cropped"])
    marked = original.copy()
    ImageDraw.Draw(marked).rectangle((w - 140, h - 40, w - 10, h - 10), fill=(255, 255, 255))
    ImageDraw.Draw(marked).text((w - 130, h - 32), "© 2025", fill=(200, 0, 0))
    files["overlay"] = root / "astronaut-logo.jpg"
    marked.save(files["overlay"], quality=90)
    files["byte copy"] = root / "copy" / "astronaut.png"
    files["byte copy"].parent.mkdir()
    shutil.copy(files["original"], files["byte copy"])
    for name in ("cat", "coffee", "rocket"):
        files[name] = root / f"{name}.jpg"
        Image.fromarray(photo_arrays[name]).save(files[name], quality=90)
    for a, b in LOOK_ALIKE_NOISE:
        for rel in (a, b):
            shutil.copy(SAMPLES / rel, root / Path(rel).name)
    return files


def test_near_duplicates_are_grouped_by_hash_and_noise_is_not(make_library, tmp_path, photo_arrays):
    files = _copies(photo_arrays, tmp_path / "lib")
    lib = make_library()
    lib.ingest(tmp_path / "lib")
    found = lib.duplicates()
    assert found["not_hashed"] == 0 and found["distance"] == NEAR_DUPLICATE_DISTANCE
    assert [sorted(g["paths"]) for g in found["exact"]] == [sorted([str(files["original"]), str(files["byte copy"])])]
    assert len(found["near"]) == 1
    group = found["near"][0]
    copies = {str(files[k]) for k in ("original", "resized", "reencoded", "cropped", "overlay")}
    assert {m["path"] for m in group["members"]} == copies
    assert group["members"][0]["distance"] == 0 and all(
        0 <= m["distance"] <= NEAR_DUPLICATE_DISTANCE for m in group["members"]
    )
    # the offline model's look-alike noise (pump ~ boot, teddy bear ~ woman in a green dress) is no group
    assert lib.embedder.name not in DUPLICATE_COSINE  # calibrated: no threshold makes its look-alikes precise
    assert found["threshold"] is None and found["similar"] == [] and "no embedding threshold" in found["similar_note"]
    grouped = {Path(m["path"]).name for g in found["near"] + found["similar"] for m in g["members"]}
    for a, b in LOOK_ALIKE_NOISE:
        assert not {Path(a).name, Path(b).name} & grouped
    # ... which a fixed 0.95 would have called duplicates
    loose = lib.duplicates(threshold=0.95)
    loose_names = [{Path(m["path"]).name for m in g["members"]} for g in loose["similar"]]
    assert any({Path(a).name, Path(b).name} <= names for a, b in LOOK_ALIKE_NOISE for names in loose_names)
    assert lib.duplicates(embedding=False)["similar"] == []


def test_the_hash_is_the_same_on_every_ingest_path(make_library, tmp_path, photo_arrays):
    files = _copies(photo_arrays, tmp_path / "lib")
    simple, fast = make_library("simple"), make_library("fast")
    simple.ingest(tmp_path / "lib", pipeline="simple")
    fast.ingest(tmp_path / "lib", pipeline="fast")
    a = {r["path"]: r["phash"] for r in simple.iterate(("path", "phash"))}
    b = {r["path"]: r["phash"] for r in fast.iterate(("path", "phash"))}
    assert set(a) == set(b) and all(len(h) == 16 for h in a.values())
    assert all(hash_distance(a[p], b[p]) <= 2 for p in a)
    # add_file (how generated images come back) hashes too
    data = io.BytesIO()
    Image.open(files["cat"]).save(data, format="PNG")
    out = tmp_path / "generated.png"
    out.write_bytes(data.getvalue())
    asset = simple.add_image(out, collection="synthetic", source="synthetic")
    stored = next(r for r in simple.iterate(("id", "phash")) if r["id"] == asset)
    assert hash_distance(stored["phash"], perceptual_hash(Image.open(files["cat"]))) <= 2


def test_assets_stored_before_hashes_are_reported_then_rehashed(make_library, tmp_path, photo_arrays):
    _copies(photo_arrays, tmp_path / "lib")
    lib = make_library()
    lib.ingest(tmp_path / "lib")
    rows = lib.store.get([r["id"] for r in lib.iterate(("id",))], (*SCALAR_FIELDS, "vector"))
    for row in rows:  # as a library of schema 1 reads after its migration
        row["phash"] = ""
    lib.store.upsert(rows)
    found = lib.duplicates(embedding=False)
    assert found["not_hashed"] == len(rows) and found["near"] == []
    again = lib.duplicates(embedding=False, rehash=True)
    assert again["rehashed"] == len(rows) and again["not_hashed"] == 0 and len(again["near"]) == 1


def test_video_keyframes_are_not_reported_unhashed_nor_read_by_rehash(
    make_library, tmp_path, photo_arrays, monkeypatch
):
    """A keyframe has no perceptual hash by design: `duplicates` does not count it as "stored before hashes
    existed" (and send the user to --rehash, every time), and --rehash does not read the video as an image."""
    from fakes.videos import make_video

    make_video(tmp_path / "lib" / "films" / "promo.mp4", [photo_arrays["cat"], photo_arrays["rocket"]])
    Image.fromarray(photo_arrays["coffee"]).save(tmp_path / "lib" / "coffee.jpg")
    lib = make_library()
    assert lib.ingest(tmp_path / "lib").keyframes == 2
    found = lib.duplicates(embedding=False)
    assert found["not_hashed"] == 0
    read: list[str] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real(self))
    again = lib.duplicates(embedding=False, rehash=True)
    assert again["rehashed"] == 0 and again["not_hashed"] == 0 and "promo.mp4" not in read
    assert all(r["media"] == MEDIA_VIDEO_FRAME for r in lib.iterate(("phash", "media")) if not r["phash"])
