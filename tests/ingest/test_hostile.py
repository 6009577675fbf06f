"""Hostile files: a generated corpus of 30 kinds of broken, odd or dangerous files beside good photos.

Each file is either ingested correctly (right size, searchable) or reported with its reason; the run finishes;
the good photos are all searchable afterwards. (tests/test_decode.py covers decoding of single odd images and
tests/test_ingest.py a first handful of bad files; this is the whole zoo at once, through the real CLI.)

Unreadable files: root reads anything, so chmod 000 alone proves nothing when the tests run as root (CI). The
CLI run here drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its capability bounding set before exec'ing
`python -m assetrag.cli ingest` — a root process without them obeys file modes like anyone else. (Other ways
and why not: a FIFO is a different hazard — it would block a plain read forever — and is its own kind here; a
directory named x.jpg is never read at all; dropping to `nobody` would also lose access to the store and the
model cache.)
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

OK = "ok"  # must be ingested (stored with these dimensions, when given)
BAD = "bad"  # must be reported, its reason containing one of the words given
EITHER = "either"  # ingested or reported, both are right (e.g. a JPEG missing only its end marker)
SKIP = "skip"  # not an image file at all: neither stored nor reported

#: the good photos of `photo_dir` beside the hostile folder
LAYOUT_FILES = {"cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg", "camera.jpg"}


def _photo(w: int = 96, h: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _huge_png_header(w: int, h: int) -> bytes:
    """A valid-looking PNG whose header claims w×h pixels (a few hundred bytes on disk)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _jpeg_with_size(w: int, h: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is patched to claim w×h."""
    data = bytearray(_bytes(_photo(16, 16), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, h, w)
    return bytes(data)


def _bad_crc_png() -> bytes:
    data = bytearray(_bytes(_photo(32, 32, 3), "PNG"))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    data[idat + 4 + length] ^= 0xFF  # first byte of IDAT's CRC
    return bytes(data)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    return _bytes(_photo(120, 40, 5), "JPEG", exif=exif.tobytes(), quality=90)


def _corrupt_exif() -> bytes:
    good = _bytes(_photo(40, 40, 6), "JPEG", quality=90)
    app1 = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\xff\xff" + os.urandom(40)  # IFD offset far out of range
    return good[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + good[2:]


def _animated(fmt: str) -> bytes:
    frames = [_photo(48, 48, s) for s in (10, 11, 12)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def _gif_bomb() -> bytes:
    """A GIF whose logical screen and frame claim 60000×60000."""
    data = bytearray(_bytes(_photo(8, 8).convert("P"), "GIF"))
    struct.pack_into("<HH", data, 6, 60000, 60000)
    desc = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, desc + 5, 60000, 60000)
    return bytes(data)


#: name → (how to make it, expected outcome, reason words or (width, height))
Maker = Callable[[Path], None]


def _write(data: bytes) -> Maker:
    return lambda path: path.write_bytes(data)


def _corpus() -> dict[str, tuple[Maker, str, object]]:
    photo = _bytes(_photo(80, 60, 1), "JPEG", quality=90)
    png = _bytes(_photo(80, 60, 2), "PNG")
    kinds: dict[str, tuple[Maker, str, object]] = {
        "truncated.png": (_write(png[: len(png) // 2]), BAD, ("truncated", "corrupt")),
        "cut-at-70-percent.jpg": (_write(photo[: len(photo) * 7 // 10]), BAD, ("truncated", "corrupt")),
        "no-end-marker.jpg": (_write(photo[:-2]), EITHER, ("truncated", "corrupt")),
        "trailing-garbage.jpg": (_write(photo + os.urandom(3000)), OK, (80, 60)),
        "zero-bytes.png": (_write(b""), BAD, ("empty",)),
        "webpage-saved-as.png": (_write(b"<!doctype html><html><body>403</body></html>\n"), BAD, ("not an image",)),
        "random-noise.jpg": (_write(np.random.default_rng(0).bytes(200_000)), BAD, ("not an image",)),
        "huge-dimensions.png": (_write(_huge_png_header(100_000, 100_000)), BAD, ("safety limit", "bomb")),
        "huge-dimensions.jpg": (_write(_jpeg_with_size(65_000, 65_000)), BAD, ("safety limit", "bomb")),
        "bomb.gif": (_write(_gif_bomb()), BAD, ("safety limit", "bomb")),
        "bad-crc.png": (_write(_bad_crc_png()), EITHER, ("corrupt", "crc", "broken")),  # Pillow skips CRCs
        "cmyk.jpg": (_write(_bytes(_photo(50, 40, 3).convert("CMYK"), "JPEG")), OK, (50, 40)),
        "gray16.png": (
            _write(_bytes(Image.fromarray(np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)), "PNG")),
            OK,
            (64, 32),
        ),
        "palette-transparent.png": (
            _write(_bytes(_photo(40, 30, 4).convert("P"), "PNG", transparency=0)),
            OK,
            (40, 30),
        ),
        "gray-alpha.png": (_write(_bytes(_photo(30, 30, 7).convert("LA"), "PNG")), OK, (30, 30)),
        "one-bit.bmp": (_write(_bytes(_photo(33, 17, 8).convert("1"), "BMP")), OK, (33, 17)),
        "float32.tif": (
            _write(_bytes(Image.fromarray(np.random.default_rng(1).random((20, 24)).astype(np.float32)), "TIFF")),
            OK,
            (24, 20),
        ),
        "animated.gif": (_write(_animated("GIF")), OK, (48, 48)),
        "animated.webp": (_write(_animated("WEBP")), OK, (48, 48)),
        "lossless-alpha.webp": (_write(_bytes(_photo(36, 28, 9).convert("RGBA"), "WEBP", lossless=True)), OK, (36, 28)),
        "exif-rotated.jpg": (_write(_exif_rotated()), OK, (40, 120)),
        "corrupt-exif.jpg": (_write(_corrupt_exif()), EITHER, ("corrupt",)),
        "png-named.jpg": (_write(png), OK, (80, 60)),
        "one-pixel.png": (_write(_bytes(Image.new("RGB", (1, 1), "red"), "PNG")), OK, (1, 1)),
        "panorama-20000x3.png": (_write(_bytes(_photo(20000, 3, 11), "PNG")), OK, (20000, 3)),
        "large-6000x4000.jpg": (lambda p: Image.new("RGB", (6000, 4000), "teal").save(p, quality=70), OK, (6000, 4000)),
        'we"ird \\ name\nwith newline.jpg': (_write(_bytes(_photo(20, 20, 12), "JPEG")), OK, (20, 20)),
        ("L" * 200 + ".jpg"): (_write(_bytes(_photo(21, 21, 13), "JPEG")), OK, (21, 21)),
        "unreadable.jpg": (_unreadable(_bytes(_photo(22, 22, 14), "JPEG")), BAD, ("permission denied",)),
        "fifo.jpg": (lambda p: os.mkfifo(p), BAD, ("not a regular file",)),
        "dangling-loop-a.jpg": (lambda p: os.symlink(p.with_name("dangling-loop-b.jpg"), p), BAD, ("symbolic link",)),
        "dangling-loop-b.jpg": (lambda p: os.symlink(p.with_name("dangling-loop-a.jpg"), p), BAD, ("symbolic link",)),
        "folder-named.jpg": (_folder_with_image, SKIP, None),
        "broken-sidecar.jpg": (_with_broken_sidecar(_bytes(_photo(23, 23, 15), "JPEG")), OK, (23, 23)),
        "sparse-3GB.jpg": (lambda p: (p.write_bytes(b""), os.truncate(p, 3 << 30)), BAD, ("limit",)),
    }
    return kinds


def _unreadable(data: bytes) -> Maker:
    def make(path: Path) -> None:
        path.write_bytes(data)
        path.chmod(0)

    return make


def _folder_with_image(path: Path) -> None:
    path.mkdir()
    (path / "inside.jpg").write_bytes(_bytes(_photo(25, 25, 16), "JPEG"))


def _with_broken_sidecar(data: bytes) -> Maker:
    def make(path: Path) -> None:
        path.write_bytes(data)
        Path(str(path) + ".json").write_text('{"tags": ["oops",]')  # not JSON

    return make


#: runs the CLI without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so that root obeys file modes (see top)
_WITHOUT_DAC_CAPS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: out of the bounding set (exec keeps them out)
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
if libc.capget(ctypes.byref(header), data) != 0:
    raise OSError(ctypes.get_errno(), "capget")
mask = ~0b110 & 0xFFFFFFFF
data[0].effective &= mask; data[0].permitted &= mask; data[0].inheritable &= mask
if libc.capset(ctypes.byref(header), data) != 0:
    raise OSError(ctypes.get_errno(), "capset")
os.execv(sys.executable, [sys.executable, "-m", "assetrag.cli", *sys.argv[1:]])
"""


def _cli(*args: str, uri: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSETRAG_URI": str(uri), "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "2"}
    prefix = ["-c", _WITHOUT_DAC_CAPS] if os.geteuid() == 0 else ["-m", "assetrag.cli"]
    return subprocess.run([sys.executable, *prefix, *args], capture_output=True, text=True, env=env, timeout=600)


def test_hostile_corpus_is_ingested_or_explained_and_the_rest_stays_searchable(tmp_path, photo_dir, make_library):
    hostile = photo_dir / "hostile"
    hostile.mkdir()
    kinds = _corpus()
    for name, (make, _, _) in kinds.items():
        make(hostile / name)
    latin1 = os.path.join(os.fsencode(hostile), "caf\xe9-latin1.jpg".encode("latin-1"))
    with open(latin1, "wb") as fh:  # a file name that is not UTF-8 (bytes path)
        fh.write(_bytes(_photo(26, 26, 17), "JPEG"))
    assert len(kinds) + 1 >= 30  # the corpus itself; what matters is each file's outcome, counted below

    uri = tmp_path / "hostile.db"
    errors_file = tmp_path / "errors.json"
    res = _cli("ingest", str(photo_dir), "--errors", str(errors_file), "--json", uri=uri)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    report = json.loads(res.stdout)
    errors = json.loads(errors_file.read_text())
    assert len(errors) == len(report["errors"])
    reported: dict[str, str] = {}
    for e in errors:
        assert e["reason"].strip(), e
        reported[os.path.basename(e["path"])] = e["reason"]

    os.chmod(hostile / "unreadable.jpg", 0o644)  # let this (root) process tidy up later
    lib = make_library(uri=uri)
    stored = {os.path.basename(p): row for row in lib.store.iterate() for p in row["paths"]}
    for name, (_, expected, info) in kinds.items():
        if expected == SKIP:
            assert name not in stored and name not in reported, name
            continue
        in_store, why = name in stored, reported.get(name)
        assert in_store != (why is not None), f"{name}: stored={in_store}, reported={why!r}"
        if expected == OK:
            assert in_store, f"{name} should be ingested, was reported: {why}"
            assert (stored[name]["width"], stored[name]["height"]) == info, name
        elif expected == BAD or not in_store:
            assert why is not None, f"{name} should be reported, was stored"
            assert any(word in why.lower() for word in info), f"{name}: {why}"

    # the odd ones out: a folder named like an image is a folder; a bad sidecar is reported, its image kept
    assert "inside.jpg" in stored and "folder-named.jpg" in stored["inside.jpg"]["tags"]
    assert "sidecar metadata ignored" in reported["broken-sidecar.jpg.json"]
    assert "not valid UTF-8" in reported["caf\ufffd-latin1.jpg"]
    weird = 'we"ird \\ name\nwith newline.jpg'
    assert lib.search("a photo", k=1, where=f"filename == {json.dumps(weird)}")[0].filename == weird

    # the good photos are all there and found
    assert lib.search("a cat", k=1)[0].filename == "cat.jpg"
    assert lib.search("a rocket", k=1)[0].filename == "rocket.jpg"
    assert lib.search(image=photo_dir / "things" / "drinks" / "coffee.jpg", k=1)[0].filename == "coffee.jpg"
    assert report["added"] == len({row["id"] for row in stored.values()})

    # the outcomes, counted: exactly the files that should be stored are, exactly the others are reported
    expect = {outcome: {n for n, (_, e, _) in kinds.items() if e == outcome} for outcome in (OK, BAD, EITHER, SKIP)}
    either_stored = expect[EITHER] & stored.keys()
    assert stored.keys() == {*LAYOUT_FILES, *expect[OK], *either_stored, "inside.jpg"}
    assert reported.keys() == {
        *expect[BAD],
        *(expect[EITHER] - either_stored),
        "broken-sidecar.jpg.json",  # reported, and its image stored
        "caf\ufffd-latin1.jpg",
    }
    assert report["added"] == len(LAYOUT_FILES) + len(expect[OK]) + len(either_stored) + 1  # + inside.jpg
    assert len(report["errors"]) == len(reported) == len(errors)
    assert lib.stats()["count"] == report["added"]


def test_a_file_deleted_between_scan_and_read_is_reported(make_library, photo_dir, monkeypatch):
    import assetrag.ingest.runner as ingest_module

    doomed = photo_dir / "things" / "doomed.jpg"
    doomed.write_bytes(_bytes(_photo(30, 30, 20), "JPEG"))
    real_scan = ingest_module.scan

    def scan_then_delete(*args, **kwargs):
        found = real_scan(*args, **kwargs)
        doomed.unlink()  # gone after the scan listed it, before a worker reads it
        return found

    monkeypatch.setattr(ingest_module, "scan", scan_then_delete)
    lib = make_library()
    report = lib.ingest(photo_dir)
    assert [(os.path.basename(e.path), e.reason) for e in report.errors] == [
        ("doomed.jpg", "cannot read the file (it is gone)")  # (worded so since object storage, 1f09969)
    ]
    assert report.added == 5 and lib.stats()["count"] == 5
