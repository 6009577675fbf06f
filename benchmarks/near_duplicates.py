"""Near-duplicate detection: which perceptual hash (and which embedding threshold) finds real copies of an
image — resized, re-encoded, cropped, overlaid, colour-shifted — without calling distinct images copies.

Images: the sample library's photos and clipart (samples/library, the deliberate duplicate left out) and
scikit-image's bundled images not already among the sample photos. Two pairs of originals are the same
drawing in another colour (the coral and teal mugs, the black and red pumps): distinct products, and the
hard negatives a grey-level hash cannot tell apart — hence the hash + colour-hash combinations.
Each original gets real transforms, each saved and decoded again as ingest
would (`decode_bytes`): resize to 50 %, JPEG quality 25, centred crop of 5 % and 10 %, a 10 % crop from one
side, a text + logo overlay (~5 % of the area), a colour shift (brightness, saturation, a warm tint).
Positives: every pair of images of one original (itself and its variants); negatives: every pair from two
different originals. For each method and threshold: precision and recall over those pairs, and recall by
transform. Hamming distances are over 64-bit hashes (8×8), colorhash over its 42 bits.

    python benchmarks/near_duplicates.py [--no-embedding] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table, write_section

from assetrag.decode import decode_bytes

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "library"
HASHES = {
    "phash": lambda im: imagehash.phash(im),
    "dhash": lambda im: imagehash.dhash(im),
    "whash": lambda im: imagehash.whash(im),
    "ahash": lambda im: imagehash.average_hash(im),
    "colorhash": lambda im: imagehash.colorhash(im, binbits=3),
}  # colorhash last: the combinations need the grey hashes first
HASH_THRESHOLDS = [4, 6, 8, 10, 12, 14, 16, 20]
COLOUR_GATE = 6  # colorhash distance at most this for the combinations
COSINES = [0.90, 0.93, 0.95, 0.97, 0.98, 0.99]


def originals() -> list[tuple[str, Image.Image]]:
    from skimage import data

    out = [
        (str(p.relative_to(SAMPLES)), Image.open(p))
        for p in sorted(SAMPLES.rglob("*"))
        if p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith("duplicate-of")
    ]
    # the sample library's photos/ already hold astronaut, chelsea, coffee, rocket, camera and coins
    for name in ("moon", "page", "immunohistochemistry", "clock", "logo", "brick", "grass", "colorwheel", "cell"):
        out.append((f"skimage/{name}", Image.fromarray(getattr(data, name)())))
    for name in ("hubble_deep_field", "retina"):
        with contextlib.suppress(Exception):  # fetched on first use by some scikit-image builds
            out.append((f"skimage/{name}", Image.fromarray(getattr(data, name)())))
    return [(n, _load(im)) for n, im in out]


def _load(im: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return decode_bytes(buf.getvalue(), "original", None).image


def _crop(im: Image.Image, share: float, centred: bool = True) -> Image.Image:
    w, h = im.size
    dx, dy = round(w * share), round(h * share)
    return (
        im.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2)))
        if centred
        else im.crop((0, 0, w - dx, h - dy))
    )


def _overlay(im: Image.Image) -> Image.Image:
    out = im.copy()
    w, h = out.size
    d = ImageDraw.Draw(out)
    bw, bh = max(8, w // 4), max(6, h // 12)  # a caption box and a small square logo: ~5 % of the area
    d.rectangle((w - bw - 4, h - bh - 4, w - 4, h - 4), fill=(255, 255, 255))
    d.text((w - bw, h - bh - 2), "© ASSETRAG 2025", fill=(200, 0, 0))
    s = max(6, min(w, h) // 10)
    d.rectangle((4, 4, 4 + s, 4 + s), fill=(20, 60, 200))
    d.ellipse((6, 6, 2 + s, 2 + s), fill=(250, 200, 0))
    return out


def _colour(im: Image.Image) -> Image.Image:
    out = ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.12)).enhance(1.3)
    r, g, b = (np.asarray(c, dtype=np.float32) for c in out.split())
    warm = np.stack([np.clip(r * 1.08, 0, 255), g, np.clip(b * 0.9, 0, 255)], axis=-1).astype(np.uint8)
    return Image.fromarray(warm)


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return decode_bytes(buf.getvalue(), "variant", None).image


TRANSFORMS = {
    "resize 50%": lambda im: _encode(im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.LANCZOS)),
    "jpeg q25": lambda im: _encode(im, "JPEG", quality=25),
    "crop 5%": lambda im: _encode(_crop(im, 0.05)),
    "crop 10%": lambda im: _encode(_crop(im, 0.10)),
    "crop 10% one side": lambda im: _encode(_crop(im, 0.10, centred=False)),
    "text+logo overlay": lambda im: _encode(_overlay(im), "JPEG", quality=90),
    "colour shift": lambda im: _encode(_colour(im), "JPEG", quality=90),
}


def pairs(groups: np.ndarray, kinds: list[str]):
    """(i, j, same original, the transform of the variant in a positive original–variant pair)"""
    i, j = np.triu_indices(len(groups), k=1)
    return i, j, groups[i] == groups[j]


def evaluate(dist: np.ndarray, same: np.ndarray, thresholds, below: bool = True):
    rows = []
    for t in thresholds:
        pred = dist <= t if below else dist >= t
        tp, fp, fn = int((pred & same).sum()), int((pred & ~same).sum()), int((~pred & same).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        rows.append((t, tp, fp, fn, precision, tp / (tp + fn)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    images, groups, kinds, names = [], [], [], []
    for g, (name, im) in enumerate(originals()):
        images.append(im), groups.append(g), kinds.append("original"), names.append(name)
        for kind, fn in TRANSFORMS.items():
            images.append(fn(im)), groups.append(g), kinds.append(kind), names.append(name)
    groups_a = np.array(groups)
    kinds_a = np.array(kinds)
    i, j, same = pairs(groups_a, kinds)
    # recall by transform: the original–variant pairs of each transform
    by_kind = {k: same & (kinds_a[i] == "original") & (kinds_a[j] == k) for k in TRANSFORMS}
    n_orig = len(set(groups))
    print(
        f"{n_orig} originals × {len(TRANSFORMS)} transforms = {len(images)} images; "
        f"{int(same.sum())} positive pairs, {int((~same).sum())} negative pairs",
        flush=True,
    )

    grey: dict[str, np.ndarray] = {}
    colour = np.zeros(0)
    results = []  # (method, threshold, tp, fp, fn, precision, recall, {kind: recall})
    for hname, fn in HASHES.items():
        hs = [fn(im) for im in images]
        bits = np.array([h.hash.flatten() for h in hs], dtype=bool)
        dist = (bits[i] != bits[j]).sum(axis=1)
        for t, tp, fp, fn_, p, r in evaluate(dist, same, HASH_THRESHOLDS):
            per = {k: float((dist[m] <= t).mean()) for k, m in by_kind.items()}
            results.append((hname, f"≤ {t}", tp, fp, fn_, p, r, per))
        print(f"hashed {hname}", flush=True)
        if hname == "colorhash":
            colour = dist
        else:
            grey[hname] = dist
    for hname in ("phash", "dhash"):
        dist = np.where(colour <= COLOUR_GATE, grey[hname], 99)
        for t, tp, fp, fn_, p, r in evaluate(dist, same, HASH_THRESHOLDS):
            per = {k: float((dist[m] <= t).mean()) for k, m in by_kind.items()}
            results.append((f"{hname} + colorhash ≤ {COLOUR_GATE}", f"≤ {t}", tp, fp, fn_, p, r, per))
    if not args.no_embedding:
        from assetrag.embedding import load_embedder

        emb = load_embedder("offline", torch_threads=2)
        vecs = np.asarray(emb.embed_images(images), dtype=np.float32)
        cos = (vecs[i] * vecs[j]).sum(axis=1)
        for t, tp, fp, fn_, p, r in evaluate(-cos, same, [-c for c in COSINES]):
            per = {k: float((cos[m] >= -t).mean()) for k, m in by_kind.items()}
            results.append((f"cosine ({emb.name})", f"≥ {-t:.2f}", tp, fp, fn_, p, r, per))

    short = {"resize 50%": "resize", "jpeg q25": "jpeg", "crop 5%": "crop5", "crop 10%": "crop10",
             "crop 10% one side": "crop10-side", "text+logo overlay": "overlay", "colour shift": "colour"}  # fmt: skip
    headers = ["method", "match when", "TP", "FP", "FN", "precision", "recall", *short.values()]
    rows = [
        (m, t, tp, fp, fn_, f"{p:.3f}", f"{r:.3f}", *(f"{per[k]:.2f}" for k in short))
        for m, t, tp, fp, fn_, p, r, per in results
    ]
    body = (
        f"{n_orig} originals (sample library photos and clipart, scikit-image photos) × {len(TRANSFORMS)} real "
        f"transforms (resize 50 %, JPEG q25, centred crop 5 % / 10 %, 10 % cut from one side, text + logo "
        f"overlay, colour shift), each encoded and decoded again as ingest does: {int(same.sum())} same-original "
        f"pairs (positives), {int((~same).sum())} pairs of different originals (negatives). Precision and recall "
        "over all pairs; the last columns are the recall of original–variant pairs by transform.\n\n"
        + table(headers, rows)
        + "\n\nChoice: the stored hash is dHash (`decode.perceptual_hash`), matched at ≤ 10 bits "
        "(`library.NEAR_DUPLICATE_DISTANCE`): every resize, re-encode, overlay and colour shift, 97 % of 5 % "
        "crops, half of 10 % crops; a 10 % cut from one side defeats every hash. Its false matches are the "
        "recoloured drawings (mugs, pumps: distinct products, same grey-level picture); the colour-hash gate "
        "removes a quarter of them at no recall cost but needs a second stored hash. The offline model's cosine "
        "never reaches 0.95 precision (0.76 at 0.99, recall 0.45), so it gets no look-alike threshold "
        "(`library.DUPLICATE_COSINE`)."
    )
    if args.no_write:
        print(body)
    else:
        write_section("near-duplicates", "Near-duplicate detection (benchmarks/near_duplicates.py)", body)


if __name__ == "__main__":
    main()
