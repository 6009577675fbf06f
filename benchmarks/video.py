"""Video ingest throughput: seconds of video ingested per second of wall time (keyframes sampled, embedded
with the offline model, written to Milvus Lite), on three kinds of H.264 clip made here, against the naive
loop a user would write, in the same run.

    python benchmarks/video.py [--minutes 1 5] [--kinds blocks camera screen]

Kinds of input (1280×720, 25 fps, `--minutes` long each):
* blocks: flat random-colour blocks sliding sideways, a new picture every 8 s (the synthetic case);
* camera: scikit-image photos panned and zoomed slowly, with sensor noise, cut at irregular times (3–20 s);
* screen: a screen recording — a desktop with windows and text lines, long static stretches (15–60 s), a
  moving cursor, a window opening now and then and short scrolls.

The naive baseline: decode every frame with PyAV, keep one every `interval` seconds (the product's
`SamplingOptions.interval`), embed each kept frame alone with the same embedder, insert it into a fresh Milvus
Lite collection with pymilvus' MilvusClient, one insert a frame. Both sides are timed from opening the store
to closing it, with the model already loaded and warm; they alternate per clip.

Prints a table and replaces the "Video ingest" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table, write_section

from assetrag import Library
from assetrag.embedding import load_embedder
from assetrag.video import SamplingOptions

FPS = 25
SIZE = (1280, 720)
W, H = SIZE
BLOCK_SCENE_S = 8.0  # blocks: a new picture every 8 s
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def write_clip(path: Path, frames: Iterator[np.ndarray]) -> None:
    """An H.264 clip (libx264 when the wheel has it, else MPEG-4) of `frames` (H×W×3 uint8)."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "g": str(2 * FPS)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def cut_times(rng: np.random.Generator, seconds: float, low: float, high: float) -> list[float]:
    """Scene start times from 0, each scene `low`..`high` seconds long (irregular)."""
    cuts, t = [], 0.0
    while t < seconds:
        cuts.append(t)
        t += float(rng.uniform(low, high))
    return cuts


def blocks_frames(seconds: float) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(0)
    base = None
    for i in range(int(seconds * FPS)):
        if i % int(BLOCK_SCENE_S * FPS) == 0:
            small = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
            base = np.kron(small, np.ones((80, 80, 1), np.uint8))
        yield np.roll(base, i % 80, axis=1)


def camera_frames(seconds: float) -> Iterator[np.ndarray]:
    """Photos seen by a slowly panning, zooming camera with sensor noise; cuts at irregular times."""
    import skimage.data

    rng = np.random.default_rng(1)
    photos = []
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        img = Image.fromarray(arr if arr.ndim == 3 else np.stack([arr] * 3, -1)).convert("RGB")
        scale = max(1.6 * W / img.width, 1.6 * H / img.height)  # room to pan and zoom
        photos.append(img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC))
    noise = [rng.normal(0, 6, (H, W, 3)).astype(np.int16) for _ in range(7)]
    cuts = cut_times(rng, seconds, 3.0, 20.0)
    n = int(seconds * FPS)
    scene, shot = -1, None
    for i in range(n):
        t = i / FPS
        if scene + 1 < len(cuts) and t >= cuts[scene + 1]:
            scene += 1
            shot = {
                "img": photos[int(rng.integers(len(photos)))],
                "start": t,
                "pan": rng.uniform(-25, 25, 2),  # pixels a second
                "zoom": float(rng.uniform(-0.02, 0.02)),  # relative a second
                "z0": float(rng.uniform(0.9, 1.4)),
            }
        img, dt = shot["img"], t - shot["start"]
        z = min(max(shot["z0"] * (1 + shot["zoom"] * dt), 0.8), 1.5)  # the crop is z × the output size
        cw, ch = W * z, H * z
        cx = min(max(img.width / 2 + shot["pan"][0] * dt, cw / 2), img.width - cw / 2)
        cy = min(max(img.height / 2 + shot["pan"][1] * dt, ch / 2), img.height - ch / 2)
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        frame = np.asarray(img.resize(SIZE, Image.Resampling.BILINEAR, box=box), np.int16)
        yield np.clip(frame + noise[i % len(noise)], 0, 255).astype(np.uint8)


