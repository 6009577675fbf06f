"""`SearchResult`: the hits of one search and how the query was read — one object that the CLI prints and the
REST API serialises, so neither re-runs any part of the query."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assetrag.search.query import SearchHit
from assetrag.search.understand import Understanding


class SearchResult(list[SearchHit]):
    """The hits, best first (it is a list of `SearchHit`), plus:

    - `understood`: the collection / tag / year filters read from the text (None when understanding was off or
      there was no text), and `applied` — whether they were used (filters given explicitly win);
    - `mode`: the mode that ran ("vector" for image-only queries);
    - `encoder` / `lang`: which text encoder embedded the text ("model" or "multilingual") and the language
      detected or given;
    - `notes`: lines worth telling the user (e.g. that the multilingual text encoder was used);
    - `lexical_weight`: in hybrid mode, the weight the lexical side had (the library's informativeness, 0-1;
      None when there was no lexical side), and `lexical`: which BM25 ran — "milvus-bm25" (Milvus' full-text
      search) or "in-process bm25" (the index `search.lexical` builds, for backends without it); None likewise;
    - `weak_below`: the model's calibrated "no good match" cosine (text queries of calibrated models, else None)
      and `weak_from`: the index of the first weak hit (every hit from there on is `weak`), None when none is;
      `model`: the embedder's name the cut-off was calibrated for.
    """

    def __init__(
        self,
        hits: Iterable[SearchHit] = (),
        *,
        mode: str = "vector",
        understood: Understanding | None = None,
        applied: bool = False,
        encoder: str | None = None,
        lang: str | None = None,
        notes: Iterable[str] = (),
        lexical_weight: float | None = None,
        lexical: str | None = None,
        weak_below: float | None = None,
        weak_from: int | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(hits)
        self.mode = mode
        self.understood = understood
        self.applied = applied
        self.encoder = encoder
        self.lang = lang
        self.notes = list(notes)
        self.lexical_weight = lexical_weight
        self.lexical = lexical
        self.weak_below = weak_below
        self.weak_from = weak_from
        self.model = model

    def weak_line(self) -> str:
        """The separator the CLI prints before the weak hits."""
        return f"— weaker matches below (score < {self.weak_below:.2f}, calibrated for {short_model(self.model)}) —"

    @property
    def hits(self) -> list[SearchHit]:
        return list(self)

    def understood_dict(self) -> dict[str, Any] | None:
        """What was understood, as the REST API reports it (None when nothing was asked)."""
        u = self.understood
        if u is None:
            return None
        return {**u.to_dict(), "applied": self.applied, "description": u.describe()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": [h.to_dict() for h in self],
            "mode": self.mode,
            "understood": self.understood_dict(),
            "encoder": self.encoder,
            "lang": self.lang,
            "notes": self.notes,
            "lexical_weight": self.lexical_weight,
            "lexical": self.lexical,
            "weak_below": self.weak_below,
            "weak_from": self.weak_from,
        }


def short_model(name: str | None) -> str:
    """`offline:v2` for the stored offline names, the name itself otherwise."""
    from assetrag.embedding import spec_for_name

    return spec_for_name(name) if name else "this model"
