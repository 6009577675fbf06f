"""Plan a grounded generation: brief → the items it names → one retrieved reference per item, plus
brand/style references → the best N that fit the backend, with what was dropped or withheld and why.

Planning never calls a generator; `--dry-run` stops here (and draws the reference board).

Retrieval (`SEARCH_MODE`, `Plan.mode`): every search — each item's reference, the style references and the
whole-brief matches — is a **hybrid** search (meaning fused with words in file names, tags and captions; see
`assetrag.search`). On the 49 sample queries, short noun phrases like a brief's items, it puts a relevant
asset first 0.90 of the time against 0.49 for vector search (offline model), and it picks the same product
category as vector search for each item of the seed brief (tests/rag/test_plan.py).

Query understanding runs **once, on the brief**, and only when the caller names no `collection`: a brief
that names a collection or tag of the library ("… from the brand-style collection", "tagged summer") gets
it as the filter of its item and whole-brief searches, and its items are read from the rest of the words
(so "the brand-style collection" is not mistaken for an item). Item searches never run understanding
themselves: an item is a thing to find, and an explicit `collection` / `source` stays exactly as given.

Language (`Plan.lang`): the brief's language is read **once, from the whole brief** (`detect_language`) and
every search of the plan uses it: an item such as "montre bleue" has lost the articles that told the language
check it is French, so left to `lang=auto` it would go through the English text encoder. The splitter uses
the same reading (`rag.items`: English plus French / German / Spanish connector words).

Given images (`given`, `--ref`, uploads): an item that points at one — "this character", "the photo",
"figurine of this character", "ce personnage", "cette photo", "mon avatar" (`items.points_at_given`) — is
**bound** to it (`ItemPlan.bound`) and not searched: the first such item to the first given image, the next
to the next, any further ones to the last.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetrag import objects
from assetrag.errors import QueryError
from assetrag.generation import STYLE_LABEL
from assetrag.rag.items import brief_language, points_at_given, split_brief
from assetrag.search import DEFAULT_MODE, LANGS, Query, SearchHit, detect_language

if TYPE_CHECKING:
    from assetrag.rag.protocol import AssetSource

INTERNAL_ONLY = "internal-only"
STYLE = STYLE_LABEL  # the label of brand/style references (the generation backends group by it)
BRIEF = "whole brief"
EXPLICIT = "given"
#: the search mode of every retrieval the planner makes (see the module doc)
SEARCH_MODE = DEFAULT_MODE


@dataclass
class PlannedRef:
    """A reference the plan considered: where it came from (`role`), its item and retrieval score."""

    id: str
    path: str
    filename: str
    item: str  # the brief item it stands for, "style", "whole brief" or "given"
    role: str  # item | style | brief | given
    score: float
    internal_only: bool = False
    note: str = ""
    #: a video keyframe: seconds into the video at `path` (its pixels are that frame); None for a still
    time: float | None = None
    #: under the model's no-good-match line for its item's search (`SearchHit.weak`)
    weak: bool = False

    @classmethod
    def from_hit(cls, hit: SearchHit, item: str, role: str) -> PlannedRef:
        return cls(
            id=hit.id,
            path=hit.path,
            filename=hit.filename,
            item=item,
            role=role,
            score=round(hit.score, 4),
            internal_only=str(hit.metadata.get("usage", "")).lower() == INTERNAL_ONLY,
            time=hit.time if hit.is_video else None,
            weak=hit.weak,
        )


@dataclass
class ItemPlan:
    """One item of the brief: its candidates (best first) and the one chosen (None: nothing usable)."""

    item: str
    candidates: list[PlannedRef]
    chosen: PlannedRef | None = None
    bound: bool = False  # the item points at a given image ("this character") and is that image, unsearched


@dataclass
class Plan:
    brief: str
    backend: str
    limit: int
    external: bool
    items: list[ItemPlan] = field(default_factory=list)
    chosen: list[PlannedRef] = field(default_factory=list)
    dropped: list[PlannedRef] = field(default_factory=list)
    withheld: list[PlannedRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: str = SEARCH_MODE  # how references were retrieved (hybrid | vector)
    #: the collection / tag filters read from the brief (`Understanding.to_dict()`), None when none
    understood: dict[str, Any] | None = None
    lang: str = "en"  # the brief's language as the language check reads it (every search of the plan uses it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The plan as a few human lines (what the CLI prints)."""
        refs = f"{self.limit} reference{'' if self.limit == 1 else 's'}"
        lines = [f"brief: {self.brief}", f"backend: {self.backend} (takes up to {refs})"]
        lines.append(f"retrieval: {self.mode} search" + (f", brief read as {self.lang}" if self.lang != "en" else ""))
        for it in self.items:
            if it.bound and it.chosen:
                lines.append(f"  item {it.item!r} → bound to the given image {it.chosen.filename} (not searched)")
                continue
            pick = f"{it.chosen.filename} ({it.chosen.score:.3f})" if it.chosen else "— nothing usable in the library"
            lines.append(f"  item {it.item!r} → {pick}")
        lines.append(f"references sent ({len(self.chosen)}):")
        lines += [f"  {i + 1}. [{r.item}] {r.path}  score {r.score:.3f}" for i, r in enumerate(self.chosen)]
        for r in self.dropped:
            lines.append(f"  dropped [{r.item}] {r.filename}: {r.note}")
        for r in self.withheld:
            lines.append(f"  withheld [{r.item}] {r.filename}: {r.note}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def make_plan(
    lib: AssetSource,
    brief: str,
    *,
    backend: str = "board",
    limit: int,
    external: bool,
    refs: int | None = None,
    given: tuple[str, ...] = (),
    collection: str | list[str] | None = None,
    style_collection: str | None = None,
    include_synthetic: bool = False,
    per_item: int = 3,
    brief_hits: int = 2,
    style_hits: int = 2,
) -> Plan:
    """Retrieve and select references for `brief` (see module doc). `refs` caps below the backend limit."""
    if not brief or not brief.strip():
        raise QueryError("the brief is empty; describe the image you want")
    if refs is not None and refs < 1:  # 0 is not "auto": it would have meant the backend's whole limit
        raise QueryError(f"refs (--refs) must be at least 1, or auto for the backend's limit; got {refs}")
    cap = min(limit, refs) if refs is not None else limit
    plan = Plan(brief=brief.strip(), backend=backend, limit=cap, external=external)
    source = None if include_synthetic else "ingested"
    pool: list[PlannedRef] = []
    tags: list[str] = []
    any_tags: list[str] = []
    text = plan.brief
    if not collection:  # the brief may name a collection or tag itself (see the module doc)
        understood = lib.understand(plan.brief)
        if understood:
            plan.understood = understood.to_dict()
            text = understood.text
            collection = understood.collections or None
            groups = understood.tag_groups
            tags = [g[0] for g in groups if len(g) == 1]
            any_tags = next((g for g in groups if len(g) > 1), [])
            plan.notes.append(understood.describe())

    plan.lang = detect_language(plan.brief)
    lang = query_lang(plan.lang)

    def find(query: str, k: int, coll: str | list[str] | None, filtered: bool = True) -> list[SearchHit]:
        q = Query(text=query, k=k, collection=coll, source=source, mode=SEARCH_MODE, understand=False, lang=lang)
        if filtered:
            q.tags, q.any_tags = tags, any_tags
        return lib.query(q)

    givens = [_given_ref(lib, spec) for spec in given]
    pool += givens

    items = split_brief(text, lang=brief_language(plan.brief))
    if not items:
        plan.notes.append("no concrete items found in the brief; using whole-brief matches only")
    pointing = 0
    for item in items:
        if givens and points_at_given(item):
            ref = givens[min(pointing, len(givens) - 1)]
            if pointing < len(givens):
                ref.item = item  # the given image stands for this item (the prompt and the lineage say so)
            pointing += 1
            plan.items.append(ItemPlan(item, [], chosen=ref, bound=True))
            continue
        plan.items.append(
            ItemPlan(item, [PlannedRef.from_hit(h, item, "item") for h in find(item, per_item, collection)])
        )
    if not givens and any(points_at_given(it.item) for it in plan.items):
        plan.notes.append(
            "the brief points at an image of yours (e.g. 'this character') but none was given: give it with --ref "
            "FILE (or upload it) so it is used instead of searched for"
        )
    # items pick in order of their best score, each taking its best match not already taken by another
    # item, so "diamond necklace" and "pendant" do not both get the same necklace
    taken: set[str] = set()
    searched = [ip for ip in plan.items if not ip.bound]
    for ip in sorted(searched, key=lambda ip: -(ip.candidates[0].score if ip.candidates else 0.0)):
        usable = [c for c in ip.candidates if not (external and c.internal_only)]
        ip.chosen = next((c for c in usable if c.id not in taken), usable[0] if usable else None)
        for c in ip.candidates:  # better matches that may not leave the machine are withheld, and said so
            if c is ip.chosen:
                break
            _withhold(plan, c)
        if ip.chosen is None and ip.candidates:
            plan.notes.append(f"item {ip.item!r}: every match is internal-only and the backend is external")
        if ip.chosen:
            taken.add(ip.chosen.id)
            pool.append(ip.chosen)
            if ip.chosen.weak:
                plan.notes.append(
                    f"item {ip.item!r}: the best match, {ip.chosen.filename} ({ip.chosen.score:.3f}), is weak (under "
                    "the model's no-good-match line): the library may not hold it; check the reference or give one"
                )
    if style_collection:
        style = find(text, style_hits, style_collection, filtered=False)
        if not style:
            plan.notes.append(f"style collection {style_collection!r} holds no assets")
        pool += [PlannedRef.from_hit(h, STYLE, "style") for h in style]
    pool += [PlannedRef.from_hit(h, BRIEF, "brief") for h in find(text, brief_hits, collection)]

    seen: set[str] = set()
    ordered: list[PlannedRef] = []
    for r in _priority(pool):
        if r.id in seen:
            continue
        if external and r.internal_only:
            _withhold(plan, r)
            continue
        seen.add(r.id)
        ordered.append(r)
    plan.chosen = ordered[:cap]
    for r in ordered[cap:]:
        r.note = f"over the limit of {cap} references (kept the best by score)"
        plan.dropped.append(r)
    return plan