def screen_frames(seconds: float) -> Iterator[np.ndarray]:
    """A desktop: windows of text lines, long static stretches, a moving cursor, a window opening now and then,
    a short scroll sometimes."""
    rng = np.random.default_rng(2)

    def window(draw: ImageDraw.ImageDraw) -> None:
        x, y = int(rng.integers(0, W - 500)), int(rng.integers(30, H - 350))
        w, h = int(rng.integers(420, W - x)), int(rng.integers(280, H - y))
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        draw.rectangle((x, y, x + w, y + h), fill=(250, 250, 250), outline=(90, 90, 90))
        draw.rectangle((x, y, x + w, y + 24), fill=colour)
        for ly in range(y + 36, y + h - 12, 16):
            lw = int(rng.integers(w // 4, w - 30))
            draw.rectangle((x + 12, ly, x + 12 + lw, ly + 7), fill=(60, 60, 60))

    def desktop() -> np.ndarray:
        img = Image.new("RGB", SIZE, tuple(int(c) for c in rng.integers(20, 120, 3)))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, W, 26), fill=(30, 30, 30))
        for _ in range(int(rng.integers(1, 4))):
            window(draw)
        return np.asarray(img)

    cuts = cut_times(rng, seconds, 15.0, 60.0)
    n = int(seconds * FPS)
    scene, base, scroll_at = -1, None, None
    for i in range(n):
        t = i / FPS
        if scene + 1 < len(cuts) and t >= cuts[scene + 1]:
            scene += 1
            base = desktop() if scene % 3 == 0 or base is None else _opened(base, window)
            scroll_at = cuts[scene] + float(rng.uniform(2, 10)) if rng.random() < 0.5 else None
        frame = base
        if scroll_at is not None and scroll_at <= t < scroll_at + 1.5:  # a short scroll of the whole picture
            frame = np.roll(base, -int((t - scroll_at) * 120), axis=0)
        frame = frame.copy()
        cx = int(W / 2 + 300 * np.sin(t / 3.0)) % (W - 12)
        cy = int(H / 2 + 200 * np.cos(t / 4.0)) % (H - 18)
        frame[cy : cy + 18, cx : cx + 12] = 0  # the cursor
        yield frame


def _opened(base: np.ndarray, window: Callable) -> np.ndarray:
    img = Image.fromarray(base)
    window(ImageDraw.Draw(img))
    return np.asarray(img)


KINDS: dict[str, Callable[[float], Iterator[np.ndarray]]] = {
    "blocks": blocks_frames,
    "camera": camera_frames,
    "screen": screen_frames,
}


def naive(clip: Path, db: Path, emb, interval: float) -> tuple[int, dict[str, float]]:
    """The notebook loop: every frame decoded in order, one kept every `interval` s, embedded alone, one insert
    a frame into a fresh Milvus Lite collection. Returns (frames kept, seconds per step)."""
    from pymilvus import MilvusClient

    times = {"decode": 0.0, "embed": 0.0, "insert": 0.0}
    client = MilvusClient(str(db))
    client.create_collection("naive", dimension=emb.dim)
    kept, next_t = 0, 0.0
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = container.decode(stream)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None or frame.time is None or frame.time + 1e-6 < next_t:
                times["decode"] += time.perf_counter() - t0
                if frame is None:
                    break
                continue
            img = frame.to_image()
            t1 = time.perf_counter()
            vec = emb.embed_images([img])[0]
            t2 = time.perf_counter()
            client.insert("naive", [{"id": kept, "vector": vec.tolist(), "path": str(clip), "time": frame.time}])
            t3 = time.perf_counter()
            times["decode"] += t1 - t0
            times["embed"] += t2 - t1
            times["insert"] += t3 - t2
            kept += 1
            next_t += interval
    client.close()
    return kept, times


