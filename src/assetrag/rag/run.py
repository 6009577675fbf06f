"""Run a plan: load the chosen references, call the generator, score the output against its references
(fidelity), save it and store it back in the library as `synthetic` with its lineage."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assetrag import objects
from assetrag.decode import decode_bytes, decode_file
from assetrag.generation import GenerationOptions, GenerationResult, Generator, Reference
from assetrag.rag.plan import EXPLICIT, Plan, PlannedRef
from assetrag.video import frame_at

if TYPE_CHECKING:
    from assetrag.rag.protocol import AssetSource

SYNTHETIC_COLLECTION = "synthetic"
REFERENCE_MAX_SIDE = 1024  # what is sent to a model: enough detail, bounded upload size


def build_prompt(plan: Plan) -> str:
    """The brief plus a line that tells the model which attached image stands for what."""
    parts = []
    for i, r in enumerate(plan.chosen, start=1):
        if r.role == "item":
            parts.append(f"image {i} is the {r.item}")
        elif r.role == "style":
            parts.append(f"image {i} is a brand/style reference (match its palette and mood)")
        elif r.role == "given" and r.item != EXPLICIT:  # bound to an item that points at it ("this character")
            parts.append(f"image {i} is the given image that '{r.item}' refers to (keep its subject recognisable)")
        elif r.role == "given":
            parts.append(f"image {i} is a required product reference")
        else:
            parts.append(f"image {i} is a reference for the overall scene")
    if not parts:
        return plan.brief
    return (
        f"{plan.brief}\n\nReference images: " + "; ".join(parts) + ". Reproduce the referenced products faithfully "
        "(shape, colour, material, details); do not add text or logos that are not in the references."
    )


def load_references(plan: Plan) -> list[Reference]:
    refs = []
    for r in plan.chosen:
        if r.time is not None:  # a video keyframe: the frame's pixels are sent
            img = frame_at(r.path, r.time, max_side=REFERENCE_MAX_SIDE)
        elif objects.is_url(r.path):  # an asset in a bucket: read through the object layer (bounded)
            img = decode_bytes(objects.read_any(r.path), r.path, max_side=REFERENCE_MAX_SIDE).image
        else:
            img = decode_file(r.path, max_side=REFERENCE_MAX_SIDE).image
        refs.append(Reference(id=r.id, image=img, path=r.path, label=r.item, score=r.score, metadata={"role": r.role}))
    return refs


def fidelity(lib: AssetSource, output: Any, chosen: list[PlannedRef], refs: list[Reference]) -> dict[str, Any]:
    """Cosine similarity of the output to each reference it was given, in the library's embedding space."""
    if not chosen:
        return {"mean": None, "min": None, "per_reference": []}
    out_vec = lib.embed_image(output)
    stored = lib.vectors([c.id for c in chosen])
    per = []
    for c, ref in zip(chosen, refs, strict=True):
        vec = stored.get(c.id)
        if vec is None:
            vec = lib.embed_image(ref.image)
        per.append({"id": c.id, "item": c.item, "score": round(float(out_vec @ vec), 4)})
    scores = [p["score"] for p in per]
    return {"mean": round(float(np.mean(scores)), 4), "min": round(float(np.min(scores)), 4), "per_reference": per}


def slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n].rstrip("-") or "image"


def run_plan(
    lib: AssetSource,
    plan: Plan,
    generator: Generator,
    *,
    options: GenerationOptions | None = None,
    out: str | Path | None = None,
    store_back: bool | None = None,
    min_fidelity: float | None = None,
) -> GenerationResult:
    """Generate from `plan`, save to `out` (default `generated/<time>-<brief>.png`), store back as synthetic.

    `store_back` defaults to True for real generators and False for the `board` backend (a board is
    an artifact for people, not a new asset). The result's `metadata` holds `output_path`, `asset_id`,
    `fidelity` and `flagged` (fidelity below `min_fidelity`).
    """
    refs = load_references(plan)
    is_board = generator.name == "board"
    prompt = plan.brief if is_board else build_prompt(plan)  # a board is titled with the brief itself
    result = generator.generate(prompt, refs, options or GenerationOptions())
    stamp = datetime.now(UTC)
    out_path = Path(out) if out else Path("generated") / f"{stamp:%Y%m%d-%H%M%S}-{slug(plan.brief)}.png"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out_path, format="PNG")
    extra_paths = []
    for i, img in enumerate(result.images[1:], start=1):
        p = out_path.with_name(f"{out_path.stem}-{i}{out_path.suffix}")
        img.save(p, format="PNG")
        extra_paths.append(str(p))

    fid = (
        fidelity(lib, result.image, plan.chosen, refs)
        if not is_board
        else {"mean": None, "min": None, "per_reference": []}
    )
    flagged = bool(min_fidelity is not None and fid["mean"] is not None and fid["mean"] < min_fidelity)
    if flagged:
        result.warnings.append(f"fidelity {fid['mean']:.3f} is below --min-fidelity {min_fidelity:.3f}")
    lineage = {
        "brief": plan.brief,
        "prompt": prompt,
        "backend": generator.name,
        "model": result.model,
        "references": [
            {
                "id": r.id,
                "item": r.item,
                "role": r.role,
                "score": r.score,
                "path": r.path,
                "filename": r.filename,
                **({"video": r.path, "time": r.time} if r.time is not None else {}),
            }
            for r in plan.chosen
        ],
        "withheld": [r.id for r in plan.withheld],
        "fidelity": fid,
        "created": stamp.isoformat(timespec="seconds"),
        "elapsed_s": round(result.elapsed_s, 3),
    }
    asset_id = None
    if store_back if store_back is not None else not is_board:
        t = time.perf_counter()
        asset_id = lib.add_image(
            out_path,
            collection=SYNTHETIC_COLLECTION,
            tags=[SYNTHETIC_COLLECTION, generator.name],
            source="synthetic",
            lineage=lineage,
        )
        lineage["store_s"] = round(time.perf_counter() - t, 3)
    result.metadata.update(
        {
            "output_path": str(out_path.resolve()),
            "extra_paths": extra_paths,
            "asset_id": asset_id,
            "fidelity": fid,
            "flagged": flagged,
            "plan": plan.to_dict(),
        }
    )
    return result