def query_lang(detected: str) -> str | None:
    """The `Query.lang` for a brief the language check read as `detected`: None (auto) for English, the code
    when the multilingual side knows it, else "multi"."""
    if detected == "en":
        return None
    return detected if detected in LANGS else "multi"


def _withhold(plan: Plan, ref: PlannedRef) -> None:
    if ref.internal_only and plan.external and all(w.id != ref.id for w in plan.withheld):
        ref.note = "usage: internal-only — never sent to an external backend"
        plan.withheld.append(ref)


def _priority(pool: list[PlannedRef]) -> list[PlannedRef]:
    """Given references first, then one per item (best score first), then style, then whole-brief hits."""
    rank = {"given": 0, "item": 1, "style": 2, "brief": 3}
    return sorted(pool, key=lambda r: (rank[r.role], -r.score))


def _given_ref(lib: AssetSource, spec: str) -> PlannedRef:
    """`--ref`: a stored asset id, or an image file (used as is; it need not be in the library)."""
    hit = lib.get(spec) if len(spec) == 64 else None
    if hit is not None:
        ref = PlannedRef.from_hit(hit, EXPLICIT, "given")
        ref.score = 1.0
        return ref
    if objects.is_url(spec):  # an object (s3://bucket/key): read through the object layer
        try:
            data = objects.read_any(spec)
        except (OSError, ValueError) as exc:
            raise QueryError(f"--ref {spec!r}: cannot read the object ({exc})") from exc
        rid = hashlib.sha256(data).hexdigest()
        stored = lib.get(rid)
        internal = bool(stored and str(stored.metadata.get("usage", "")).lower() == INTERNAL_ONLY)
        return PlannedRef(
            id=rid,
            path=spec,
            filename=spec.rsplit("/", 1)[-1],
            item=EXPLICIT,
            role="given",
            score=1.0,
            internal_only=internal,
        )
    path = Path(spec)
    if not path.is_file():
        raise QueryError(f"--ref {spec!r} is neither an asset id in this library nor an image file")
    rid = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = lib.get(rid)
    internal = bool(stored and str(stored.metadata.get("usage", "")).lower() == INTERNAL_ONLY)
    return PlannedRef(
        id=rid,
        path=os.path.abspath(path),
        filename=path.name,
        item=EXPLICIT,
        role="given",
        score=1.0,
        internal_only=internal,
    )


