"""Video ingest throughput: seconds of video ingested per second of wall time (keyframes sampled, embedded
with the offline model, written to Milvus Lite), for a short and a longer H.264 clip made here.

    python benchmarks/video.py [--minutes 1 5]

Prints a table and replaces the "Video ingest" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table, write_section

from assetrag import Library
from assetrag.embedding import load_embedder
from assetrag.video import SamplingOptions

FPS = 25
SIZE = (1280, 720)
SCENE_S = 8.0  # a new picture every 8 s (each a scene change)


def make_clip(path: Path, seconds: float) -> None:
    """An H.264 clip (libx264 when the wheel has it, else MPEG-4) of random-colour scenes with moving noise."""
    rng = np.random.default_rng(0)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "g": str(2 * FPS)}
        base = None
        for i in range(int(seconds * FPS)):
            if i % int(SCENE_S * FPS) == 0:
                small = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
                base = np.kron(small, np.ones((80, 80, 1), np.uint8))
            frame = np.roll(base, i % 80, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0])
    args = ap.parse_args()
    emb = load_embedder("offline", torch_threads=2)
    emb.embed_images([Image.new("RGB", (224, 224))])  # warm up: not part of any run
    opts = SamplingOptions.from_env()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            folder = Path(tmp) / f"v{minutes:g}"
            folder.mkdir()
            clip = folder / "clip.mp4"
            make_clip(clip, minutes * 60)
            lib = Library(Path(tmp) / f"lib{minutes:g}.db", library="bench", embedder=emb)
            t = time.perf_counter()
            report = lib.ingest(folder)
            wall = time.perf_counter() - t
            lib.close()
            assert report.videos == 1, report.errors
            s = report.stages
            rows.append(
                [
                    f"{minutes * 60:.0f} s, {SIZE[0]}×{SIZE[1]} {FPS} fps",
                    f"{clip.stat().st_size / 1e6:.1f}",
                    report.keyframes,
                    f"{wall:.1f}",
                    f"{s.get('video decode', 0):.1f}",
                    f"{s.get('embed', 0):.1f}",
                    f"{s.get('write', 0):.2f}",
                    f"{minutes * 60 / wall:.1f}",
                ]
            )
    body = table(["video", "MB", "keyframes", "wall s", "decode s", "embed s", "write s", "video s per s"], rows)
    body += (
        f"\n\nOffline model on the CPU, Milvus Lite. Sampling: at most {opts.max_keyframes} keyframes, one at least "
        f"every {opts.interval:g} s, scene changes ≥ {opts.min_gap:g} s apart (a scene here every {SCENE_S:g} s); "
        "decode = seeking to and decoding the candidates. Throughput is dominated by embedding the keyframes, "
        "so it grows with scene length and `ASSETRAG_KEYFRAME_INTERVAL`."
    )
    write_section("video", "Video ingest (benchmarks/video.py)", body)


if __name__ == "__main__":
    main()
