"""The multimodal RAG loop: brief → items → retrieved references → generator → new asset with lineage.

from assetrag import Library
from assetrag import rag
lib = Library("assets.db")
p = rag.plan(lib, "a model wearing a diamond necklace and a blue watch", backend="gemini")
print(p.describe())
result = rag.run(lib, p)                     # or lib.generate(brief, backend="gemini")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetrag.generation import GenerationOptions, GenerationResult, Generator, get_generator
from assetrag.rag.items import split_brief
from assetrag.rag.plan import BRIEF, STYLE, ItemPlan, Plan, PlannedRef, apply_choices, make_plan
from assetrag.rag.run import build_prompt, run_plan

if TYPE_CHECKING:
    from assetrag.rag.protocol import AssetSource

__all__ = [
    "BRIEF",
    "STYLE",
    "ItemPlan",
    "Plan",
    "PlannedRef",
    "apply_choices",
    "build_prompt",
    "plan",
    "run",
    "split_brief",
]


def _generator(backend: str | Generator, generator_options: dict[str, Any] | None) -> Generator:
    if isinstance(backend, str):
        return get_generator(backend, **(generator_options or {}))
    return backend


def plan(
    lib: AssetSource,
    brief: str,
    *,
    backend: str | Generator = "board",
    refs: int | None = None,
    given: Sequence[str] = (),
    collection: str | list[str] | None = None,
    style_collection: str | None = None,
    include_synthetic: bool = False,
    generator_options: dict[str, Any] | None = None,
) -> Plan:
    """Items → references for `brief`, fitted to `backend`'s input limit (no generator is called)."""
    gen = _generator(backend, generator_options)
    return make_plan(
        lib,
        brief,
        backend=backend if isinstance(backend, str) else gen.name,
        limit=gen.max_reference_images,
        external=gen.external,
        refs=refs,
        given=tuple(given),
        collection=collection,
        style_collection=style_collection,
        include_synthetic=include_synthetic,
    )


def run(
    lib: AssetSource,
    p: Plan,
    *,
    backend: str | Generator | None = None,
    options: GenerationOptions | None = None,
    out: str | Path | None = None,
    store_back: bool | None = None,
    min_fidelity: float | None = None,
    generator_options: dict[str, Any] | None = None,
) -> GenerationResult:
    """Generate from plan `p` with its backend (or `backend`), save, score and store the output back."""
    gen = _generator(backend or p.backend, generator_options)
    if gen.external and any(r.internal_only for r in p.chosen):
        # a plan edited by hand (or by the web page) must still never send internal-only assets out
        from assetrag.errors import QueryError

        bad = [r.filename for r in p.chosen if r.internal_only]
        raise QueryError(f"internal-only assets may not be sent to {gen.name}: {', '.join(bad)}")
    return run_plan(lib, p, gen, options=options, out=out, store_back=store_back, min_fidelity=min_fidelity)