def apply_choices(lib: AssetSource, plan: Plan, refs: dict[str, list[str]]) -> None:
    """Make the user's references (item label → asset ids, in order) the plan's chosen ones.

    Each keeps the retrieval score the plan gave it for that item; one the plan never saw (picked from a
    search) is scored against the item's words (the whole brief for style and whole-brief references). Only
    stored assets can be chosen (never a file path): an unknown id, or more than the backend takes, raises
    `QueryError`."""
    items = {ip.item for ip in plan.items}
    known = {(c.item, c.id): c.score for ip in plan.items for c in ip.candidates}
    known.update({(r.item, r.id): r.score for r in (*plan.chosen, *plan.dropped)})
    chosen, seen = [], set()
    for label, ids in refs.items():
        role = "style" if label == STYLE else "brief" if label == BRIEF else "item" if label in items else "given"
        for rid in ids:
            if rid in seen:
                continue
            hit = lib.get(rid)
            if hit is None:
                raise QueryError(f"reference {rid} is not in this library")
            ref = PlannedRef.from_hit(hit, label, role)
            score = known.get((label, rid))
            if score is None:
                text = label if role == "item" else plan.brief
                scored = lib.query(Query(text=text, k=1, ids=[rid], mode=plan.mode, lang=query_lang(plan.lang)))
                score = round(scored[0].score, 4) if scored else 0.0
            ref.score = score
            chosen.append(ref)
            seen.add(rid)
    if len(chosen) > plan.limit:
        raise QueryError(
            f"{len(chosen)} references chosen but the {plan.backend} backend takes at most {plan.limit}; remove some"
        )
    removed = [r for r in plan.chosen if r.id not in seen]
    for r in removed:
        r.note = "removed by the user"
    plan.dropped = [r for r in plan.dropped if r.id not in seen] + removed
    plan.chosen = chosen
    plan.notes.append("references chosen by the user")