def where_the_time_goes(
    opts: SamplingOptions,
    stages: dict[str, float],
    naive_steps: dict[str, float],
    walls: dict[str, float],
    kept: dict[str, int],
) -> str:
    """The closing paragraph: sampling settings, the overall ratio, and each side's time by stage (measured)."""
    wall, nwall = walls["assetrag"] or 1e-9, walls["naive"] or 1e-9
    named = {
        "video decode": "video decode (seeking to and decoding the candidates, scene signatures, keyframe images)",
        "embed": "embedding the keyframes",
        "write": "writing",
        "read": "hashing the file",
        "flush": "flushing",
        # the embedder is given, so this stage is the store's ensure(): creating the collection and its index
        "model load": "creating the Lite collection and its index (the 'model load' stage; the model was warm)",
    }
    parts = sorted(((stages.get(k, 0.0), label) for k, label in named.items()), reverse=True)
    rest = max(0.0, wall - sum(v for v, _ in parts))
    shares = ", ".join(f"{label} {100 * v / wall:.0f} %" for v, label in parts if v / wall >= 0.005)
    top = parts[0][1].split(" (")[0] if parts[0][0] >= rest else "opening/closing the store and bookkeeping"
    naive_parts = sorted(((v, k) for k, v in naive_steps.items()), reverse=True)
    naive_shares = ", ".join(f"{k} {100 * v / nwall:.0f} %" for v, k in naive_parts)
    return (
        f"Sampling: at most {opts.max_keyframes} keyframes a video, one at least every {opts.interval:g} s, scene "
        f"changes ≥ {opts.min_gap:g} s apart. All clips together: assetrag {wall:.1f} s for {kept['assetrag']} "
        f"keyframes, naive {nwall:.1f} s for {kept['naive']} frames — assetrag's video seconds per second "
        f"{nwall / wall:.2f}× the naive loop's. Where assetrag's time went "
        f"(report.stages): {shares}, the rest {100 * rest / wall:.0f} % (starting and closing Milvus Lite, scan, "
        f"bookkeeping) — {top} is the largest part. The naive loop's: {naive_shares} (decode = every frame, in "
        "order; embed = one frame a call; insert = one call a frame)."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    emb = load_embedder("offline", torch_threads=2)
    emb.embed_images([Image.new("RGB", (224, 224))])  # warm up: not part of any run
    opts = SamplingOptions.from_env()
    rows: list[list[object]] = []
    stage_sums: dict[str, float] = {}  # assetrag's stage seconds (report.stages), all runs together
    naive_sums = {"decode": 0.0, "embed": 0.0, "insert": 0.0}
    walls = {"assetrag": 0.0, "naive": 0.0}
    kept = {"assetrag": 0, "naive": 0}
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, {cores} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            for kind in args.kinds:
                seconds = minutes * 60
                folder = Path(tmp) / f"{kind}{minutes:g}"
                folder.mkdir()
                clip = folder / "clip.mp4"
                write_clip(clip, KINDS[kind](seconds))

                t = time.perf_counter()
                lib = Library(Path(tmp) / f"lib-{kind}{minutes:g}.db", library="bench", embedder=emb)
                report = lib.ingest(folder)
                lib.close()
                wall = time.perf_counter() - t
                assert report.videos == 1, report.errors
                s = report.stages
                for key, v in s.items():
                    stage_sums[key] = stage_sums.get(key, 0.0) + v
                walls["assetrag"] += wall

                t = time.perf_counter()
                n_naive, nt = naive(clip, Path(tmp) / f"naive-{kind}{minutes:g}.db", emb, opts.interval)
                naive_wall = time.perf_counter() - t
                for key, v in nt.items():
                    naive_sums[key] += v
                walls["naive"] += naive_wall
                kept["assetrag"] += report.keyframes
                kept["naive"] += n_naive

                rate, naive_rate = seconds / wall, seconds / naive_wall
                rows.append(
                    [
                        f"{kind}, {seconds:.0f} s",
                        f"{clip.stat().st_size / 1e6:.1f}",
                        report.keyframes,
                        f"{wall:.1f}",
                        f"{s.get('video decode', 0):.1f}",
                        f"{s.get('embed', 0):.1f}",
                        f"{s.get('write', 0):.2f}",
                        f"{rate:.1f}",
                        n_naive,
                        f"{naive_wall:.1f}",
                        f"{naive_rate:.1f}",
                        f"{rate / naive_rate:.2f}×",
                    ]
                )
                print(" | ".join(str(c) for c in rows[-1]), f"(stages {dict((k, round(v, 2)) for k, v in s.items())})")
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")

    headers = ["video", "MB", "keyframes", "wall s", "decode s", "embed s", "write s", "video s per s"]
    headers += ["naive frames", "naive wall s", "naive video s per s", "assetrag ÷ naive"]
    body = (
        f"Offline model on the CPU (the same warm embedder for both sides), Milvus Lite; `nproc` {cores}, load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after. {W}×{H}, {FPS} fps H.264 clips made "
        "here: blocks (flat random-colour blocks sliding, a new picture every 8 s), camera (scikit-image photos "
        "panned and zoomed slowly with sensor noise, cuts every 3–20 s), screen (a desktop with windows of text, "
        "static for 15–60 s, a moving cursor, a window opening now and then, short scrolls). Wall = opening the "
        "library to closing it. Naive = the notebook loop: every frame decoded in order with PyAV, one kept every "
        f"{opts.interval:g} s, embedded alone, one MilvusClient insert a frame into a fresh Lite collection.\n\n"
        + table(headers, rows)
    )
    body += "\n\n" + where_the_time_goes(opts, stage_sums, naive_sums, walls, kept)
    write_section("video", "Video ingest (benchmarks/video.py)", body)


if __name__ == "__main__":
    main()
